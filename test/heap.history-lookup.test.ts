/**
 * gc() returns its own cycle's record even when the caller edited an earlier one (found by a
 * hostile-tester audit: gc() and idle() hand out the heap's own records, and gc() looked its
 * cycle up by their `cycle` field: a record renumbered by the caller was returned again, as
 * the statistics of a later cycle).
 */
import { expect, it } from 'vitest';
import { Heap } from '../dist/gc/index.js';

it('a record the caller renumbered is not returned for a later cycle', async () => {
  const h = await Heap.create({ capacity: 4 << 20 });
  try {
    const T = h.defineType({ name: 'N', refs: 1, bytes: 8 });
    const r = h.root(null);
    for (let i = 0; i < 2000; i++) {
      const x = h.alloc(T);
      h.setRef(x, 0, r.get());
      r.set(x);
    }
    const first = await h.gc();
    const n = first.cycle;
    (first as { cycle: number }).cycle = n + 1;
    const second = await h.gc();
    expect(second).not.toBe(first);
    expect(second.cycle).toBe(n + 1);
    expect(h.history.at(-1)).toBe(second);
  } finally {
    await h.close();
  }
});
