// Reading a userfaultfd: the fault server's fast path (page-fault addresses into a
// Float64Array) and full event records (flags, thread id, FORK/REMAP/REMOVE/UNMAP).
// A read consumes messages, and a non-fault event cannot be put back: when the fast path
// meets one it keeps it here (per fd, process-wide) for the next readEvents on that fd,
// so nothing is lost, and a stashed FORK descriptor is closed with its parent fd.
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <mutex>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

namespace movegc {
namespace {

// Workers load their own addon instance, but the library (and these statics) is shared.
std::mutex stash_mu;
std::map<int, std::deque<uffd_msg>> stash;

void Stash(int fd, const uffd_msg& m) {
  std::lock_guard<std::mutex> g(stash_mu);
  stash[fd].push_back(m);
}

size_t Stashed(int fd) {
  std::lock_guard<std::mutex> g(stash_mu);
  auto it = stash.find(fd);
  return it == stash.end() ? 0 : it->second.size();
}

// Waits up to timeout ms (<0: forever, 0: not at all) for fd to be readable. False on
// timeout. A signal (EINTR) ends the wait like a timeout: restarting with the full timeout
// would let frequent signals (a profiler's SIGPROF) stretch the wait forever.
bool WaitReadable(Napi::Env env, int fd, int64_t timeout) {
  if (timeout == 0) return true;
  struct pollfd p = {fd, POLLIN, 0};
  int r = poll(&p, 1, timeout < 0 ? -1 : static_cast<int>(timeout));
  if (r < 0 && errno != EINTR) ThrowErrno(env, "poll", errno);
  if (r <= 0) return false;
  if (p.revents & (POLLERR | POLLNVAL)) ThrowErrno(env, "poll", EBADF);
  return true;
}

// Reads up to `want` messages (non-blocking fd). Returns the count; 0 when none pending.
size_t ReadMsgs(Napi::Env env, int fd, uffd_msg* msgs, size_t want) {
  for (;;) {
    ssize_t got = read(fd, msgs, want * sizeof(uffd_msg));
    if (got >= 0) return static_cast<size_t>(got) / sizeof(uffd_msg);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    ThrowErrno(env, "read(userfaultfd)", errno);
  }
}

// readFaults(fd, timeoutMs, out: Float64Array) -> count. Waits up to timeoutMs (0: don't
// wait) for the fd to be readable, then reads pending messages; page-fault addresses go
// to `out`, other events are stashed for readEvents (a fd that asked for no events never
// has any). Blocking happens here, off the JS heap lock: this is meant for a Worker whose
// only job is to serve faults.
Napi::Value ReadFaults(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int64_t timeout = ArgIntIn(info, 1, "timeoutMs", -1, INT32_MAX);  // -1: forever
  if (info.Length() < 3 || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "out must be a Float64Array");
  Napi::Float64Array out = info[2].As<Napi::Float64Array>();
  size_t cap = out.ElementLength();
  if (!WaitReadable(info.Env(), fd, timeout)) return Napi::Number::New(info.Env(), 0);
  uffd_msg msgs[64];
  size_t n = 0;
  while (n < cap) {
    size_t want = cap - n < 64 ? cap - n : 64;
    size_t k = ReadMsgs(info.Env(), fd, msgs, want);
    for (size_t i = 0; i < k; i++) {
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) out[n++] = static_cast<double>(msgs[i].arg.pagefault.address);
      else Stash(fd, msgs[i]);
    }
    if (k < want) break;
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Object Record(Napi::Env env, const uffd_msg& m) {
  Napi::Object r = Napi::Object::New(env);
  auto num = [&](const char* k, uint64_t v) { r.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  switch (m.event) {
    case UFFD_EVENT_PAGEFAULT: {
      uint64_t f = m.arg.pagefault.flags;
      r.Set("type", "pagefault");
      num("address", m.arg.pagefault.address);
      num("flags", f);
      r.Set("write", (f & UFFD_PAGEFAULT_FLAG_WRITE) != 0);
      r.Set("wp", (f & UFFD_PAGEFAULT_FLAG_WP) != 0);
      r.Set("minor", (f & UFFD_PAGEFAULT_FLAG_MINOR) != 0);
      // Filled only with UFFD_FEATURE_THREAD_ID (zero otherwise; no thread has id 0).
      if (m.arg.pagefault.feat.ptid) num("tid", m.arg.pagefault.feat.ptid);
      break;
    }
    case UFFD_EVENT_FORK:
      r.Set("type", "fork");
      num("ufd", m.arg.fork.ufd);
      break;
    case UFFD_EVENT_REMAP:
      r.Set("type", "remap");
      num("from", m.arg.remap.from);
      num("to", m.arg.remap.to);
      num("length", m.arg.remap.len);
      break;
    case UFFD_EVENT_REMOVE:
    case UFFD_EVENT_UNMAP:
      r.Set("type", m.event == UFFD_EVENT_REMOVE ? "remove" : "unmap");
      num("start", m.arg.remove.start);
      num("end", m.arg.remove.end);
      break;
    default:
      r.Set("type", "unknown");
      num("event", m.event);
  }
  return r;
}

// readEvents(fd, timeoutMs, max) -> records. Stashed events first (without waiting), then
// whatever the fd has, waiting up to timeoutMs if nothing is stashed.
Napi::Value ReadEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  int64_t timeout = ArgIntIn(info, 1, "timeoutMs", -1, INT32_MAX);  // -1: forever
  int64_t max = ArgInt(info, 2, "max");
  if (max < 1 || max > 4096) ThrowArg(env, "ERR_OUT_OF_RANGE", "max must be in [1, 4096]");
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  {
    std::lock_guard<std::mutex> g(stash_mu);
    auto it = stash.find(fd);
    if (it != stash.end()) {
      while (n < max && !it->second.empty()) {
        out.Set(n++, Record(env, it->second.front()));
        it->second.pop_front();
      }
      if (it->second.empty()) stash.erase(it);
    }
  }
  if (n == 0 && !WaitReadable(env, fd, timeout)) return out;
  uffd_msg msgs[64];
  while (n < max) {
    size_t want = static_cast<size_t>(max - n) < 64 ? static_cast<size_t>(max - n) : 64;
    size_t k = ReadMsgs(env, fd, msgs, want);
    for (size_t i = 0; i < k; i++) out.Set(n++, Record(env, msgs[i]));
    if (k < want) break;
  }
  return out;
}

Napi::Value StashedEvents(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Stashed(ArgFd(info, 0))));
}

}  // namespace

void DropStashedEvents(int fd) {
  std::lock_guard<std::mutex> g(stash_mu);
  auto it = stash.find(fd);
  if (it == stash.end()) return;
  // A FORK event's descriptor was installed in this process by the read: nobody else will close it.
  for (const uffd_msg& m : it->second)
    if (m.event == UFFD_EVENT_FORK) close(static_cast<int>(m.arg.fork.ufd));
  stash.erase(it);
}

void InitUffdEvents(Napi::Env env, Napi::Object uffd) {
  uffd.Set("readFaults", Fn<ReadFaults>(env, "readFaults"));
  uffd.Set("readEvents", Fn<ReadEvents>(env, "readEvents"));
  uffd.Set("stashedEvents", Fn<StashedEvents>(env, "stashedEvents"));
}

}  // namespace movegc
