/**
 * Reads of unbuilt pages served from from-space (gc/unbuilt-reads.ts, options.unbuiltReads):
 * while a cycle compacts, getRef, getU8/U32/F64, length and readBytes of a page not yet built read the
 * word where it still is (forwarding a reference as the builder would) and leave the page to
 * the compactor; writes build the page as before.
 *
 *  - the option: validated, default 'from-space', MOVEGC_UNBUILT_READS=build (child process).
 *  - what is read: every reference slot and raw field of a graph whose pages are all unbuilt
 *    (the compactor sleeps before its first page): the right values, no page built, no kernel
 *    fault, every read counted; with 'build' the same reads build their pages (the control).
 *  - writes that build (unbuiltWrites 'build'): a write builds its page, and reads of it and
 *    of its neighbours see it (writes made in from-space: heap.unbuilt-writes).
 *  - the state word lagging the kernel: a write whose page the fault server installed but has
 *    not yet marked MAPPED (faultHoldMappedMs) is seen by the read after it (SelfService.seen).
 *  - racing the compactor: reads of every object, over and over, while it builds, installs,
 *    recycles and releases from-space: every value right, the heap verified after.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, Heap, MoveGcError, type HeapType, type Ref } from '../dist/gc/index.js';
import { SAMPLE_EVERY } from '../dist/gc/shared.js';
import { withEnvProbe } from './helpers/env-probe.js';
import { targetAheadOfArrays } from './helpers/held.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { rejected, thrown } from './helpers/thrown.js';

closeHeapsAfterEach();

const DIST_URL = new URL('../dist/gc/index.js', import.meta.url).href;
const MODES = ['move', 'copy'] as const;

/** The two options' probes: what a heap was given shows in whether its accesses build (2 cycles in a child). */
const OPTIONS = [
  { option: 'unbuiltReads', env: 'MOVEGC_UNBUILT_READS', access: 'h.getRef(a.get(), i)' },
  { option: 'unbuiltWrites', env: 'MOVEGC_UNBUILT_WRITES', access: 'h.setU32(h.getRef(a.get(), i), 0, i)' },
] as const;

describe.each(OPTIONS)('the $option option', ({ option, env, access }) => {
  it('is validated like the other options', async () => {
    for (const bad of ['fromspace', 'BUILD', '', 1, true, null, {}]) {
      const e = await rejected(() => Heap.create({ capacity: 2 << 20, mode: 'stw', [option]: bad as never }));
      expect(e, String(bad)).toBeInstanceOf(MoveGcError);
      expect(e.code, String(bad)).toBe(ErrorCode.INVALID_ARG_TYPE);
      expect(e.message).toContain(option);
    }
  });

  it(`defaults to from-space; ${env}=build changes the default, not an explicit choice (child process)`, () => {
    const script = `const { Heap } = await import(${JSON.stringify(DIST_URL)});
      const out = [];
      for (const o of [{}, { ${option}: 'from-space' }]) {
        const h = await Heap.create({ capacity: 8 << 20, mode: 'copy', stallMs: 10000, inject: { delayAtPage: 1, delayMs: 200 }, ...o });
        const a = h.root(h.allocRefArray(2000));
        for (let i = 0; i < 2000; i++) { h.allocBytes(200); h.setRef(a.get(), i, h.allocBytes(16)); }
        await h.collect();
        for (let i = 0; i < 2000; i += 97) ${access};
        const st = await h.idle();
        out.push(st.stalls.${option} > 0 ? 'from-space' : 'build');
        await h.close();
      }
      console.log(JSON.stringify(out));`;
    withEnvProbe(env, script, (p) => {
      expect(p.run('build')).toEqual(['build', 'from-space']);
      expect(p.run(undefined)).toEqual(['from-space', 'from-space']);
      // A value it does not know is refused (a typo would run the default unnoticed).
      expect(p.refused('fromspace')).toMatch(new RegExp(`${env} must be one of build, from-space \\(or unset\\), got 'fromspace'`));
    });
  }, 120_000);
});

interface Graph {
  T: HeapType;
  arr: { get(): Ref | null };
  nodes: Array<{ get(): Ref | null }>;
  blobs: Array<{ get(): Ref | null }>;
}

const N = 600;
const SLOTS = 1500; // the array spans three pages: slots far from its header
const f64Of = (i: number): number => i * 1.25 - 7;
const u32Of = (i: number): number => (Math.imul(i + 1, 0x9e3779b1) ^ 0xa5a5a5a5) >>> 0;
const blobBytes = (i: number): number => 300 + (i % 9) * 40;

/** Nodes (2 refs, a u32 and an f64) and byte blobs, with garbage between: every page slides. */
function buildGraph(heap: Heap): Graph {
  const T = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
  const arr = heap.root(heap.allocRefArray(SLOTS));
  const nodes = [];
  const blobs = [];
  for (let i = 0; i < N; i++) {
    heap.allocBytes(100 + ((i * 53) % 700));
    const n = heap.alloc(T);
    heap.setU32(n, 0, u32Of(i));
    heap.setF64(n, 8, f64Of(i));
    const b = heap.allocBytes(blobBytes(i));
    for (let k = 0; k < 40; k++) heap.setU8(b, k, (i + k) & 0xff);
    heap.setRef(n, 0, b);
    if (i > 0) heap.setRef(n, 1, nodes[i - 1].get());
    heap.setRef(arr.get()!, SLOTS - 1 - i, n);
    nodes.push(heap.root(n));
    blobs.push(heap.root(b));
  }
  return { T, arr, nodes, blobs };
}

/** Reads everything through the accessors and checks it; returns how many reads it made. */
function readAll(heap: Heap, g: Graph): number {
  const a = g.arr.get()!;
  expect(heap.length(a), 'length of the array').toBe(SLOTS); // a reference array's header
  let reads = 1;
  for (let i = 0; i < N; i++) {
    const n = heap.getRef(a, SLOTS - 1 - i);
    expect(n, `slot of node ${i}`).toBe(g.nodes[i].get());
    expect(heap.getU32(n!, 0), `u32 of node ${i}`).toBe(u32Of(i));
    expect(heap.getF64(n!, 8), `f64 of node ${i}`).toBe(f64Of(i));
    const b = heap.getRef(n!, 0);
    expect(b, `blob of node ${i}`).toBe(g.blobs[i].get());
    expect(heap.getRef(n!, 1), `link of node ${i}`).toBe(i > 0 ? g.nodes[i - 1].get() : null);
    expect(heap.getU8(b!, 3)).toBe((i + 3) & 0xff);
    const bytes = heap.readBytes(b!, 0, 40);
    for (let k = 0; k < 40; k++) if (bytes[k] !== ((i + k) & 0xff)) throw new Error(`blob ${i} byte ${k}: ${bytes[k]}`);
    expect(heap.length(b!), `length of blob ${i}`).toBe(blobBytes(i)); // a byte array's header
    expect(heap.length(n!), `length of node ${i}`).toBe(16); // a fixed type's, from the type table
    reads += 9;
  }
  return reads;
}

describe('a WHOLE page claimed (move)', () => {
  itMode('move', 'a read of a WHOLE page the compactor has moved in but not yet marked MAPPED (wholeHoldMappedMs) takes it from to-space', async () => {
    // A WHOLE page's source page moves away with it: from its claim on, from-space holds a
    // hole there. The compactor holds its first WHOLE run 1 s between the MOVE and MAPPED;
    // the reads come inside that second, and must not read the hole.
    const heap = await openHeap({ capacity: 32 << 20, mode: 'move', unbuiltReads: 'from-space', stallMs: 10_000, inject: { wholeHoldMappedMs: 1000 } });
    const BYTES = 256 * 1024;
    heap.allocBytes(100_000); // garbage below: the array slides, by whole pages
    const big = heap.root(heap.allocBytes(BYTES));
    const word = (i: number): number => (Math.imul(i + 1, 2654435761) | 1) >>> 0; // never 0
    for (let i = 0; i < BYTES; i += 4) heap.setU32(big.get()!, i, word(i));
    await heap.collect();
    expect(heap.cyclePhase).toBe('compacting');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // the compactor is in its hold
    const during = heap.progress();
    for (let i = 16 * 1024; i < BYTES - 16 * 1024; i += 4096 + 4) expect(heap.getU32(big.get()!, i), `byte ${i}`).toBe(word(i));
    const st = (await heap.idle())!;
    const ctx = JSON.stringify({ during, pages: st.pages, stalls: st.stalls });
    expect(during.pagesMapped, ctx).toBeLessThan(during.pagesTotal); // read inside the hold
    expect(st.pages.whole, ctx).toBeGreaterThan(40);
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});

describe.each(MODES)('reads of unbuilt pages (%s)', (mode) => {
  itMode(mode, 'from-space: the right values, no page built, no kernel fault; build: the same reads build their pages', async () => {
    for (const unbuiltReads of ['from-space', 'build'] as const) {
      // The compactor sleeps 300 ms before its first page: every page read is unbuilt.
      const heap = await openHeap({ capacity: 16 << 20, mode, unbuiltReads, stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 300 } });
      const g = buildGraph(heap);
      for (let i = 0; i < 200; i++) heap.allocBytes(500); // garbage after the graph too
      await heap.collect();
      expect(heap.cyclePhase).toBe('compacting');
      const before = heap.progress();
      const reads = readAll(heap, g);
      const after = heap.progress();
      const st = (await heap.idle())!;
      const ctx = `${unbuiltReads}: ${JSON.stringify({ pages: st.pages, faults: st.faults, stalls: st.stalls, before, after })}`;
      checkStats(st, mode, { faulted: true });
      if (unbuiltReads === 'from-space') {
        expect(after.pagesMapped, ctx).toBe(before.pagesMapped); // nothing installed by the reads
        expect(st.pages.builtBySelf + st.faults + st.stalls.unbuiltTouches, ctx).toBe(0);
        expect(st.stalls.unbuiltReads, ctx).toBe(reads);
        // One read in SAMPLE_EVERY is timed, and stands for that many in the histogram.
        expect(st.stalls.reads.count % SAMPLE_EVERY, ctx).toBe(0);
        expect(Math.abs(st.stalls.reads.count - reads), ctx).toBeLessThan(SAMPLE_EVERY);
      } else {
        expect(st.stalls.unbuiltReads + st.stalls.reads.count, ctx).toBe(0);
        expect(st.pages.builtBySelf, ctx).toBeGreaterThan(3);
        expect(after.pagesMapped, ctx).toBeGreaterThan(before.pagesMapped);
      }
      expect(heap.verify().ok).toBe(true);
      readAll(heap, g); // and after the cycle, from to-space
      await heap.close();
    }
  }, 60_000);

  itMode(mode, 'hostile slots and offsets (Symbol, BigInt, string, negative, fractional, past 2^32) on installed and unbuilt pages: typed errors, the heap intact', async () => {
    // The read accessors look at the header's and the slot's page before the from-space path
    // (mutator.ts #unbuiltRef): with a slot that is no number, that look must not throw first.
    const heap = await openHeap({ capacity: 16 << 20, mode, unbuiltReads: 'from-space', unbuiltWrites: 'build', stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 300 } });
    const g = buildGraph(heap);
    await heap.collect();
    const far = g.nodes[N - 1].get()!;
    heap.setU32(far, 4, 7); // a write builds its page: reads there take the usual path
    const codes = new Set<string>();
    for (const n of [g.nodes[0].get()!, far]) {
      for (const bad of [Symbol('slot'), 10n, '1', -1, 1.5, 2 ** 32, { valueOf: () => 0 }, null]) {
        for (const read of [() => heap.getRef(n, bad as never), () => heap.getU32(n, bad as never), () => heap.getF64(n, bad as never), () => heap.getU8(n, bad as never)]) {
          const e = thrown(read);
          expect(e, `${String(read)} with ${typeof bad}`).toBeInstanceOf(MoveGcError);
          codes.add(e.code);
        }
      }
    }
    expect([...codes].sort()).toEqual([ErrorCode.FIELD_RANGE, ErrorCode.INVALID_ARG_TYPE].sort());
    readAll(heap, g);
    await heap.idle();
    expect(heap.verify().ok).toBe(true);
    readAll(heap, g);
  }, 60_000);

  itMode(mode, 'a write builds its page (unbuiltWrites build); reads of it and of its neighbours see the write', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode, unbuiltReads: 'from-space', unbuiltWrites: 'build', stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 300 } });
    const g = buildGraph(heap);
    await heap.collect();
    expect(heap.cyclePhase).toBe('compacting');
    const k = 150;
    const n = g.nodes[k].get()!;
    heap.setU32(n, 0, 12345);
    heap.setRef(n, 1, g.nodes[7].get());
    expect(heap.getU32(n, 0)).toBe(12345);
    expect(heap.getRef(n, 1)).toBe(g.nodes[7].get());
    expect(heap.getF64(n, 8)).toBe(f64Of(k));
    for (const j of [k - 1, k + 1, 20, 250]) { // its page's neighbours, and nodes on unbuilt pages
      const m = g.nodes[j].get()!;
      expect(heap.getU32(m, 0)).toBe(u32Of(j));
      expect(heap.getRef(m, 1)).toBe(g.nodes[j - 1].get());
    }
    const st = (await heap.idle())!;
    expect(st.pages.builtBySelf).toBeGreaterThanOrEqual(1); // the write's page
    expect(st.stalls.unbuiltReads).toBeGreaterThan(0);
    expect(heap.verify().ok).toBe(true);
    expect(heap.getU32(g.nodes[k].get()!, 0)).toBe(12345);
  }, 60_000);

  itMode(mode, "a write whose page's state word lags its install (faultHoldMappedMs) is seen by the read after it", async () => {
    // The first self-service build of the cycle fails at its install: the mutator gives up
    // self-service, so its write goes through the kernel; the fault server installs the page
    // and holds 300 ms before marking it MAPPED. The write lands meanwhile, and the read must
    // take it from to-space, not the old word from from-space.
    const heap = await openHeap({ capacity: 16 << 20, mode, unbuiltReads: 'from-space', unbuiltWrites: 'build', stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 600, selfFailAtInstall: 1, faultHoldMappedMs: 300 } });
    const g = buildGraph(heap);
    await heap.collect();
    expect(heap.cyclePhase).toBe('compacting');
    const k = 100;
    const n = g.nodes[k].get()!;
    heap.setU32(n, 0, 777);
    expect(heap.getU32(n, 0)).toBe(777);
    heap.setRef(n, 1, null);
    expect(heap.getRef(n, 1)).toBe(null);
    const st = (await heap.idle())!;
    expect(st.stalls.selfFailed).toBeGreaterThanOrEqual(1);
    expect(st.faults).toBeGreaterThanOrEqual(1); // the write went through the kernel
    expect(heap.verify().ok).toBe(true);
    expect(heap.getU32(g.nodes[k].get()!, 0)).toBe(777);
  }, 60_000);

  itMode(mode, 'a read held between its look at the page and its read (readHoldMs) while the compactor installs the page and reuses or releases its sources: the value is right', async () => {
    // The compactor builds one page and sleeps 100 ms, so the target's page (past it) is
    // unbuilt when the read looks; the read then sleeps 1.5 s, in which the compactor installs
    // every page and recycles (move) or releases (copy) from-space behind it: 24 MiB of live
    // arrays after the target put its sources 8 MiB and more behind the walk.
    const heap = await openHeap({ capacity: 64 << 20, mode, unbuiltReads: 'from-space', stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 100, readHoldMs: 1500 } });
    const { target, keep } = await targetAheadOfArrays(heap, 3000, (t, k0) => {
      heap.setU32(t, 0, 0xc0ffee);
      heap.setRef(t, 0, k0);
    });
    const total = heap.progress().pagesTotal;
    const t0 = performance.now();
    expect(heap.getU32(target.get()!, 0)).toBe(0xc0ffee);
    const heldMs = performance.now() - t0;
    const mapped = heap.progress().pagesMapped;
    expect(heap.getRef(target.get()!, 0)).toBe(keep[0].get());
    const st = (await heap.idle())!;
    const ctx = JSON.stringify({ heldMs, mapped, total, pages: st.pages, stalls: st.stalls });
    expect(heldMs, ctx).toBeGreaterThanOrEqual(1400); // the read was held
    expect(mapped, ctx).toBe(total); // and every page went in meanwhile
    expect(mode === 'move' ? st.pages.recycledBuffers : st.pages.released, ctx).toBeGreaterThan(2048);
    expect(st.stalls.unbuiltReads, ctx).toBe(0); // the held read went the usual way: its page was in
    expect(heap.verify().ok).toBe(true);
  }, 60_000);

  itMode(mode, 'where an object was in the last cycle is not where it is in this one: reads two cycles running are right', async () => {
    // Nodes of one size, with K of garbage below them in the first cycle only: every node
    // slides down by K in the first cycle and stays put in the second. So node i's source in
    // the first cycle is node i + K's in the second, a live object: a read answered from the
    // first cycle's lookup (unbuilt-reads.ts sourceOf keeps them for a cycle) gets its value.
    // Fewer cells than that cache holds, so that none of the first cycle's lookups is evicted.
    const K = 64;
    const heap = await openHeap({ capacity: 16 << 20, mode, unbuiltReads: 'from-space', stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 300 } });
    const T = heap.defineType({ name: 'Cell', refs: 0, bytes: 24 });
    for (let i = 0; i < K; i++) heap.alloc(T);
    const cells = [];
    for (let i = 0; i < 200; i++) {
      const c = heap.alloc(T);
      heap.setU32(c, 0, u32Of(i));
      cells.push(heap.root(c));
    }
    for (let cycle = 0; cycle < 2; cycle++) {
      await heap.collect();
      expect(heap.cyclePhase).toBe('compacting');
      for (let i = 0; i < cells.length; i++) expect(heap.getU32(cells[i].get()!, 0), `cycle ${cycle}, cell ${i}`).toBe(u32Of(i));
      const st = (await heap.idle())!;
      expect(st.stalls.unbuiltReads, `cycle ${cycle}`).toBe(cells.length);
    }
    expect(heap.verify().ok).toBe(true);
  }, 60_000);

  itMode(mode, 'racing the compactor: every read right while it builds, installs and recycles; verified after', async () => {
    const heap = await openHeap({ capacity: 32 << 20, mode, unbuiltReads: 'from-space', stallMs: 10_000 });
    const g = buildGraph(heap);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2000; i++) heap.allocBytes(300 + (i % 5) * 200);
      await heap.collect();
      let passes = 0;
      let reads = 0;
      while (heap.cyclePhase === 'compacting') {
        reads += readAll(heap, g);
        passes++;
        heap.safepoint();
      }
      await heap.idle();
      expect(passes, `round ${round}`).toBeGreaterThan(0);
      expect(reads).toBeGreaterThan(0);
      expect(heap.verify().ok).toBe(true);
    }
    readAll(heap, g);
  }, 60_000);
});
