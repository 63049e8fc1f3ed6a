{
  "targets": [
    {
      "target_name": "movegc",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/memory.cc",
        "native/userfaultfd.cc",
        "native/uffd_events.cc",
        "native/pin.cc",
        "native/probe.cc",
        "native/sandbox.cc",
        "native/uring.cc",
        "native/watchdog.cc",
        "native/build.cc",
        "native/sched.cc",
        "native/owned.cc",
        "native/registered.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    },
    {
      "target_name": "movegc-cross-mm",
      "type": "executable",
      "sources": ["native/cross_mm_child.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    }
  ]
}
