/**
 * The room a collection leaves to allocate: the top given back to where live data ends
 * (giveBackTail), and the free gaps a compaction leaves below pinned objects, handed out when
 * the top is full (Holes).
 *
 * The heap allocates by bumping its top, and compaction slides each segment between pinned
 * spans down to the segment's start (plan.ts): what the segment's live data no longer fills,
 * up to the next pinned span, becomes one filler, below the top. A pinned object near the top
 * would then keep all the garbage collected below it out of reach until the pin is released
 * (found by an audit: 99% of a full heap garbage, a 96-byte pin, ERR_HEAP_FULL forever). Like
 * Immix's holes (Blackburn and McKinley, PLDI 2008) in spirit, these gaps are allocated into,
 * first fit, but only where the bump allocation fails and only between cycles: an object put
 * below the black-allocation boundary while marking would not be marked, and during
 * compaction the gaps are in a to-space still being built. The next cycle slides whatever
 * lives in them like any other object.
 */
import { writeFiller } from './layout.js';
import type { Plan } from './plan.js';

/** Gaps smaller than this are not worth a search (a header and a few fields). */
const MIN_HOLE_WORDS = 4;

export class Holes {
  /** [start, end) word pairs, ascending, each holding one filler. */
  #list: number[] = [];

  /** The gaps of a finished compaction: each segment's tail, up to the next pinned span. */
  reset(segments: ReadonlyArray<{ end: number; newEnd: number }>): void {
    const list: number[] = [];
    for (let i = 0; i < segments.length - 1; i++) {
      const s = segments[i];
      if (s.end - s.newEnd >= MIN_HOLE_WORDS) list.push(s.newEnd, s.end);
    }
    this.#list = list;
  }

  /** Free words in the gaps. */
  get words(): number {
    let n = 0;
    for (let i = 0; i < this.#list.length; i += 2) n += this.#list[i + 1] - this.#list[i];
    return n;
  }

  /**
   * Takes `words` (starting on an `align`-word boundary when align > 1, as large objects do)
   * from the first gap that holds them; zeroes them (allocation hands out zeroed memory) and
   * leaves a filler before and after, so the heap stays walkable. Returns the start, or -1.
   */
  take(u32: Uint32Array, words: number, align: number): number {
    const l = this.#list;
    for (let i = 0; i < l.length; i += 2) {
      const s = l[i];
      const e = l[i + 1];
      const w = align > 1 ? s + (-s & (align - 1)) : s;
      if (w + words > e) continue;
      u32.fill(0, w * 2, (w + words) * 2);
      const kept: number[] = [];
      if (w > s) {
        writeFiller(u32, s, w - s);
        if (w - s >= MIN_HOLE_WORDS) kept.push(s, w);
      }
      if (e > w + words) {
        writeFiller(u32, w + words, e - w - words);
        if (e - w - words >= MIN_HOLE_WORDS) kept.push(w + words, e);
      }
      l.splice(i, 2, ...kept);
      return w;
    }
    return -1;
  }
}

/**
 * The plan resumes allocation on a page boundary (plan.ts: the page below is being built), or
 * at the page end of a pinned span holding the last live object, so a cycle left up to a page
 * less room than live data needs, every cycle: on a full heap an allocation that fit before a
 * collection failed after it. Once every page is installed and nothing was allocated since the
 * flip, the top goes back to where live data ends (plan.ts liveEndOf); what lay above it,
 * fillers only, is zeroed (allocation hands out zeroed memory). False if the mutator has
 * allocated since the flip (then the gap stays a filler until the next cycle).
 */
export function giveBackTail(p: Pick<Plan, 'allocTop'>, mut: { top: number; readonly u32: Uint32Array }, liveEnd: number): boolean {
  if (mut.top !== p.allocTop) return false;
  if (liveEnd < mut.top) {
    mut.u32.fill(0, liveEnd * 2, mut.top * 2);
    mut.top = liveEnd;
  }
  return true;
}
