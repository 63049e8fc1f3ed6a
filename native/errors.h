// Errors thrown to JavaScript carry a `code`: the errno name where the kernel said no
// (EBUSY, EEXIST, ...), or ERR_INVALID_ARG_* for bad arguments. TypeScript adds context.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstdint>
#include <new>

namespace movegc {

// Throws a JS Error {code: errno name, errno, syscall}. `extra` may add fields before the throw.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err,
                             const char* detail = nullptr, int64_t bytes_done = -1);
[[noreturn]] void ThrowArg(Napi::Env env, const char* code, const std::string& message);
const char* ErrnoName(int err);

// Argument readers: throw typed errors rather than letting a bad value reach a syscall.
uint64_t ArgAddr(const Napi::CallbackInfo& info, size_t i, const char* name);
int ArgFd(const Napi::CallbackInfo& info, size_t i);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name);
// ArgInt within [lo, hi]: a value that a narrower C type would truncate is refused, not cast.
int64_t ArgIntIn(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi);
// Throws unless the typed array's memory is a SharedArrayBuffer's: native code that keeps its
// pointer past the call (a table, a thread's heartbeats) must not see it detached or shrunk.
void RequireShared(Napi::Env env, Napi::TypedArray a, const char* name);

// An ENOMEM error for a C++ allocation that failed, built without allocating on the C++ heap.
[[noreturn]] void ThrowNoMemory(Napi::Env env);

// Every function the addon exports runs inside Guarded: an allocation that fails in it
// (std::bad_alloc: the process is out of memory, or its data limit or mappings are used up)
// becomes an ENOMEM error like a system call's. node-addon-api passes on only Napi::Error, so
// uncaught it aborted the process ("terminate called after throwing ... std::bad_alloc").
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const std::bad_alloc&) {
    ThrowNoMemory(info.Env());
  }
}

// The exported function `name`, guarded.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Function Fn(Napi::Env env, const char* name) {
  return Napi::Function::New(env, Guarded<F>, name);
}

}  // namespace movegc
