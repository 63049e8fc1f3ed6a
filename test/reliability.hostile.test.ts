/**
 * Hostile input at every public entry point of the Heap: wrong types, negative, fractional,
 * NaN, Infinity, huge sizes, a full heap, unknown types, out-of-range slots and byte offsets,
 * references from another heap, stale references, use after close, double close, roots and
 * pins used after release, concurrent collections. Each call gets a MoveGcError with a
 * `code`, and the heap verifies afterwards with its graph unchanged (checksum).
 *
 * The fuzz of the same entry points, and of the binding layer: reliability.fuzz.test.ts.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, Heap, MoveGcError, Pin, Root, type CycleStats, type HeapType, type ModeName, type Ref } from '../dist/gc/index.js';
import { buildGraph, checksum } from './fixtures/graph.mjs';
import { rejected, thrown } from './helpers/thrown.js';
import { BAD_NUMBERS, MODE, WRONG_TYPES } from './helpers/hostile.js';

type Any = any;

function expectCode(e: MoveGcError, code?: string): void {
  expect(e, String(e)).toBeInstanceOf(MoveGcError);
  expect(typeof e.code).toBe('string');
  if (code) expect(e.code, e.message).toBe(code);
}
/** The code for a bad index, offset or length: out of range if a number, else of the wrong type. */
const codeForIndex = (v: unknown): string => (typeof v === 'number' ? ErrorCode.FIELD_RANGE : ErrorCode.INVALID_ARG_TYPE);
const expectThrow = (fn: () => unknown, code?: string): void => expectCode(thrown(fn), code);


/** A Proxy already revoked: any trap, and Array.isArray, throws on it. */
function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('Heap.create options', () => {
  it('every bad option is refused with a code, leaking nothing', async () => {
    const cap = 4 << 20;
    const bad: Array<[unknown, string | null]> = [
      [undefined, ErrorCode.INVALID_ARG_TYPE], [null, ErrorCode.INVALID_ARG_TYPE], [5, ErrorCode.INVALID_ARG_TYPE], ['x', ErrorCode.INVALID_ARG_TYPE],
      ...['16', undefined, null, {}, 8n, true].map((c): [unknown, string] => [{ capacity: c }, ErrorCode.INVALID_ARG_TYPE]),
      ...[-(2 << 20), 0, 1.5, NaN, Infinity, -Infinity, 3 << 20, 4096, 2 ** 34, 2 ** 53, 1e300].map((c): [unknown, string] => [{ capacity: c }, ErrorCode.OUT_OF_RANGE]),
      [{ capacity: cap, mode: 'fast' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, mode: 5 }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, stallMs: '100' }, ErrorCode.INVALID_ARG_TYPE],
      ...[-1, 0, NaN, Infinity, 1e9].map((v): [unknown, string] => [{ capacity: cap, stallMs: v }, ErrorCode.OUT_OF_RANGE]),
      [{ capacity: cap, denseThreshold: '0.9' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, denseThreshold: NaN }, ErrorCode.OUT_OF_RANGE],
      [{ capacity: cap, denseThreshold: -0.1 }, ErrorCode.OUT_OF_RANGE],
      [{ capacity: cap, largeObjectBytes: '65536' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, largeObjectBytes: 65536n }, ErrorCode.INVALID_ARG_TYPE],
      ...[-1, 1.5, NaN, Infinity, cap + 8].map((v): [unknown, string] => [{ capacity: cap, largeObjectBytes: v }, ErrorCode.OUT_OF_RANGE]),
      [{ capacity: cap, dontFork: 'no' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, verify: 1 }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, hugePages: 'yes' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, hugePages: 1 }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, collectorPolicy: 'low' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, collectorPolicy: 19 }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, hide: 'move' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, hide: ['bogus'] }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, inject: 5 }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, inject: { bogus: 1 } }, ErrorCode.UNKNOWN_OPTION],
      [{ capacity: cap, inject: { dieAtPage: '3' } }, ErrorCode.INVALID_ARG_TYPE],
      ...[-1, 1.5, NaN, Infinity, 2 ** 31].map((v): [unknown, string] => [{ capacity: cap, inject: { eagainEvery: v } }, ErrorCode.OUT_OF_RANGE]),
      // Sleeps of the mutator's own thread inside a heap call are bounded (10 s).
      [{ capacity: cap, inject: { flipGapMs: 10_001 } }, ErrorCode.OUT_OF_RANGE], [{ capacity: cap, inject: { markHandGapMs: 2 ** 31 - 1 } }, ErrorCode.OUT_OF_RANGE],
      // readHoldMs sleeps inside a read accessor (unbuilt-reads.ts): a third audit held one 24 days.
      [{ capacity: cap, inject: { readHoldMs: 10_001 } }, ErrorCode.OUT_OF_RANGE], [{ capacity: cap, inject: { readHoldMs: 2 ** 31 - 1 } }, ErrorCode.OUT_OF_RANGE],
      [{ capacity: cap, faultInstall: 'fast' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, faultInstall: 1 }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, builder: 'fast' }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, builder: 1 }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, logger: {} }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, logger: 'console' }, ErrorCode.INVALID_ARG_TYPE],
      // Lying containers: read through a throwing trap, getter or iterator.
      [{ capacity: cap, hide: new Proxy([], { get: (t, k) => { if (k === 'length') throw new Error('boom'); return Reflect.get(t, k); } }) }, ErrorCode.INVALID_ARG_TYPE],
      [{ capacity: cap, hide: Object.defineProperty(['uffd'], 0, { get(): never { throw new Error('boom'); } }) }, ErrorCode.INVALID_ARG_TYPE],
      // A revoked Proxy: Array.isArray itself throws on it.
      [revoked(), ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, inject: revoked() }, ErrorCode.INVALID_ARG_TYPE], [{ capacity: cap, hide: revoked() }, ErrorCode.INVALID_ARG_TYPE],
      // Lists are read by index up to their length, bounded: never through an iterator that need not end.
      [{ capacity: cap, hide: Object.assign([], { *[Symbol.iterator]() { for (;;) yield 'uffd'; } }) }, null],
      [{ capacity: cap, hide: Object.assign([], { length: 2 ** 32 - 1 }) }, ErrorCode.OUT_OF_RANGE],
      [{ capacity: cap, hide: [Object.create(null)] }, ErrorCode.INVALID_ARG_TYPE], // named in the message: must not be String()ed
      [{ capacity: cap, logger: { debug() {}, get info(): never { throw new Error('boom'); }, warn() {}, error() {} } }, ErrorCode.INVALID_ARG_TYPE],
    ];
    const fds = fdCount();
    for (const [opts, code] of bad) {
      if (code === null) {
        await (await Heap.create({ mode: MODE, ...(opts as Any) })).close(); // read as [] (length 0), not iterated
        continue;
      }
      const e = await rejected(() => Heap.create(opts as Any));
      expectCode(e, code);
    }
    expect(fdCount()).toBe(fds);
    // Sanity: the same call with good options works.
    const h = await Heap.create({ capacity: cap, mode: MODE, stallMs: 100 });
    await h.close();
  });
});

describe('a logger that throws', () => {
  // The collector logs inside pauses, at the end of cycles and in close(): a caller's logger
  // that throws there must not leave a cycle half done (stw: the heap emptied by the pause's
  // remap and never rebuilt), a heap that cannot be closed, or a create that leaks its heap.
  const modes: ModeName[] = MODE === 'stw' ? ['stw'] : [MODE, 'stw'];
  for (const mode of modes)
    it(`${mode}: every log call throws or rejects; create, collections and close work, nothing leaks`, async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown): void => void unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      const fds = fdCount();
      const boom = (): never => {
        throw new Error('logger down');
      };
      // Sync throws for debug and warn, rejected promises (an async logger) for info and error.
      const rejects = async (): Promise<never> => {
        throw new Error('async logger down');
      };
      const logger = { debug: boom, info: rejects, warn: boom, error: rejects };
      const h = await Heap.create({ capacity: 8 << 20, mode, stallMs: 100, logger: logger as Any });
      const g = buildGraph(h, { nodes: 3000, garbage: 0.5, seed: 11 });
      const sum = checksum(h, g.root.get());
      for (let i = 0; i < 3; i++) {
        await h.collect();
        await h.idle();
        expect(checksum(h, g.root.get())).toBe(sum);
      }
      expect(h.history.length).toBe(3);
      expect(h.verify().ok).toBe(true);
      await h.close();
      expect(h.closed).toBe(true);
      expect(fdCount()).toBe(fds);
      await new Promise((r) => setTimeout(r, 20)); // unhandled rejections are reported after a turn
      process.off('unhandledRejection', onUnhandled);
      expect(unhandled).toEqual([]);
    });
});

describe('Heap entry points', () => {
  let heap: Heap;
  let other: Heap;
  let T: HeapType;
  let root: ReturnType<typeof buildGraph>['root'];
  let sum: string;
  let foreignRef: Ref;
  let stale: Ref;

  beforeAll(async () => {
    heap = await Heap.create({ capacity: 8 << 20, mode: MODE, stallMs: 100 });
    other = await Heap.create({ capacity: 4 << 20, mode: 'stw' });
    const g = buildGraph(heap, { nodes: 3000, garbage: 0.5, seed: 3 });
    root = g.root;
    T = g.type;
    stale = heap.getRef(root.get()!, 0)!;
    await heap.gc(); // `stale` is from before this collection
    sum = checksum(heap, root.get());
    const OT = other.defineType({ name: 'Node', refs: 2, bytes: 16 });
    foreignRef = other.alloc(OT);
  });
  afterAll(async () => {
    await heap?.close();
    await other?.close();
  });

  /** After each group: nothing changed. */
  function unchanged(): void {
    const v = heap.verify();
    expect(v.errors).toEqual([]);
    expect(v.ok).toBe(true);
    expect(checksum(heap, root.get())).toBe(sum);
  }
  const node = (): Ref => heap.getRef(root.get()!, 7)!;

  it('bad references everywhere a reference is taken', () => {
    const n = node();
    const w = (heap.addressOf(n) - heap.address) / 8;
    const tagBase = n - w;
    const topWord = heap.usedBytes / 8;
    const badRefs: Array<[unknown, string]> = [
      ...WRONG_TYPES.filter((v) => v !== null).map((v): [unknown, string] => [v, ErrorCode.INVALID_ARG_TYPE]),
      // (n + 0.5 is not representable when the heap's tag puts n above 2^52: it rounds to n.)
      ...[NaN, Infinity, -Infinity, -1, 0.5, n + 0.5 !== n ? n + 0.5 : 1.5, 2 ** 60, 12345].map((v): [unknown, string] => [v, ErrorCode.INVALID_REFERENCE]),
      [tagBase, ErrorCode.INVALID_REFERENCE], // word 0: the reserved null word
      [tagBase + topWord, ErrorCode.INVALID_REFERENCE], // at the allocation top
      [tagBase + topWord + 1000, ErrorCode.INVALID_REFERENCE],
      [foreignRef, ErrorCode.FOREIGN_REFERENCE],
      [stale, ErrorCode.STALE_REFERENCE],
    ];
    const takers: Array<(r: Any) => unknown> = [
      (r) => heap.typeOf(r), (r) => heap.refCount(r), (r) => heap.length(r), (r) => heap.addressOf(r),
      (r) => heap.getRef(r, 0), (r) => heap.setRef(r, 0, null), (r) => heap.getU32(r, 0), (r) => heap.setU32(r, 0, 1),
      (r) => heap.getF64(r, 8), (r) => heap.setF64(r, 8, 1), (r) => heap.getU8(r, 0), (r) => heap.setU8(r, 0, 1),
      (r) => heap.readBytes(r, 0, 4), (r) => heap.writeBytes(r, 0, new Uint8Array(4)), (r) => heap.pin(r),
      (r) => heap.setRef(n, 0, r),
      // @ts-expect-error root('') is a deliberately bad argument (a string): the test checks the runtime error
      (r) => (r === undefined ? heap.root('') : heap.root(r)),
      (r) => root.set(r),
    ];
    // (heap.root() without an argument is a null root; null is a valid value for the last three.)
    takers.forEach((take, i) => {
      for (const [r, code] of badRefs) {
        let e: MoveGcError;
        try {
          e = thrown(() => take(r));
        } catch (x) {
          throw new Error(`taker ${i}, ${typeof r === 'symbol' ? 'Symbol' : String(r)}: ${(x as Error).message}`);
        }
        expect(e, `taker ${i}, ${typeof r === 'symbol' ? 'Symbol' : String(r)}`).toBeInstanceOf(MoveGcError);
        expect(e.code, `taker ${i}, ${typeof r === 'symbol' ? 'Symbol' : String(r)}: ${e.message}`).toBe(code);
      }
    });
    for (const take of takers.slice(0, 15)) expectThrow(() => take(null), ErrorCode.INVALID_ARG_TYPE);
    unchanged();
  });

  it('slot indexes and byte offsets out of range, values that do not fit', () => {
    const n = node();
    const arr = root.get()!;
    const bytes = heap.allocBytes(10);
    // A number out of range: ERR_FIELD_RANGE; anything else: ERR_INVALID_ARG_TYPE, as for values.
    for (const i of [-1, 2, 3, 0.5, NaN, Infinity, '0', null, undefined, 2 ** 32]) {
      expectThrow(() => heap.getRef(n, i as Any), codeForIndex(i));
      expectThrow(() => heap.setRef(n, i as Any, null), codeForIndex(i));
    }
    expectThrow(() => heap.getRef(arr, heap.length(arr)), ErrorCode.FIELD_RANGE);
    expectThrow(() => heap.getRef(bytes, 0), ErrorCode.FIELD_RANGE); // byte arrays have no slots
    for (const off of [-1, -4, 16, 17, 2 ** 31, 0.5, NaN, Infinity, '0', null]) {
      expectThrow(() => heap.getU32(n, off as Any), codeForIndex(off));
      expectThrow(() => heap.setU32(n, off as Any, 1), codeForIndex(off));
      expectThrow(() => heap.getU8(n, off as Any), codeForIndex(off));
      expectThrow(() => heap.getF64(n, off as Any), codeForIndex(off));
      expectThrow(() => heap.readBytes(n, off as Any, 1), codeForIndex(off));
    }
    expectThrow(() => heap.getU32(n, 2), ErrorCode.FIELD_RANGE); // unaligned
    expectThrow(() => heap.getF64(n, 4), ErrorCode.FIELD_RANGE);
    expectThrow(() => heap.getF64(n, 12), ErrorCode.FIELD_RANGE); // runs past the 16 bytes
    expectThrow(() => heap.getU8(bytes, 10), ErrorCode.FIELD_RANGE);
    expectThrow(() => heap.readBytes(bytes, 0, 11), ErrorCode.FIELD_RANGE);
    expectThrow(() => heap.readBytes(bytes, 5, 6), ErrorCode.FIELD_RANGE);
    for (const len of [-1, 0.5, NaN, Infinity, '1']) expectThrow(() => heap.readBytes(bytes, 0, len as Any), codeForIndex(len));
    expectThrow(() => heap.writeBytes(bytes, 5, new Uint8Array(6)), ErrorCode.FIELD_RANGE);
    for (const d of [[1, 2], 'ab', null, new Uint16Array(2), new ArrayBuffer(2)]) expectThrow(() => heap.writeBytes(bytes, 0, d as Any), ErrorCode.INVALID_ARG_TYPE);
    expectThrow(() => heap.getU8(arr, 0), ErrorCode.FIELD_RANGE); // reference arrays have no raw bytes
    // Values: wrong type, or an integer that does not fit.
    for (const v of ['1', null, undefined, {}, 1n]) {
      expectThrow(() => heap.setU8(bytes, 0, v as Any), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.setU32(n, 0, v as Any), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.setF64(n, 8, v as Any), ErrorCode.INVALID_ARG_TYPE);
    }
    for (const v of [256, -129, 0.5, NaN, Infinity]) expectThrow(() => heap.setU8(bytes, 0, v), ErrorCode.OUT_OF_RANGE);
    for (const v of [2 ** 32, -(2 ** 31) - 1, 1.5, NaN, -Infinity]) expectThrow(() => heap.setU32(n, 0, v), ErrorCode.OUT_OF_RANGE);
    // ...and none of it wrote anything.
    expect(Array.from(heap.readBytes(bytes, 0, 10))).toEqual(new Array(10).fill(0));
    // Values that fit are stored (negative integers wrap, as typed arrays do).
    heap.setU8(bytes, 1, -1);
    expect(heap.getU8(bytes, 1)).toBe(255);
    unchanged();
  });

  it('types: bad specs, duplicates, unknown names, types of another heap or built-in kinds', () => {
    const specs: Array<[unknown, string]> = [
      [undefined, ErrorCode.INVALID_ARG_TYPE], [null, ErrorCode.INVALID_ARG_TYPE], ['Node', ErrorCode.INVALID_ARG_TYPE],
      [{ name: '', refs: 0, bytes: 0 }, ErrorCode.INVALID_ARG_TYPE], [{ name: 5, refs: 0, bytes: 0 }, ErrorCode.INVALID_ARG_TYPE],
      ...WRONG_TYPES.map((v): [unknown, string] => [{ name: 'A', refs: v, bytes: 0 }, ErrorCode.INVALID_ARG_TYPE]),
      ...WRONG_TYPES.map((v): [unknown, string] => [{ name: 'A', refs: 0, bytes: v }, ErrorCode.INVALID_ARG_TYPE]),
      ...BAD_NUMBERS.map((v): [unknown, string] => [{ name: 'A', refs: v, bytes: 0 }, ErrorCode.OUT_OF_RANGE]),
      ...BAD_NUMBERS.map((v): [unknown, string] => [{ name: 'A', refs: 0, bytes: v }, ErrorCode.OUT_OF_RANGE]),
      [{ name: 'A', refs: 2 ** 20 + 1, bytes: 0 }, ErrorCode.OUT_OF_RANGE],
      [{ name: 'Node', refs: 2, bytes: 16 }, ErrorCode.OUT_OF_RANGE], // already defined
    ];
    for (const [s, code] of specs) expectThrow(() => heap.defineType(s as Any), code);
    expect(() => heap.type('A')).toThrow(expect.objectContaining({ code: ErrorCode.UNKNOWN_TYPE }));
    for (const name of ['Nope', 5, undefined, null, {}, 'RefArray', '(filler)']) expectThrow(() => heap.type(name as Any), ErrorCode.UNKNOWN_TYPE);
    const foreignType = other.type('Node');
    const builtins = [heap.typeOf(root.get()!), heap.typeOf(heap.allocBytes(1))]; // RefArray, ByteArray
    for (const t of [undefined, null, 3, 'Node', { id: T.id, name: 'Node', refs: 2, bytes: 16, kind: 1 }, foreignType, ...builtins])
      expectThrow(() => heap.alloc(t as Any), ErrorCode.UNKNOWN_TYPE);
    unchanged();
  });

  it('a type whose id or kind is made a lying getter cannot allocate one type sized as another', () => {
    // Found by an audit: alloc() read type.id three times (its check, the size, the header). A
    // getter answering the type's own id to the check and a smaller type's to the size put a
    // 33-word header on 2 words: verify() failed ('size 33 runs past the top') and the object's
    // slots reached over the next objects. A heap's types are frozen now: the lie is refused.
    const small = heap.defineType({ name: 'LieSmall', refs: 1, bytes: 0 });
    const big = heap.defineType({ name: 'LieBig', refs: 64, bytes: 0 });
    const builtin = heap.typeOf(heap.allocRefArray(1));
    const bigId = big.id;
    let reads = 0;
    const lies: Array<[HeapType, string, () => number]> = [
      [big, 'id', () => (reads++ === 1 ? small.id : bigId)], // checked as LieBig, sized as LieSmall, tagged LieBig
      [builtin, 'kind', () => small.kind], // a reference array passed off as a declared type
    ];
    for (const [type, key, get] of lies) {
      try {
        Object.defineProperty(type, key, { get });
      } catch {
        /* refused: the type is frozen */
      }
      let r: Ref | undefined;
      try {
        r = heap.alloc(type);
      } catch (e) {
        expectCode(e as MoveGcError);
      }
      if (r !== undefined) heap.setRef(r, heap.refCount(r) - 1, null); // its last slot is its own
      expect(heap.verify().errors).toEqual([]);
    }
    expect([big.id, builtin.kind]).toEqual([bigId, heap.typeOf(heap.allocRefArray(1)).kind]);
    unchanged();
  });

  it('a statistics record the caller freezes does not break the end of its cycle', async () => {
    // Found by an audit: collect() returned the record the end of its cycle still writes
    // (compaction figures, RSS, who released from-space). Frozen by the caller, that end threw
    // halfway: idle() rejected ERR_INTERNAL ('Cannot assign to read only property
    // fromSpaceReleasedBy') and the cycle never reached the history.
    for (let i = 0; i < 3000; i++) heap.allocBytes(64); // garbage: the cycle has pages to compact
    const before = heap.history.length;
    const st = await heap.collect();
    for (const o of [st, st.rss, st.pages, st.pause]) Object.freeze(o);
    const end = await heap.idle();
    expect(end?.cycle).toBe(st.cycle);
    expect(heap.history.map((s) => s.cycle)).toContain(st.cycle);
    expect(heap.history.length).toBe(before + 1);
    unchanged();
  });

  it('heap.history frozen or cleared by the caller: later cycles still end and are recorded', async () => {
    // Found by an audit: heap.history was the heap's own array. Frozen by the caller, every
    // later cycle's end threw ('Cannot add property 1, object is not extensible': gc() rejected
    // ERR_INTERNAL, dead threads were not replaced, nothing was recorded); cleared, it lost the
    // records the heap reads (progress(), gc()'s lookup of its cycle).
    const before = heap.history.length;
    Object.freeze(heap.history);
    const a = await heap.gc();
    const cleared = heap.history as CycleStats[];
    cleared.length = 0;
    const b = await heap.gc();
    expect(heap.history.slice(-2).map((s) => s.cycle)).toEqual([a.cycle, b.cycle]);
    expect(heap.history.length).toBe(before + 2);
    expect(heap.progress().cycle).toBe(b.cycle);
    sum = checksum(heap, root.get());
    unchanged();
  });

  it('what the heap saw at creation (capabilities, fallbacks) cannot be edited to say otherwise', () => {
    // Plain records handed out once: an edit used to succeed silently, so heap.capabilities
    // could say MOVE was missing on a heap running in move mode.
    expect(() => ((heap.capabilities.move as { ok: boolean }).ok = !heap.capabilities.move.ok)).toThrow(TypeError);
    expect(() => (heap.capabilities.features as string[]).push('FORGED')).toThrow(TypeError);
    expect(() => (heap.fallbacks as string[]).push('forged')).toThrow(TypeError);
    expect(heap.capabilities.features).not.toContain('FORGED');
    expect(heap.fallbacks).not.toContain('forged');
    unchanged();
  });

  it('lying objects where a message would name the value: no primitive form, throwing traps, detached views', () => {
    const n = node();
    const bytes = heap.allocBytes(16);
    const noPrimitive = Object.create(null);
    const throwsOnPrimitive = { [Symbol.toPrimitive]: (): never => { throw new Error('boom'); } };
    const trap = new Proxy({}, { get: (): never => { throw new Error('boom'); }, getPrototypeOf: (): never => { throw new Error('boom'); } });
    for (const v of [noPrimitive, throwsOnPrimitive, trap]) {
      expectThrow(() => heap.getRef(n, v as Any), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.setRef(n, v as Any, null), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.getU32(n, v as Any), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.readBytes(bytes, 0, v as Any), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.readBytes(bytes, v as Any, 1), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => heap.type(v as Any), ErrorCode.UNKNOWN_TYPE);
      expectThrow(() => heap.alloc(v as Any), ErrorCode.UNKNOWN_TYPE);
      expectThrow(() => heap.alloc({ name: v } as Any), ErrorCode.UNKNOWN_TYPE);
    }
    expectThrow(() => heap.defineType(trap as Any), ErrorCode.INVALID_ARG_TYPE);
    const ab = new ArrayBuffer(8);
    const view = new Uint8Array(ab);
    structuredClone(ab, { transfer: [ab] }); // detaches `view`'s buffer
    expectThrow(() => heap.writeBytes(bytes, 0, view), ErrorCode.INVALID_ARG_TYPE);
    // A fixed-length view over a resizable buffer shrunk below it: its getters read offset 0
    // and length 0, which had written nothing and returned as if it had.
    const rab = new (ArrayBuffer as Any)(8, { maxByteLength: 16 }) as ArrayBuffer & { resize(n: number): void };
    const outOfBounds = new Uint8Array(rab, 0, 8).fill(9);
    rab.resize(4);
    expectThrow(() => heap.writeBytes(bytes, 0, outOfBounds), ErrorCode.INVALID_ARG_TYPE);
    heap.writeBytes(bytes, 0, new Uint8Array(new (ArrayBuffer as Any)(0, { maxByteLength: 16 }) as ArrayBuffer)); // empty and in bounds: a write of nothing
    rab.resize(16);
    heap.writeBytes(bytes, 8, outOfBounds); // back in bounds: written
    expect(Array.from(heap.readBytes(bytes, 0, 16))).toEqual([...new Array(8).fill(0), 9, 9, 9, 9, 0, 0, 0, 0]);
    heap.writeBytes(bytes, 8, new Uint8Array(8));
    expect(Array.from(heap.readBytes(bytes, 0, 16))).toEqual(new Array(16).fill(0));
    unchanged();
  });

  // writeBytes read its argument through a view over its `buffer`: V8 keeps a small array's
  // bytes inside the object, and asking for the buffer moved them out to malloc'ed memory on
  // every write. Freed later in small pieces, they were merged by the allocator inside the
  // collector's pauses (1-2.8 ms at a time, values.ts copyBytes).
  it("writeBytes takes a small array's bytes where V8 keeps them: no backing store is made for it", () => {
    const b = heap.allocBytes(32);
    const args: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) args.push(new Uint8Array(32).fill(i & 0xff)); // kept alive: their buffers would stay counted
    const before = process.memoryUsage().arrayBuffers;
    for (const d of args) heap.writeBytes(b, 0, d);
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(grew, `${grew} bytes of ArrayBuffers made by 2000 writes of 32 bytes`).toBeLessThan(16_000); // one buffer each: 64 000
    expect(Array.from(heap.readBytes(b, 0, 32))).toEqual(new Array(32).fill(1999 & 0xff));
    unchanged();
  });

  it('array lengths: wrong types, negative, fractional, non-finite, huge', () => {
    for (const alloc of [(n: Any) => heap.allocRefArray(n), (n: Any) => heap.allocBytes(n)]) {
      for (const v of WRONG_TYPES) expectThrow(() => alloc(v), ErrorCode.INVALID_ARG_TYPE);
      for (const v of [-1, 0.5, NaN, Infinity, -Infinity, 2 ** 31 + 1, 2 ** 53, 1e300]) expectThrow(() => alloc(v), ErrorCode.OUT_OF_RANGE);
      expectThrow(() => alloc(2 ** 31), ErrorCode.HEAP_FULL); // well-formed, but larger than the heap
    }
    unchanged();
  });

  it('roots and pins used after release; double release', () => {
    const r = heap.root(node());
    r.release();
    r.release(); // idempotent
    expectThrow(() => r.get(), ErrorCode.CLOSED);
    expectThrow(() => r.set(null), ErrorCode.CLOSED);
    expectThrow(() => r.set(node()), ErrorCode.CLOSED);
    const p = heap.pin(node());
    const a = p.address;
    expect(a).toBe(heap.addressOf(node()));
    p.release();
    p.release();
    expectThrow(() => p.ref, ErrorCode.CLOSED);
    expectThrow(() => p.address, ErrorCode.CLOSED);
    unchanged();
  });

  it('Root and Pin are made by the heap only: one built by a caller is refused (it would release or unpin another\'s slot)', () => {
    const r = heap.root(node());
    const p = heap.pin(node());
    const before = [r.get(), p.ref, p.address];
    for (const [C, args] of [[Root, [heap, 0]], [Root, [heap, -1]], [Pin, [heap, (p.address - heap.address) / 8]], [Root, [Symbol('Root or Pin'), heap, 0]]] as const) {
      expectThrow(() => new (C as Any)(...args), ErrorCode.INVALID_ARG_TYPE);
      expectThrow(() => Reflect.construct(C as Any, args as Any), ErrorCode.INVALID_ARG_TYPE);
    }
    expect([r.get(), p.ref, p.address]).toEqual(before);
    expect(heap.root(null).get()).toBe(null); // the root table still hands out working slots
    r.release();
    p.release();
    unchanged();
  });

  // An API audit: `new Heap()` (its constructor is private to TypeScript only) failed inside
  // with a TypeError; so did its base class, reachable as Heap's prototype.
  it('a Heap is made by Heap.create() only: new Heap(), its base class and a subclass are refused with a typed error', () => {
    const Base = Object.getPrototypeOf(Heap) as Any;
    class Sub extends (Heap as Any) {
      constructor() {
        super(Symbol('Heap'), {});
      }
    }
    for (const make of [() => new (Heap as Any)(), () => new (Heap as Any)(Symbol('Heap'), {}), () => Reflect.construct(Heap as Any, []), () => new Base(), () => new Base(Symbol('Heap'), {}), () => new Sub()])
      expectThrow(make, ErrorCode.INVALID_ARG_TYPE);
    unchanged();
  });

  it('the root table and pin counts are reachable through a Root or Pin only: the heap exposes no callback a caller could aim at another\'s slot', () => {
    const r = heap.root(node());
    const p = heap.pin(node());
    const before = [r.get(), p.ref, p.address];
    // Every function on the heap and its prototypes: none is a slot or pin-count callback
    // (they were public `_rootRelease(slot)`, `_unpin(word)`, ... that checked nothing).
    const names = new Set<string>();
    for (let o: object | null = heap; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const k of Object.getOwnPropertyNames(o)) names.add(k);
    const internal = [...names].filter((k) => k.startsWith('_') || /^(root|pin)(Get|Set|Release)$|^unpin$|^encode$|^pinAddress$/.test(k));
    expect(internal).toEqual(['_debugState']); // diagnostics: a copy of the control words
    const state = heap._debugState() as { ctl: number[] };
    state.ctl.fill(0xffff);
    expect((heap._debugState() as { ctl: number[] }).ctl).not.toEqual(state.ctl);
    expect(Object.getOwnPropertySymbols(heap)).toEqual([]);
    expect([r.get(), p.ref, p.address]).toEqual(before);
    r.release();
    p.release();
    unchanged();
  });

  it('inject(): bad options refused, the previous ones kept', async () => {
    for (const o of [undefined, null, 5, 'x', { bogus: 1 }, { delayMs: -1 }, { delayMs: 1.5 }, { dieAtPage: NaN }, { eagainEvery: '2' }, { forkAtPage: 2 ** 31 }, revoked()])
      expectThrow(() => heap.inject(o as Any));
    heap.inject({});
    const st = await heap.gc();
    expect(st.takeovers + st.eagain + st.ebusy).toBe(0);
    sum = checksum(heap, root.get()); // the same graph, after one more collection
    unchanged();
  });

  it('concurrent collect() / idle() / gc() calls are serialized: one cycle at a time', async () => {
    const before = heap.history.length;
    const results = await Promise.all([heap.collect(), heap.collect(), heap.idle(), heap.gc(), heap.collect()]);
    await heap.idle();
    const cycles = heap.history.slice(before).map((s) => s.cycle);
    // Four collections (collect, collect, gc, collect), each a whole cycle of its own.
    expect(cycles).toHaveLength(4);
    expect(new Set(cycles).size).toBe(4);
    for (const r of [results[0], results[1], results[3], results[4]]) expect(cycles).toContain(r!.cycle);
    unchanged();
  });

  it('a full heap: ERR_HEAP_FULL, nothing corrupted, and collecting makes room again', async () => {
    const h = await Heap.create({ capacity: 2 << 20, mode: MODE, stallMs: 100 });
    try {
      const g = buildGraph(h, { nodes: 500, garbage: 0, seed: 9 });
      const s0 = checksum(h, g.root.get());
      let full: MoveGcError | undefined;
      for (const size of [1000, 64, 0]) {
        // Fill with smaller and smaller arrays, down to one word: the heap is then really full.
        for (let i = 0; i < 1e6; i++) {
          try {
            h.allocBytes(size);
          } catch (e) {
            full = e as MoveGcError;
            break;
          }
        }
        expectCode(full!, ErrorCode.HEAP_FULL);
      }
      expect(h.usedBytes).toBe(h.capacity);
      expectThrow(() => h.alloc(g.type), ErrorCode.HEAP_FULL);
      expectThrow(() => h.allocRefArray(100_000), ErrorCode.HEAP_FULL);
      expect(h.usedBytes).toBeLessThanOrEqual(h.capacity);
      expect(h.verify().ok).toBe(true);
      expect(checksum(h, g.root.get())).toBe(s0);
      const st = await h.gc();
      expect(st.reclaimedBytes).toBeGreaterThan(1 << 20);
      h.allocBytes(1000); // room again
      expect(checksum(h, g.root.get())).toBe(s0);
      expect(h.verify().ok).toBe(true);
    } finally {
      await h.close();
    }
  });

  it('use after close, double close, concurrent close, close with a collection pending', async () => {
    const h = await Heap.create({ capacity: 4 << 20, mode: MODE, stallMs: 100 });
    const g = buildGraph(h, { nodes: 2000, garbage: 0.5, seed: 5 });
    const n = h.getRef(g.root.get()!, 0)!;
    const r = h.root(n);
    const p = h.pin(n);
    const pending = h.collect(); // starts a cycle (or finishes one) before close
    await Promise.all([h.close(), h.close()]);
    await pending;
    await h.close(); // and once more
    expect(h.closed).toBe(true);
    const calls: Array<() => unknown> = [
      () => h.defineType({ name: 'X', refs: 0, bytes: 0 }), () => h.type('Node'), () => h.alloc(g.type), () => h.allocRefArray(1), () => h.allocBytes(1),
      () => h.typeOf(n), () => h.refCount(n), () => h.length(n), () => h.getRef(n, 0), () => h.setRef(n, 0, null), () => h.getU32(n, 0),
      () => h.setU32(n, 0, 1), () => h.getF64(n, 8), () => h.setF64(n, 8, 1), () => h.getU8(n, 0), () => h.setU8(n, 0, 1),
      () => h.readBytes(n, 0, 1), () => h.writeBytes(n, 0, new Uint8Array(1)), () => h.addressOf(n), () => h.root(null), () => h.root(n),
      () => h.pin(n), () => h.verify(), () => h.inject({}), () => r.get(), () => r.set(null), () => p.ref, () => p.address,
    ];
    for (const c of calls) expectThrow(c, ErrorCode.CLOSED);
    for (const c of [() => h.collect(), () => h.idle(), () => h.gc()]) expectCode(await rejected(c), ErrorCode.CLOSED);
    r.release(); // releasing after close is harmless
    p.release();
    unchanged();
  });
});
