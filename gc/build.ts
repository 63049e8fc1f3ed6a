/**
 * Building one to-space page (ART CMC's CompactPage / DoPageCompaction): copy the live
 * strides that land on the page from from-space, and rewrite every reference slot that lands
 * on it with its target's new address. It reads only from-space and the shared plan and
 * writes only the destination buffer, so any thread can build any page, in any order, and
 * no builder can ever fault on the heap itself.
 *
 * Objects straddling the page edges are handled only for their part on this page. Live objects
 * land back to back, except that a large object kept on a page (plan.ts, step 6) may land past
 * a gap, which becomes a filler.
 *
 * This is the readable reference; native/build.cc is its compiled twin (build-native.ts),
 * and test/build.differential.test.ts holds them to byte-identical output.
 */
import { nextClear, nextSet, testBit } from './bits.js';
import { ErrorCode, MoveGcError } from './errors.js';
import { CHUNK_WORDS, IN_PLACE, forward, storedWord } from './forward.js';
import { FILLER_TYPE, HEAP_START_WORD, Kind, PAGE_WORDS, refCount } from './layout.js';
import { endsMarked, markedHeaderWords, markedWords } from './mark.js';
import { NONE } from './plan.js';
import { Ctl, PageKind, SEG_FIELDS, Seg, type Shared } from './shared.js';

/**
 * Where a builder counts the live objects it found malformed: a header that is no object's, or
 * a reference slot whose value lies where no object can (forwardSlot). Marking checks every
 * header and reference it traces, so the program wrote the heap outside the accessors after
 * that (MADV_DONTNEED of a heap page zeroes it). The flip has happened, so no builder may
 * stop: a page it cannot build is one the mutator waits for forever. The words go as they are.
 *
 * Counted per builder, not in the control block: a build may be thrown away (a thread
 * descheduled mid-build, its page taken over), and such a thread, waking in a later cycle,
 * reads that cycle's tables half written. Builders.commitMalformed moves a tally into
 * Ctl.MALFORMED / MALFORMED_AT where the build is known to be the cycle's own; the cycle
 * then ends with ERR_HEAP_CORRUPT (cycle-end.ts), every other object built as usual.
 */
export interface MalformedTally {
  malformed: number;
  /** The first one's from-space word (0: none; word 0 is never an object). */
  malformedFirst: number;
}

export function noteMalformed(t: MalformedTally, o: number): void {
  if (t.malformed++ === 0) t.malformedFirst = o;
}

/** Adds a tally to the cycle's counters (Ctl.MALFORMED, MALFORMED_AT) and empties it. */
export function commitMalformed(sh: Shared, t: MalformedTally): void {
  if (t.malformed === 0) return;
  sh.count(Ctl.MALFORMED, t.malformed);
  Atomics.compareExchange(sh.ctl, Ctl.MALFORMED_AT, 0, t.malformedFirst);
  t.malformed = 0;
  t.malformedFirst = 0;
}

/**
 * A live object whose header is no object's (a filler's kind, a type id past the table, a size
 * of 0, or one the bitmaps disagree with: mark.ts endsMarked): counted, its extent is what
 * marking recorded in the bitmaps (to the next object's start or the end of its live run),
 * none of its words is a slot.
 */
export function malformedWords(sh: Shared, t: MalformedTally, o: number, limit: number): number {
  noteMalformed(t, o);
  return markedWords(sh.starts, sh.live, o, limit);
}

/**
 * Reference v (not null) in a slot of live object o, forwarded. Two kinds stay as they are,
 * counted: one at or above `top` (the last segment's end: no object lies there; marking could
 * not refuse it, above its limit it cannot tell a black object's reference from garbage), and
 * one to a word marking did not mark, written after marking (forwarded, it would name
 * whichever live object slid there, silently). Every object a slot can name through the API
 * is marked: traced, shaded by the barrier, or allocated black. A value tagged FORWARDED
 * (above any object) with a word of the heap under the tag is a to-space word the mutator
 * stored since the flip (unbuilt-writes.ts): untagged, as it is.
 */
export function forwardSlot(sh: Shared, t: MalformedTally, v: number, o: number, top: number): number {
  if (v < top && testBit(sh.live, v)) return forward(sh.chunkNew, sh.live, v);
  const stored = storedWord(sh.live, v); // stored by the mutator since the flip: a to-space word
  if (stored >= 0) return stored;
  noteMalformed(t, o);
  return v;
}

/** The end of the plan's last segment: every object lies below it (forwardSlot). */
export function planTop(sh: Shared): number {
  const last = Atomics.load(sh.ctl, Ctl.SEGMENTS) - 1;
  return last >= 0 ? Math.min(sh.segments[last * SEG_FIELDS + Seg.END], sh.chunkNew.length * CHUNK_WORDS) : 0;
}

/** Live strides at least this long (words) are copied in one block, then patched. */
export const STRIDE_WORDS = 32;

/** The segment fields that are word indexes (the others are pages). */
const SEG_BOUNDS = [Seg.START, Seg.END, Seg.IDENT_END, Seg.NEW_END, Seg.FILLER_END, Seg.END_EXT] as const;

/** Which page builder the heap's threads use (Ctl.BUILDER). */
export const Builder = { JS: 0, NATIVE: 1 } as const;
export type BuilderName = 'js' | 'native';

/** Builds runs of contiguous to-space pages into contiguous destination pages. */
export interface RunBuilder extends MalformedTally {
  /** To-space pages [q, q+n) into `dst`, page after page from u32 index `dstU32`. */
  buildRun(q: number, n: number, dst: Uint32Array, dstU32: number): void;
}

export class PageBuilder implements RunBuilder {
  malformed = 0;
  malformedFirst = 0;
  readonly #sh: Shared;
  /** From-space (and scratch) as u32, indexed like the heap: word w at [2w, 2w+1]. */
  readonly #from: Uint32Array;

  constructor(sh: Shared, from: Uint32Array) {
    this.#sh = sh;
    this.#from = from;
  }

  /** Index into shared.segments of the segment holding to-space page q. */
  segmentOf(q: number): number {
    const seg = this.#sh.segments;
    let lo = 0;
    let hi = Atomics.load(this.#sh.ctl, Ctl.SEGMENTS) - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (seg[mid * SEG_FIELDS + Seg.FIRST_PAGE] <= q) lo = mid;
      else hi = mid - 1;
    }
    this.#checkSegment(lo * SEG_FIELDS);
    return lo * SEG_FIELDS;
  }

  /** Every word bound of the segment lies in the heap: the bitmap walks run to them (build.cc CheckSegment). */
  #checkSegment(s: number): void {
    const words = this.#sh.live.length * 32;
    const seg = this.#sh.segments;
    for (const f of SEG_BOUNDS) {
      const v = seg[s + f];
      if (!(v >= 0 && v <= words) || !Number.isInteger(v)) throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `page builder: segment ${s / SEG_FIELDS} has a bound outside the heap`);
    }
  }

  /** planTop for the page being built. */
  #top = 0;

  /** Builds to-space page q into `dst` starting at u32 index `dstU32`. */
  build(q: number, dst: Uint32Array, dstU32: number): void {
    const sh = this.#sh;
    const s = this.segmentOf(q);
    this.#top = planTop(sh);
    const base = dstU32 - q * PAGE_WORDS * 2; // dst index of to-space word t is base + 2t
    const kind = sh.pageKind[q];
    if (kind === PageKind.IDENTITY) this.#identity(q, dst, base, sh.segments[s + Seg.IDENT_END]);
    // Inside the filler written where its gap starts (plan.ts, step 6): zeros.
    else if (kind === PageKind.GAP) dst.fill(0, dstU32, dstU32 + PAGE_WORDS * 2);
    else this.#slide(q, dst, base, s);
  }

  buildRun(q: number, n: number, dst: Uint32Array, dstU32: number): void {
    for (let i = 0; i < n; i++) this.build(q + i, dst, dstU32 + i * PAGE_WORDS * 2);
  }

  #copy(fromU32: number, toU32: number, dst: Uint32Array, dstIndex: number): void {
    const src = this.#from;
    if (dst === src) src.copyWithin(dstIndex, fromU32, toU32);
    else dst.set(src.subarray(fromU32, toU32), dstIndex);
  }

  /** Rewrites the reference slots of from-space object o (new address to) that land on page [qw, qEnd). */
  #refs(o: number, to: number, qw: number, qEnd: number, dst: Uint32Array, base: number): void {
    const src = this.#from;
    const sh = this.#sh;
    const n = refCount(src, sh.types, o);
    if (n === 0) return;
    const first = to * 2 + 2;
    const i0 = Math.max(0, qw * 2 - first);
    const i1 = Math.min(n, qEnd * 2 - first);
    for (let i = i0; i < i1; i++) {
      const r = src[o * 2 + 2 + i];
      dst[base + first + i] = r === 0 ? 0 : forwardSlot(sh, this, r, o, this.#top);
    }
  }

  /**
   * Words [from, to) of the page hold no object: the reserved null word (word 0) stays zero,
   * and the rest is the gap before a page-aligned large object, a filler to `end` (the object's
   * start: past this page when the gap spans pages, plan.ts GAP pages).
   */
  #gap(dst: Uint32Array, base: number, from: number, to: number, end = to): void {
    dst.fill(0, base + from * 2, base + to * 2);
    const g = from > HEAP_START_WORD ? from : HEAP_START_WORD;
    if (to > g) {
      dst[base + g * 2] = FILLER_TYPE;
      dst[base + g * 2 + 1] = end - g;
    }
  }

  #slide(q: number, dst: Uint32Array, base: number, s: number): void {
    const sh = this.#sh;
    const src = this.#from;
    const seg = sh.segments;
    const starts = sh.starts;
    const types = sh.types;
    const chunkNew = sh.chunkNew;
    const live = sh.live;
    const segEnd = seg[s + Seg.END];
    const segEndExt = seg[s + Seg.END_EXT];
    const qw = q * PAGE_WORDS;
    const qEnd = qw + PAGE_WORDS;
    const same = dst === src;
    let filled = qw;
    let o = sh.pageFirst[q];
    if (o !== NONE) {
      // Live objects land contiguously from the first one's new address: one forward() per
      // page, then a walk of the object-start bitmap. A long live stride is copied in one
      // block and only its reference slots are patched; small objects in short strides are
      // copied word by word with their slots forwarded on the way (no call per object).
      let t = forward(chunkNew, live, o);
      let runEnd = -1;
      let copiedTo = qw; // to-space words below this are already copied by a stride copy
      while (t < qEnd) {
        if (o >= runEnd) {
          // Only this page's part of the run is scanned: a large object is live word for word
          // from o to where this page starts (t < qw: only the first object), and whether the
          // run reaches STRIDE_WORDS or the page's end is all the copy needs. Scanning the whole
          // run made every page of an N-page object cost O(N): a 32 MiB array took 1.7 s.
          const from = t < qw ? o + (qw - t) : o;
          const span = qEnd - t > STRIDE_WORDS ? qEnd - t : STRIDE_WORDS;
          // A run may go on into a large object that lands past a gap, on the next page: what
          // the copy puts past the run's last object on this page is the gap, written after.
          runEnd = nextClear(live, from, o + span < segEndExt ? o + span : segEndExt);
          if (runEnd - o >= STRIDE_WORDS) {
            const ra = t > qw ? t : qw;
            const re = t + (runEnd - o);
            const rb = re < qEnd ? re : qEnd;
            if (ra > filled) this.#gap(dst, base, filled, ra);
            this.#copy((o + ra - t) * 2, (o + rb - t) * 2, dst, base + ra * 2);
            copiedTo = rb;
          }
        }
        const h = o * 2;
        const row = src[h] * 4;
        const kind = types[row];
        let sz: number;
        let nref: number;
        if (kind === Kind.FIXED) {
          sz = types[row + 3];
          nref = types[row + 1];
        } else {
          const len = src[h + 1];
          if (kind === Kind.REF_ARRAY) {
            sz = 1 + ((len + 1) >>> 1);
            nref = len;
          } else {
            sz = kind === Kind.BYTE_ARRAY ? 1 + ((len + 7) >>> 3) : len;
            nref = 0;
          }
        }
        if (!(kind > Kind.FILLER) || sz < 1 || !endsMarked(starts, live, o, sz)) {
          sz = malformedWords(sh, this, o, segEndExt);
          nref = 0;
        }
        const a = t > qw ? t : qw;
        const end = t + sz;
        const b = end < qEnd ? end : qEnd;
        if (a > filled) this.#gap(dst, base, filled, a);
        const n = (b - a) * 2;
        const si = (o + a - t) * 2;
        const di = base + a * 2;
        // Slots in to-space u32 terms: [t*2+2, t*2+2+nref); on this page: [a*2, b*2).
        const r0 = t * 2 + 2 - a * 2;
        const r1 = r0 + nref;
        if (a < copiedTo) {
          const k0 = r0 > 0 ? r0 : 0;
          const k1 = r1 < n ? r1 : n;
          for (let k = k0; k < k1; k++) {
            const v = src[si + k];
            if (v !== 0) dst[di + k] = forwardSlot(sh, this, v, o, this.#top);
          }
        } else if (n <= 64 && same && a === t && b === end) {
          // The whole object is on this page (the common case): header, slots, raw bytes.
          dst[di] = src[si];
          dst[di + 1] = src[si + 1];
          let k = 2;
          for (const ke = 2 + nref; k < ke; k++) {
            const v = src[si + k];
            dst[di + k] = v === 0 ? 0 : forwardSlot(sh, this, v, o, this.#top);
          }
          if (n - k > 16) src.copyWithin(di + k, si + k, si + n);
          else for (; k < n; k++) dst[di + k] = src[si + k];
        } else if (n <= 64 && same) {
          for (let k = 0; k < n; k++) {
            let v = src[si + k];
            if (k >= r0 && k < r1 && v !== 0) v = forwardSlot(sh, this, v, o, this.#top);
            dst[di + k] = v;
          }
        } else {
          this.#copy(si, si + n, dst, di);
          const k0 = r0 > 0 ? r0 : 0;
          const k1 = r1 < n ? r1 : n;
          for (let k = k0; k < k1; k++) {
            const v = src[si + k];
            if (v !== 0) dst[di + k] = forwardSlot(sh, this, v, o, this.#top);
          }
        }
        filled = b;
        if (end >= qEnd) break;
        t = end;
        o = nextSet(starts, o + sz, segEnd);
        if (o >= segEnd) break;
        // An object first in its chunk may be a large one landing past a gap.
        if ((o & (CHUNK_WORDS - 1)) === 0) {
          const at = chunkNew[o >>> 6];
          if (at !== IN_PLACE && at > t) t = at;
        }
      }
      // The next object lands on a later page: the rest of this one is its gap, and the
      // filler runs to that object (over the GAP pages between).
      if (t >= qEnd && filled < qEnd) this.#gap(dst, base, filled, qEnd, t);
    }
    // The segment's free tail starts on this page: a filler keeps the heap parseable.
    const newEnd = seg[s + Seg.NEW_END];
    if (newEnd >= qw && newEnd < qEnd) {
      if (newEnd > filled) dst.fill(0, base + filled * 2, base + newEnd * 2);
      const fillerEnd = seg[s + Seg.FILLER_END];
      if (fillerEnd > newEnd) {
        dst[base + newEnd * 2] = FILLER_TYPE;
        dst[base + newEnd * 2 + 1] = fillerEnd - newEnd;
      }
    }
  }

  #identity(q: number, dst: Uint32Array, base: number, identEnd: number): void {
    const sh = this.#sh;
    const live = sh.live;
    const qw = q * PAGE_WORDS;
    const qEnd = qw + PAGE_WORDS;
    this.#copy(qw * 2, qEnd * 2, dst, base + qw * 2);
    // Dead objects that stay in place become fillers: their stale references must not survive.
    for (let d = nextClear(live, Math.max(qw, HEAP_START_WORD), qEnd); d < qEnd; ) {
      const e = nextSet(live, d, identEnd);
      if (d > qw || testBit(live, qw - 1)) {
        dst[base + d * 2] = FILLER_TYPE;
        dst[base + d * 2 + 1] = e - d;
      }
      d = nextClear(live, e, qEnd);
    }
    const src = this.#from;
    for (let o = sh.pageFirst[q]; o !== NONE && o < qEnd; ) {
      const sz = markedHeaderWords(src, sh.types, sh.starts, live, o);
      if (sz > 0) this.#refs(o, o, qw, qEnd, dst, base);
      o = nextSet(sh.starts, o + (sz || malformedWords(sh, this, o, qEnd)), qEnd);
    }
  }
}
