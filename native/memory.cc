// Memory: private anonymous mappings, ArrayBuffer views over them (from any thread),
// madvise, mremap(MREMAP_DONTUNMAP) and munmap. Addresses cross into JS as safe integers.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <cstring>
#include <memory>

#include <v8.h>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

namespace movegc {
namespace {

// mapAnonymous(len, align, shared): anonymous RW mapping whose start is aligned to `align`
// (a power of two >= the page size); private unless `shared` (shmem: minor faults, CONTINUE).
// Over-maps by `align` and trims both ends.
Napi::Value MapAnonymous(const Napi::CallbackInfo& info) {
  uint64_t len = ArgAddr(info, 0, "length");
  uint64_t align = info.Length() > 1 ? ArgAddr(info, 1, "alignment") : 4096;
  bool shared = info.Length() > 2 && info[2].ToBoolean().Value();
  long ps = sysconf(_SC_PAGESIZE);
  if (len == 0 || len % ps) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "length must be a non-zero multiple of the page size");
  if (align < (uint64_t)ps || (align & (align - 1)))
    ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "alignment must be a power of two >= the page size");
  size_t total = len + align;
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) ThrowErrno(info.Env(), "mmap", errno);
  uintptr_t raw = reinterpret_cast<uintptr_t>(p);
  uintptr_t start = (raw + align - 1) & ~(uintptr_t)(align - 1);
  if (start > raw) munmap(p, start - raw);
  uintptr_t end = start + len, raw_end = raw + total;
  if (raw_end > end) munmap(reinterpret_cast<void*>(end), raw_end - end);
  Own(info.Env(), Owned::MAPPING, start, len);
  return Napi::Number::New(info.Env(), static_cast<double>(start));
}

// view(addr, len): an ArrayBuffer over existing memory. The mapping owns the memory; the
// buffer must be detached (or its thread gone) before the mapping is unmapped.
//
// Made through V8's own API: Node-API refuses external buffers over 4 GiB ("Cannot create a
// Buffer larger than 0x100000000 bytes"), which V8 and typed arrays over them do not. A
// Node-API value is a V8 handle (js_native_api_v8.h: JsValueFromV8LocalValue is a cast), so
// the buffer crosses back as one.
Napi::Value View(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  if (addr == 0) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "address must not be 0");
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  // The mapping owns the memory, so nothing is freed; the deleter is V8's own, never code in
  // this addon: a Worker's isolate frees its buffers after Node has unloaded the addon from
  // that Worker, and a deleter here would then be a call into unmapped code (SIGSEGV).
  std::unique_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(reinterpret_cast<void*>(addr), len, v8::BackingStore::EmptyDeleter, nullptr);
  v8::Local<v8::ArrayBuffer> ab = v8::ArrayBuffer::New(isolate, std::move(store));
  static_assert(sizeof(napi_value) == sizeof(v8::Local<v8::Value>), "a Node-API value is a V8 handle");
  v8::Local<v8::Value> v = ab;
  napi_value nv;
  memcpy(&nv, &v, sizeof nv);
  return Napi::Value(info.Env(), nv);
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer())
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "expected an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (!ab.IsDetached()) ab.Detach();
  return info.Env().Undefined();
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  int advice = static_cast<int>(ArgIntIn(info, 2, "advice", 0, INT32_MAX));
  if (madvise(reinterpret_cast<void*>(addr), len, advice)) ThrowErrno(info.Env(), "madvise", errno);
  return info.Env().Undefined();
}

// mremapDontUnmap(old, len, new): move the pages of [old, old+len) to `new` (MAYMOVE|FIXED),
// leaving the old range mapped but empty. With the old range registered for MISSING faults
// first, any access to it now faults instead of reading a zero page (ART's ordering).
Napi::Value MremapDontUnmap(const Napi::CallbackInfo& info) {
  uint64_t old_addr = ArgAddr(info, 0, "oldAddress");
  uint64_t len = ArgAddr(info, 1, "length");
  uint64_t new_addr = ArgAddr(info, 2, "newAddress");
  void* r = mremap(reinterpret_cast<void*>(old_addr), len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                   reinterpret_cast<void*>(new_addr));
  if (r == MAP_FAILED) ThrowErrno(info.Env(), "mremap", errno, "MREMAP_DONTUNMAP");
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(r)));
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  if (munmap(reinterpret_cast<void*>(addr), len)) ThrowErrno(info.Env(), "munmap", errno);
  DisownRange(addr, len);
  NoteUnregistered(-1, addr, len);  // the kernel drops the registrations of what it unmaps
  return info.Env().Undefined();
}

// munlock(addr, len): from-space pages a program's mlock() of the heap came with (the pause's
// mremap carries VM_LOCKED along), unlocked so that they can be given back (MADV_DONTNEED
// refuses locked memory).
Napi::Value Munlock(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  if (munlock(reinterpret_cast<void*>(addr), len)) ThrowErrno(info.Env(), "munlock", errno);
  return info.Env().Undefined();
}

// mlock(addr, len): what a program may do to its heap (the tests' way to do it: the heap
// itself never locks memory).
Napi::Value Mlock(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  if (mlock(reinterpret_cast<void*>(addr), len)) ThrowErrno(info.Env(), "mlock", errno);
  return info.Env().Undefined();
}

// mprotect(addr, len, prot): the pause makes the heap read-write again (a program's mprotect
// would follow the pages to from-space, where the compactor writes); tests set other modes.
Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  int prot = static_cast<int>(ArgIntIn(info, 2, "prot", 0, PROT_READ | PROT_WRITE | PROT_EXEC));
  if (mprotect(reinterpret_cast<void*>(addr), len, prot)) ThrowErrno(info.Env(), "mprotect", errno);
  return info.Env().Undefined();
}

// residency(addr, len, out: Uint8Array): mincore's vector into `out` (bit 0 of a byte per
// page: present in memory), and how many are: RSS figures of one mapping rather than the
// whole process, and the compactor's holes (it calls this per run, so `out` is the caller's).
Napi::Value Residency(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  if (info.Length() < 3 || !info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "out must be a Uint8Array");
  Napi::Uint8Array out = info[2].As<Napi::Uint8Array>();
  long ps = sysconf(_SC_PAGESIZE);
  size_t n = (len + ps - 1) / ps;
  if (out.ElementLength() < n) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "out is shorter than the range's pages");
  if (mincore(reinterpret_cast<void*>(addr), len, out.Data())) ThrowErrno(info.Env(), "mincore", errno);
  double count = 0;
  for (size_t i = 0; i < n; i++) count += out[i] & 1;
  return Napi::Number::New(info.Env(), count);
}

// mapped(addr, len): throws ENOMEM unless every page of [addr, +len) is mapped. msync
// (MS_ASYNC) only walks the mappings: no vector, no fault, nothing written back for anonymous
// memory. For viewOf: a view of an unmapped range is a SIGSEGV at its first read.
Napi::Value Mapped(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgAddr(info, 0, "address");
  uint64_t len = ArgAddr(info, 1, "length");
  const uint64_t ps = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t start = addr & ~(ps - 1);
  if (msync(reinterpret_cast<void*>(start), addr + len - start, MS_ASYNC)) ThrowErrno(info.Env(), "msync", errno);
  return info.Env().Undefined();
}

// countLines(path): newlines in a file read to its end, or -1 if it cannot be opened or read.
// For /proc/self/maps (map-count.ts): the compaction pause counts the process's mappings, and
// this spares it a string of the whole file (0.2-0.6 ms at 300 mappings, most of it the
// kernel's own formatting).
Napi::Value CountLines(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Napi::Number::New(info.Env(), -1);
  static thread_local char buf[1 << 16];
  double lines = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) lines += static_cast<double>(std::count(buf, buf + n, '\n'));
  close(fd);
  return Napi::Number::New(info.Env(), n < 0 ? -1 : lines);
}

// Room under RLIMIT_AS and RLIMIT_DATA promised to collector threads not started yet, for the
// whole process: heaps created in several Workers at once each count the others' threads
// (address-space.ts). Module state in JavaScript is per isolate; the addon's is per process.
// Each environment's share is kept too: a Worker terminated between its promise and its
// unpromise (mid Heap.create) gives its share back in its teardown, or the room would stay
// promised to threads that never come. Never freed: Workers may tear down after exit starts.
std::mutex promiseMu;
double promisedAs = 0, promisedData = 0;
auto* const promisedBy = new std::unordered_map<napi_env, std::pair<double, double>>();

void GiveBack(napi_env env, double as, double data) {
  auto it = promisedBy->find(env);
  if (it == promisedBy->end()) return;
  as = std::min(as, it->second.first);
  data = std::min(data, it->second.second);
  it->second.first -= as;
  it->second.second -= data;
  promisedAs = std::max(0.0, promisedAs - as);
  promisedData = std::max(0.0, promisedData - data);
}

void PromiseTeardown(void* arg) {
  const napi_env env = static_cast<napi_env>(arg);
  std::lock_guard<std::mutex> g(promiseMu);
  GiveBack(env, INFINITY, INFINITY);
  promisedBy->erase(env);
}

// promise(needAs, needData, roomAs, roomData, threadsAs, threadsData) -> [ok, promisedAs,
// promisedData]: if what is already promised plus this need fits the room under each limit
// (Infinity: no limit), the threads' share is promised (ok 1); the totals are those seen.
Napi::Value Promise(const Napi::CallbackInfo& info) {
  double a[6];
  for (int i = 0; i < 6; i++) {
    if (info.Length() <= static_cast<size_t>(i) || !info[i].IsNumber()) ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "promise takes six numbers");
    a[i] = info[i].As<Napi::Number>().DoubleValue();
    if (std::isnan(a[i]) || (i >= 4 && (a[i] < 0 || !std::isfinite(a[i])))) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "promise: a number out of range");
  }
  std::lock_guard<std::mutex> g(promiseMu);
  const double seenAs = promisedAs, seenData = promisedData;
  const bool ok = seenAs + a[0] <= a[2] && seenData + a[1] <= a[3];
  if (ok) {
    promisedAs += a[4];
    promisedData += a[5];
    auto& mine = (*promisedBy)[static_cast<napi_env>(info.Env())];
    mine.first += a[4];
    mine.second += a[5];
  }
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, Napi::Number::New(info.Env(), ok ? 1 : 0));
  out.Set(1u, Napi::Number::New(info.Env(), seenAs));
  out.Set(2u, Napi::Number::New(info.Env(), seenData));
  return out;
}

// unpromise(threadsAs, threadsData): gives a promise back (its threads started, or failed to).
Napi::Value Unpromise(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE", "unpromise takes two numbers");
  const double as = info[0].As<Napi::Number>().DoubleValue(), data = info[1].As<Napi::Number>().DoubleValue();
  if (std::isnan(as) || std::isnan(data) || as < 0 || data < 0) ThrowArg(info.Env(), "ERR_OUT_OF_RANGE", "unpromise: a number out of range");
  std::lock_guard<std::mutex> g(promiseMu);
  GiveBack(info.Env(), as, data);  // only what this environment promised
  return info.Env().Undefined();
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
  exports.Set("mapAnonymous", Fn<MapAnonymous>(env, "mapAnonymous"));
  exports.Set("view", Fn<View>(env, "view"));
  exports.Set("detach", Fn<Detach>(env, "detach"));
  exports.Set("madvise", Fn<Madvise>(env, "madvise"));
  exports.Set("mremapDontUnmap", Fn<MremapDontUnmap>(env, "mremapDontUnmap"));
  exports.Set("munmap", Fn<Munmap>(env, "munmap"));
  exports.Set("munlock", Fn<Munlock>(env, "munlock"));
  exports.Set("mlock", Fn<Mlock>(env, "mlock"));
  exports.Set("residency", Fn<Residency>(env, "residency"));
  exports.Set("mapped", Fn<Mapped>(env, "mapped"));
  exports.Set("countLines", Fn<CountLines>(env, "countLines"));
  napi_add_env_cleanup_hook(env, PromiseTeardown, static_cast<napi_env>(env));
  exports.Set("promise", Fn<Promise>(env, "promise"));
  exports.Set("unpromise", Fn<Unpromise>(env, "unpromise"));
  exports.Set("mprotect", Fn<Mprotect>(env, "mprotect"));
  Napi::Object prot = Napi::Object::New(env);
  prot.Set("NONE", PROT_NONE);
  prot.Set("READ", PROT_READ);
  prot.Set("WRITE", PROT_WRITE);
  exports.Set("prot", prot);
  Napi::Object adv = Napi::Object::New(env);
  adv.Set("DONTNEED", MADV_DONTNEED);
  adv.Set("DONTFORK", MADV_DONTFORK);
  adv.Set("DOFORK", MADV_DOFORK);
  adv.Set("WIPEONFORK", MADV_WIPEONFORK);
  adv.Set("HUGEPAGE", MADV_HUGEPAGE);
  adv.Set("NOHUGEPAGE", MADV_NOHUGEPAGE);
  adv.Set("POPULATE_WRITE", MADV_POPULATE_WRITE);
  exports.Set("advice", adv);
}

}  // namespace movegc
