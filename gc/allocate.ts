/**
 * Bump allocation: the heap's objects lie in address order below `top`, and a new one goes at
 * the top (ART's bump-pointer space, which its mark-compact collector compacts). Each object
 * sets its bit in the epoch's object-start bitmap, which the accessors check every reference
 * against (mutator.ts #word).
 *
 * Two departures from a plain bump pointer, both for compaction:
 *  - a large object (options.largeObjectBytes) starts on a page, a huge one (hugePages) on
 *    2 MiB, behind a filler, so that compaction can shift its full pages whole (plan.ts,
 *    step 6). The fillers put in while a cycle runs are recorded in `gaps`: the cycle blackens
 *    what was allocated since marking began (cycle.ts), and a filler is not live;
 *  - when the top is full, between cycles only, the gaps compaction left below pinned objects
 *    (holes.ts).
 */
import { ErrorCode, MoveGcError } from './errors.js';
import { Holes } from './holes.js';
import { HEAP_START_WORD, PAGE_WORDS, PMD_WORDS, writeFiller } from './layout.js';

export class BumpAllocator {
  /** The first word past every object. */
  top = HEAP_START_WORD;
  /** While a cycle runs: the fillers put before aligned objects, [start, end) pairs. */
  gaps: number[] | null = null;
  /** Gaps below pinned objects, allocated into when the top is full (holes.ts). */
  readonly holes = new Holes();
  /** This epoch's object-start bitmap (the heap swaps it at each flip). */
  objects: Uint32Array;
  /** Whether a cycle runs: holes are taken only between cycles. */
  cycleActive: () => boolean = () => false;
  readonly #u32: Uint32Array;
  readonly #capacity: number;
  /** Objects at least this long start on a page (0: never). */
  readonly #alignWords: number;
  /** Objects at least this long start on a 2 MiB boundary (0: never). */
  readonly #hugeWords: number;

  constructor(u32: Uint32Array, objects: Uint32Array, capacity: number, alignWords: number, hugeWords: number) {
    this.#u32 = u32;
    this.objects = objects;
    this.#capacity = capacity;
    this.#alignWords = alignWords;
    this.#hugeWords = hugeWords;
  }

  /** The word of a new object of `words` words, its header written and its start bit set. Throws ERR_HEAP_FULL. */
  allocate(words: number, typeId: number, length: number): number {
    let w = this.top;
    const align = this.#hugeWords > 0 && words >= this.#hugeWords ? PMD_WORDS : PAGE_WORDS;
    const large = words >= this.#alignWords && this.#alignWords > 0;
    const gap = large ? -w & (align - 1) : 0;
    if (w + gap + words > this.#capacity / 8) return this.#fromHoles(words, typeId, length, large ? align : 1, gap);
    if (gap > 0) {
      writeFiller(this.#u32, w, gap);
      this.gaps?.push(w, w + gap);
      w += gap;
    }
    this.top = w + words;
    return this.#place(w, typeId, length);
  }

  #place(w: number, typeId: number, length: number): number {
    this.objects[w >>> 5] |= 1 << (w & 31);
    this.#u32[w * 2] = typeId;
    this.#u32[w * 2 + 1] = length;
    return w;
  }

  #fromHoles(words: number, typeId: number, length: number, align: number, gap: number): number {
    const w = this.cycleActive() ? -1 : this.holes.take(this.#u32, words, align);
    if (w < 0) {
      const holes = this.cycleActive() ? 0 : this.holes.words * 8;
      throw new MoveGcError(
        ErrorCode.HEAP_FULL,
        `heap full: ${words * 8} bytes requested${gap > 0 ? ` and ${gap * 8} more to start it on a page boundary` : ''}, ${this.#capacity - this.top * 8} free of ${this.#capacity}` +
          `${holes > 0 ? ` (and ${holes} in gaps below pinned objects, none large enough)` : ''}; collect() to reclaim`,
      );
    }
    return this.#place(w, typeId, length);
  }
}
