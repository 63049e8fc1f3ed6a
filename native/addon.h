#pragma once
#include <napi.h>

#include <string>

namespace movegc {
void InitMemory(Napi::Env env, Napi::Object exports);
void InitUserfaultfd(Napi::Env env, Napi::Object exports);
void InitPin(Napi::Env env, Napi::Object exports);
void InitProbe(Napi::Env env, Napi::Object exports);
void InitSandbox(Napi::Env env, Napi::Object exports);
void InitUring(Napi::Env env, Napi::Object exports);
void InitWatchdog(Napi::Env env, Napi::Object exports);
void InitBuild(Napi::Env env, Napi::Object exports);
void InitSched(Napi::Env env, Napi::Object exports);
void InitOwned(Napi::Env env, Napi::Object exports);

// What an environment opened and has not closed (owned.cc): released at its teardown.
enum class Owned { MAPPING, UFFD, RING, PIN };
void Own(napi_env env, Owned kind, uint64_t key, uint64_t len = 0);
void Disown(Owned kind, uint64_t key);
// Mappings: forgets [start, start+len) of whatever owned mappings it overlaps (munmap).
void DisownRange(uint64_t start, uint64_t len);
// Unregisters a ring's buffer, unmaps and closes it (uring.cc); unknown rings: nothing.
void ReleaseRing(int fd);
// Unregisters an io_uring's buffer (releasing its pin) and closes it (pin.cc): 0, or the
// unregistration's errno (the ring is closed either way).
int CloseRing(int ring);
// What a descriptor is: its /proc/self/fd link (e.g. "anon_inode:[userfaultfd]"), "" if not open (owned.cc).
std::string FdLink(int fd);

// Opens a userfaultfd: 0 syscall, 1 syscall + UFFD_USER_MODE_ONLY, 2 /dev/userfaultfd. fd or -errno.
int OpenUffd(int how);
// Reading faults and events (uffd_events.cc): registered on the `uffd` object.
void InitUffdEvents(Napi::Env env, Napi::Object uffd);
// Forgets events the fast path kept for fd (closing any FORK descriptor among them).
void DropStashedEvents(int fd);
}  // namespace movegc
