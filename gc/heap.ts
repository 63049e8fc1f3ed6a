/**
 * The movegc heap, as the mutator sees it: one mmap'd region, bump allocation, user-declared
 * object types, field accessors, roots and pins, and the calls through which the collector
 * may pause it (collect, safepoint). The collector itself: collector.ts (its threads, phase
 * driver and watchdog, as these calls reach them), cycle.ts (the phase driver) and the phase
 * files it names; options.ts; refs.ts (references and their epochs); roots.ts; heap-types.ts
 * (the types).
 *
 * Accessors check every reference: its epoch tag (refs.ts), and that it names an object's
 * first word (the allocator keeps an object-start bitmap), so an interior or forged number
 * is refused before it reaches the heap. setRef carries the write barrier of concurrent
 * marking (barrier.ts).
 */
import { MoveGcError, ErrorCode, internal, invalidArg, shown } from './errors.js';
import { BarrierLog } from './barrier.js';
import { Builders } from './builders.js';
import { Collector } from './collector.js';
import type { MutatorState } from './cycle-state.js';
import { Installer } from './install.js';
import { HeapMemory } from './heap-memory.js';
import { PAGE_SIZE } from './native.js';
import { probe, type Capabilities } from './probe.js';
import type { Userfaultfd } from './uffd.js';
import { chooseMode, Mode, type ModeName } from './modes.js';
import { silentLogger, type Logger } from './log.js';
import type { CycleStats } from './stats.js';
import { verifyHeap, type VerifyResult } from './verify.js';
import { Ctl, PagePhase, Shared, armMarking } from './shared.js';
import { SelfService } from './selfservice.js';
import { Marking, hugeObjectWords, largeObjectWords, resolveInject, resolveOptions, type HeapOptions, type FaultPathName, type InjectOptions, type MarkingName, type ResolvedOptions } from './options.js';
import { RefTags, type Ref } from './refs.js';
import { census, type Census } from './census.js';
import { HeapType, TypeRegistry, debugState, progressOf, type Progress, type TypeSpec } from './heap-types.js';
import { badValue, ownBytes } from './values.js';
import { Pin, Root, RootTable, type RootOwner } from './roots.js';
import { Holes } from './holes.js';
import { warmUpFlip } from './warmup.js';
import {
  BYTE_ARRAY_TYPE, HEAP_START_WORD, Kind, PAGE_SHIFT_WORDS, PAGE_WORDS, PMD_WORDS, REF_ARRAY_TYPE, TypeTable, arrayWords, rawOffset, refCount, writeFiller,
} from './layout.js';

export type { Ref };
export { Root, Pin };
export { HeapType, type TypeSpec, type Progress } from './heap-types.js';
export type { Census } from './census.js';

const liveHeaps = new Set<Heap>();
/** The accessors' compacting paths have run once in this process (see Heap.#warmUp). */
let warmedUp = false;

export class Heap implements RootOwner {
  readonly capacity: number;
  readonly mode: ModeName;
  readonly requestedMode: ModeName;
  /** Where marking runs: 'concurrent' (a marker thread) or 'pause'; stw always marks in its pause. */
  readonly marking: MarkingName;
  /** Who builds a page the mutator touches during compaction: 'self' or 'handler' (selfservice.ts). */
  readonly faultPath: FaultPathName;
  /** Why the heap runs in a lesser mode than requested (empty if it does not). */
  readonly fallbacks: readonly string[];
  readonly capabilities: Capabilities;
  readonly log: Logger;
  /** Its mappings, userfaultfd and shared memory (heap-memory.ts). */
  readonly #mem: HeapMemory;
  readonly #u32: Uint32Array;
  /**
   * Bytes: a Uint8Array views at most 4 GiB (2^32 elements), so single bytes go through a
   * DataView over all of the heap, and byte ranges through #u8 below 4 GiB, a window above.
   */
  readonly #bytes: DataView;
  readonly #u8: Uint8Array;
  readonly #buffer: ArrayBuffer;
  readonly #f64: Float64Array;
  readonly #sh: Shared;
  readonly #types: TypeTable;
  /** The types by id and by name (heap-types.ts); #typeList is its list, read on the accessors' paths. */
  readonly #typeReg: TypeRegistry;
  readonly #typeList: HeapType[];
  readonly #uffd: Userfaultfd | null;
  /** Its threads, phase driver and watchdog, and the calls that run a cycle (collector.ts). */
  readonly #collector: Collector;
  readonly #tags = new RefTags();
  readonly #roots = new RootTable();
  /** Gaps below pinned objects, allocated into when the top is full (holes.ts). */
  readonly #holes = new Holes();
  #closing: Promise<void> | null = null;
  #closed = false;
  /** Why the heap refuses every call though close() was not called (CycleDriver: mut.lose). */
  #lost: MoveGcError | null = null;
  #top = HEAP_START_WORD;
  #inject: Readonly<InjectOptions>;
  /** Which of sh.objects holds this epoch's object starts (the other is the plan's next). */
  #epochStarts = 0;
  #objects: Uint32Array;
  /** Words of the next-epoch bitmap that may hold stale bits from its last use. */
  #nextStartsExtent = 0;
  /** The write barrier (concurrent marking): on, its black boundary, its log. */
  #barrier = false;
  #blackStart = 0;
  readonly #log: BarrierLog;
  /**
   * Compaction is under way: every accessor looks up the state word of the page it touches and
   * hands a page not yet installed to the fault path (selfservice.ts). Off: one load and a branch.
   */
  #compacting = false;
  readonly #pageState: Int32Array;
  /** Objects at least this long start on a page (options.largeObjectBytes; 0: never). */
  readonly #alignWords: number;
  /** Objects at least this long start on a 2 MiB boundary (options.hugePages; 0: never). */
  readonly #hugeWords: number;
  /** The filler gaps put before them while a cycle runs ([start, end) pairs): not live (#blacken). */
  #allocGaps: number[] | null = null;
  readonly #faults: SelfService;

  private constructor(opts: ResolvedOptions, caps: Capabilities, mode: ModeName, fallbacks: string[], log: Logger, mem: HeapMemory) {
    this.capacity = opts.capacity;
    this.requestedMode = opts.mode;
    this.mode = mode;
    this.marking = mode === Mode.STW ? Marking.PAUSE : opts.marking;
    this.fallbacks = fallbacks;
    this.capabilities = caps;
    this.log = log;
    this.#inject = opts.inject;
    this.#alignWords = largeObjectWords(opts);
    this.#hugeWords = hugeObjectWords(opts);
    this.#mem = mem;
    const view = mem.heap.view();
    this.#u32 = new Uint32Array(view);
    this.#uffd = mem.uffd;
    this.#types = mem.types;
    this.#typeReg = new TypeRegistry(this.#types);
    this.#typeList = this.#typeReg.list;
    this.#buffer = view;
    this.#bytes = new DataView(view);
    this.#u8 = new Uint8Array(view, 0, Math.min(view.byteLength, 2 ** 32));
    this.#f64 = new Float64Array(view);
    this.#sh = mem.sh;
    this.#objects = this.#sh.objects[0];
    this.#log = new BarrierLog(this.#sh.logRing, this.#sh.ctl);
    const from = new Uint32Array(mem.from.view(0, opts.capacity + mem.sh.d.fromExtraPages * PAGE_SIZE));
    const builders = new Builders(this.#sh, from, new Installer(this.#sh, this.#uffd, (msg, data) => this.log.warn({ ...data, thread: 'mutator' }, msg)), 'mutator');
    this.#pageState = this.#sh.pageState;
    this.#faults = new SelfService(this.#sh, builders, this.#u32, opts.faultPath, opts.stallMs, log);
    this.faultPath = opts.faultPath;
    this.#collector = new Collector(
      { sh: this.#sh, opts, mode, builders, uffd: this.#uffd, log, mut: this.#mutatorState(), inject: () => this.#inject, verify: () => this.verify() },
      this.marking,
    );
    this.#tags.retag();
    armMarking(this.#sh.ctl, this.#inject);
  }

  /**
   * Creates a heap. Capabilities are probed here, not discovered by a crash later: the mode
   * falls back (and logs why) if the kernel lacks what it needs.
   */
  static async create(options: HeapOptions): Promise<Heap> {
    const opts = resolveOptions(options); // read once, validated, frozen: see options.ts
    const log = opts.logger ?? silentLogger();
    const caps = probe({ hide: [...opts.hide] });
    const { mode, fallbacks } = chooseMode(opts.mode, caps, { allowUnfixedMove: opts.allowUnfixedMove });
    for (const f of fallbacks) log.warn({ requested: opts.mode, mode }, `mode fallback: ${f}`);
    const mem = HeapMemory.open(opts, caps, mode);
    let heap: Heap;
    try {
      heap = new Heap(opts, caps, mode, fallbacks, log, mem);
    } catch (e) {
      mem.close();
      throw e;
    }
    liveHeaps.add(heap);
    try {
      await heap.#collector.start();
      if (!warmedUp) {
        warmedUp = true;
        heap.#warmUp();
      }
      if (heap.marking === Marking.CONCURRENT) warmUpFlip(largeObjectWords(opts));
    } catch (e) {
      await heap.close();
      throw internal(e, 'creating the heap'); // ours keep their code; anything else is a bug
    }
    log.info({ capacity: opts.capacity, mode, marking: heap.marking, uffd: caps.uffd.how, thp: caps.thp }, 'heap created');
    return heap;
  }

  /**
   * V8 optimizes the accessors while no cycle compacts, and a branch that never ran has no type
   * feedback: the first compaction of a process deoptimized every accessor at once at its page
   * check (`--trace-deopt`: "insufficient type feedback"), in the frame right after the flip.
   * (The first marking did the same at the write barrier.) So each accessor's compacting path
   * and the barrier's run here first, a few hundred times, on two objects that are then taken
   * back: their page reads as unbuilt, and SelfService.fault() returns at once (no cycle has
   * begun: every page counts as present). Method feedback is per class, so once per process.
   */
  #warmUp(): void {
    const top = this.#top;
    const a = this.allocRefArray(2);
    const b = this.allocBytes(24);
    const q = top >>> PAGE_SHIFT_WORDS;
    const last = (this.#top - 1) >>> PAGE_SHIFT_WORDS;
    // The write barrier's path too (the first marking): every store shades nothing, as
    // everything is at or above the black-allocation boundary 0.
    this.#compacting = true;
    this.#barrier = true;
    this.#blackStart = 0;
    try {
      for (let p = q; p <= last; p++) this.#pageState[p] = PagePhase.UNPROCESSED;
      for (let i = 0; i < 300; i++) {
        this.setRef(a, 0, b);
        this.setRef(a, 1, this.getRef(a, 0));
        this.length(a);
        this.typeOf(b);
        this.setU8(b, 0, this.getU8(b, 1));
        this.setU32(b, 4, this.getU32(b, 8));
        this.setF64(b, 8, this.getF64(b, 16));
        this.writeBytes(b, 0, this.readBytes(b, 8, 8));
      }
    } finally {
      this.#compacting = false;
      this.#barrier = false;
      for (let p = q; p <= last; p++) this.#pageState[p] = PagePhase.MAPPED;
      // Take the two objects back: the words they used, their start bits, the top.
      this.#u32.fill(0, top * 2, this.#top * 2);
      for (let w = top; w < this.#top; w++) this.#objects[w >>> 5] &= ~(1 << (w & 31));
      this.#top = top;
    }
  }

  /** The mutator's side as the cycle driver sees it (cycle.ts). */
  #mutatorState(): MutatorState {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const heap = this;
    return {
      u32: this.#u32,
      get top() { return heap.#top; },
      set top(v: number) { heap.#top = v; },
      get typeCount() { return heap.#typeList.length; },
      get roots() { return heap.#roots.words; },
      get rootCount() { return heap.#roots.count; },
      rootWords: () => this.#roots.rootWords(),
      pinWords: () => [...this.#roots.pins.keys()],
      get pinsAdded() { return heap.#roots.pinsAdded; },
      retag: () => this.#tags.retag(),
      setBarrier: (on: boolean, blackStart: number) => {
        this.#barrier = on;
        this.#blackStart = blackStart;
      },
      setCompacting: (on: boolean) => {
        if (on) this.#faults.begin(this.#inject);
        this.#compacting = on;
      },
      barrierLog: this.#log,
      selfService: this.#faults,
      holes: this.#holes,
      lose: (e: MoveGcError) => {
        this.#lost = e;
        this.#closed = true; // every call refuses from here; close() still releases everything
        this.log.error({ err: e }, 'the heap is lost: close() it');
      },
      get epochStarts() { return heap.#epochStarts; },
      set epochStarts(v: number) {
        heap.#epochStarts = v;
        heap.#objects = heap.#sh.objects[v];
      },
      get allocGaps() { return heap.#allocGaps; },
      set allocGaps(v: number[] | null) { heap.#allocGaps = v; },
      get nextStartsExtent() { return heap.#nextStartsExtent; },
      set nextStartsExtent(v: number) { heap.#nextStartsExtent = v; },
    };
  }

  // ---------------------------------------------------------------- references

  /** @internal */
  _encode(w: number): Ref {
    this.#check();
    return this.#tags.base + w;
  }

  #refError(ref: unknown): MoveGcError {
    const others: number[] = [];
    for (const h of liveHeaps) if (h !== this) others.push(h.#tags.tag);
    return this.#tags.error(ref, others);
  }

  /** Word index of a reference, checked. */
  #w(ref: unknown): number {
    if (this.#closed) throw this.#closedError();
    if (typeof ref !== 'number') throw this.#refError(ref); // before any arithmetic: a BigInt or Symbol throws a TypeError
    const w = ref >>> 0;
    if (ref - w !== this.#tags.base) throw this.#refError(ref);
    if (w < HEAP_START_WORD || w >= this.#top) throw new MoveGcError(ErrorCode.INVALID_REFERENCE, `reference ${ref} is outside the heap's objects`);
    if ((this.#objects[w >>> 5] & (1 << (w & 31))) === 0) throw new MoveGcError(ErrorCode.INVALID_REFERENCE, `reference ${ref} is not the start of an object (an interior or forged reference)`);
    if (this.#compacting && this.#pageState[w >>> PAGE_SHIFT_WORDS] !== PagePhase.MAPPED) this.#faults.fault(w >>> PAGE_SHIFT_WORDS);
    return w;
  }

  /** During compaction: the pages of words [lo, end) are installed before the access (selfservice.ts). */
  #touch(lo: number, end: number): void {
    for (let q = lo >>> PAGE_SHIFT_WORDS, last = (end - 1) >>> PAGE_SHIFT_WORDS; q <= last; q++) if (this.#pageState[q] !== PagePhase.MAPPED) this.#faults.fault(q);
  }

  #wOrNull(ref: unknown): number {
    return ref === null ? 0 : this.#w(ref);
  }

  /** The write barrier's slow path: log a stored reference the marker may not have seen. */
  #shade(w: number): void {
    if (w === 0 || w >= this.#blackStart) return;
    // Marked already: skip, but only once the marker has cleared the last cycle's bits. The
    // flag is read first: a bit read before it could be last cycle's, cleared in between.
    if (Atomics.load(this.#sh.ctl, Ctl.MARK_CLEARED) === 1 && (this.#sh.starts[w >>> 5] & (1 << (w & 31))) !== 0) return;
    this.#log.append(w);
  }

  // ---------------------------------------------------------------- types and allocation

  defineType(spec: TypeSpec): HeapType {
    this.#check();
    return this.#typeReg.define(spec);
  }

  type(name: string): HeapType {
    this.#check();
    return this.#typeReg.named(name);
  }

  #bump(words: number, typeId: number, length: number): Ref {
    let w = this.#top;
    // A large object starts on a page (a huge one on 2 MiB), behind a filler, so that
    // compaction can shift its full pages whole (plan.ts, step 6).
    const align = this.#hugeWords > 0 && words >= this.#hugeWords ? PMD_WORDS : PAGE_WORDS;
    const large = words >= this.#alignWords && this.#alignWords > 0;
    const gap = large ? -w & (align - 1) : 0;
    if (w + gap + words > this.capacity / 8) return this.#bumpHole(words, typeId, length, large ? align : 1, gap);
    if (gap > 0) {
      writeFiller(this.#u32, w, gap);
      this.#allocGaps?.push(w, w + gap);
      w += gap;
    }
    this.#top = w + words;
    return this.#place(w, typeId, length);
  }

  /** An object's header at w, its bit in the allocation-start bitmap (see #w), its reference. */
  #place(w: number, typeId: number, length: number): Ref {
    this.#objects[w >>> 5] |= 1 << (w & 31);
    this.#u32[w * 2] = typeId;
    this.#u32[w * 2 + 1] = length;
    return this.#tags.base + w;
  }

  /** The top is full: the gaps compaction left below pinned objects, between cycles (holes.ts). */
  #bumpHole(words: number, typeId: number, length: number, align: number, gap: number): Ref {
    const w = this.#collector.active ? -1 : this.#holes.take(this.#u32, words, align);
    if (w < 0) {
      const holes = this.#collector.active ? 0 : this.#holes.words * 8;
      throw new MoveGcError(
        ErrorCode.HEAP_FULL,
        `heap full: ${words * 8} bytes requested${gap > 0 ? ` and ${gap * 8} more to start it on a page boundary` : ''}, ${this.capacity - this.#top * 8} free of ${this.capacity}` +
          `${holes > 0 ? ` (and ${holes} in gaps below pinned objects, none large enough)` : ''}; collect() to reclaim`,
      );
    }
    return this.#place(w, typeId, length);
  }

  /** Allocates an object of a declared type; its slots are null and its bytes zero. */
  alloc(type: HeapType): Ref {
    this.#check();
    if (!HeapType.is(type) || this.#typeList[type.id] !== type || type.kind !== Kind.FIXED)
      throw new MoveGcError(ErrorCode.UNKNOWN_TYPE, `not a type of this heap: ${HeapType.is(type) ? type.name : shown(type)}`);
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
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `reference slot ${shown(i)} out of range [0, ${n}) for ${this.#typeList[this.#u32[w * 2]]?.name}`);
    const s = w * 2 + 2 + i;
    if (this.#compacting) this.#touch(s >>> 1, (s >>> 1) + 1); // a slot of a long array may lie pages past its header
    return s;
  }

  getRef(obj: Ref, i: number): Ref | null {
    const r = this.#u32[this.#slot(obj, i)];
    return r === 0 ? null : this.#tags.base + r;
  }

  setRef(obj: Ref, i: number, value: Ref | null): void {
    const s = this.#slot(obj, i);
    const v = this.#wOrNull(value);
    this.#u32[s] = v;
    if (this.#barrier) this.#shade(v); // concurrent marking only: one load and a branch otherwise
  }

  /** Byte index in the heap of raw byte `offset` of obj, checked for `size` bytes. */
  #raw(obj: Ref, offset: number, size: number): number {
    const w = this.#w(obj);
    const t = this.#u32[w * 2];
    const k = this.#types.kind(t);
    let start: number;
    let len: number;
    if (k === Kind.FIXED) {
      start = w * 8 + 8 + rawOffset(this.#types.refs(t));
      len = this.#types.bytes(t);
    } else if (k === Kind.BYTE_ARRAY) {
      start = w * 8 + 8;
      len = this.#u32[w * 2 + 1];
    } else throw new MoveGcError(ErrorCode.FIELD_RANGE, `${this.#typeList[t]?.name} has no raw bytes`);
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset + size > len)
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `byte range [${shown(offset)}, +${shown(size)}) outside the ${len} raw bytes of ${this.#typeList[t]?.name}`);
    if (this.#compacting && size > 0) this.#touch(Math.floor((start + offset) / 8), Math.ceil((start + offset + size) / 8));
    return start + offset;
  }

  getU8(obj: Ref, offset: number): number {
    return this.#bytes.getUint8(this.#raw(obj, offset, 1));
  }
  setU8(obj: Ref, offset: number, v: number): void {
    const b = this.#raw(obj, offset, 1);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80 || v > 0xff) throw badValue('u8', v);
    this.#bytes.setUint8(b, v);
  }
  getU32(obj: Ref, offset: number): number {
    const b = this.#raw(obj, offset, 4);
    if (b & 3) throw new MoveGcError(ErrorCode.FIELD_RANGE, `u32 at byte ${offset} is not 4-byte aligned`);
    return this.#u32[b / 4]; // not b >>> 2: byte indices pass 2^32 in heaps over 4 GiB
  }
  setU32(obj: Ref, offset: number, v: number): void {
    const b = this.#raw(obj, offset, 4);
    if (b & 3) throw new MoveGcError(ErrorCode.FIELD_RANGE, `u32 at byte ${offset} is not 4-byte aligned`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw badValue('u32', v);
    this.#u32[b / 4] = v;
  }
  getF64(obj: Ref, offset: number): number {
    const b = this.#raw(obj, offset, 8);
    if (b & 7) throw new MoveGcError(ErrorCode.FIELD_RANGE, `f64 at byte ${offset} is not 8-byte aligned`);
    return this.#f64[b / 8];
  }
  setF64(obj: Ref, offset: number, v: number): void {
    const b = this.#raw(obj, offset, 8);
    if (b & 7) throw new MoveGcError(ErrorCode.FIELD_RANGE, `f64 at byte ${offset} is not 8-byte aligned`);
    if (typeof v !== 'number') throw badValue('f64', v);
    this.#f64[b / 8] = v;
  }
  /** A copy of raw bytes [offset, offset+length). */
  readBytes(obj: Ref, offset: number, length: number): Uint8Array {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) throw new MoveGcError(ErrorCode.FIELD_RANGE, `bad length ${shown(length)}`);
    const b = this.#raw(obj, offset, length);
    return b + length <= this.#u8.length ? this.#u8.slice(b, b + length) : new Uint8Array(this.#buffer, b, length).slice();
  }
  writeBytes(obj: Ref, offset: number, data: Uint8Array): void {
    // Check exactly what is copied: the view's own bytes, read through the built-in getters
    // (a subclass or Proxy can lie through `length`), copied from a fresh plain view.
    const src = ownBytes(data);
    const b = this.#raw(obj, offset, src.length);
    if (b + src.length <= this.#u8.length) this.#u8.set(src, b);
    else new Uint8Array(this.#buffer, b, src.length).set(src);
  }

  /** Virtual address of an object (stable only while pinned). */
  addressOf(obj: Ref): number {
    return this.address + this.#w(obj) * 8;
  }

  get address(): number {
    return this.#mem.heap.address;
  }

  // ---------------------------------------------------------------- roots and pins

  root(ref: Ref | null = null): Root {
    this.#check();
    return new Root(this, this.#roots.add(this.#wOrNull(ref)));
  }
  /** @internal */
  _rootGet(slot: number): Ref | null {
    this.#check();
    const w = this.#roots.words[slot];
    return w === 0 ? null : this.#tags.base + w;
  }
  /** @internal */
  _rootSet(slot: number, ref: Ref | null): void {
    this.#check();
    this.#roots.words[slot] = this.#wOrNull(ref);
  }
  /** @internal */
  _rootRelease(slot: number): void {
    if (this.#closed) return;
    this.#roots.release(slot);
  }

  /** Pins an object: it stays alive and never moves until the pin is released. */
  pin(ref: Ref): Pin {
    const w = this.#w(ref);
    this.#roots.pin(w);
    return new Pin(this, w);
  }
  /** @internal */
  _pinAddress(w: number): number {
    this.#check();
    return this.address + w * 8;
  }
  /** @internal */
  _unpin(w: number): void {
    this.#roots.unpin(w);
  }

  // ---------------------------------------------------------------- collection

  /** Bytes allocated (the allocation top). */
  get usedBytes(): number {
    return this.#top * 8;
  }
  get cycleActive(): boolean {
    return this.#collector.active;
  }
  /** Where the active cycle stands: 'idle', 'marking', 'planning' or 'compacting'. */
  get cyclePhase(): string {
    return this.#collector.phase;
  }
  /** Statistics of every finished cycle (most recent last, up to 1000). */
  get history(): readonly CycleStats[] {
    return this.#collector.history;
  }

  /** Changes fault injection for the next cycles (see InjectOptions). */
  inject(opts: InjectOptions): void {
    this.#check();
    this.#inject = resolveInject(opts);
    armMarking(this.#sh.ctl, this.#inject); // the marker reads them when a marking starts (the compactor's: at the flip)
  }

  /**
   * Runs a collection: finishes any active cycle, then marks (concurrently, awaiting the
   * marker), pauses to remark, plans (concurrently), and pauses to flip; returns once the
   * mutator may run again with compaction going on concurrently (await idle() for its end).
   * In `stw` mode the cycle is complete on return. Every Ref held across it is stale.
   */
  async collect(): Promise<CycleStats> {
    this.#checkOpen();
    return this.#collector.collect(() => this.#checkOpen());
  }

  /**
   * The non-blocking form: starts a cycle (concurrent marking begins at once) and returns;
   * the pauses then run inside safepoint() calls. False if a cycle is already active.
   */
  requestCollection(): boolean {
    this.#checkOpen();
    return this.#collector.request();
  }

  /**
   * A safepoint, for a loop that must not wait (a frame loop calls it between frames): runs
   * the pause that is due, if any (the marking pause once the marker is done, the compaction
   * pause once the plan is ready, the end of the cycle once every page is installed), and
   * never waits for a collector thread. Returns true when a pause ran: every Ref held across
   * the call is then stale (re-read them from Roots). Ending a cycle makes none stale.
   */
  safepoint(): boolean {
    this.#check();
    return this.#collector.safepoint();
  }

  /** Waits for the active (or requested) cycle to end; returns the last cycle's statistics. */
  async idle(): Promise<CycleStats | undefined> {
    this.#check();
    return this.#collector.idle();
  }

  /** collect() and wait for the end of the cycle it started (not of one a racing call started). */
  async gc(): Promise<CycleStats> {
    const { cycle } = await this.collect();
    const st = await this.#collector.finished(cycle);
    if (!st) throw new MoveGcError(ErrorCode.CLOSED, `cycle ${cycle} did not finish: the heap was closed`);
    return st;
  }

  /**
   * Where the collector stands, read live from its shared counters (cheap: for tools that
   * watch a cycle, e.g. a benchmark's timeline). Counters belong to the current cycle.
   */
  progress(): Progress {
    this.#check();
    return progressOf(this.#sh, this.#collector.activeCycle ?? this.history[this.history.length - 1]?.cycle ?? 0, this.#collector.phase, this.#log.entries);
  }

  /**
   * A census of the heap (as ART's and MMTk's heap dumps give): objects and bytes per type,
   * and the dead space fillers hold, by walking every object up to the top. During compaction
   * the walk faults in the pages it reads.
   */
  census(): Census {
    this.#check();
    return census(this.#u32, this.#types, this.#typeList, this.#top);
  }

  /** @internal Control words and clocks of the active cycle, for diagnosing a stuck cycle. */
  _debugState(): Record<string, unknown> {
    return debugState(this.#sh, this.#collector.phase);
  }

  /** Walks the heap and checks every object and reference (see verify.ts). */
  verify(): VerifyResult {
    this.#check();
    return verifyHeap(this.#u32, this.#types.rows, this.#typeList.length, this.#top, this.#roots.rootWords());
  }

  // ---------------------------------------------------------------- lifecycle

  #check(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): MoveGcError {
    const lost = this.#lost;
    if (lost && !this.#closing) return new MoveGcError(lost.code, `the heap is lost (close() it): ${lost.message}`, { cause: lost });
    return new MoveGcError(ErrorCode.CLOSED, 'heap is closed');
  }

  /** For calls that start work: refused once close() was called, even before it completes. */
  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
    if (this.#closing) throw new MoveGcError(ErrorCode.CLOSED, 'heap is closing');
  }

  /** True once close() was called, or once the heap was lost (a failed compaction pause that could not be undone: close() it). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Finishes any active cycle, stops the collector threads, and releases every mapping and
   * file descriptor. Idempotent. (A heap never closed does not keep the process alive; at
   * exit the kernel takes back its mappings and descriptors, mid-cycle or not.)
   */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#collector.finishForClose();
    this.#closed = true;
    liveHeaps.delete(this);
    this.#tags.release();
    const { stuck, gone } = await this.#collector.stop();
    if (stuck.length === 0) this.#mem.close();
    else {
      // close() must not wait for a debugger; a stuck thread may still touch the mappings.
      this.log.warn({ threads: stuck }, 'collector threads did not exit: the heap is released when they do');
      void gone.then(() => this.#mem.close());
    }
    this.log.info({ cycles: this.history.length }, 'heap closed');
  }
}
