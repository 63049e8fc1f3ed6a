/**
 * The raw addon (native/): system calls only, typed. Use the wrappers in memory.ts, uffd.ts,
 * pin.ts and probe.ts, which validate arguments and turn failures into MoveGcError.
 * The addon is context-aware, so Workers load their own instance over the same memory.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

export interface RawProbeResult { ok: boolean; reason?: string }
export interface RawProbe {
  pageSize: number;
  open: { syscall: RawProbeResult; userModeOnly: RawProbeResult; device: RawProbeResult };
  openHow: 'syscall' | 'userModeOnly' | 'device' | null;
  api: RawProbeResult;
  features?: number;
  register: RawProbeResult;
  ioctls?: number;
  registerWp: RawProbeResult;
  testMove: RawProbeResult;
  mremapDontUnmap: RawProbeResult;
  thp: string;
}

/** The compiled page builder (native/build.cc); see build-native.ts. */
export interface NativePageBuilder {
  build(q: number, n: number, from: Uint32Array, dst: Uint32Array, dstU32: number): void;
}
export interface NativePageBuilderTables {
  live: Uint32Array;
  starts: Uint32Array;
  chunkNew: Uint32Array;
  pageFirst: Uint32Array;
  pageKind: Uint8Array;
  segments: Float64Array;
  types: Int32Array;
  ctl: Int32Array;
  ctlSegments: number;
  layout: { pageWords: number; segFields: number; strideWords: number };
}

export interface NativeBinding {
  pageSize: number;
  mapAnonymous(length: number, alignment: number): number;
  view(address: number, length: number): ArrayBuffer;
  detach(buffer: ArrayBuffer): void;
  madvise(address: number, length: number, advice: number): void;
  mremapDontUnmap(oldAddress: number, length: number, newAddress: number): number;
  munmap(address: number, length: number): void;
  residentPages(address: number, length: number): number;
  advice: { DONTNEED: number; DONTFORK: number; DOFORK: number; WIPEONFORK: number; HUGEPAGE: number; NOHUGEPAGE: number };
  uffd: {
    open(how: 0 | 1 | 2): number;
    api(fd: number, features: number): { features: number; ioctls: number };
    register(fd: number, address: number, length: number, mode: number): number;
    unregister(fd: number, address: number, length: number): void;
    move(fd: number, dst: number, src: number, length: number, mode: number): number;
    copy(fd: number, dst: number, src: number, length: number, mode: number): number;
    zeropage(fd: number, dst: number, length: number, mode: number): number;
    wake(fd: number, address: number, length: number): void;
    readFaults(fd: number, timeoutMs: number, out: Float64Array): number;
    close(fd: number): void;
    constants: {
      FEATURE_MOVE: number; REGISTER_MODE_MISSING: number; REGISTER_MODE_WP: number;
      MOVE_MODE_DONTWAKE: number; MOVE_MODE_ALLOW_SRC_HOLES: number; COPY_MODE_DONTWAKE: number;
      ZEROPAGE_MODE_DONTWAKE: number; IOCTL_MOVE_BIT: number;
    };
  };
  pin: {
    pinRange(address: number, length: number): number;
    unpin(ring: number): void;
    forkHold(): { pid: number; fd: number };
    release(pid: number, fd: number): void;
  };
  /** A minimal io_uring (native/uring.cc): rings mapped, one registered buffer, READ_FIXED. */
  uring: {
    setup(address: number, length: number): number;
    readFixed(ring: number, fd: number, offset: number, length: number, address: number): number;
    close(ring: number): void;
  };
  /** Restricted environments for tests (native/sandbox.cc); irreversible: child processes only. */
  sandbox: {
    /** seccomp filter (all threads): userfaultfd(2) and ioctl(USERFAULTFD_IOC_NEW) fail with `errno`. */
    denyUserfaultfd(errno: number): void;
  };
  probe(): RawProbe;
  PageBuilder: new (tables: NativePageBuilderTables) => NativePageBuilder;
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('movegc: package root (binding.gyp) not found');
    dir = up;
  }
}

const require = createRequire(import.meta.url);
export const native: NativeBinding = require(path.join(packageRoot(), 'build', 'Release', 'movegc.node'));
export const PAGE_SIZE: number = native.pageSize;
