/**
 * The verifiers must be able to say no (issue 8: about 25 tests rely on heap.verify(), none
 * fed it a corrupted heap). Each test corrupts one thing in a real heap's memory (a header,
 * a reference, a filler, a root's object, a mark bit) and expects the verifier's named error.
 *
 *  - heap.verify() (gc/verify.ts verifyHeap): headers, sizes, references, roots;
 *  - verifyMarks (gc/verify.ts): the mark bitmaps (object starts, live words, closure) against
 *    the heap, computed here by the collector's own mark() over the heap's memory.
 *
 * Stop-the-world heaps: no kernel feature needed, these always run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Heap, viewOf, type Ref, type VerifyResult } from '../dist/gc/index.js';
import { TypeTable, FILLER_TYPE } from '../dist/gc/layout.js';
import { mark } from '../dist/gc/mark.js';
import { verifyMarks } from '../dist/gc/verify.js';

const heaps: Heap[] = [];
/** The first error of a failed verification. */
const first = (v: VerifyResult): string | undefined => (v.ok ? undefined : v.errors[0]);
afterEach(async () => {
  while (heaps.length) await heaps.pop()!.close();
});

/**
 * A small heap: a (root) -> b, c; c -> d; e and g are garbage; arr (a second root) holds
 * a and d; bytes is a byte array. Returns word indices and a raw u32 view of the heap.
 */
async function small() {
  const heap = await Heap.create({ capacity: 2 << 20, mode: 'stw' });
  heaps.push(heap);
  const Node = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
  const a = heap.alloc(Node);
  const b = heap.alloc(Node);
  const e = heap.alloc(Node); // garbage
  const c = heap.alloc(Node);
  const d = heap.alloc(Node);
  const g = heap.allocBytes(40); // garbage
  const arr = heap.allocRefArray(3);
  const bytes = heap.allocBytes(24);
  heap.setRef(a, 0, b);
  heap.setRef(a, 1, c);
  heap.setRef(c, 0, d);
  heap.setRef(arr, 0, a);
  heap.setRef(arr, 1, d);
  heap.setRef(arr, 2, bytes);
  heap.setU32(b, 8, 0xdeadbeef);
  heap.root(a);
  heap.root(arr);
  const u32 = new Uint32Array(viewOf(heap.address, heap.capacity)); // raw: the corruption tool
  const word = (r: Ref): number => (heap.addressOf(r) - heap.address) / 8;
  const top = heap.usedBytes / 8;
  const w = { a: word(a), b: word(b), c: word(c), d: word(d), e: word(e), g: word(g), arr: word(arr), bytes: word(bytes) };
  return { heap, u32, w, top };
}

describe('heap.verify() says no to a corrupted heap, naming the error', () => {
  it('a clean heap verifies: every object counted, no error', async () => {
    const { heap } = await small();
    const v = heap.verify();
    expect(v.errors).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.objects).toBe(8);
  });

  it('a header with a type id that does not exist', async () => {
    const { heap, u32, w } = await small();
    u32[w.e * 2] = 999;
    // The walk stops there: what lies beyond it is then named too (not object starts).
    expect(first(heap.verify())).toBe(`word ${w.e}: bad type id 999`);
  });

  it('a header whose array length runs past the allocation top', async () => {
    const { heap, u32, w, top } = await small();
    u32[w.g * 2 + 1] = 1_000_000; // byte array length
    const size = 1 + Math.ceil(1_000_000 / 8);
    expect(first(heap.verify())).toBe(`word ${w.g}: size ${size} runs past the top ${top}`);
  });

  it('a filler of size 0 (the header a walk cannot step over)', async () => {
    const { heap, u32, w } = await small();
    u32[w.e * 2] = FILLER_TYPE;
    u32[w.e * 2 + 1] = 0;
    expect(first(heap.verify())).toBe(`word ${w.e}: size 0: the walk cannot step over it`);
  });

  it('a filler written over a live object: its referrers and its root now point at no object', async () => {
    const { heap, u32, w } = await small();
    const size = w.d - w.c; // c's words exactly: the walk still parses
    u32[w.c * 2] = FILLER_TYPE;
    u32[w.c * 2 + 1] = size;
    const v = heap.verify();
    expect(v.ok).toBe(false);
    expect(v.errors).toEqual([`object ${w.a} slot 1: ${w.c} is not an object start`]);
    expect(v.fillers).toBe(1);
    // Over a root's object: the root is named.
    u32[w.a * 2] = FILLER_TYPE;
    u32[w.a * 2 + 1] = w.b - w.a;
    expect(heap.verify().errors).toEqual([`object ${w.arr} slot 0: ${w.a} is not an object start`, `root ${w.a} is not an object start`]);
  });

  it('a reference into the middle of an object, past the top, and at a garbage filler', async () => {
    const { heap, u32, w, top } = await small();
    u32[w.a * 2 + 2] = w.b + 1; // interior
    u32[w.c * 2 + 2] = top + 7; // outside the heap's objects
    u32[w.arr * 2 + 2 + 2] = w.g + 2; // inside a garbage byte array
    expect(heap.verify()).toMatchObject({
      ok: false,
      errors: [`object ${w.a} slot 0: ${w.b + 1} is not an object start`, `object ${w.c} slot 0: ${top + 7} is not an object start`, `object ${w.arr} slot 2: ${w.g + 2} is not an object start`],
    });
  });
});

describe('verifyMarks says no to corrupted mark bitmaps, naming the error', () => {
  /** The collector's mark over the heap's memory, with a type table built like the heap's. */
  async function marked() {
    const s = await small();
    const types = new TypeTable(TypeTable.allocate());
    types.define(3, 2, 16); // Node, the heap's first user type
    const words = s.heap.capacity / 8;
    const starts = new Uint32Array(words / 32);
    const live = new Uint32Array(words / 32);
    const roots = [s.w.a, s.w.arr];
    mark(s.u32, types.rows, 4, starts, live, s.top, roots);
    const check = () => verifyMarks(s.u32, types.rows, 4, s.top, roots, starts, live);
    const flip = (bits: Uint32Array, i: number) => (bits[i >>> 5] ^= 1 << (i & 31));
    return { ...s, starts, live, check, flip };
  }

  it('the bitmaps mark() computed verify', async () => {
    const { check } = await marked();
    expect(check()).toMatchObject({ ok: true, errors: [], objects: 8 });
  });

  it('a live-words bit set in a garbage object', async () => {
    const { check, flip, live, w } = await marked();
    flip(live, w.e + 1);
    expect(check()).toMatchObject({ ok: false, errors: [`live bit at word ${w.e + 1} outside any marked object`] });
  });

  it('a live-words bit clear inside a marked object', async () => {
    const { check, flip, live, w } = await marked();
    flip(live, w.b + 2);
    expect(check()).toMatchObject({ ok: false, errors: [`object ${w.b}: live bit clear at word ${w.b + 2}`] });
  });

  it('an object-start bit inside an object', async () => {
    const { check, flip, starts, w } = await marked();
    flip(starts, w.bytes + 1);
    expect(check()).toMatchObject({ ok: false, errors: [`start bit at word ${w.bytes + 1} is not an object start (inside object ${w.bytes})`] });
  });

  it('a reachable object left unmarked (marking not closed), and an unmarked root', async () => {
    const { check, flip, starts, w } = await marked();
    flip(starts, w.d);
    expect(check().errors).toEqual([`object ${w.c} slot 0: target ${w.d} is not marked`, `live bit at word ${w.d} outside any marked object`, `object ${w.arr} slot 1: target ${w.d} is not marked`]);
    flip(starts, w.d);
    flip(starts, w.a);
    expect(check().errors).toContain(`root ${w.a} is not marked`);
  });

  it('a mark bit above the allocation top', async () => {
    const { check, flip, live, top } = await marked();
    flip(live, top + 3);
    expect(check()).toMatchObject({ ok: false, errors: [`mark bit at word ${top + 3}, above the top ${top}`] });
  });
});
