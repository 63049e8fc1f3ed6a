/**
 * Claims of the mutator's side (the heap's API and its guards: gc/heap.ts, mutator.ts, refs.ts, roots.ts,
 * barrier.ts, holes.ts) that a mutation audit found no test could fail on: for each, a
 * one-line change to the code survived the suite. Each test names the claim it holds and runs
 * real heaps on the real kernel.
 *
 * The first test must stay first in this file: it checks the first heap of the process (vitest
 * runs each file in a process of its own), the only one the accessors' warm-up runs on.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, viewOf, type Heap, type Ref, type Root } from '../dist/gc/index.js';
import { RefTags } from '../dist/gc/refs.js';
import { Ctl } from '../dist/gc/control.js';
import { FILLER_TYPE, TypeTable } from '../dist/gc/layout.js';
import { Tracer, mark } from '../dist/gc/mark.js';
import { verifyMarks } from '../dist/gc/verify.js';
import { freezeUnavailable, holdThread, tidOf } from './helpers/freeze.js';
import { defineTestTypes } from './helpers/graph.js';
import { closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { thrown } from './helpers/thrown.js';

closeHeapsAfterEach();

const MiB = 1 << 20;
const tagOf = (r: Ref): number => Math.floor(r / 2 ** 32);

/** Garbage below the objects a test keeps, so that a collection moves them. */
function garbage(heap: Heap, n: number): void {
  for (let i = 0; i < n; i++) heap.allocBytes(120);
}

describe('the accessors\' warm-up (warmUpAccessors)', () => {
  /**
   * Claim (gc/warmup.ts warmUpAccessors: "on two objects that are then taken back: ... the words they
   * used, their start bits, the top"; alloc: "its slots are null and its bytes zero"): the
   * first heap of a process hands out, at its first word, memory the warm-up wrote into (a
   * reference array whose slots held the byte array's word) as if it were never used: slots
   * null, bytes zero, and no object start left where the warm-up's second object began.
   */
  itMode('stw', 'the first heap of the process: its first objects are zeroed, and no warm-up start bit makes an interior reference pass', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const start = heap.usedBytes;
    // The warm-up's reference array took the first two words (its slots held the word of its
    // byte array, which started at the third): this byte array covers both.
    const bytes = heap.allocBytes(64);
    expect(heap.addressOf(bytes) - heap.address, 'at the first word, where the warm-up began').toBe(start);
    expect(Array.from(heap.readBytes(bytes, 0, 64))).toEqual(new Array(64).fill(0));
    for (const k of [1, 2, 3, 4]) expect(thrown(() => heap.typeOf(bytes + k)).code, `bytes + ${k}: inside it`).toBe(ErrorCode.INVALID_REFERENCE);
    const arr = heap.allocRefArray(2);
    expect([heap.getRef(arr, 0), heap.getRef(arr, 1)]).toEqual([null, null]);
    expect(heap.verify().ok).toBe(true);
  });
});

describe('raw accessors: alignment', () => {
  /**
   * Claim (gc/mutator.ts setU32 / setF64: "u32 at byte N is not 4-byte aligned", "f64 ... not
   * 8-byte aligned"; the hostile suite checks only the getters at unaligned offsets inside the
   * range): an unaligned store inside the object's raw bytes is refused (ERR_FIELD_RANGE) and
   * writes nothing (a typed array indexed by a fraction would drop it silently).
   */
  itMode('stw', 'setU32 and setF64 at an unaligned offset inside the raw bytes: ERR_FIELD_RANGE, nothing written', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const bytes = heap.allocBytes(24);
    for (const off of [1, 2, 3, 5, 6, 7]) {
      expect(thrown(() => heap.setU32(bytes, off, 0xffffffff)).code, `setU32 at ${off}`).toBe(ErrorCode.FIELD_RANGE);
    }
    for (const off of [1, 4, 12]) expect(thrown(() => heap.setF64(bytes, off, 1.5)).code, `setF64 at ${off}`).toBe(ErrorCode.FIELD_RANGE);
    expect(Array.from(heap.readBytes(bytes, 0, 24))).toEqual(new Array(24).fill(0));
  });
});

describe('roots and pins', () => {
  /**
   * Claim (gc/roots.ts Root.release: idempotent): a root released twice frees its slot once.
   * Were the slot freed twice, the next two roots would share it: setting one would overwrite
   * the other, and the object it held would be collected while "rooted".
   */
  itMode('stw', 'a root released twice frees its slot once: the next two roots keep their own objects', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const T = defineTestTypes(heap);
    const r = heap.root(heap.alloc(T.node));
    r.release();
    r.release();
    const a = heap.root(heap.alloc(T.node));
    const b = heap.root(heap.alloc(T.node));
    heap.setU32(a.get()!, 0, 111);
    heap.setU32(b.get()!, 0, 222);
    garbage(heap, 100);
    await heap.gc();
    expect(heap.getU32(a.get()!, 0)).toBe(111);
    expect(heap.getU32(b.get()!, 0)).toBe(222);
    expect(heap.verify().ok).toBe(true);
  });

  /**
   * Claim (gc/roots.ts RootTable: the table grows past its first 1024 slots): every one of
   * 3000 roots keeps its object across collections.
   */
  itMode('stw', '3000 roots (past the table\'s first 1024 slots) each keep their object', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const T = defineTestTypes(heap);
    const roots = [];
    for (let i = 0; i < 3000; i++) {
      const n = heap.alloc(T.node);
      heap.setU32(n, 0, i);
      roots.push(heap.root(n));
      heap.allocBytes(16);
    }
    await heap.gc();
    let bad = 0;
    for (let i = 0; i < roots.length; i++) if (heap.getU32(roots[i].get()!, 0) !== i) bad++;
    expect(bad).toBe(0);
  });

  /**
   * Claim (README: a Root is what keeps an object alive; `release`): a released root keeps
   * nothing: the object it held is collected (its bytes reclaimed).
   */
  itMode('stw', 'a released root keeps nothing alive: its object\'s bytes are reclaimed', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const big = heap.root(heap.allocBytes(256 * 1024));
    const small = heap.root(heap.allocBytes(8));
    await heap.gc();
    const kept = heap.usedBytes;
    big.release();
    const st = await heap.gc();
    expect(st.liveBytes).toBeLessThan(1024);
    expect(heap.usedBytes).toBeLessThan(kept - 256 * 1024);
    expect(heap.length(small.get()!)).toBe(8);
  });

  /**
   * Claim (gc/roots.ts: "the pin counts"; README: "keeps an object at its address ... until the
   * pin is released"): two pins on one object are counted; releasing one (twice: idempotent)
   * leaves the object pinned by the other, at its address across collections; releasing the
   * other lets it move.
   */
  for (const mode of ['move', 'stw'] as const) {
    itMode(mode, 'two pins on one object: releasing one (twice) keeps it pinned by the other', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode });
      const T = defineTestTypes(heap);
      garbage(heap, 2000);
      const n = heap.alloc(T.node);
      heap.setU32(n, 0, 77);
      const p1 = heap.pin(n);
      const p2 = heap.pin(n);
      const at = p1.address;
      p1.release();
      p1.release();
      garbage(heap, 10);
      await heap.gc();
      expect(p2.address).toBe(at);
      expect(heap.addressOf(p2.ref)).toBe(at);
      expect(heap.getU32(p2.ref, 0)).toBe(77);
      const keep = heap.root(p2.ref);
      p2.release();
      await heap.gc();
      expect(heap.addressOf(keep.get()!), 'released: it slides down over the garbage').toBeLessThan(at);
      expect(heap.getU32(keep.get()!, 0)).toBe(77);
    });
  }
});

describe('reference epochs', () => {
  /**
   * Claim (README: "a stale one throws ERR_STALE_REFERENCE (ERR_INVALID_REFERENCE once older
   * than the heap's last 64 epochs"): a stw cycle starts one epoch; a ref from 64 epochs ago
   * is still stale, from 65 invalid.
   */
  itMode('stw', 'a ref from 64 epochs ago is ERR_STALE_REFERENCE, from 65 ERR_INVALID_REFERENCE', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const T = defineTestTypes(heap);
    const keep = heap.root(heap.alloc(T.node));
    const old = keep.get()!;
    for (let i = 1; i <= 64; i++) await heap.gc();
    expect(tagOf(keep.get()!) - tagOf(old), 'one epoch per stw cycle').toBe(64);
    expect(thrown(() => heap.typeOf(old)).code).toBe(ErrorCode.STALE_REFERENCE);
    await heap.gc();
    expect(thrown(() => heap.typeOf(old)).code).toBe(ErrorCode.INVALID_REFERENCE);
  });

  /**
   * Claim (README, the pause contract: "A requested cycle whose pauses have not run yet runs
   * them here", idle()): a Ref held across idle() after requestCollection() is stale; one held
   * across idle() of a cycle already past its compaction pause is not.
   */
  for (const mode of ['move', 'copy'] as const)
    itMode(mode, 'idle() runs a requested cycle\'s pauses (a Ref held across it goes stale), and no pause once they ran', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode });
      const T = defineTestTypes(heap);
      garbage(heap, 4000);
      const keep = heap.root(heap.alloc(T.node));
      let held = keep.get()!;
      expect(heap.requestCollection()).toBe(true);
      const st = await heap.idle();
      expect(st?.pauses.map((p) => p.kind)).toContain('compaction');
      expect(thrown(() => heap.typeOf(held)).code).toBe(ErrorCode.STALE_REFERENCE);
      garbage(heap, 4000);
      await heap.collect(); // up to and through the compaction pause
      held = keep.get()!;
      await heap.idle();
      expect(heap.typeOf(held)).toBe(T.node);
    });

  /**
   * Claim (gc/refs.ts release(): "The heap is closed: its tags may be drawn again"): a closed
   * heap holds no tag; the thread's sequence, come around onto it, draws it for a new heap.
   */
  itMode('stw', 'a closed heap\'s tag is drawn again when the sequence comes around to it', async () => {
    const a = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const t = tagOf(a.allocBytes(8));
    await a.close();
    RefTags._drawAfter(t - 1);
    const b = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    expect(tagOf(b.allocBytes(8))).toBe(t);
  });
});

describe('the write barrier before the marker has cleared last cycle\'s marks', () => {
  const why = freezeUnavailable();
  if (why) console.warn(`[movegc] skipping the held-marker test: ${why}`);

  /**
   * Claim (gc/mutator.ts #shade: "Marked already: skip, but only once the marker has cleared the
   * last cycle's bits. The flag is read first: a bit read before it could be last cycle's"):
   * with the marker held (ptrace) so that it has not cleared its bitmaps yet, an object that
   * last cycle marked at the same word, held only in a local, stored into an object allocated
   * since marking began (black: its slots are never scanned), is logged and survives.
   */
  it.skipIf(why !== undefined)('a store made before the marker clears its bitmaps is logged though last cycle marked the object', async () => {
    const heap = await openHeap({ capacity: 8 * MiB, mode: 'move', marking: 'concurrent' });
    const T = defineTestTypes(heap);
    // No garbage: the first collection moves nothing, so x keeps its word and last cycle's start bit.
    const a = heap.root(heap.alloc(T.node));
    const x0 = heap.alloc(T.node);
    heap.setU32(x0, 0, 0xabcd);
    heap.setRef(a.get()!, 0, x0);
    for (let i = 0; i < 200; i++) heap.setRef(a.get()!, 1, heap.alloc(T.leaf)); // (garbage above x only)
    const at = heap.addressOf(x0);
    await heap.gc();
    const x = heap.getRef(a.get()!, 0)!;
    expect(heap.addressOf(x), 'x did not move').toBe(at);
    heap.setRef(a.get()!, 0, null); // x is now held by this local alone (no cycle: no barrier)
    const held = await holdThread(tidOf('movegc-marker'), 30);
    let holder: Root;
    try {
      expect(heap.requestCollection()).toBe(true);
      expect((heap._debugState().ctl as number[])[Ctl.MARK_CLEARED], 'the held marker has not cleared its bitmaps').toBe(0);
      const n = heap.alloc(T.node); // black: allocated since marking began
      holder = heap.root(n);
      heap.setRef(n, 0, x);
    } finally {
      held.release();
    }
    await held.gone();
    await heap.idle();
    const y = heap.getRef(holder.get()!, 0)!;
    expect(heap.typeOf(y)).toBe(T.node);
    expect(heap.getU32(y, 0)).toBe(0xabcd);
    expect(heap.verify().ok).toBe(true);
  }, 60_000);
});

describe('the write barrier\'s spill', () => {
  /**
   * Claim (gc/barrier.ts reset(): "Empties the log for a new marking"; the spill is "drained by
   * the marking pause"): what spilled in one cycle is not drained again in the next. 80000
   * stores with the marker stalled (the ring holds 65536) spill; once the objects they stored
   * are dropped, the next collection reclaims them all.
   */
  itMode('move', 'entries spilled in one cycle keep nothing alive in the next', async () => {
    const N = 80_000;
    const heap = await openHeap({ capacity: 16 * MiB, mode: 'move', marking: 'concurrent', stallMs: 60_000 });
    const X = heap.defineType({ name: 'X', refs: 0, bytes: 8 });
    const arr = heap.root(heap.allocRefArray(N));
    const xs = [];
    for (let i = 0; i < N; i++) xs.push(heap.alloc(X)); // reachable from nothing but this local
    heap.inject({ markLogDelayMs: 1000 });
    heap.requestCollection();
    for (const t0 = Date.now(); (heap._debugState().ctl as number[])[Ctl.MARK_CLEARED] !== 1; ) {
      if (Date.now() - t0 > 20_000) throw new Error('the marker did not clear its bitmaps in 20 s');
      await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 200));
    const a = arr.get()!;
    for (let i = 0; i < N; i++) heap.setRef(a, i, xs[i]); // every store is logged; the ring fills, the rest spills
    await heap.idle();
    heap.inject({});
    const first = heap.history[heap.history.length - 1];
    expect(first.liveBytes, 'all of them kept').toBeGreaterThanOrEqual(N * 16);
    arr.release(); // every X is garbage now
    const st = await heap.gc();
    expect(st.liveBytes, 'nothing kept by last cycle\'s spill').toBeLessThan(4096);
    expect(heap.verify().ok).toBe(true);
  }, 90_000);
});

describe('allocation into gaps below pins (holes.ts)', () => {
  /**
   * Claim (gc/holes.ts reset(): "each segment's tail, up to the next pinned span": the gaps
   * lie below pinned spans, and the top segment's tail is no gap: it is where the bump
   * allocator goes on). With no pin at all there is no gap: a heap filled to ERR_HEAP_FULL
   * after a collection that reclaimed garbage keeps every object it allocated intact (none is
   * handed out twice).
   */
  for (const mode of ['move', 'stw'] as const) {
    itMode(mode, 'with no pin, filling the heap after a collection hands out no word twice', async () => {
      const heap = await openHeap({ capacity: 4 * MiB, mode });
      const keep = heap.root(heap.allocBytes(64));
      for (let i = 0; i < 200; i++) heap.allocBytes(4088); // 800 KiB of garbage
      await heap.gc();
      const objs: Ref[] = [];
      for (;;) {
        let r: Ref;
        try {
          r = heap.allocBytes(1016);
        } catch (e) {
          expect((e as { code?: string }).code).toBe(ErrorCode.HEAP_FULL);
          break;
        }
        heap.setU32(r, 0, objs.length + 1);
        objs.push(r);
      }
      let bad = 0;
      for (let i = 0; i < objs.length; i++) if (heap.getU32(objs[i], 0) !== i + 1) bad++;
      expect(bad, `of ${objs.length} objects`).toBe(0);
      expect(heap.length(keep.get()!)).toBe(64);
      expect(heap.verify().ok).toBe(true);
    });
  }
  /**
   * Claim (gc/holes.ts take(): "Takes `words` ... from the first gap that holds them"): a gap
   * holds a request of exactly its size. With the top full, an object as large as the one gap
   * below a pin goes into it (the last word of the request is the gap's last word).
   */
  itMode('stw', 'a request exactly the size of the gap below a pin goes into it once the top is full', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw', largeObjectBytes: 0 });
    heap.root(heap.allocBytes(64));
    for (let i = 0; i < 200; i++) heap.allocBytes(4088);
    const pin = heap.pin(heap.allocBytes(64));
    const st = await heap.gc();
    expect(st.pinnedSpans).toBe(1);
    const gap = st.gapBytes;
    expect(gap, 'one gap, below the pin').toBeGreaterThan(512 * 1024);
    const below: Ref[] = [];
    for (let i = 0; ; i++) {
      let r: Ref;
      try {
        r = heap.allocBytes(gap - 8); // a header and gap - 8 bytes: gap / 8 words
      } catch (e) {
        expect((e as { code?: string }).code).toBe(ErrorCode.HEAP_FULL);
        break;
      }
      expect(i, 'the heap fills').toBeLessThan(20);
      if (heap.addressOf(r) < pin.address) below.push(r);
    }
    expect(below.length, 'the gap took one object of its exact size').toBe(1);
    expect(heap.addressOf(below[0]) + gap).toBeLessThanOrEqual(pin.address);
    expect(heap.verify().ok).toBe(true);
  });
});

describe('calls on a closing or closed heap', () => {
  /**
   * Claim (gc/mutator.ts #checkOpen: "For calls that start work: refused once close() was called,
   * even before it completes"; collect(): "close() called meanwhile means no cycle starts after
   * it (ERR_CLOSED)"): collect() and requestCollection() made right after close(), before it
   * has finished, are refused and start no cycle.
   */
  itMode('stw', 'collect() and requestCollection() right after close(), before it completes: ERR_CLOSED, no cycle', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    heap.root(heap.allocBytes(64));
    const closing = heap.close();
    expect(heap.closed, 'close() has not completed yet').toBe(false);
    expect(thrown(() => heap.requestCollection()).code).toBe(ErrorCode.CLOSED);
    const e = await heap.collect().then(() => null, (x: unknown) => x as { code?: string });
    expect(e?.code).toBe(ErrorCode.CLOSED);
    await closing;
    expect(heap.history.length, 'no cycle ran').toBe(0);
  });

  /**
   * Claim (README: every call refuses a closed heap with ERR_CLOSED; safepoint() runs "the
   * pause that is due"): safepoint() on a closed heap throws ERR_CLOSED instead of answering
   * that no pause ran.
   */
  /**
   * Claim (gc/heap.ts close(): "Finishes any active cycle"): with marking in the pause,
   * requestCollection() only asks the next safepoint for a cycle; until then none is active.
   * close() drops that request: it ran it (found by an audit: a whole mark-compaction pause
   * inside close(), for a heap about to be released; 256 MiB of live objects, stw: close()
   * 334 ms against 5 ms without the request, move: 294 against 14).
   */
  for (const mode of ['stw', 'move'] as const)
    itMode(mode, 'close() with a collection requested but not begun (marking in the pause): no cycle runs in close()', async () => {
      const heap = await openHeap({ capacity: 8 * MiB, mode, marking: 'pause' });
      heap.root(heap.allocRefArray(4));
      garbage(heap, 1000);
      expect(heap.requestCollection()).toBe(true);
      expect(heap.cycleActive, 'the request begins no cycle').toBe(false);
      await heap.close();
      expect(heap.history.length, 'close() ran the requested collection').toBe(0);
    });

  itMode('stw', 'safepoint() on a closed heap: ERR_CLOSED', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    await heap.close();
    expect(thrown(() => heap.safepoint()).code).toBe(ErrorCode.CLOSED);
  });
});

describe('the verifier and the top given back', () => {
  /**
   * Claim (gc/verify.ts: "checks that headers parse"): a header naming the first type id not
   * defined (the type count itself) is a bad type id, as any larger one is.
   */
  itMode('stw', 'verify(): a header whose type id is exactly the number of types is a bad type id', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const T = defineTestTypes(heap); // 3 built-in types and these 6: ids 0..8
    heap.root(heap.alloc(T.node));
    const victim = heap.alloc(T.leaf);
    const w = (heap.addressOf(victim) - heap.address) / 8;
    const u32 = new Uint32Array(viewOf(heap.address, heap.capacity)); // raw: the corruption tool
    const typeCount = T.empty.id + 1;
    u32[w * 2] = typeCount;
    const v = heap.verify();
    expect(v.ok).toBe(false);
    expect(v.errors[0]).toBe(`word ${w}: bad type id ${typeCount}`);
  });

  /**
   * Claim (gc/verify.ts verifyMarks: "Checks that each object-start bit is an object's first
   * word"): a start bit on the first word of a filler is an error (the builders would take the
   * filler for a live object); the other checks look only inside objects and at live bits.
   */
  itMode('stw', 'verifyMarks: a start bit on a filler\'s first word is an error', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const Node = heap.defineType({ name: 'Node', refs: 2, bytes: 16 }); // 4 words
    const a = heap.alloc(Node);
    const e = heap.alloc(Node);
    heap.alloc(Node);
    const word = (r: Ref): number => (heap.addressOf(r) - heap.address) / 8;
    const u32 = new Uint32Array(viewOf(heap.address, heap.capacity));
    const we = word(e);
    u32[we * 2] = FILLER_TYPE; // e becomes a filler of its 4 words
    u32[we * 2 + 1] = 4;
    const types = new TypeTable(TypeTable.allocate());
    types.define(Node.id, 2, 16);
    const top = heap.usedBytes / 8;
    const starts = new Uint32Array(heap.capacity / 8 / 32);
    const live = new Uint32Array(heap.capacity / 8 / 32);
    const roots = [word(a)];
    mark(u32, types.rows, Node.id + 1, starts, live, top, roots);
    expect(verifyMarks(u32, types.rows, Node.id + 1, top, roots, starts, live).ok).toBe(true);
    starts[we >>> 5] |= 1 << (we & 31);
    const v = verifyMarks(u32, types.rows, Node.id + 1, top, roots, starts, live);
    expect(v.errors).toEqual([`start bit at word ${we} is not an object start (filler)`]);
  });

  /**
   * Claim (gc/mark.ts Tracer.drain: "stopping inside a long object if need be"): a bounded
   * drain scans at most its budget of one long array's slots and resumes where it stopped, so
   * the marker's heartbeat never waits for a whole array (an audit: 2^25 slots in one step
   * took the marker for stalled every cycle).
   */
  itMode('stw', 'a bounded drain stops inside a long reference array and resumes there', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const Node = heap.defineType({ name: 'Node', refs: 0, bytes: 8 });
    const n = 100_000;
    const arr = heap.allocRefArray(n);
    const leaves = [0, n / 2, n - 1].map((i) => {
      const x = heap.alloc(Node);
      heap.setRef(arr, i, x);
      return x;
    });
    const word = (r: Ref): number => (heap.addressOf(r) - heap.address) / 8;
    const u32 = new Uint32Array(viewOf(heap.address, heap.capacity));
    const types = new TypeTable(TypeTable.allocate());
    types.define(Node.id, 0, 8);
    const top = heap.usedBytes / 8;
    const starts = new Uint32Array(heap.capacity / 8 / 32);
    const live = new Uint32Array(heap.capacity / 8 / 32);
    const marked = (r: Ref): boolean => (starts[word(r) >>> 5] & (1 << (word(r) & 31))) !== 0;
    const t = new Tracer(u32, types.rows, Node.id + 1, starts, live, top);
    t.visit(word(arr));
    expect(t.drain(1000)).toBe(false);
    expect(leaves.map(marked), 'one step of 1000 reached only the first slots').toEqual([true, false, false]);
    let steps = 1;
    while (!t.drain(1000)) steps++;
    expect(steps).toBeGreaterThanOrEqual(n / 1000);
    expect(leaves.map(marked)).toEqual([true, true, true]);
    expect(t.objects).toBe(4);
  });

  /**
   * Claim (gc/mark.ts Tracer.drain: "false when the budget ran out first (a stack the last
   * object emptied says true at the next call)"): the marker's loop drains again on false.
   */
  itMode('stw', 'a bounded drain whose budget runs out as its stack empties says false, and the next call true', async () => {
    const heap = await openHeap({ capacity: 4 * MiB, mode: 'stw' });
    const Node = heap.defineType({ name: 'Node', refs: 0, bytes: 8 });
    const xs = [heap.alloc(Node), heap.alloc(Node), heap.alloc(Node)];
    const u32 = new Uint32Array(viewOf(heap.address, heap.capacity));
    const types = new TypeTable(TypeTable.allocate());
    types.define(Node.id, 0, 8);
    const starts = new Uint32Array(heap.capacity / 8 / 32);
    const live = new Uint32Array(heap.capacity / 8 / 32);
    const t = new Tracer(u32, types.rows, Node.id + 1, starts, live, heap.usedBytes / 8);
    for (const x of xs) t.visit((heap.addressOf(x) - heap.address) / 8);
    expect(t.drain(3), 'three objects of no slots: the budget of 3 is spent').toBe(false);
    expect(t.objects).toBe(3);
    expect(t.drain(3)).toBe(true);
    expect(t.drain(Infinity)).toBe(true);
  });

  /**
   * Claim (gc/holes.ts giveBackTail: "the top goes back to where live data ends ...; what lay
   * above it, fillers only, is zeroed (allocation hands out zeroed memory)"): after a
   * collection of a heap whose garbage was all 0xff, objects allocated where the top went back
   * are zero.
   */
  for (const mode of ['move', 'stw'] as const) {
    itMode(mode, 'objects allocated where the top went back after a collection are zeroed', async () => {
      const heap = await openHeap({ capacity: 4 * MiB, mode });
      const keep: Ref[] = [];
      for (let i = 0; i < 300; i++) {
        const r = heap.allocBytes(1000);
        heap.writeBytes(r, 0, new Uint8Array(1000).fill(0xff));
        if (i % 3 === 0) keep.push(r);
      }
      const roots = keep.map((r) => heap.root(r));
      const before = heap.usedBytes;
      await heap.gc();
      expect(heap.usedBytes, 'the top went back').toBeLessThan(before / 2);
      let dirty = 0;
      for (let i = 0; i < 300; i++) {
        const r = heap.allocBytes(1000);
        if (!heap.readBytes(r, 0, 1000).every((b) => b === 0)) dirty++;
      }
      expect(dirty).toBe(0);
      expect(heap.readBytes(roots[0].get()!, 0, 4)).toEqual(new Uint8Array(4).fill(0xff));
    });
  }
});
