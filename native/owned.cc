// What each environment (the main thread, or one Worker) opened through the addon and has not
// closed yet: its mappings, userfaultfds, io_uring rings (I/O rings and pin rings) and forked
// children (pin.forkHold: a compactor terminated with its owner's Worker runs no finally). When the environment is torn
// down with some still open (a Worker that ends, or is terminated, without Heap.close()),
// they are released here, as the kernel releases everything at process exit. Without this a
// Worker that forgot close() left its heap's mappings and its userfaultfd to the process.
//
// The hook is registered when the addon loads in the environment, before anything it could
// release exists, and environment cleanup hooks run in reverse order: it runs after every
// later hook (a watchdog's, which joins the thread polling the userfaultfd) and after Node
// has stopped the environment's own Workers (the collector's threads), so nothing is using
// what it releases. A descriptor closed behind the addon's back and reused for something
// else is left alone: its kind is checked (FdIsA) before it is closed.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

namespace movegc {
namespace {

struct Entry {
  napi_env env;
  uint64_t len;  // mappings: their length
};

// Process-wide (the addon is loaded once per environment); by kind and address or fd.
std::mutex* g_mu = new std::mutex;                                  // never destroyed: hooks may run at exit
auto* g_owned = new std::map<std::pair<Owned, uint64_t>, Entry>;  // idem

void Release(Owned kind, uint64_t key, uint64_t len) {
  int fd = static_cast<int>(key);
  switch (kind) {
    case Owned::MAPPING:
      munmap(reinterpret_cast<void*>(key), len);
      break;
    case Owned::UFFD:
      DropStashedEvents(fd);
      ForgetRegistrations(fd);
      if (FdIsA(fd, "userfaultfd")) close(fd);
      break;
    case Owned::RING:
      if (FdIsA(fd, "io_uring")) ReleaseRing(fd);
      break;
    case Owned::PIN:
      if (FdIsA(fd, "io_uring")) CloseRing(fd);
      break;
    case Owned::CHILD:  // key: the pid; len: its pipe
      ReleaseChild(static_cast<int>(key), static_cast<int>(len));
      break;
  }
}

void Teardown(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  std::vector<std::pair<std::pair<Owned, uint64_t>, uint64_t>> mine;
  {
    std::lock_guard<std::mutex> g(*g_mu);
    for (auto it = g_owned->begin(); it != g_owned->end();) {
      if (it->second.env == env) {
        mine.push_back({it->first, it->second.len});
        it = g_owned->erase(it);
      } else {
        ++it;
      }
    }
  }
  // Descriptors first: a userfaultfd closed wakes any thread still blocked on its range.
  for (auto& [k, len] : mine)
    if (k.first != Owned::MAPPING) Release(k.first, k.second, len);
  for (auto& [k, len] : mine)
    if (k.first == Owned::MAPPING) Release(k.first, k.second, len);
}

Napi::Value Count(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> g(*g_mu);
  double n = 0;
  for (auto& [k, e] : *g_owned) n += e.env == static_cast<napi_env>(info.Env());
  return Napi::Number::New(info.Env(), n);
}

}  // namespace

std::string FdLink(int fd) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

bool FdIsA(int fd, const char* kind) {
  const std::string link = FdLink(fd);
  if (!link.empty()) return link.find(kind) != std::string::npos;
  if (fcntl(fd, F_GETFD) < 0) return false;  // not open
  if (access("/proc/self/fd", F_OK) == 0) return false;  // procfs answered: closed since, or no link
  // No procfs (a mount namespace without it): ask the descriptor. An empty range is refused by
  // a userfaultfd's UFFDIO_WAKE (EINVAL) and is an unknown request to anything else (ENOTTY);
  // io_uring_enter with nothing to submit or wait for succeeds on a ring only.
  if (strcmp(kind, "userfaultfd") == 0) {
    struct uffdio_range r = {0, 0};
    return ioctl(fd, UFFDIO_WAKE, &r) < 0 && errno == EINVAL;
  }
  if (strcmp(kind, "io_uring") == 0) return syscall(__NR_io_uring_enter, fd, 0, 0, 0, nullptr, 0) == 0;
  return false;
}

void Own(napi_env env, Owned kind, uint64_t key, uint64_t len) {
  std::lock_guard<std::mutex> g(*g_mu);
  (*g_owned)[{kind, key}] = Entry{env, len};
}

bool Disown(Owned kind, uint64_t key) {
  std::lock_guard<std::mutex> g(*g_mu);
  return g_owned->erase({kind, key}) > 0;
}

void DisownRange(uint64_t start, uint64_t len) {
  // A range given back in part keeps what is left of it on either side, and nothing more: a
  // teardown that unmapped the whole of it would take a mapping made since in the hole.
  const uint64_t end = start + len;
  std::lock_guard<std::mutex> g(*g_mu);
  std::vector<std::pair<uint64_t, Entry>> left;
  // Owned mappings come from fresh mmaps and leave only through here, so they never overlap:
  // the only one that can reach into the range from below is the last to start at or before
  // it. Found from there, O(log n): a walk of them all made each munmap O(n), and a process
  // holding 65k mappings spent 20 s in them (test/fixtures/map-count.mjs).
  auto it = g_owned->upper_bound({Owned::MAPPING, start});
  if (it != g_owned->begin() && std::prev(it)->first.first == Owned::MAPPING) --it;
  while (it != g_owned->end() && it->first.first == Owned::MAPPING && it->first.second < end) {
    const uint64_t a = it->first.second, b = a + it->second.len;
    if (b <= start) {
      ++it;
      continue;
    }
    if (a < start) left.push_back({a, Entry{it->second.env, start - a}});
    if (b > end) left.push_back({end, Entry{it->second.env, b - end}});
    it = g_owned->erase(it);
  }
  for (auto& [a, e] : left) (*g_owned)[{Owned::MAPPING, a}] = e;
}

void InitOwned(Napi::Env env, Napi::Object exports) {
  napi_add_env_cleanup_hook(env, Teardown, static_cast<napi_env>(env));
  // ownedCount(): what this environment has open through the addon (tests, diagnostics).
  exports.Set("ownedCount", Fn<Count>(env, "ownedCount"));
}

}  // namespace movegc
