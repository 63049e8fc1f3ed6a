/**
 * The mutator reads and writes the heap while compaction runs: collect() returns after the
 * pause, and the test immediately walks and modifies the graph before awaiting idle(). In
 * move and copy mode that walk hits pages the compactor has not built yet, so it faults
 * (the fault server builds them ahead of order): the cycle's fault counter is > 0, every
 * fault is timed, and every value read is right. Allocation during the concurrent phase
 * works: new objects are linked into not-yet-built pages and survive the next cycle.
 * (The random differential test, heap.random.test.ts, mutates during compaction without any
 * injected delay.)
 */
import { describe, expect } from 'vitest';
import type { FaultPathName, Heap, ModeName, Ref } from '../dist/gc/index.js';
import { defineTestTypes, pattern, hashBytes, type TestTypes } from './helpers/graph.js';
import { TEST_MODES, checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';

closeHeapsAfterEach();

const N = 60_000;
const value = (i: number): number => (i * 2654435761) >>> 0;

/**
 * A list from the newest node (highest address) down to the oldest, with garbage between
 * nodes so every page slides; every 10th node holds a byte array. The root's target is
 * at the top of the heap and the compactor builds from the bottom: walking the list runs
 * against the compactor.
 */
function buildList(heap: Heap, T: TestTypes): Ref {
  let prev: Ref | null = null;
  for (let i = 0; i < N; i++) {
    const x = heap.alloc(T.node);
    heap.setU32(x, 0, value(i));
    heap.setF64(x, 8, i + 0.5);
    heap.setRef(x, 0, prev);
    if (i % 10 === 0) {
      const b = heap.allocBytes(37 + (i % 200));
      heap.writeBytes(b, 0, pattern(i, heap.length(b)));
      heap.setRef(x, 1, b);
    }
    heap.allocBytes(100 + (i % 150)); // garbage
    prev = x;
  }
  return prev!;
}

function eq(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: expected ${String(expected)}, read ${String(actual)}`);
}

/** Walks the list checking every value; rewrites fields and links new objects as it goes if `mutate`. */
function walk(heap: Heap, T: TestTypes, head: Ref, phase: 'mutate' | 'check'): number {
  let i = N - 1;
  let reads = 0;
  for (let x: Ref | null = head; x !== null; x = heap.getRef(x, 0), i--) {
    eq(heap.getU32(x, 0), value(i), `node ${i} u32`);
    eq(heap.getF64(x, 8), i + 0.5, `node ${i} f64`);
    const child = heap.getRef(x, 1);
    if (i % 10 === 0) {
      eq(child !== null && hashBytes(heap.readBytes(child, 0, heap.length(child))), hashBytes(pattern(i, 37 + (i % 200))), `node ${i} byte array`);
    } else if (i % 10 === 5) {
      if (phase === 'mutate') {
        // Allocation during compaction, linked into a page that may not be built yet.
        eq(child, null, `node ${i} child`);
        const y = heap.alloc(T.leaf);
        heap.writeBytes(y, 0, pattern(1_000_000 + i, 13));
        heap.setRef(x, 1, y);
      } else {
        eq(child !== null && heap.typeOf(child).name, 'Leaf', `node ${i} new child`);
        eq(hashBytes(heap.readBytes(child!, 0, 13)), hashBytes(pattern(1_000_000 + i, 13)), `node ${i} new child bytes`);
      }
    } else eq(child, null, `node ${i} child`);
    if (phase === 'mutate') heap.setU32(x, 4, i ^ 0xabcdef);
    else eq(heap.getU32(x, 4), i ^ 0xabcdef, `node ${i} written u32`);
    reads++;
  }
  expect(i).toBe(-1);
  return reads;
}

describe.each(TEST_MODES.flatMap((m): Array<[ModeName, FaultPathName]> => (m === 'stw' ? [[m, 'self']] : [[m, 'handler'], [m, 'self']])))('mutator during compaction (%s, %s)', (mode, faultPath) => {
  itMode(mode, `reads and writes during the concurrent phase ${mode === 'stw' ? 'run after it' : faultPath === 'self' ? 'build the pages they touch' : 'fault'}, see the right values, and allocate`, async () => {
    // The compactor pauses for 150 ms after its first page: however the machine schedules
    // the two threads, the walk below runs into unbuilt pages (without it a descheduled
    // mutator can find every page built). stallMs is far longer, so nothing is taken over.
    // Reads and stores that build (unbuiltReads 'build'): from from-space, the default, they
    // build no page (heap.unbuilt-reads and heap.unbuilt-writes cover that path).
    const heap = await openHeap({ capacity: 64 << 20, mode, faultPath, unbuiltReads: 'build', stallMs: 10_000, inject: { delayAtPage: 2, delayMs: 150 } });
    const T = defineTestTypes(heap);
    const root = heap.root(buildList(heap, T));
    const used = heap.usedBytes;

    const paused = await heap.collect();
    // No await between here and the walk: the compactor is running (move/copy).
    const active = heap.cycleActive;
    expect(walk(heap, T, root.get()!, 'mutate')).toBe(N);
    const st = (await heap.idle())!;
    expect(st.cycle).toBe(paused.cycle);
    expect(heap.cycleActive).toBe(false);
    checkStats(st, mode, { faulted: true, allocatedDuring: true });
    if (mode === 'stw') {
      expect(active).toBe(false);
      expect(st.faults).toBe(0);
    } else if (faultPath === 'handler') {
      expect(active).toBe(true);
      // The walk ran into unbuilt pages: served faults, each timed, some pages built ahead of order.
      expect(st.faults).toBeGreaterThan(0);
      expect(st.faultUs.count).toBe(st.faults);
      expect(st.pages.builtByFaults).toBeGreaterThan(0);
      expect(st.faultUs.max).toBeGreaterThan(0);
      expect(st.pages.builtBySelf).toBe(0);
      expect(st.stalls.handler.count).toBeGreaterThan(0); // timed on the mutator's side too
    } else {
      expect(active).toBe(true);
      // The walk's accessors built the unbuilt pages they touched, each timed; the compactor
      // sleeps 150 ms after its first page and the fault server serves only kernel faults.
      expect(st.pages.builtBySelf).toBeGreaterThan(0);
      expect(st.stalls.self.count).toBe(st.pages.builtBySelf);
      expect(st.pages.builtByMutator + st.stalls.selfHelped + st.takeovers).toBeGreaterThanOrEqual(st.pages.builtBySelf);
      expect(st.faults).toBeLessThanOrEqual(st.stalls.selfLeft); // only pages another builder held can reach the kernel
    }
    expect(st.pages.total).toBeGreaterThan(500);
    if (mode === 'stw') {
      // The cycle ended inside collect(): the walk allocated after it.
      expect(st.usedAfterBytes).toBe(st.usedBeforeBytes - st.reclaimedBytes);
      expect(heap.usedBytes).toBe(st.usedAfterBytes + (N / 10) * 24);
    } else {
      // Allocation during the cycle landed above the compacted data.
      expect(heap.usedBytes).toBe(st.usedAfterBytes);
      expect(st.usedAfterBytes).toBe(st.usedBeforeBytes - st.reclaimedBytes + (N / 10) * 24);
    }
    expect(heap.usedBytes).toBeLessThan(used);
    expect(heap.verify().ok).toBe(true);
    walk(heap, T, root.get()!, 'check');

    heap.inject({});
    const st2 = await heap.gc();
    checkStats(st2, mode);
    expect(st2.liveObjects).toBe(st.liveObjects + N / 10);
    walk(heap, T, root.get()!, 'check');
    expect(heap.verify().ok).toBe(true);
  }, 120_000);
});
