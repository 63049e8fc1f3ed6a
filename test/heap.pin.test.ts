/**
 * Pinned pages, for real.
 *  - io_uring (IORING_REGISTER_BUFFERS) pins on heap pages the collector was not told about:
 *    the pause remaps those pages to from-space, the compactor reuses from-space pages
 *    lowest-first as build buffers, so each pinned low page becomes a buffer, its MOVE is
 *    refused with EBUSY and the page is copied instead. Nothing is lost.
 *  - Objects pinned through the heap (heap.pin) keep their addresses across cycles while
 *    everything around them compacts, and move once released.
 */
import { describe, expect } from 'vitest';
import { IoUringPin, PAGE_SIZE, type Heap, type Ref } from '../dist/gc/index.js';
import { defineTestTypes, firstDifference, hashBytes, pattern, rootRefs, snapshot, straddlers, type TestTypes } from './helpers/graph.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { presentPages } from './helpers/procfs.js';

closeHeapsAfterEach();

/** Live nodes with byte arrays and garbage between them, filling about `bytes` of heap. */
function fillHeap(heap: Heap, T: TestTypes, bytes: number): Ref {
  const index = heap.allocRefArray(4096);
  let i = 0;
  while (heap.usedBytes < bytes) {
    const x = heap.alloc(T.node);
    heap.setU32(x, 0, i);
    const b = heap.allocBytes(200 + (i % 300));
    heap.writeBytes(b, 0, pattern(i, heap.length(b)));
    heap.setRef(x, 1, b);
    heap.setRef(x, 0, heap.getRef(index, i % 4096));
    heap.setRef(index, i % 4096, x);
    heap.allocBytes(150 + (i % 200)); // garbage between live objects: every page slides
    i++;
  }
  return index;
}

describe('io_uring pins on heap pages (move)', () => {
  itMode('move', 'pinned from-space pages used as build buffers are refused (EBUSY) and copied; nothing is lost', async () => {
    // stallMs is large so that a busy machine cannot make the fault server take pages over:
    // this test counts buffer uses exactly.
    const heap = await openHeap({ capacity: 16 << 20, mode: 'move', stallMs: 10_000 });
    const T = defineTestTypes(heap);
    const root = heap.root(fillHeap(heap, T, 4 << 20)); // ~1000 pages, about half live
    const before = snapshot(heap, [root.get()]);
    const pinnedPages = [2, 3, 7, 12, 40];
    const pins = pinnedPages.map((p) => IoUringPin.pin(heap.address + p * PAGE_SIZE, PAGE_SIZE));
    let st;
    try {
      st = await heap.gc();
    } finally {
      for (const p of pins) p.release();
    }
    expect(pins.every((p) => p.released)).toBe(true);
    checkStats(st, 'move', { ebusy: true });
    // The live data spans far beyond the pinned pages, so every from-space page below ~400
    // was a build buffer (recycling starts at page 0 and takes them in order, and nothing
    // else builds pages in this cycle): each pinned page was tried with MOVE exactly once,
    // refused, and copied. No other page was refused.
    expect(st.pages.total).toBeGreaterThan(400);
    expect(st.pages.builtByCompactor).toBe(st.pages.total);
    expect(st.pages.recycledBuffers).toBeGreaterThan(Math.max(...pinnedPages) + 1);
    expect(st.ebusy).toBe(pinnedPages.length);
    expect(st.ebusyCopies).toBe(pinnedPages.length);
    expect(st.pages.copied).toBe(pinnedPages.length);
    expect(st.pages.moved).toBe(st.pages.total - pinnedPages.length);
    const after = snapshot(heap, [root.get()]);
    expect(after.checksum, firstDifference(before, after)).toBe(before.checksum);
    expect(heap.verify().ok).toBe(true);

    // Released pins leave nothing behind: the next cycle moves every page.
    const st2 = await heap.gc();
    checkStats(st2, 'move');
    expect(st2.ebusy).toBe(0);
    expect(snapshot(heap, [root.get()]).checksum).toBe(before.checksum);
  }, 60_000);
});

describe.each(['move', 'copy', 'stw'] as const)('heap.pin (%s)', (mode) => {
  itMode(mode, 'pinned objects keep their addresses while everything around them compacts, and move once released', async () => {
    const heap = await openHeap({ capacity: 32 << 20, mode, stallMs: 10_000 });
    const T = defineTestTypes(heap);
    const root = heap.root(fillHeap(heap, T, 2 << 20));
    // Three pinned objects: a small one low, a page-straddling one in the middle, a byte
    // array near the end; garbage before each, live data after each.
    const pinnedRefs: Ref[] = [];
    const keep = heap.root(heap.allocRefArray(8));
    const addPinned = (r: Ref, slot: number): void => {
      heap.setRef(keep.get()!, slot, r);
      pinnedRefs.push(r);
    };
    const low = heap.alloc(T.node);
    heap.setU32(low, 0, 0xdead);
    addPinned(low, 0);
    fillHeap(heap, T, 3 << 20); // garbage: its index is not rooted
    const mid = heap.alloc(T.straddle);
    heap.writeBytes(mid, 0, pattern(77, 4100));
    heap.setRef(mid, 0, low);
    addPinned(mid, 1);
    const tail = heap.root(fillHeap(heap, T, 5 << 20));
    const tailNode = heap.root(heap.getRef(tail.get()!, 2000)); // allocated well above the middle pin
    heap.allocBytes(300_000); // garbage
    const high = heap.allocBytes(5000);
    heap.writeBytes(high, 0, pattern(78, 5000));
    addPinned(high, 2);
    heap.allocBytes(20_000); // garbage
    const after = heap.root(heap.alloc(T.node)); // a live object above the last pin
    heap.allocBytes(100_000); // garbage

    const pins = pinnedRefs.map((r) => heap.pin(r));
    const addrs = pins.map((p) => p.address);
    expect(addrs).toEqual(pinnedRefs.map((r) => heap.addressOf(r)));
    const roots = [root, keep, tail, after, tailNode];
    const before = snapshot(heap, rootRefs(roots));
    const afterAddr0 = heap.addressOf(after.get()!);
    const tailAddr0 = heap.addressOf(tailNode.get()!);
    // An io_uring pin on the page of a heap-pinned object: that page is never remapped,
    // so it is never refused.
    const ring = mode === 'stw' ? null : IoUringPin.pin(Math.floor(addrs[1] / PAGE_SIZE) * PAGE_SIZE, PAGE_SIZE);
    try {
      for (let cycle = 0; cycle < 3; cycle++) {
        const usedBefore = heap.usedBytes;
        const st = await heap.gc();
        checkStats(st, mode);
        expect(st.ebusy).toBe(0);
        expect(st.pinnedSpans).toBe(3);
        expect(st.segments).toBe(4);
        expect(pins.map((p) => p.address)).toEqual(addrs);
        expect(pins.map((p) => heap.addressOf(p.ref))).toEqual(addrs);
        expect(heap.getU32(pins[0].ref, 0)).toBe(0xdead);
        expect(hashBytes(heap.readBytes(pins[1].ref, 0, 4100))).toBe(hashBytes(pattern(77, 4100)));
        expect(heap.getRef(pins[1].ref, 0)).toBe(pins[0].ref);
        expect(hashBytes(heap.readBytes(pins[2].ref, 0, 5000))).toBe(hashBytes(pattern(78, 5000)));
        const now = snapshot(heap, rootRefs(roots));
        expect(now.checksum, firstDifference(before, now)).toBe(before.checksum);
        expect(heap.verify().ok).toBe(true);
        if (cycle === 0) {
          // Everything else compacted around the pins: the data between and above them slid
          // down. Allocation stays above the last pin (a bump allocator), so the freed space
          // below it shows as memory given back, not as a lower top: each segment's free
          // tail is not rebuilt, and only live pages and the pinned spans stay resident.
          expect(heap.addressOf(tailNode.get()!)).toBeLessThan(tailAddr0);
          expect(heap.addressOf(after.get()!)).toBeLessThan(afterAddr0);
          expect(heap.addressOf(after.get()!)).toBeGreaterThan(addrs[2]);
          expect(st.reclaimedBytes).toBeGreaterThan(100_000); // the garbage above the last pin
          expect(heap.usedBytes).toBeLessThan(usedBefore);
          const resident = presentPages(heap.address, heap.capacity) * PAGE_SIZE;
          expect(resident).toBeLessThan(usedBefore - (5 << 19)); // about 3 MiB of the 5.6 MiB was garbage
          expect(resident).toBeLessThanOrEqual(st.liveBytes + 16 * PAGE_SIZE);
          expect(resident).toBeGreaterThanOrEqual(st.liveBytes);
        }
        heap.allocBytes(200_000); // more garbage above the last pin for the next cycle
      }
    } finally {
      ring?.release();
    }
    for (const p of pins) p.release();
    expect(() => pins[0].ref).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    const st = await heap.gc();
    checkStats(st, mode);
    expect(st.pinnedSpans).toBe(0);
    expect(st.segments).toBe(1);
    // Released: they slide down over the garbage that was below them.
    const k = keep.get()!;
    const moved = [0, 1, 2].map((i) => heap.addressOf(heap.getRef(k, i)!));
    for (let i = 0; i < 3; i++) expect(moved[i], `pinned object ${i}`).toBeLessThan(addrs[i]);
    expect(heap.getU32(heap.getRef(k, 0)!, 0)).toBe(0xdead);
    const final = snapshot(heap, rootRefs(roots));
    expect(final.checksum, firstDifference(before, final)).toBe(before.checksum);
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});

describe.each(['move', 'copy', 'stw'] as const)('objects straddling into a pinned span (%s)', (mode) => {
  itMode(mode, 'a straddler below a pinned object slides when it fits below the span and stays put when it does not', async () => {
    const heap = await openHeap({ capacity: 8 << 20, mode, stallMs: 10_000 });
    const T = defineTestTypes(heap);
    const { keep, live, straddlePair } = straddlers(heap, T);
    const k = keep.get()!;
    // Region 1: live data, a little garbage (120 bytes), then a straddler whose tail (1000
    // bytes) is longer than the region's garbage: it cannot slide without running into the
    // pinned span above it.
    live(heap.allocBytes(3000));
    heap.allocBytes(112);
    const stuck = straddlePair(1000, 1);
    // Region 2: plenty of garbage, then a straddler with a short tail: it slides.
    heap.allocBytes(50_000);
    const slides = straddlePair(200, 2);
    heap.allocBytes(20_000);
    const pins = [heap.pin(stuck.node), heap.pin(slides.node)];
    const before = snapshot(heap, [k]);
    const a0 = [stuck.arr, slides.arr].map((r) => heap.addressOf(r));
    const p0 = pins.map((p) => p.address);
    for (let cycle = 0; cycle < 2; cycle++) {
      const st = await heap.gc();
      checkStats(st, mode);
      expect(st.pinnedSpans).toBe(2);
      const now = snapshot(heap, [keep.get()!]);
      expect(now.checksum, firstDifference(before, now)).toBe(before.checksum);
      expect(heap.verify().ok).toBe(true);
      expect(pins.map((p) => heap.addressOf(p.ref))).toEqual(p0);
      const kk = keep.get()!;
      expect(heap.addressOf(heap.getRef(kk, 1)!), 'the straddler that does not fit stays in place').toBe(a0[0]);
      expect(heap.addressOf(heap.getRef(kk, 3)!), 'the straddler that fits slid down').toBeLessThan(a0[1] - 40_000);
    }
    for (const p of pins) p.release();
  });
});
