/**
 * Reads of a page not yet built, served from from-space: the accessors' read path while a
 * cycle compacts (options.unbuiltReads 'from-space', with faultPath 'self').
 *
 * A to-space page is a pure function of its from-space sources and the plan's tables (its
 * builder decides nothing), and nobody writes an object on a page that is not built except
 * in those sources: a mutator write builds the page first (selfservice.ts), or is made in
 * from-space with the page claimed (unbuilt-writes.ts: a reference tagged, untagged here).
 * So a read of a word on an unclaimed
 * page can take the word from where it still is, and forward it if it is a reference, as the
 * builder would: the same value, without building the page (13-50 us on this machine: a page
 * of references forwards 1024 slots) and without installing it (a MOVE or COPY call). The
 * page is left to the compactor. This is a read barrier's slow path (Baker's to-space
 * invariant relaxed for objects nobody can have written yet); ART has no such path, as its
 * compiled code reads the heap directly and only a fault can stop it.
 *
 * Why the value is right: the page is not installed before the read and still not after it.
 * Its sources are recycled as buffers or released only below the lowest page not yet
 * installed (compact.ts consumedLimit), so not while it is not; builders only read them. A
 * WHOLE page is the exception: its source page, which only it reads, moves away once it is
 * claimed, so for it the page must be unclaimed (UNPROCESSED) before and after. While
 * another builder has a page, its state says installed only once it is, and a read in
 * between is served here rather than waiting for that builder's run (up to 1 ms). Anything
 * else (a header that is no object's, a reference past the plan's top, an object the tables
 * cannot place) is left to the build path, which handles it and counts it. And a page the
 * mutator has been through the fault path for this cycle (SelfService.seen) counts as
 * installed whatever its state word says: the kernel has it (the state word can lag the
 * install), and the mutator may have written it since: a read must see that write.
 *
 * Where an object lives in from-space: between its page's first object and the next page's
 * (plan.ts pageFirst), found by bisecting forward (forward.ts firstForwardedTo: about 11
 * forwards of two popcounts each), then checked to be a marked object start landing at the
 * word asked for. It walked the object starts from the page's first before: a page of Octane
 * Splay's small objects holds about 100, and the walk was most of a read's 1-2 us.
 */
import { clearBit, nextSet, setBit, testBit } from './bits.js';
import { planTop } from './build.js';
import { firstForwardedTo, forward, storedWord } from './forward.js';
import { Kind, PAGE_SHIFT_WORDS, PAGE_WORDS, TYPE_ROW, rawOffset, refCount } from './layout.js';
import { markedHeaderWords } from './mark.js';
import { NONE } from './plan.js';
import { Ctl, Hist, PageKind, PagePhase, SEG_FIELDS, SampledClock, Seg, sleepSync, type Shared } from './shared.js';
import type { SelfService } from './selfservice.js';

/** Returned when a read must take the build path. */
export const BUILD = -1;
const TOP = 0;
const NEW_TOP = 1;
/** sourceOf's cache: 1024 objects, 12 KiB. */
const SOURCE_CACHE_BITS = 10;
const SOURCE_CACHE = 1 << SOURCE_CACHE_BITS;
/** Where to-space word w is kept in sourceOf's cache. */
const cacheSlot = (w: number): number => (w ^ (w >>> SOURCE_CACHE_BITS)) & (SOURCE_CACHE - 1);

/**
 * From-space word of the live object compaction moves to to-space word w, or BUILD: `top` is
 * the plan's top (no object lies at or above it), `newTop` where to-space's live data ends
 * (objects at or above it were allocated since the flip: in to-space only).
 */
export function sourceWord(sh: Shared, top: number, newTop: number, w: number): number {
  const { chunkNew, live, starts, pageFirst } = sh;
  if (w >= newTop) return BUILD;
  const q = w >>> PAGE_SHIFT_WORDS;
  const first = pageFirst[q];
  if (first === NONE) return BUILD;
  // Objects keep their order: the one landing at w starts at or after the page's first
  // object and at or before the next page's first (which it may be). A page at or past
  // newTop holds no object of this plan: its pageFirst is an earlier plan's.
  const next = q + 1 < pageFirst.length && (q + 1) * PAGE_WORDS < newTop ? pageFirst[q + 1] : NONE;
  const limit = next === NONE ? top : Math.min(next + 1, top);
  const o = nextSet(live, firstForwardedTo(chunkNew, live, first, limit, w), limit);
  // Only a marked object start that lands exactly at w is one (else the build path decides).
  return o < limit && testBit(starts, o) && forward(chunkNew, live, o) === w ? o : BUILD;
}

export class UnbuiltReads {
  readonly #sh: Shared;
  readonly #heap: Uint32Array;
  readonly #from: Uint32Array;
  readonly #fromBytes: DataView;
  readonly #fromF64: Float64Array;
  readonly #types: Int32Array;
  readonly #state: Int32Array;
  readonly #faults: SelfService;
  /**
   * [TOP] this cycle's plan top (build.ts planTop): no object lies at or above it; [NEW_TOP]
   * where the last segment's live data ends in to-space: objects at or above it were allocated
   * since the flip. In a Uint32Array, not fields: a field that went from a small integer to a
   * double changed this class's hidden map at the first cycle, and every caller optimized
   * before it deoptimized (heap.warmup).
   */
  readonly #tops = new Uint32Array(2);
  /** Pages the last #rawAt read from from-space (its data's, its header's), for stillUnbuilt(). */
  #p0 = 0;
  #p1 = 0;
  #ph = 0;
  #t0 = 0;
  readonly #clock = new SampledClock();
  /** inject.readHoldMs was served this cycle. */
  #held = false;

  constructor(sh: Shared, heap: Uint32Array, from: Uint32Array, types: Int32Array, faults: SelfService) {
    this.#faults = faults;
    this.#sh = sh;
    this.#heap = heap;
    this.#from = from;
    this.#fromBytes = new DataView(from.buffer, from.byteOffset, from.byteLength);
    this.#fromF64 = new Float64Array(from.buffer, from.byteOffset, Math.floor(from.byteLength / 8));
    this.#types = types;
    this.#state = sh.pageState;
  }

  /** At the compaction pause, once the plan is final. */
  begin(): void {
    const sh = this.#sh;
    this.#tops[TOP] = planTop(sh);
    const last = Atomics.load(sh.ctl, Ctl.SEGMENTS) - 1;
    this.#tops[NEW_TOP] = last >= 0 ? sh.segments[last * SEG_FIELDS + Seg.NEW_END] : 0;
    this.#held = false;
    this.#clock.reset();
    this.#cachedFor.fill(0); // the last cycle's plan
  }

  /** inject.readHoldMs: once a cycle, between the look at a page and the read. */
  #hold(): void {
    if (this.#held) return;
    this.#held = true;
    const ms = Atomics.load(this.#sh.ctl, Ctl.INJECT_READ_HOLD_MS);
    if (ms > 0) sleepSync(ms);
  }

  /** f64's value, where f64() found one (in a typed array for the reason #tops is). */
  readonly #value = new Float64Array(1);
  get value(): number {
    return this.#value[0];
  }

  /** getU8's value at raw byte `offset` of the object at to-space word w, or BUILD. */
  u8(w: number, offset: number): number {
    const f = this.#rawAt(w, offset, 1);
    if (f === BUILD) return BUILD;
    this.#hold();
    const v = this.#fromBytes.getUint8(f);
    return this.#stillUnbuilt() ? v : BUILD;
  }

  /** getU32's value, or BUILD (a misaligned offset too: the usual path says so). */
  u32(w: number, offset: number): number {
    if (typeof offset !== 'number' || (offset & 3) !== 0) return BUILD;
    const f = this.#rawAt(w, offset, 4);
    if (f === BUILD) return BUILD;
    this.#hold();
    const v = this.#fromBytes.getUint32(f, true);
    return this.#stillUnbuilt() ? v : BUILD;
  }

  /** getF64's value into `value` (any double can be one: no sentinel), true if read. */
  f64(w: number, offset: number): boolean {
    if (typeof offset !== 'number' || (offset & 7) !== 0) return false;
    const f = this.#rawAt(w, offset, 8);
    if (f === BUILD) return false;
    this.#hold();
    this.#value[0] = this.#fromF64[f / 8];
    return this.#stillUnbuilt();
  }

  /** readBytes' copy (a checked length, at most two pages), or null. */
  bytes(w: number, offset: number, length: number): Uint8Array | null {
    if (length === 0) return null;
    const f = this.#rawAt(w, offset, length);
    if (f === BUILD) return null;
    this.#hold();
    const v = new Uint8Array(this.#fromBytes.buffer, this.#fromBytes.byteOffset + f, length).slice();
    return this.#stillUnbuilt() ? v : null;
  }

  /** Page q, as this path sees it: 1 installed, 0 readable from from-space, -1 neither (a WHOLE page claimed: the build path). */
  page(q: number): number {
    return this.#page(q);
  }
  #page(q: number): number {
    const s = Atomics.load(this.#state, q);
    if (s === PagePhase.MAPPED || this.#faults.seen(q)) return 1;
    return s === PagePhase.UNPROCESSED || this.#sh.pageKind[q] !== PageKind.WHOLE ? 0 : -1;
  }

  /**
   * From-space word of the live object compaction moves to to-space word w, or BUILD. The
   * answer depends only on the plan's tables, fixed from the compaction pause to the cycle's
   * end, so it is kept for the cycle: a frame reads several fields of one object, and each
   * read asked again (about 11 forwards each).
   */
  sourceOf(w: number): number {
    const i = cacheSlot(w);
    if (this.#cachedFor[i] === w + 1) return this.#cachedAt[i];
    const o = sourceWord(this.#sh, this.#tops[TOP], this.#tops[NEW_TOP], w);
    this.#cachedFor[i] = w + 1;
    this.#cachedAt[i] = o;
    this.#cachedWords[i] = -1;
    return o;
  }
  /** sourceOf's cache, direct-mapped: the to-space word + 1 (0: empty), its answer, its header's words (-1: not looked at). */
  readonly #cachedFor = new Uint32Array(SOURCE_CACHE);
  readonly #cachedAt = new Int32Array(SOURCE_CACHE);
  readonly #cachedWords = new Int32Array(SOURCE_CACHE);

  /**
   * markedHeaderWords of o = sourceOf(w) in from-space, while w's header page is unbuilt (so
   * its sources are intact): kept with o, as nothing rewrites a header (a store in from-space
   * writes fields only, unbuilt-writes.ts).
   */
  #headerWords(w: number, o: number): number {
    const i = cacheSlot(w);
    const kept = this.#cachedFor[i] === w + 1 && this.#cachedAt[i] === o;
    if (kept && this.#cachedWords[i] >= 0) return this.#cachedWords[i];
    const n = markedHeaderWords(this.#from, this.#types, this.#sh.starts, this.#sh.live, o);
    if (kept) this.#cachedWords[i] = n;
    return n;
  }

  /**
   * length()'s value for the object at to-space word w, or BUILD: the header is read where it
   * is (a header never changes), so asking an array's length builds no page.
   */
  length(w: number): number {
    const qh = w >>> PAGE_SHIFT_WORDS;
    if (this.#page(qh) !== 0) return BUILD;
    const t0 = this.#clock.start();
    const o = this.sourceOf(w);
    if (o === BUILD || this.#headerWords(w, o) === 0) return BUILD;
    const row = this.#from[o * 2] * TYPE_ROW;
    const kind = this.#types[row];
    this.#hold();
    const v = kind === Kind.FIXED ? this.#types[row + 2] : this.#from[o * 2 + 1];
    // Still unclaimed: its sources were neither recycled nor released under the read.
    return this.#page(qh) === 0 ? this.#done(t0, v) : BUILD;
  }

  /**
   * getRef's value: slot i of the object at to-space word w, forwarded (0: null), or BUILD
   * (both its pages are installed, or this path cannot tell: the accessor goes the usual way).
   */
  ref(w: number, i: number): number {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0) return BUILD;
    const s = w * 2 + 2 + i; // u32 index of the slot
    const qh = w >>> PAGE_SHIFT_WORDS;
    const qs = Math.floor(s / 2) >>> PAGE_SHIFT_WORDS;
    if (qs >= this.#state.length) return BUILD; // past any object: the usual path says so
    const h = this.#page(qh);
    const p = qs === qh ? h : this.#page(qs);
    if ((h === 1 && p === 1) || h < 0 || p < 0) return BUILD;
    const t0 = this.#clock.start();
    const o = this.sourceOf(w);
    if (o === BUILD) return BUILD;
    const n = this.refsOf(w, o, h);
    if (i >= n) return BUILD;
    this.#hold();
    const v = p === 1 ? this.#heap[s] : this.#from[o * 2 + 2 + i];
    // Still unclaimed: nothing rewrote, moved or released those sources meanwhile.
    if ((h === 0 && this.#page(qh) !== 0) || (p === 0 && this.#page(qs) !== 0)) return BUILD;
    if (p === 1 || v === 0) return this.#done(t0, v);
    const stored = storedWord(this.#sh.live, v); // the mutator's own store since the flip (unbuilt-writes.ts)
    if (stored >= 0) return this.#done(t0, stored);
    if (v >= this.#tops[TOP]) return BUILD; // the builder keeps it as it is, and counts it
    return this.#done(t0, forward(this.#sh.chunkNew, this.#sh.live, v));
  }

  /**
   * The from-space byte index of raw bytes [offset, offset+size) of the object at to-space
   * word w, or BUILD. A hit must be confirmed after the read with #stillUnbuilt().
   */
  #rawAt(w: number, offset: number, size: number): number {
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || size < 1) return BUILD;
    const qh = w >>> PAGE_SHIFT_WORDS;
    const h = this.#page(qh);
    if (h < 0) return BUILD;
    this.#t0 = this.#clock.start();
    // The object's from-space word only where a word is read there: the lookup (sourceOf) is
    // most of this path's cost, and an installed header with installed data needs none (done
    // for every raw read of a built page, it made Octane Splay 0.6x as fast: 23% of the
    // mutator's CPU in this function, --cpu-prof).
    let o = -1;
    if (h === 0) {
      o = this.sourceOf(w);
      if (o === BUILD || this.#headerWords(w, o) === 0) return BUILD;
    }
    // The raw area, from the header where it is (layout.ts; mutator.ts #raw).
    const hdr = h === 1 ? this.#heap : this.#from;
    const x = h === 1 ? w : o;
    const t = hdr[x * 2];
    const row = t * TYPE_ROW;
    const kind = this.#types[row];
    let start: number;
    let len: number;
    if (kind === Kind.FIXED) {
      start = 8 + rawOffset(this.#types[row + 1]);
      len = this.#types[row + 2];
    } else if (kind === Kind.BYTE_ARRAY) {
      start = 8;
      len = hdr[x * 2 + 1];
    } else return BUILD;
    if (offset + size > len) return BUILD;
    // Every to-space page of the range: one or two for the scalar reads, any for readBytes.
    const a = w * 8 + start + offset;
    const q0 = Math.floor(a / 8) >>> PAGE_SHIFT_WORDS;
    const q1 = Math.floor((a + size - 1) / 8) >>> PAGE_SHIFT_WORDS;
    if (q1 - q0 > 1) return BUILD; // a long range: build its pages (readBytes of many pages)
    const s0 = this.#page(q0);
    const s1 = q1 === q0 ? s0 : this.#page(q1);
    if (s0 < 0 || s1 < 0 || (s0 === 1 && s1 === 1)) return BUILD;
    if (s0 !== s1) return BUILD; // half built: the usual way (rare: a range across a page edge)
    if (o < 0) {
      o = this.sourceOf(w);
      if (o === BUILD) return BUILD;
    }
    this.#p0 = q0;
    this.#p1 = q1;
    this.#ph = h === 0 ? qh : q0;
    return o * 8 + start + offset;
  }

  /**
   * For a write of `size` bytes (at most a word, aligned: one page) at raw byte `offset` of the
   * object at to-space word w (unbuilt-writes.ts): its from-space byte index, or BUILD; `dataPage`
   * is then the to-space page the bytes land on. Its pages must still be unbuilt after the
   * header was read (headerStill) for the index to stand.
   */
  locate(w: number, offset: number, size: number): number {
    return this.#rawAt(w, offset, size);
  }
  get dataPage(): number {
    return this.#p0;
  }
  headerStill(): boolean {
    return this.#page(this.#ph) === 0 || this.#ph === this.#p0;
  }

  /** Reference slots of the object at to-space word w, its header read where it is (h: page(w's page)), or 0. */
  refsOf(w: number, o: number, h: number): number {
    if (h === 1) return refCount(this.#heap, this.#types, w);
    return this.#headerWords(w, o) === 0 ? 0 : refCount(this.#from, this.#types, o);
  }

  /** After a read at #rawAt's index: true if its pages are still not installed (the value stands), counted. */
  #stillUnbuilt(): boolean {
    const ok = this.#page(this.#p0) === 0 && this.#page(this.#p1) === 0 && this.#page(this.#ph) === 0;
    if (ok) this.#done(this.#t0, 0);
    return ok;
  }

  /**
   * Runs `run` with the tables set so that the objects starting at `objects` (ascending, ending
   * at `hi`) read as unbuilt and in place: their words copied to from-space, marked live, their
   * pages' first objects and their chunks' bases set so that each forwards to itself; put back
   * after. For the accessors' warm-up before any cycle (warmup.ts): the read path gets its type
   * feedback there, not in the first compaction (which deoptimized every caller at once). The
   * bitmaps are clear before the first cycle, which the chunk bases rely on.
   */
  rehearse(objects: readonly number[], hi: number, run: () => void): void {
    const { live, starts, chunkNew, pageFirst } = this.#sh;
    const lo = objects[0];
    const q0 = lo >>> PAGE_SHIFT_WORDS;
    const q1 = Math.min((hi - 1) >>> PAGE_SHIFT_WORDS, pageFirst.length - 2); // and q1 + 1: no first object (sourceOf)
    const c0 = lo >>> 6;
    const c1 = (hi - 1) >>> 6;
    const firsts = pageFirst.slice(q0, q1 + 2);
    const bases = chunkNew.slice(c0, c1 + 1);
    this.#from.set(this.#heap.subarray(lo * 2, hi * 2), lo * 2);
    for (let w = lo; w < hi; w++) setBit(live, w);
    for (const o of objects) setBit(starts, o);
    for (let q = q0; q <= q1; q++) pageFirst[q] = objects.filter((o) => o <= Math.max(lo, q * PAGE_WORDS)).pop()!;
    pageFirst[q1 + 1] = NONE;
    for (let c = c0; c <= c1; c++) chunkNew[c] = c === c0 ? lo : c * 64;
    this.#tops[TOP] = this.#tops[NEW_TOP] = hi;
    this.#cachedFor.fill(0);
    try {
      run();
    } finally {
      this.#tops.fill(0);
      this.#cachedFor.fill(0);
      for (let w = lo; w < hi; w++) clearBit(live, w);
      for (const o of objects) clearBit(starts, o);
      pageFirst.set(firsts, q0);
      chunkNew.set(bases, c0);
      this.#from.fill(0, lo * 2, hi * 2);
    }
  }

  /** A read served: counted, one in SAMPLE_EVERY timed (the accessors count it as a touch of an unbuilt page). */
  #done(t0: number, v: number): number {
    const sh = this.#sh;
    sh.count(Ctl.UNBUILT_READS);
    this.#clock.done(sh, Hist.UNBUILT_READ_US, t0);
    return v;
  }
}
