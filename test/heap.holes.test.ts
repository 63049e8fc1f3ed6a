/**
 * The room a collection leaves to allocate (found by the numeric-edges audit): the top goes
 * back to where live data ends once the cycle's last page is built (the plan resumes
 * allocation a page higher while it builds), and the gaps compaction leaves below pinned
 * objects are allocated into when the top is full, between cycles only (holes.ts).
 */
import { describe, expect } from 'vitest';
import { ErrorCode, type Heap, type ModeName, type Ref, type Root } from '../dist/gc/index.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap, TEST_MODES } from './helpers/heap.js';
import { thrown } from './helpers/thrown.js';

closeHeapsAfterEach();
const MiB = 1 << 20;

/** Byte arrays of `n` bytes each, filled with `fill`, until `bytes` are used; none kept. */
function garbage(h: Heap, bytes: number, n = 4000, fill = 0xa5): void {
  for (let used = 0; used < bytes; used += n + 8) h.writeBytes(h.allocBytes(n), 0, new Uint8Array(n).fill(fill));
}

/** A rooted byte array of `n` bytes holding `tag` at each end. */
function tagged(h: Heap, n: number, tag: number): Root {
  const r = h.allocBytes(n);
  h.setU8(r, 0, tag);
  h.setU8(r, n - 1, tag);
  return h.root(r);
}
const tagOf = (h: Heap, r: Root, n: number): number[] => [h.getU8(r.get()!, 0), h.getU8(r.get()!, n - 1)];

describe.each(TEST_MODES)('room after a collection (%s)', (mode: ModeName) => {
  itMode(mode, 'the top goes back to where live data ends: an allocation that fit before a collection fits after it', async () => {
    const cap = 2 * MiB;
    const h = await openHeap({ capacity: cap, mode, largeObjectBytes: 0 });
    const n = cap - h.usedBytes - 1000 - 8 - 8;
    const live = tagged(h, n, 7); // live data up to 1000 bytes below the end
    const before = cap - h.usedBytes;
    for (let i = 0; i < 5; i++) {
      const st = await h.gc();
      checkStats(st, mode);
      expect(cap - h.usedBytes, `cycle ${st.cycle}`).toBe(before);
      expect(st.reclaimedBytes).toBe(0);
    }
    const r = h.allocBytes(500);
    expect(h.getU8(r, 499)).toBe(0);
    expect(tagOf(h, live, n)).toEqual([7, 7]);
    expect(h.verify().ok).toBe(true);
  });

  itMode(mode, 'a collection that frees nothing leaves the top where it was; freed garbage is all reclaimed', async () => {
    const h = await openHeap({ capacity: 4 * MiB, mode });
    const keep = tagged(h, 16, 3);
    const top0 = h.usedBytes;
    let st = await h.gc();
    checkStats(st, mode);
    expect(h.usedBytes).toBe(top0);
    expect(st.reclaimedBytes).toBe(0);
    garbage(h, 2 * MiB);
    const used = h.usedBytes;
    st = await h.gc();
    checkStats(st, mode);
    expect(h.usedBytes).toBe(top0);
    expect(st.reclaimedBytes).toBe(used - top0);
    expect(tagOf(h, keep, 16)).toEqual([3, 3]);
  });
});

describe.each(TEST_MODES)('room after a collection, dense prefix (%s)', (mode: ModeName) => {
  itMode(mode, 'live data ending inside the dense prefix: the top goes back to its last object, not to the page end', async () => {
    const h = await openHeap({ capacity: 4 * MiB, mode, largeObjectBytes: 0 });
    const keep: Root[] = [];
    // 64 pages, all live but the last 96 bytes of the last one; then garbage beyond.
    const target = 64 * 4096 - 96;
    while (h.usedBytes + 512 + 16 <= target) keep.push(tagged(h, 504, keep.length & 0xff));
    keep.push(tagged(h, target - h.usedBytes - 8, 0xee));
    const liveEnd = h.usedBytes;
    h.allocBytes(88); // the rest of the page (96 bytes): dead, the page stays identity (97% live)
    expect(h.usedBytes).toBe(64 * 4096);
    garbage(h, 3 * 4096);
    const st = await h.gc();
    checkStats(st, mode);
    expect(st.pages.identity).toBeGreaterThan(0);
    expect(h.usedBytes).toBe(liveEnd);
    expect(st.reclaimedBytes).toBe(st.usedBeforeBytes - liveEnd);
    expect(h.getU8(keep[keep.length - 1].get()!, 0)).toBe(0xee);
    expect(h.verify().ok).toBe(true);
  });
});

describe.each(TEST_MODES)('gaps below pinned objects (%s)', (mode: ModeName) => {
  itMode(mode, 'with a small pin near the top of a full heap, the garbage below it is allocated into, zeroed, and survives later cycles', async () => {
    const cap = 4 * MiB;
    const h = await openHeap({ capacity: cap, mode, largeObjectBytes: 8192 });
    const low = tagged(h, 100, 1);
    // Half of it live, all of it 0xff: the page builders' buffers hold stale bytes, and the
    // gap starts inside a built page.
    const half: Root[] = [];
    for (let i = 0; h.usedBytes < cap / 2; i++) {
      const r = h.allocBytes(3000 + (i % 7) * 13);
      h.writeBytes(r, 0, new Uint8Array(3000 + (i % 7) * 13).fill(0xff));
      if (i % 2 === 0) half.push(h.root(r));
    }
    garbage(h, cap / 2 - 64 * 1024, 4000, 0xff);
    const pinned = tagged(h, 88, 2);
    const pin = h.pin(pinned.get()!);
    const top0 = h.usedBytes;
    const st = await h.gc();
    checkStats(st, mode);
    expect(st.pinnedSpans).toBe(1);
    expect(h.usedBytes, 'the pinned object is the last: the top stays inside its page').toBe(top0);
    expect(st.gapBytes).toBeGreaterThan(cap / 2);
    expect(st.reclaimedBytes).toBeGreaterThan(cap / 2);
    const free = cap - h.usedBytes;
    expect(free).toBeLessThan(200 * 1024);
    // Far more than the top has room for: into the gap, zeroed, walkable.
    const objs: Array<[Root, number]> = [];
    const T = h.defineType({ name: 'Node', refs: 2, bytes: 8 });
    let prev: Ref | null = null;
    for (let i = 0; i < 200; i++) {
      const n = i % 3 === 0 ? 12000 : 3000; // 12000: large, starts on a page
      const r = h.allocBytes(n);
      if (n === 12000) expect((h.addressOf(r) - h.address) % 4096, 'a large object in a gap starts on a page').toBe(0);
      const b = h.readBytes(r, 0, n);
      expect(b.every((x) => x === 0), `object ${i} is zeroed`).toBe(true);
      h.setU8(r, 0, i & 0xff);
      h.setU8(r, n - 1, i & 0xff);
      objs.push([h.root(r), n]);
      const node = h.alloc(T);
      expect(h.getRef(node, 0)).toBe(null);
      h.setRef(node, 0, prev);
      h.setRef(node, 1, r);
      prev = node;
    }
    const chain = h.root(prev);
    expect(objs.reduce((a, [, n]) => a + n, 0)).toBeGreaterThan(10 * free); // most of it below the top
    expect(h.verify().ok).toBe(true);
    // The next cycles slide them like any other object.
    for (let c = 0; c < 2; c++) {
      checkStats(await h.gc(), mode);
      expect(h.verify().ok).toBe(true);
      objs.forEach(([r, n], i) => expect(tagOf(h, r, n), `object ${i}`).toEqual([i & 0xff, i & 0xff]));
      let k = 0;
      for (let node = chain.get(); node !== null; node = h.getRef(node, 0)) {
        const i = 199 - k++;
        expect(h.getU8(h.getRef(node, 1)!, 0)).toBe(i & 0xff);
      }
      expect(k).toBe(200);
    }
    expect(tagOf(h, low, 100)).toEqual([1, 1]);
    expect(tagOf(h, pinned, 88)).toEqual([2, 2]);
    for (const r of half) expect(h.getU8(r.get()!, 2999)).toBe(0xff);
    pin.release();
    checkStats(await h.gc(), mode);
    expect(h.verify().ok).toBe(true);
  });

  itMode(mode, 'while a cycle runs the gaps are withheld (an object below the black-allocation boundary would not be marked); after it, they are used', async () => {
    const cap = 4 * MiB;
    const h = await openHeap({ capacity: cap, mode });
    garbage(h, cap - 64 * 1024);
    const pinned = tagged(h, 88, 2);
    const pin = h.pin(pinned.get()!);
    checkStats(await h.gc(), mode);
    const big = 1 * MiB;
    h.requestCollection();
    const marking = h.cycleActive; // stw marks in its pause: no cycle runs until then
    expect(marking).toBe(mode !== 'stw');
    let during: Root | null = null;
    if (marking) {
      const e = thrown(() => h.allocBytes(big));
      expect(e.code).toBe(ErrorCode.HEAP_FULL);
      expect(e.message).not.toMatch(/gaps below pinned/);
    } else during = tagged(h, big, 9);
    await h.idle();
    during ??= tagged(h, big, 9);
    checkStats(await h.gc(), mode);
    checkStats(await h.gc(), mode);
    expect(h.verify().ok).toBe(true);
    expect(tagOf(h, during, big)).toEqual([9, 9]);
    expect(tagOf(h, pinned, 88)).toEqual([2, 2]);
    pin.release();
  });

  itMode(mode, 'a request larger than any gap says what the gaps hold, and leaves the heap intact', async () => {
    const cap = 4 * MiB;
    const h = await openHeap({ capacity: cap, mode });
    const pins = [];
    const keep: Root[] = [];
    for (let i = 0; i < 4; i++) {
      garbage(h, 900 * 1024);
      keep.push(tagged(h, 64, i));
      pins.push(h.pin(keep[i].get()!));
    }
    checkStats(await h.gc(), mode);
    const e = thrown(() => h.allocBytes(2 * MiB));
    expect(e.code).toBe(ErrorCode.HEAP_FULL);
    expect(e.message).toMatch(/and \d+ in gaps below pinned objects, none large enough/);
    expect(h.verify().ok).toBe(true);
    keep.forEach((r, i) => expect(tagOf(h, r, 64)).toEqual([i, i]));
    for (const p of pins) p.release();
  });
});
