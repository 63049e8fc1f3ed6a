// Errors thrown to JavaScript carry a `code`: the errno name where the kernel said no
// (EBUSY, EEXIST, ...), or ERR_INVALID_ARG_* for bad arguments. TypeScript adds context.
#pragma once
#include <napi.h>
#include <cstdint>

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

}  // namespace movegc
