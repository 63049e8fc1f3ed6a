/**
 * The reachable graph survives compaction unchanged, in every mode: a checksum of contents
 * AND shape (walked from the roots) is identical before and after each cycle, with objects
 * straddling page edges, objects spanning many pages, an empty heap and a full one. Memory is
 * really reclaimed: the allocation top drops to the live size and the heap's resident pages
 * (from /proc/self/pagemap) are exactly the pages below it. In move and copy mode with both
 * fault paths: the graph is also walked while the cycle compacts (between collect() and
 * idle()), so the accessors run into unbuilt pages and build them ('self') or fault ('handler').
 */
import { describe, expect } from 'vitest';
import { ErrorCode, MoveGcError, type CycleStats, type FaultPathName, type Heap, type ModeName, type Ref } from '../dist/gc/index.js';
import { PS, allocGarbage, buildGraph, defineTestTypes, firstDifference, rootRefs, sizeOf, snapshot, type Snapshot } from './helpers/graph.js';
import { TEST_MODES, checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { Rng } from './helpers/prng.js';
import { presentPages } from './helpers/procfs.js';

closeHeapsAfterEach();

function expectSame(before: Snapshot, after: Snapshot, what: string): void {
  expect(after.checksum, `${what}: ${firstDifference(before, after)}`).toBe(before.checksum);
  expect(after.objects).toBe(before.objects);
}

/**
 * A whole cycle, with the graph from `roots` walked while it compacts (a no-op in stw, whose
 * cycle ends in collect()); the walk must see the graph as it was before.
 */
async function gcWalking(heap: Heap, roots: () => ReadonlyArray<Ref | null>, before: Snapshot): Promise<CycleStats> {
  const paused = await heap.collect();
  expectSame(before, snapshot(heap, roots()), `walked during cycle ${paused.cycle}`);
  const st = (await heap.idle())!;
  expect(st.cycle).toBe(paused.cycle);
  return st;
}

/** What the walks during compaction did, by fault path: summed over a test's cycles. */
function expectFaultPath(sts: CycleStats[], mode: ModeName, faultPath: FaultPathName): void {
  for (const st of sts) {
    expect(st.faultPath).toBe(faultPath);
    expect(st.stalls.self.count).toBe(st.pages.builtBySelf);
    expect(st.faults, 'only the fault path touches the kernel').toBeLessThanOrEqual(st.stalls.handler.count);
    if (faultPath === 'handler' || mode === 'stw') expect(st.pages.builtBySelf + st.stalls.selfLeft + st.stalls.selfFailed).toBe(0);
    expect(st.stalls.selfFailed).toBe(0);
  }
  if (mode === 'stw') return;
  const sum = (f: (st: CycleStats) => number): number => sts.reduce((a, st) => a + f(st), 0);
  if (faultPath === 'self') expect(sum((st) => st.pages.builtBySelf), 'pages the walks built themselves').toBeGreaterThan(0);
  else expect(sum((st) => st.stalls.handler.count), 'pages the walks faulted in').toBeGreaterThan(0);
}

/** After a cycle with no allocation during it: the top is the live size, rounded to a page. */
function expectReclaimed(heap: Heap, st: { usedAfterBytes: number; liveBytes: number; pages: { identity: number; total: number }; plan: { alignGapBytes: number } }): void {
  // The dense prefix keeps pages >= 95% live in place, with their dead words as fillers; large
  // objects kept on pages land past gaps.
  const slack = Math.ceil(0.05 * st.pages.identity * PS) + PS + 8 + st.plan.alignGapBytes;
  expect(heap.usedBytes).toBe(st.usedAfterBytes);
  expect(st.usedAfterBytes - st.liveBytes).toBeLessThanOrEqual(slack);
  // Memory really went back: exactly the pages below the top are resident in the heap's range.
  if (st.pages.total > 0) expect(presentPages(heap.address, heap.capacity)).toBe(Math.ceil(st.usedAfterBytes / PS));
}

const RUNS = TEST_MODES.flatMap((m): Array<[ModeName, FaultPathName]> => (m === 'stw' ? [[m, 'self']] : [[m, 'self'], [m, 'handler']]));

describe.each(RUNS)('graph identity (%s, %s)', (mode, faultPath) => {
  itMode(mode, `mixed graph with page-straddling and many-page objects is identical across cycles (${faultPath})`, async () => {
    // The compactor sleeps 30 ms before its first page in every other cycle, so the walk
    // during compaction surely meets unbuilt pages (stallMs is far longer: no takeover).
    const heap = await openHeap({ capacity: 64 << 20, mode, faultPath, stallMs: 10_000 });
    const T = defineTestTypes(heap);
    const rng = new Rng(0x5eed + mode.length);
    const roots = buildGraph(heap, T, rng, { objects: 4000, garbage: 0.6, edges: true, huge: true, roots: 5 });
    const sts: CycleStats[] = [];
    for (let cycle = 0; cycle < 4; cycle++) {
      const before = snapshot(heap, rootRefs(roots));
      const used = heap.usedBytes;
      heap.inject(cycle % 2 === 0 ? { delayAtPage: 1, delayMs: 30 } : {});
      const st = await gcWalking(heap, () => rootRefs(roots), before);
      sts.push(st);
      checkStats(st, mode, { faulted: true });
      expect(st.liveBytes, 'mark found exactly the reachable bytes').toBe(before.liveBytes);
      expect(st.liveObjects).toBe(before.objects);
      expect(st.usedBeforeBytes).toBe(used);
      expect(st.reclaimedBytes).toBeGreaterThan(cycle === 0 ? 1 << 20 : 0);
      const after = snapshot(heap, rootRefs(roots));
      expectSame(before, after, `cycle ${cycle}`);
      const v = heap.verify();
      expect(v.errors).toEqual([]);
      expect(v.ok).toBe(true);
      expect(v.objects).toBeGreaterThanOrEqual(after.objects);
      expectReclaimed(heap, st);
      if (cycle === 0) expect(st.pages.total).toBeGreaterThan(400); // the huge objects alone span ~350 pages
      // Change the graph for the next cycle: orphan a part, add live objects and garbage.
      const h = roots[0].get()!;
      heap.setRef(h, rng.int(0, heap.refCount(h) - 1), null);
      const extra = buildGraph(heap, T, rng, { objects: 300, garbage: 0.7, edges: cycle % 2 === 0, roots: 1 });
      roots.push(...extra);
      allocGarbage(heap, T, 256 << 10);
    }
    expectFaultPath(sts, mode, faultPath);
  }, 120_000);

  itMode(mode, `empty heap: no objects and no roots, then only garbage, then null roots (${faultPath})`, async () => {
    const heap = await openHeap({ capacity: 4 << 20, mode, faultPath, stallMs: 10_000 });
    const T = defineTestTypes(heap);
    const st0 = await heap.gc();
    checkStats(st0, mode);
    expect(st0.liveBytes).toBe(0);
    expect(st0.liveObjects).toBe(0);
    expect(st0.pages.total).toBe(0);
    expect(heap.usedBytes).toBe(8); // word 0 is reserved for null
    expect(heap.verify()).toMatchObject({ ok: true, objects: 0 });

    allocGarbage(heap, T, 1 << 20);
    const r = heap.root(null);
    const st1 = await heap.gc();
    checkStats(st1, mode);
    expect(st1.liveObjects).toBe(0);
    expect(st1.reclaimedBytes).toBeGreaterThanOrEqual(1 << 20);
    expect(heap.usedBytes).toBe(8);
    expect(heap.verify()).toMatchObject({ ok: true, objects: 0 });
    // Nothing live: at most the page holding the free tail's filler header stays resident.
    expect(presentPages(heap.address, heap.capacity)).toBeLessThanOrEqual(1);
    expect(r.get()).toBeNull();

    // The emptied heap is fully usable.
    const roots = buildGraph(heap, T, new Rng(7), { objects: 500, garbage: 0.5, edges: true });
    const before = snapshot(heap, rootRefs(roots));
    heap.inject({ delayAtPage: 1, delayMs: 30 }); // the walk during compaction meets unbuilt pages
    const st2 = await gcWalking(heap, () => rootRefs(roots), before);
    checkStats(st2, mode, { faulted: true });
    expectSame(before, snapshot(heap, rootRefs(roots)), 'after reuse');
    expectFaultPath([st0, st1, st2], mode, faultPath);
    expect(heap.verify().ok).toBe(true);
    expectReclaimed(heap, st2);
  });

  itMode(mode, `full heap: allocate until ERR_HEAP_FULL, drop half, collect, allocate again (${faultPath})`, async () => {
    const capacity = 4 << 20;
    const heap = await openHeap({ capacity, mode, faultPath, stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 30 } });
    const T = defineTestTypes(heap);
    const head = heap.alloc(T.node);
    heap.setU32(head, 0, 0);
    const root = heap.root(head);
    // A list in allocation order, with a byte array hanging off every 16th node.
    let prev: Ref = head;
    let n = 1;
    let full: unknown;
    try {
      for (;;) {
        const x = heap.alloc(T.node);
        heap.setU32(x, 0, n);
        heap.setU32(x, 4, n * 7);
        if (n % 16 === 5) {
          const b = heap.allocBytes(100 + (n % 97));
          heap.setU8(b, 0, n & 0xff);
          heap.setRef(x, 1, b);
        }
        heap.setRef(prev, 0, x);
        prev = x;
        n++;
      }
    } catch (e) {
      full = e;
    }
    expect(full).toBeInstanceOf(MoveGcError);
    expect((full as MoveGcError).code).toBe(ErrorCode.HEAP_FULL);
    expect(heap.usedBytes).toBeLessThanOrEqual(capacity);
    expect(capacity - heap.usedBytes).toBeLessThan(sizeOf('bytes', 0, 200)); // full indeed
    expect(() => heap.alloc(T.straddle)).toThrow(expect.objectContaining({ code: ErrorCode.HEAP_FULL }));

    // Drop every other node (and what hangs off it).
    const kept: number[] = [];
    for (let x: Ref | null = head; x !== null; ) {
      kept.push(heap.getU32(x, 0));
      const next = heap.getRef(x, 0);
      const after = next === null ? null : heap.getRef(next, 0);
      heap.setRef(x, 0, after);
      x = after;
    }
    expect(kept.length).toBe(Math.ceil(n / 2));
    const before = snapshot(heap, [root.get()]);
    const usedBefore = heap.usedBytes;
    const st = await gcWalking(heap, () => [root.get()], before);
    checkStats(st, mode, { faulted: true });
    expectSame(before, snapshot(heap, [root.get()]), 'after dropping half');
    expect(heap.verify().ok).toBe(true);
    expect(st.liveBytes).toBe(before.liveBytes);
    expect(st.reclaimedBytes).toBeGreaterThanOrEqual(usedBefore - before.liveBytes - PS);
    expect(heap.usedBytes).toBeLessThan(usedBefore * 0.6);
    expectReclaimed(heap, st);

    // Allocate again until full, appending to the list's tail.
    let tail = root.get()!;
    for (let x = heap.getRef(tail, 0); x !== null; x = heap.getRef(x, 0)) tail = x;
    let added = 0;
    try {
      for (;;) {
        const x = heap.alloc(T.node);
        heap.setU32(x, 0, 1_000_000 + added);
        heap.setRef(tail, 0, x);
        tail = x;
        added++;
      }
    } catch (e) {
      expect((e as MoveGcError).code).toBe(ErrorCode.HEAP_FULL);
    }
    // Roughly what the cycle freed, in 32-byte nodes.
    expect(added * 32).toBeGreaterThan(st.reclaimedBytes * 0.95);
    heap.inject({});
    const st2 = await heap.gc();
    checkStats(st2, mode);
    expectFaultPath([st, st2], mode, faultPath);
    expect(st2.reclaimedBytes).toBe(0);
    const values: number[] = [];
    for (let x: Ref | null = root.get(); x !== null; x = heap.getRef(x, 0)) values.push(heap.getU32(x, 0));
    expect(values.length).toBe(kept.length + added);
    expect(values.slice(0, kept.length)).toEqual(kept);
    expect(values[kept.length + added - 1]).toBe(1_000_000 + added - 1);
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});
