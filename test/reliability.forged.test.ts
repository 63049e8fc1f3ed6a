/**
 * References forged to garbage. Between the marking pause and the flip, the epoch's
 * object-start bitmap still holds the objects marking found dead; a reference forged to one
 * (the current tag, a dead object's word) was taken there by root(), pin(), setRef() and
 * Root.set(): after the flip the root or slot named no object (ERR_HEAP_CORRUPT at every later
 * collection) or, silently, another live object (found by an audit). mutator.ts #word.
 */
import { describe, expect } from 'vitest';
import { ErrorCode, Heap } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { rejected, thrown } from './helpers/thrown.js';

const NODES = 3000;
/** A list of NODES nodes (node i holds i) under a root, 'N' nodes of one reference slot. */
function buildList(h: Heap) {
  const T = h.defineType({ name: 'N', refs: 1, bytes: 8 });
  const list = h.root(null);
  for (let i = 0; i < NODES; i++) {
    const n = h.alloc(T);
    h.setU32(n, 0, i);
    h.setRef(n, 0, list.get());
    list.set(n);
  }
  return { T, list };
}
/** Walks the list from `head` through the accessors (each reference checked by the heap): its length. */
function walk(h: Heap, head: number | null): number {
  let n = 0;
  for (let r = head; r !== null; r = h.getRef(r, 0)) expect(h.getU32(r, 0)).toBe(NODES - 1 - n++);
  return n;
}
/** Starts a cycle and returns while it marks, its marker held at its first object (until inject({})): live objects unmarked yet. */
async function untilMarking(h: Heap): Promise<void> {
  h.inject({ markDelayAtObject: 1, markDelayMs: 300 });
  h.requestCollection();
  while (h.cyclePhase === 'idle') {
    h.safepoint();
    await new Promise((r) => setImmediate(r));
  }
  expect(h.cyclePhase).toBe('marking');
}

describe.each(['move', 'copy'] as const)('a reference forged to an object marking found unreachable (%s)', (mode) => {
  for (const how of ['root', 'pin', 'setRef', 'Root.set'] as const) {
    itKernel(`${how}: refused with ERR_INVALID_REFERENCE while the cycle plans; the heap stays whole`, async () => {
      const h = await Heap.create({ capacity: 8 << 20, mode, stallMs: 100 });
      try {
        const T = h.defineType({ name: 'K', refs: 1, bytes: 8 });
        const keep = h.root(h.alloc(T));
        const dead = h.alloc(T); // never reachable
        const deadWord = (h.addressOf(dead) - h.address) / 8;
        const { list } = buildList(h);
        h.requestCollection();
        while (h.cyclePhase === 'marking') {
          h.safepoint();
          await new Promise((r) => setImmediate(r));
        }
        expect(h.cyclePhase).toBe('planning');
        const k = keep.get()!;
        const forged = k - (h.addressOf(k) - h.address) / 8 + deadWord; // the current tag, the dead object's word
        const call = {
          root: () => h.root(forged),
          pin: () => h.pin(forged),
          setRef: () => h.setRef(k, 0, forged),
          'Root.set': () => list.set(forged),
        }[how];
        const e = thrown(call);
        expect(e.code, String(e)).toBe(ErrorCode.INVALID_REFERENCE);
        // Live objects, and one allocated after the marking pause, are still taken.
        const fresh = h.alloc(T);
        h.setRef(k, 0, fresh);
        h.setRef(fresh, 0, list.get());
        await h.idle();
        expect(h.verify().errors).toEqual([]);
        expect(walk(h, h.getRef(h.getRef(keep.get()!, 0)!, 0))).toBe(NODES);
        await h.gc();
        expect(h.verify().errors).toEqual([]);
        // The next cycle's marking clears the mark bits: no live object may read as garbage then.
        await untilMarking(h);
        expect(walk(h, list.get())).toBe(NODES);
        h.inject({});
        await h.idle();
      } finally {
        await h.close();
      }
    });
  }

  itKernel('a cycle that fails in its compaction pause leaves no object refused: the next cycle marks them all', async () => {
    const h = await Heap.create({ capacity: 8 << 20, mode, stallMs: 100 });
    try {
      const { list } = buildList(h);
      h.inject({ pauseFailAtCall: 1 });
      expect((await rejected(() => h.collect())).code).toBe('ERR_INJECTED');
      h.inject({});
      expect(walk(h, list.get())).toBe(NODES);
      await untilMarking(h);
      expect(walk(h, list.get())).toBe(NODES);
      h.inject({});
      await h.idle();
      expect(h.verify().errors).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
