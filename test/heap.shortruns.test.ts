/**
 * The compactor's buffers and installs (compact.ts). Consumed from-space is given back as
 * compaction proceeds, beyond a pool kept for reuse, so RSS does not wait for the cycle's end.
 * The install policy for short runs (options.moveMinRun): in move mode
 * a run of fewer than moveMinRun pages (34 by default) is built into the compactor's private
 * pages and installed by COPY, since MOVE's TLB flush costs per page up to x86's ceiling of
 * 33; longer runs move. Pins every few pages cut the new layout into runs shorter than that
 * (each segment slides down to its pinned span), a heap without pins compacts in long runs.
 */
import { describe, expect } from 'vitest';
import { ErrorCode, Heap, type Pin } from '../dist/gc/index.js';
import { POOL_KEEP_PAGES, RELEASE_CHUNK_PAGES } from '../dist/gc/compact.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { rejected } from './helpers/thrown.js';
import { vmasIn } from './helpers/procfs.js';
import { PAGE_SIZE, native } from '../dist/gc/native.js';

closeHeapsAfterEach();

/** `n` objects of 64 bytes (64 a page), every other one live on a list; a pin every `pinEvery` pages (0: none). */
function fill(heap: Heap, pinEvery: number, n = 120_000): { count: () => number; pins: Pin[] } {
  const T = heap.defineType({ name: 'N', refs: 1, bytes: 48 });
  const list = heap.root(null);
  const pins: Pin[] = [];
  for (let i = 0; i < n; i++) {
    const n = heap.alloc(T);
    heap.setU32(n, 0, i);
    if (i % 2 === 0) {
      heap.setRef(n, 0, list.get());
      list.set(n);
    }
    if (pinEvery && i % (pinEvery * 64) === 1) pins.push(heap.pin(n));
  }
  const count = (): number => {
    let k = 0;
    const last = n - 2 + (n % 2);
    for (let r = list.get(); r !== null; r = heap.getRef(r, 0), k++) expect(heap.getU32(r, 0)).toBe(last - 2 * k);
    return k;
  };
  return { count, pins };
}

describe('short runs in move mode (moveMinRun)', () => {
  itMode('move', 'by default, runs cut short by pins are copied from private pages, and nothing is lost', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode: 'move' });
    const { count } = fill(heap, 12);
    const st = await heap.gc();
    checkStats(st, 'move');
    expect(st.pages.total).toBeGreaterThan(900);
    expect(st.pages.shortRunCopied).toBe(st.pages.total);
    expect(st.pages.copied).toBe(st.pages.total);
    expect(st.pages.moved).toBe(0);
    expect(st.pages.freshBuffers).toBe(0); // private pages of short runs are not counted as fresh buffers
    expect(count()).toBe(60_000);
    expect(heap.verify().ok).toBe(true);
  });

  itMode('move', 'moveMinRun 1: every run moves', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode: 'move', moveMinRun: 1 });
    const { count } = fill(heap, 12);
    const st = await heap.gc();
    checkStats(st, 'move');
    expect(st.pages.shortRunCopied).toBe(0);
    expect(st.pages.moved).toBe(st.pages.total);
    expect(count()).toBe(60_000);
    expect(heap.verify().ok).toBe(true);
  });

  itMode('move', 'a heap without pins compacts in long runs, which move', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode: 'move' });
    const { count } = fill(heap, 0);
    const st = await heap.gc();
    checkStats(st, 'move');
    expect(st.pages.total % 64).toBeGreaterThanOrEqual(34);
    expect(st.pages.shortRunCopied).toBe(0);
    expect(st.pages.moved).toBe(st.pages.total);
    expect(st.batchPages.max).toBeGreaterThanOrEqual(34);
    expect(count()).toBe(60_000);
    // And so do the next cycles, pins or not.
    expect((await heap.gc()).pages.shortRunCopied).toBe(0);
  });

  itMode('move', 'a stretch that would end in a short run is split in two runs that both move', async () => {
    // 50 624 live objects: 791 pages = 12 x 64 + 23; the last 87 go in as 53 + 34.
    const heap = await openHeap({ capacity: 16 << 20, mode: 'move' });
    const { count } = fill(heap, 0, 101_248);
    const st = await heap.gc();
    checkStats(st, 'move');
    expect(st.pages.total % 64).toBeLessThan(34);
    expect(st.pages.shortRunCopied).toBe(0);
    expect(st.pages.moved).toBe(st.pages.total);
    expect(count()).toBe(50_624);
  });

  itMode('copy', 'copy mode copies every run, and counts none as short', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode: 'copy' });
    const { count } = fill(heap, 12);
    const st = await heap.gc();
    expect(st.pages.shortRunCopied).toBe(0);
    expect(st.pages.copied).toBe(st.pages.total);
    expect(count()).toBe(60_000);
  });

  itMode('move', 'moveMinRun must be an integer in [1, 64]', async () => {
    for (const v of [0, 65, 1.5, -1, NaN, Infinity]) expect((await rejected(() => Heap.create({ capacity: 2 << 20, mode: 'move', moveMinRun: v }))).code).toBe(ErrorCode.OUT_OF_RANGE);
    // @ts-expect-error a string where a number belongs: refused with a typed error
    expect((await rejected(() => Heap.create({ capacity: 2 << 20, mode: 'move', moveMinRun: '34' }))).code).toBe(ErrorCode.INVALID_ARG_TYPE);
  });
});

describe('from-space given back as compaction proceeds', () => {
  // 640 000 objects of 64 B, every other one live: 10 000 pages that compact into 5 000.
  const N = 640_000;
  itMode('move', 'move mode: the consumed pages beyond the reuse pool are released during the walk', async () => {
    const heap = await openHeap({ capacity: 64 << 20, mode: 'move' });
    const { count } = fill(heap, 0, N);
    const st = await heap.gc();
    checkStats(st, 'move');
    // Each page built consumes two of from-space and reuses one as its buffer: the surplus
    // passes the pool and a chunk halfway through, and is released from then on.
    expect(st.pages.total).toBeGreaterThan(POOL_KEEP_PAGES + RELEASE_CHUNK_PAGES);
    expect(st.pages.released).toBeGreaterThanOrEqual(RELEASE_CHUNK_PAGES);
    expect(st.pages.released).toBeLessThanOrEqual(2 * st.pages.total - st.pages.recycledBuffers);
    expect(count()).toBe(N / 2);
  });

  itMode('copy', 'copy mode: every consumed page is released in chunks during the walk (no buffers reused)', async () => {
    const heap = await openHeap({ capacity: 64 << 20, mode: 'copy' });
    const { count } = fill(heap, 0, N);
    const st = await heap.gc();
    checkStats(st, 'copy');
    expect(st.pages.released).toBeGreaterThanOrEqual(2 * st.pages.total - 2 * RELEASE_CHUNK_PAGES);
    expect(count()).toBe(N / 2);
  });
});

describe('a long reference array: from-space behind its installed pages is reused', () => {
  // An audit: a long object built page by page held the recycling limit at its header until
  // its last page was in, so one 256 MiB reference array doubled peak RSS (in move mode its
  // runs went to scratch pages: fresh pages each, or copied after a few passes). Only its
  // header's page is kept now; the limit passes into the object behind its installed pages.
  for (const mode of ['move', 'copy'] as const)
    for (const slides of [true, false])
      itMode(mode, `${slides ? 'sliding' : 'in place at the bottom'}: consumed pages are reused (move) or released (copy) during the walk, and every slot reads back`, async () => {
        const heap = await openHeap({ capacity: 64 << 20, mode });
        const T = heap.defineType({ name: 'Leaf', refs: 0, bytes: 8 });
        if (slides) heap.allocBytes(100); // garbage below it
        const SLOTS = 4 << 20; // 16 MiB, 4096 pages
        const arr = heap.root(heap.allocRefArray(SLOTS));
        for (let i = 0; i < SLOTS; i += 4096) {
          const leaf = heap.alloc(T);
          heap.setU32(leaf, 0, i);
          heap.setRef(arr.get()!, i, leaf);
        }
        heap.allocBytes(1 << 20); // garbage above it
        const st = await heap.gc();
        checkStats(st, mode);
        expect(st.pages.total).toBeGreaterThan(4096);
        if (mode === 'move') {
          expect(st.pages.recycledBuffers, 'buffers from the array\'s own consumed pages').toBeGreaterThan(st.pages.total - 256);
          expect(st.pages.freshBuffers).toBeLessThanOrEqual(128);
        } else expect(st.pages.released, 'released during the walk').toBeGreaterThanOrEqual(RELEASE_CHUNK_PAGES);
        for (let i = 0; i < SLOTS; i += 4096) expect(heap.getU32(heap.getRef(arr.get()!, i)!, 0)).toBe(i);
        expect(heap.getRef(arr.get()!, 1)).toBe(null);
        expect(heap.verify().ok).toBe(true);
      });
});

describe('a run across two VMAs', () => {
  for (const mode of ['copy', 'move'] as const) {
    itMode(mode, 'a heap split in VMAs: an install run across the split goes in in pieces (a COPY run\'s ENOENT killed the compactor)', async () => {
      // Split the way the heap splits at past cycles' pinned spans (seen: a segment of pages
      // [2, 5) registered over VMAs [2, 3) and [3, 5)); here a flag no install depends on
      // keeps the split across cycles, at a page inside the compactor's first runs.
      const heap = await openHeap({ capacity: 16 << 20, mode });
      const { count } = fill(heap, 0, 60_000);
      native.madvise(heap.address + 10 * PAGE_SIZE, PAGE_SIZE, native.advice.WIPEONFORK);
      expect(vmasIn(heap.address, heap.capacity).length).toBe(3);
      // (The compactor died on its first COPY across the split, and its pages waited a
      // stall, 5 s here, to be taken over.)
      const st = await heap.gc();
      checkStats(st, mode);
      expect(st.takeovers).toBe(0);
      expect(st.splitRuns).toBeGreaterThanOrEqual(1);
      expect(mode === 'copy' ? st.pages.copied : st.pages.moved).toBe(st.pages.total);
      // The run across the split goes in in halves: a few calls more, not one per page.
      expect(st.moveCalls + st.copyCalls).toBeLessThan(st.pages.total / 8);
      expect(count()).toBe(30_000);
      expect(heap.verify().ok).toBe(true);
    });
  }
});
