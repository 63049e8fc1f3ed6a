/**
 * Move mode with hugePages: plain pages built 2 MiB at a time into a huge scratch page and
 * moved in with one call, as one PMD (gc/builders.ts buildPmd; compact.ts pmdStep;
 * selfservice.ts #pmdSpan).
 *
 *  - the compactor, nobody else touching the heap: every aligned span of plain pages goes in
 *    as one call, the heap's huge pages cover them, every object keeps its bytes, and the
 *    from-space the spans consumed is given back as they go;
 *  - the mutator, touching a page whose span nobody has begun (the compactor asleep before its
 *    first page): it builds the whole span in one stop, not the page alone;
 *  - the mutator reading every object while the compactor builds spans: nothing is lost;
 *  - copy mode, move mode without hugePages, and a heap too large for the huge scratch pages
 *    (within 10 MiB of 16 GiB: from-space's views) never do it.
 */
import { describe, expect } from 'vitest';
import { MAX_CAPACITY, type Heap, type Root } from '../dist/gc/index.js';
import { hugeBytes, smaps, thpNever } from './helpers/procfs.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';

closeHeapsAfterEach();

const MiB = 1 << 20;
const PAGE = 4096;
const SPAN_PAGES = 512;
const N = 40_000;

const idOf = (i: number): number => (Math.imul(i + 1, 0x9e3779b1) ^ 0x5a5a5a5a) >>> 0;

/** N small live byte arrays (each with its id), a garbage one of the same size before each: about 17 MiB. */
function populate(h: Heap, garbage = 1): Root {
  const root = h.root(h.allocRefArray(N));
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < garbage; k++) h.allocBytes(200);
    const b = h.allocBytes(200);
    h.setU32(b, 0, idOf(i));
    h.setU32(b, 196, ~idOf(i) >>> 0);
    h.setRef(root.get()!, i, b);
  }
  return root;
}

/** Indices of objects whose id is wrong (at most 5). */
function wrong(h: Heap, root: Root): number[] {
  const bad: number[] = [];
  for (let i = 0; i < N && bad.length < 5; i++) {
    const b = h.getRef(root.get()!, i)!;
    if (h.getU32(b, 0) !== idOf(i) || h.getU32(b, 196) !== ~idOf(i) >>> 0) bad.push(i);
  }
  return bad;
}


describe('2 MiB spans built and moved as one PMD (move, hugePages)', () => {
  itMode('move', 'the compactor alone: every aligned span of plain pages goes in with one call and stays a huge page; the bytes are intact', async () => {
    const h = await openHeap({ capacity: 32 * MiB, mode: 'move', hugePages: true, verify: true });
    const root = populate(h);
    const st = await h.gc();
    const ctx = JSON.stringify({ pages: st.pages, moveCalls: st.moveCalls });
    checkStats(st, 'move');
    expect(wrong(h, root), ctx).toEqual([]);
    // About 2100 pages live after the dense prefix: three aligned spans at least, each one call.
    expect(st.pages.pmdBuilt, ctx).toBeGreaterThanOrEqual(3 * SPAN_PAGES);
    expect(st.pages.pmdBuilt % SPAN_PAGES, ctx).toBe(0);
    expect(st.pages.builtByCompactor, ctx).toBe(st.pages.total);
    expect(st.moveCalls, ctx).toBeLessThan(st.pages.total / 64 + 8);
    if (thpNever()) console.warn('[movegc] skipping the huge page check: transparent huge pages are off (never)');
    else expect(hugeBytes(h), ctx).toBeGreaterThanOrEqual(st.pages.pmdBuilt * PAGE);
    // A second cycle: from-space is now those huge pages.
    for (let i = 0; i < N; i += 2) h.setRef(root.get()!, i, null);
    const st2 = await h.gc();
    checkStats(st2, 'move');
    for (let i = 1; i < N; i += 2) {
      const b = h.getRef(root.get()!, i)!;
      if (h.getU32(b, 0) !== idOf(i)) expect.fail(`object ${i} after the second cycle: ${JSON.stringify(st2.pages)}`);
    }
  });

  itMode('move', 'the compactor gives from-space back as its spans consume it', async () => {
    // Four garbage arrays before each live one: about 42 MiB of from-space, of which the spans
    // consume far more than the pool of consumed pages it keeps (8 MiB) plus a release (8 MiB).
    const h = await openHeap({ capacity: 64 * MiB, mode: 'move', hugePages: true });
    const root = populate(h, 4);
    const st = await h.gc();
    const ctx = JSON.stringify({ pages: st.pages });
    checkStats(st, 'move');
    expect(st.pages.pmdBuilt, ctx).toBeGreaterThanOrEqual(3 * SPAN_PAGES);
    expect(st.pages.released, ctx).toBeGreaterThanOrEqual(2048);
    expect(wrong(h, root), ctx).toEqual([]);
  });

  itMode('move', 'the mutator touching a page of a span nobody has begun builds the whole span in one stop, and it goes in as one call', async () => {
    // The compactor sleeps before its first page: the mutator's touch is the first in its span.
    // Its reads build (unbuiltReads 'build'): this is about a touch that builds.
    const h = await openHeap({ capacity: 32 * MiB, mode: 'move', hugePages: true, unbuiltReads: 'build', stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 400 } });
    const root = populate(h);
    await h.collect();
    expect(h.cyclePhase).toBe('compacting');
    const b = h.getRef(root.get()!, N - 1)!; // the array's last slot page, then the object's own page
    expect(h.getU32(b, 0)).toBe(idOf(N - 1));
    const st = (await h.idle())!;
    const ctx = JSON.stringify({ pages: st.pages, unbuilt: st.stalls.unbuiltTouches });
    checkStats(st, 'move', { faulted: true });
    // Two touches at most (the slot's page, the object's page), each its span's build.
    expect(st.stalls.unbuiltTouches, ctx).toBeLessThanOrEqual(2);
    expect(st.pages.pmdBuiltBySelf, ctx).toBeGreaterThanOrEqual(SPAN_PAGES);
    expect(st.pages.pmdBuiltBySelf % SPAN_PAGES, ctx).toBe(0);
    expect(st.pages.builtByMutator, ctx).toBeGreaterThanOrEqual(st.pages.pmdBuiltBySelf);
    expect(st.pages.builtByMutator, ctx).toBeLessThanOrEqual(st.pages.pmdBuiltBySelf + 1);
    expect(st.pages.pmdBuilt, ctx).toBeGreaterThanOrEqual(st.pages.pmdBuiltBySelf + SPAN_PAGES);
    expect(wrong(h, root), ctx).toEqual([]);
    expect(h.verify().ok).toBe(true);
  });

  itMode('move', 'the compactor faults the mutator\'s huge scratch pages in off the mutator\'s thread, at its start', async () => {
    // The compactor builds its first span, then sleeps (delayAtPage 600): by then it has
    // faulted in the mutator's three huge scratch pages (the cycle's end had released them).
    const h = await openHeap({ capacity: 32 * MiB, mode: 'move', hugePages: true, stallMs: 10_000, inject: { delayAtPage: 600, delayMs: 1500 } });
    const root = populate(h);
    const scratch = (): number =>
      smaps()
        .filter((v) => v.flags.includes('dc') && v.flags.includes('hg') && (v.end <= h.address || v.start >= h.address + h.capacity))
        .reduce((t, v) => t + v.rssBytes, 0);
    expect(scratch()).toBe(0);
    await h.collect();
    const t0 = Date.now();
    while (h.progress().pagesMapped < SPAN_PAGES && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 5));
    const resident = scratch();
    const st = (await h.idle())!;
    const ctx = JSON.stringify({ resident, pages: st.pages });
    expect(st.pages.pmdBuilt, ctx).toBeGreaterThanOrEqual(SPAN_PAGES);
    expect(resident, ctx).toBeGreaterThanOrEqual(3 * 2 * MiB);
    expect(scratch(), ctx).toBe(0); // given back with from-space at the cycle's end
    expect(wrong(h, root), ctx).toEqual([]);
  });

  itMode('move', 'the mutator reading every object while the compactor builds spans (js builder: slow spans): both build spans, nothing is lost', async () => {
    const h = await openHeap({ capacity: 32 * MiB, mode: 'move', hugePages: true, builder: 'js', stallMs: 10_000 });
    const root = populate(h);
    await h.collect();
    expect(h.cyclePhase).toBe('compacting');
    const bad = wrong(h, root);
    const st = (await h.idle())!;
    checkStats(st, 'move', { faulted: true });
    expect(bad, JSON.stringify(st.pages)).toEqual([]);
    expect(h.verify().ok).toBe(true);
  });

  itMode('move', 'the huge scratch pages fit in from-space\'s views up to 16 GiB less 10 MiB: a heap larger builds no span, and works', async () => {
    for (const capacity of [MAX_CAPACITY - 8 * MiB, MAX_CAPACITY - 6 * MiB]) {
      const h = await openHeap({ capacity, mode: 'move', hugePages: true });
      const root = populate(h);
      const st = await h.gc();
      const ctx = JSON.stringify({ capacity, pages: st.pages });
      checkStats(st, 'move');
      if (capacity === MAX_CAPACITY - 8 * MiB) expect(st.pages.pmdBuilt, ctx).toBeGreaterThanOrEqual(3 * SPAN_PAGES);
      else expect(st.pages.pmdBuilt, ctx).toBe(0);
      expect(wrong(h, root), ctx).toEqual([]);
      await h.close();
    }
  }, 60_000);

  for (const [mode, hugePages] of [['copy', true], ['move', false]] as const)
    itMode(mode, `${mode} mode ${hugePages ? 'with' : 'without'} hugePages: no span goes in as one PMD`, async () => {
      const h = await openHeap({ capacity: 32 * MiB, mode, hugePages, verify: true });
      const root = populate(h);
      const st = await h.gc();
      checkStats(st, mode);
      expect(st.pages.pmdBuilt).toBe(0);
      expect(wrong(h, root)).toEqual([]);
    });
});

