/**
 * Claims of the collector core (plan, compaction, installs, self-service, the fault server,
 * marking, the cycle driver, the pause, the statistics) that a mutation audit found no test
 * could fail on: for each, a one-line change to the code survived the suite. Each test names
 * the claim it holds and runs real heaps on the real kernel.
 */
import { describe, expect } from 'vitest';
import { PAGE_SIZE, type Heap, type Ref } from '../dist/gc/index.js';
import { defineTestTypes, firstDifference, pattern, snapshot, straddlers } from './helpers/graph.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { fromSpaceVmas } from './helpers/procfs.js';

closeHeapsAfterEach();

const MiB = 1 << 20;
const PS = PAGE_SIZE;

/** Allocates garbage (a byte array nobody keeps) of exactly `bytes` bytes (a multiple of 8, >= 8). */
function garbage(heap: Heap, bytes: number): void {
  if (bytes === 0) return;
  expect(bytes % 8).toBe(0);
  const before = heap.usedBytes;
  heap.allocBytes(bytes - 8);
  expect(heap.usedBytes - before).toBe(bytes);
}

/** Garbage up to the next page boundary (none if there already). */
function padToPage(heap: Heap): void {
  const r = heap.usedBytes % PS;
  if (r !== 0) garbage(heap, PS - r);
}

describe('the plan: pinned spans and the objects straddling into them', () => {
  /**
   * Claim (gc/plan.ts, step 1 and pinnedSpans(): "Page-aligned spans around pinned objects,
   * merged where they touch"): two pinned objects on adjacent pages make one span, and so one
   * segment below it and one above (a span counts against the plan's limit of separate page
   * ranges, ERR_PIN_LIMIT).
   */
  for (const mode of ['move', 'stw'] as const) {
    itMode(mode, 'pins on two adjacent pages make one pinned span, not two touching ones', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode });
      const T = defineTestTypes(heap);
      const keep = heap.root(heap.allocRefArray(4));
      garbage(heap, 3 * PS);
      // Node a ends exactly on a page boundary; node b starts there.
      garbage(heap, (2 * PS - (heap.usedBytes % PS) - 32) % PS);
      const a = heap.alloc(T.node);
      const b = heap.alloc(T.node);
      expect((heap.addressOf(b) - heap.address) % PS).toBe(0);
      heap.setU32(a, 0, 11);
      heap.setU32(b, 0, 22);
      heap.setRef(keep.get()!, 0, a);
      heap.setRef(keep.get()!, 1, b);
      garbage(heap, 4 * PS);
      const pa = heap.pin(a);
      const pb = heap.pin(b);
      const at = [pa.address, pb.address];
      const st = await heap.gc();
      checkStats(st, mode);
      expect(st.pinnedSpans, 'the two spans touch: merged into one').toBe(1);
      expect(st.segments).toBe(2);
      expect([heap.addressOf(pa.ref), heap.addressOf(pb.ref)]).toEqual(at);
      expect(heap.getU32(heap.getRef(keep.get()!, 0)!, 0)).toBe(11);
      expect(heap.getU32(heap.getRef(keep.get()!, 1)!, 0)).toBe(22);
      pa.release();
      pb.release();
    });
  }

  /**
   * Claim (gc/plan.ts: a straddler "must fit below the span: if the region has fewer dead
   * words than the tail (but some), sliding would run it into the span, so the span grows"):
   * the bound is inclusive. A straddler whose in-span tail is exactly as long as its region's
   * dead words slides (all the way: its region's garbage is gone); and a slid tail that
   * crosses a page boundary in to-space lands whole (the plan notes the straddler as the first
   * object of every page that starts inside the tail).
   */
  for (const mode of ['move', 'copy', 'stw'] as const) {
    itMode(mode, 'a straddler whose tail equals its region\'s garbage slides; a slid tail crossing a page keeps its bytes', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode, denseThreshold: 2 }); // no dense prefix
      const T = defineTestTypes(heap);
      const { keep, live, straddlePair } = straddlers(heap, T);
      const k = keep.get()!;
      // Region 1: its only dead words are 1000 bytes of garbage; the straddler's tail is 1000 bytes.
      live(heap.allocBytes(3000));
      garbage(heap, 1000);
      const exact = straddlePair(1000, 1);
      padToPage(heap); // region 2 starts on the page after the pinned node, with no dead word
      // Region 2: 4896 bytes of garbage (612 words: a page and 100 words), a tail of 2000 bytes
      // (250 words): slid by 612 words, the tail lands across a page boundary.
      live(heap.allocBytes(3000));
      garbage(heap, 4896);
      const crossing = straddlePair(2000, 2);
      garbage(heap, 20_000);
      const pins = [heap.pin(exact.node), heap.pin(crossing.node)];
      const before = snapshot(heap, [k]);
      const a0 = [exact.arr, crossing.arr].map((r) => heap.addressOf(r));
      const st = await heap.gc();
      checkStats(st, mode);
      expect(st.pinnedSpans).toBe(2);
      const now = snapshot(heap, [keep.get()!]);
      expect(now.checksum, firstDifference(before, now)).toBe(before.checksum);
      expect(heap.verify().errors).toEqual([]);
      const kk = keep.get()!;
      expect(heap.addressOf(heap.getRef(kk, 1)!), 'the straddler that exactly fits slid down by the garbage').toBe(a0[0] - 1000);
      const moved = heap.addressOf(heap.getRef(kk, 4)!);
      expect(moved, 'the second straddler slid down by its garbage').toBe(a0[1] - 4896);
      // Its tail [end - 2000, end) crosses a page boundary in to-space.
      const tailStart = moved + 8 + heap.length(heap.getRef(kk, 4)!) - 2000;
      expect(Math.floor(tailStart / PS)).toBeLessThan(Math.floor((tailStart + 1999) / PS));
      for (const p of pins) p.release();
    });
  }
});

describe('the plan: the dense prefix', () => {
  /**
   * Claim (gc/plan.ts, PlanOptions.denseThreshold: "Live fraction at or above which a leading
   * page stays in place"): at, not only above. With denseThreshold 0.5, leading pages exactly
   * half live (256 of 512 words) stay where they are.
   */
  for (const mode of ['move', 'stw'] as const) {
    itMode(mode, 'denseThreshold 0.5: leading pages exactly half live are identity pages', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode, denseThreshold: 0.5 });
      const roots = [];
      for (let p = 0; p < 4; p++) {
        // Page p: a live array of 256 words, then garbage to the page's end.
        const r = heap.allocBytes(255 * 8);
        heap.writeBytes(r, 0, pattern(p, 255 * 8));
        roots.push(heap.root(r));
        padToPage(heap);
      }
      const tail = heap.root(heap.allocBytes(100));
      garbage(heap, 3 * PS);
      const at = roots.map((r) => heap.addressOf(r.get()!));
      expect((at[0] - heap.address) / 8, 'the first object is at word 1').toBe(1);
      const st = await heap.gc();
      checkStats(st, mode);
      expect(st.pages.identity).toBe(4);
      expect(roots.map((r) => heap.addressOf(r.get()!))).toEqual(at);
      for (let p = 0; p < 4; p++) expect(heap.readBytes(roots[p].get()!, 0, 255 * 8)).toEqual(pattern(p, 255 * 8));
      expect(heap.addressOf(tail.get()!)).toBe(heap.address + 4 * PS);
    });
  }
});

describe('the compaction pause: free-tail fillers', () => {
  /**
   * Claim (gc/pause.ts, step 5: the free tail's filler is written in the pause "in a page
   * that is not built at all: a first segment with no live word below a pinned span (newEnd
   * is word 1)"): with nothing live below a pinned object, the emptied pages below it are one
   * filler, so the heap still walks from its first word, this cycle and the next.
   */
  for (const mode of ['move', 'copy', 'stw'] as const) {
    itMode(mode, 'a pinned object with nothing live below it: the empty segment below is a filler, the heap walks', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode });
      const T = defineTestTypes(heap);
      garbage(heap, 3 * PS + 800); // nothing below the pinned node survives
      const n = heap.alloc(T.node);
      heap.setU32(n, 0, 77);
      const pin = heap.pin(n);
      const at = pin.address;
      const after = heap.root(heap.allocBytes(5000));
      heap.writeBytes(after.get()!, 0, pattern(3, 5000));
      garbage(heap, 2 * PS);
      for (let cycle = 0; cycle < 2; cycle++) {
        const st = await heap.gc();
        checkStats(st, mode);
        expect(st.segments).toBe(2);
        const v = heap.verify();
        expect(v.errors, `cycle ${cycle}`).toEqual([]);
        expect(v.fillers, 'the empty pages below the span are a filler').toBeGreaterThanOrEqual(1);
        expect(heap.addressOf(pin.ref)).toBe(at);
        expect(heap.getU32(pin.ref, 0)).toBe(77);
        expect(heap.readBytes(after.get()!, 0, 5000)).toEqual(pattern(3, 5000));
      }
      pin.release();
    });
  }
});

describe('the plan: large objects keep a page only if they start on one', () => {
  /**
   * Claim (gc/plan.ts, step 6 and Alignment.words: "Objects of at least this many words that
   * start on a page keep doing so"; only page starts are looked at): a large object that slid
   * back to back below a pinned span (so it no longer starts on a page, here on a 64-word
   * chunk boundary) is not pushed onto a page once the pin is gone: it stays packed, its
   * pages are not installed whole from a from-space page that is not its own, its bytes intact.
   */
  for (const mode of ['move', 'copy', 'stw'] as const) {
    itMode(mode, 'a large object packed off a page (on a chunk boundary) stays packed after its pin is released', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode, denseThreshold: 2 });
      const T = defineTestTypes(heap);
      const lead = heap.root(heap.allocBytes(62 * 8)); // words [1, 64)
      expect(heap.addressOf(lead.get()!) - heap.address).toBe(8);
      garbage(heap, 5 * PS);
      const BYTES = 160 * 1024;
      const big = heap.root(heap.allocBytes(BYTES));
      heap.writeBytes(big.get()!, 0, pattern(9, BYTES));
      expect((heap.addressOf(big.get()!) - heap.address) % PS, 'allocated on a page').toBe(0);
      const pin = heap.pin(heap.alloc(T.node));
      const st1 = await heap.gc();
      checkStats(st1, mode);
      const packed = heap.addressOf(big.get()!) - heap.address;
      expect(packed, 'packed right behind the lead array (below the pinned span)').toBe(64 * 8);
      pin.release();
      const st2 = await heap.gc();
      checkStats(st2, mode);
      expect(st2.plan.alignedObjects).toBe(0);
      expect(heap.addressOf(big.get()!) - heap.address, 'not pushed onto a page').toBe(packed);
      expect(heap.readBytes(big.get()!, 0, BYTES)).toEqual(pattern(9, BYTES));
      expect(heap.verify().errors).toEqual([]);
    });
  }
});

describe('the compaction pause: pinned spans at the heap\'s start', () => {
  /**
   * Claim (gc/pause.ts, fixPinnedSpans: "a span at the heap's start is walked from word 1, or
   * its leading dead run would get its filler header at word 0, where no heap walk looks,
   * leaving dead objects with stale references parseable"): a dead object below a pinned
   * object on the heap's first page becomes a filler, so no heap walk meets its stale reference.
   */
  for (const mode of ['move', 'copy', 'stw'] as const) {
    itMode(mode, 'a dead object before a pinned one on the first page is filled: the heap verifies after its referent moved', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode });
      const T = defineTestTypes(heap);
      const dead = heap.alloc(T.node); // word 1, dead after the cycle
      const p = heap.alloc(T.node);
      const pin = heap.pin(p);
      garbage(heap, 6 * PS);
      const x = heap.root(heap.alloc(T.node));
      heap.setU32(x.get()!, 0, 5);
      heap.setRef(dead, 0, x.get()!); // a reference the pause will not forward (dead objects are not)
      heap.setRef(p, 0, x.get()!);
      const x0 = heap.addressOf(x.get()!);
      const st = await heap.gc();
      checkStats(st, mode);
      expect(heap.addressOf(x.get()!), 'the referent slid down').toBeLessThan(x0);
      expect(heap.getRef(pin.ref, 0)).toBe(x.get());
      const v = heap.verify();
      expect(v.errors).toEqual([]);
      expect(v.fillers).toBeGreaterThanOrEqual(1);
      pin.release();
    });
  }
});

describe('statistics: compaction time', () => {
  /**
   * Claim (gc/stats.ts, CycleStats.compactionMs: "Compaction-thread completion time: pause
   * end to the compactor's last install"; concurrentMs: "Pause end to the cycle's end"): a
   * mutator that keeps its thread busy after the pause ends the cycle late, which counts in
   * concurrentMs, not in compactionMs (the benchmark's move/copy/stw compaction ratios).
   */
  for (const mode of ['move', 'copy'] as const) {
    itMode(mode, 'compactionMs ends at the compactor\'s last install, not at the (later) end of the cycle', async () => {
      const heap = await openHeap({ capacity: 16 * MiB, mode });
      const T = defineTestTypes(heap);
      let head = heap.root(null);
      for (let i = 0; i < 20_000; i++) {
        const n = heap.alloc(T.node);
        heap.setRef(n, 0, head.get());
        head.set(n);
        heap.allocBytes(40); // garbage: every page slides
      }
      await heap.collect();
      const t0 = Date.now();
      while (heap.progress().pagesMapped < heap.progress().pagesTotal && Date.now() - t0 < 20_000) {
        // wait for the compactor without the event loop (no cycle end can run here)
      }
      const busyUntil = Date.now() + 400;
      while (Date.now() < busyUntil) {
        // the mutator's thread stays busy: the cycle's end waits for it
      }
      const st = (await heap.idle())!;
      checkStats(st, mode);
      expect(st.concurrentMs, JSON.stringify({ c: st.compactionMs, k: st.concurrentMs })).toBeGreaterThanOrEqual(400);
      expect(st.compactionMs, JSON.stringify({ c: st.compactionMs, k: st.concurrentMs })).toBeLessThan(st.concurrentMs - 300);
      expect(st.compactionMs).toBeGreaterThan(0);
    });
  }
});

describe('the end of a cycle: from-space given back whoever ends it', () => {
  /**
   * Claim (gc/stats.ts fromSpaceReleasedBy: "the cycle's end on the mutator's thread (stw, or
   * the compactor was not last: a stalled or replaced compactor, a fault)"; gc/cycle.ts
   * #finalize: "From-space now holds only pages nobody reads: give them back (unless the
   * compactor did)"): a compactor that dies mid-cycle releases nothing; the cycle's end does,
   * and says so.
   */
  itMode('move', 'a compactor dead mid-cycle: the end of the cycle releases from-space and says it was the mutator', async () => {
    const heap = await openHeap({ capacity: 16 * MiB, mode: 'move', stallMs: 100 });
    const T = defineTestTypes(heap);
    let head = heap.root(null);
    for (let i = 0; i < 20_000; i++) {
      const n = heap.alloc(T.node);
      heap.setU32(n, 0, i);
      heap.setRef(n, 0, head.get());
      head.set(n);
      heap.allocBytes(200); // garbage: from-space keeps pages nobody consumed
    }
    heap.inject({ dieAtPage: 3 });
    const st = await heap.gc();
    heap.inject({});
    checkStats(st, 'move', { injected: true });
    expect(st.fromSpaceReleasedBy).toBe('mutator');
    const rss = fromSpaceVmas(heap).reduce((s, v) => s + v.rssBytes, 0);
    expect(rss, 'from-space resident after the cycle').toBe(0);
    let i = 20_000;
    for (let x = head.get(); x !== null; x = heap.getRef(x, 0)) expect(heap.getU32(x, 0)).toBe(--i);
    expect(i).toBe(0);
  });
});

describe('the end of a cycle with nothing to build', () => {
  /**
   * Claim (gc/cycle.ts, the flip: "Nothing to build: the cycle ends here"): a collection of
   * an empty heap is over when collect() returns, with no idle(), safepoint or event-loop turn.
   */
  for (const mode of ['move', 'copy'] as const) {
    itMode(mode, 'collect() of a heap with no page to build returns with the cycle already ended', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode });
      const n0 = heap.history.length;
      const st = await heap.collect();
      expect(st.pages.total).toBe(0);
      expect(heap.progress().phase, 'no cycle active').toBe('idle');
      expect(heap.history.length).toBe(n0 + 1);
    });
  }
});

describe('concurrent marking: statistics and progress', () => {
  /**
   * Claims (gc/stats.ts recordPlan: liveObjects are the objects marked plus those allocated
   * since marking began, which are live (black); Progress.markerIdle: "Concurrent marking has
   * caught up (nothing grey, the log empty)"): a store during marking of the only reference
   * to a long unmarked chain makes the marker busy again (markerIdle false while it traces),
   * and the cycle counts every object that survives, black ones included.
   */
  itMode('move', 'a logged store of an unmarked chain: markerIdle goes false while it is traced; liveObjects counts black objects', async () => {
    const heap = await openHeap({ capacity: 64 * MiB, mode: 'move', marking: 'concurrent', stallMs: 10_000 });
    const T = defineTestTypes(heap);
    const holder = heap.root(heap.alloc(T.node));
    const CHAIN = 300_000;
    let chain: Ref | null = null;
    for (let i = 0; i < CHAIN; i++) {
      const n = heap.alloc(T.node);
      heap.setRef(n, 0, chain);
      chain = n; // held only in this local: unmarked until stored
    }
    expect(heap.requestCollection()).toBe(true);
    const t0 = Date.now();
    while (!heap.progress().markerIdle) {
      if (Date.now() - t0 > 20_000) throw new Error('the marker did not go idle in 20 s');
      await new Promise((r) => setTimeout(r, 1));
    }
    heap.setRef(holder.get()!, 0, chain); // logged by the barrier: the marker has work again
    let sawBusy = false;
    for (const t1 = Date.now(); Date.now() - t1 < 5000 && !sawBusy; ) if (!heap.progress().markerIdle) sawBusy = true;
    expect(sawBusy, 'markerIdle went false while the marker traced the chain').toBe(true);
    // Black objects: allocated during marking, all kept.
    const BLACK = 1000;
    for (let i = 0; i < BLACK; i++) {
      const n = heap.alloc(T.node);
      heap.setRef(n, 0, heap.getRef(holder.get()!, 1));
      heap.setRef(holder.get()!, 1, n);
    }
    const st = (await heap.idle())!; // the requested cycle, driven to its end
    expect(st.cycle).toBe(1);
    checkStats(st, 'move', { allocatedDuring: true });
    expect(st.mark.blackObjects).toBe(BLACK);
    expect(st.liveObjects, 'marked and black objects alike').toBe(1 + CHAIN + BLACK);
    let k = 0;
    for (let x = heap.getRef(holder.get()!, 0); x !== null; x = heap.getRef(x, 0)) k++;
    expect(k).toBe(CHAIN);
  }, 60_000);
});
