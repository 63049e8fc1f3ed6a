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
// CHILD: a process forked to share the heap's pages (pin.forkHold); key its pid, len its pipe's fd.
enum class Owned { MAPPING, UFFD, RING, PIN, CHILD };
void Own(napi_env env, Owned kind, uint64_t key, uint64_t len = 0);
// True if it was owned (and is no longer): whoever disowns it releases it, once.
bool Disown(Owned kind, uint64_t key);
// Closes a forked child's pipe (it exits on EOF) and reaps it (pin.cc).
void ReleaseChild(int pid, int fd);
// Mappings: forgets [start, start+len) of whatever owned mappings it overlaps (munmap).
void DisownRange(uint64_t start, uint64_t len);
// Unregisters a ring's buffer, unmaps and closes it (uring.cc); unknown rings: nothing.
void ReleaseRing(int fd);
// Unregisters an io_uring's buffer (releasing its pin) and closes it (pin.cc): 0, or the
// unregistration's errno (the ring is closed either way).
int CloseRing(int ring);
// What a descriptor is: its /proc/self/fd link (e.g. "anon_inode:[userfaultfd]"), "" if not open
// or if there is no procfs (owned.cc).
std::string FdLink(int fd);
// Whether fd is open and a `kind` ("userfaultfd" or "io_uring"): by its link where procfs
// answers, else by a call only that kind accepts and that changes nothing (owned.cc).
bool FdIsA(int fd, const char* kind);

// The ranges registered with a userfaultfd through the binding (registered.cc): noted at
// register, cut at unregister and munmap (fd -1: whichever), forgotten with their descriptor.
void NoteRegistered(int fd, uint64_t start, uint64_t len);
void NoteUnregistered(int fd, uint64_t start, uint64_t len);
void ForgetRegistrations(int fd);
bool OverlapsRegistered(uint64_t start, uint64_t len);

// Opens a userfaultfd: 0 syscall, 1 syscall + UFFD_USER_MODE_ONLY, 2 /dev/userfaultfd. fd or -errno.
int OpenUffd(int how);
// Reading faults and events (uffd_events.cc): registered on the `uffd` object.
void InitUffdEvents(Napi::Env env, Napi::Object uffd);
// Forgets events the fast path kept for fd (closing any FORK descriptor among them).
void DropStashedEvents(int fd);
}  // namespace movegc
