/**
 * A list option's length is read once, as a number (found by a hostile-tester audit: a Proxy
 * array whose length was an object passed the 64-entry check with valueOf() = 1, then made
 * the read loop run with valueOf() = 3e7: Heap.create stalled 14 s building the list).
 */
import { describe, expect, it } from 'vitest';
import { Heap, probe } from '../dist/gc/index.js';

function lyingList(): { list: unknown[]; calls: () => number } {
  let n = 0;
  const list = new Proxy([] as unknown[], {
    get(t, k, r) {
      if (k === 'length') return { valueOf: () => (n++ === 0 ? 1 : 1e6) };
      if (typeof k === 'string' && /^\d+$/.test(k)) return 'move';
      return Reflect.get(t, k, r) as unknown;
    },
  });
  return { list, calls: () => n };
}

describe('list options with a lying length', () => {
  it('probe({ hide }): refused with a code, the length coerced at most once', () => {
    const { list, calls } = lyingList();
    let e: { code?: string } | undefined;
    try {
      probe({ hide: list as never });
    } catch (x) {
      e = x as { code?: string };
    }
    expect(e?.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(calls()).toBeLessThanOrEqual(1);
  });
  it('Heap.create({ hide }): refused with a code, nothing read past the check', async () => {
    const { list, calls } = lyingList();
    await expect(Heap.create({ capacity: 4 << 20, hide: list as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(calls()).toBeLessThanOrEqual(1);
  });
});
