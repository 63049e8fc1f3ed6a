/**
 * Private anonymous mappings seen from JavaScript as ArrayBuffers over the same memory.
 * A Mapping owns its range: close() detaches the views it handed out, then unmaps.
 * Workers get their own view with {@link viewOf} (an ArrayBuffer cannot cross threads
 * over foreign memory, but the address can).
 */
import fs from 'node:fs';
import os from 'node:os';
import { markAsUntransferable } from 'node:worker_threads';
import { ErrorCode, MoveGcError, einval, fromNative, shown } from './errors.js';
import { native, PAGE_SIZE } from './native.js';
import { checkFlags, checkInt, checkRange, readList, readOptions } from './validate.js';

export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;
/**
 * The largest view: a Uint32Array of 2^32 elements (V8's TypedArray::kMaxLength). The buffer
 * is made through V8 (native/memory.cc: Node-API stops at 4 GiB); a Uint8Array over more than
 * 4 GiB is refused, so the heap reads bytes through a DataView.
 */
export const MAX_VIEW_BYTES = 2 ** 34;

export const Advice = Object.freeze({
  DONTNEED: native.advice.DONTNEED,
  DONTFORK: native.advice.DONTFORK,
  DOFORK: native.advice.DOFORK,
  WIPEONFORK: native.advice.WIPEONFORK,
  HUGEPAGE: native.advice.HUGEPAGE,
  NOHUGEPAGE: native.advice.NOHUGEPAGE,
} as const);
export type AdviceName = keyof typeof Advice;

export interface MapOptions {
  /** Start alignment, a power of two >= the page size (2 MiB lets THP and PMD moves work). */
  alignment?: number;
  /** madvise advice applied right after mapping. */
  advise?: AdviceName[];
  /** MAP_SHARED (shmem) instead of private: for minor faults and UFFDIO_CONTINUE. MOVE needs private. */
  shared?: boolean;
}

/**
 * V8 compiles typed-array accesses without a check for a detached buffer until an ArrayBuffer
 * of the isolate is first detached (its ArrayBuffer-detaching protector), then deoptimizes
 * every function compiled so, at once. close() detaches the views it handed out, so the first
 * close in a process (the warm-up's rehearsal heap, inside the first Heap.create) threw away
 * what the warm-up had optimized (--trace-deopt: about 30 functions, forward and the accessors'
 * paths among them), and the first cycles ran unoptimized: the art demo's flip extended its
 * plan in 5.8 ms instead of 0.1. A throwaway buffer detached as this module loads has V8 emit
 * the checks from the start.
 */
function armDetachChecks(): void {
  const ab = new ArrayBuffer(8);
  structuredClone(ab, { transfer: [ab] });
}
armDetachChecks();

/** Only this module makes Mappings (a constructor called from JavaScript with any address would read outside any mapping). */
const MAKE = Symbol('Mapping');

/**
 * A view over mapped memory: never transferable. A transfer (postMessage, structuredClone)
 * would make a second buffer over the same memory that no close() can detach, and reading it
 * once the range is unmapped is a SIGSEGV; marked, it is copied instead.
 */
function viewAt(address: number, length: number): ArrayBuffer {
  const ab = native.view(address, length);
  markAsUntransferable(ab);
  return ab;
}

/** Known advice, by own name only (not `toString` or another name of the object's prototype). */
function adviceOf(advice: unknown): number {
  if (typeof advice !== 'string' || !Object.hasOwn(Advice, advice)) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `unknown advice ${shown(advice)} (expected ${Object.keys(Advice).join(', ')})`);
  return Advice[advice as AdviceName];
}

export class Mapping {
  readonly address: number;
  readonly length: number;
  /** The views handed out, held weakly (a view dropped by its caller has nothing to detach). */
  #views: Array<WeakRef<ArrayBuffer>> = [];
  #viewsPruneAt = 64;
  #closed = false;

  private constructor(make: symbol, address: number, length: number) {
    if (make !== MAKE) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a Mapping is made by Mapping.anonymous()');
    this.address = address;
    this.length = length;
    Object.freeze(this); // (readonly in TypeScript only: an address set from JavaScript unmapped another mapping)
  }

  static anonymous(length: number, opts: MapOptions = {}): Mapping {
    checkInt('length', length, 1);
    if (length % PAGE_SIZE) throw einval(`length ${length} is not a multiple of the page size`, 'mmap');
    const o = readOptions('Mapping.anonymous options', opts, ['alignment', 'advise', 'shared']);
    const alignment = checkInt('alignment', o.alignment ?? PAGE_SIZE, PAGE_SIZE);
    if (alignment & (alignment - 1)) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `alignment ${alignment} is not a power of two`);
    checkFlags('Mapping.anonymous options', o, ['shared']);
    const advise = readList('Mapping.anonymous options.advise', o.advise);
    for (const a of advise) adviceOf(a); // all known before anything is mapped
    let addr: number;
    try {
      addr = native.mapAnonymous(length, alignment, o.shared === true);
    } catch (e) {
      throw fromNative(e, 'mmap');
    }
    const m = new Mapping(MAKE, addr, length);
    try {
      for (const a of advise) m.advise(a as AdviceName);
    } catch (e) {
      m.close();
      throw e;
    }
    return m;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #check(): void {
    if (this.#closed) throw new MoveGcError(ErrorCode.CLOSED, 'mapping is closed');
  }

  /** An ArrayBuffer over [address+offset, +length); detached when the mapping closes. */
  view(offset = 0, length?: number): ArrayBuffer {
    this.#check();
    checkInt('offset', offset, 0, this.length);
    if (length === undefined) length = this.length - offset;
    checkInt('length', length, 1, Math.min(this.length - offset, MAX_VIEW_BYTES));
    const ab = viewAt(this.address + offset, length);
    this.#views.push(new WeakRef(ab));
    if (this.#views.length >= this.#viewsPruneAt) {
      this.#views = this.#views.filter((r) => r.deref() !== undefined);
      this.#viewsPruneAt = Math.max(64, 2 * this.#views.length);
    }
    return ab;
  }

  advise(advice: AdviceName, offset = 0, length?: number): void {
    this.#check();
    const a = adviceOf(advice);
    checkInt('offset', offset, 0, this.length);
    if (length === undefined) length = this.length - offset;
    checkRange(`madvise(${advice})`, this.address + offset, length);
    if (offset + length > this.length) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, 'madvise range outside the mapping');
    try {
      native.madvise(this.address + offset, length, a);
    } catch (e) {
      throw fromNative(e, `madvise(${advice})`);
    }
  }

  /** Pages of [offset, +length) resident in memory (mincore). */
  residentPages(offset = 0, length?: number): number {
    this.#check();
    checkInt('offset', offset, 0, this.length);
    if (length === undefined) length = this.length - offset;
    checkRange('mincore', this.address + offset, length);
    if (offset + length > this.length) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, 'mincore range outside the mapping');
    try {
      return native.residency(this.address + offset, length, new Uint8Array(Math.ceil(length / PAGE_SIZE)));
    } catch (e) {
      throw fromNative(e, 'mincore');
    }
  }

  /** Detaches every view this mapping handed out and unmaps it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#views) {
      const ab = r.deref();
      if (ab) native.detach(ab);
    }
    this.#views = [];
    native.munmap(this.address, this.length);
  }
}

/**
 * mremap(MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP): moves the pages of
 * [from, from+length) to `to`, leaving `from` mapped and empty.
 */
export function remapDontUnmap(from: number, length: number, to: number): void {
  checkRange('mremap source', from, length);
  checkRange('mremap target', to, length);
  try {
    native.mremapDontUnmap(from, length, to);
  } catch (e) {
    throw fromNative(e, 'mremap(MREMAP_DONTUNMAP)');
  }
}

/**
 * An ArrayBuffer over memory some other thread mapped (for Workers). Never unmaps. The range
 * must be mapped now (else ENOMEM: a view of an unmapped range was a SIGSEGV at its first read,
 * an audit), and the caller keeps it mapped while the view is in use: a Mapping's close() can
 * detach only the views its own thread made, and a read after the unmap is a SIGSEGV (as with
 * any raw address). Not transferable (copied by postMessage and structuredClone).
 */
export function viewOf(address: number, length: number): ArrayBuffer {
  checkMapped(address, length);
  // Mapped is not enough: a PROT_NONE mapping (V8 reserves many) gave a view whose first read
  // was a SIGSEGV (a hostile-caller audit); a read-only one, at the first write. (Looked at
  // before the view is made: detaching one would cost the isolate its typed-array fast paths.)
  if (!readWrite(address, length))
    throw new MoveGcError('EACCES', `viewOf: [0x${address.toString(16)}, +${length}) is not all readable and writable (/proc/self/maps)`, { errno: os.constants.errno.EACCES });
  return viewAt(address, length);
}

/**
 * viewOf without the look at protections, for the collector's Workers: the program may have
 * mprotect()ed its heap when one starts (a cycle's pause takes the protection off before any
 * collector thread reads it, pause.ts unprotectHeap).
 */
export function mappedView(address: number, length: number): ArrayBuffer {
  checkMapped(address, length);
  return viewAt(address, length);
}

function checkMapped(address: number, length: number): void {
  checkInt('address', address, 1);
  checkInt('length', length, 1, MAX_VIEW_BYTES);
  try {
    native.mapped(address, length);
  } catch (e) {
    throw fromNative(e, 'viewOf');
  }
}

/** A mapping of this process (/proc/self/maps): [start, end) and its permissions, e.g. 'rw-p'. */
export interface Vma {
  start: number;
  end: number;
  perms: string;
}

/** The mappings that overlap [address, address + length), in address order; null without procfs. */
export function vmasOver(address: number, length: number): Vma[] | null {
  let maps: string;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'latin1');
  } catch {
    return null; // no procfs (a mount namespace without it)
  }
  const end = address + length;
  const out: Vma[] = [];
  for (const line of maps.split('\n')) {
    const dash = line.indexOf('-');
    const sp = line.indexOf(' ');
    if (dash < 0 || sp < dash) continue;
    const start = parseInt(line.slice(0, dash), 16);
    const stop = parseInt(line.slice(dash + 1, sp), 16);
    if (stop <= address) continue;
    if (start >= end) break;
    out.push({ start, end: stop, perms: line.slice(sp + 1, sp + 5) });
  }
  return out;
}

/** Whether [address, address + length) lies in mappings that all allow reads and writes (true where procfs cannot tell). */
function readWrite(address: number, length: number): boolean {
  const vmas = vmasOver(address, length);
  if (vmas === null) return true; // the mapping check stands alone
  let at = address;
  for (const v of vmas) {
    if (v.start > at || v.perms[0] !== 'r' || v.perms[1] !== 'w') return false; // a hole, or a protection
    at = v.end;
  }
  return at >= address + length;
}

export function madvise(address: number, length: number, advice: AdviceName): void {
  const a = adviceOf(advice);
  checkRange(`madvise(${advice})`, address, length);
  try {
    native.madvise(address, length, a);
  } catch (e) {
    throw fromNative(e, `madvise(${advice})`);
  }
}
