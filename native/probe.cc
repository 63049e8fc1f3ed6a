// The capability probe, in one place (as ART isolates its own): what userfaultfd offers
// on this kernel, by trying it. Every "no" carries the errno name that said no.
// Headers decide nothing here: a feature is present if the kernel reports it and a real
// test operation on scratch memory succeeds. The costlier findings (a child process, an
// io_uring pin) are made once per process and kept, unless the process ran out of something
// (descriptors, locked memory): that says nothing of the kernel, and the next probe tries again.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
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

// A real MOVE (`move`) or COPY of one scratch page into a registered one: the destination must
// get the data, and after a MOVE the source must be empty. The kernel, or a filter in front of
// it, may refuse what the registration offers (COPY refused with its ioctl bit offered left a
// heap in copy or move mode stuck in its first compaction: an audit, under seccomp).
Napi::Object ProbeInstall(Napi::Env env, int how, long ps, bool move) {
  int fd = OpenUffd(how);
  if (fd < 0) return Errno(env, -fd);
  Scratch src(ps), dst(ps);
  Napi::Object res = Result(env, true, nullptr);
  struct uffdio_api api = {UFFD_API, move ? static_cast<uint64_t>(UFFD_FEATURE_MOVE) : 0, 0};
  struct uffdio_register reg = {};
  reg.range = {reinterpret_cast<uint64_t>(dst.p), static_cast<uint64_t>(ps)};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (src.p == MAP_FAILED || dst.p == MAP_FAILED) {
    res = Errno(env, ENOMEM);
  } else if (ioctl(fd, UFFDIO_API, &api)) {
    res = Errno(env, errno);
  } else if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
    res = Errno(env, errno);
  } else {
    memset(src.p, 0x5a, ps);
    const uint64_t d = reinterpret_cast<uint64_t>(dst.p), s = reinterpret_cast<uint64_t>(src.p), n = static_cast<uint64_t>(ps);
    struct uffdio_move mv = {d, s, n, 0, 0};
    struct uffdio_copy cp = {d, s, n, 0, 0};
    if (move ? ioctl(fd, UFFDIO_MOVE, &mv) : ioctl(fd, UFFDIO_COPY, &cp)) res = Errno(env, errno);
    else if (static_cast<unsigned char>(dst.p[ps - 1]) != 0x5a || (move && src.p[0] != 0)) res = Result(env, false, "CONTENT_MISMATCH");
  }
  close(fd);
  return res;
}

// A finding kept for the life of the process (these spawn a child or pin memory: run once).
struct Finding {
  bool ok = false;
  std::string reason, detail;
  Napi::Object ToJs(Napi::Env env) const {
    Napi::Object r = Result(env, ok, reason.c_str());
    if (!detail.empty()) r.Set("detail", detail);
    return r;
  }
};
Finding Fail(const char* reason, const std::string& detail = "") { return {false, reason, detail}; }

// A userfaultfd with MOVE and one registered scratch page `dst`, for the tests below.
struct MoveSetup {
  int fd = -1;
  Scratch src, dst;
  Finding error;  // set when the setup failed
  MoveSetup(int how, long ps) : src(ps), dst(ps) {
    fd = OpenUffd(how);
    if (fd < 0) {
      error = Fail(ErrnoName(-fd), "userfaultfd open");
      return;
    }
    struct uffdio_api api = {UFFD_API, UFFD_FEATURE_MOVE, 0};
    struct uffdio_register reg = {};
    reg.range = {reinterpret_cast<uint64_t>(dst.p), static_cast<uint64_t>(ps)};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (src.p == MAP_FAILED || dst.p == MAP_FAILED) error = Fail("ENOMEM", "scratch mmap");
    else if (ioctl(fd, UFFDIO_API, &api)) error = Fail(ErrnoName(errno), "UFFDIO_API(MOVE)");
    else if (ioctl(fd, UFFDIO_REGISTER, &reg)) error = Fail(ErrnoName(errno), "UFFDIO_REGISTER");
    else memset(src.p, 0x5a, ps);
  }
  ~MoveSetup() {
    if (fd >= 0) close(fd);
  }
  bool ready() const { return fd >= 0 && error.reason.empty(); }
  int Move(long ps) {
    struct uffdio_move mv = {reinterpret_cast<uint64_t>(dst.p), reinterpret_cast<uint64_t>(src.p), static_cast<uint64_t>(ps), 0, 0};
    return ioctl(fd, UFFDIO_MOVE, &mv) ? errno : 0;
  }
};

// The child program sits next to this addon (build/Release/movegc-cross-mm).
std::string ChildPath() {
  Dl_info di;
  if (!dladdr(reinterpret_cast<void*>(&InitProbe), &di) || !di.dli_fname) return "";
  std::string p = di.dli_fname;
  size_t slash = p.rfind('/');
  return (slash == std::string::npos ? std::string() : p.substr(0, slash + 1)) + "movegc-cross-mm";
}

// crossMm: a child process holding our userfaultfd (as fd 3) MOVEs a page of its own into
// our registered page. Every kernel so far refuses (EINVAL: ctx->mm != current->mm); a
// kernel that allowed it would have to have moved the child's bytes into our page.
Finding ProbeCrossMm(int how, long ps) {
  MoveSetup s(how, ps);
  if (!s.ready()) return s.error;
  if (int err = s.Move(ps)) return Fail("NO_MOVE", std::string("same-process UFFDIO_MOVE: ") + ErrnoName(err));
  Scratch dst(ps);  // the control filled s.dst: the child aims at a fresh registered page
  struct uffdio_register reg = {};
  reg.range = {reinterpret_cast<uint64_t>(dst.p), static_cast<uint64_t>(ps)};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (dst.p == MAP_FAILED) return Fail("ENOMEM", "scratch mmap");
  if (ioctl(s.fd, UFFDIO_REGISTER, &reg)) return Fail(ErrnoName(errno), "UFFDIO_REGISTER of the child's target");
  std::string path = ChildPath();
  if (path.empty() || access(path.c_str(), X_OK)) return Fail("NO_HELPER", "probe child program not found: " + path);
  // The child gets the descriptor as fd 3 (dup2 clears CLOEXEC on the copy only).
  int high = fcntl(s.fd, F_DUPFD_CLOEXEC, 10);
  if (high < 0) return Fail(ErrnoName(errno), "F_DUPFD_CLOEXEC");
  char dst_hex[32], len_dec[32];
  snprintf(dst_hex, sizeof dst_hex, "%lx", reinterpret_cast<unsigned long>(dst.p));
  snprintf(len_dec, sizeof len_dec, "%ld", ps);
  char* argv[] = {const_cast<char*>(path.c_str()), dst_hex, len_dec, nullptr};
  char* envp[] = {nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, high, 3);
  pid_t pid;
  int err = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(high);
  if (err) return Fail(ErrnoName(err), "posix_spawn of the probe child");
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st)) return Fail("CHILD_SIGNAL", "the probe child died by a signal");
  int code = WEXITSTATUS(st);
  if (code == 255) return Fail("CHILD_SETUP", "the probe child could not set up");
  if (code != 0) return Fail(ErrnoName(code), "UFFDIO_MOVE from a child process holding this process's userfaultfd");
  if (static_cast<unsigned char>(dst.p[0]) != 0x5a) return Fail("CONTENT_MISMATCH", "the child's MOVE succeeded but our page does not hold its bytes");
  return {true, "", ""};
}

std::string ReadSysctl(const char* path) {
  std::ifstream f(path);
  std::string v;
  return std::getline(f, v) ? v : "?";
}

// pinsRefused: a page pinned by io_uring (IORING_REGISTER_BUFFERS, a long-term pin as DMA
// holds) must be refused by MOVE with EBUSY, and move again once unpinned (the control).
Finding ProbePins(int how, long ps) {
  MoveSetup s(how, ps);
  if (!s.ready()) return s.error;
  struct io_uring_params params = {};
  int ring = static_cast<int>(syscall(__NR_io_uring_setup, 1, &params));
  if (ring < 0) {
    // No io_uring (EPERM: kernel.io_uring_disabled, seccomp; ENOSYS: not built in) is the
    // kernel's answer; anything else (ENOMEM: RLIMIT_MEMLOCK, EMFILE) is this process's state.
    int e = errno;
    return Fail(e == EPERM || e == ENOSYS ? "NO_IO_URING" : ErrnoName(e),
                std::string("io_uring_setup: ") + ErrnoName(e) + " (kernel.io_uring_disabled=" + ReadSysctl("/proc/sys/kernel/io_uring_disabled") +
                    "): pins cannot be tested here");
  }
  struct iovec iov = {s.src.p, static_cast<size_t>(ps)};
  if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
    int e = errno;
    close(ring);
    return Fail(ErrnoName(e), "IORING_REGISTER_BUFFERS of a scratch page");
  }
  int pinned = s.Move(ps);
  syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, nullptr, 0);
  close(ring);
  if (pinned == 0) return Fail("MOVED_PINNED", "UFFDIO_MOVE moved a page pinned by io_uring");
  if (pinned != EBUSY) return Fail(ErrnoName(pinned), "UFFDIO_MOVE of a pinned page failed, but not with EBUSY");
  int unpinned = s.Move(ps);
  if (unpinned) return Fail(ErrnoName(unpinned), "after unpinning, the page still does not move: EBUSY was not the pin's");
  return {true, "", ""};
}

std::mutex kept_mu;
Finding cross_mm, pins_refused;
bool cross_mm_kept = false, pins_refused_kept = false;

// Errnos that say the process ran out of descriptors or memory, not what the kernel offers.
constexpr int kProcessStateErrnos[] = {EMFILE, ENFILE, ENOMEM, EAGAIN};
bool ProcessStateErrno(int e) {
  for (int x : kProcessStateErrnos)
    if (e == x) return true;
  return false;
}

// A "no" the process's state gave: not kept (a probe-edge audit: one EMFILE or RLIMIT_MEMLOCK
// of 0 stood for the whole process, refresh or not).
bool ProcessState(const Finding& f) {
  if (f.ok) return false;
  for (int x : kProcessStateErrnos)
    if (f.reason == ErrnoName(x)) return true;
  return false;
}

// The handshake above asks for nothing, so the kernel lists every feature it has, including
// ones this process may not turn on (EVENT_FORK needs CAP_SYS_PTRACE without
// vm.unprivileged_userfaultfd: an audit found it listed to a process refused it). Each bit is
// asked for alone, on a descriptor of its own (a handshake is once per descriptor); the bits
// refused come back. A descriptor that cannot be opened proves nothing: its bit is kept.
uint64_t RefusedFeatures(int how, uint64_t features) {
  uint64_t refused = 0;
  for (int b = 0; b < 64; b++) {
    uint64_t bit = uint64_t{1} << b;
    if (!(features & bit)) continue;
    int fd = OpenUffd(how);
    if (fd < 0) continue;
    struct uffdio_api api = {UFFD_API, bit, 0};
    if (ioctl(fd, UFFDIO_API, &api) && !ProcessStateErrno(errno)) refused |= bit;
    close(fd);
  }
  return refused;
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
    if (fd < 0) {
      // Opened a moment ago; now out of descriptors (another thread took the last): say so,
      // not EBADF from an ioctl on -EMFILE (an audit saw that, and the heap ran as stw).
      out.Set("api", Errno(env, -fd));
    } else if (ioctl(fd, UFFDIO_API, &api)) {
      out.Set("api", Errno(env, errno));
    } else {
      out.Set("api", Result(env, true, nullptr));
      out.Set("features", Napi::Number::New(env, static_cast<double>(api.features)));
      out.Set("featuresRefused", Napi::Number::New(env, static_cast<double>(RefusedFeatures(how, api.features))));
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
    if (fd >= 0) close(fd);
    out.Set("testMove", ProbeInstall(env, how, ps, true));
    out.Set("testCopy", ProbeInstall(env, how, ps, false));
    {
      std::lock_guard<std::mutex> g(kept_mu);
      if (!cross_mm_kept) {
        cross_mm = ProbeCrossMm(how, ps);
        cross_mm_kept = !ProcessState(cross_mm);
      }
      if (!pins_refused_kept) {
        pins_refused = ProbePins(how, ps);
        pins_refused_kept = !ProcessState(pins_refused);
      }
    }
    out.Set("crossMm", cross_mm.ToJs(env));
    out.Set("pinsRefused", pins_refused.ToJs(env));
  } else {
    Napi::Object none = Result(env, false, "ENOUFFD");
    out.Set("api", none);
    out.Set("register", none);
    out.Set("registerWp", none);
    out.Set("testMove", none);
    out.Set("testCopy", none);
    out.Set("crossMm", none);
    out.Set("pinsRefused", none);
  }
  out.Set("mremapDontUnmap", ProbeMremap(env, ps));
  out.Set("thp", ReadThp());
  return out;
}

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Fn<Probe>(env, "probe"));
}

}  // namespace movegc
