// The ranges this process registered with a userfaultfd through the binding, process-wide
// (any thread's). UFFDIO_COPY reads its source as the calling thread: a source page that is
// missing in a registered range faults inside the call, and unless another thread serves that
// range the call never returns (not even to SIGTERM: an audit saw it spin in the kernel).
// Copy refuses such a source. Registrations the kernel drops on its own (the range unmapped
// other than by this binding's munmap) may linger here: a later COPY from a new mapping at the
// same address is then refused, never a hang.
#include <cstdint>
#include <map>
#include <mutex>

#include "addon.h"

namespace movegc {
namespace {

struct Registered {
  uint64_t end;
  int fd;
};
// Never destroyed: a thread may still call in while the process exits.
std::mutex* const g_mu = new std::mutex;
std::map<uint64_t, Registered>* const g_ranges = new std::map<uint64_t, Registered>;

// Removes [s, e) from the ranges of fd (of any fd if fd < 0), keeping what lies outside it.
// Ranges never overlap (the kernel refuses to register a range with a second userfaultfd).
void Cut(uint64_t s, uint64_t e, int fd) {
  auto it = g_ranges->upper_bound(s);
  if (it != g_ranges->begin()) --it;
  while (it != g_ranges->end() && it->first < e) {
    const uint64_t a = it->first;
    const Registered r = it->second;
    if (r.end <= s || (fd >= 0 && r.fd != fd)) {
      ++it;
      continue;
    }
    it = g_ranges->erase(it);
    if (a < s) (*g_ranges)[a] = Registered{s, r.fd};
    if (r.end > e) (*g_ranges)[e] = Registered{r.end, r.fd};  // (it is past e: nothing else starts inside r)
  }
}

}  // namespace

void NoteRegistered(int fd, uint64_t start, uint64_t len) {
  std::lock_guard<std::mutex> g(*g_mu);
  Cut(start, start + len, fd);
  (*g_ranges)[start] = Registered{start + len, fd};
}

void NoteUnregistered(int fd, uint64_t start, uint64_t len) {
  std::lock_guard<std::mutex> g(*g_mu);
  Cut(start, start + len, fd);
}

void ForgetRegistrations(int fd) {
  std::lock_guard<std::mutex> g(*g_mu);
  for (auto it = g_ranges->begin(); it != g_ranges->end();) it = it->second.fd == fd ? g_ranges->erase(it) : std::next(it);
}

bool OverlapsRegistered(uint64_t start, uint64_t len) {
  std::lock_guard<std::mutex> g(*g_mu);
  const uint64_t end = start + len;
  auto it = g_ranges->upper_bound(start);
  if (it != g_ranges->begin() && std::prev(it)->second.end > start) return true;
  return it != g_ranges->end() && it->first < end;
}

}  // namespace movegc
