// The capability probe, in one place (as ART isolates its own): what userfaultfd offers
// on this kernel, by trying it. Every "no" carries the errno name that said no.
// Headers decide nothing here: a feature is present if the kernel reports it and a real
// test operation on scratch memory succeeds.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

namespace movegc {
namespace {

Napi::Object Result(Napi::Env env, bool ok, const char* reason) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", ok);
  if (!ok) r.Set("reason", reason);
  return r;
}
Napi::Object Errno(Napi::Env env, int err) { return Result(env, false, ErrnoName(err)); }

struct Scratch {
  char* p = static_cast<char*>(MAP_FAILED);
  size_t len = 0;
  explicit Scratch(size_t n) : len(n) {
    p = static_cast<char*>(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  }
  ~Scratch() {
    if (p != MAP_FAILED) munmap(p, len);
  }
};

Napi::Object ProbeMremap(Napi::Env env, long ps) {
  Scratch a(ps), b(ps);
  if (a.p == MAP_FAILED || b.p == MAP_FAILED) return Errno(env, ENOMEM);
  a.p[0] = 42;
  void* r = mremap(a.p, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, b.p);
  if (r == MAP_FAILED) return Errno(env, errno);
  bool ok = b.p[0] == 42 && a.p[0] == 0;
  return Result(env, ok, "CONTENT_MISMATCH");
}

// A real MOVE of one scratch page: the destination must get the data, the source zeros.
Napi::Object ProbeMove(Napi::Env env, int how, long ps) {
  int fd = OpenUffd(how);
  if (fd < 0) return Errno(env, -fd);
  Scratch src(ps), dst(ps);
  Napi::Object res = Result(env, true, nullptr);
  struct uffdio_api api = {UFFD_API, UFFD_FEATURE_MOVE, 0};
  struct uffdio_register reg = {};
  reg.range = {reinterpret_cast<uint64_t>(dst.p), static_cast<uint64_t>(ps)};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  struct uffdio_move mv = {};
  if (src.p == MAP_FAILED || dst.p == MAP_FAILED) {
    res = Errno(env, ENOMEM);
  } else if (ioctl(fd, UFFDIO_API, &api)) {
    res = Errno(env, errno);
  } else if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
    res = Errno(env, errno);
  } else {
    memset(src.p, 0x5a, ps);
    mv = {reinterpret_cast<uint64_t>(dst.p), reinterpret_cast<uint64_t>(src.p), static_cast<uint64_t>(ps), 0, 0};
    if (ioctl(fd, UFFDIO_MOVE, &mv)) res = Errno(env, errno);
    else if (static_cast<unsigned char>(dst.p[ps - 1]) != 0x5a || src.p[0] != 0) res = Result(env, false, "CONTENT_MISMATCH");
  }
  close(fd);
  return res;
}

std::string ReadThp() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(f, line)) return "unavailable";
  size_t a = line.find('['), b = line.find(']');
  return a != std::string::npos && b != std::string::npos ? line.substr(a + 1, b - a - 1) : line;
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long ps = sysconf(_SC_PAGESIZE);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pageSize", Napi::Number::New(env, ps));

  // How can a userfaultfd be opened? The first way that works is used for the rest.
  const char* names[3] = {"syscall", "userModeOnly", "device"};
  Napi::Object open = Napi::Object::New(env);
  int how = -1;
  for (int i = 0; i < 3; i++) {
    int fd = OpenUffd(i);
    if (fd >= 0) {
      close(fd);
      if (how < 0) how = i;
      open.Set(names[i], Result(env, true, nullptr));
    } else {
      open.Set(names[i], Errno(env, -fd));
    }
  }
  out.Set("open", open);
  out.Set("openHow", how < 0 ? env.Null() : Napi::Value(Napi::String::New(env, names[how])));

  // Features and register ioctls, from a handshake asking for nothing and a registration.
  if (how >= 0) {
    int fd = OpenUffd(how);
    struct uffdio_api api = {UFFD_API, 0, 0};
    if (ioctl(fd, UFFDIO_API, &api)) {
      out.Set("api", Errno(env, errno));
    } else {
      out.Set("api", Result(env, true, nullptr));
      out.Set("features", Napi::Number::New(env, static_cast<double>(api.features)));
      Scratch s(ps);
      struct uffdio_register reg = {};
      reg.range = {reinterpret_cast<uint64_t>(s.p), static_cast<uint64_t>(ps)};
      reg.mode = UFFDIO_REGISTER_MODE_MISSING;
      if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
        out.Set("register", Errno(env, errno));
      } else {
        out.Set("register", Result(env, true, nullptr));
        out.Set("ioctls", Napi::Number::New(env, static_cast<double>(reg.ioctls)));
      }
      Scratch w(ps);
      struct uffdio_register wreg = {};
      wreg.range = {reinterpret_cast<uint64_t>(w.p), static_cast<uint64_t>(ps)};
      wreg.mode = UFFDIO_REGISTER_MODE_WP;
      out.Set("registerWp", ioctl(fd, UFFDIO_REGISTER, &wreg) ? Errno(env, errno) : Result(env, true, nullptr));
    }
    close(fd);
    out.Set("testMove", ProbeMove(env, how, ps));
  } else {
    Napi::Object none = Result(env, false, "ENOUFFD");
    out.Set("api", none);
    out.Set("register", none);
    out.Set("registerWp", none);
    out.Set("testMove", none);
  }
  out.Set("mremapDontUnmap", ProbeMremap(env, ps));
  out.Set("thp", ReadThp());
  return out;
}

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
}

}  // namespace movegc
