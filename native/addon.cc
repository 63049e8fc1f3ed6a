// movegc native binding: system calls and the few pieces that must run outside JavaScript.
// Each concern lives in its own file; the collector's algorithm lives in TypeScript (gc/),
// except the page-build kernel (build.cc), a compiled twin of gc/build.ts.
#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  movegc::InitOwned(env, exports);  // first: its teardown hook runs after every later one
  movegc::InitMemory(env, exports);
  movegc::InitUserfaultfd(env, exports);
  movegc::InitPin(env, exports);
  movegc::InitProbe(env, exports);
  movegc::InitSandbox(env, exports);
  movegc::InitUring(env, exports);
  movegc::InitWatchdog(env, exports);
  movegc::InitBuild(env, exports);
  movegc::InitSched(env, exports);
  return exports;
}

NODE_API_MODULE(movegc, Init)
