/**
 * The movegc heap: one mmap'd region, bump allocation, user-declared object types, roots and
 * pins, and a concurrent compacting collector after Android ART's CMC (mark, plan, pause,
 * concurrent compaction with UFFDIO_MOVE, fault handling, fallbacks). See the phase files:
 * mark.ts, plan.ts, pause.ts, compact.ts, build.ts, install.ts, fault.ts.
 *
 * References handed to JavaScript are numbers that carry a tag of the heap's current epoch;
 * a collection changes the epoch, so a reference held across it is rejected with
 * ERR_STALE_REFERENCE instead of silently pointing at another object. Roots (and pins)
 * survive collections.
 */
import { Worker } from 'node:worker_threads';
import { MoveGcError, ErrorCode, fromNative, invalidArg } from './errors.js';
import { mark } from './mark.js';
import { plan as planCycle, type Plan } from './plan.js';
import { compactionPause, PauseOrder, type PauseOrderName } from './pause.js';
import { Builders, Scratch, compactorSplit, readRss } from './compact.js';
import { FaultInstall, Install, Installer, type FaultInstallName } from './install.js';
import { Builder, type BuilderName } from './build.js'; // builder option (issue 10)
import { Mapping } from './memory.js';
import { PAGE_SIZE } from './native.js';
import { probe, type Capabilities, type Hideable } from './probe.js';
import { Userfaultfd } from './uffd.js';
import { chooseMode, Mode, type ModeName } from './modes.js';
import { silentLogger, type Logger } from './log.js';
import { summarize, type CycleStats } from './stats.js';
import { verifyHeap, type VerifyResult } from './verify.js';
import { Clk, Ctl, Hist, HIST_BUCKETS, Owner, Phase, Shared, now, releaseForkedChild } from './shared.js';
import {
  BYTE_ARRAY_TYPE, FIRST_USER_TYPE, HEAP_START_WORD, Kind, MAX_TYPES, REF_ARRAY_TYPE, TypeTable, arrayWords, refCount,
} from './layout.js';
import type { WorkerInit } from './collector-worker.js';

/** A reference to a heap object, valid until the next collection (keep it in a Root to survive). */
export type Ref = number;

export interface InjectOptions {
  /** Fail every Nth MOVE call with EAGAIN (the installer retries). */
  eagainEvery?: number;
  /** Stall the compactor for delayMs after building this many pages. */
  delayAtPage?: number;
  delayMs?: number;
  /** Kill the compactor (an exception ends its Worker) after building this many pages. */
  dieAtPage?: number;
  /** fork(2) a child after the compactor built this many pages; it lives until the cycle ends. */
  forkAtPage?: number;
}

export interface HeapOptions {
  /** Bytes; a multiple of 2 MiB, at most 4 GiB minus 2 MiB (the largest ArrayBuffer view). */
  capacity: number;
  /** Requested mode; falls back move -> copy -> stw when the kernel lacks what it needs. */
  mode?: ModeName;
  /** Leading pages at least this live stay in place (default 0.95; >1 disables). */
  denseThreshold?: number;
  /** A builder thread silent this long (ms) is considered stalled or dead and taken over. */
  stallMs?: number;
  /** Pause order: 'remap-first' (default, O(1) in heap size) or 'register-first' (ART's); see pause.ts. */
  pauseOrder?: PauseOrderName;
  /** Move mode: install pages built for faults with 'copy' (default: no TLB flush) or 'move'; see install.ts. */
  faultInstall?: FaultInstallName;
  /** Page builder: 'native' (default, native/build.cc) or 'js' (gc/build.ts, the reference). Issue 10. */
  builder?: BuilderName;
  /** MADV_DONTFORK on the heap's mappings (default true): a child then shares no heap page. */
  dontFork?: boolean;
  /** Run the verifier after every cycle and throw ERR_VERIFY_FAILED if it fails. */
  verify?: boolean;
  /** Hide kernel capabilities, to exercise the fallbacks. */
  hide?: Hideable[];
  inject?: InjectOptions;
  logger?: Logger;
}

export interface TypeSpec {
  name: string;
  /** Reference slots. */
  refs: number;
  /** Raw bytes after the references. */
  bytes: number;
}

export class HeapType {
  constructor(readonly id: number, readonly name: string, readonly refs: number, readonly bytes: number, readonly kind: number) {}
}

export const MAX_CAPACITY = 2 ** 32 - 2 * 1024 * 1024;
const ALIGN = 2 * 1024 * 1024;
const TAG = 2 ** 32;
const liveHeaps = new Set<Heap>();

/** A value a raw setter cannot store as given (typed arrays would coerce it silently). */
function badValue(kind: string, v: unknown): MoveGcError {
  if (typeof v !== 'number') return invalidArg(`${kind} value must be a number, got ${typeof v}`);
  return new MoveGcError(ErrorCode.OUT_OF_RANGE, `${kind} value must be an integer that fits (negative values wrap), got ${v}`);
}

const INJECT_KEYS = ['eagainEvery', 'delayAtPage', 'delayMs', 'dieAtPage', 'forkAtPage'] as const;

function checkInject(inj: unknown): void {
  if (typeof inj !== 'object' || inj === null) throw invalidArg('inject options must be an object');
  for (const [k, v] of Object.entries(inj)) {
    if (!(INJECT_KEYS as readonly string[]).includes(k)) throw invalidArg(`unknown inject option ${k} (expected ${INJECT_KEYS.join(', ')})`);
    if (v === undefined) continue;
    if (typeof v !== 'number') throw invalidArg(`inject.${k} must be a number, got ${typeof v}`);
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `inject.${k} must be an integer in [0, 2^31), got ${v}`);
  }
}

/** Options other than capacity and mode (checked where they are used). */
function checkOptions(opts: HeapOptions): void {
  const { stallMs, denseThreshold, dontFork, verify, hide, inject, logger } = opts;
  if (stallMs !== undefined) {
    if (typeof stallMs !== 'number') throw invalidArg(`stallMs must be a number, got ${typeof stallMs}`);
    if (!Number.isFinite(stallMs) || stallMs < 1 || stallMs > 600_000) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `stallMs must be in [1, 600000], got ${stallMs}`);
  }
  if (denseThreshold !== undefined) {
    if (typeof denseThreshold !== 'number') throw invalidArg(`denseThreshold must be a number, got ${typeof denseThreshold}`);
    if (Number.isNaN(denseThreshold) || denseThreshold < 0) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `denseThreshold must be >= 0 (above 1 disables), got ${denseThreshold}`);
  }
  for (const [k, v] of [['dontFork', dontFork], ['verify', verify]] as const)
    if (v !== undefined && typeof v !== 'boolean') throw invalidArg(`${k} must be a boolean, got ${typeof v}`);
  if (hide !== undefined) {
    if (!Array.isArray(hide)) throw invalidArg('hide must be an array');
    for (const h of hide) if (h !== 'uffd' && h !== 'move') throw invalidArg(`hide: unknown capability ${String(h)} (expected uffd, move)`);
  }
  if (inject !== undefined) checkInject(inject);
  if (logger !== undefined) {
    if (typeof logger !== 'object' || logger === null) throw invalidArg('logger must be a pino-style logger object');
    for (const m of ['debug', 'info', 'warn', 'error'] as const)
      if (typeof (logger as unknown as Record<string, unknown>)[m] !== 'function') throw invalidArg(`logger.${m} must be a function`);
  }
}

/** A root: keeps an object alive and tracks it across collections. */
export class Root {
  readonly #heap: Heap;
  readonly #slot: number;
  #released = false;
  /** @internal */
  constructor(heap: Heap, slot: number) {
    this.#heap = heap;
    this.#slot = slot;
  }
  get(): Ref | null {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'root released');
    return this.#heap._rootGet(this.#slot);
  }
  set(ref: Ref | null): void {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'root released');
    this.#heap._rootSet(this.#slot, ref);
  }
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#heap._rootRelease(this.#slot);
  }
}

/** A pin: the object stays alive and at its address until released; compaction flows around it. */
export class Pin {
  readonly #heap: Heap;
  readonly #word: number;
  #released = false;
  /** @internal */
  constructor(heap: Heap, word: number) {
    this.#heap = heap;
    this.#word = word;
  }
  /** The pinned object's current reference. */
  get ref(): Ref {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'pin released');
    return this.#heap._encode(this.#word);
  }
  /** Its virtual address: fixed while pinned (hand it to I/O). */
  get address(): number {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'pin released');
    return this.#heap._pinAddress(this.#word);
  }
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#heap._unpin(this.#word);
  }
}

interface ActiveCycle {
  stats: CycleStats;
  plan: Plan;
  pauseEnd: number;
}

export class Heap {
  readonly capacity: number;
  readonly mode: ModeName;
  readonly requestedMode: ModeName;
  /** Why the heap runs in a lesser mode than requested (empty if it does not). */
  readonly fallbacks: readonly string[];
  readonly capabilities: Capabilities;
  readonly log: Logger;
  readonly #opts: Required<Pick<HeapOptions, 'denseThreshold' | 'stallMs' | 'verify' | 'pauseOrder'>>;
  readonly #heapMap: Mapping;
  readonly #fromMap: Mapping;
  readonly #u32: Uint32Array;
  readonly #u8: Uint8Array;
  readonly #f64: Float64Array;
  readonly #sh: Shared;
  readonly #types: TypeTable;
  readonly #typeList: HeapType[] = [];
  readonly #typeByName = new Map<string, HeapType>();
  readonly #uffd: Userfaultfd | null;
  readonly #builders: Builders;
  #workers: { compactor: Worker | null; fault: Worker | null } = { compactor: null, fault: null };
  #workerDead = { compactor: false, fault: false };
  readonly #reportedDead = new WeakSet<Worker>();
  #finishing: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #top = HEAP_START_WORD;
  #tag = 0;
  #tagBase = 0;
  #oldTags: number[] = [];
  #roots = new Uint32Array(1024);
  #rootUsed = new Uint8Array(1024);
  #rootCount = 0;
  #rootFree: number[] = [];
  #pins = new Map<number, number>(); // word -> pin count
  #active: ActiveCycle | null = null;
  #closed = false;
  #cycles = 0;
  #history: CycleStats[] = [];
  #inject: InjectOptions;

  private constructor(opts: HeapOptions, caps: Capabilities, mode: ModeName, fallbacks: string[], log: Logger) {
    this.capacity = opts.capacity;
    this.requestedMode = opts.mode ?? Mode.MOVE;
    this.mode = mode;
    this.fallbacks = fallbacks;
    this.capabilities = caps;
    this.log = log;
    this.#opts = { denseThreshold: opts.denseThreshold ?? 0.95, stallMs: opts.stallMs ?? 200, verify: opts.verify ?? false, pauseOrder: opts.pauseOrder ?? PauseOrder.REMAP_FIRST };
    this.#inject = { ...opts.inject };
    const advise = opts.dontFork === false ? [] : (['DONTFORK'] as const);
    this.#heapMap = Mapping.anonymous(opts.capacity, { alignment: ALIGN, advise: [...advise, 'NOHUGEPAGE'] });
    try {
      this.#fromMap = Mapping.anonymous(opts.capacity + ALIGN, { alignment: ALIGN, advise: [...advise, 'NOHUGEPAGE'] });
    } catch (e) {
      this.#heapMap.close();
      throw e;
    }
    const view = this.#heapMap.view();
    this.#u32 = new Uint32Array(view);
    this.#u8 = new Uint8Array(view);
    this.#f64 = new Float64Array(view);
    if (mode !== Mode.STW) {
      this.#uffd = Userfaultfd.open({ how: caps.uffd.how ?? 'syscall', features: mode === Mode.MOVE ? ['MOVE'] : [] });
    } else {
      this.#uffd = null;
    }
    const typesSab = TypeTable.allocate();
    this.#types = new TypeTable(typesSab);
    this.#sh = Shared.allocate({
      heapAddress: this.#heapMap.address,
      fromAddress: this.#fromMap.address,
      capacity: opts.capacity,
      scratchPages: Scratch.PAGES,
      uffdFd: this.#uffd?.fd ?? -1,
      uffdFeatures: this.#uffd?.features ?? 0,
      types: typesSab,
    });
    Atomics.store(this.#sh.ctl, Ctl.INSTALL, mode === Mode.MOVE ? Install.MOVE : mode === Mode.COPY ? Install.COPY : Install.DIRECT);
    Atomics.store(this.#sh.ctl, Ctl.FAULT_INSTALL, opts.faultInstall === 'move' ? FaultInstall.MOVE : FaultInstall.COPY);
    Atomics.store(this.#sh.ctl, Ctl.BUILDER, opts.builder === 'js' ? Builder.JS : Builder.NATIVE); // builder option (issue 10)
    const from = new Uint32Array(this.#fromMap.view(0, opts.capacity + Scratch.PAGES * PAGE_SIZE));
    this.#builders = new Builders(this.#sh, from, new Installer(this.#sh, this.#uffd, (msg, data) => this.log.warn({ ...data, thread: 'mutator' }, msg)));
    this.#typeList.push(
      new HeapType(0, '(filler)', 0, 0, Kind.FILLER),
      new HeapType(REF_ARRAY_TYPE, 'RefArray', 0, 0, Kind.REF_ARRAY),
      new HeapType(BYTE_ARRAY_TYPE, 'ByteArray', 0, 0, Kind.BYTE_ARRAY),
    );
    this.#newTag();
  }

  /**
   * Creates a heap. Capabilities are probed here, not discovered by a crash later: the mode
   * falls back (and logs why) if the kernel lacks what it needs.
   */
  static async create(opts: HeapOptions): Promise<Heap> {
    if (typeof opts !== 'object' || opts === null) throw invalidArg('options must be an object');
    const cap = opts.capacity;
    if (typeof cap !== 'number') throw invalidArg('capacity must be a number');
    if (!Number.isSafeInteger(cap) || cap <= 0 || cap % ALIGN !== 0 || cap > MAX_CAPACITY)
      throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `capacity must be a positive multiple of 2 MiB up to ${MAX_CAPACITY} bytes, got ${cap}`);
    checkOptions(opts);
    if (opts.faultInstall !== undefined && opts.faultInstall !== 'copy' && opts.faultInstall !== 'move')
      throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `faultInstall must be 'copy' or 'move', got ${String(opts.faultInstall)}`);
    if (opts.builder !== undefined && opts.builder !== 'js' && opts.builder !== 'native') // builder option (issue 10)
      throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `builder must be 'js' or 'native', got ${String(opts.builder)}`);
    const log = opts.logger ?? silentLogger();
    const caps = probe({ hide: opts.hide });
    const { mode, fallbacks } = chooseMode(opts.mode ?? Mode.MOVE, caps);
    for (const f of fallbacks) log.warn({ requested: opts.mode ?? Mode.MOVE, mode }, `mode fallback: ${f}`);
    const heap = new Heap(opts, caps, mode, fallbacks, log);
    liveHeaps.add(heap);
    try {
      if (mode !== Mode.STW) await heap.#startWorkers();
    } catch (e) {
      await heap.close();
      throw e;
    }
    log.info({ capacity: cap, mode, uffd: caps.uffd.how, thp: caps.thp }, 'heap created');
    return heap;
  }

  // ---------------------------------------------------------------- workers

  #spawn(role: 'compactor' | 'fault'): Promise<void> {
    const init: WorkerInit = { role, shared: this.#sh.d, stallMs: this.#opts.stallMs };
    const w = new Worker(new URL('./collector-worker.js', import.meta.url), { workerData: init });
    w.unref();
    this.#workers[role] = w;
    this.#workerDead[role] = false;
    w.on('message', (m: { type: string; msg?: string; data?: Record<string, unknown>; role?: string }) => {
      if (m.type === 'warn') this.log.warn({ ...m.data, thread: m.role }, m.msg ?? '');
      else if (m.type === 'done' && this.#active && !this.#closed) void this.#tryFinalize();
    });
    w.on('error', (e) => {
      if (this.#workers[role] === w) this.#workerDead[role] = true;
      if (this.#reportedDead.has(w)) return; // found dead through shared memory first
      this.#reportedDead.add(w);
      this.log.error({ role, err: e }, 'collector thread died');
    });
    w.on('exit', () => {
      if (this.#workers[role] !== w) return; // a replaced thread: its successor runs
      this.#workerDead[role] = true;
      this.#workers[role] = null;
    });
    return new Promise((resolve, reject) => {
      w.once('online', () => resolve());
      w.once('error', reject);
    });
  }

  async #startWorkers(): Promise<void> {
    const c = this.#sh.clk;
    c[Clk.HB_FAULT] = now();
    await Promise.all([this.#spawn('fault'), this.#spawn('compactor')]);
  }

  // ---------------------------------------------------------------- references

  #newTag(): void {
    if (this.#tag) {
      this.#oldTags.push(this.#tag);
      if (this.#oldTags.length > 64) this.#oldTags.shift();
    }
    let t: number;
    do t = 1 + Math.floor(Math.random() * (2 ** 21 - 2));
    while (t === this.#tag || this.#oldTags.includes(t));
    this.#tag = t;
    this.#tagBase = t * TAG;
  }

  /** @internal */
  _encode(w: number): Ref {
    this.#check();
    return this.#tagBase + w;
  }

  #refError(ref: unknown): MoveGcError {
    if (typeof ref !== 'number') return new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `expected a heap reference (number), got ${ref === null ? 'null' : typeof ref}`);
    const tag = Math.floor(ref / TAG);
    if (this.#oldTags.includes(tag))
      return new MoveGcError(ErrorCode.STALE_REFERENCE, `reference ${ref} is from before a collection: objects may have moved; keep references across collections in a Root`);
    for (const h of liveHeaps) if (h !== this && h.#tag === tag) return new MoveGcError(ErrorCode.FOREIGN_REFERENCE, `reference ${ref} belongs to another heap`);
    return new MoveGcError(ErrorCode.INVALID_REFERENCE, `${ref} is not a reference of this heap`);
  }

  /** Word index of a reference, checked. */
  #w(ref: unknown): number {
    if (this.#closed) throw new MoveGcError(ErrorCode.CLOSED, 'heap is closed');
    if (typeof ref !== 'number') throw this.#refError(ref); // before any arithmetic: a BigInt or Symbol throws a TypeError
    const w = ref >>> 0;
    if (ref - w !== this.#tagBase) throw this.#refError(ref);
    if (w < HEAP_START_WORD || w >= this.#top) throw new MoveGcError(ErrorCode.INVALID_REFERENCE, `reference ${ref} is outside the heap's objects`);
    return w;
  }

  #wOrNull(ref: unknown): number {
    return ref === null ? 0 : this.#w(ref);
  }

  // ---------------------------------------------------------------- types and allocation

  defineType(spec: TypeSpec): HeapType {
    this.#check();
    if (typeof spec !== 'object' || spec === null) throw invalidArg('type spec must be an object');
    const { name, refs, bytes } = spec;
    if (typeof name !== 'string' || name.length === 0) throw invalidArg('type name must be a non-empty string');
    for (const [k, v] of [['refs', refs], ['bytes', bytes]] as const) {
      if (typeof v !== 'number') throw invalidArg(`${k} must be a number`);
      if (!Number.isSafeInteger(v) || v < 0 || v > 1 << 20) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `${k} must be an integer in [0, 2^20], got ${v}`);
    }
    if (this.#typeByName.has(name)) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `type ${name} is already defined`);
    const id = this.#typeList.length;
    if (id >= MAX_TYPES) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `at most ${MAX_TYPES - FIRST_USER_TYPE} types`);
    this.#types.define(id, refs, bytes);
    const t = new HeapType(id, name, refs, bytes, Kind.FIXED);
    this.#typeList.push(t);
    this.#typeByName.set(name, t);
    return t;
  }

  type(name: string): HeapType {
    this.#check();
    const t = this.#typeByName.get(name);
    if (!t) throw new MoveGcError(ErrorCode.UNKNOWN_TYPE, `unknown type ${String(name)}`);
    return t;
  }

  #bump(words: number, typeId: number, length: number): Ref {
    const w = this.#top;
    if (w + words > this.capacity / 8)
      throw new MoveGcError(ErrorCode.HEAP_FULL, `heap full: ${words * 8} bytes requested, ${this.capacity - w * 8} free of ${this.capacity}; collect() to reclaim`);
    this.#top = w + words;
    this.#u32[w * 2] = typeId;
    this.#u32[w * 2 + 1] = length;
    return this.#tagBase + w;
  }

  /** Allocates an object of a declared type; its slots are null and its bytes zero. */
  alloc(type: HeapType): Ref {
    this.#check();
    if (!(type instanceof HeapType) || this.#typeList[type.id] !== type || type.kind !== Kind.FIXED)
      throw new MoveGcError(ErrorCode.UNKNOWN_TYPE, `not a type of this heap: ${String((type as HeapType)?.name ?? type)}`);
    return this.#bump(this.#types.rows[type.id * 4 + 3], type.id, 0);
  }

  /** Allocates an array of `length` null references. */
  allocRefArray(length: number): Ref {
    this.#check();
    this.#checkLength(length);
    return this.#bump(arrayWords(Kind.REF_ARRAY, length), REF_ARRAY_TYPE, length);
  }

  /** Allocates `length` zero bytes. */
  allocBytes(length: number): Ref {
    this.#check();
    this.#checkLength(length);
    return this.#bump(arrayWords(Kind.BYTE_ARRAY, length), BYTE_ARRAY_TYPE, length);
  }

  #checkLength(length: number): void {
    if (typeof length !== 'number') throw invalidArg('length must be a number');
    if (!Number.isSafeInteger(length) || length < 0 || length > 2 ** 31) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `length must be an integer in [0, 2^31], got ${length}`);
  }

  // ---------------------------------------------------------------- field access

  typeOf(obj: Ref): HeapType {
    return this.#typeList[this.#u32[this.#w(obj) * 2]];
  }

  /** Reference slots of the object (array length for reference arrays). */
  refCount(obj: Ref): number {
    return refCount(this.#u32, this.#types.rows, this.#w(obj));
  }

  /** Elements of an array (references or bytes); raw byte count for declared types. */
  length(obj: Ref): number {
    const w = this.#w(obj);
    const t = this.#u32[w * 2];
    const k = this.#types.kind(t);
    return k === Kind.FIXED ? this.#types.bytes(t) : this.#u32[w * 2 + 1];
  }

  #slot(obj: Ref, i: number): number {
    const w = this.#w(obj);
    const n = refCount(this.#u32, this.#types.rows, w);
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= n)
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `reference slot ${String(i)} out of range [0, ${n}) for ${this.#typeList[this.#u32[w * 2]]?.name}`);
    return w * 2 + 2 + i;
  }

  getRef(obj: Ref, i: number): Ref | null {
    const r = this.#u32[this.#slot(obj, i)];
    return r === 0 ? null : this.#tagBase + r;
  }

  setRef(obj: Ref, i: number, value: Ref | null): void {
    const s = this.#slot(obj, i);
    this.#u32[s] = this.#wOrNull(value);
  }

  /** Byte index in the heap of raw byte `offset` of obj, checked for `size` bytes. */
  #raw(obj: Ref, offset: number, size: number): number {
    const w = this.#w(obj);
    const t = this.#u32[w * 2];
    const k = this.#types.kind(t);
    let start: number;
    let len: number;
    if (k === Kind.FIXED) {
      start = w * 8 + 8 + this.#types.refs(t) * 4;
      len = this.#types.bytes(t);
    } else if (k === Kind.BYTE_ARRAY) {
      start = w * 8 + 8;
      len = this.#u32[w * 2 + 1];
    } else throw new MoveGcError(ErrorCode.FIELD_RANGE, `${this.#typeList[t]?.name} has no raw bytes`);
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset + size > len)
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `byte range [${String(offset)}, +${size}) outside the ${len} raw bytes of ${this.#typeList[t]?.name}`);
    return start + offset;
  }

  getU8(obj: Ref, offset: number): number {
    return this.#u8[this.#raw(obj, offset, 1)];
  }
  setU8(obj: Ref, offset: number, v: number): void {
    const b = this.#raw(obj, offset, 1);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80 || v > 0xff) throw badValue('u8', v);
    this.#u8[b] = v;
  }
  getU32(obj: Ref, offset: number): number {
    const b = this.#raw(obj, offset, 4);
    if (b & 3) throw new MoveGcError(ErrorCode.FIELD_RANGE, `u32 at byte ${offset} is not 4-byte aligned`);
    return this.#u32[b >>> 2];
  }
  setU32(obj: Ref, offset: number, v: number): void {
    const b = this.#raw(obj, offset, 4);
    if (b & 3) throw new MoveGcError(ErrorCode.FIELD_RANGE, `u32 at byte ${offset} is not 4-byte aligned`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw badValue('u32', v);
    this.#u32[b >>> 2] = v;
  }
  getF64(obj: Ref, offset: number): number {
    const b = this.#raw(obj, offset, 8);
    if (b & 7) throw new MoveGcError(ErrorCode.FIELD_RANGE, `f64 at byte ${offset} is not 8-byte aligned`);
    return this.#f64[b >>> 3];
  }
  setF64(obj: Ref, offset: number, v: number): void {
    const b = this.#raw(obj, offset, 8);
    if (b & 7) throw new MoveGcError(ErrorCode.FIELD_RANGE, `f64 at byte ${offset} is not 8-byte aligned`);
    if (typeof v !== 'number') throw badValue('f64', v);
    this.#f64[b >>> 3] = v;
  }
  /** A copy of raw bytes [offset, offset+length). */
  readBytes(obj: Ref, offset: number, length: number): Uint8Array {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) throw new MoveGcError(ErrorCode.FIELD_RANGE, `bad length ${String(length)}`);
    const b = this.#raw(obj, offset, length);
    return this.#u8.slice(b, b + length);
  }
  writeBytes(obj: Ref, offset: number, data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw invalidArg('data must be a Uint8Array');
    this.#u8.set(data, this.#raw(obj, offset, data.length));
  }

  /** Virtual address of an object (stable only while pinned). */
  addressOf(obj: Ref): number {
    return this.address + this.#w(obj) * 8;
  }

  get address(): number {
    return this.#heapMap.address;
  }

  // ---------------------------------------------------------------- roots and pins

  root(ref: Ref | null = null): Root {
    this.#check();
    const w = this.#wOrNull(ref);
    let slot = this.#rootFree.pop();
    if (slot === undefined) {
      if (this.#rootCount === this.#roots.length) {
        const r = new Uint32Array(this.#roots.length * 2);
        r.set(this.#roots);
        this.#roots = r;
        const u = new Uint8Array(r.length);
        u.set(this.#rootUsed);
        this.#rootUsed = u;
      }
      slot = this.#rootCount++;
    }
    this.#roots[slot] = w;
    this.#rootUsed[slot] = 1;
    return new Root(this, slot);
  }
  /** @internal */
  _rootGet(slot: number): Ref | null {
    this.#check();
    const w = this.#roots[slot];
    return w === 0 ? null : this.#tagBase + w;
  }
  /** @internal */
  _rootSet(slot: number, ref: Ref | null): void {
    this.#check();
    this.#roots[slot] = this.#wOrNull(ref);
  }
  /** @internal */
  _rootRelease(slot: number): void {
    if (this.#closed) return;
    this.#roots[slot] = 0;
    this.#rootUsed[slot] = 0;
    this.#rootFree.push(slot);
  }

  /** Pins an object: it stays alive and never moves until the pin is released. */
  pin(ref: Ref): Pin {
    const w = this.#w(ref);
    this.#pins.set(w, (this.#pins.get(w) ?? 0) + 1);
    return new Pin(this, w);
  }
  /** @internal */
  _pinAddress(w: number): number {
    this.#check();
    return this.address + w * 8;
  }
  /** @internal */
  _unpin(w: number): void {
    const n = (this.#pins.get(w) ?? 0) - 1;
    if (n > 0) this.#pins.set(w, n);
    else this.#pins.delete(w);
  }

  *#rootWords(): Generator<number> {
    for (let i = 0; i < this.#rootCount; i++) if (this.#roots[i] !== 0) yield this.#roots[i];
    yield* this.#pins.keys();
  }

  // ---------------------------------------------------------------- collection

  /** Bytes allocated (the allocation top). */
  get usedBytes(): number {
    return this.#top * 8;
  }
  get cycleActive(): boolean {
    return this.#active !== null;
  }
  /** Statistics of every finished cycle (most recent last, up to 1000). */
  get history(): readonly CycleStats[] {
    return this.#history;
  }

  /** Changes fault injection for the next cycles (see InjectOptions). */
  inject(opts: InjectOptions): void {
    this.#check();
    checkInject(opts);
    this.#inject = { ...opts };
  }

  /**
   * Runs a collection: finishes any active cycle, marks, plans and pauses; returns once the
   * mutator may run again. In `move`/`copy` mode compaction continues concurrently: await
   * idle() for its end. In `stw` mode the cycle is complete on return.
   */
  async collect(): Promise<CycleStats> {
    this.#check();
    // Loop: a concurrent collect() may have started a cycle while this one waited.
    do await this.#finishCycle();
    while (this.#active && !this.#closed);
    this.#check();
    const sh = this.#sh;
    const usedBefore = this.#top * 8;
    const rssBefore = readRss();
    const t0 = now();
    const m = mark(this.#u32, sh.types, sh.starts, sh.live, this.#top, this.#rootWords());
    const t1 = now();
    const p = planCycle(this.#u32, sh.types, sh, { topWord: this.#top, pinned: this.#pins.keys(), denseThreshold: this.#opts.denseThreshold });
    const t2 = now();
    this.log.debug({ phase: 'mark', ms: t1 - t0, objects: m.objects, liveBytes: m.words * 8 }, 'mark');
    this.log.debug({ phase: 'plan', ms: t2 - t1, pages: p.pagesTotal, identityPages: p.identityPages, pinnedSpans: p.pinnedSpans.length }, 'plan');

    // Reset the shared counters for this cycle before anything can fault.
    sh.ctl.fill(0, Ctl.FAULTS, Ctl.INSTALL);
    sh.ctl.fill(0, Ctl.FAULT_BUILDS, Ctl.INJECT_EAGAIN_EVERY);
    sh.ctl[Ctl.COMPACTOR_BUILDS] = 0;
    sh.ctl[Ctl.RELEASED_PAGES] = 0;
    sh.hist.fill(0);
    const inj = this.#inject;
    sh.ctl[Ctl.INJECT_EAGAIN_EVERY] = inj.eagainEvery ?? 0;
    sh.ctl[Ctl.INJECT_DELAY_AT_PAGE] = inj.delayAtPage ?? 0;
    sh.ctl[Ctl.INJECT_DELAY_MS] = inj.delayMs ?? 0;
    sh.ctl[Ctl.INJECT_DIE_AT_PAGE] = inj.dieAtPage ?? 0;
    sh.ctl[Ctl.INJECT_FORK_AT_PAGE] = inj.forkAtPage ?? 0;
    sh.ctl[Ctl.SEGMENTS] = p.segments.length;
    sh.ctl[Ctl.PAGES_TOTAL] = p.pagesTotal;
    sh.ctl[Ctl.PAGES_MAPPED] = 0;
    sh.ctl[Ctl.FLUSH_REQUEST] = 0;
    sh.clk[Clk.RSS_PEAK] = rssBefore;
    sh.clk[Clk.COMPACT_START] = 0;
    sh.clk[Clk.COMPACT_END] = 0;
    sh.clk[Clk.COMPACTOR_BUSY] = 0;
    sh.clk.fill(0, Clk.COMPACTOR_BUILD, Clk.COMPACTOR_QUEUED + 1); // compactor time split (issue 10)

    // The compaction pause.
    const tp = now();
    let pause;
    try {
      pause = compactionPause(this.#u32, this.#builders.from, sh, p, this.#roots, this.#rootCount, this.#uffd, this.#opts.pauseOrder);
    } catch (e) {
      throw fromNative(e, 'compaction pause');
    }
    this.#newTag();
    this.#top = p.allocTop;
    const pauseEnd = now();
    this.#cycles++;
    const stats = this.#emptyStats(usedBefore, m.objects, m.words * 8, t1 - t0, t2 - t1, rssBefore, p);
    stats.pause = { totalMs: pauseEnd - tp, ...pause };
    this.log.info({ phase: 'pause', cycle: stats.cycle, ...stats.pause }, 'compaction pause');
    this.#active = { stats, plan: p, pauseEnd };

    if (this.mode === Mode.STW) {
      // Stop-the-world: the same page builder, writing straight into the emptied heap.
      const t = now();
      for (const [first, end] of this.#builders.pageRanges())
        for (let q = first; q < end; q++) this.#builders.buildOne(q, Owner.MUTATOR, 0, this.#u32);
      sh.clk[Clk.COMPACT_START] = t;
      sh.clk[Clk.COMPACT_END] = now();
      sh.clk[Clk.COMPACTOR_BUSY] = now() - t;
      stats.pause.totalMs += now() - t;
      this.#finalize();
      return stats;
    }
    sh.clk[Clk.HB_COMPACTOR] = now();
    Atomics.store(sh.ctl, Ctl.PHASE, Phase.COMPACTING);
    Atomics.add(sh.ctl, Ctl.CYCLE, 1);
    Atomics.notify(sh.ctl, Ctl.CYCLE);
    if (p.pagesTotal === 0) this.#finalize();
    return stats;
  }

  /** Waits for the active cycle (if any) to end; returns its statistics. */
  async idle(): Promise<CycleStats | undefined> {
    this.#check();
    if (!this.#active) return this.#history[this.#history.length - 1];
    const cycle = this.#active.stats.cycle;
    await this.#finishCycle();
    return this.#history.find((s) => s.cycle === cycle);
  }

  /** collect() and wait for the cycle's end. */
  async gc(): Promise<CycleStats> {
    await this.collect();
    return (await this.idle())!;
  }

  /**
   * Brings the active cycle to its end with bounded waits. While the collector threads make
   * progress, it waits for them; when one is stalled or dead (heartbeat older than stallMs),
   * this thread builds the remaining pages itself, so the cycle always completes.
   */
  #finishCycle(): Promise<void> {
    // One at a time: two concurrent runs could both replace a stalled thread (two compactors).
    if (!this.#finishing) this.#finishing = this.#finishCycleOnce().finally(() => (this.#finishing = null));
    return this.#finishing;
  }

  async #finishCycleOnce(): Promise<void> {
    if (!this.#active) return;
    const sh = this.#sh;
    const stall = this.#opts.stallMs;
    for (;;) {
      if (!this.#active) return;
      const mapped = Atomics.load(sh.ctl, Ctl.PAGES_MAPPED);
      if (this.#builders.allMapped()) {
        // The compactor may still be finishing its walk: it must be out before the next cycle
        // (and one that has not entered this cycle yet must not enter it: see CLOSING_CYCLE).
        Atomics.store(sh.ctl, Ctl.CLOSING_CYCLE, Atomics.load(sh.ctl, Ctl.CYCLE));
        if (Atomics.load(sh.ctl, Ctl.COMPACTOR_IN) === 0) break;
        if (this.#workerDead.compactor || this.#builders.isStale(Owner.COMPACTOR, stall)) {
          await this.#replace('compactor');
          break;
        }
      } else if (this.#workerDead.compactor || this.#builders.compactorGone(stall)) {
        this.#help();
        // What is left belongs to a live builder (the fault server): wait for it, don't spin.
        if (this.#builders.allMapped()) continue;
      }
      const r = Atomics.waitAsync(sh.ctl, Ctl.PAGES_MAPPED, mapped, this.#builders.allMapped() ? 1 : Math.max(5, stall / 4));
      if (r.async) await r.value;
    }
    // A compactor that threw this cycle is dying: replace it now, so that the next cycle does
    // not run on the stand-in alone. (Its Worker's 'error' event may not be delivered yet:
    // this thread may not have turned the event loop since.)
    const cycle = Atomics.load(sh.ctl, Ctl.CYCLE);
    if (!this.#workerDead.compactor && Atomics.load(sh.ctl, Ctl.COMPACTOR_FAILED) === cycle) {
      this.#workerDead.compactor = true;
      if (this.#workers.compactor) this.#reportedDead.add(this.#workers.compactor);
      this.log.error({ role: 'compactor', cycle }, 'collector thread died');
    }
    if (this.#workerDead.fault) await this.#replace('fault');
    if (this.#workerDead.compactor) await this.#replace('compactor');
    await this.#faultsServed();
    if (this.#active) this.#finalize();
  }

  /**
   * Waits (bounded) for faults the fault server has read but not yet served and timed: they
   * belong to this cycle's statistics. All pages are installed, so no new fault can come;
   * a fault read just before its page was installed by another thread only needs a wake.
   */
  async #faultsServed(): Promise<void> {
    const sh = this.#sh;
    const deadline = now() + this.#opts.stallMs;
    for (;;) {
      const n = Atomics.load(sh.ctl, Ctl.FAULTS_IN_FLIGHT);
      if (n <= 0 || this.#workerDead.fault || now() > deadline) return;
      const r = Atomics.waitAsync(sh.ctl, Ctl.FAULTS_IN_FLIGHT, n, 1);
      if (r.async) await r.value;
    }
  }

  async #replace(role: 'compactor' | 'fault'): Promise<void> {
    const w = this.#workers[role];
    this.log.warn({ role }, 'replacing a stalled or dead collector thread');
    if (w) await w.terminate();
    if (role === 'fault') Atomics.store(this.#sh.ctl, Ctl.FAULTS_IN_FLIGHT, 0); // its faults die with it
    if (role === 'compactor') {
      Atomics.store(this.#sh.ctl, Ctl.COMPACTOR_IN, 0);
      releaseForkedChild(this.#sh); // a terminated thread runs no finally: reap its child here
    }
    if (!this.#closed) await this.#spawn(role);
  }

  /** The mutator thread builds every page still unbuilt (it reads only from-space: it cannot fault). */
  #help(): void {
    const scratch = this.#builders.scratchPage(Scratch.MUTATOR);
    for (const [first, end] of this.#builders.pageRanges())
      for (let q = first; q < end; q++) this.#builders.resolve(q, Owner.MUTATOR, scratch, this.#opts.stallMs);
  }

  async #tryFinalize(): Promise<void> {
    const sh = this.#sh;
    if (!this.#active || !this.#builders.allMapped()) return;
    Atomics.store(sh.ctl, Ctl.CLOSING_CYCLE, Atomics.load(sh.ctl, Ctl.CYCLE)); // see CLOSING_CYCLE
    if (Atomics.load(sh.ctl, Ctl.COMPACTOR_IN) === 0) {
      if (Atomics.load(this.#sh.ctl, Ctl.FAULTS_IN_FLIGHT) > 0 && !this.#workerDead.fault && !this.#builders.isStale(Owner.FAULT, this.#opts.stallMs)) {
        setTimeout(() => void this.#tryFinalize(), 1).unref(); // a fault is still being timed
        return;
      }
      try {
        this.#finalize();
      } catch (e) {
        this.log.error({ err: e }, 'cycle finalization failed');
      }
    }
  }

  /** End of cycle: every page installed; unregister, release from-space, record statistics. */
  #finalize(): void {
    const a = this.#active;
    if (!a) return;
    this.#active = null;
    const sh = this.#sh;
    Atomics.store(sh.ctl, Ctl.PHASE, Phase.IDLE);
    const end = now();
    if (this.#uffd) {
      for (const s of a.plan.segments)
        if (s.endPage > s.firstPage) this.#uffd.unregister(this.address + s.firstPage * PAGE_SIZE, (s.endPage - s.firstPage) * PAGE_SIZE);
    }
    // From-space now holds only pages nobody reads: give them back.
    this.#fromMap.advise('DONTNEED', 0, this.capacity + Scratch.PAGES * PAGE_SIZE);
    const st = a.stats;
    const c = sh.ctl;
    st.usedAfterBytes = this.#top * 8;
    st.compactionMs = sh.clk[Clk.COMPACT_END] > 0 ? sh.clk[Clk.COMPACT_END] - a.pauseEnd : end - a.pauseEnd;
    if (this.mode === Mode.STW) st.compactionMs = sh.clk[Clk.COMPACT_END] - sh.clk[Clk.COMPACT_START];
    st.compactorBusyMs = sh.clk[Clk.COMPACTOR_BUSY];
    st.compactor = compactorSplit(sh.clk); // compactor time split (issue 10)
    st.concurrentMs = this.mode === Mode.STW ? 0 : end - a.pauseEnd;
    st.pages.moved = c[Ctl.PAGES_MOVED];
    st.pages.copied = c[Ctl.PAGES_COPIED];
    st.pages.builtByCompactor = c[Ctl.COMPACTOR_BUILDS];
    st.pages.builtByFaults = c[Ctl.FAULT_BUILDS];
    st.pages.builtByMutator = this.mode === Mode.STW ? st.pages.total : c[Ctl.MUTATOR_BUILDS];
    st.pages.recycledBuffers = c[Ctl.RECYCLED_BUFFERS];
    st.pages.freshBuffers = c[Ctl.FRESH_BUFFERS];
    st.pages.released = c[Ctl.RELEASED_PAGES];
    st.moveCalls = c[Ctl.MOVE_CALLS];
    st.copyCalls = c[Ctl.COPY_CALLS];
    st.ebusy = c[Ctl.EBUSY];
    st.ebusyCopies = c[Ctl.EBUSY_COPIES];
    st.eexist = c[Ctl.EEXIST];
    st.eagain = c[Ctl.EAGAIN];
    st.enoent = c[Ctl.ENOENT];
    st.takeovers = c[Ctl.TAKEOVERS];
    st.errors = c[Ctl.ERRORS];
    st.faults = c[Ctl.FAULTS];
    st.faultUs = summarize(sh.hist, Hist.FAULT_US * HIST_BUCKETS);
    st.batchPages = summarize(sh.hist, Hist.BATCH_PAGES * HIST_BUCKETS);
    st.rss.peakBytes = Math.max(sh.clk[Clk.RSS_PEAK], st.rss.beforeBytes);
    st.rss.afterBytes = readRss();
    this.#history.push(st);
    if (this.#history.length > 1000) this.#history.shift();
    this.log.info(
      { phase: 'compaction', cycle: st.cycle, mode: st.mode, compactionMs: st.compactionMs, pagesMoved: st.pages.moved, pagesCopied: st.pages.copied, faults: st.faults, faultP50Us: st.faultUs.p50, ebusy: st.ebusy, reclaimedBytes: st.reclaimedBytes },
      'cycle done',
    );
    if (st.ebusy > 0) this.log.warn({ cycle: st.cycle, ebusy: st.ebusy, copied: st.ebusyCopies }, 'pages refused by MOVE were copied');
    if (this.#opts.verify) {
      const v = this.verify();
      if (!v.ok) throw new MoveGcError(ErrorCode.VERIFY_FAILED, `heap verification failed after cycle ${st.cycle}: ${v.errors.join('; ')}`);
    }
  }

  #emptyStats(usedBefore: number, objects: number, liveBytes: number, markMs: number, planMs: number, rssBefore: number, p: Plan): CycleStats {
    const empty = summarize(new Int32Array(HIST_BUCKETS), 0);
    return {
      cycle: this.#cycles,
      mode: this.mode,
      usedBeforeBytes: usedBefore,
      usedAfterBytes: 0,
      liveBytes,
      liveObjects: objects,
      reclaimedBytes: usedBefore - p.allocTop * 8,
      markMs,
      planMs,
      pause: { totalMs: 0, rootsMs: 0, pinnedMs: 0, registerMs: 0, remapMs: 0 },
      compactionMs: 0,
      compactorBusyMs: 0,
      compactor: { buildMs: 0, installMs: 0, releaseMs: 0, otherMs: 0, waitMs: 0, cpuMs: 0, queuedMs: 0 }, // compactor time split (issue 10)
      concurrentMs: 0,
      pages: { total: p.pagesTotal, identity: p.identityPages, moved: 0, copied: 0, builtByCompactor: 0, builtByFaults: 0, builtByMutator: 0, recycledBuffers: 0, freshBuffers: 0, released: 0 },
      moveCalls: 0,
      copyCalls: 0,
      batchPages: empty,
      ebusy: 0,
      ebusyCopies: 0,
      eexist: 0,
      eagain: 0,
      enoent: 0,
      takeovers: 0,
      errors: 0,
      faults: 0,
      faultUs: empty,
      rss: { beforeBytes: rssBefore, peakBytes: rssBefore, afterBytes: 0 },
      pinnedSpans: p.pinnedSpans.length,
      segments: p.segments.length,
    };
  }

  /** @internal Counters and page-state census of the active cycle, for diagnosing a stuck cycle. */
  _debugState(): Record<string, unknown> {
    const sh = this.#sh;
    const census: Record<string, number> = {};
    for (const [first, end] of this.#builders.pageRanges())
      for (let q = first; q < end; q++) {
        const s = sh.pageState[q];
        const k = `owner${s >>> 2}/phase${s & 3}`;
        census[k] = (census[k] ?? 0) + 1;
      }
    return { ctl: Array.from(sh.ctl), clk: Array.from(sh.clk).map((v) => (Number.isFinite(v) ? now() - v : v)), census, workersDead: this.#workerDead };
  }

  /** Walks the heap and checks every object and reference (see verify.ts). */
  verify(): VerifyResult {
    this.#check();
    return verifyHeap(this.#u32, this.#types.rows, this.#typeList.length, this.#top, this.#rootWords());
  }

  // ---------------------------------------------------------------- lifecycle

  #check(): void {
    if (this.#closed) throw new MoveGcError(ErrorCode.CLOSED, 'heap is closed');
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Finishes any active cycle, stops the collector threads, and releases every mapping and
   * file descriptor. Idempotent.
   */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      await this.#finishCycle();
    } catch (e) {
      this.log.error({ err: e }, 'finishing the active cycle on close failed');
    }
    this.#closed = true;
    liveHeaps.delete(this);
    Atomics.store(this.#sh.ctl, Ctl.STOP, 1);
    Atomics.notify(this.#sh.ctl, Ctl.CYCLE);
    await Promise.all(
      (['compactor', 'fault'] as const).map(async (role) => {
        const w = this.#workers[role];
        if (!w) return;
        const exited = new Promise<void>((r) => w.once('exit', () => r()));
        const timer = setTimeout(() => void w.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
    releaseForkedChild(this.#sh);
    this.#uffd?.close();
    this.#heapMap.close();
    this.#fromMap.close();
    this.log.info({ cycles: this.#cycles }, 'heap closed');
  }
}

