// The heap's last resort (issue 8, defect 8): a thread blocked in a userfaultfd fault waits
// in the kernel until a collector thread installs its page. If every thread that can do so
// is dead or stalled, it waits forever, and the blocked thread (the mutator) cannot save
// itself. This native thread, one per heap, runs no JavaScript and watches from outside:
//
//   every periodMs: is a page-fault message pending, unread, on the userfaultfd (poll
//   POLLIN, timeout 0: nothing is consumed)? Is any fault-serving role's heartbeat (an
//   Int32 word in the heap's heartbeat table, ms since the heap's epoch modulo 2^31, -1
//   idle, -2 dead: said by the thread as it died) younger than staleMs? If a fault stays unread with no such heartbeat for longer
//   than fatalMs, it writes a fatal message naming the cause to stderr and aborts. A fault the
//   fault server has read is no longer pending: it names the page in a word of the table while
//   it holds it (heldSlot), and that page still missing (mincore) counts as a blocked thread too.
//
// It also publishes its own clock for the heap's stall decisions (gc/heartbeat.ts): the stamp
// of each look, and of the last look that came later than periodMs + stillMs (the process, or
// this thread, stood still that long: SIGSTOP, a debugger, a suspended VM). Every beat aged
// across such a stop, and no thread failed to beat in it.
//
// A pending message proves a blocked thread: a woken waiter leaves the queue, and a fault
// server that dies after reading a fault wakes it first (gc/fault.ts), so it faults again.
// The thresholds come from TypeScript (gc/watchdog.ts). The thread holds a reference on the
// heartbeat table, is joined by stop() (the heap's close) or by an environment cleanup hook
// (a heap never closed), and keeps no event loop alive.
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

namespace movegc {
namespace {

constexpr int32_t kIdle = -1;
constexpr int32_t kDead = -2;  // gc/heartbeat.ts DEAD
constexpr int64_t kMask = 0x7fffffff;

double MonotonicMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Role {
  int slot;
  std::string name;
};

struct Watchdog {
  int id = 0;
  napi_env env = nullptr;
  int fd = -1;
  int32_t* beats = nullptr;
  napi_ref beats_ref = nullptr;  // keeps the SharedArrayBuffer alive while the thread reads it
  double epoch = 0;
  std::vector<Role> roles;
  uint64_t heap = 0, capacity = 0;
  int64_t period_ms = 0, stale_ms = 0, fatal_ms = 0;
  int look_slot = -1, resumed_slot = -1;  // -1: not published
  int held_slot = -1;  // 1 + the page of a fault the fault server read and holds (gc/fault.ts); -1: none kept
  int64_t still_ms = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;
};

// Leaked on purpose: no static destructor may run under a watchdog still reading at exit().
std::mutex* g_mu = new std::mutex;
std::map<int, Watchdog*>* g_dogs = new std::map<int, Watchdog*>;
int g_next_id = 1;

int32_t Stamp(const Watchdog& w, double now) {
  return static_cast<int32_t>(static_cast<int64_t>(std::floor(now - w.epoch)) & kMask);
}

// A beat ahead of this clock (a JavaScript thread's estimate of it reads a little ahead:
// gc/heartbeat.ts ORIGIN) was written just now: age 0, not 24 days.
int64_t Age(const Watchdog& w, int32_t beat, double now) {
  const int64_t d = (static_cast<int64_t>(Stamp(w, now)) - beat) & kMask;
  return d > (kMask >> 1) ? 0 : d;
}

void Publish(const Watchdog& w, int slot, int32_t v) {
  if (slot >= 0) __atomic_store_n(&w.beats[slot], v, __ATOMIC_SEQ_CST);
}

void WriteAll(const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(STDERR_FILENO, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The page of a fault the fault server read and has not served, if that page is still not
// in (mincore): its thread still waits, though no message is pending any more. -1: none.
int64_t HeldPage(const Watchdog& w) {
  if (w.held_slot < 0) return -1;
  const int32_t h = __atomic_load_n(&w.beats[w.held_slot], __ATOMIC_SEQ_CST);
  if (h <= 0 || static_cast<uint64_t>(h - 1) * 4096 >= w.capacity) return -1;
  unsigned char in = 0;
  if (mincore(reinterpret_cast<void*>(w.heap + static_cast<uint64_t>(h - 1) * 4096), 4096, &in) != 0 || (in & 1)) return -1;
  return h - 1;
}

[[noreturn]] void Fatal(const Watchdog& w, double blocked_ms, double now, int64_t held) {
  char buf[512];
  std::string m = "movegc watchdog: FATAL: ";
  snprintf(buf, sizeof buf, "heap at 0x%llx (%llu bytes, userfaultfd %d): ", static_cast<unsigned long long>(w.heap),
           static_cast<unsigned long long>(w.capacity), w.fd);
  m += buf;
  // The pending message itself, for the report: reading it no longer matters.
  struct uffd_msg msg;
  std::string pending = "an unread page-fault message";
  if (read(w.fd, &msg, sizeof msg) == static_cast<ssize_t>(sizeof msg) && msg.event == UFFD_EVENT_PAGEFAULT) {
    uint64_t a = msg.arg.pagefault.address;
    snprintf(buf, sizeof buf, "an unread page fault at 0x%llx (heap page %lld)", static_cast<unsigned long long>(a),
             a >= w.heap && a < w.heap + w.capacity ? static_cast<long long>((a - w.heap) / 4096) : -1LL);
    pending = buf;
  } else if (held >= 0) {
    snprintf(buf, sizeof buf, "a page fault the fault server read and never served (heap page %lld)", static_cast<long long>(held));
    pending = buf;
  }
  snprintf(buf, sizeof buf, "a thread is blocked on %s, and for %.0f ms no collector thread has been alive to serve it: ",
           pending.c_str(), blocked_ms);
  m += buf;
  m += w.roles.size() == 2 ? "both collector threads are dead or stalled (" : "every collector thread that can serve faults is dead or stalled (";
  for (size_t i = 0; i < w.roles.size(); i++) {
    int32_t b = __atomic_load_n(&w.beats[w.roles[i].slot], __ATOMIC_SEQ_CST);
    if (b == kIdle) snprintf(buf, sizeof buf, "%s%s: idle, out of the cycle", i ? "; " : "", w.roles[i].name.c_str());
    else if (b == kDead) snprintf(buf, sizeof buf, "%s%s: died", i ? "; " : "", w.roles[i].name.c_str());
    else snprintf(buf, sizeof buf, "%s%s: last heartbeat %lld ms ago", i ? "; " : "", w.roles[i].name.c_str(), static_cast<long long>(Age(w, b, now)));
    m += buf;
  }
  m += "). Installing a zero page instead would corrupt the heap: aborting.\n";
  WriteAll(m);
  abort();
}

void Run(Watchdog* w) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // the process's signals are not ours to take
  double since = -1;                           // start of the current blocked-and-unserved stretch
  double last = MonotonicMs();                 // this thread's last look
  std::unique_lock<std::mutex> lock(w->mu);
  Publish(*w, w->look_slot, Stamp(*w, last));
  for (;;) {
    w->cv.wait_for(lock, std::chrono::milliseconds(w->period_ms), [w] { return w->stopping; });
    if (w->stopping) break;
    double now = MonotonicMs();
    const double late = now - last - static_cast<double>(w->period_ms);  // past the planned look
    last = now;
    // Published first: a look this late means every thread stood still with us.
    if (late > static_cast<double>(w->still_ms)) Publish(*w, w->resumed_slot, Stamp(*w, now));
    Publish(*w, w->look_slot, Stamp(*w, now));
    struct pollfd p = {w->fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r < 0) continue;                              // EINTR/ENOMEM: look again next period
    if (p.revents & (POLLNVAL | POLLERR)) break;      // the descriptor is gone: nothing to watch
    // A gap in our own looks (the process was stopped: SIGSTOP, Ctrl-Z, a debugger; or this
    // thread was not scheduled) is no time the collector threads failed to serve in: every
    // thread stood still with us. The stretch starts again, and they get fatal_ms to beat.
    // (Counted across the gap, a stop longer than fatal_ms after any short stall aborted a
    // process that was merely stopped: found by an audit.)
    if (late > static_cast<double>(w->stale_ms)) {
      since = -1;
      continue;
    }
    bool blocked = r > 0 && (p.revents & POLLIN);
    const int64_t held = blocked ? -1 : HeldPage(*w);
    blocked = blocked || held >= 0;
    bool served = false;
    for (const Role& role : w->roles) {
      int32_t b = __atomic_load_n(&w->beats[role.slot], __ATOMIC_SEQ_CST);
      if (b != kIdle && b != kDead && Age(*w, b, now) <= w->stale_ms) served = true;
    }
    if (!blocked || served) {
      since = -1;
      continue;
    }
    if (since < 0) since = now;
    if (now - since > w->fatal_ms) Fatal(*w, now - since, now, held);
  }
  Publish(*w, w->look_slot, kIdle);  // no more looks: stalls are judged by age alone again
}

void Join(Watchdog* w) {
  {
    std::lock_guard<std::mutex> g(w->mu);
    w->stopping = true;
  }
  w->cv.notify_all();
  if (w->thread.joinable()) w->thread.join();
}

// Environment teardown (a heap never closed, or its Worker ending): join before the heap's
// memory and the heartbeat table can go.
void CleanupHook(void* arg) {
  Watchdog* w = static_cast<Watchdog*>(arg);
  Join(w);
  {
    std::lock_guard<std::mutex> g(*g_mu);
    g_dogs->erase(w->id);
  }
  napi_delete_reference(w->env, w->beats_ref);
  delete w;
}

// start(fd, beats: Int32Array, epochMs, slots: number[], names: string[], heapAddress,
//       capacity, periodMs, staleMs, fatalMs[, lookSlot, resumedSlot, stillMs[, heldSlot]]) -> id
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    ThrowArg(env, "ERR_INVALID_ARG_TYPE", "heartbeats must be an Int32Array");
  Napi::Int32Array beats = info[1].As<Napi::Int32Array>();
  RequireShared(env, beats, "heartbeats");  // the thread reads it until stop()
  if (info.Length() < 3 || !info[2].IsNumber()) ThrowArg(env, "ERR_INVALID_ARG_TYPE", "epochMs must be a number");
  double epoch = info[2].As<Napi::Number>().DoubleValue();
  if (!(epoch - epoch == 0)) ThrowArg(env, "ERR_OUT_OF_RANGE", "epochMs must be finite");  // NaN and infinities
  if (info.Length() < 5 || !info[3].IsArray() || !info[4].IsArray()) ThrowArg(env, "ERR_INVALID_ARG_TYPE", "slots and names must be arrays");
  Napi::Array slots = info[3].As<Napi::Array>(), names = info[4].As<Napi::Array>();
  if (slots.Length() == 0 || slots.Length() != names.Length()) ThrowArg(env, "ERR_OUT_OF_RANGE", "slots and names: as many, at least one");
  auto w = std::make_unique<Watchdog>();
  for (uint32_t i = 0; i < slots.Length(); i++) {
    Napi::Value s = slots.Get(i), n = names.Get(i);
    if (!s.IsNumber() || !n.IsString()) ThrowArg(env, "ERR_INVALID_ARG_TYPE", "slots must be numbers and names strings");
    const double slot = s.As<Napi::Number>().DoubleValue();  // NaN, 1.5: refused, not cast
    if (!(slot >= 0) || slot != static_cast<double>(static_cast<int64_t>(slot)) || slot >= static_cast<double>(beats.ElementLength()))
      ThrowArg(env, "ERR_OUT_OF_RANGE", "slot outside the heartbeat table");
    w->roles.push_back({static_cast<int>(slot), n.As<Napi::String>().Utf8Value()});
  }
  w->heap = ArgAddr(info, 5, "heapAddress");
  w->capacity = ArgAddr(info, 6, "capacity");
  w->period_ms = ArgIntIn(info, 7, "periodMs", 1, INT32_MAX);
  w->stale_ms = ArgIntIn(info, 8, "staleMs", 1, INT32_MAX);
  w->fatal_ms = ArgIntIn(info, 9, "fatalMs", 1, INT32_MAX);
  if (info.Length() > 10 && !info[10].IsUndefined()) {
    const int64_t n = static_cast<int64_t>(beats.ElementLength()) - 1;
    w->look_slot = static_cast<int>(ArgIntIn(info, 10, "lookSlot", 0, n));
    w->resumed_slot = static_cast<int>(ArgIntIn(info, 11, "resumedSlot", 0, n));
    w->still_ms = ArgIntIn(info, 12, "stillMs", 1, INT32_MAX);
  }
  if (info.Length() > 13 && !info[13].IsUndefined())
    w->held_slot = static_cast<int>(ArgIntIn(info, 13, "heldSlot", 0, static_cast<int64_t>(beats.ElementLength()) - 1));
  // The watchdog's own words (those given) apart from each other and from the roles' slots.
  const int own[] = {w->look_slot, w->resumed_slot, w->held_slot};
  for (size_t i = 0; i < 3; i++) {
    if (own[i] < 0) continue;
    bool apart = true;
    for (size_t j = 0; j < i; j++) apart = apart && own[j] != own[i];
    for (const Role& r : w->roles) apart = apart && r.slot != own[i];
    if (!apart) ThrowArg(env, "ERR_OUT_OF_RANGE", "lookSlot, resumedSlot and heldSlot must be words apart from each other and from the roles' slots");
  }
  w->env = env;
  w->fd = fd;
  w->beats = beats.Data();
  w->epoch = epoch;
  if (napi_create_reference(env, beats, 1, &w->beats_ref) != napi_ok) ThrowArg(env, "ERR_INTERNAL", "napi_create_reference failed");
  Watchdog* raw = w.release();
  {
    std::lock_guard<std::mutex> g(*g_mu);
    raw->id = g_next_id++;
    (*g_dogs)[raw->id] = raw;
  }
  try {
    raw->thread = std::thread(Run, raw);
  } catch (const std::system_error& e) {
    {
      std::lock_guard<std::mutex> g(*g_mu);
      g_dogs->erase(raw->id);
    }
    napi_delete_reference(env, raw->beats_ref);
    delete raw;
    ThrowErrno(env, "pthread_create", e.code().value());
  }
  pthread_setname_np(raw->thread.native_handle(), "movegc-watchdog");
  napi_add_env_cleanup_hook(env, CleanupHook, raw);
  return Napi::Number::New(env, raw->id);
}

// stop(id): stops and joins the watchdog. Unknown ids (already stopped) are ignored.
Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id = ArgIntIn(info, 0, "id", 0, INT32_MAX);
  Watchdog* w = nullptr;
  {
    std::lock_guard<std::mutex> g(*g_mu);
    auto it = g_dogs->find(static_cast<int>(id));
    if (it == g_dogs->end() || it->second->env != env) return env.Undefined();
    w = it->second;
    g_dogs->erase(it);
  }
  napi_remove_env_cleanup_hook(env, CleanupHook, w);
  Join(w);
  napi_delete_reference(env, w->beats_ref);
  delete w;
  return env.Undefined();
}

Napi::Value Running(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> g(*g_mu);
  size_t n = 0;
  for (auto& [id, w] : *g_dogs) n += w->env == info.Env();
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value Monotonic(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), MonotonicMs());
}

}  // namespace

void InitWatchdog(Napi::Env env, Napi::Object exports) {
  Napi::Object w = Napi::Object::New(env);
  w.Set("start", Fn<Start>(env, "start"));
  w.Set("stop", Fn<Stop>(env, "stop"));
  w.Set("running", Fn<Running>(env, "running"));
  w.Set("monotonicMs", Fn<Monotonic>(env, "monotonicMs"));
  exports.Set("watchdog", w);
}

}  // namespace movegc
