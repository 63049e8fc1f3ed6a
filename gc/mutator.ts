/**
 * The heap as the mutator's calls reach it: references, allocation (allocate.ts: black while
 * marking, page-aligned for large objects, into holes between cycles), field access, roots and pins.
 * Every access checks its reference: the epoch tag (refs.ts), and that it names an object's
 * first word (the allocator keeps an object-start bitmap), so an interior or forged number is
 * refused before it reaches the heap. Two checks are for the collector, each one load and a
 * branch while it is idle: setRef's write barrier (concurrent marking, barrier.ts), and during
 * compaction the state of the page an access touches (a page not yet installed goes to the
 * fault path, selfservice.ts: ART's SIGBUS handler, run before the kernel is involved).
 *
 * Heap (heap.ts) extends this with creation, the collector and the lifecycle. What they need
 * of each other goes through MutatorInternals, handed to Heap's constructor and nowhere else,
 * so a caller holding the heap reaches none of it.
 */
import { MoveGcError, ErrorCode, invalidArg, shown } from './errors.js';
import { BarrierLog } from './barrier.js';
import type { MutatorInternals, MutatorParts } from './cycle-state.js';
import type { HeapLogger as Logger } from './log.js';
import { allMapped } from './claim.js';
import { Ctl, PagePhase, armMarking, type Shared } from './shared.js';
import type { SelfService } from './selfservice.js';
import { BUILD, type UnbuiltReads } from './unbuilt-reads.js';
import type { UnbuiltWrites } from './unbuilt-writes.js';
import { hugeObjectWords, largeObjectWords, resolveInject, type InjectOptions } from './options.js';
import { RefTags, type Ref } from './refs.js';
import { HeapType, TypeRegistry, type TypeSpec } from './heap-types.js';
import { badValue, copyBytes, fitsU32, fitsU8, ownByteLength } from './values.js';
import { Pin, Root, RootTable, makePin, makeRoot, rootOwnerOf, type RootOwner } from './roots.js';
import { BumpAllocator } from './allocate.js';
import {
  BYTE_ARRAY_TYPE, HEAP_START_WORD, Kind, PAGE_SHIFT_WORDS, REF_ARRAY_TYPE, TypeTable, arrayWords, headerWords, rawOffset, refCount,
} from './layout.js';

/**
 * Passed by Heap.create to the constructors, which are private to TypeScript only: called from
 * JavaScript without it (new Heap(), or its base class), they refuse with a typed error rather
 * than fail half way with a TypeError. Not exported from the package.
 */
export const HEAP_MAKE = Symbol('Heap');

/** Heaps not closed: a reference of one handed to another is named as such (#refError). */
const liveHeaps = new Set<MutatorHeap>();

/** Accesses to installed pages between two looks at whether every page is (#settle). */
const SETTLE_EVERY = 1024;

export class MutatorHeap {
  readonly capacity: number;
  readonly log: Logger;
  readonly #address: number;
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
  readonly #tags = new RefTags();
  readonly #roots = new RootTable();
  /** Bump allocation, its top and the holes below pinned objects (allocate.ts). */
  readonly #alloc: BumpAllocator;
  #closing = false;
  #closed = false;
  /** Why the heap refuses every call though close() was not called (CycleDriver: mut.lose). */
  #lost: MoveGcError | null = null;
  #inject: Readonly<InjectOptions>;
  /** Which of sh.objects holds this epoch's object starts (the other is the plan's next). */
  #epochStarts = 0;
  /** Words of the next-epoch bitmap that may hold stale bits from its last use. */
  #nextStartsExtent = 0;
  /** The write barrier (concurrent marking): on, its black boundary, its log. */
  #barrier = false;
  #blackStart = 0;
  /**
   * Between the marking pause and the flip: objects below this word that marking left
   * unmarked are garbage, though their start bits stay in this epoch's bitmap until the flip.
   * A reference to one can only be forged (every Ref handed out before the pause is stale), and
   * a root, pin or slot made of it would survive into a heap that no longer has its object.
   */
  #unmarkedBelow = 0;
  readonly #log: BarrierLog;
  /**
   * Compaction is under way: every accessor looks up the state word of the page it touches and
   * hands a page not yet installed to the fault path (selfservice.ts). Off: one load and a branch.
   */
  #compacting = false;
  /** Accesses to installed pages while compacting until the next #settle (the warm-up runs it every time). */
  #settleIn = SETTLE_EVERY;
  #settleEvery = SETTLE_EVERY;
  readonly #pageState: Int32Array;
  readonly #faults: SelfService;
  /** Reads of unbuilt pages from from-space while compacting (unbuilt-reads.ts), or null: every access builds. */
  readonly #reads: UnbuiltReads | null;
  readonly #writes: UnbuiltWrites | null;
  /** Compacting, with #writes: the field stores try from-space first. */
  #writing = false;
  /** Compacting, with #reads: the read accessors try from-space first (one load and a branch otherwise). */
  #reading = false;
  /** What this heap's Roots and Pins call back into (roots.ts RootOwner): reachable from them only. */
  readonly #owner: RootOwner;

  protected constructor(make: symbol, p: MutatorParts, expose: (internals: MutatorInternals) => void) {
    if (make !== HEAP_MAKE) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a heap is made by Heap.create()');
    this.capacity = p.opts.capacity;
    this.log = p.log;
    this.#address = p.address;
    this.#inject = p.opts.inject;
    this.#u32 = p.u32;
    this.#types = p.types;
    this.#typeReg = new TypeRegistry(this.#types);
    this.#typeList = this.#typeReg.list;
    this.#buffer = p.view;
    this.#bytes = new DataView(p.view);
    this.#u8 = new Uint8Array(p.view, 0, Math.min(p.view.byteLength, 2 ** 32));
    this.#f64 = new Float64Array(p.view);
    this.#sh = p.sh;
    this.#alloc = new BumpAllocator(this.#u32, this.#sh.objects[0], this.capacity, largeObjectWords(p.opts), hugeObjectWords(p.opts));
    this.#log = new BarrierLog(this.#sh.logRing, this.#sh.ctl);
    this.#pageState = this.#sh.pageState;
    this.#faults = p.faults;
    this.#reads = p.reads;
    this.#writes = p.writes;
    this.#tags.retag();
    armMarking(this.#sh.ctl, this.#inject);
    this.#owner = rootOwnerOf(this.#roots, {
      check: () => this.#check(),
      encode: (w) => this.#tags.base + w,
      word: (ref) => this.#wOrNull(ref),
      address: this.#address,
    });
    expose(this.#internals());
  }

  /** The mutator's side as the phase driver (cycle.ts) and Heap see it. */
  #internals(): MutatorInternals {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const heap = this;
    return {
      u32: this.#u32,
      get top() { return heap.#alloc.top; },
      set top(v: number) { heap.#alloc.top = v; },
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
      setUnmarkedBelow: (w: number) => void (this.#unmarkedBelow = w),
      get compacting() { return heap.#compacting; },
      setCompacting: (on: boolean) => {
        if (on) {
          this.#faults.begin(this.#inject);
          this.#reads?.begin();
          this.#writes?.begin();
        }
        this.#setCompacting(on);
      },
      barrierLog: this.#log,
      selfService: this.#faults,
      reads: this.#reads,
      holes: this.#alloc.holes,
      lose: (e: MoveGcError) => {
        this.#lost = e;
        this.#closed = true; // every call refuses from here; close() still releases everything
        this.log.error({ err: e }, 'the heap is lost: close() it');
      },
      get epochStarts() { return heap.#epochStarts; },
      set epochStarts(v: number) {
        heap.#epochStarts = v;
        heap.#alloc.objects = heap.#sh.objects[v];
      },
      get allocGaps() { return heap.#alloc.gaps; },
      set allocGaps(v: number[] | null) { heap.#alloc.gaps = v; },
      get nextStartsExtent() { return heap.#nextStartsExtent; },
      set nextStartsExtent(v: number) { heap.#nextStartsExtent = v; },
      typeList: this.#typeList,
      types: this.#types,
      inject: () => this.#inject,
      setCycleActive: (f: () => boolean) => void (this.#alloc.cycleActive = f),
      register: () => void liveHeaps.add(this),
      closing: () => void (this.#closing = true),
      retire: () => {
        this.#closed = true;
        liveHeaps.delete(this);
        this.#tags.release();
      },
      check: () => this.#check(),
      checkOpen: () => this.#checkOpen(),
      setChecks: (compacting: boolean, barrier: boolean, settleEvery = SETTLE_EVERY) => {
        this.#settleIn = this.#settleEvery = settleEvery;
        this.#setCompacting(compacting);
        this.#barrier = barrier;
        this.#blackStart = 0;
      },
    };
  }

  // ---------------------------------------------------------------- references

  #refError(ref: unknown): MoveGcError {
    const others: number[] = [];
    for (const h of liveHeaps) if (h !== this) others.push(h.#tags.tag);
    return this.#tags.error(ref, others);
  }

  /** The accessors' page checks on or off; #reading follows (it is #compacting with #reads). */
  #setCompacting(on: boolean): void {
    this.#compacting = on;
    this.#reading = on && this.#reads !== null;
    this.#writing = on && this.#writes !== null;
  }

  /** Word index of a reference, checked; during compaction its header's page is installed first. */
  #w(ref: unknown): number {
    const w = this.#word(ref);
    if (this.#compacting) {
      if (this.#pageState[w >>> PAGE_SHIFT_WORDS] !== PagePhase.MAPPED) this.#faults.fault(w >>> PAGE_SHIFT_WORDS);
      else if (--this.#settleIn === 0) this.#settle();
    }
    return w;
  }

  /**
   * Every page installed: the accessors' checks go off now, not at the cycle's end, which
   * comes from the event loop, a safepoint or the next collect(). A loop that never yields
   * between collections (Octane Splay's) paid them up to its next collect(): getRef and
   * setRef took their from-space detours to installed pages, and found the object twice.
   * Looked at once every SETTLE_EVERY accesses to installed pages (two loads).
   */
  #settle(): void {
    this.#settleIn = this.#settleEvery;
    if (allMapped(this.#sh)) this.#setCompacting(false);
  }

  /** Word index of a reference, checked, wherever its page is. */
  #word(ref: unknown): number {
    if (this.#closed) throw this.#closedError();
    if (typeof ref !== 'number') throw this.#refError(ref); // before any arithmetic: a BigInt or Symbol throws a TypeError
    const w = ref >>> 0;
    if (ref - w !== this.#tags.base) throw this.#refError(ref);
    if (w < HEAP_START_WORD || w >= this.#alloc.top) throw new MoveGcError(ErrorCode.INVALID_REFERENCE, `reference ${ref} is outside the heap's objects`);
    if ((this.#alloc.objects[w >>> 5] & (1 << (w & 31))) === 0) throw new MoveGcError(ErrorCode.INVALID_REFERENCE, `reference ${ref} is not the start of an object (an interior or forged reference)`);
    if (w < this.#unmarkedBelow && (this.#sh.starts[w >>> 5] & (1 << (w & 31))) === 0) throw new MoveGcError(ErrorCode.INVALID_REFERENCE, `reference ${ref} is to an object the marking pause found unreachable (a forged reference)`);
    return w;
  }

  /** During compaction: the pages of words [lo, end) are installed before the access (selfservice.ts). */
  #touch(lo: number, end: number): void {
    for (let q = lo >>> PAGE_SHIFT_WORDS, last = (end - 1) >>> PAGE_SHIFT_WORDS; q <= last; q++) if (this.#pageState[q] !== PagePhase.MAPPED) this.#faults.fault(q);
  }

  /**
   * A stored reference's word (0: null), checked, wherever its page is: storing it reads
   * nothing of the object, so its page is not built for it (a store's value is the mutator's
   * most common reference to a page nobody has touched yet).
   */
  #wOrNull(ref: unknown): number {
    return ref === null ? 0 : this.#word(ref);
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
    return this.#tags.base + this.#alloc.allocate(words, typeId, length);
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
    const w = this.#w(obj);
    const t = this.#typeList[this.#u32[w * 2]];
    if (t === undefined || t.kind === Kind.FILLER) this.#checkHeader(w);
    return t;
  }

  /** Reference slots of the object (array length for reference arrays). */
  refCount(obj: Ref): number {
    const w = this.#w(obj);
    const n = refCount(this.#u32, this.#types.rows, w);
    if (n === 0) this.#checkHeader(w);
    return n;
  }

  /** Elements of an array (references or bytes); raw byte count for declared types. */
  length(obj: Ref): number {
    if (this.#reading) {
      const w = this.#unbuiltAt(obj);
      const v = w < 0 ? BUILD : this.#reads!.length(w);
      if (v !== BUILD) return v;
    }
    const w = this.#w(obj);
    const t = this.#u32[w * 2];
    const k = this.#types.kind(t);
    if (k === Kind.FIXED) return this.#types.bytes(t);
    if (k !== Kind.REF_ARRAY && k !== Kind.BYTE_ARRAY) this.#checkHeader(w);
    return this.#u32[w * 2 + 1];
  }

  /**
   * An object start whose header is no object's (layout.ts headerWords) was written outside
   * the API: said as such, not as a field out of range of a type named "undefined". Off the
   * hot paths: called where the fast check already failed.
   */
  #checkHeader(w: number): void {
    if (headerWords(this.#u32, this.#types.rows, w) === 0)
      throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `the object at word ${w} has a malformed header (type id ${this.#u32[w * 2]}, length ${this.#u32[w * 2 + 1]}): the heap was written outside the API`);
  }

  #slot(obj: Ref, i: number): number {
    const w = this.#w(obj);
    const n = refCount(this.#u32, this.#types.rows, w);
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= n) {
      if (typeof i !== 'number') throw invalidArg(`reference slot must be a number, got ${shown(i)}`);
      if (n === 0) this.#checkHeader(w);
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `reference slot ${i} out of range [0, ${n}) for ${this.#typeList[this.#u32[w * 2]]?.name}`);
    }
    const s = w * 2 + 2 + i;
    if (this.#compacting) this.#touch(s >>> 1, (s >>> 1) + 1); // a slot of a long array may lie pages past its header
    return s;
  }

  getRef(obj: Ref, i: number): Ref | null {
    if (this.#reading) return this.#unbuiltRef(obj, i);
    const r = this.#u32[this.#slot(obj, i)];
    return r === 0 ? null : this.#tags.base + r;
  }

  // getRef while compacting with reads from from-space (unbuilt-reads.ts): out of line, so
  // that getRef stays as small as it was for V8 to inline into its callers.
  #unbuiltRef(obj: Ref, i: number): Ref | null {
    const w = this.#word(obj);
    // Header and slot on installed pages: the usual path at once. Checked here, not in ref(),
    // so that reads of built pages, most of them, pay two loads (Octane Splay with reads from
    // from-space: 0.7x build's runs/s without).
    const v = this.#slotMapped(w, i) ? BUILD : this.#reads!.ref(w, i);
    if (v !== BUILD) return v === 0 ? null : this.#tags.base + v;
    const r = this.#u32[this.#slot(obj, i)];
    return r === 0 ? null : this.#tags.base + r;
  }

  // The raw reads while compacting with reads from from-space, out of line as #unbuiltRef:
  // obj's word if its header's page is not installed (from-space may serve the read), else -1
  // (a header on an installed page takes the usual path at once).
  #unbuiltAt(obj: Ref): number {
    const w = this.#word(obj);
    return this.#pageState[w >>> PAGE_SHIFT_WORDS] === PagePhase.MAPPED ? -1 : w;
  }

  setRef(obj: Ref, i: number, value: Ref | null): void {
    if (this.#writing) return this.#unbuiltSetRef(obj, i, value);
    const s = this.#slot(obj, i);
    const v = this.#wOrNull(value);
    this.#u32[s] = v;
    if (this.#barrier) this.#shade(v); // concurrent marking only: one load and a branch otherwise
  }

  /** The header's page and reference slot i's (its word: (w * 2 + 2 + i) / 2) both installed. */
  #slotMapped(w: number, i: number): boolean {
    const ps = this.#pageState;
    return typeof i === 'number' && ps[w >>> PAGE_SHIFT_WORDS] === PagePhase.MAPPED && ps[(w + 1 + (i >>> 1)) >>> PAGE_SHIFT_WORDS] === PagePhase.MAPPED;
  }

  // setRef while compacting with writes to from-space (unbuilt-writes.ts), out of line as
  // #unbuiltRef: a slot on a page nobody has claimed is stored where the object still is.
  #unbuiltSetRef(obj: Ref, i: number, value: Ref | null): void {
    const w = this.#word(obj);
    const v = this.#wOrNull(value);
    if (this.#slotMapped(w, i) || !this.#writes!.ref(w, i, v)) this.#u32[this.#slot(obj, i)] = v;
    if (this.#barrier) this.#shade(v);
  }

  // The raw stores while compacting with writes to from-space: true if stored there. The
  // value is checked first, by the caller.
  #unbuiltStore(obj: Ref, offset: number, size: 1 | 4 | 8, v: number): boolean {
    if (typeof offset !== 'number') return false; // the usual path says what is wrong
    const w = this.#word(obj);
    if (this.#pageState[w >>> PAGE_SHIFT_WORDS] === PagePhase.MAPPED && this.#pageState[(w + 1 + Math.floor(offset / 8)) >>> PAGE_SHIFT_WORDS] === PagePhase.MAPPED) return false;
    return this.#writes!.raw(w, offset, size, v);
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
    } else {
      this.#checkHeader(w);
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `${this.#typeList[t].name} has no raw bytes`);
    }
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset + size > len) {
      if (typeof offset !== 'number') throw invalidArg(`byte offset must be a number, got ${shown(offset)}`);
      throw new MoveGcError(ErrorCode.FIELD_RANGE, `byte range [${offset}, +${size}) outside the ${len} raw bytes of ${this.#typeList[t]?.name}`);
    }
    if (this.#compacting && size > 0) this.#touch(Math.floor((start + offset) / 8), Math.ceil((start + offset + size) / 8));
    return start + offset;
  }

  getU8(obj: Ref, offset: number): number {
    if (this.#reading) {
      const w = this.#unbuiltAt(obj);
      const v = w < 0 ? BUILD : this.#reads!.u8(w, offset);
      if (v !== BUILD) return v;
    }
    return this.#bytes.getUint8(this.#raw(obj, offset, 1));
  }
  setU8(obj: Ref, offset: number, v: number): void {
    if (this.#writing && fitsU8(v) && this.#unbuiltStore(obj, offset, 1, v)) return;
    const b = this.#raw(obj, offset, 1);
    if (!fitsU8(v)) throw badValue('u8', v);
    this.#bytes.setUint8(b, v);
  }
  getU32(obj: Ref, offset: number): number {
    if (this.#reading) {
      const w = this.#unbuiltAt(obj);
      const v = w < 0 ? BUILD : this.#reads!.u32(w, offset);
      if (v !== BUILD) return v;
    }
    const b = this.#raw(obj, offset, 4);
    if (b & 3) throw new MoveGcError(ErrorCode.FIELD_RANGE, `u32 at byte ${offset} is not 4-byte aligned`);
    return this.#u32[b / 4]; // not b >>> 2: byte indices pass 2^32 in heaps over 4 GiB
  }
  setU32(obj: Ref, offset: number, v: number): void {
    if (this.#writing && fitsU32(v) && this.#unbuiltStore(obj, offset, 4, v)) return;
    const b = this.#raw(obj, offset, 4);
    if (b & 3) throw new MoveGcError(ErrorCode.FIELD_RANGE, `u32 at byte ${offset} is not 4-byte aligned`);
    if (!fitsU32(v)) throw badValue('u32', v);
    this.#u32[b / 4] = v;
  }
  getF64(obj: Ref, offset: number): number {
    if (this.#reading) {
      const w = this.#unbuiltAt(obj);
      if (w >= 0 && this.#reads!.f64(w, offset)) return this.#reads!.value;
    }
    const b = this.#raw(obj, offset, 8);
    if (b & 7) throw new MoveGcError(ErrorCode.FIELD_RANGE, `f64 at byte ${offset} is not 8-byte aligned`);
    return this.#f64[b / 8];
  }
  setF64(obj: Ref, offset: number, v: number): void {
    if (this.#writing && typeof v === 'number' && this.#unbuiltStore(obj, offset, 8, v)) return;
    const b = this.#raw(obj, offset, 8);
    if (b & 7) throw new MoveGcError(ErrorCode.FIELD_RANGE, `f64 at byte ${offset} is not 8-byte aligned`);
    if (typeof v !== 'number') throw badValue('f64', v);
    this.#f64[b / 8] = v;
  }
  /** A copy of raw bytes [offset, offset+length). */
  readBytes(obj: Ref, offset: number, length: number): Uint8Array {
    if (typeof length !== 'number') throw invalidArg(`length must be a number, got ${shown(length)}`);
    if (!Number.isInteger(length) || length < 0) throw new MoveGcError(ErrorCode.FIELD_RANGE, `bad length ${length}`);
    if (this.#reading) {
      const v = this.#reads!.bytes(this.#word(obj), offset, length);
      if (v !== null) return v;
    }
    const b = this.#raw(obj, offset, length);
    return b + length <= this.#u8.length ? this.#u8.slice(b, b + length) : new Uint8Array(this.#buffer, b, length).slice();
  }
  writeBytes(obj: Ref, offset: number, data: Uint8Array): void {
    // Check exactly what is copied: the view's own bytes, read through the built-ins (a
    // subclass or Proxy can lie through `length`; values.ts).
    const n = ownByteLength(data);
    const b = this.#raw(obj, offset, n);
    if (b + n <= this.#u8.length) copyBytes(this.#u8, b, data);
    else copyBytes(new Uint8Array(this.#buffer, b, n), 0, data);
  }

  /** The heap's virtual address. */
  get address(): number {
    return this.#address;
  }

  /** Virtual address of an object (stable only while pinned). */
  addressOf(obj: Ref): number {
    return this.address + this.#w(obj) * 8;
  }


  // ---------------------------------------------------------------- roots and pins

  root(ref: Ref | null = null): Root {
    this.#check();
    return makeRoot(this.#owner, this.#roots.add(this.#wOrNull(ref)));
  }
  /** Pins an object: it stays alive and never moves until the pin is released. */
  pin(ref: Ref): Pin {
    const w = this.#w(ref);
    this.#roots.pin(w);
    return makePin(this.#owner, w);
  }

  /** Bytes allocated (the allocation top). */
  get usedBytes(): number {
    return this.#alloc.top * 8;
  }
  /** Changes fault injection for the next cycles (see InjectOptions). */
  inject(opts: InjectOptions): void {
    this.#check();
    this.#inject = resolveInject(opts);
    armMarking(this.#sh.ctl, this.#inject); // the marker reads them when a marking starts (the compactor's: at the flip)
  }

  // ---------------------------------------------------------------- state

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

  /** True once close() has finished (from its start collect() and the like refuse, ERR_CLOSED), or once the heap was lost (a failed compaction pause that could not be undone: close() it). */
  get closed(): boolean {
    return this.#closed;
  }
}
