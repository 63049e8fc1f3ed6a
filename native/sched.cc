// Scheduling class of the calling thread (sched_setscheduler with pid 0 = this thread).
// The collector's threads can run as SCHED_IDLE: the scheduler then treats a CPU running only
// them as idle, places any waking thread there and lets it preempt at once, so the mutator
// never queues behind a collector thread for a time slice. Which threads ask for it is
// decided in TypeScript (gc/threads.ts); this only makes the call.
#include <errno.h>
#include <sched.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace movegc {
namespace {

int PolicyOf(const std::string& name) {
  if (name == "normal") return SCHED_OTHER;
  if (name == "idle") return SCHED_IDLE;
  return -1;
}

// setThreadPolicy('normal' | 'idle'): for the calling thread only.
Napi::Value SetThreadPolicy(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "policy must be 'normal' or 'idle'");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int policy = PolicyOf(name);
  if (policy < 0) ThrowArg(info.Env(), "ERR_INVALID_ARG_VALUE", "policy must be 'normal' or 'idle', got '" + name + "'");
  struct sched_param p = {};
  if (sched_setscheduler(0, policy, &p) != 0) ThrowErrno(info.Env(), "sched_setscheduler", errno);
  return info.Env().Undefined();
}

}  // namespace

void InitSched(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadPolicy", Napi::Function::New(env, SetThreadPolicy, "setThreadPolicy"));
}

}  // namespace movegc
