/**
 * A typed userfaultfd. Capabilities are checked when the object is built (as userfaultfd-rs
 * does): `open` performs the API handshake with the features asked for and fails with the
 * kernel's errno if any is missing, instead of a crash on first use.
 *
 * The descriptor is a plain fd, so a Worker can serve faults on the same userfaultfd via
 * {@link Userfaultfd.adopt} (a non-owning handle).
 */
import { ErrorCode, MoveGcError, einval, fromNative, outOfRange, shown } from './errors.js';
import { native } from './native.js';
import { checkFlags, checkInt, checkRange, readList, readOptions } from './validate.js';
import { typedArrayKind } from './values.js';

const C = native.uffd.constants;

/** How to obtain the descriptor; see the probe for which work here. */
export const OpenHow = Object.freeze({ syscall: 0, userModeOnly: 1, device: 2 } as const);
export type OpenHowName = keyof typeof OpenHow;

/** API feature bits (UFFD_FEATURE_*), by name. */
export const Feature = Object.freeze({
  PAGEFAULT_FLAG_WP: 1 << 0,
  EVENT_FORK: 1 << 1,
  EVENT_REMAP: 1 << 2,
  EVENT_REMOVE: 1 << 3,
  MISSING_HUGETLBFS: 1 << 4,
  MISSING_SHMEM: 1 << 5,
  EVENT_UNMAP: 1 << 6,
  SIGBUS: 1 << 7,
  THREAD_ID: 1 << 8,
  MINOR_HUGETLBFS: 1 << 9,
  MINOR_SHMEM: 1 << 10,
  EXACT_ADDRESS: 1 << 11,
  WP_HUGETLBFS_SHMEM: 1 << 12,
  WP_UNPOPULATED: 1 << 13,
  POISON: 1 << 14,
  WP_ASYNC: 1 << 15,
  MOVE: 1 << 16,
} as const);
export type FeatureName = keyof typeof Feature;

/** Ioctls a registration offers (bit = _UFFDIO_* number). */
export const Ioctl = Object.freeze({
  REGISTER: 0,
  UNREGISTER: 1,
  API: 0x3f,
  WAKE: 2,
  COPY: 3,
  ZEROPAGE: 4,
  MOVE: 5,
  WRITEPROTECT: 6,
  CONTINUE: 7,
  POISON: 8,
} as const);
export type IoctlName = keyof typeof Ioctl;

/** A 64-bit mask the kernel reported, as a number (bit 63, _UFFDIO_API's, survives the rounding). */
function maskOf(what: string, bits: unknown): number {
  if (typeof bits !== 'number') throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `${what}: a bit mask (a number), got ${shown(bits)}`);
  if (!Number.isInteger(bits) || bits < 0 || bits >= 2 ** 64) throw outOfRange(`${what}: a bit mask (an integer in [0, 2^64)), got ${bits}`);
  return bits;
}
export function featureNames(bits: number): FeatureName[] {
  const m = maskOf('featureNames(bits)', bits);
  return (Object.keys(Feature) as FeatureName[]).filter((k) => Math.floor(m / Feature[k]) % 2 === 1);
}
export function ioctlNames(bits: number): IoctlName[] {
  const m = maskOf('ioctlNames(bits)', bits);
  return (Object.keys(Ioctl) as IoctlName[]).filter((k) => Math.floor(m / 2 ** Ioctl[k]) % 2 === 1);
}

export interface MoveOptions {
  /** Don't wake threads waiting on the destination; a later wake() must. */
  dontWake?: boolean;
  /** Treat holes in the source as success (the destination stays missing there). */
  allowSrcHoles?: boolean;
}
/** COPY, ZEROPAGE, WRITEPROTECT (when clearing), CONTINUE and POISON. */
export interface WakeOptions {
  /** Don't wake threads waiting on the range; a later wake() must. */
  dontWake?: boolean;
}
export interface RegisterMode {
  /** Missing-page faults (the default). */
  missing?: boolean;
  /** Write-protect faults (resolve with writeProtect(..., false)). */
  wp?: boolean;
  /** Minor faults on shmem/hugetlbfs (resolve with continue()). */
  minor?: boolean;
}

/**
 * One record read from the userfaultfd. Page faults carry the kernel's flags (write, wp,
 * minor) and, with the THREAD_ID feature, the faulting thread's id. The other events come
 * only when their feature (EVENT_FORK, EVENT_REMAP, EVENT_REMOVE, EVENT_UNMAP) was requested,
 * and the thread that caused one waits in the kernel until it is read.
 */
export type UffdEvent =
  | { type: 'pagefault'; address: number; flags: number; write: boolean; wp: boolean; minor: boolean; tid?: number }
  /** A child was forked: its own userfaultfd, owned by the caller (close() it). */
  | { type: 'fork'; uffd: Userfaultfd }
  /** mremap: the registered range moved (from/to are the old and new starts). */
  | { type: 'remap'; from: number; to: number; length: number }
  /** madvise(DONTNEED/REMOVE) dropped [start, end). */
  | { type: 'remove'; start: number; end: number }
  /** munmap (or an mmap over it) removed [start, end). */
  | { type: 'unmap'; start: number; end: number }
  | { type: 'unknown'; event: number };

const NO_OPTIONS = Object.freeze({});
const MOVE_KEYS = ['dontWake', 'allowSrcHoles'] as const;
const WAKE_KEYS = ['dontWake'] as const;

/**
 * Repeats a MOVE/COPY step after short progress until `length` bytes are done. A failure is
 * rethrown with `bytesDone` counting everything done before it, across the calls.
 */
function untilDone(length: number, step: (done: number) => number): number {
  let done = 0;
  while (done < length) {
    try {
      done += step(done);
    } catch (e) {
      const err = fromNative(e);
      throw new MoveGcError(err.code, err.message, { errno: err.errno, syscall: err.syscall, bytesDone: done + (err.bytesDone ?? 0), cause: e });
    }
  }
  return done;
}

/** Only this module makes Userfaultfds (a constructor called from JavaScript could close any descriptor). */
const MAKE = Symbol('Userfaultfd');

export class Userfaultfd {
  readonly fd: number;
  /** Every feature the kernel reported in the handshake (not only those requested). */
  readonly features: number;
  readonly #owned: boolean;
  #closed = false;

  private constructor(make: symbol, fd: number, features: number, owned: boolean) {
    if (make !== MAKE) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a Userfaultfd is made by Userfaultfd.open() or Userfaultfd.adopt()');
    this.fd = fd;
    this.features = features;
    this.#owned = owned;
    Object.freeze(this); // (readonly in TypeScript only: an fd set from JavaScript closed another descriptor)
  }

  /** Opens a userfaultfd and performs the API handshake requesting `features`. */
  static open(opts: { how?: OpenHowName; features?: FeatureName[] } = {}): Userfaultfd {
    const o = readOptions('Userfaultfd.open options', opts, ['how', 'features']);
    const how = (o.how ?? 'syscall') as OpenHowName;
    if (typeof how !== 'string' || !Object.hasOwn(OpenHow, how)) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `unknown open method ${shown(how)}`);
    const features = readList('Userfaultfd.open options.features', o.features) as FeatureName[];
    let mask = 0;
    for (const f of features) {
      if (typeof f !== 'string' || !Object.hasOwn(Feature, f)) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `unknown userfaultfd feature ${shown(f)}`);
      mask |= Feature[f];
    }
    let fd: number;
    try {
      fd = native.uffd.open(OpenHow[how]);
    } catch (e) {
      throw fromNative(e, `userfaultfd open (${how})`);
    }
    try {
      const api = native.uffd.api(fd, mask);
      return new Userfaultfd(MAKE, fd, api.features, true);
    } catch (e) {
      native.uffd.close(fd);
      throw fromNative(e, `UFFDIO_API requesting [${features.join(', ')}]`);
    }
  }

  /**
   * A non-owning handle on a descriptor another thread opened (close() leaves it open): a
   * userfaultfd (checked), opened O_NONBLOCK as open() makes it (the caller's to ensure: the
   * readers assume it). The handle is valid while its owner keeps the descriptor open (the
   * caller's to ensure too: after the owner's close() the number may name another file).
   */
  static adopt(fd: number, features: number): Userfaultfd {
    checkInt('fd', fd, 0, 0x7fffffff);
    checkInt('features', features);
    const d = native.uffd.describe(fd);
    if (!d.userfaultfd) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `fd ${fd} is not a userfaultfd (${d.link || (d.open ? 'no procfs to name it' : 'not open')})`);
    return new Userfaultfd(MAKE, fd, features, false);
  }

  has(feature: FeatureName): boolean {
    return (this.features & Feature[feature]) !== 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #check(): void {
    if (this.#closed) throw new MoveGcError(ErrorCode.CLOSED, 'userfaultfd is closed');
  }

  /**
   * Flag options, read once (a snapshot: a getter cannot say one thing to the check and
   * another to the call); then #check again: a getter can close this object, and the
   * descriptor number, reused by the next open, would then reach another userfaultfd.
   */
  #opts<T extends object>(what: string, opts: T, keys: readonly string[]): T {
    if (opts === NO_OPTIONS) return opts;
    const o = readOptions(`${what} options`, opts, keys);
    checkFlags(what, o, keys);
    this.#check();
    return o as T;
  }

  /** Registers a range; returns the ioctls the kernel offers on it. */
  register(address: number, length: number, mode: RegisterMode = { missing: true }): IoctlName[] {
    this.#check();
    checkRange('UFFDIO_REGISTER', address, length);
    mode = this.#opts('UFFDIO_REGISTER mode', mode, ['missing', 'wp', 'minor']);
    const bits = (mode.missing !== false ? C.REGISTER_MODE_MISSING : 0) | (mode.wp ? C.REGISTER_MODE_WP : 0) | (mode.minor ? C.REGISTER_MODE_MINOR : 0);
    try {
      return ioctlNames(native.uffd.register(this.fd, address, length, bits));
    } catch (e) {
      throw fromNative(e);
    }
  }

  unregister(address: number, length: number): void {
    this.#check();
    checkRange('UFFDIO_UNREGISTER', address, length);
    try {
      native.uffd.unregister(this.fd, address, length);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * One UFFDIO_MOVE ioctl. Returns the bytes moved, which is less than `length` after a
   * short move (EAGAIN with progress): advance by it and call again to continue.
   */
  moveOnce(dst: number, src: number, length: number, opts: MoveOptions = NO_OPTIONS): number {
    this.#check();
    checkRange('UFFDIO_MOVE destination', dst, length);
    checkRange('UFFDIO_MOVE source', src, length);
    opts = this.#opts('UFFDIO_MOVE', opts, MOVE_KEYS);
    const mode = (opts.dontWake ? C.MOVE_MODE_DONTWAKE : 0) | (opts.allowSrcHoles ? C.MOVE_MODE_ALLOW_SRC_HOLES : 0);
    try {
      return native.uffd.move(this.fd, dst, src, length, mode);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Moves the whole range, continuing after short moves. A failure throws with
   * `bytesDone` = everything moved before it, across the continued calls.
   */
  move(dst: number, src: number, length: number, opts: MoveOptions = NO_OPTIONS): number {
    this.#check();
    checkRange('UFFDIO_MOVE destination', dst, length);
    checkRange('UFFDIO_MOVE source', src, length);
    opts = this.#opts('UFFDIO_MOVE', opts, MOVE_KEYS);
    return untilDone(length, (done) => this.moveOnce(dst + done, src + done, length - done, opts));
  }

  /** UFFDIO_COPY of the whole range (continuing after short copies). */
  copy(dst: number, src: number, length: number, opts: WakeOptions = NO_OPTIONS): number {
    this.#check();
    checkRange('UFFDIO_COPY destination', dst, length);
    checkRange('UFFDIO_COPY source', src, length);
    // The kernel reads the source as this thread: a source inside the destination (registered,
    // its pages missing) faults on a page only this call could fill, and the call never returned
    // (an audit; then a SIGTERM left the thread spinning in the kernel).
    if (src < dst + length && dst < src + length) throw einval(`UFFDIO_COPY: the source [0x${src.toString(16)}, +${length}) overlaps the destination [0x${dst.toString(16)}, +${length})`, 'UFFDIO_COPY');
    opts = this.#opts('UFFDIO_COPY', opts, WAKE_KEYS);
    const mode = opts.dontWake ? C.COPY_MODE_DONTWAKE : 0;
    return untilDone(length, (done) => native.uffd.copy(this.fd, dst + done, src + done, length - done, mode));
  }

  /** Maps the shared zero page at every missing page of the range. */
  zeropage(dst: number, length: number, opts: WakeOptions = NO_OPTIONS): number {
    this.#check();
    checkRange('UFFDIO_ZEROPAGE', dst, length);
    opts = this.#opts('UFFDIO_ZEROPAGE', opts, WAKE_KEYS);
    try {
      return native.uffd.zeropage(this.fd, dst, length, opts.dontWake ? C.ZEROPAGE_MODE_DONTWAKE : 0);
    } catch (e) {
      throw fromNative(e);
    }
  }

  wake(address: number, length: number): void {
    this.#check();
    checkRange('UFFDIO_WAKE', address, length);
    try {
      native.uffd.wake(this.fd, address, length);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Sets (`on`) or clears write protection on a range registered with `wp`. Clearing it
   * resolves write-protect faults: their writers are woken unless `dontWake`.
   */
  writeProtect(address: number, length: number, on: boolean, opts: WakeOptions = NO_OPTIONS): void {
    this.#check();
    checkRange('UFFDIO_WRITEPROTECT', address, length);
    if (typeof on !== 'boolean') throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `on must be a boolean, got ${typeof on}`);
    opts = this.#opts('UFFDIO_WRITEPROTECT', opts, WAKE_KEYS);
    const mode = (on ? C.WRITEPROTECT_MODE_WP : 0) | (opts.dontWake ? C.WRITEPROTECT_MODE_DONTWAKE : 0);
    try {
      native.uffd.writeProtect(this.fd, address, length, mode);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** UFFDIO_CONTINUE: resolves minor faults by mapping the pages already in the page cache. */
  continue(address: number, length: number, opts: WakeOptions = NO_OPTIONS): number {
    this.#check();
    checkRange('UFFDIO_CONTINUE', address, length);
    opts = this.#opts('UFFDIO_CONTINUE', opts, WAKE_KEYS);
    const mode = opts.dontWake ? C.CONTINUE_MODE_DONTWAKE : 0;
    return untilDone(length, (done) => native.uffd.cont(this.fd, address + done, length - done, mode));
  }

  /** UFFDIO_POISON: missing pages of the range read as hardware-poisoned (SIGBUS) from now on. */
  poison(address: number, length: number, opts: WakeOptions = NO_OPTIONS): number {
    this.#check();
    checkRange('UFFDIO_POISON', address, length);
    opts = this.#opts('UFFDIO_POISON', opts, WAKE_KEYS);
    const mode = opts.dontWake ? C.POISON_MODE_DONTWAKE : 0;
    return untilDone(length, (done) => native.uffd.poison(this.fd, address + done, length - done, mode));
  }

  /**
   * Reads pending page-fault addresses into `out`, waiting up to `timeoutMs` (0: don't
   * wait). Blocks the calling thread: call it from a thread that is not the one faulting.
   * The fault server's fast path: a non-fault event it meets (only where an EVENT_*
   * feature was requested) is kept for {@link readEvents}, see {@link stashedEvents}.
   */
  readFaults(out: Float64Array, timeoutMs = 0): number {
    this.#check();
    if (typedArrayKind(out) !== 'Float64Array') throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'out must be a Float64Array');
    checkInt('timeoutMs', timeoutMs, 0, 60_000);
    try {
      return native.uffd.readFaults(this.fd, timeoutMs, out);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Reads up to `max` full records (page faults with their flags, and non-fault events),
   * waiting up to `timeoutMs` (0: don't wait) when none is pending. Events the fast path
   * kept come first.
   */
  readEvents(timeoutMs = 0, max = 64): UffdEvent[] {
    this.#check();
    checkInt('timeoutMs', timeoutMs, 0, 60_000);
    checkInt('max', max, 1, 4096);
    let raw;
    try {
      raw = native.uffd.readEvents(this.fd, timeoutMs, max);
    } catch (e) {
      throw fromNative(e);
    }
    return raw.map((r): UffdEvent => (r.type === 'fork' ? { type: 'fork', uffd: new Userfaultfd(MAKE, r.ufd, this.features, true) } : r));
  }

  /** Non-fault events readFaults met and kept for the next readEvents on this descriptor. */
  get stashedEvents(): number {
    this.#check();
    return native.uffd.stashedEvents(this.fd);
  }

  /** Closes the descriptor (if owned). Idempotent. Waiting faulters are woken by the kernel. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) native.uffd.close(this.fd);
  }
}
