// movegc-cross-mm: the probe's child process (see probe.cc, crossMm). It holds the parent's
// userfaultfd as fd 3 and tries to MOVE a page of its own address space into the parent's
// registered range argv[1] (hex) of argv[2] bytes. Exit status: 0 if the kernel moved it,
// else the errno (255: could not even set up). A separate program, not a fork of Node: a
// fork would leave every anonymous page of the parent shared (non-exclusive), and its next
// UFFDIO_MOVE of such a page would fail with EBUSY.
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "uffd_compat.h"

int main(int argc, char** argv) {
  if (argc != 3) return 255;
  uint64_t dst = strtoull(argv[1], nullptr, 16);
  uint64_t len = strtoull(argv[2], nullptr, 10);
  void* src = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src == MAP_FAILED) return 255;
  memset(src, 0x5a, len);
  struct uffdio_move m = {dst, reinterpret_cast<uint64_t>(src), len, 0, 0};
  if (ioctl(3, UFFDIO_MOVE, &m) == 0) return 0;
  return errno > 0 && errno < 255 ? errno : 255;
}
