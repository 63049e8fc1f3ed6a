/**
 * References across collections: a ref held across a collection is rejected with a typed
 * error (ERR_STALE_REFERENCE) instead of silently reading whatever now lives at its old
 * address; a ref of another heap gives ERR_FOREIGN_REFERENCE; roots (and pins) stay valid
 * and read the same objects after every cycle.
 */
import { describe, expect } from 'vitest';
import { ErrorCode, MoveGcError, type Heap, type Ref } from '../dist/gc/index.js';
import { RefTags } from '../dist/gc/refs.js';
import { defineTestTypes } from './helpers/graph.js';
import { TEST_MODES, checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';

closeHeapsAfterEach();

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MoveGcError);
    return (e as MoveGcError).code;
  }
  return undefined;
}

/** Every accessor that takes a reference, applied to `r`. */
function uses(heap: Heap, r: Ref, other: Ref): Array<[string, () => unknown]> {
  return [
    ['typeOf', () => heap.typeOf(r)],
    ['getRef', () => heap.getRef(r, 0)],
    ['setRef (object)', () => heap.setRef(r, 0, null)],
    ['setRef (value)', () => heap.setRef(other, 0, r)],
    ['getU32', () => heap.getU32(r, 8)],
    ['setU32', () => heap.setU32(r, 8, 1)],
    ['readBytes', () => heap.readBytes(r, 0, 4)],
    ['refCount', () => heap.refCount(r)],
    ['length', () => heap.length(r)],
    ['addressOf', () => heap.addressOf(r)],
    ['root', () => heap.root(r)],
    ['pin', () => heap.pin(r)],
  ];
}

describe.each(TEST_MODES)('references across collections (%s)', (mode) => {
  itMode(mode, 'stale refs throw ERR_STALE_REFERENCE, foreign refs ERR_FOREIGN_REFERENCE, roots stay valid', async () => {
    const heap = await openHeap({ capacity: 4 << 20, mode });
    const other = await openHeap({ capacity: 2 << 20, mode });
    const T = defineTestTypes(heap);
    const TO = defineTestTypes(other);
    // Garbage first, so the live objects move and a stale ref's old address now holds
    // something else entirely.
    for (let i = 0; i < 2000; i++) heap.allocBytes(64);
    const a = heap.alloc(T.node);
    heap.setU32(a, 8, 0xaaaa);
    const b = heap.alloc(T.node);
    heap.setU32(b, 8, 0xbbbb);
    heap.setRef(a, 0, b);
    const ra = heap.root(a);
    for (let i = 0; i < 200; i++) heap.allocBytes(64); // keeps the pinned page away from a and b
    const pinnedObj = heap.alloc(T.node);
    heap.setU32(pinnedObj, 8, 0xcccc);
    const pin = heap.pin(pinnedObj);
    const foreign = other.alloc(TO.node);
    const oldAddr = heap.addressOf(a);

    // Before any collection a foreign ref is already foreign, both ways.
    for (const [what, fn] of uses(heap, foreign, a)) expect(codeOf(fn), what).toBe(ErrorCode.FOREIGN_REFERENCE);
    expect(codeOf(() => other.getRef(a, 0))).toBe(ErrorCode.FOREIGN_REFERENCE);

    for (let cycle = 0; cycle < 3; cycle++) {
      const st = await heap.gc();
      checkStats(st, mode);
      // Refs from before are stale, in every accessor (the pinned object's too: refs carry
      // the epoch, whether or not their object moved).
      for (const r of [a, b, pinnedObj])
        for (const [what, fn] of uses(heap, r, ra.get()!)) expect(codeOf(fn), `${what} after cycle ${cycle}`).toBe(ErrorCode.STALE_REFERENCE);
      const err = (() => {
        try {
          heap.getU32(a, 8);
        } catch (e) {
          return e as MoveGcError;
        }
        return undefined;
      })();
      expect(err?.message).toMatch(/Root/);
      // Foreign stays foreign (the other heap has not collected), and the other heap rejects ours.
      for (const [what, fn] of uses(heap, foreign, ra.get()!)) expect(codeOf(fn), what).toBe(ErrorCode.FOREIGN_REFERENCE);
      expect(codeOf(() => other.typeOf(ra.get()!))).toBe(ErrorCode.FOREIGN_REFERENCE);
      // Roots and pins give current refs to the same objects.
      const na = ra.get()!;
      expect(heap.getU32(na, 8)).toBe(0xaaaa);
      expect(heap.getU32(heap.getRef(na, 0)!, 8)).toBe(0xbbbb);
      expect(heap.getU32(pin.ref, 8)).toBe(0xcccc);
      expect(heap.addressOf(pin.ref)).toBe(pin.address);
      if (cycle === 0) expect(heap.addressOf(na)).toBeLessThan(oldAddr); // it did move
    }
    // A stale ref stays stale after more cycles (it is never mistaken for a fresh one).
    expect(codeOf(() => heap.typeOf(a))).toBe(ErrorCode.STALE_REFERENCE);
    // Not a reference at all.
    expect(codeOf(() => heap.typeOf(12345))).toBe(ErrorCode.INVALID_REFERENCE);
    expect(codeOf(() => heap.typeOf('x' as unknown as Ref))).toBe(ErrorCode.INVALID_ARG_TYPE);
    // The other heap collects: its old refs are stale there.
    await other.gc();
    expect(codeOf(() => other.typeOf(foreign))).toBe(ErrorCode.STALE_REFERENCE);
    pin.release();
    ra.release();
    expect(codeOf(() => ra.get())).toBe(ErrorCode.CLOSED);
  });

  itMode(mode, 'epoch tags come in turn from one sequence: a stale ref is never taken for a fresh one while the process has tags left', async () => {
    // Random tags (before) could recur once an epoch fell out of the remembered 64: about 1 in
    // 2^21 per epoch, a stale ref then read another object (an audit's reading). Drawn in turn,
    // a tag recurs only after 2^21 - 2 epochs of the process.
    const heap = await openHeap({ capacity: 4 << 20, mode });
    const T = defineTestTypes(heap);
    const keep = heap.root(heap.alloc(T.node));
    const first = keep.get()!;
    const tags: number[] = [];
    for (let i = 0; i < 40; i++) {
      heap.alloc(T.leaf); // something to collect
      await heap.gc();
      tags.push(Math.floor(keep.get()! / 2 ** 32));
      expect(codeOf(() => heap.typeOf(first))).not.toBeUndefined();
    }
    const steps = new Set(tags.slice(1).map((t, i) => t - tags[i]));
    expect(steps.size, `tags ${tags.join(' ')}`).toBe(1); // the same number of epochs per cycle
    expect([...steps][0]).toBeGreaterThan(0);
    expect(new Set(tags).size).toBe(tags.length);
  });

  itMode(mode, 'refs taken during the concurrent phase stay valid until the next collection', async () => {
    const heap = await openHeap({ capacity: 4 << 20, mode });
    const T = defineTestTypes(heap);
    for (let i = 0; i < 3000; i++) heap.allocBytes(100);
    const r = heap.root(heap.alloc(T.node));
    heap.setU32(r.get()!, 8, 7);
    await heap.collect();
    const during = r.get()!; // a ref of the new epoch, taken while compaction may still run
    const fresh = heap.alloc(T.node); // allocated during the concurrent phase
    heap.setRef(fresh, 0, during);
    await heap.idle();
    expect(heap.getU32(during, 8)).toBe(7); // idle() ends the cycle, not the epoch
    expect(heap.getRef(fresh, 0)).toBe(during);
    await heap.collect();
    expect(codeOf(() => heap.getU32(during, 8))).toBe(ErrorCode.STALE_REFERENCE);
    expect(codeOf(() => heap.typeOf(fresh))).toBe(ErrorCode.STALE_REFERENCE);
    expect(heap.getU32(r.get()!, 8)).toBe(7);
  });
});

describe('reference tags', () => {
  // Tags are random; a new one is never a tag another open heap holds (its current one, or one
  // of its stale epochs it still recognises): a Ref of that heap cannot pass for one of this
  // heap's. Math.random is made to offer the other heap's tags first.
  itMode('stw', 'a new tag is never one another open heap holds, current or stale', async () => {
    const a = await openHeap({ capacity: 4 << 20, mode: 'stw' });
    const T = defineTestTypes(a);
    const staleRef = a.alloc(T.node);
    await a.gc(); // staleRef's tag is now one of a's old ones
    const freshRef = a.alloc(T.node);
    const tagOf = (r: Ref): number => Math.floor(r / 2 ** 32);
    expect(tagOf(freshRef)).toBe(tagOf(staleRef) + 1); // one epoch per stw cycle, in turn
    // The thread's sequence comes around onto a's tags: both are skipped.
    RefTags._drawAfter(tagOf(staleRef) - 1);
    const b = await openHeap({ capacity: 4 << 20, mode: 'stw' });
    const bRef = b.alloc(defineTestTypes(b).node);
    expect(tagOf(bRef)).not.toBe(tagOf(freshRef));
    expect(tagOf(bRef)).not.toBe(tagOf(staleRef));
    expect(tagOf(bRef), 'the next tag no open heap holds').toBe(tagOf(freshRef) + 1);
    // So a's Refs, current or stale, are refused by b with a typed error (not read as b's objects).
    expect(codeOf(() => b.typeOf(freshRef))).toBe(ErrorCode.FOREIGN_REFERENCE);
    expect(codeOf(() => b.typeOf(staleRef))).toBe(ErrorCode.INVALID_REFERENCE);
  });
});
