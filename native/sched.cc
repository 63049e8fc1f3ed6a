// Scheduling class of the calling thread (sched_setscheduler with pid 0 = this thread).
// The collector's threads can run as SCHED_BATCH (woken, they never preempt the running
// thread: the mutator that woke them keeps its CPU) or SCHED_IDLE (the scheduler treats a CPU
// running only them as idle, places any waking thread there and lets it preempt at once).
// Which threads ask for it is decided in TypeScript (gc/threads.ts); this only makes the call.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <thread>

#include "addon.h"
#include "errors.h"

namespace movegc {
namespace {

int PolicyOf(const std::string& name) {
  if (name == "normal") return SCHED_OTHER;
  if (name == "idle") return SCHED_IDLE;
  if (name == "batch") return SCHED_BATCH;
  return -1;
}

// setThreadPolicy('normal' | 'idle' | 'batch'[, tid]): for the calling thread, or for thread
// `tid` of this process (a stalled SCHED_IDLE thread made normal so that it can run to its
// termination).
Napi::Value SetThreadPolicy(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "policy must be 'normal', 'idle' or 'batch'");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int policy = PolicyOf(name);
  if (policy < 0) ThrowArg(info.Env(), "ERR_INVALID_ARG_VALUE", "policy must be 'normal', 'idle' or 'batch', got '" + name + "'");
  pid_t tid = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    const int64_t t = ArgInt(info, 1, "tid");
    if (t < 1 || t > 0x7fffffff) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "tid must be a thread id of this process");
    tid = static_cast<pid_t>(t);
    if (tgkill(getpid(), tid, 0) != 0) ThrowErrno(info.Env(), "tgkill", errno);  // not one of ours: ESRCH
  }
  struct sched_param p = {};
  if (sched_setscheduler(tid, policy, &p) != 0) ThrowErrno(info.Env(), "sched_setscheduler", errno);
  return info.Env().Undefined();
}

// threadId(): the calling thread's id (gettid), for setThreadPolicy from another thread.
Napi::Value ThreadId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gettid()));
}

// setThreadName(name): the calling thread's name (what top -H, ps -L and perf show), so a
// collector thread can be told from V8's and libuv's, all named "node". At most 15 bytes.
Napi::Value SetThreadName(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() > 15 || name.find('\0') != std::string::npos)
    ThrowArg(info.Env(), "ERR_INVALID_ARG_VALUE", "name must be 1 to 15 bytes, without NUL");
  if (prctl(PR_SET_NAME, name.c_str(), 0, 0, 0) != 0) ThrowErrno(info.Env(), "prctl", errno);
  return info.Env().Undefined();
}

// threadAlive(tid): whether thread `tid` of this process still exists (tgkill's signal 0:
// ESRCH once it has exited). What /proc/self/task says, without procfs.
Napi::Value ThreadAlive(const Napi::CallbackInfo& info) {
  const int64_t t = ArgInt(info, 0, "tid");
  if (t < 1 || t > 0x7fffffff) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "tid must be a thread id");
  const bool gone = tgkill(getpid(), static_cast<pid_t>(t), 0) != 0 && errno == ESRCH;
  return Napi::Boolean::New(info.Env(), !gone);
}

// idleUndoable(): '' if a thread of this process that made itself SCHED_IDLE can be made
// normal again, else the errno name that refused it. Tried on a thread of its own, which
// exits at once: leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE headroom (sched(7)).
// That thread may itself be refused (RLIMIT_NPROC): its errno, not an abort.
Napi::Value IdleUndoable(const Napi::CallbackInfo& info) {
  int err = 0;
  try {
    std::thread t([&err] {
      struct sched_param p = {};
      if (sched_setscheduler(0, SCHED_IDLE, &p) != 0) err = errno;
      else if (sched_setscheduler(0, SCHED_OTHER, &p) != 0) err = errno;
    });
    t.join();
  } catch (const std::system_error& e) {
    err = e.code().value();
  }
  return Napi::String::New(info.Env(), err == 0 ? "" : ErrnoName(err));
}

}  // namespace

void InitSched(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadPolicy", Fn<SetThreadPolicy>(env, "setThreadPolicy"));
  exports.Set("threadId", Fn<ThreadId>(env, "threadId"));
  exports.Set("setThreadName", Fn<SetThreadName>(env, "setThreadName"));
  exports.Set("threadAlive", Fn<ThreadAlive>(env, "threadAlive"));
  exports.Set("idleUndoable", Fn<IdleUndoable>(env, "idleUndoable"));
}

}  // namespace movegc
