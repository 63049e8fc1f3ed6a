/**
 * Heaps over 4 GiB (issue 10, item 4): the largest heap, MAX_CAPACITY (16 GiB less 2 MiB), with
 * objects near its top, where byte indices pass 2^34 and u32 indices approach 2^32. The heap's views
 * are made through V8 (Node-API stops at 4 GiB) and bytes go through a DataView (a Uint8Array
 * stops at 4 GiB). The garbage below the objects is byte arrays never written: the test's RSS
 * stays small. Every accessor kind reads and writes there; a collection slides the objects
 * below the 4 GiB line, and the values survive.
 */
import { describe, expect } from 'vitest';
import { MAX_CAPACITY, type Heap, type ModeName, type Ref } from '../dist/gc/index.js';
import { checkStats, closeHeapsAfterEach, itMode, openHeap, TEST_MODES } from './helpers/heap.js';

closeHeapsAfterEach();

const GiB = 2 ** 30;
const N = 2000;
const bytesOf = (i: number): Uint8Array => Uint8Array.from({ length: 40 + (i % 50) }, (_, k) => (i * 7 + k) & 0xff);

/** Every value of record i (u32, f64, u8, its byte array, its link) as written. */
function check(h: Heap, head: Ref): void {
  let x: Ref | null = head;
  for (let i = N - 1; i >= 0; i--) {
    expect(x, `record ${i}`).not.toBeNull();
    expect(h.getU32(x!, 0)).toBe(i);
    expect(h.getF64(x!, 8)).toBe(i + 0.5);
    expect(h.getU8(x!, 16)).toBe(i & 0xff);
    expect(h.readBytes(h.getRef(x!, 1)!, 0, 40 + (i % 50))).toEqual(bytesOf(i));
    x = h.getRef(x!, 0);
  }
  expect(x).toBeNull();
}

// Move and stw: copy's accessors and slide are move's (kept short for CI: 4.5 s a mode).
describe.each(TEST_MODES.filter((m) => m !== 'copy'))('a heap of MAX_CAPACITY (%s)', (mode: ModeName) => {
  itMode(mode, 'objects past the 4 GiB line: every accessor kind, then a collection slides them below it', async () => {
    expect(MAX_CAPACITY).toBe(16 * GiB - 2 ** 21);
    const h = await openHeap({ capacity: MAX_CAPACITY, mode });
    const T = h.defineType({ name: 'Rec', refs: 2, bytes: 24 }); // u32 @0, f64 @8, u8 @16
    // Garbage up to 64 MiB under the top (never written: no RSS), then the records.
    while (h.usedBytes < MAX_CAPACITY - 64 * 2 ** 20) h.allocBytes(Math.min(GiB, MAX_CAPACITY - 64 * 2 ** 20 - h.usedBytes));
    let head: Ref | null = null;
    for (let i = 0; i < N; i++) {
      const x = h.alloc(T);
      h.setU32(x, 0, i);
      h.setF64(x, 8, i + 0.5);
      h.setU8(x, 16, i & 0xff);
      const b = h.allocBytes(40 + (i % 50));
      h.writeBytes(b, 0, bytesOf(i));
      h.setRef(x, 1, b);
      h.setRef(x, 0, head);
      head = x;
    }
    const root = h.root(head);
    expect(h.addressOf(head!) - h.address).toBeGreaterThan(15.9 * GiB); // u32 index past 2^32 - 2^25
    check(h, root.get()!);
    const st = await h.gc();
    checkStats(st, mode);
    // Marked and planned concurrently. (At 16 GiB the marker's first fills of its tables took
    // longer than stallMs without a heartbeat under memory pressure: bits.ts fillBeating.)
    if (mode !== 'stw') expect([st.plan.inPause, st.takeovers, st.marking]).toEqual([false, 0, 'concurrent']);
    expect(st.reclaimedBytes).toBeGreaterThan(15.9 * GiB);
    expect(h.verify().ok).toBe(true);
    expect(h.addressOf(root.get()!) - h.address).toBeLessThan(2 ** 20);
    check(h, root.get()!);
    // And back up: allocation resumes above what slid, over the line again.
    while (h.usedBytes < 5 * GiB) h.allocBytes(GiB);
    const y = h.alloc(T);
    h.setF64(y, 8, -1.25);
    h.setRef(y, 0, root.get());
    expect(h.addressOf(y) - h.address).toBeGreaterThan(4 * GiB);
    expect(h.getF64(y, 8)).toBe(-1.25);
    check(h, h.getRef(y, 0)!);
  }, 120_000);
});
