/**
 * The raw addon (native/): system calls only, typed. Use the wrappers in memory.ts, uffd.ts,
 * pin.ts and probe.ts, which validate arguments and turn failures into MoveGcError.
 * The addon is context-aware, so Workers load their own instance over the same memory.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import { ErrorCode, MoveGcError } from './errors.js';

export interface RawProbeResult { ok: boolean; reason?: string; detail?: string }
/** A record read from a userfaultfd (native/uffd_events.cc). */
export type RawEvent =
  | { type: 'pagefault'; address: number; flags: number; write: boolean; wp: boolean; minor: boolean; tid?: number }
  | { type: 'fork'; ufd: number }
  | { type: 'remap'; from: number; to: number; length: number }
  | { type: 'remove' | 'unmap'; start: number; end: number }
  | { type: 'unknown'; event: number };
export interface RawProbe {
  pageSize: number;
  open: { syscall: RawProbeResult; userModeOnly: RawProbeResult; device: RawProbeResult };
  openHow: 'syscall' | 'userModeOnly' | 'device' | null;
  api: RawProbeResult;
  features?: number;
  /** Of `features`, the bits a handshake asking for each alone was refused (EPERM: EVENT_FORK without CAP_SYS_PTRACE). */
  featuresRefused?: number;
  register: RawProbeResult;
  ioctls?: number;
  registerWp: RawProbeResult;
  testMove: RawProbeResult;
  testCopy: RawProbeResult;
  /** Made once per process (a child process; an io_uring pin), unless the process was out of descriptors or memory. */
  crossMm: RawProbeResult;
  pinsRefused: RawProbeResult;
  mremapDontUnmap: RawProbeResult;
  thp: string;
}

/** The compiled page builder (native/build.cc); see build-native.ts. */
export interface NativePageBuilder {
  /** Undefined, or the malformed objects met (build.ts MalformedTally): [count, first word]. */
  build(q: number, n: number, from: Uint32Array, dst: Uint32Array, dstU32: number): [number, number] | undefined;
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
  /** Every constant build.cc shares, by name (build-native.ts BUILD_LAYOUT); each is checked. */
  layout: Readonly<Record<string, number | Readonly<Record<string, number>>>>;
}

export interface NativeBinding {
  pageSize: number;
  /** Mappings, userfaultfds and rings this thread opened and has not closed (native/owned.cc: released when the thread ends). */
  ownedCount(): number;
  mapAnonymous(length: number, alignment: number, shared?: boolean): number;
  view(address: number, length: number): ArrayBuffer;
  detach(buffer: ArrayBuffer): void;
  madvise(address: number, length: number, advice: number): void;
  munlock(address: number, length: number): void;
  /** Tests only: a program's lock on its heap. */
  mlock(address: number, length: number): void;
  mremapDontUnmap(oldAddress: number, length: number, newAddress: number): number;
  munmap(address: number, length: number): void;
  mprotect(address: number, length: number, prot: number): void;
  prot: { NONE: number; READ: number; WRITE: number };
  /** mincore: bit 0 of out[i] says page i of the range is present; returns how many are. */
  residency(address: number, length: number, out: Uint8Array): number;
  mapped(address: number, length: number): void;
  /** Newlines in the file at `path`, read to its end; -1 if it cannot be opened or read. */
  countLines(path: string): number;
  /** Room under the address-space and data limits promised to collector threads not started yet, process-wide (address-space.ts). */
  promise(needAs: number, needData: number, roomAs: number, roomData: number, threadsAs: number, threadsData: number): [number, number, number];
  unpromise(threadsAs: number, threadsData: number): void;
  advice: { DONTNEED: number; DONTFORK: number; DOFORK: number; WIPEONFORK: number; HUGEPAGE: number; NOHUGEPAGE: number; POPULATE_WRITE: number };
  uffd: {
    open(how: 0 | 1 | 2): number;
    api(fd: number, features: number): { features: number; ioctls: number };
    register(fd: number, address: number, length: number, mode: number): number;
    unregister(fd: number, address: number, length: number): void;
    move(fd: number, dst: number, src: number, length: number, mode: number): number;
    copy(fd: number, dst: number, src: number, length: number, mode: number): number;
    zeropage(fd: number, dst: number, length: number, mode: number): number;
    wake(fd: number, address: number, length: number): void;
    writeProtect(fd: number, address: number, length: number, mode: number): void;
    cont(fd: number, address: number, length: number, mode: number): number;
    poison(fd: number, address: number, length: number, mode: number): number;
    readFaults(fd: number, timeoutMs: number, out: Float64Array): number;
    readEvents(fd: number, timeoutMs: number, max: number): RawEvent[];
    stashedEvents(fd: number): number;
    close(fd: number): void;
    /** What the descriptor is: its /proc/self/fd link ("" if not open or without procfs), whether it is open, whether it is a userfaultfd. */
    describe(fd: number): { link: string; open: boolean; userfaultfd: boolean };
    constants: {
      FEATURE_MOVE: number; REGISTER_MODE_MISSING: number; REGISTER_MODE_WP: number; REGISTER_MODE_MINOR: number;
      WRITEPROTECT_MODE_WP: number; WRITEPROTECT_MODE_DONTWAKE: number; CONTINUE_MODE_DONTWAKE: number; POISON_MODE_DONTWAKE: number;
      MOVE_MODE_DONTWAKE: number; MOVE_MODE_ALLOW_SRC_HOLES: number; COPY_MODE_DONTWAKE: number;
      ZEROPAGE_MODE_DONTWAKE: number; IOCTL_MOVE_BIT: number;
    };
  };
  pin: {
    pinRange(address: number, length: number): number;
    unpin(ring: number): void;
    /** With `record`: pid and fd also stored at those indexes before it returns (native/pin.cc). */
    forkHold(record?: Int32Array, pidAt?: number, fdAt?: number): { pid: number; fd: number };
    release(pid: number, fd: number): void;
  };
  /** A minimal io_uring (native/uring.cc): rings mapped, one registered buffer, READ_FIXED. */
  uring: {
    setup(address: number, length: number): number;
    readFixed(ring: number, fd: number, offset: number, length: number, address: number, timeoutMs: number): number;
    close(ring: number): void;
  };
  /** Restricted environments for tests (native/sandbox.cc); irreversible: child processes only. */
  sandbox: {
    /** seccomp filter (all threads): userfaultfd(2) and ioctl(USERFAULTFD_IOC_NEW) fail with `errno`. */
    denyUserfaultfd(errno: number): void;
    /** seccomp filter (all threads): ioctl(UFFDIO_REGISTER) fails with `errno`. */
    denyUffdRegister(errno: number): void;
    denyUffdCopy(errno: number): void;
  };
  /** The heap's last resort when no collector thread can serve a fault (native/watchdog.cc). */
  watchdog: {
    start(fd: number, heartbeats: Int32Array, epochMs: number, slots: number[], names: string[], heapAddress: number, capacity: number, periodMs: number, staleMs: number, fatalMs: number, lookSlot?: number, resumedSlot?: number, stillMs?: number, heldSlot?: number): number;
    stop(id: number): void;
    /** Watchdogs running in this thread's environment. */
    running(): number;
    /** CLOCK_MONOTONIC in ms: the clock heartbeats are written in. */
    monotonicMs(): number;
  };
  probe(): RawProbe;
  /** Scheduling class (native/sched.cc) of the calling thread, or of thread `tid` of this process (ESRCH if it is not one). */
  setThreadPolicy(policy: 'normal' | 'idle' | 'batch', tid?: number): void;
  /** The calling thread's id (gettid). */
  threadId(): number;
  /** The calling thread's name (prctl PR_SET_NAME; 1-15 bytes), as top -H and ps -L show it. */
  setThreadName(name: string): void;
  /** Whether thread `tid` of this process still exists (tgkill signal 0; no procfs needed). */
  threadAlive(tid: number): boolean;
  /** '' if a thread made SCHED_IDLE can be made normal again here, else the errno name that refused (tried on a thread of its own). */
  idleUndoable(): string;
  PageBuilder: new (tables: NativePageBuilderTables) => NativePageBuilder;
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new MoveGcError(ErrorCode.ADDON_UNAVAILABLE, 'movegc: package root (binding.gyp) not found beside the compiled library');
    dir = up;
  }
}

/** What to do when the addon is missing or does not load: one line, no build log or stack. */
export const ADDON_HINT = 'it is built at install and needs python3, make and g++; install them, then run `npm rebuild movegc`';

function loadAddon(): NativeBinding {
  const file = path.join(packageRoot(), 'build', 'Release', 'movegc.node');
  if (!fs.existsSync(file)) throw new MoveGcError(ErrorCode.ADDON_UNAVAILABLE, `movegc: native addon not built (${file} is missing): ${ADDON_HINT}`);
  try {
    return createRequire(import.meta.url)(file) as NativeBinding;
  } catch (e) {
    throw new MoveGcError(ErrorCode.ADDON_UNAVAILABLE, `movegc: native addon did not load (${(e as Error).message.split('\n')[0]}): ${ADDON_HINT}`, { cause: e });
  }
}

export const native: NativeBinding = loadAddon();
export const PAGE_SIZE: number = native.pageSize;
