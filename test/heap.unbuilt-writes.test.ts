/**
 * Writes of one field to unbuilt pages made in from-space (gc/unbuilt-writes.ts,
 * options.unbuiltWrites), against the real collector in move and copy mode:
 *
 *  - the option (validated, its default, MOVEGC_UNBUILT_WRITES): heap.unbuilt-reads, with unbuiltReads;
 *  - every kind of store (a reference, null, a reference to an object allocated since the
 *    flip, u8, u32, f64) to pages the compactor has not reached: no page built for them,
 *    every value read back from from-space at once, from to-space after the cycle, with each
 *    page builder (the references go in tagged: both must untag them);
 *  - a store held between its claim and its write (writeHoldMs) while the compactor walks
 *    every other page: the page waits for it, and carries it;
 *  - hostile slots, offsets and values on unbuilt pages: typed errors, nothing written.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, Heap, MoveGcError, type HeapType, type Ref } from '../dist/gc/index.js';
import { closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { targetAheadOfArrays } from './helpers/held.js';
import { rejected, thrown } from './helpers/thrown.js';

closeHeapsAfterEach();

const MODES = ['move', 'copy'] as const;

interface Graph {
  T: HeapType;
  nodes: Array<{ get(): Ref | null }>;
}

const N = 600;
const u32Of = (i: number): number => (Math.imul(i + 1, 0x9e3779b1) ^ 0xa5a5a5a5) >>> 0;

/** N nodes (two slots, 16 raw bytes) with garbage between them: every cycle slides them all. */
function buildGraph(heap: Heap): Graph {
  const T = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
  const nodes = [];
  for (let i = 0; i < N; i++) {
    heap.allocBytes(100 + ((i * 53) % 700));
    const n = heap.alloc(T);
    heap.setU32(n, 0, u32Of(i));
    heap.setF64(n, 8, i * 1.25 - 7);
    if (i > 0) heap.setRef(n, 1, nodes[i - 1].get());
    nodes.push(heap.root(n));
  }
  return { T, nodes };
}

/** What the stores below leave in node i (j: the node its slot 0 names, -1: the new object, null: none). */
function expected(i: number): { ref0: number | null; u32: number; u8: number; f64: number } {
  const kind = i % 4;
  return {
    ref0: kind === 0 ? (i * 7) % N : kind === 1 ? null : kind === 2 ? -1 : null,
    u32: kind === 3 ? 0xdeadbeef : u32Of(i),
    u8: (i * 13) & 0xff,
    f64: kind === 1 ? -0.5 * i : i * 1.25 - 7,
  };
}

function storeAll(heap: Heap, g: Graph, fresh: Ref): void {
  for (let i = 0; i < N; i++) {
    const n = g.nodes[i].get()!;
    const e = expected(i);
    if (e.ref0 !== null) heap.setRef(n, 0, e.ref0 === -1 ? fresh : g.nodes[e.ref0].get());
    else if (i % 4 === 1) heap.setRef(n, 0, null);
    if (i % 4 === 3) heap.setU32(n, 0, e.u32);
    if (i % 4 === 1) heap.setF64(n, 8, e.f64);
    heap.setU8(n, 4, e.u8);
  }
}

function checkAll(heap: Heap, g: Graph, fresh: Ref, when: string): void {
  for (let i = 0; i < N; i++) {
    const n = g.nodes[i].get()!;
    const e = expected(i);
    const ctx = `${when}: node ${i}`;
    expect(heap.getRef(n, 0), ctx).toBe(e.ref0 === null ? null : e.ref0 === -1 ? fresh : g.nodes[e.ref0].get());
    expect(heap.getRef(n, 1), ctx).toBe(i > 0 ? g.nodes[i - 1].get() : null);
    expect(heap.getU32(n, 0), ctx).toBe(e.u32);
    expect(heap.getU8(n, 4), ctx).toBe(e.u8);
    expect(heap.getF64(n, 8), ctx).toBe(e.f64);
  }
}

describe.each(MODES.flatMap((m) => (['native', 'js'] as const).map((b) => [m, b] as const)))('writes to unbuilt pages (%s, %s builder)', (mode, builder) => {
  itMode(mode, 'every kind of store is made in from-space, no page built for it; read back at once and after the cycle', async () => {
    // The compactor sleeps 300 ms before its first page: every store below meets its page unbuilt.
    const heap = await openHeap({ capacity: 16 << 20, mode, builder, stallMs: 10_000, verify: true, inject: { delayAtPage: 1, delayMs: 300 } });
    const g = buildGraph(heap);
    await heap.collect();
    expect(heap.cyclePhase).toBe('compacting');
    const fresh = heap.root(heap.allocBytes(24)); // allocated since the flip: in to-space only, no builder forwards it
    heap.setU32(fresh.get()!, 0, 99);
    storeAll(heap, g, fresh.get()!);
    const during = heap.progress();
    checkAll(heap, g, fresh.get()!, 'during compaction');
    const st = (await heap.idle())!;
    const ctx = JSON.stringify({ during, pages: st.pages, stalls: st.stalls });
    expect(during.phase, ctx).toBe('compacting');
    expect(st.stalls.unbuiltWrites, ctx).toBeGreaterThanOrEqual(N);
    expect(st.pages.builtBySelf, ctx).toBe(0);
    checkAll(heap, g, fresh.get()!, 'after the cycle');
    expect(heap.getU32(fresh.get()!, 0)).toBe(99);
    // And once more through a whole cycle of builds from these pages.
    await heap.gc();
    checkAll(heap, g, fresh.get()!, 'after the next cycle');
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});

describe.each(MODES)('a store held inside its claim (%s)', (mode) => {
  itMode(mode, 'a store held 1.5 s between its claim and its write (writeHoldMs) while the compactor walks every other page: the page carries the store', async () => {
    const heap = await openHeap({ capacity: 32 << 20, mode, stallMs: 10_000, verify: true, inject: { delayAtPage: 1, delayMs: 100, writeHoldMs: 1500 } });
    const { target, keep } = await targetAheadOfArrays(heap, 1500, (t) => heap.setU32(t, 0, 1));
    const total = heap.progress().pagesTotal;
    const t0 = performance.now();
    heap.setU32(target.get()!, 0, 0xc0ffee);
    const heldMs = performance.now() - t0;
    const mapped = heap.progress().pagesMapped;
    expect(heap.getU32(target.get()!, 0)).toBe(0xc0ffee);
    heap.setRef(target.get()!, 0, keep[7].get());
    const st = (await heap.idle())!;
    const ctx = JSON.stringify({ heldMs, mapped, total, pages: st.pages, stalls: st.stalls });
    expect(heldMs, ctx).toBeGreaterThanOrEqual(1400); // the store was held inside its claim
    expect(mapped, ctx).toBeGreaterThanOrEqual(total - 1); // every other page went in meanwhile
    expect(st.stalls.unbuiltWrites, ctx).toBeGreaterThanOrEqual(1);
    expect(heap.getU32(target.get()!, 0), ctx).toBe(0xc0ffee);
    expect(heap.getRef(target.get()!, 0), ctx).toBe(keep[7].get());
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});

describe.each(MODES)('hostile stores to unbuilt pages (%s)', (mode) => {
  itMode(mode, 'slots, offsets and values that are no such thing: typed errors, nothing written', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode, stallMs: 10_000, inject: { delayAtPage: 1, delayMs: 300 } });
    const g = buildGraph(heap);
    await heap.collect();
    expect(heap.cyclePhase).toBe('compacting');
    const n = g.nodes[N - 1].get()!;
    const m = g.nodes[N - 2].get()!;
    const codes = new Set<string>();
    const lying = { valueOf: () => 0 };
    for (const bad of [Symbol('slot'), 10n, '1', -1, 1.5, 2 ** 32, 17, lying, null]) {
      for (const store of [() => heap.setRef(n, bad as never, m), () => heap.setU32(n, bad as never, 1), () => heap.setF64(n, bad as never, 1), () => heap.setU8(n, bad as never, 1)]) {
        const e = thrown(store);
        expect(e, `${String(store)} with ${typeof bad}`).toBeInstanceOf(MoveGcError);
        codes.add(e.code);
      }
    }
    for (const v of [Symbol('v'), 10n, '1', 1.5, -(2 ** 32), 2 ** 32, lying, NaN]) {
      for (const store of [() => heap.setU32(n, 0, v as never), () => heap.setU8(n, 4, v as never), () => heap.setRef(n, 0, v as never)]) expect(thrown(store), `${String(store)} with ${String(v)}`).toBeInstanceOf(MoveGcError);
      if (typeof v !== 'number') expect(thrown(() => heap.setF64(n, 8, v as never))).toBeInstanceOf(MoveGcError);
    }
    expect([...codes].sort()).toEqual([ErrorCode.FIELD_RANGE, ErrorCode.INVALID_ARG_TYPE].sort());
    const st = (await heap.idle())!;
    expect(st.pages.builtBySelf).toBeLessThanOrEqual(2);
    expect(heap.getU32(n, 0)).toBe(u32Of(N - 1));
    expect(heap.getRef(n, 0)).toBe(null);
    expect(heap.getRef(n, 1)).toBe(g.nodes[N - 2].get());
    expect(heap.getF64(n, 8)).toBe((N - 1) * 1.25 - 7);
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});
