/**
 * Idle-time compaction (Heap.idleCompact, gc/idle.ts): a loop with time to spare gives it to a
 * compacting cycle, and the mutator's thread builds and installs pages until the deadline,
 * those its roots reach first (breadth first), then from the heap's top down.
 *
 *  - arguments and states: a deadline that is not a number is a typed error and changes
 *    nothing; with no cycle, while marking, in stw, or with the deadline past, it does nothing
 *    and returns 0; after close it throws ERR_CLOSED.
 *  - the order: with the compactor asleep, short calls build what the roots reach first. The
 *    graph is laid out against address order (the nodes a root reaches first lie below a long
 *    tail another root holds, allocated last), so a walk from the top down, or in address
 *    order from the bottom, would not build the nodes first: reading them then meets no
 *    unbuilt page, while most of the tail is still unbuilt.
 *  - a long call builds every page (the walk, then the top-down rest), and the cycle's
 *    statistics say so; the heap verifies and every value reads back. Move and copy, and
 *    2 MiB spans (hugePages) built whole.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, MoveGcError, type Heap, type HeapType, type ModeName, type Root } from '../dist/gc/index.js';
import { closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { thrown } from './helpers/thrown.js';
import { MAX_SEEN } from '../dist/gc/idle.js';

closeHeapsAfterEach();

const NODES = 64;
const TAIL = 1500;
const NODE_BYTES = 4000; // a page each, in to-space too
const TAIL_BYTES = 3000;
/** The compactor sleeps before its first page for this long (stallMs is longer): only idle time builds. */
const ASLEEP = { stallMs: 30_000, inject: { delayAtPage: 1, delayMs: 2_500 } };

interface Graph {
  T: HeapType;
  first: Root;
  tail: Root;
}

/**
 * Root `first` holds an array of NODES nodes, each on a page of its own (garbage between), low
 * in the heap; root `tail` holds an array of TAIL byte arrays of TAIL_BYTES, allocated last
 * (the top of the heap). Every object carries a value derived from its index.
 */
function build(heap: Heap): Graph {
  const T = heap.defineType({ name: 'Node', refs: 1, bytes: NODE_BYTES });
  heap.allocBytes(4000);
  const first = heap.root(heap.allocRefArray(NODES));
  for (let i = 0; i < NODES; i++) {
    heap.allocBytes(4000); // garbage: every node slides, and sits on its own page
    const n = heap.alloc(T);
    heap.setU32(n, 0, 7000 + i);
    heap.setRef(first.get()!, i, n);
  }
  const tail = heap.root(heap.allocRefArray(TAIL));
  for (let i = 0; i < TAIL; i++) {
    heap.allocBytes(500);
    const b = heap.allocBytes(TAIL_BYTES);
    heap.setU32(b, 0, 9000 + i);
    heap.setU32(b, TAIL_BYTES - 4, 9000 + i);
    heap.setRef(tail.get()!, i, b);
  }
  return { T, first, tail };
}

function checkValues(heap: Heap, g: Graph): void {
  const a = g.first.get()!;
  for (let i = 0; i < NODES; i++) expect(heap.getU32(heap.getRef(a, i)!, 0)).toBe(7000 + i);
  const t = g.tail.get()!;
  for (let i = 0; i < TAIL; i++) {
    const b = heap.getRef(t, i)!;
    expect(heap.getU32(b, 0)).toBe(9000 + i);
    expect(heap.getU32(b, TAIL_BYTES - 4)).toBe(9000 + i);
  }
}

describe('idleCompact: arguments and states', () => {
  itMode('move', 'a deadline that is not a number is a typed error; no cycle, marking, a past deadline: 0; after close: ERR_CLOSED', async () => {
    const heap = await openHeap({ capacity: 8 << 20, mode: 'move', ...ASLEEP });
    const g = build(heap);
    for (const bad of [undefined, null, '100', NaN, {}, 10n, Symbol('x'), { valueOf: () => 1e12 }]) {
      const e = thrown(() => heap.idleCompact(bad as unknown as number));
      expect(e, String(typeof bad)).toBeInstanceOf(MoveGcError);
      expect(e.code).toBe(ErrorCode.INVALID_ARG_TYPE);
    }
    expect(heap.idleCompact(performance.now() + 1000)).toBe(0); // no cycle
    expect(heap.requestCollection()).toBe(true);
    expect(heap.cyclePhase).toBe('marking');
    expect(heap.idleCompact(performance.now() + 5)).toBe(0);
    while (heap.cyclePhase !== 'compacting') {
      heap.safepoint();
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(heap.idleCompact(performance.now() - 1)).toBe(0);
    expect(heap.idleCompact(-Infinity)).toBe(0);
    expect(heap.progress().pagesMapped).toBe(0); // the compactor sleeps; nothing built yet
    expect(heap.idleCompact(Infinity)).toBeGreaterThan(0); // and then everything (the next test)
    checkValues(heap, g);
    expect(heap.verify().ok).toBe(true);
    await heap.close();
    expect(thrown(() => heap.idleCompact(performance.now() + 1)).code).toBe(ErrorCode.CLOSED);
  });

  it('[stw] does nothing: the pause does all the compaction', async () => {
    const heap = await openHeap({ capacity: 8 << 20, mode: 'stw' });
    build(heap);
    heap.requestCollection();
    expect(heap.idleCompact(performance.now() + 50)).toBe(0);
    heap.safepoint();
    expect(heap.idleCompact(performance.now() + 50)).toBe(0);
    expect(heap.cycleActive).toBe(false);
  });
});

async function flipped(heap: Heap): Promise<void> {
  await heap.collect();
  expect(heap.cyclePhase).toBe('compacting');
}

describe.each(['move', 'copy'] as ModeName[])('idleCompact while compacting (%s)', (mode) => {
  itMode(mode, 'short calls build what the roots reach first, not the top of the heap nor its bottom', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode, ...ASLEEP });
    const g = build(heap);
    await flipped(heap);
    const total = heap.progress().pagesTotal;
    // Calls of 2 ms until the roots' arrays and the nodes are in (about 70 pages), then stop.
    let built = 0;
    for (let i = 0; i < 5000 && built < NODES + 16; i++) built += heap.idleCompact(performance.now() + 2);
    const ctx = `${built} of ${total} pages built in idle time`;
    expect(built, ctx).toBeGreaterThanOrEqual(NODES + 16);
    expect(built, ctx).toBeLessThan(total / 2);
    // An access of an unbuilt page: one that builds it, or a read served from from-space.
    const met = (): number => heap.progress().unbuiltTouches + heap.progress().unbuiltReads;
    const touched0 = met();
    const a = g.first.get()!;
    for (let i = 0; i < NODES; i++) expect(heap.getU32(heap.getRef(a, i)!, 0)).toBe(7000 + i);
    expect(met() - touched0, `${ctx}: the nodes met unbuilt pages`).toBe(0);
    // Most of the tail is still unbuilt: reading it stalls.
    const t = g.tail.get()!;
    for (let i = 0; i < TAIL; i++) expect(heap.getU32(heap.getRef(t, i)!, 0)).toBe(9000 + i);
    expect(met() - touched0, ctx).toBeGreaterThan(TAIL / 4);
    const st = (await heap.idle())!;
    expect(st.idle.pages).toBe(built);
    expect(st.idle.ms).toBeGreaterThan(0);
    expect(heap.verify().ok).toBe(true);
  });

  itMode(mode, 'a long call builds every page (the walk, then the top down); statistics, values and the verifier agree', async () => {
    const heap = await openHeap({ capacity: 16 << 20, mode, ...ASLEEP });
    const g = build(heap);
    for (let cycle = 0; cycle < 2; cycle++) {
      for (let i = 0; i < 200; i++) heap.allocBytes(3000); // garbage: the second cycle slides again
      await flipped(heap);
      const total = heap.progress().pagesTotal;
      const built = heap.idleCompact(performance.now() + 60_000);
      const p = heap.progress();
      expect(p.pagesMapped, `cycle ${cycle}: ${built} built`).toBe(total);
      expect(built).toBeGreaterThan(total / 2); // the rest: identity pages, and pages other threads had
      expect(heap.idleCompact(performance.now() + 1000)).toBe(0); // nothing left
      const touched0 = p.unbuiltTouches;
      checkValues(heap, g);
      expect(heap.progress().unbuiltTouches).toBe(touched0);
      const st = (await heap.idle())!;
      expect(st.idle.pages).toBe(built);
      expect(st.pages.builtByMutator).toBeGreaterThanOrEqual(built);
      expect(st.stalls.unbuiltTouches).toBe(0);
      expect(heap.verify().ok).toBe(true);
    }
  });
});

describe('idleCompact past what the walk may remember', () => {
  itMode('move', `more objects than MAX_SEEN (${MAX_SEEN}): the pages of those the walk could not note are built from the top down`, async () => {
    const heap = await openHeap({ capacity: 32 << 20, mode: 'move', ...ASLEEP });
    const g = build(heap);
    const many = heap.root(heap.allocRefArray(400));
    for (let i = 0; i < 400; i++) {
      const a = heap.allocRefArray(1000);
      heap.setRef(many.get()!, i, a);
      for (let j = 0; j < 1000; j++) heap.setRef(a, j, heap.allocBytes(8));
    }
    await flipped(heap);
    const total = heap.progress().pagesTotal;
    const built = heap.idleCompact(performance.now() + 60_000);
    expect(heap.progress().pagesMapped, `${built} of ${total} built`).toBe(total);
    await heap.idle();
    checkValues(heap, g);
    expect(heap.verify().ok).toBe(true);
  });
});

describe('idleCompact with 2 MiB spans (move, hugePages)', () => {
  itMode('move', 'builds whole spans and moves each in as one PMD', async () => {
    const heap = await openHeap({ capacity: 32 << 20, mode: 'move', hugePages: true, ...ASLEEP });
    const g = build(heap);
    for (let i = 0; i < 3000; i++) heap.setU32(heap.allocBytes(2000), 0, i); // more pages: several whole spans
    await flipped(heap);
    const total = heap.progress().pagesTotal;
    const built = heap.idleCompact(performance.now() + 60_000);
    expect(heap.progress().pagesMapped).toBe(total);
    const st = (await heap.idle())!;
    expect(st.idle.pages).toBe(built);
    expect(st.pages.pmdBuiltBySelf, JSON.stringify(st.pages)).toBeGreaterThanOrEqual(512);
    checkValues(heap, g);
    expect(heap.verify().ok).toBe(true);
  });
});

