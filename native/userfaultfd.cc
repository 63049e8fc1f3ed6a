// userfaultfd: open, API handshake, register/unregister, MOVE/COPY/ZEROPAGE/WAKE, fault reads.
// Functions take the descriptor as an int so any thread (main or Worker) can use the same fd.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

namespace movegc {

// Opens a userfaultfd (O_CLOEXEC|O_NONBLOCK). `how`: 0 = syscall, 1 = syscall with
// UFFD_USER_MODE_ONLY, 2 = /dev/userfaultfd + USERFAULTFD_IOC_NEW. Returns fd or -errno.
int OpenUffd(int how) {
  int flags = O_CLOEXEC | O_NONBLOCK;
  if (how == 2) {
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return -errno;
    int fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    int err = errno;
    close(dev);
    return fd < 0 ? -err : fd;
  }
  if (how == 1) flags |= UFFD_USER_MODE_ONLY;
  int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  return fd < 0 ? -errno : fd;
}

namespace {

Napi::Value Open(const Napi::CallbackInfo& info) {
  int how = static_cast<int>(ArgInt(info, 0, "how"));
  if (how < 0 || how > 2) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "how must be 0, 1 or 2");
  int fd = OpenUffd(how);
  if (fd < 0) ThrowErrno(info.Env(), how == 2 ? "open(/dev/userfaultfd)" : "userfaultfd", -fd);
  return Napi::Number::New(info.Env(), fd);
}

// api(fd, features) -> { features, ioctls }: the kernel reports every feature it has.
Napi::Value Api(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  uint64_t features = ArgAddr(info, 1, "features");
  struct uffdio_api api = {};
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd, UFFDIO_API, &api)) ThrowErrno(info.Env(), "UFFDIO_API", errno);
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("features", Napi::Number::New(info.Env(), static_cast<double>(api.features)));
  r.Set("ioctls", Napi::Number::New(info.Env(), static_cast<double>(api.ioctls)));
  return r;
}

Napi::Value Register(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_register reg = {};
  reg.range.start = ArgAddr(info, 1, "address");
  reg.range.len = ArgAddr(info, 2, "length");
  reg.mode = ArgAddr(info, 3, "mode");
  if (ioctl(fd, UFFDIO_REGISTER, &reg)) ThrowErrno(info.Env(), "UFFDIO_REGISTER", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(reg.ioctls));
}

Napi::Value Unregister(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_range range = {ArgAddr(info, 1, "address"), ArgAddr(info, 2, "length")};
  if (ioctl(fd, UFFDIO_UNREGISTER, &range)) ThrowErrno(info.Env(), "UFFDIO_UNREGISTER", errno);
  return info.Env().Undefined();
}

// move(fd, dst, src, len, mode) -> bytes moved. One ioctl. A short move (EAGAIN after
// progress) returns the progress so the caller can continue; any other failure throws
// with `bytesDone` (what moved before it).
Napi::Value Move(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_move m = {};
  m.dst = ArgAddr(info, 1, "dst");
  m.src = ArgAddr(info, 2, "src");
  m.len = ArgAddr(info, 3, "length");
  m.mode = ArgAddr(info, 4, "mode");
  if (ioctl(fd, UFFDIO_MOVE, &m) == 0) return Napi::Number::New(info.Env(), static_cast<double>(m.len));
  int err = errno;
  if (err == EAGAIN && m.move > 0) return Napi::Number::New(info.Env(), static_cast<double>(m.move));
  ThrowErrno(info.Env(), "UFFDIO_MOVE", err, nullptr, m.move > 0 ? m.move : 0);
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_copy c = {};
  c.dst = ArgAddr(info, 1, "dst");
  c.src = ArgAddr(info, 2, "src");
  c.len = ArgAddr(info, 3, "length");
  c.mode = ArgAddr(info, 4, "mode");
  if (ioctl(fd, UFFDIO_COPY, &c) == 0) return Napi::Number::New(info.Env(), static_cast<double>(c.len));
  int err = errno;
  if (err == EAGAIN && c.copy > 0) return Napi::Number::New(info.Env(), static_cast<double>(c.copy));
  ThrowErrno(info.Env(), "UFFDIO_COPY", err, nullptr, c.copy > 0 ? c.copy : 0);
}

Napi::Value Zeropage(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_zeropage z = {};
  z.range.start = ArgAddr(info, 1, "dst");
  z.range.len = ArgAddr(info, 2, "length");
  z.mode = ArgAddr(info, 3, "mode");
  if (ioctl(fd, UFFDIO_ZEROPAGE, &z) == 0) return Napi::Number::New(info.Env(), static_cast<double>(z.range.len));
  int err = errno;
  if (err == EAGAIN && z.zeropage > 0) return Napi::Number::New(info.Env(), static_cast<double>(z.zeropage));
  ThrowErrno(info.Env(), "UFFDIO_ZEROPAGE", err, nullptr, z.zeropage > 0 ? z.zeropage : 0);
}

Napi::Value Wake(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_range range = {ArgAddr(info, 1, "address"), ArgAddr(info, 2, "length")};
  if (ioctl(fd, UFFDIO_WAKE, &range)) ThrowErrno(info.Env(), "UFFDIO_WAKE", errno);
  return info.Env().Undefined();
}

// readFaults(fd, timeoutMs, out: Float64Array) -> count. Waits up to timeoutMs (0: don't
// wait) for the fd to be readable, then reads pending messages; page-fault addresses go
// to `out`, other events are skipped. Blocking happens here, off the JS heap lock: this
// is meant for a Worker whose only job is to serve faults.
Napi::Value ReadFaults(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int64_t timeout = ArgInt(info, 1, "timeoutMs");
  if (info.Length() < 3 || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "out must be a Float64Array");
  Napi::Float64Array out = info[2].As<Napi::Float64Array>();
  size_t cap = out.ElementLength();
  if (timeout != 0) {
    // A signal (EINTR) ends the wait like a timeout: restarting with the full timeout would
    // let frequent signals (a profiler's SIGPROF) stretch the wait forever.
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, timeout < 0 ? -1 : static_cast<int>(timeout));
    if (r < 0 && errno != EINTR) ThrowErrno(info.Env(), "poll", errno);
    if (r <= 0) return Napi::Number::New(info.Env(), 0);
    if (p.revents & (POLLERR | POLLNVAL)) ThrowErrno(info.Env(), "poll", EBADF);
  }
  struct uffd_msg msgs[64];
  size_t n = 0;
  while (n < cap) {
    size_t want = cap - n < 64 ? cap - n : 64;
    ssize_t got = read(fd, msgs, want * sizeof(struct uffd_msg));
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      ThrowErrno(info.Env(), "read(userfaultfd)", errno);
    }
    size_t k = static_cast<size_t>(got) / sizeof(struct uffd_msg);
    for (size_t i = 0; i < k; i++)
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) out[n++] = static_cast<double>(msgs[i].arg.pagefault.address);
    if (k < want) break;
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  if (close(fd)) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

}  // namespace

void InitUserfaultfd(Napi::Env env, Napi::Object exports) {
  Napi::Object u = Napi::Object::New(env);
  u.Set("open", Napi::Function::New(env, Open, "open"));
  u.Set("api", Napi::Function::New(env, Api, "api"));
  u.Set("register", Napi::Function::New(env, Register, "register"));
  u.Set("unregister", Napi::Function::New(env, Unregister, "unregister"));
  u.Set("move", Napi::Function::New(env, Move, "move"));
  u.Set("copy", Napi::Function::New(env, Copy, "copy"));
  u.Set("zeropage", Napi::Function::New(env, Zeropage, "zeropage"));
  u.Set("wake", Napi::Function::New(env, Wake, "wake"));
  u.Set("readFaults", Napi::Function::New(env, ReadFaults, "readFaults"));
  u.Set("close", Napi::Function::New(env, Close, "close"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("FEATURE_MOVE", static_cast<double>(UFFD_FEATURE_MOVE));
  c.Set("REGISTER_MODE_MISSING", static_cast<double>(UFFDIO_REGISTER_MODE_MISSING));
  c.Set("REGISTER_MODE_WP", static_cast<double>(UFFDIO_REGISTER_MODE_WP));
  c.Set("MOVE_MODE_DONTWAKE", static_cast<double>(UFFDIO_MOVE_MODE_DONTWAKE));
  c.Set("MOVE_MODE_ALLOW_SRC_HOLES", static_cast<double>(UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES));
  c.Set("COPY_MODE_DONTWAKE", static_cast<double>(UFFDIO_COPY_MODE_DONTWAKE));
  c.Set("ZEROPAGE_MODE_DONTWAKE", static_cast<double>(UFFDIO_ZEROPAGE_MODE_DONTWAKE));
  c.Set("IOCTL_MOVE_BIT", static_cast<double>(_UFFDIO_MOVE));
  u.Set("constants", c);
  exports.Set("uffd", u);
}

}  // namespace movegc
