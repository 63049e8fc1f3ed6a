/**
 * fork(2) while the heap lives. A child shares every forkable anonymous page with the
 * parent, and UFFDIO_MOVE refuses shared pages (EBUSY): without MADV_DONTFORK a fork during
 * compaction turns every remaining MOVE from a pre-fork buffer page into a refused-then-copied
 * page. The heap's default (dontFork: true) maps the heap and from-space with MADV_DONTFORK,
 * so a child shares none of them and no page is refused. Both sides are shown here, with a
 * child forked by the test (ForkedChild) and by the compactor itself (inject.forkAtPage).
 *
 * Which pages a fork makes unmovable: the builder writes every buffer page it takes, and
 * that write breaks the copy-on-write sharing (the parent gets a private copy), so only
 * pages built BEFORE the fork and still waiting for their MOVE are refused.
 */
import { describe, expect } from 'vitest';
import { ForkedChild, type Heap, type Ref } from '../dist/gc/index.js';
import { Ctl } from '../dist/gc/shared.js';
import { defineTestTypes, firstDifference, pattern, snapshot, type TestTypes } from './helpers/graph.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { vmasIn } from './helpers/procfs.js';

closeHeapsAfterEach();

/** About `bytes` of heap, half of it live, every page sliding. */
function fill(heap: Heap, T: TestTypes, bytes: number): Ref {
  const index = heap.allocRefArray(2048);
  for (let i = 0; heap.usedBytes < bytes; i++) {
    const b = heap.allocBytes(300 + (i % 500));
    heap.writeBytes(b, 0, pattern(i, heap.length(b)));
    const x = heap.alloc(T.node);
    heap.setRef(x, 0, heap.getRef(index, i % 2048));
    heap.setRef(x, 1, b);
    heap.setRef(index, i % 2048, x);
    heap.allocBytes(400 + (i % 300)); // garbage
  }
  return index;
}

/** The heap's VMAs: they all carry VM_DONTCOPY ("dc") exactly when dontFork is on. */
function expectDontCopy(heap: Heap, on: boolean): void {
  const vmas = vmasIn(heap.address, heap.capacity);
  expect(vmas.length).toBeGreaterThan(0);
  expect(vmas[0].start).toBeLessThanOrEqual(heap.address);
  for (const v of vmas) expect(v.flags.includes('dc'), `VMA ${v.start.toString(16)}-${v.end.toString(16)} flags ${v.flags.join(' ')}`).toBe(on);
}

describe('fork during compaction (move)', () => {
  for (const dontFork of [true, false]) {
    itMode('move', `a child forked by the mutator mid-cycle, dontFork ${dontFork ? 'on (default): no page is refused' : 'off: the built pages waiting for MOVE are refused and copied'}`, async () => {
      // The compactor sleeps 300 ms after 8 pages; the test forks while it sleeps, with
      // built pages waiting in their buffers. stallMs is longer, so nothing is taken over.
      const heap = await openHeap({ capacity: 16 << 20, mode: 'move', stallMs: 10_000, ...(dontFork ? {} : { dontFork: false }), inject: { delayAtPage: 9, delayMs: 300 } });
      const T = defineTestTypes(heap);
      const root = heap.root(fill(heap, T, 6 << 20));
      expectDontCopy(heap, dontFork);
      const before = snapshot(heap, [root.get()]);
      await heap.collect();
      const state = () => heap._debugState() as { ctl: number[]; census: Record<string, number> };
      for (let t = 0; state().ctl[Ctl.COMPACTOR_BUILDS] < 8; t++) {
        expect(t, 'the compactor never reached its delay').toBeLessThan(10_000);
        await new Promise((r) => setTimeout(r, 1));
      }
      expect(heap.cycleActive).toBe(true);
      // Built by the compactor (owner 1), waiting for their MOVE (phase 2 = PROCESSED).
      const waiting = state().census['owner1/phase2'] ?? 0;
      expect(waiting).toBeGreaterThan(0);
      const child = ForkedChild.spawn();
      let st;
      try {
        st = (await heap.idle())!;
      } finally {
        child.release();
      }
      checkStats(st, 'move', { ebusy: !dontFork });
      expect(st.pages.total).toBeGreaterThan(500);
      if (dontFork) {
        expect(st.ebusy).toBe(0);
        expect(st.pages.moved).toBe(st.pages.total);
      } else {
        expect(st.ebusy).toBe(waiting);
        expect(st.ebusyCopies).toBe(waiting);
        expect(st.pages.copied).toBe(waiting);
        expect(st.pages.moved + st.pages.copied).toBe(st.pages.total);
      }
      const after = snapshot(heap, [root.get()]);
      expect(after.checksum, firstDifference(before, after)).toBe(before.checksum);
      expect(heap.verify().ok).toBe(true);
      expectDontCopy(heap, dontFork); // still true of every VMA after the cycle split the mapping
      // With the child gone, pages are exclusive again: the next cycle moves every page.
      heap.inject({});
      const st2 = await heap.gc();
      checkStats(st2, 'move');
      expect(st2.ebusy).toBe(0);
    }, 60_000);
  }

  for (const dontFork of [true, false]) {
    itMode('move', `the compactor forks after 30 pages (inject.forkAtPage), dontFork ${dontFork ? 'on' : 'off'}: ${dontFork ? 'ebusy is 0' : 'its pending run is refused and copied'}`, async () => {
      const heap = await openHeap({ capacity: 16 << 20, mode: 'move', stallMs: 10_000, ...(dontFork ? {} : { dontFork: false }), inject: { forkAtPage: 30 } });
      const T = defineTestTypes(heap);
      const root = heap.root(fill(heap, T, 4 << 20));
      const before = snapshot(heap, [root.get()]);
      const st = await heap.gc();
      checkStats(st, 'move', { ebusy: !dontFork });
      expect(st.pages.total).toBeGreaterThan(300);
      if (dontFork) {
        expect(st.ebusy).toBe(0);
        expect(st.pages.moved).toBe(st.pages.total);
      } else {
        // The fork comes right after the 30th page is built: the pages of the pending run
        // (up to all 30: runs flush at 64 pages or where buffers stop being contiguous) are
        // refused; pages built after the fork are not (their buffers were written since).
        expect(st.ebusy).toBeGreaterThan(0);
        expect(st.ebusy).toBeLessThanOrEqual(30);
        expect(st.ebusyCopies).toBe(st.ebusy);
        expect(st.pages.copied).toBe(st.ebusy);
        expect(st.pages.moved + st.pages.copied).toBe(st.pages.total);
      }
      const after = snapshot(heap, [root.get()]);
      expect(after.checksum, firstDifference(before, after)).toBe(before.checksum);
      expect(heap.verify().ok).toBe(true);
      // The child lives only until the cycle ends: the next cycle, without injection, moves everything.
      heap.inject({});
      const st2 = await heap.gc();
      checkStats(st2, 'move');
      expect(st2.ebusy).toBe(0);
      expect(st2.pages.moved).toBe(st2.pages.total);
    }, 60_000);
  }
});
