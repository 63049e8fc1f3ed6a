/**
 * Large objects kept on pages (issue 10, item 3): objects of at least `largeObjectBytes` are
 * allocated on a page boundary behind a filler, the plan keeps them on one (plan.ts, step 6),
 * and their full pages past the header page are WHOLE: the compactor installs each long run of
 * them straight from from-space, with no build (compact.ts), so MOVE relocates them without a
 * copy. Checked here through the heap: where objects land, what survives every mode, what the
 * statistics say, from-space pages never written (holes), and gaps allocated during marking.
 */
import { describe, expect } from 'vitest';
import { IoUringPin, viewOf, type Heap, type ModeName, type Ref } from '../dist/gc/index.js';
import { MIN_WHOLE_RUN } from '../dist/gc/compact.js';
import { LARGE_OBJECT_BYTES } from '../dist/gc/options.js';
import { native } from '../dist/gc/native.js';
import { hugeBytes, thpNever } from './helpers/procfs.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap, TEST_MODES } from './helpers/heap.js';

closeHeapsAfterEach();

const PAGE = 4096;
const onPage = (h: Heap, r: Ref): boolean => (h.addressOf(r) - h.address) % PAGE === 0;

/** Byte i of array k: never the same page twice, never zero. */
const byteOf = (k: number, i: number): number => ((k * 131 + (i >>> 12) * 7 + i) % 251) + 1;

function fill(h: Heap, r: Ref, k: number): void {
  const n = h.length(r);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = byteOf(k, i);
  h.writeBytes(r, 0, b);
}

function same(h: Heap, r: Ref, k: number): boolean {
  const b = h.readBytes(r, 0, h.length(r));
  for (let i = 0; i < b.length; i += 509) if (b[i] !== byteOf(k, i)) return false;
  return b[b.length - 1] === byteOf(k, b.length - 1);
}

/** Large arrays (some garbage between them, and small objects), every other one kept. */
function populate(h: Heap, n: number, bytes: (k: number) => number, write = true): { keep: Ref; kept: number[] } {
  const keep = h.allocRefArray(n);
  const kept: number[] = [];
  for (let k = 0; k < n; k++) {
    h.allocBytes(100 + ((k * 37) % 900)); // garbage: everything above it slides
    const r = h.allocBytes(bytes(k));
    if (write) fill(h, r, k);
    if (k % 2 === 0) {
      h.setRef(keep, kept.length, r);
      kept.push(k);
    }
  }
  return { keep, kept };
}

describe('allocation of large objects', () => {
  itMode('stw', 'objects of at least largeObjectBytes start on a page, smaller ones are packed; 0 turns it off', async () => {
    const h = await openHeap({ capacity: 16 << 20, mode: 'stw' });
    h.allocBytes(10);
    const big = h.allocBytes(LARGE_OBJECT_BYTES - 8); // header + bytes = largeObjectBytes
    const tiny = h.allocBytes(8);
    const small = h.allocBytes(LARGE_OBJECT_BYTES - 16);
    expect(onPage(h, big)).toBe(true);
    expect(h.addressOf(tiny)).toBe(h.addressOf(big) + LARGE_OBJECT_BYTES);
    expect(h.addressOf(small)).toBe(h.addressOf(tiny) + 16); // a word short of it: packed, no gap
    expect(onPage(h, small)).toBe(false);
    expect(h.verify().ok).toBe(true); // the gap is a filler: the heap still parses
    const off = await openHeap({ capacity: 16 << 20, mode: 'stw', largeObjectBytes: 0 });
    off.allocBytes(10);
    expect(onPage(off, off.allocBytes(1 << 20))).toBe(false);
  });
});

describe.each(TEST_MODES)('large objects through a collection (%s)', (mode: ModeName) => {
  itMode(mode, 'they stay on pages, keep their bytes, and their full pages are installed whole (in move mode: copy and stw build them)', async () => {
    const h = await openHeap({ capacity: 64 << 20, mode, verify: true });
    const size = (k: number): number => 96 * 1024 + ((k * 7919) % (160 * 1024));
    const { keep, kept } = populate(h, 120, size);
    const root = h.root(keep);
    for (let cycle = 0; cycle < 2; cycle++) {
      const st = await h.gc();
      checkStats(st, mode);
      const ctx = JSON.stringify({ pages: st.pages, plan: st.plan });
      kept.forEach((k, i) => {
        const r = h.getRef(root.get()!, i)!;
        expect(onPage(h, r), `${ctx}: array ${k} on a page`).toBe(true);
        expect(same(h, r, k), `${ctx}: array ${k} bytes`).toBe(true);
      });
      expect(st.plan.alignedObjects, ctx).toBe(kept.length);
      expect(st.plan.wholePages, ctx).toBeGreaterThan(kept.length * MIN_WHOLE_RUN);
      if (mode !== 'move') expect(st.pages.whole, ctx).toBe(0);
      else {
        // Nothing else touched the heap: the compactor took every run of them whole.
        expect(st.pages.whole, ctx).toBe(st.plan.wholePages);
        expect(st.pages.zero, ctx).toBe(0); // every page was written
      }
      // Gaps: less than a page per object.
      expect(st.plan.alignGapBytes, ctx).toBeLessThan(kept.length * PAGE);
    }
  });

  itMode(mode, 'a WHOLE run the mutator touches first is built for it; the rest of the run is still installed whole', async () => {
    // The compactor sleeps before its first page: the walk below meets unbuilt pages first.
    // Its reads build (unbuiltReads 'build'): this is about a touch that builds a WHOLE page.
    const h = await openHeap({ capacity: 64 << 20, mode, verify: true, unbuiltReads: 'build', inject: { delayAtPage: 1, delayMs: 300 } });
    const { keep, kept } = populate(h, 40, () => 256 * 1024);
    const root = h.root(keep);
    const st0 = await h.collect();
    // Touch one page in the middle of each kept array.
    kept.forEach((k, i) => expect(h.getU8(h.getRef(root.get()!, i)!, 128 * 1024)).toBe(byteOf(k, 128 * 1024)));
    const st = (await h.idle())!;
    expect(st.cycle).toBe(st0.cycle);
    checkStats(st, mode, { faulted: true });
    kept.forEach((k, i) => expect(same(h, h.getRef(root.get()!, i)!, k), `array ${k}`).toBe(true));
    if (mode !== 'stw') {
      const ctx = JSON.stringify({ pages: st.pages, plan: st.plan });
      expect(st.pages.builtBySelf + st.pages.builtByFaults, ctx).toBeGreaterThanOrEqual(kept.length);
      if (mode === 'move') {
        expect(st.pages.whole, ctx).toBeGreaterThan(0);
        expect(st.pages.whole, ctx).toBeLessThan(st.plan.wholePages);
      } else expect(st.pages.whole, ctx).toBe(0);
    }
  });
});

describe.each(['move', 'copy'] as const)('from-space pages never written (%s)', (mode) => {
  itMode(mode, 'are installed as zeros, and a read of one right after its install (the cycle not yet over) returns', async () => {
    // Arrays allocated and never written: from-space has no page behind most of them (a hole).
    const h = await openHeap({ capacity: 64 << 20, mode, faultPath: 'handler', verify: true });
    const { keep, kept } = populate(h, 30, () => 512 * 1024, false);
    const root = h.root(keep);
    const arrays = kept.map((_, i) => h.getRef(root.get()!, i)!);
    await h.collect();
    // Wait, without yielding or calling safepoint() (either could end the cycle and unregister
    // the heap), until the compactor has installed every page; then read every page: each is
    // either zeros or a fault. A page marked installed with nothing behind it faults forever.
    const t0 = Date.now();
    while (h.progress().pagesMapped < h.progress().pagesTotal) if (Date.now() - t0 > 20_000) throw new Error('compaction did not finish');
    expect(h.cyclePhase).toBe('compacting');
    const refs = kept.map((_, i) => h.getRef(root.get()!, i)!);
    for (const r of refs) for (let off = 0; off < 512 * 1024; off += PAGE) expect(h.getU32(r, off)).toBe(0);
    const st = (await h.idle())!;
    checkStats(st, mode, { faulted: true });
    const ctx = JSON.stringify({ pages: st.pages, plan: st.plan });
    if (mode === 'move') {
      expect(st.pages.whole, ctx).toBe(st.plan.wholePages);
      expect(st.pages.zero, ctx).toBeGreaterThan(kept.length * 100);
    } else expect(st.pages.whole + st.pages.zero, ctx).toBe(0); // built: a hole reads as zeros
    expect(arrays.length).toBe(kept.length);
  });
});

describe.each(['move', 'copy'] as const)('large objects allocated while marking (%s)', (mode) => {
  itMode(mode, 'their gaps are not live: they are reclaimed, and black bytes count only the objects', async () => {
    const h = await openHeap({ capacity: 64 << 20, mode, verify: true });
    const { keep } = populate(h, 20, () => 128 * 1024);
    const root = h.root(keep);
    expect(h.requestCollection()).toBe(true);
    expect(h.cyclePhase).toBe('marking');
    const black = h.allocRefArray(30);
    const blackRoot = h.root(black);
    let objectBytes = 0;
    const used0 = h.usedBytes;
    for (let k = 0; k < 30; k++) {
      const small = h.allocBytes(1000 + k);
      const big = h.allocBytes(200 * 1024 + k * 8);
      fill(h, big, 1000 + k);
      h.setRef(blackRoot.get()!, k, big);
      objectBytes += 8 + Math.ceil((1000 + k) / 8) * 8 + 8 + 200 * 1024 + k * 8;
      expect(onPage(h, big)).toBe(true);
      expect(h.addressOf(big) - h.addressOf(small)).toBeGreaterThan(1000); // a gap of up to a page
    }
    const gapBytes = h.usedBytes - used0 - objectBytes;
    expect(gapBytes).toBeGreaterThan(0);
    while (h.cycleActive) {
      h.safepoint();
      await new Promise((r) => setTimeout(r, 1));
    }
    const st = h.history[h.history.length - 1];
    checkStats(st, mode, { allocatedDuring: true });
    const ctx = JSON.stringify({ mark: st.mark, plan: st.plan, gapBytes });
    expect(st.mark.blackBytes, ctx).toBe(objectBytes + 8 + 15 * 8); // and the ref array (30 slots)
    // What is not live after the cycle: the gaps the plan made (under a page each), the dense
    // prefix's dead words, the last page's tail. Live gap words would have slid as data.
    const slack = Math.ceil(0.05 * st.pages.identity * PAGE) + PAGE + st.plan.alignGapBytes;
    expect(st.usedAfterBytes - st.liveBytes, ctx).toBeLessThanOrEqual(slack);
    expect(slack, ctx).toBeLessThan(gapBytes + st.plan.alignGapBytes); // (the check can see them)
    for (let k = 0; k < 30; k++) {
      const r = h.getRef(blackRoot.get()!, k)!;
      expect(onPage(h, r)).toBe(true);
      expect(same(h, r, 1000 + k), `black array ${k}`).toBe(true);
    }
    expect(root.get()).not.toBeNull();
  });
});

const MiB = 1 << 20;
const onPmd = (h: Heap, r: Ref): boolean => (h.addressOf(r) - h.address) % (2 * MiB) === 0;

/** Garbage, then arrays of 3 and 5 MiB kept (small live objects between them): gaps of many pages before each. */
function populateHuge(h: Heap): { root: ReturnType<Heap['root']>; sizes: number[] } {
  const keep = h.allocRefArray(8);
  const root = h.root(keep);
  const sizes = [3 * MiB, 5 * MiB];
  sizes.forEach((n, k) => {
    for (let i = 0; i < 700; i++) h.allocBytes(1000); // ~0.7 MiB of garbage: everything above it slides
    h.setRef(root.get()!, 4 + k, h.allocBytes(100)); // a small live object just before the gap
    const r = h.allocBytes(n);
    fill(h, r, k);
    h.setRef(root.get()!, k, r);
  });
  return { root, sizes };
}

describe.each(TEST_MODES)('huge pages (%s)', (mode: ModeName) => {
  for (const builder of ['js', 'native'] as const)
    itMode(mode, `objects of 2 MiB and more start on a 2 MiB boundary and keep it; one filler covers each gap, its whole pages the zero page (${builder} builder)`, async () => {
      const h = await openHeap({ capacity: 64 * MiB, mode, builder, hugePages: true, verify: true });
      const { root, sizes } = populateHuge(h);
      const small = h.allocBytes(1 << 20); // under 2 MiB: on a page only
      expect(onPage(h, small) && !onPmd(h, small)).toBe(true);
      for (let cycle = 0; cycle < 2; cycle++) {
        const st = await h.gc(); // verify: true: every page of the heap parses
        checkStats(st, mode);
        const ctx = JSON.stringify({ pages: st.pages, plan: st.plan });
        sizes.forEach((n, k) => {
          const r = h.getRef(root.get()!, k)!;
          expect(onPmd(h, r), `${ctx}: array ${k} on 2 MiB`).toBe(true);
          expect(h.length(r)).toBe(n);
          expect(same(h, r, k), `${ctx}: array ${k} bytes`).toBe(true);
        });
        expect(st.plan.alignedObjects, ctx).toBe(2);
        if (cycle === 0) {
          expect(st.plan.alignGapBytes, ctx).toBeGreaterThan(MiB); // whole pages of gap
          // ... installed as the zero page, unbuilt (stw builds them in place: zeros).
          if (mode !== 'stw') expect(st.pages.gap, ctx).toBeGreaterThan(128);
        }
      }
    });
});

// Found by an audit: an object ending exactly on a page edge, then one kept on a 2 MiB
// boundary. The gap began on a page no object overlaps, which the plan made GAP (all zeros):
// nobody wrote the filler there, and the heap stopped parsing at the gap. Now that page's
// build starts from the object past the gap (plan.ts, slideChunks).
describe.each(TEST_MODES)('huge pages: a gap starting on a page edge (%s)', (mode: ModeName) => {
  const cases = [
    { bytes: 65528 }, // 16 pages with its header: a large object that ends on a page edge
    { bytes: 131064 },
    { bytes: 4088, largeObjectBytes: 4096 },
    { bytes: 8184, largeObjectBytes: 4096 },
    // Not large: behind 256 words of garbage (no dense prefix), slid to word 1, it ends on page 1's first word.
    { bytes: 4080, garbage: 2040 },
  ];
  itMode(mode, 'the gap\'s filler is written on that page: the heap parses, census walks it, both objects keep their bytes (js and native builders)', async () => {
    for (const builder of ['js', 'native'] as const)
      for (const c of cases) {
        const { bytes, garbage, ...opts } = c;
        const ctx = JSON.stringify({ builder, ...c });
        const h = await openHeap({ capacity: 64 * MiB, mode, builder, hugePages: true, ...opts });
        if (garbage !== undefined) h.allocBytes(garbage);
        const a = h.root(h.allocBytes(bytes));
        const b = h.root(h.allocBytes(2 * MiB)); // >= 2 MiB: on a 2 MiB boundary, past a gap after a
        fill(h, a.get()!, 1);
        fill(h, b.get()!, 2);
        await h.gc();
        expect(h.verify().errors, ctx).toEqual([]);
        expect(() => h.census(), ctx).not.toThrow();
        expect(onPmd(h, b.get()!), ctx).toBe(true);
        expect((h.addressOf(a.get()!) - h.address + bytes + 8) % PAGE, `${ctx}: a ends on a page edge`).toBe(0);
        expect(same(h, a.get()!, 1), `${ctx}: a's bytes`).toBe(true);
        expect(same(h, b.get()!, 2), `${ctx}: b's bytes`).toBe(true);
        await h.close();
      }
  });
});

// Found by heap.random under a busy loop: a heap's VMAs split at past cycles' pinned spans
// need not merge again, and a later segment spans them. A multi-page UFFDIO_COPY or
// UFFDIO_ZEROPAGE across a split is refused (ENOENT), which killed the compactor; its pages
// then waited a stall to be taken over. Here every 100th page carries a flag no install
// depends on, so every run of GAP pages (and most others) crosses a split.
describe.each(['move', 'copy'] as const)('runs across the heap\'s VMAs (%s)', (mode) => {
  itMode(mode, 'GAP runs (the zero page), WHOLE and copied runs across a split go in in pieces', async () => {
    const h = await openHeap({ capacity: 64 * MiB, mode, hugePages: true });
    const { root, sizes } = populateHuge(h);
    for (let p = 8; p < (32 * MiB) / 4096; p += 100) native.madvise(h.address + p * 4096, 4096, native.advice.WIPEONFORK);
    const st = await h.gc();
    checkStats(st, mode);
    const ctx = JSON.stringify({ pages: st.pages, splitRuns: st.splitRuns });
    expect(st.takeovers, ctx).toBe(0);
    expect(st.pages.gap, ctx).toBeGreaterThan(128);
    expect(st.splitRuns, ctx).toBeGreaterThan(4);
    sizes.forEach((n, k) => {
      const r = h.getRef(root.get()!, k)!;
      expect(h.length(r)).toBe(n);
      expect(same(h, r, k), `${ctx}: array ${k} bytes`).toBe(true);
    });
    expect(h.verify().ok).toBe(true);
  });
});

// Found by the soak (hugePages with heap.pin): the pause's free-tail filler, written between
// the mremap and the userfaultfd registration, took a whole huge page where its 2 MiB lay in
// remapped pages: the to-space pages below it became zeros the compactor's installs could not
// replace (EEXIST), and the live object there read as a filler (pause.ts, step 4).
describe.each(TEST_MODES)('huge pages: to-space stays empty until registered (%s)', (mode: ModeName) => {
  for (const marking of ['concurrent', 'pause'] as const)
    itMode(mode, `a segment ending on a page boundary below a pinned span keeps its objects (${marking} marking)`, async () => {
      const h = await openHeap({ capacity: 16 * MiB, mode, marking, hugePages: true, largeObjectBytes: 0 });
      h.allocBytes(2 * MiB); // garbage over the first 2 MiB
      const root = h.root(h.allocBytes(4080)); // 511 words: slid to word 1, it ends on page 1's first word
      const bytes = Uint8Array.from({ length: 4080 }, (_, i) => (i * 7 + 1) & 255);
      h.writeBytes(root.get()!, 0, bytes);
      h.allocBytes(MiB);
      const pin = h.pin(h.allocBytes(16)); // the first segment ends at its page, past 2 MiB
      const st = await h.gc();
      const ctx = JSON.stringify({ pages: st.pages, plan: st.plan });
      expect(h.addressOf(root.get()!) - h.address, ctx).toBe(8); // slid to word 1: its segment ends on a page
      expect(h.readBytes(root.get()!, 0, 4080), ctx).toEqual(bytes);
      expect(h.verify().errors).toEqual([]);
      pin.release();
    });

  // Found by a kernel-edge audit: the same filler, under a program's own MADV_HUGEPAGE on a
  // heap without hugePages (the pause guarded only heaps with the option): the object slid to
  // word 1 read as a filler, 10 runs in 10, move and copy. Now every pause keeps to-space
  // MADV_NOHUGEPAGE until it is registered (pause.ts, step 4).
  itMode(mode, "a program's own MADV_HUGEPAGE on a heap without hugePages: the same segment keeps its objects", async () => {
    const h = await openHeap({ capacity: 16 * MiB, mode, hugePages: false, largeObjectBytes: 0 });
    h.allocBytes(2 * MiB);
    const root = h.root(h.allocBytes(4080));
    const bytes = Uint8Array.from({ length: 4080 }, (_, i) => (i * 7 + 1) & 255);
    h.writeBytes(root.get()!, 0, bytes);
    h.allocBytes(MiB);
    const pin = h.pin(h.allocBytes(16));
    native.madvise(h.address, 16 * MiB, native.advice.HUGEPAGE); // the program's, not the heap's
    await h.gc();
    expect(h.addressOf(root.get()!) - h.address).toBe(8);
    expect(h.typeOf(root.get()!)).not.toBe('(filler)');
    expect(h.readBytes(root.get()!, 0, 4080)).toEqual(bytes);
    expect(h.verify().errors).toEqual([]);
    pin.release();
  });
});

describe.each(['js', 'native'] as const)('huge pages: gap pages another thread builds (%s builder)', (builder) => {
  itMode('move', 'the threads standing in for a stalled compactor build them as zeros', async () => {
    // The compactor stalls before its first page; past stallMs the fault server and the
    // mutator finishing the cycle build every page, one at a time into a reused scratch page.
    const h = await openHeap({ capacity: 64 * MiB, mode: 'move', builder, hugePages: true, stallMs: 200, verify: true, inject: { delayAtPage: 1, delayMs: 1500 } });
    const { root, sizes } = populateHuge(h);
    const st = await h.gc();
    const ctx = JSON.stringify({ pages: st.pages, takeovers: st.takeovers });
    expect(st.pages.builtByFaults + st.pages.builtByMutator, ctx).toBe(st.pages.total);
    expect(st.pages.gap, ctx).toBe(0); // none went in as the zero page
    // Pages 1-511 lie in the first array's gap (page 0 holds the small live objects).
    const raw = new Uint32Array(viewOf(h.address, 2 * MiB));
    expect(raw.subarray(2 * (PAGE / 4), 511 * (PAGE / 4)).some((w) => w !== 0), ctx).toBe(false);
    sizes.forEach((_, k) => expect(same(h, h.getRef(root.get()!, k)!, k), `array ${k}`).toBe(true));
  });
});

describe('huge pages: full 2 MiB spans move as one page-table entry (move)', () => {
  itMode('move', 'the arrays\' full spans are installed one aligned 2 MiB call each and stay huge pages after the move', async () => {
    if (thpNever()) {
      console.warn('[movegc] skipping the huge page check: transparent huge pages are off (never)');
      return;
    }
    const h = await openHeap({ capacity: 64 * MiB, mode: 'move', hugePages: true, verify: true });
    const { root, sizes } = populateHuge(h);
    const before = hugeBytes(h);
    if (before < 4 * MiB) {
      console.warn(`[movegc] skipping the huge page check: the kernel gave the heap ${before} bytes of huge pages`);
      return;
    }
    const st = await h.gc();
    const ctx = JSON.stringify({ pages: st.pages, plan: st.plan, before });
    // 3 MiB at 2 MiB: no full span past its header's; 5 MiB: spans 2 and 3 of it... one or two, by where it lands.
    expect(st.pages.wholePmdCalls, ctx).toBeGreaterThanOrEqual(1);
    expect(hugeBytes(h), ctx).toBeGreaterThanOrEqual(st.pages.wholePmdCalls * 2 * MiB);
    sizes.forEach((_, k) => expect(same(h, h.getRef(root.get()!, k)!, k), `array ${k}`).toBe(true));
  });

  itMode('move', 'a raw pin (io_uring) of one page of a huge page: MOVE refuses that span (EBUSY), its pages are copied, nothing hangs or is lost', async () => {
    const h = await openHeap({ capacity: 64 * MiB, mode: 'move', hugePages: true, verify: true });
    const { root, sizes } = populateHuge(h);
    // One page in the 5 MiB array's third 2 MiB span, pinned behind the heap's back.
    const io = IoUringPin.pin(h.addressOf(h.getRef(root.get()!, 1)!) + 4 * MiB + 8 * PAGE, PAGE);
    try {
      const st = await h.gc();
      const ctx = JSON.stringify({ pages: st.pages, ebusy: st.ebusy });
      expect(st.ebusy, ctx).toBeGreaterThanOrEqual(1);
      expect(st.pages.copied, ctx).toBeGreaterThanOrEqual(1);
      sizes.forEach((_, k) => expect(same(h, h.getRef(root.get()!, k)!, k), `array ${k}`).toBe(true));
    } finally {
      io.release();
    }
  });

  itMode('move', 'a fork injected inside a run of GAP pages (inject.forkAtPage) happens there: the arrays\' pages, now shared, are refused and copied', async () => {
    // To-space: page 0 holds the small live objects, pages 1-511 are the first array's gap.
    const h = await openHeap({ capacity: 64 * MiB, mode: 'move', hugePages: true, dontFork: false, stallMs: 10_000, verify: true, inject: { forkAtPage: 50 } });
    const { root, sizes } = populateHuge(h);
    const st = await h.gc();
    const ctx = JSON.stringify({ pages: st.pages, ebusy: st.ebusy });
    expect(st.pages.gap, ctx).toBeGreaterThan(50);
    expect(st.ebusy, ctx).toBeGreaterThan(0);
    sizes.forEach((_, k) => expect(same(h, h.getRef(root.get()!, k)!, k), `array ${k}`).toBe(true));
  });

  itMode('move', 'without hugePages the heap has none, and no object keeps a 2 MiB boundary; a WHOLE run still goes in calls of up to 512 pages', async () => {
    const h = await openHeap({ capacity: 64 * MiB, mode: 'move', verify: true });
    const { root } = populateHuge(h);
    const st = await h.gc();
    expect(st.pages.wholePmdCalls).toBe(0);
    // 8 MiB of WHOLE pages: 4 calls at 512 pages a call, 32 at the builders' 64.
    expect(st.pages.whole).toBeGreaterThan(2000);
    expect(st.moveCalls, JSON.stringify(st.pages)).toBeLessThan(20);
    expect(hugeBytes(h)).toBe(0);
    expect(st.plan.alignGapBytes).toBeLessThan(2 * PAGE);
    expect(root.get()).not.toBeNull();
  });
});
