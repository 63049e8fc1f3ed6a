// A real restricted environment for tests: a seccomp filter that refuses userfaultfd the way
// a container runtime's default profile does, so the heap's fallback is exercised against the
// kernel saying no, not against a flag. Irreversible for the calling process (and, with
// SECCOMP_FILTER_FLAG_TSYNC, for every thread in it): call it only in a child process.
//
// The filter (classic BPF over struct seccomp_data):
//   arch != this build's AUDIT_ARCH         -> SECCOMP_RET_ERRNO | errno (no way around the
//                                              filter through another ABI, e.g. i386's int 0x80)
//   nr == __NR_userfaultfd (and its x32 nr) -> SECCOMP_RET_ERRNO | errno
//   nr == __NR_ioctl && (u32)args[1] == USERFAULTFD_IOC_NEW
//                                           -> SECCOMP_RET_ERRNO | errno  (/dev/userfaultfd too)
//   anything else                           -> allow
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "addon.h"
#include "errors.h"
#include "uffd_compat.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#if defined(__x86_64__)
#define MOVEGC_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define MOVEGC_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

namespace movegc {
namespace {

#ifdef MOVEGC_AUDIT_ARCH
// Installs a seccomp filter on every thread of the process (TSYNC), or throws with the errno.
void InstallFilter(Napi::Env env, struct sock_filter* filter, size_t n) {
  struct sock_fprog prog = {static_cast<unsigned short>(n), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) ThrowErrno(env, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (r < 0) ThrowErrno(env, "seccomp(SECCOMP_SET_MODE_FILTER)", errno);
  if (r > 0) ThrowErrno(env, "seccomp(SECCOMP_FILTER_FLAG_TSYNC)", ESRCH, ("thread " + std::to_string(r) + " could not be synchronized").c_str());
}
#endif

// denyUserfaultfd(errno): installs the filter; throws with the kernel's errno if it can't.
Napi::Value DenyUserfaultfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t err = ArgInt(info, 0, "errno");
  if (err < 1 || err > 4095) ThrowArg(env, "ERR_OUT_OF_RANGE", "errno must be in [1, 4095], got " + std::to_string(err));
#ifndef MOVEGC_AUDIT_ARCH
  ThrowErrno(env, "seccomp", ENOTSUP, "no seccomp filter for this architecture");
#else
  const uint32_t deny = SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA);
  const uint32_t nr_uffd = __NR_userfaultfd;
#if defined(__x86_64__)
  const uint32_t nr_uffd_x32 = __NR_userfaultfd | 0x40000000u;  // __X32_SYSCALL_BIT
#else
  const uint32_t nr_uffd_x32 = __NR_userfaultfd;
#endif
  // Jump offsets count from the next instruction: "jt/jf = target - (this + 1)".
  struct sock_filter filter[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MOVEGC_AUDIT_ARCH, 0, 6),  // other arch -> 8
      /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr_uffd, 4, 0),      // -> 8
      /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr_uffd_x32, 3, 0),  // -> 8
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),   // not ioctl -> 9
      // ioctl's cmd is an unsigned int: the low 32 bits of args[1] (little endian).
      /* 6 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + sizeof(uint64_t) * 1),
      /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, USERFAULTFD_IOC_NEW, 0, 1),  // other cmd -> 9
      /* 8 */ BPF_STMT(BPF_RET | BPF_K, deny),
      /* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  InstallFilter(env, filter, sizeof(filter) / sizeof(filter[0]));
  return env.Undefined();
#endif
}

// A filter under which one ioctl command fails with `errno` (everything else, the
// userfaultfd itself included, is allowed). Same shape as above.
void DenyIoctl(const Napi::CallbackInfo& info, uint32_t cmd) {
  Napi::Env env = info.Env();
  int64_t err = ArgInt(info, 0, "errno");
  if (err < 1 || err > 4095) ThrowArg(env, "ERR_OUT_OF_RANGE", "errno must be in [1, 4095], got " + std::to_string(err));
#ifndef MOVEGC_AUDIT_ARCH
  (void)cmd;
  ThrowErrno(env, "seccomp", ENOTSUP, "no seccomp filter for this architecture");
#else
  const uint32_t deny = SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA);
  struct sock_filter filter[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MOVEGC_AUDIT_ARCH, 0, 4),  // other arch -> 6
      /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),  // not ioctl -> 7
      /* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + sizeof(uint64_t) * 1),
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, cmd, 0, 1),  // other cmd -> 7
      /* 6 */ BPF_STMT(BPF_RET | BPF_K, deny),
      /* 7 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  InstallFilter(env, filter, sizeof(filter) / sizeof(filter[0]));
#endif
}

// denyUffdRegister(errno): ioctl(UFFDIO_REGISTER) fails: makes the compaction pause fail at its
// registration step, which tells the pause's two orders apart (test/reliability.mutations.test.ts).
Napi::Value DenyUffdRegister(const Napi::CallbackInfo& info) {
  DenyIoctl(info, static_cast<uint32_t>(UFFDIO_REGISTER));
  return info.Env().Undefined();
}

// denyUffdCopy(errno): ioctl(UFFDIO_COPY) fails, its ioctl bit still offered at registration.
Napi::Value DenyUffdCopy(const Napi::CallbackInfo& info) {
  DenyIoctl(info, static_cast<uint32_t>(UFFDIO_COPY));
  return info.Env().Undefined();
}

}  // namespace

void InitSandbox(Napi::Env env, Napi::Object exports) {
  Napi::Object s = Napi::Object::New(env);
  s.Set("denyUserfaultfd", Fn<DenyUserfaultfd>(env, "denyUserfaultfd"));
  s.Set("denyUffdRegister", Fn<DenyUffdRegister>(env, "denyUffdRegister"));
  s.Set("denyUffdCopy", Fn<DenyUffdCopy>(env, "denyUffdCopy"));
  exports.Set("sandbox", s);
}

}  // namespace movegc
