// Pins and sharing: the two real ways a page becomes unmovable for UFFDIO_MOVE (EBUSY).
//  - pinRange: io_uring IORING_REGISTER_BUFFERS long-term pins the pages (as DMA would).
//  - forkHold: fork a child that sleeps; the parent's anonymous pages are then shared
//    (not exclusive) unless the mapping has MADV_DONTFORK.
// Raw syscalls, no liburing: registering buffers needs no rings mapped.
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"

namespace movegc {

int CloseRing(int ring) {
  long r = syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, nullptr, 0);
  int err = r < 0 ? errno : 0;
  close(ring);
  return err == ENXIO ? 0 : err;
}

namespace {

// pinRange(addr, len) -> ring fd that holds the pin until unpin(fd).
Napi::Value PinRange(const Napi::CallbackInfo& info) {
  struct iovec iov = {reinterpret_cast<void*>(ArgAddr(info, 0, "address")), ArgAddr(info, 1, "length")};
  struct io_uring_params params = {};
  int ring = static_cast<int>(syscall(__NR_io_uring_setup, 1, &params));
  if (ring < 0) ThrowErrno(info.Env(), "io_uring_setup", errno);
  if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
    int err = errno;
    close(ring);
    ThrowErrno(info.Env(), "io_uring_register(IORING_REGISTER_BUFFERS)", err);
  }
  Own(info.Env(), Owned::PIN, static_cast<uint64_t>(ring));
  return Napi::Number::New(info.Env(), ring);
}

Napi::Value Unpin(const Napi::CallbackInfo& info) {
  int ring = ArgFd(info, 0);
  // Only a ring pinRange made and nobody has released: any other descriptor is not ours to close.
  if (!Disown(Owned::PIN, static_cast<uint64_t>(ring))) ThrowErrno(info.Env(), "io_uring unpin (not a pinned ring of this process)", EBADF);
  int err = CloseRing(ring);
  if (err > 0) ThrowErrno(info.Env(), "io_uring_register(IORING_UNREGISTER_BUFFERS)", err);
  return info.Env().Undefined();
}

// forkHold(record?, pidAt?, fdAt?) -> { pid, fd }: a forked child blocked reading a pipe; it
// exits when the write end (fd) is closed by release(pid, fd). Only async-signal-safe calls in
// the child. With `record` (an Int32Array, e.g. the heap's control block), pid and fd are also
// stored at those indexes before the call returns: a Worker terminated while it forks (a fork
// outlasts stallMs on a loaded VM) runs no JavaScript after the call, and would lose them.
Napi::Value ForkHold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* record = nullptr;
  int64_t pid_at = 0, fd_at = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      ThrowArg(env, "ERR_INVALID_ARG_TYPE", "record must be an Int32Array");
    Napi::Int32Array words = info[0].As<Napi::Int32Array>();
    pid_at = ArgInt(info, 1, "pidAt");
    fd_at = ArgInt(info, 2, "fdAt");
    int64_t n = static_cast<int64_t>(words.ElementLength());
    if (pid_at < 0 || pid_at >= n || fd_at < 0 || fd_at >= n || pid_at == fd_at) ThrowArg(env, "ERR_OUT_OF_RANGE", "pidAt and fdAt must be two indexes of record");
    record = words.Data();
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC)) ThrowErrno(info.Env(), "pipe2", errno);
  // The raw clone(2), not glibc's fork(): fork() holds malloc's and stdio's locks across the
  // clone, and with a UFFD_FEATURE_EVENT_FORK userfaultfd registered the clone waits until
  // the FORK event is read. A reader in this process that allocates would wait for those
  // locks: a deadlock. The child needs no libc state (close, read, _exit).
  pid_t pid = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    ThrowErrno(info.Env(), "clone", err);
  }
  if (pid == 0) {
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(fds[0]);
  Own(env, Owned::CHILD, static_cast<uint64_t>(pid), static_cast<uint64_t>(fds[1]));
  if (record) {
    __atomic_store_n(&record[fd_at], fds[1], __ATOMIC_SEQ_CST);
    __atomic_store_n(&record[pid_at], static_cast<int32_t>(pid), __ATOMIC_SEQ_CST);
  }
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("pid", pid);
  r.Set("fd", fds[1]);
  return r;
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  int pid = static_cast<int>(ArgIntIn(info, 0, "pid", 1, INT32_MAX));  // never waitpid(-1) or (0)
  int fd = ArgFd(info, 1);
  // Released already, at the teardown of the environment that forked it (owned.cc): its pid
  // and descriptor may name something else by now.
  if (Disown(Owned::CHILD, static_cast<uint64_t>(pid))) ReleaseChild(pid, fd);
  return info.Env().Undefined();
}

}  // namespace

void ReleaseChild(int pid, int fd) {
  close(fd);
  // The pipe's end makes it exit; SIGKILL too, so that a child someone stopped (SIGSTOP),
  // which would never read that end, cannot hold the wait below forever. The pid is still
  // ours (not reaped yet), so the signal cannot reach another process.
  kill(pid, SIGKILL);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void InitPin(Napi::Env env, Napi::Object exports) {
  Napi::Object p = Napi::Object::New(env);
  p.Set("pinRange", Fn<PinRange>(env, "pinRange"));
  p.Set("unpin", Fn<Unpin>(env, "unpin"));
  p.Set("forkHold", Fn<ForkHold>(env, "forkHold"));
  p.Set("release", Fn<Release>(env, "release"));
  exports.Set("pin", p);
}

}  // namespace movegc
