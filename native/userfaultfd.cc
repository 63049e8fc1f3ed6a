// userfaultfd: open, API handshake, register/unregister, MOVE/COPY/ZEROPAGE/WAKE,
// WRITEPROTECT/CONTINUE/POISON. Reading faults and events: uffd_events.cc.
// Functions take the descriptor as an int so any thread (main or Worker) can use the same fd.
#include <errno.h>
#include <fcntl.h>
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
  int how = static_cast<int>(ArgIntIn(info, 0, "how", 0, 2));
  int fd = OpenUffd(how);
  if (fd < 0) ThrowErrno(info.Env(), how == 2 ? "open(/dev/userfaultfd)" : "userfaultfd", -fd);
  Own(info.Env(), Owned::UFFD, static_cast<uint64_t>(fd));
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
  NoteRegistered(fd, reg.range.start, reg.range.len);
  return Napi::Number::New(info.Env(), static_cast<double>(reg.ioctls));
}

Napi::Value Unregister(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_range range = {ArgAddr(info, 1, "address"), ArgAddr(info, 2, "length")};
  if (ioctl(fd, UFFDIO_UNREGISTER, &range)) ThrowErrno(info.Env(), "UFFDIO_UNREGISTER", errno);
  NoteUnregistered(fd, range.start, range.len);
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
  if (c.len > 0 && OverlapsRegistered(c.src, c.len))
    ThrowErrno(info.Env(), "UFFDIO_COPY", EINVAL, "the source lies in a range registered with a userfaultfd: a missing page there would fault inside the call, which could then never return");
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

// writeProtect(fd, addr, len, mode): sets (MODE_WP) or clears write protection on a range
// registered with REGISTER_MODE_WP. Clearing wakes the writers waiting on it unless DONTWAKE.
Napi::Value WriteProtect(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_writeprotect wp = {};
  wp.range.start = ArgAddr(info, 1, "address");
  wp.range.len = ArgAddr(info, 2, "length");
  wp.mode = ArgAddr(info, 3, "mode");
  if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) ThrowErrno(info.Env(), "UFFDIO_WRITEPROTECT", errno);
  return info.Env().Undefined();
}

// cont(fd, addr, len, mode) -> bytes mapped: resolves minor faults (REGISTER_MODE_MINOR,
// shmem/hugetlbfs) by mapping the page already in the page cache.
Napi::Value Continue(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_continue c = {};
  c.range.start = ArgAddr(info, 1, "address");
  c.range.len = ArgAddr(info, 2, "length");
  c.mode = ArgAddr(info, 3, "mode");
  if (ioctl(fd, UFFDIO_CONTINUE, &c) == 0) return Napi::Number::New(info.Env(), static_cast<double>(c.range.len));
  int err = errno;
  if (err == EAGAIN && c.mapped > 0) return Napi::Number::New(info.Env(), static_cast<double>(c.mapped));
  ThrowErrno(info.Env(), "UFFDIO_CONTINUE", err, nullptr, c.mapped > 0 ? c.mapped : 0);
}

// poison(fd, addr, len, mode) -> bytes poisoned: missing pages of the range read as
// hardware-poisoned (SIGBUS on access) from now on.
Napi::Value Poison(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct uffdio_poison p = {};
  p.range.start = ArgAddr(info, 1, "address");
  p.range.len = ArgAddr(info, 2, "length");
  p.mode = ArgAddr(info, 3, "mode");
  if (ioctl(fd, UFFDIO_POISON, &p) == 0) return Napi::Number::New(info.Env(), static_cast<double>(p.range.len));
  int err = errno;
  if (err == EAGAIN && p.updated > 0) return Napi::Number::New(info.Env(), static_cast<double>(p.updated));
  ThrowErrno(info.Env(), "UFFDIO_POISON", err, nullptr, p.updated > 0 ? p.updated : 0);
}

// describe(fd) -> { link, open, userfaultfd }: what the descriptor is (/proc/self/fd's link,
// e.g. "anon_inode:[userfaultfd]", "" if not open or without procfs), whether it is open, and
// whether it is a userfaultfd (FdIsA: asked of the descriptor without procfs). Userfaultfd.adopt checks it.
Napi::Value Describe(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  const int fd = ArgFd(info, 0);
  o.Set("link", Napi::String::New(info.Env(), FdLink(fd)));
  o.Set("open", Napi::Boolean::New(info.Env(), fcntl(fd, F_GETFD) >= 0));
  o.Set("userfaultfd", Napi::Boolean::New(info.Env(), FdIsA(fd, "userfaultfd")));
  return o;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  DropStashedEvents(fd);
  ForgetRegistrations(fd);
  Disown(Owned::UFFD, static_cast<uint64_t>(fd));
  if (close(fd)) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

}  // namespace

void InitUserfaultfd(Napi::Env env, Napi::Object exports) {
  Napi::Object u = Napi::Object::New(env);
  u.Set("open", Fn<Open>(env, "open"));
  u.Set("api", Fn<Api>(env, "api"));
  u.Set("register", Fn<Register>(env, "register"));
  u.Set("unregister", Fn<Unregister>(env, "unregister"));
  u.Set("move", Fn<Move>(env, "move"));
  u.Set("copy", Fn<Copy>(env, "copy"));
  u.Set("zeropage", Fn<Zeropage>(env, "zeropage"));
  u.Set("wake", Fn<Wake>(env, "wake"));
  u.Set("writeProtect", Fn<WriteProtect>(env, "writeProtect"));
  u.Set("cont", Fn<Continue>(env, "cont"));
  u.Set("poison", Fn<Poison>(env, "poison"));
  InitUffdEvents(env, u);
  u.Set("close", Fn<Close>(env, "close"));
  u.Set("describe", Fn<Describe>(env, "describe"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("FEATURE_MOVE", static_cast<double>(UFFD_FEATURE_MOVE));
  c.Set("REGISTER_MODE_MISSING", static_cast<double>(UFFDIO_REGISTER_MODE_MISSING));
  c.Set("REGISTER_MODE_WP", static_cast<double>(UFFDIO_REGISTER_MODE_WP));
  c.Set("REGISTER_MODE_MINOR", static_cast<double>(UFFDIO_REGISTER_MODE_MINOR));
  c.Set("WRITEPROTECT_MODE_WP", static_cast<double>(UFFDIO_WRITEPROTECT_MODE_WP));
  c.Set("WRITEPROTECT_MODE_DONTWAKE", static_cast<double>(UFFDIO_WRITEPROTECT_MODE_DONTWAKE));
  c.Set("CONTINUE_MODE_DONTWAKE", static_cast<double>(UFFDIO_CONTINUE_MODE_DONTWAKE));
  c.Set("POISON_MODE_DONTWAKE", static_cast<double>(UFFDIO_POISON_MODE_DONTWAKE));
  c.Set("MOVE_MODE_DONTWAKE", static_cast<double>(UFFDIO_MOVE_MODE_DONTWAKE));
  c.Set("MOVE_MODE_ALLOW_SRC_HOLES", static_cast<double>(UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES));
  c.Set("COPY_MODE_DONTWAKE", static_cast<double>(UFFDIO_COPY_MODE_DONTWAKE));
  c.Set("ZEROPAGE_MODE_DONTWAKE", static_cast<double>(UFFDIO_ZEROPAGE_MODE_DONTWAKE));
  c.Set("IOCTL_MOVE_BIT", static_cast<double>(_UFFDIO_MOVE));
  u.Set("constants", c);
  exports.Set("uffd", u);
}

}  // namespace movegc
