/**
 * The compiled page builder (native/build.cc): the same algorithm as build.ts, over the same
 * shared tables, one call per run of pages. It only builds bytes; claims, buffers, installs
 * and fallbacks stay in TypeScript. Each thread makes its own (the addon is per thread).
 */
import { STRIDE_WORDS, type RunBuilder } from './build.js';
import { CHUNK_WORDS, FORWARDED, IN_PLACE } from './forward.js';
import { FILLER_TYPE, HEAP_START_WORD, Kind, PAGE_WORDS, TYPE_ROW } from './layout.js';
import { native, type NativePageBuilder as Raw } from './native.js';
import { NONE } from './plan.js';
import { Ctl, PageKind, SEG_FIELDS, Seg, type Shared } from './shared.js';

/** Every constant native/build.cc shares with the TypeScript side, by name: it checks each one. */
export const BUILD_LAYOUT = {
  pageWords: PAGE_WORDS,
  chunkWords: CHUNK_WORDS,
  heapStartWord: HEAP_START_WORD,
  none: NONE,
  inPlace: IN_PLACE,
  forwarded: FORWARDED,
  strideWords: STRIDE_WORDS,
  segFields: SEG_FIELDS,
  typeRow: TYPE_ROW,
  fillerType: FILLER_TYPE,
  kind: Kind,
  pageKind: PageKind,
  seg: Seg,
} as const;

export class NativePageBuilder implements RunBuilder {
  readonly #raw: Raw;
  readonly #from: Uint32Array;

  constructor(sh: Shared, from: Uint32Array) {
    this.#from = from;
    this.#raw = new native.PageBuilder({
      live: sh.live,
      starts: sh.starts,
      chunkNew: sh.chunkNew,
      pageFirst: sh.pageFirst,
      pageKind: sh.pageKind,
      segments: sh.segments,
      types: sh.types,
      ctl: sh.ctl,
      ctlSegments: Ctl.SEGMENTS,
      layout: BUILD_LAYOUT,
    });
  }

  malformed = 0;
  malformedFirst = 0;

  buildRun(q: number, n: number, dst: Uint32Array, dstU32: number): void {
    // Malformed objects met, if any: [count, first word] (build.ts MalformedTally).
    const met = this.#raw.build(q, n, this.#from, dst, dstU32);
    if (met === undefined) return;
    if (this.malformed === 0) this.malformedFirst = met[1];
    this.malformed += met[0];
  }
}
