/**
 * The compiled page builder (native/build.cc): the same algorithm as build.ts, over the same
 * shared tables, one call per run of pages. It only builds bytes; claims, buffers, installs
 * and fallbacks stay in TypeScript. Each thread makes its own (the addon is per thread).
 */
import { STRIDE_WORDS, type RunBuilder } from './build.js';
import { PAGE_WORDS } from './layout.js';
import { native, type NativePageBuilder as Raw } from './native.js';
import { Ctl, SEG_FIELDS, type Shared } from './shared.js';

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
      layout: { pageWords: PAGE_WORDS, segFields: SEG_FIELDS, strideWords: STRIDE_WORDS },
    });
  }

  buildRun(q: number, n: number, dst: Uint32Array, dstU32: number): void {
    this.#raw.build(q, n, this.#from, dst, dstU32);
  }
}
