/**
 * Mark: trace from the roots and record every live object in two bitmaps, as ART does: the
 * object-start bitmap (which words begin a live object) and the live-words bitmap (every
 * word of a live object), from which the plan computes new addresses.
 *
 * One tracer serves the three places marking happens: the marker thread concurrently with
 * the mutator (marker.ts), the marking pause that finishes it (remark.ts), and the pause of
 * `marking: 'pause'` and `stw` heaps ({@link mark}). Objects at or above `limit` are not
 * traced: the heap's top for a pause, the black-allocation boundary for concurrent marking
 * (everything allocated since marking began is live and slides as a block, as in ART).
 */
import { copyBits, countRange, fillBeating, nextClear, nextSet, setBit, setRange, testBit } from './bits.js';
import { ErrorCode, MoveGcError } from './errors.js';
import { Kind, PAGE_WORDS, headerWords, refCount, sizeWords } from './layout.js';

/**
 * An object's size, checked: a header that does not parse (unknown type, a filler reached by a
 * reference, a size that is zero or runs past the limit) stops the cycle with ERR_HEAP_CORRUPT
 * before anything moved, instead of feeding every later walk a size that never advances.
 */
export function checkedSize(heap: Uint32Array, types: Int32Array, typeCount: number, w: number, limit: number): number {
  const t = heap[w * 2];
  const size = t < typeCount && types[t * 4] !== Kind.FILLER ? sizeWords(heap, types, w) : 0;
  if (size < 1 || w + size > limit)
    throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `object at word ${w} has a malformed header (type ${t}, size ${size} words, limit ${limit}): the heap was written outside the API`);
  return size;
}

export interface MarkResult {
  objects: number;
  words: number;
}

export class Tracer {
  /**
   * The mark stack: a typed array, grown by doubling. A JavaScript array of millions of
   * numbers makes the marker thread's own V8 collector pause it for long enough (hundreds of
   * ms at 1 GiB) to look stalled.
   */
  #stack = new Uint32Array(1 << 16);
  #sp = 0;
  /**
   * An object whose slots a bounded drain left part-scanned, and its next slot (0: none). A
   * reference array can hold 2^31 slots: scanned whole, one step took longer than stallMs,
   * and the marker was replaced as stalled every cycle (an audit: 2^25 slots in one array).
   * Safe to resume later under the insertion barrier: a reference stored meanwhile into a slot
   * already scanned is logged unless its object is marked.
   */
  #partW = 0;
  #partI = 0;
  objects = 0;
  words = 0;

  constructor(
    readonly heap: Uint32Array,
    readonly types: Int32Array,
    readonly typeCount: number,
    readonly starts: Uint32Array,
    readonly live: Uint32Array,
    /** Objects at or above this word are black (or above the top): never traced. */
    readonly limit: number,
    /**
     * The allocator's object starts (Mutator #objects), if given: a reference below `limit`
     * must name one. Stable while marking runs: nothing is allocated below the limit then
     * (no hole is reused while a cycle is active).
     */
    readonly allocStarts?: Uint32Array,
  ) {}

  /** Greys w: marks it and queues it for scanning, unless null, black or marked already. */
  visit(w: number): void {
    if (w >= this.limit) {
      // Above it: a black object, or no object at all (the heap view ends there).
      if (w >= this.heap.length >>> 1) throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `a reference to word ${w} points past the heap: the heap was written outside the API`);
      return;
    }
    if (w === 0 || testBit(this.starts, w)) return;
    // A word no object starts at (inside one, or free space): its "header" may well parse.
    if (this.allocStarts !== undefined && !testBit(this.allocStarts, w)) throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `a reference to word ${w}, where no object starts: the heap was written outside the API`);
    const size = checkedSize(this.heap, this.types, this.typeCount, w, this.limit);
    setBit(this.starts, w);
    setRange(this.live, w, w + size);
    this.objects++;
    this.words += size;
    if (this.#sp === this.#stack.length) {
      const grown = new Uint32Array(this.#stack.length * 2);
      grown.set(this.#stack);
      this.#stack = grown;
    }
    this.#stack[this.#sp++] = w;
  }

  /** Greys what object w refers to, without marking w (a black object, for a re-mark). */
  scanSlots(w: number): void {
    const k = refCount(this.heap, this.types, w);
    const slot = w * 2 + 2;
    for (let i = 0; i < k; i++) this.visit(this.heap[slot + i]);
  }

  /**
   * Scans grey objects until `budget` units of work are done (an object costs one, and one
   * per slot scanned), stopping inside a long object if need be; true when nothing grey is
   * left, false when the budget ran out first (a stack the last object emptied says true at
   * the next call).
   */
  drain(budget = Infinity): boolean {
    const { heap, types, starts } = this;
    let n = 0;
    if (this.#partW !== 0) {
      const w = this.#partW;
      this.#partW = 0;
      n = this.#scan(w, this.#partI, budget);
      if (this.#partW !== 0) return false;
    }
    while (n < budget) {
      if (this.#sp === 0) return true;
      const w = this.#stack[--this.#sp];
      const k = refCount(heap, types, w);
      if (k >= budget - n) {
        n += this.#scan(w, 0, budget - n);
        if (this.#partW !== 0) return false;
        continue;
      }
      // #scan's loop without its part-scan bookkeeping, for the common object that fits the
      // budget (with that bookkeeping on every object, marking in the quick bench took 99-118
      // ms against 84-95).
      const slot = w * 2 + 2;
      for (let i = 0; i < k; i++) {
        const r = heap[slot + i];
        if (r !== 0 && !testBit(starts, r)) this.visit(r);
      }
      n += 1 + k;
    }
    // Not `this.#sp === 0`: a bounded drain of the first cycles always emptied the stack inside
    // the loop, so this load had no type feedback, and the marker's TurboFan code of drain was
    // thrown away each time a budget first ran out (--trace-deopt: "insufficient type feedback
    // for generic keyed access", again and again in the marker thread).
    return false;
  }

  /**
   * Scans w's slots from `from`, at most `budget - 1` of them (at least one); leaves w as
   * #partW if some remain. Returns the work done.
   */
  #scan(w: number, from: number, budget: number): number {
    const { heap, starts } = this;
    const k = refCount(heap, this.types, w);
    const end = Math.min(k, from + Math.max(1, budget - 1));
    const slot = w * 2 + 2;
    for (let i = from; i < end; i++) {
      const r = heap[slot + i];
      if (r !== 0 && !testBit(starts, r)) this.visit(r);
    }
    if (end < k) {
      this.#partW = w;
      this.#partI = end;
    }
    return 1 + end - from;
  }
}

/** Clears the mark bitmaps through the page-aligned `topWord` (or all of them). */
export function clearMarks(starts: Uint32Array, live: Uint32Array, topWord = starts.length * 32, beat?: () => void): void {
  // Through the page-aligned top: the plan and the page builders scan whole pages, and bits
  // above the top left by an earlier, larger cycle would read as phantom live objects.
  const bitWords = Math.min(starts.length, ((Math.ceil(topWord / PAGE_WORDS) * PAGE_WORDS + 31) >>> 5) + 1);
  // With heartbeats (the marker): a first cycle touches these bitmaps for the first time, 32
  // MiB at 1 GiB, and its page faults took over 200 ms on a loaded VM.
  fillBeating(starts, 0, 0, bitWords, beat);
  fillBeating(live, 0, 0, bitWords, beat);
}

/** Marking in a pause: clear, trace everything below the top from the roots. */
export function mark(heap: Uint32Array, types: Int32Array, typeCount: number, starts: Uint32Array, live: Uint32Array, topWord: number, roots: Iterable<number>, allocStarts?: Uint32Array): MarkResult {
  clearMarks(starts, live, topWord);
  const t = new Tracer(heap, types, typeCount, starts, live, topWord, allocStarts);
  for (const r of roots) t.visit(r);
  t.drain();
  return { objects: t.objects, words: t.words };
}

/**
 * Black allocation (ART's black_allocations_begin_): everything the mutator allocated in
 * [from, to) since marking began is live. Its words become live and its objects' starts are the
 * allocator's (`allocStarts`), except the filler gaps put before large objects ([start, end)
 * pairs): live gap words would slide as data. Returns the objects and live words blackened.
 */
export function blacken(starts: Uint32Array, live: Uint32Array, allocStarts: Uint32Array, gaps: readonly number[], from: number, to: number): { objects: number; words: number } {
  if (to <= from) return { objects: 0, words: 0 };
  setRange(live, from, to);
  let gapWords = 0;
  for (let i = 0; i < gaps.length; i += 2)
    for (let w = Math.max(gaps[i], from); w < Math.min(gaps[i + 1], to); w++, gapWords++) live[w >>> 5] &= ~(1 << (w & 31));
  copyBits(allocStarts, starts, from, to);
  return { objects: countRange(allocStarts, from, to), words: to - from - gapWords };
}

/**
 * The words of live object o as marking recorded them in the bitmaps: to the next object's
 * start or the end of its live run, whichever comes first (at most to `limit`). Walks of live
 * objects after marking use it where a header is malformed (layout.ts headerWords): a size of
 * 0 would never advance them (a pause that spun for ever), a wrong one would lose the walk.
 */
export function markedWords(starts: Uint32Array, live: Uint32Array, o: number, limit: number): number {
  const s = nextSet(starts, o + 1, limit);
  const e = nextClear(live, o + 1, limit);
  return (s < e ? s : e) - o;
}

/**
 * Whether a live object's header size agrees with the bitmaps at its end: its last word live,
 * and the word after it dead or another object's start. Two bit reads where the walk reads
 * next anyway; a size changed after marking (a shrunk length, a grown one, another type) fails it.
 */
export function endsMarked(starts: Uint32Array, live: Uint32Array, o: number, sz: number): boolean {
  const e = o + sz;
  return testBit(live, e - 1) && (!testBit(live, e) || testBit(starts, e));
}

/** A live object's header size if the header is an object's and the bitmaps agree with it at its end (endsMarked), else 0: malformed. */
export function markedHeaderWords(heap: Uint32Array, types: Int32Array, starts: Uint32Array, live: Uint32Array, o: number): number {
  const sz = headerWords(heap, types, o);
  return sz > 0 && endsMarked(starts, live, o, sz) ? sz : 0;
}

/** A live object's words: its header's, or the bitmaps' if the header is malformed (markedHeaderWords, markedWords). */
export function liveWords(heap: Uint32Array, types: Int32Array, starts: Uint32Array, live: Uint32Array, o: number): number {
  return markedHeaderWords(heap, types, starts, live, o) || markedWords(starts, live, o, live.length * 32);
}
