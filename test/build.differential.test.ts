/**
 * The two page builders write the same bytes: gc/build.ts (the readable reference) and
 * native/build.cc (its compiled twin). Random heaps are laid out directly in memory (every
 * object kind, page straddlers, pinned spans, dense prefixes, empty and full heaps), marked
 * and planned by the collector's own mark and plan, their pinned spans fixed as the pause
 * does; then every to-space page is built by both builders into destinations pre-filled with
 * the same garbage (a word one builder writes and the other leaves would show), page by page
 * and in runs, into a separate array and into from-space itself (the compactor's recycled
 * buffers), and compared word for word. Heaps with large objects kept on pages (plan.ts, step
 * 6) also check that every WHOLE page builds to exactly its from-space page: the compactor
 * installs those unbuilt. The builders need no kernel here; a last test runs
 * whole collections through the kernel with each builder and compares the heaps.
 */
import { describe, expect, it } from 'vitest';
import { PageBuilder, planTop, type RunBuilder } from '../dist/gc/build.js';
import { BUILD_LAYOUT, NativePageBuilder } from '../dist/gc/build-native.js';
import { native } from '../dist/gc/native.js';
import { Kind, PAGE_WORDS, TypeTable, BYTE_ARRAY_TYPE, REF_ARRAY_TYPE, FIRST_USER_TYPE, arrayWords, sizeWords, refCount } from '../dist/gc/layout.js';
import { mark } from '../dist/gc/mark.js';
import { forward } from '../dist/gc/forward.js';
import { NONE, plan, type Plan } from '../dist/gc/plan.js';
import { nextSet } from '../dist/gc/bits.js';
import { BUILD, sourceWord } from '../dist/gc/unbuilt-reads.js';
import { fixPinnedSpans } from '../dist/gc/pause.js';
import { Ctl, PageKind, SEG_FIELDS, Seg, Shared } from '../dist/gc/shared.js';
import { MoveGcError } from '../dist/gc/index.js';
import { checkStats, closeHeapsAfterEach, openHeap } from './helpers/heap.js';
import { buildGraph, defineTestTypes, snapshot, firstDifference } from './helpers/graph.js';
import { itKernel } from './kernel.js';
import { Rng } from './helpers/prng.js';

closeHeapsAfterEach();

const SEEDS = process.env.GC_SEED ? [Number(process.env.GC_SEED)] : Array.from({ length: 100 }, (_, i) => 7 + i * 104729);
const SCRATCH_PAGES = 66;
const PAGE_U32 = PAGE_WORDS * 2;
/** Bit w of a bitmap (the live-words bitmap). */
const bit = (bits: Uint32Array, w: number): boolean => w >= 0 && (bits[w >>> 5] & (1 << (w & 31))) !== 0;

interface Shape {
  capacityPages: number;
  /** Fraction of the capacity allocated. */
  fill: number;
  /** Probability that an object is a root. */
  rootP: number;
  /** Leading objects all rooted (a dense prefix). */
  densePrefix: number;
  denseThreshold: number;
  pins: number;
  /** Probability of a large (multi-page) array. */
  largeP: number;
  /** Only objects of 1-3 words: object ends meet page edges often. */
  small?: boolean;
  /** Objects of at least this many words start on a page behind a filler, as the heap allocates them (0: none). */
  alignWords?: number;
  /** The first object is a large byte array (with alignWords: the heap's first page is all gap). */
  firstLarge?: boolean;
  /**
   * A long live run that slides into a pinned span's edge: an object straddling a page edge
   * and the live run before it are kept, the words before them dead, the next object pinned.
   */
  straddlePin?: boolean;
}

interface TestHeap {
  alignWords: number;
  sh: Shared;
  heap: Uint32Array;
  from: Uint32Array;
  plan: Plan;
  top: number;
}

/** Lays out a random heap, marks, plans and fixes pinned spans as a cycle does. */
function randomHeap(rng: Rng, s: Shape): TestHeap {
  const capacity = s.capacityPages * 4096;
  const words = capacity / 8;
  const typesSab = TypeTable.allocate();
  const types = new TypeTable(typesSab);
  const typeIds: number[] = [];
  const fixed: Array<[number, number]> = [[0, 0], [1, 4], [2, 16], [3, 17], [7, 5], [8, 100], [0, 300], [2, 4100], [600, 3000]];
  fixed.forEach(([refs, bytes], i) => {
    types.define(FIRST_USER_TYPE + i, refs, bytes);
    typeIds.push(FIRST_USER_TYPE + i);
  });
  const sh = Shared.allocate({ heapAddress: 0, fromAddress: 0, capacity, fromExtraPages: SCRATCH_PAGES, uffdFd: -1, uffdFeatures: 0, statmFd: -1, types: typesSab });
  const heap = new Uint32Array(words * 2);
  const objs: number[] = [];
  // With firstLarge: the first large object, objects that fill a gap and the object after them are roots.
  const forced = new Set<number>();
  let top = 1;
  const limit = Math.min(words, Math.floor(words * s.fill));
  for (;;) {
    let typeId: number;
    let len = 0;
    const k = s.firstLarge && objs.length === 0 ? 'bytes' : rng.weighted([[6, 'fixed'], [2, 'refs'], [2, 'bytes']] as const);
    if (s.firstLarge && objs.length === 0) {
      typeId = BYTE_ARRAY_TYPE;
      len = rng.int(8 * PAGE_WORDS, 20000);
    } else if (k === 'fixed') typeId = s.small ? rng.pick(typeIds.slice(0, 2)) : rng.pick(typeIds);
    else {
      typeId = k === 'refs' ? REF_ARRAY_TYPE : BYTE_ARRAY_TYPE;
      const large = rng.chance(s.largeP);
      if (s.small) len = rng.int(0, 4);
      else len = k === 'refs' ? (large ? rng.int(900, 5000) : rng.int(0, 40)) : large ? rng.int(4000, 20000) : rng.int(0, 300);
    }
    const kind = types.kind(typeId);
    const size = kind === Kind.FIXED ? types.rows[typeId * 4 + 3] : arrayWords(kind, len);
    const gap = s.alignWords && size >= s.alignWords ? -top & (PAGE_WORDS - 1) : 0;
    if (gap > 0 && top + gap + size <= limit) {
      if (rng.chance(0.3)) {
        // Sometimes an object fills the gap instead: a live run may then run into the large
        // object, which can still land past a gap of its own (a stride must stop there).
        heap[top * 2] = BYTE_ARRAY_TYPE;
        heap[top * 2 + 1] = (gap - 1) * 8;
        objs.push(top);
        if (s.firstLarge) forced.add(top).add(top + gap);
      } else {
        heap[top * 2] = 0; // a filler, as Heap's allocator writes
        heap[top * 2 + 1] = gap;
      }
      top += gap;
    }
    if (top + size > limit) {
      if (s.fill >= 1 && top < words) {
        // A full heap: the last object ends exactly at the capacity.
        const rest = words - top;
        if (rest >= 1) {
          heap[top * 2] = BYTE_ARRAY_TYPE;
          heap[top * 2 + 1] = (rest - 1) * 8;
          objs.push(top);
          top = words;
        }
      }
      break;
    }
    heap[top * 2] = typeId;
    heap[top * 2 + 1] = len;
    if (s.firstLarge && objs.length === 0) forced.add(top);
    objs.push(top);
    top += size;
  }
  // Contents: raw words random, reference slots random objects (or null).
  for (const o of objs) {
    const n = refCount(heap, types.rows, o);
    const end = (o + sizeWords(heap, types.rows, o)) * 2;
    for (let i = o * 2 + 2; i < end; i++) heap[i] = rng.u32();
    // (With firstLarge, fewer: liveness stays close to the roots, so that dead runs are common.)
    for (let i = 0; i < n; i++) heap[o * 2 + 2 + i] = objs.length && rng.chance(s.firstLarge ? 0.02 : 0.7) ? rng.pick(objs) : 0;
  }
  const roots = new Set<number>();
  objs.forEach((o, i) => {
    if (i < s.densePrefix || rng.chance(s.rootP) || forced.has(o)) roots.add(o);
  });
  const pinned = new Set<number>();
  for (let i = 0; i < s.pins && objs.length; i++) pinned.add(rng.pick(objs));
  if (s.straddlePin) straddlePin(rng, heap, types.rows, objs, roots, pinned);
  mark(heap, sh.types, 4096, sh.starts, sh.live, top, [...roots, ...pinned]);
  const p = plan(heap, sh.types, sh, { topWord: top, pinned, denseThreshold: s.denseThreshold, alignWords: s.alignWords ?? 0 });
  sh.ctl[Ctl.SEGMENTS] = p.segments.length;
  // From-space: the heap as it was (mremap moves it whole), plus scratch pages; then the
  // pause's fix of pinned spans (which also copies straddlers' in-span parts to from-space).
  const from = new Uint32Array((words + SCRATCH_PAGES * PAGE_WORDS) * 2);
  from.set(heap);
  fixPinnedSpans(heap, from, sh, p);
  return { alignWords: s.alignWords ?? 0, sh, heap, from, plan: p, top };
}

/** See Shape.straddlePin: picks the liveness and pins; refs then point at roots only. */
function straddlePin(rng: Rng, heap: Uint32Array, types: Int32Array, objs: number[], roots: Set<number>, pinned: Set<number>): void {
  roots.clear();
  pinned.clear();
  const end = (o: number): number => o + sizeWords(heap, types, o);
  const dead = new Set<number>();
  for (let i = 0; i + 1 < objs.length; i++) {
    const x = objs[i];
    const edge = Math.ceil((x + 1) / PAGE_WORDS) * PAGE_WORDS;
    // x straddles `edge` by a little, the next object starts in the span, room for a dead gap.
    if (end(x) <= edge || end(x) - edge > 40 || edge < 2 * PAGE_WORDS || !rng.chance(0.3)) continue;
    const run = rng.int(40, 300);
    const gap = rng.int(50, 200);
    pinned.add(objs[i + 1]);
    for (const o of objs) {
      if (o >= edge - run - gap && o < edge - run) dead.add(o);
      else if (o >= edge - run && o <= x) roots.add(o);
    }
  }
  for (const o of objs) if (!dead.has(o) && rng.chance(0.5)) roots.add(o);
  const live = [...roots];
  for (const o of objs) {
    const n = refCount(heap, types, o);
    for (let i = 0; i < n; i++) heap[o * 2 + 2 + i] = live.length && rng.chance(0.5) ? rng.pick(live) : 0;
  }
}

function garbage(n: number, seed: number): Uint32Array {
  const r = new Rng(seed);
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = r.u32();
  return u;
}

/**
 * A dense random heap (a dense prefix one seed in three), every page of its plan, and a build of
 * them all one page per call into garbage (`buildAll`), the native builder's first (`clean`).
 */
function denseCase(rng: Rng, seed: number): { t: TestHeap; sh: Shared; from: Uint32Array; pages: number[]; buildAll: (b: RunBuilder) => Uint32Array; clean: Uint32Array } {
  const t = randomHeap(rng, { capacityPages: 24, fill: 0.9, rootP: 0.3, densePrefix: seed % 3 === 0 ? 200 : 0, denseThreshold: seed % 3 === 0 ? 0.5 : 2, pins: 0, largeP: 0.05, firstLarge: true });
  const pages: number[] = [];
  for (const sg of t.plan.segments) for (let q = sg.firstPage; q < sg.endPage; q++) pages.push(q);
  const buildAll = (b: RunBuilder): Uint32Array => {
    const out = garbage(pages.length * PAGE_U32, seed);
    pages.forEach((q, i) => b.buildRun(q, 1, out, i * PAGE_U32));
    return out;
  };
  return { t, sh: t.sh, from: t.from, pages, buildAll, clean: buildAll(new NativePageBuilder(t.sh, t.from)) };
}

function firstDiff(a: Uint32Array, b: Uint32Array): string {
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) return `u32 ${i} (page ${Math.floor(i / PAGE_U32)}, word ${(i % PAGE_U32) >> 1}${i & 1 ? ' hi' : ''}): js ${a[i]} native ${b[i]}`;
  return 'identical';
}

interface Coverage {
  heaps: number;
  pages: number;
  identity: number;
  pins: number;
  straddlers: number;
  emptyHeaps: number;
  fullHeaps: number;
  runs: number;
  /** Identity pages starting with a dead run right after a live word (its filler goes here). */
  deadAtEdge: number;
  /** Slide pages holding part of a live run long enough for a block copy. */
  strides: number;
  /** Pages where a segment's free tail starts, with a filler. */
  tails: number;
  /** Segments whose last sliding object straddles into a pinned span. */
  intoPins: number;
  /** ... at the end of a live run long enough for a block copy, and it slides. */
  intoPinsStride: number;
  /** Large objects kept on a page; of them, landing past a gap; past a gap inside a live run (a stride must stop there). */
  aligned: number;
  alignedPastGap: number;
  alignedInRun: number;
  /** Pages planned WHOLE (each checked against its from-space page); pages that are all gap. */
  whole: number;
  gapPages: number;
}

/** Builds every page with both builders, every way the collector calls them, and compares. */
function compareBuilders(t: TestHeap, rng: Rng, cov: Coverage, ctx: string): void {
  const { sh, from } = t;
  const pages: number[] = [];
  for (const s of t.plan.segments) for (let q = s.firstPage; q < s.endPage; q++) pages.push(q);
  const js = new PageBuilder(sh, from);
  const nat = new NativePageBuilder(sh, from);
  const n = pages.length;
  const pre = garbage(Math.max(1, n) * PAGE_U32, n + 1);

  // 1. Page by page into a separate destination (as stw builds into the heap).
  const a = pre.slice();
  const b = pre.slice();
  pages.forEach((q, i) => {
    js.buildRun(q, 1, a, i * PAGE_U32);
    nat.buildRun(q, 1, b, i * PAGE_U32);
  });
  expect(firstDiff(a, b), `${ctx}: page by page`).toBe('identical');

  // 2. Native runs of random lengths (contiguous pages only), against the per-page reference.
  const c = pre.slice();
  for (let i = 0; i < n; ) {
    let k = 1;
    const want = rng.int(1, 64);
    while (k < want && i + k < n && pages[i + k] === pages[i] + k) k++;
    nat.buildRun(pages[i], k, c, i * PAGE_U32);
    cov.runs++;
    i += k;
  }
  expect(firstDiff(a, c), `${ctx}: native runs`).toBe('identical');

  // 3. Into from-space's scratch pages (dst === from: the JS builder's in-array copy paths).
  const scratchU32 = (from.length / PAGE_U32 - SCRATCH_PAGES) * PAGE_U32;
  const fromJs = from.slice();
  const fromNat = from.slice();
  const jsSame = new PageBuilder(sh, fromJs);
  const natSame = new NativePageBuilder(sh, fromNat);
  for (let i = 0; i < n; i += 64) {
    const k = Math.min(64, n - i);
    fromJs.set(pre.subarray(i * PAGE_U32, (i + k) * PAGE_U32), scratchU32);
    fromNat.set(pre.subarray(i * PAGE_U32, (i + k) * PAGE_U32), scratchU32);
    for (let j = 0; j < k; j++) jsSame.buildRun(pages[i + j], 1, fromJs, scratchU32 + j * PAGE_U32);
    let j = 0;
    while (j < k) {
      let m = 1;
      while (j + m < k && pages[i + j + m] === pages[i + j] + m) m++;
      natSame.buildRun(pages[i + j], m, fromNat, scratchU32 + j * PAGE_U32);
      j += m;
    }
    const got = fromJs.subarray(scratchU32, scratchU32 + k * PAGE_U32);
    expect(firstDiff(a.subarray(i * PAGE_U32, (i + k) * PAGE_U32), got), `${ctx}: js into from-space`).toBe('identical');
    expect(firstDiff(got, fromNat.subarray(scratchU32, scratchU32 + k * PAGE_U32)), `${ctx}: into from-space`).toBe('identical');
  }
  // Neither builder wrote outside its destination pages.
  expect(firstDiff(fromJs.subarray(0, scratchU32), from.subarray(0, scratchU32)), `${ctx}: js wrote into from-space`).toBe('identical');
  expect(firstDiff(fromNat.subarray(0, scratchU32), from.subarray(0, scratchU32)), `${ctx}: native wrote into from-space`).toBe('identical');

  // A WHOLE page is its object's from-space page shifted by whole pages: built, it is that page.
  pages.forEach((q, i) => {
    if (sh.pageKind[q] !== PageKind.WHOLE) return;
    const o = sh.pageFirst[q];
    const src = o / PAGE_WORDS + q - sh.chunkNew[o >>> 6] / PAGE_WORDS;
    expect(firstDiff(a.subarray(i * PAGE_U32, (i + 1) * PAGE_U32), from.subarray(src * PAGE_U32, (src + 1) * PAGE_U32)), `${ctx}: WHOLE page ${q} against from-space page ${src}`).toBe('identical');
    cov.whole++;
  });
  for (const q of pages) {
    const o = sh.pageFirst[q];
    if (sh.pageKind[q] !== PageKind.IDENTITY && o !== 0xffffffff && forward(sh.chunkNew, sh.live, o) >= (q + 1) * PAGE_WORDS) cov.gapPages++;
  }
  if (t.alignWords > 0)
    for (let c = 0; c * 64 < t.top; c += PAGE_WORDS / 64) {
      const o = c * 64;
      if (!(sh.starts[o >>> 5] & 1) || !(sh.live[o >>> 5] & 1) || sizeWords(from, sh.types, o) < t.alignWords || sh.chunkNew[c] === 0xffffffff || sh.chunkNew[c] % PAGE_WORDS !== 0) continue;
      const seg = t.plan.segments[t.plan.segments.length - 1];
      if (o < seg.identEnd || o < seg.start) continue;
      cov.aligned++;
      const prev = o - 1;
      const prevLive = prev >= 0 && (sh.live[prev >>> 5] & (1 << (prev & 31))) !== 0;
      let lastLive = prev;
      while (lastLive >= seg.identEnd && !(sh.live[lastLive >>> 5] & (1 << (lastLive & 31)))) lastLive--;
      if (lastLive >= seg.identEnd && forward(sh.chunkNew, sh.live, lastLive) + 1 < sh.chunkNew[c]) {
        cov.alignedPastGap++;
        if (prevLive) cov.alignedInRun++;
      }
    }
  cov.heaps++;
  cov.pages += n;
  cov.identity += pages.filter((q) => sh.pageKind[q] === PageKind.IDENTITY).length;
  cov.pins += t.plan.pinnedSpans.length;
  for (const q of pages) {
    const qw = q * PAGE_WORDS;
    if (sh.pageKind[q] === PageKind.IDENTITY && qw > 0 && !bit(sh.live, qw) && bit(sh.live, qw - 1)) cov.deadAtEdge++;
  }
  for (const s of t.plan.segments) {
    if (s.endExt > s.end) {
      cov.intoPins++;
      let w = s.end - 1;
      while (w >= s.identEnd && bit(sh.live, w)) w--;
      if (s.end - 1 - w >= 32 && s.newEnd < s.end) cov.intoPinsStride++; // and it slides
    }
    if (s.fillerEnd > s.newEnd && s.newEnd % PAGE_WORDS !== 0 && s.endPage > s.firstPage) cov.tails++;
    for (let w = s.identEnd, run = 0; w < s.end; w++) {
      run = bit(sh.live, w) ? run + 1 : 0;
      if (run === 32) cov.strides++;
    }
  }
  if (n === 0) cov.emptyHeaps++;
  if (t.top === sh.d.capacity / 8) cov.fullHeaps++;
  // Live objects that cross a to-space page edge.
  for (let o = 0; o < t.top; o++)
    if (sh.starts[o >>> 5] & (1 << (o & 31))) {
      const sz = sizeWords(from, sh.types, o);
      if (Math.floor(o / PAGE_WORDS) !== Math.floor((o + sz - 1) / PAGE_WORDS)) cov.straddlers++;
      o += sz - 1;
    }
}

function shapeFor(rng: Rng, i: number): Shape {
  const base: Shape = {
    capacityPages: rng.pick([8, 16, 64, 160]),
    fill: rng.pick([0.5, 0.9, 0.99]),
    rootP: rng.pick([0, 0.05, 0.3, 0.7, 1]),
    densePrefix: rng.chance(0.4) ? rng.int(50, 2000) : 0,
    denseThreshold: rng.pick([0.95, 0.95, 0.5, 0, 2]),
    pins: rng.chance(0.5) ? rng.int(1, 6) : 0,
    largeP: rng.pick([0, 0.02, 0.1]),
    small: rng.chance(0.25),
    alignWords: rng.pick([0, 0, 64, 512, 1024]),
  };
  // Fixed corners among the seeds: empty, full and fully live, and garbage only.
  if (i % 10 === 0) return { ...base, fill: 0 };
  if (i % 10 === 1) return { ...base, fill: 1, rootP: 1, denseThreshold: 2 };
  if (i % 10 === 2) return { ...base, fill: 1, rootP: 1, denseThreshold: 0.95 };
  if (i % 10 === 3) return { ...base, rootP: 0, densePrefix: 0, pins: 0 };
  // Small objects in place: dead runs that start exactly on a page edge.
  if (i % 10 === 4) return { ...base, small: true, denseThreshold: rng.pick([0, 0.5]), rootP: 0.5 };
  // Mostly live around pins: long live runs that slide into a pinned span's edge.
  if (i % 10 === 5) return { ...base, capacityPages: 64, largeP: 0, denseThreshold: 2, straddlePin: true };
  // Large objects on pages from the first one: a first page that is all gap.
  if (i % 10 === 6) return { ...base, capacityPages: rng.pick([16, 64]), alignWords: rng.pick([64, 512]), largeP: 0.1, small: false, densePrefix: 0, firstLarge: true, denseThreshold: 2, rootP: 0.3, pins: 0 };
  return base;
}

describe('page builders: js and native write the same bytes', () => {
  it('on random heaps (every kind, pins, straddlers, dense prefix, empty and full)', () => {
    const cov: Coverage = { heaps: 0, pages: 0, identity: 0, pins: 0, straddlers: 0, emptyHeaps: 0, fullHeaps: 0, runs: 0, deadAtEdge: 0, strides: 0, tails: 0, intoPins: 0, intoPinsStride: 0, aligned: 0, alignedPastGap: 0, alignedInRun: 0, whole: 0, gapPages: 0 };
    SEEDS.forEach((seed, i) => {
      const rng = new Rng(seed);
      const shape = shapeFor(rng, i);
      const t = randomHeap(rng, shape);
      compareBuilders(t, rng, cov, `seed ${seed} ${JSON.stringify(shape)}`);
    });
    if (process.env.GC_DEBUG) console.log(JSON.stringify(cov));
    if (!process.env.GC_SEED) {
      // The seeds must exercise every case they claim to.
      expect(cov.identity, JSON.stringify(cov)).toBeGreaterThan(50);
      expect(cov.pins, JSON.stringify(cov)).toBeGreaterThan(10);
      expect(cov.straddlers, JSON.stringify(cov)).toBeGreaterThan(1000);
      expect(cov.emptyHeaps, JSON.stringify(cov)).toBeGreaterThan(0);
      expect(cov.fullHeaps, JSON.stringify(cov)).toBeGreaterThan(0);
      expect(cov.runs, JSON.stringify(cov)).toBeLessThan(cov.pages);
      for (const k of ['deadAtEdge', 'strides', 'tails', 'intoPins', 'intoPinsStride', 'aligned', 'alignedPastGap', 'alignedInRun', 'whole', 'gapPages'] as const) expect(cov[k], `${k}: ${JSON.stringify(cov)}`).toBeGreaterThan(5);
    }
  });

  // With hugePages an object of 2 MiB or more lands on a 2 MiB boundary: when the object
  // below it ends exactly on a page edge, the gap starts on a page no object overlaps. That
  // page must hold the gap's filler (plan.ts gives it the object past the gap); it was planned
  // GAP, all zeros, and the heap stopped parsing there.
  it('a gap that starts on a page edge before an object kept on 2 MiB (hugePages): its first page holds the filler', () => {
    const PMD = 512 * PAGE_WORDS;
    const cases = [
      { name: 'a large object (16 pages) ends on the edge', garbage: 0, words: 16 * PAGE_WORDS, alignWords: 8192 },
      { name: 'a small object slid to word 1 ends on the edge', garbage: 256, words: PAGE_WORDS - 1, alignWords: 8192 },
      { name: 'a one-page large object (largeObjectBytes 4096)', garbage: 0, words: PAGE_WORDS, alignWords: 512 },
    ];
    for (const c of cases) {
      const capacity = (2 * PMD + 2 * PAGE_WORDS) * 8;
      const typesSab = TypeTable.allocate();
      const sh = Shared.allocate({ heapAddress: 0, fromAddress: 0, capacity, fromExtraPages: SCRATCH_PAGES, uffdFd: -1, uffdFeatures: 0, statmFd: -1, types: typesSab });
      const heap = new Uint32Array((capacity / 8) * 2);
      const put = (w: number, type: number, len: number): number => {
        heap[w * 2] = type;
        heap[w * 2 + 1] = len;
        return w;
      };
      let top = 1;
      if (c.garbage > 0) top += sizeWords(heap, sh.types, put(top, BYTE_ARRAY_TYPE, (c.garbage - 1) * 8));
      if (c.words >= c.alignWords) top += sizeWords(heap, sh.types, put(top, 0, PAGE_WORDS - top)); // the allocator's filler
      const a = put(top, BYTE_ARRAY_TYPE, (c.words - 1) * 8);
      top = a + c.words;
      put(top, 0, PMD - top);
      const b = put(PMD, BYTE_ARRAY_TYPE, PMD * 8); // PMD + 1 words
      top = b + PMD + 1;
      for (const o of [a, b]) for (let i = o * 2 + 2; i < (o + sizeWords(heap, sh.types, o)) * 2; i++) heap[i] = Math.imul(i, 0x9e3779b1) >>> 0;
      mark(heap, sh.types, 4096, sh.starts, sh.live, top, [a, b]);
      sh.ctl[Ctl.HUGE_PAGES] = 1;
      const p = plan(heap, sh.types, sh, { topWord: top, pinned: [], denseThreshold: 2, alignWords: c.alignWords });
      sh.ctl[Ctl.SEGMENTS] = p.segments.length;
      const from = new Uint32Array((capacity / 8 + SCRATCH_PAGES * PAGE_WORDS) * 2);
      from.set(heap);
      const ctx = `${c.name}: ${JSON.stringify(p.segments)}`;
      const aEnd = forward(sh.chunkNew, sh.live, a) + c.words;
      expect(aEnd % PAGE_WORDS, ctx).toBe(0);
      expect(forward(sh.chunkNew, sh.live, b), ctx).toBe(PMD);
      const q = aEnd / PAGE_WORDS;
      expect(sh.pageKind[q], ctx).toBe(PageKind.SLIDE);
      for (const builder of [new PageBuilder(sh, from), new NativePageBuilder(sh, from)]) {
        const dst = garbage(PAGE_U32, q);
        builder.buildRun(q, 1, dst, 0);
        expect([dst[0], dst[1]], `${ctx}: the filler on page ${q}`).toEqual([0, PMD - aEnd]);
        expect(dst.subarray(2).some((v) => v !== 0), ctx).toBe(false);
      }
      const cov: Coverage = { heaps: 0, pages: 0, identity: 0, pins: 0, straddlers: 0, emptyHeaps: 0, fullHeaps: 0, runs: 0, deadAtEdge: 0, strides: 0, tails: 0, intoPins: 0, intoPinsStride: 0, aligned: 0, alignedPastGap: 0, alignedInRun: 0, whole: 0, gapPages: 0 };
      compareBuilders({ alignWords: c.alignWords, sh, heap, from, plan: p, top }, new Rng(q), cov, ctx);
    }
  });

  it('the native builder refuses to read or write outside its arrays', () => {
    const rng = new Rng(99);
    const t = randomHeap(rng, { capacityPages: 16, fill: 0.9, rootP: 1, densePrefix: 0, denseThreshold: 2, pins: 0, largeP: 0 });
    const nat = new NativePageBuilder(t.sh, t.from);
    const dst = new Uint32Array(2 * PAGE_U32);
    const code = (f: () => void): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as MoveGcError).code;
      }
      return undefined;
    };
    expect(code(() => nat.buildRun(0, 3, dst, 0))).toBe('ERR_OUT_OF_RANGE'); // 3 pages into 2
    expect(code(() => nat.buildRun(16, 1, dst, 0))).toBe('ERR_OUT_OF_RANGE'); // past the heap
    // A short from-space is an error too.
    const short = new NativePageBuilder(t.sh, t.from.subarray(0, PAGE_U32));
    expect(code(() => short.buildRun(t.plan.segments[0].endPage - 1, 1, dst, 0))).toBe('ERR_OUT_OF_RANGE');
  });
  // A live object whose header or reference the program overwrote after marking
  // (MADV_DONTNEED zeroes a page): the flip has happened, so a builder that stopped there would
  // leave the mutator waiting for that page forever. Both builders keep such words as they are
  // (a malformed header: the object's extent as marking recorded it), count the object, and
  // write every other word as they would have.
  it('a live object with a malformed header or reference: both builders keep its words raw, count it, and change nothing else', () => {
    const cases: Array<[string, (o: number, from: Uint32Array, top: number, dead: number) => void, boolean]> = [
      ['zeroed', (o, f) => f.fill(0, o * 2, o * 2 + 2), false],
      ['a type id past the table', (o, f) => (f[o * 2] = 1 << 30), false],
      ['a filler of 3 words', (o, f) => ((f[o * 2] = 0), (f[o * 2 + 1] = 3)), false],
      ['a type never defined', (o, f) => (f[o * 2] = 4000), false],
      ['a reference outside the heap', (o, f) => (f[o * 2 + 2] = 0xfffffff0), true],
      ['a reference above the top, inside the heap', (o, f, top) => (f[o * 2 + 2] = top + 3), true],
      ['a valid header of another size (a byte array of 0 bytes: 1 word)', (o, f) => ((f[o * 2] = BYTE_ARRAY_TYPE), (f[o * 2 + 1] = 0)), false],
      ['a reference to a dead word', (o, f, _top, dead) => (f[o * 2 + 2] = dead), true],
    ];
    let slid = 0;
    let identity = 0;
    let deadCases = 0;
    for (let seed = 1; seed <= 48; seed++) {
      const rng = new Rng(seed * 7919);
      const { t, sh, from, pages, buildAll, clean } = denseCase(rng, seed);
      const [name, corrupt, slot] = cases[seed % cases.length];
      const live: number[] = [];
      const resized = name.startsWith('a valid header');
      for (let o = 1; o < t.top; o++) if (bit(sh.starts, o) && (!slot || refCount(from, sh.types, o) > 0) && (!resized || sizeWords(from, sh.types, o) >= 3)) live.push(o);
      if (live.length === 0) continue;
      const o = rng.pick(live);
      const ctx = `seed ${seed}, object at ${o}: ${name}`;
      const saved = from.slice(o * 2, o * 2 + 4);
      const top = t.plan.segments[t.plan.segments.length - 1].end;
      if (name.includes('above the top')) expect(top + 3, ctx).toBeLessThan(t.heap.length / 2);
      const deadWords: number[] = [];
      for (let w = 1; w < top; w++) if (!bit(sh.live, w)) deadWords.push(w);
      if (name.includes('dead word')) {
        if (deadWords.length === 0) continue;
        deadCases++;
      }
      corrupt(o, from, top, name.includes('dead word') ? rng.pick(deadWords) : 0);
      // Its extent as marking recorded it: to the next start or the end of its live run.
      let end = o + 1;
      while (end < t.top && bit(sh.live, end) && !bit(sh.starts, end)) end++;
      const to = forward(sh.chunkNew, sh.live, o);
      // The words kept raw, as to-space u32 indexes: the object's (a header), or the slot.
      const rawFrom = slot ? to * 2 + 2 : to * 2;
      const rawEnd = slot ? to * 2 + 3 : (to + end - o) * 2;
      const outs: Uint32Array[] = [];
      for (const b of [new PageBuilder(sh, from), new NativePageBuilder(sh, from)]) {
        outs.push(buildAll(b));
        expect(b.malformed, ctx).toBeGreaterThan(0);
        expect(b.malformedFirst, ctx).toBe(o);
      }
      expect(firstDiff(outs[0], outs[1]), ctx).toBe('identical');
      pages.forEach((q, i) => {
        for (let k = 0; k < PAGE_U32; k++) {
          const u = q * PAGE_U32 + k; // to-space u32 index
          const raw = u >= rawFrom && u < rawEnd;
          const want = raw ? from[o * 2 + (u - to * 2)] : clean[i * PAGE_U32 + k];
          if (outs[1][i * PAGE_U32 + k] !== want) expect.fail(`${ctx}: page ${q}, u32 ${u}${raw ? ' (kept raw)' : ''}: ${outs[1][i * PAGE_U32 + k]}, not ${want}`);
        }
      });
      from.set(saved, o * 2);
      if (to === o) identity++;
      else slid++;
    }
    expect(slid, 'objects that slide').toBeGreaterThan(4);
    expect(identity, 'objects that stay (identity pages)').toBeGreaterThan(1);
    expect(deadCases, 'references to dead words').toBeGreaterThan(3);
  });

  // The mutator's stores into unbuilt pages, made in from-space (unbuilt-writes.ts): a to-space
  // word tagged FORWARDED, which each builder writes untagged and does not forward again.
  it('a reference slot tagged FORWARDED (a store since the flip): both builders write the word under the tag, as it is, and nothing else changes', () => {
    let tagged = 0;
    for (let seed = 1; seed <= 24; seed++) {
      const rng = new Rng(seed * 104723);
      const { t, sh, from, pages, buildAll, clean } = denseCase(rng, seed);
      const words = t.heap.length / 2;
      const slots = new Map<number, number>(); // to-space u32 index -> the word stored
      for (let o = 1; o < t.top; o++) {
        if (!bit(sh.starts, o) || refCount(from, sh.types, o) === 0 || rng.next() > 0.3) continue;
        const i = Math.floor(rng.next() * refCount(from, sh.types, o));
        const w = 1 + Math.floor(rng.next() * (words - 1)); // any word of the heap, even past the plan's top
        from[o * 2 + 2 + i] = (w | 0x80000000) >>> 0;
        slots.set(forward(sh.chunkNew, sh.live, o) * 2 + 2 + i, w);
      }
      tagged += slots.size;
      const outs = [new PageBuilder(sh, from), new NativePageBuilder(sh, from)].map((b) => {
        const out = buildAll(b);
        expect(b.malformed, `seed ${seed}`).toBe(0);
        return out;
      });
      expect(firstDiff(outs[0], outs[1]), `seed ${seed}`).toBe('identical');
      pages.forEach((q, i) => {
        for (let k = 0; k < PAGE_U32; k++) {
          const u = q * PAGE_U32 + k;
          const want = slots.get(u) ?? clean[i * PAGE_U32 + k];
          if (outs[1][i * PAGE_U32 + k] !== want) expect.fail(`seed ${seed}: page ${q}, u32 ${u}${slots.has(u) ? ' (tagged)' : ''}: ${outs[1][i * PAGE_U32 + k]}, not ${want}`);
        }
      });
    }
    expect(tagged, 'tagged slots built').toBeGreaterThan(200);
  });

  // build.cc defers a page's reference forwards to the end of its walk (Defer, Flush). A walk
  // that fails part way must not leave them for the next build, whose Flush would write them
  // into the failed build's destination: each of Slide and Identity starts from none.
  it('a native build that fails mid-page leaves no deferred forward for the next build, slide or identity', () => {
    let tested = 0;
    for (let seed = 1; seed < 200 && tested < 3; seed++) {
      const t = randomHeap(new Rng(seed), { capacityPages: 32, fill: 0.9, rootP: 0.3, densePrefix: 0, denseThreshold: 0.9, pins: 0, largeP: 0, firstLarge: true });
      const { sh, from } = t;
      const rows = sh.types;
      const fwd = (w: number): number => forward(sh.chunkNew, sh.live, w);
      const pages: number[] = [];
      for (const s of t.plan.segments) for (let q = s.firstPage; q < s.endPage; q++) pages.push(q);
      const identity = pages.find((q) => sh.pageKind[q] === PageKind.IDENTITY);
      // A sliding page whose first object starts on it and holds a reference that moves; the
      // walk fails at the next live object, also on the page: from-space ends at its header.
      let found: { q: number; o2: number } | null = null;
      for (const q of pages) {
        if (sh.pageKind[q] !== PageKind.SLIDE || sh.pageFirst[q] === 0xffffffff) continue;
        // The first live object that starts on the page (the page's first may straddle into it).
        let o1 = sh.pageFirst[q];
        while (o1 < t.top && (!bit(sh.live, o1) || fwd(o1) < q * PAGE_WORDS)) o1 += sizeWords(from, rows, o1);
        if (o1 >= t.top || fwd(o1) >= (q + 1) * PAGE_WORDS) continue;
        let moves = false;
        for (let i = 0; i < refCount(from, rows, o1) && fwd(o1) + 1 + i < (q + 1) * PAGE_WORDS; i++) {
          const v = from[o1 * 2 + 2 + i];
          if (v !== 0 && fwd(v) !== v) moves = true;
        }
        let o2 = o1 + sizeWords(from, rows, o1);
        while (o2 < t.top && !bit(sh.live, o2)) o2 += sizeWords(from, rows, o2);
        if (moves && o2 < t.top && fwd(o2) < (q + 1) * PAGE_WORDS) {
          found = { q, o2 };
          break;
        }
      }
      if (!found || identity === undefined) continue;
      const { q, o2 } = found;
      const next = pages.find((p) => sh.pageKind[p] === PageKind.SLIDE && (p < q || p > q + 1));
      if (next === undefined) continue;
      tested++;
      // One builder, given from-space per call (as build-native.ts does): a short one first.
      const nat = new native.PageBuilder({ live: sh.live, starts: sh.starts, chunkNew: sh.chunkNew, pageFirst: sh.pageFirst, pageKind: sh.pageKind, segments: sh.segments, types: sh.types, ctl: sh.ctl, ctlSegments: Ctl.SEGMENTS, layout: BUILD_LAYOUT });
      for (const p of [identity, next]) {
        const failed = garbage(PAGE_U32, seed);
        expect(() => nat.build(q, 1, from.subarray(0, o2 * 2), failed, 0)).toThrow(/read outside from-space/);
        const after = failed.slice();
        nat.build(p, 1, from, new Uint32Array(PAGE_U32), 0);
        expect(firstDiff(after, failed), `seed ${seed}: page ${q} failed, then page ${p} (${sh.pageKind[p] === PageKind.IDENTITY ? 'identity' : 'slide'}) was built`).toBe('identical');
      }
    }
    expect(tested).toBe(3);
  });

  it('the native builder refuses a TypeScript constant that build.cc does not share (each one, by name)', () => {
    const rng = new Rng(7);
    const t = randomHeap(rng, { capacityPages: 4, fill: 0.5, rootP: 1, densePrefix: 0, denseThreshold: 2, pins: 0, largeP: 0 });
    const sh = t.sh;
    const tables = { live: sh.live, starts: sh.starts, chunkNew: sh.chunkNew, pageFirst: sh.pageFirst, pageKind: sh.pageKind, segments: sh.segments, types: sh.types, ctl: sh.ctl, ctlSegments: Ctl.SEGMENTS };
    expect(() => new native.PageBuilder({ ...tables, layout: BUILD_LAYOUT })).not.toThrow();
    const paths: string[][] = [];
    for (const [k, v] of Object.entries(BUILD_LAYOUT)) {
      if (typeof v === 'number') paths.push([k]);
      else for (const j of Object.keys(v)) paths.push([k, j]);
    }
    // Every shared name is checked: a value off by one on the TypeScript side is refused, naming it.
    let checked = 0;
    for (const [k, j] of paths) {
      if (k === 'pageKind' && (j === 'NONE' || j === 'SLIDE' || j === 'WHOLE')) continue; // build.cc never reads these
      if (k === 'seg' && (j === 'START' || j === 'END_PAGE')) continue;
      const layout = JSON.parse(JSON.stringify(BUILD_LAYOUT)) as Record<string, number | Record<string, number>>;
      if (j === undefined) (layout[k] as number) += 1;
      else (layout[k] as Record<string, number>)[j] += 1;
      let err: MoveGcError | undefined;
      try {
        new native.PageBuilder({ ...tables, layout });
      } catch (e) {
        err = e as MoveGcError;
      }
      expect(err?.code, `${k}${j ? '.' + j : ''}`).toBe('ERR_OUT_OF_RANGE');
      expect(err?.message).toContain(j ? `${k}.${j}` : k);
      checked++;
    }
    expect(checked).toBe(22);
  });
});

/** The from-space lookup as it was before bisection (unbuilt-reads.ts): the page's object starts walked, each forwarded. */
function walkedSource(sh: Shared, top: number, newTop: number, w: number): number {
  if (w >= newTop) return BUILD;
  const q = w >>> 9;
  let o = sh.pageFirst[q];
  if (o === NONE) return BUILD;
  const next = q + 1 < sh.pageFirst.length ? sh.pageFirst[q + 1] : NONE;
  const limit = next === NONE ? top : Math.min(next + 1, top);
  for (let n = 0; n <= 1024; n++) {
    const t = forward(sh.chunkNew, sh.live, o);
    if (t === w) return o;
    if (t > w) return BUILD;
    o = nextSet(sh.starts, o + 1, limit);
    if (o >= limit) return BUILD;
  }
  return BUILD;
}

describe('the read path finds an object in from-space (unbuilt-reads.ts sourceWord)', () => {
  it('on random heaps: every object the page walk finds, and only objects that land on the word asked for', () => {
    let found = 0;
    let asked = 0;
    SEEDS.forEach((seed, i) => {
      const rng = new Rng(seed);
      const shape = shapeFor(rng, i);
      const { sh, top: heapTop } = randomHeap(rng, shape);
      const top = planTop(sh);
      const segs = sh.ctl[Ctl.SEGMENTS];
      const newTop = segs > 0 ? sh.segments[(segs - 1) * SEG_FIELDS + Seg.NEW_END] : 0;
      // Every live object's new word, and words around it (interior, dead, past the top).
      const words: number[] = [];
      for (let o = nextSet(sh.starts, 1, heapTop); o < heapTop; o = nextSet(sh.starts, o + 1, heapTop)) {
        const t = forward(sh.chunkNew, sh.live, o);
        words.push(t, t + 1, Math.max(0, t - 1), o);
      }
      for (let k = 0; k < 200; k++) words.push(rng.int(0, sh.pageFirst.length * 512 - 1));
      for (const w of words) {
        asked++;
        const want = walkedSource(sh, top, newTop, w);
        const got = sourceWord(sh, top, newTop, w);
        const ctx = `seed ${seed} word ${w} ${JSON.stringify(shape)}`;
        if (want !== BUILD) {
          expect(got, ctx).toBe(want);
          found++;
        } else if (got !== BUILD) {
          // Found where the walk gave up: it must be the object that lands at w.
          expect(bit(sh.starts, got) && bit(sh.live, got) && forward(sh.chunkNew, sh.live, got) === w, ctx).toBe(true);
        }
      }
    });
    if (!process.env.GC_SEED) {
      expect(found).toBeGreaterThan(10000);
      expect(asked - found).toBeGreaterThan(10000);
    }
  });
});

describe('whole collections with each builder', () => {
  itKernel('move mode: the same workload compacts to the same heap with js and native', async () => {
    const out: Array<{ words: number[]; checksum: string; snap: ReturnType<typeof snapshot> }> = [];
    for (const builder of ['js', 'native'] as const) {
      const heap = await openHeap({ capacity: 32 << 20, mode: 'move', builder, denseThreshold: 0.9 });
      const T = defineTestTypes(heap);
      const roots = buildGraph(heap, T, new Rng(4242), { objects: 20000, garbage: 0.6, edges: true, huge: true, roots: 5 });
      const before = snapshot(heap, roots.map((r) => r.get()));
      const pin = heap.pin(before.refs[before.refs.length >> 1]);
      const st = await heap.gc();
      checkStats(st, 'move');
      expect(st.pages.total).toBeGreaterThan(1000);
      expect(heap.verify().ok).toBe(true);
      const snap = snapshot(heap, roots.map((r) => r.get()));
      out.push({ words: snap.refs.map((r) => r % 2 ** 32), checksum: snap.checksum, snap });
      pin.release();
    }
    expect(firstDifference(out[0].snap, out[1].snap)).toBe('identical');
    // Same plan, same builder output: every object at the same address.
    expect(out[1].words).toEqual(out[0].words);
  });
});
