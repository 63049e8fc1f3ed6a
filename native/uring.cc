// A minimal io_uring for fixed-buffer reads into a registered (pinned) range, so examples and
// tests can do real I/O through a pin: io_uring_setup + mmap of the SQ/CQ rings and the SQE
// array, IORING_REGISTER_BUFFERS of one range, IORING_OP_READ_FIXED, and io_uring_enter with
// IORING_ENTER_GETEVENTS. Raw syscalls, no liburing. One request in flight at a time, blocking,
// bounded: each read is linked to an IORING_OP_LINK_TIMEOUT, which cancels it when it is due (a
// pipe nobody writes to, a descriptor that never completes a read), so no call waits forever.
#include <errno.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "addon.h"
#include "errors.h"

namespace movegc {
namespace {

struct Ring {
  void* sq = MAP_FAILED;
  size_t sqLen = 0;
  void* cq = MAP_FAILED;
  size_t cqLen = 0;
  io_uring_sqe* sqes = static_cast<io_uring_sqe*>(MAP_FAILED);
  size_t sqesLen = 0;
  io_uring_params p = {};
  uint64_t addr = 0, len = 0;
  // A readFixed is waiting on this ring (the table's lock is not held while it waits).
  bool reading = false;
  // Its environment was torn down meanwhile: the read's end closes it (ReleaseRing).
  bool closeAfterRead = false;
};

// Rings by fd. The addon is loaded once per thread (context-aware), the table is process-wide.
std::mutex mu;
std::map<int, Ring> rings;

template <typename T>
T* At(void* base, uint32_t off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

void Unmap(Ring& r) {
  if (r.sqes != MAP_FAILED) munmap(r.sqes, r.sqesLen);
  if (r.cq != MAP_FAILED && r.cq != r.sq) munmap(r.cq, r.cqLen);
  if (r.sq != MAP_FAILED) munmap(r.sq, r.sqLen);
}

// Unmaps a ring taken out of the table, then unregisters the buffer (releasing the pin) and
// closes the fd: 0 or an errno from the unregistration (the ring is closed either way).
int CloseTaken(int ring, Ring& r) {
  Disown(Owned::RING, static_cast<uint64_t>(ring));
  Unmap(r);
  return CloseRing(ring);
}

// setup(address, length) -> ring fd: rings mapped, [address, address+length) registered as buffer 0.
Napi::Value Setup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  Ring r;
  int fd = static_cast<int>(syscall(__NR_io_uring_setup, 4, &r.p));
  if (fd < 0) ThrowErrno(env, "io_uring_setup", errno);
  r.addr = addr;
  r.len = len;
  r.sqLen = r.p.sq_off.array + r.p.sq_entries * sizeof(uint32_t);
  r.cqLen = r.p.cq_off.cqes + r.p.cq_entries * sizeof(io_uring_cqe);
  if (r.p.features & IORING_FEAT_SINGLE_MMAP) r.sqLen = r.cqLen = std::max(r.sqLen, r.cqLen);
  r.sqesLen = r.p.sq_entries * sizeof(io_uring_sqe);
  const int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED | MAP_POPULATE;
  const char* what = nullptr;
  r.sq = mmap(nullptr, r.sqLen, prot, flags, fd, IORING_OFF_SQ_RING);
  if (r.sq == MAP_FAILED) what = "mmap(IORING_OFF_SQ_RING)";
  if (!what) {
    r.cq = (r.p.features & IORING_FEAT_SINGLE_MMAP) ? r.sq : mmap(nullptr, r.cqLen, prot, flags, fd, IORING_OFF_CQ_RING);
    if (r.cq == MAP_FAILED) what = "mmap(IORING_OFF_CQ_RING)";
  }
  if (!what) {
    r.sqes = static_cast<io_uring_sqe*>(mmap(nullptr, r.sqesLen, prot, flags, fd, IORING_OFF_SQES));
    if (r.sqes == MAP_FAILED) what = "mmap(IORING_OFF_SQES)";
  }
  if (!what) {
    struct iovec iov = {reinterpret_cast<void*>(addr), len};
    if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0) what = "io_uring_register(IORING_REGISTER_BUFFERS)";
  }
  if (what) {
    int err = errno;
    Unmap(r);
    close(fd);
    ThrowErrno(env, what, err);
  }
  std::lock_guard<std::mutex> g(mu);
  rings[fd] = r;
  Own(env, Owned::RING, static_cast<uint64_t>(fd));
  return Napi::Number::New(env, fd);
}

// readFixed(ring, fd, fileOffset, length, address) -> bytes read (the CQE's result).
Napi::Value ReadFixed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ring = ArgFd(info, 0);
  int fd = ArgFd(info, 1);
  uint64_t off = ArgAddr(info, 2, "offset");
  uint64_t len = ArgAddr(info, 3, "length");
  uint64_t addr = ArgAddr(info, 4, "address");
  uint64_t timeoutMs = ArgAddr(info, 5, "timeoutMs");
  // The table's lock is held to take the ring, not across the wait: a read waiting up to its
  // timeout (an hour at most) held every other thread's setup, read and release (an audit: a
  // Worker's read on an idle FIFO stalled the main thread's pin for 10 s). The ring is marked
  // busy meanwhile, so nothing releases (unmaps) it under the read.
  Ring r;
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = rings.find(ring);
    if (it == rings.end()) ThrowArg(env, "ERR_INVALID_ARG_VALUE", "not a ring made by uring.setup");
    if (len == 0 || len > 0x7fffffff || addr < it->second.addr || addr + len > it->second.addr + it->second.len)
      ThrowArg(env, "ERR_OUT_OF_RANGE", "read range outside the registered buffer");
    if (it->second.reading) ThrowErrno(env, "IORING_OP_READ_FIXED", EBUSY, "another read is in flight on this ring");
    it->second.reading = true;
    r = it->second;
  }
  struct Done {
    int ring;
    ~Done() {
      Ring orphan;
      {
        std::lock_guard<std::mutex> g(mu);
        auto it = rings.find(ring);
        if (it == rings.end()) return;
        it->second.reading = false;
        if (!it->second.closeAfterRead) return;
        orphan = it->second;
        rings.erase(it);
      }
      CloseTaken(ring, orphan);
    }
  } done{ring};

  constexpr uint64_t kRead = 0x6d6f7665, kTimeout = 0x74696d65;
  auto* sqTail = At<std::atomic<uint32_t>>(r.sq, r.p.sq_off.tail);
  uint32_t sqMask = *At<uint32_t>(r.sq, r.p.sq_off.ring_mask);
  uint32_t tail = sqTail->load(std::memory_order_relaxed);
  // The read, linked to its timeout (the kernel reads the timespec as it takes the SQE).
  __kernel_timespec ts = {static_cast<long long>(timeoutMs / 1000), static_cast<long long>((timeoutMs % 1000) * 1000000)};
  for (uint32_t k = 0; k < 2; k++) {
    uint32_t idx = (tail + k) & sqMask;
    io_uring_sqe* sqe = &r.sqes[idx];
    *sqe = {};
    if (k == 0) {
      sqe->opcode = IORING_OP_READ_FIXED;
      sqe->flags = IOSQE_IO_LINK;
      sqe->fd = fd;
      sqe->off = off;
      sqe->addr = addr;
      sqe->len = static_cast<uint32_t>(len);
      sqe->buf_index = 0;
      sqe->user_data = kRead;
    } else {
      sqe->opcode = IORING_OP_LINK_TIMEOUT;
      sqe->fd = -1;
      sqe->addr = reinterpret_cast<uint64_t>(&ts);
      sqe->len = 1;
      sqe->user_data = kTimeout;
    }
    At<uint32_t>(r.sq, r.p.sq_off.array)[idx] = idx;
  }
  sqTail->store(tail + 2, std::memory_order_release);

  auto* cqHead = At<std::atomic<uint32_t>>(r.cq, r.p.cq_off.head);
  auto* cqTail = At<std::atomic<uint32_t>>(r.cq, r.p.cq_off.tail);
  uint32_t cqMask = *At<uint32_t>(r.cq, r.p.cq_off.ring_mask);
  // Both completions are reaped before returning, so the ring is empty for the next call: the
  // read's (bytes, or -ECANCELED when the timeout fired) and the timeout's (-ETIME if it fired,
  // -ECANCELED or -ENOENT if the read finished first).
  unsigned toSubmit = 2;
  int readRes = 0, seen = 0;
  bool timedOut = false;
  while (seen < 2) {
    uint32_t head = cqHead->load(std::memory_order_relaxed);
    if (head != cqTail->load(std::memory_order_acquire)) {
      io_uring_cqe* cqe = At<io_uring_cqe>(r.cq, r.p.cq_off.cqes) + (head & cqMask);
      if (cqe->user_data == kRead) readRes = cqe->res;
      else if (cqe->user_data == kTimeout) timedOut = cqe->res == -ETIME;
      cqHead->store(head + 1, std::memory_order_release);
      seen++;
      continue;
    }
    long n = syscall(__NR_io_uring_enter, ring, toSubmit, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, "io_uring_enter", errno);
    }
    if (toSubmit && n < 2) ThrowErrno(env, "io_uring_enter", EIO, "the SQEs were not consumed");
    toSubmit = 0;
  }
  if (readRes == -ECANCELED && timedOut) ThrowErrno(env, "IORING_OP_READ_FIXED", ETIME, "no completion before the read's timeout: cancelled");
  if (readRes < 0) ThrowErrno(env, "IORING_OP_READ_FIXED", -readRes);
  return Napi::Number::New(env, readRes);
}

// Takes the ring out of the table and closes it (CloseTaken); -1 for a ring not open; -2
// (nothing done) while a read waits on it, and with `later` that read's end closes it: marked
// under the same lock as the check, so the read cannot end in between.
int Release(int ring, bool later = false) {
  Ring r;
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = rings.find(ring);
    if (it == rings.end()) return -1;
    if (it->second.reading) {  // a read waits on it (another thread's): not unmapped under it
      if (later) it->second.closeAfterRead = true;
      return -2;
    }
    r = it->second;
    rings.erase(it);
  }
  return CloseTaken(ring, r);
}

// close(ring): Release; a ring already closed is ignored.
Napi::Value Close(const Napi::CallbackInfo& info) {
  int err = Release(ArgFd(info, 0));
  if (err == -2) ThrowErrno(info.Env(), "io_uring close", EBUSY, "a read is in flight on this ring");
  if (err > 0) ThrowErrno(info.Env(), "io_uring_register(IORING_UNREGISTER_BUFFERS)", err);
  return info.Env().Undefined();
}

}  // namespace

// At its environment's teardown (owned.cc): a ring another thread is reading is closed by
// that read's end, not left open for the process's life.
void ReleaseRing(int fd) { Release(fd, true); }

void InitUring(Napi::Env env, Napi::Object exports) {
  Napi::Object u = Napi::Object::New(env);
  u.Set("setup", Fn<Setup>(env, "setup"));
  u.Set("readFixed", Fn<ReadFixed>(env, "readFixed"));
  u.Set("close", Fn<Close>(env, "close"));
  exports.Set("uring", u);
}

}  // namespace movegc
