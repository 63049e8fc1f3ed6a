#include "errors.h"

#include <cmath>
#include <cstring>
#include <string>

namespace movegc {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

void ThrowErrno(Napi::Env env, const char* syscall, int err, const char* detail, int64_t bytes_done) {
  std::string msg = std::string(syscall) + " failed: " + ErrnoName(err) + " (" + strerror(err) + ")";
  if (detail) msg += std::string(": ") + detail;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (bytes_done >= 0) e.Set("bytesDone", Napi::Number::New(env, static_cast<double>(bytes_done)));
  throw e;
}

void ThrowNoMemory(Napi::Env env) {
  Napi::Error e = Napi::Error::New(env, "a native allocation failed: ENOMEM (Cannot allocate memory)");
  e.Set("code", Napi::String::New(env, "ENOMEM"));
  e.Set("errno", Napi::Number::New(env, ENOMEM));
  e.Set("syscall", Napi::String::New(env, "operator new"));
  throw e;
}

void ThrowArg(Napi::Env env, const char* code, const std::string& message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

static double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber())
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v))
    ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", std::string(name) + " must be an integer, got " + std::to_string(v));
  return v;
}

uint64_t ArgAddr(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double v = ArgNumber(info, i, name);
  if (v < 0 || v > 9007199254740991.0)
    ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", std::string(name) + " must be a non-negative safe integer");
  return static_cast<uint64_t>(v);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double v = ArgNumber(info, i, name);
  if (std::fabs(v) > 9007199254740991.0)
    ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", std::string(name) + " must be a safe integer");
  return static_cast<int64_t>(v);
}

int64_t ArgIntIn(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  int64_t v = ArgInt(info, i, name);
  if (v < lo || v > hi)
    ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

void RequireShared(Napi::Env env, Napi::TypedArray a, const char* name) {
  // Node-API in Node 20 cannot name a SharedArrayBuffer, but an ArrayBuffer it does know:
  // anything it calls one can be detached (or resized) under a cached pointer.
  bool plain = true;
  if (napi_is_arraybuffer(env, a.ArrayBuffer(), &plain) != napi_ok || plain)
    ThrowArg(env, "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a view over a SharedArrayBuffer");
}

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  int64_t fd = ArgInt(info, i, "fd");
  if (fd < 0 || fd > 0x7fffffff) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "fd must be a non-negative int");
  return static_cast<int>(fd);
}

}  // namespace movegc
