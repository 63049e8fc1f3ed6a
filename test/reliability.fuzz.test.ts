/**
 * A fuzz of the Heap's entry points: random sequences of valid and invalid calls for a fixed
 * budget, with collections interleaved (and calls made while a cycle is active), against a
 * JavaScript model of the graph. The seed is printed; MOVEGC_FUZZ_SEED replays one,
 * MOVEGC_FUZZ_OPS sets the budget.
 *
 * The binding layer underneath gets the same treatment in a child process (a crash there
 * must not take the test runner down): test/fixtures/binding-fuzz.mjs.
 *
 * Hand-picked hostile input at each entry point: reliability.hostile.test.ts.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCode, Heap, MoveGcError, type ModeName, type Ref } from '../dist/gc/index.js';
import { rng } from './fixtures/graph.mjs';
import { BAD_NUMBERS, MODE, WRONG_TYPES } from './helpers/hostile.js';

type Any = any;
const here = path.dirname(fileURLToPath(import.meta.url));

interface MObj {
  kind: 'node' | 'arr' | 'bytes';
  refs: Array<MObj | null>;
  u32: number;
  f64: number;
  bytes: Uint8Array;
}

/** One fuzz run; returns counters. Throws (with the seed in the message) on any failure. */
async function fuzz(mode: ModeName, seed: number, ops: number) {
  const rnd = rng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <X>(a: X[]): X => a[int(a.length)];
  const heap = await Heap.create({ capacity: 8 << 20, mode, stallMs: 100 });
  const other = await Heap.create({ capacity: 2 << 20, mode: 'stw' });
  const counts = { valid: 0, invalid: 0, heapFull: 0, collections: 0, checkpoints: 0, opsDuringCycle: 0, codes: {} as Record<string, number> };
  try {
    const T = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
    const OT = other.defineType({ name: 'Node', refs: 2, bytes: 16 });
    const foreign = [other.alloc(OT), other.allocRefArray(3)];
    // The model: roots, the refs held this epoch (with their model objects), stale refs.
    const roots: Array<{ root: ReturnType<Heap['root']>; m: MObj | null; released: boolean }> = [];
    let pool: Array<{ ref: Ref; m: MObj }> = [];
    const byRef = new Map<Ref, MObj>();
    let stale: Ref[] = [];
    const pins: Array<{ pin: ReturnType<Heap['pin']>; released: boolean }> = [];
    let nextId = 1;

    const hold = (ref: Ref, m: MObj): void => {
      if (byRef.has(ref)) return;
      byRef.set(ref, m);
      pool.push({ ref, m });
    };
    /** After a collection every held ref is stale: re-derive some by walking from the roots. */
    const reacquire = (): void => {
      stale = [...stale.slice(-200), ...pool.map((p) => p.ref).slice(-200)];
      pool = [];
      byRef.clear();
      const queue: Array<[Ref, MObj]> = [];
      for (const r of roots) if (!r.released && r.m) queue.push([r.root.get()!, r.m]);
      while (queue.length && pool.length < 400) {
        const [ref, m] = queue.shift()!;
        if (byRef.has(ref)) continue;
        hold(ref, m);
        m.refs.forEach((c, i) => {
          if (c) queue.push([heap.getRef(ref, i)!, c]);
        });
      }
    };
    const newObj = (kind: MObj['kind'], n: number): MObj => ({ kind, refs: kind === 'bytes' ? [] : new Array(n).fill(null), u32: 0, f64: 0, bytes: new Uint8Array(kind === 'bytes' ? n : 0) });
    const withRefs = () => pool.filter((p) => p.m.refs.length > 0);

    /** Walks every root in the heap and in the model side by side. */
    const checkpoint = (): void => {
      counts.checkpoints++;
      const v = heap.verify();
      if (!v.ok) throw new Error(`verify failed: ${v.errors.join('; ')}`);
      const seen = new Map<MObj, number>();
      for (const r of roots) {
        if (r.released) continue;
        const ref = r.root.get();
        if ((ref === null) !== (r.m === null)) throw new Error('root null mismatch');
        if (!ref) continue;
        const stack: Array<[Ref, MObj]> = [[ref, r.m!]];
        while (stack.length) {
          const [x, m] = stack.pop()!;
          const addr = heap.addressOf(x);
          if (seen.has(m)) {
            if (seen.get(m) !== addr) throw new Error('model object reached at two addresses');
            continue;
          }
          seen.set(m, addr);
          const t = heap.typeOf(x).name;
          if (t !== { node: 'Node', arr: 'RefArray', bytes: 'ByteArray' }[m.kind]) throw new Error(`type ${t} != ${m.kind}`);
          if (m.kind === 'node') {
            if (heap.getU32(x, 0) !== m.u32 || !Object.is(heap.getF64(x, 8), m.f64)) throw new Error('node contents differ');
          } else if (m.kind === 'bytes') {
            const b = heap.readBytes(x, 0, m.bytes.length);
            if (heap.length(x) !== m.bytes.length || b.some((v, i) => v !== m.bytes[i])) throw new Error('bytes differ');
          }
          if (heap.refCount(x) !== m.refs.length) throw new Error('refCount differs');
          m.refs.forEach((c, i) => {
            const cr = heap.getRef(x, i);
            if ((cr === null) !== (c === null)) throw new Error(`slot ${i} null mismatch`);
            if (cr !== null) stack.push([cr, c!]);
          });
        }
      }
    };

    const valid: Array<() => unknown> = [
      () => {
        const m = newObj('node', 2);
        m.u32 = nextId++;
        const r = heap.alloc(T);
        heap.setU32(r, 0, m.u32);
        hold(r, m);
      },
      () => {
        const n = int(9);
        const r = heap.allocRefArray(n);
        hold(r, newObj('arr', n));
      },
      () => {
        const n = int(64);
        const r = heap.allocBytes(n);
        hold(r, newObj('bytes', n));
      },
      () => heap.allocBytes(int(256 << 10)), // garbage, fills the heap now and then
      () => {
        const a = withRefs();
        if (!a.length) return;
        const { ref, m } = pick(a);
        const i = int(m.refs.length);
        const b = rnd() < 0.2 || !pool.length ? null : pick(pool);
        heap.setRef(ref, i, b ? b.ref : null);
        m.refs[i] = b ? b.m : null;
      },
      () => {
        const a = withRefs();
        if (!a.length) return;
        const { ref, m } = pick(a);
        const i = int(m.refs.length);
        const got = heap.getRef(ref, i);
        if ((got === null) !== (m.refs[i] === null)) throw new Error('getRef null mismatch');
        if (got !== null) {
          const known = byRef.get(got);
          if (known && known !== m.refs[i]) throw new Error('getRef returned another object');
          if (!known) hold(got, m.refs[i]!);
        }
      },
      () => {
        const nodes = pool.filter((p) => p.m.kind === 'node');
        if (!nodes.length) return;
        const { ref, m } = pick(nodes);
        m.u32 = (rnd() * 2 ** 32) >>> 0;
        m.f64 = rnd() * 1e6 - 5e5;
        heap.setU32(ref, 0, m.u32);
        heap.setF64(ref, 8, m.f64);
        if (heap.getU32(ref, 0) !== m.u32) throw new Error('u32 readback');
      },
      () => {
        const bs = pool.filter((p) => p.m.kind === 'bytes' && p.m.bytes.length > 0);
        if (!bs.length) return;
        const { ref, m } = pick(bs);
        const off = int(m.bytes.length);
        const data = new Uint8Array(int(m.bytes.length - off) + 1).map(() => int(256));
        heap.writeBytes(ref, off, data);
        m.bytes.set(data, off);
      },
      () => {
        const p = pool.length && rnd() < 0.9 ? pick(pool) : null;
        roots.push({ root: heap.root(p ? p.ref : null), m: p ? p.m : null, released: false });
      },
      () => {
        const live = roots.filter((r) => !r.released);
        if (!live.length) return;
        const r = pick(live);
        const p = pool.length && rnd() < 0.8 ? pick(pool) : null;
        r.root.set(p ? p.ref : null);
        r.m = p ? p.m : null;
      },
      () => {
        const live = roots.filter((r) => !r.released);
        if (live.length < 3) return;
        const r = pick(live);
        r.root.release();
        r.released = true;
      },
      () => {
        if (!pool.length || pins.filter((p) => !p.released).length > 4) return;
        const p = pick(pool);
        const pin = heap.pin(p.ref);
        if (pin.address !== heap.addressOf(p.ref)) throw new Error('pin address');
        pins.push({ pin, released: false });
        // A pinned object stays alive: keep it reachable in the model too, through a root.
        roots.push({ root: heap.root(p.ref), m: p.m, released: false });
      },
      () => {
        const live = pins.filter((p) => !p.released);
        if (!live.length) return;
        const p = pick(live);
        p.pin.release();
        p.released = true;
      },
    ];

    const someRef = (): Ref => (pool.length ? pick(pool).ref : roots.find((r) => !r.released && r.m)?.root.get() ?? foreign[0]);
    const invalid: Array<() => [() => unknown, string?]> = [
      () => [() => heap.typeOf(stale.length ? pick(stale) : pick(foreign)), stale.length ? ErrorCode.STALE_REFERENCE : ErrorCode.FOREIGN_REFERENCE],
      () => [() => heap.setRef(someRef(), 0, pick(foreign)), undefined],
      () => [() => heap.getRef(pick(foreign), 0), ErrorCode.FOREIGN_REFERENCE],
      () => [() => heap.getU32(pick([...WRONG_TYPES, ...BAD_NUMBERS]) as Any, 0), undefined],
      () => [() => heap.getRef(someRef(), pick([-1, 9, 0.5, NaN, Infinity, '0', 2 ** 40]) as Any), undefined],
      () => [() => heap.getU32(someRef(), pick([-4, 2, 3, 4096, NaN, 1e20]) as Any), undefined],
      () => [() => heap.readBytes(someRef(), 0, pick([-1, 1e9, NaN, 0.5]) as Any), undefined],
      () => [() => heap.writeBytes(someRef(), 0, pick([null, [1], 'x', new Uint8Array(1 << 16)]) as Any), undefined],
      () => [() => heap.setU32(someRef(), 0, pick(['1', null, 2 ** 33, 0.25, NaN]) as Any), undefined],
      () => [() => heap.setU8(someRef(), 0, pick([256, -200, '1', NaN]) as Any), undefined],
      () => [() => heap.setF64(someRef(), 0, pick(['1', null, undefined, {}]) as Any), undefined],
      () => [() => heap.alloc(pick([undefined, null, OT, 7, 'Node', {}]) as Any), ErrorCode.UNKNOWN_TYPE],
      () => [() => heap.type(pick(['Nope', '', 'RefArray'])), ErrorCode.UNKNOWN_TYPE],
      () => [() => heap.allocRefArray(pick([-1, 0.5, NaN, Infinity, '2', 2 ** 31 + 1]) as Any), undefined],
      () => [() => heap.allocBytes(2 ** 31), ErrorCode.HEAP_FULL],
      () => [() => heap.defineType(pick([{ name: 'Node', refs: 2, bytes: 16 }, { name: 'Z', refs: -1, bytes: 0 }, { name: 'Z', refs: 0, bytes: NaN }, null]) as Any), undefined],
      () => [() => heap.inject(pick([{ delayMs: -5 }, { nope: 1 }, null, { dieAtPage: 0.5 }]) as Any), undefined],
      () => {
        const dead = roots.filter((r) => r.released);
        return dead.length ? [() => pick(dead).root.get(), ErrorCode.CLOSED] : [() => heap.root('x' as Any), ErrorCode.INVALID_ARG_TYPE];
      },
      () => {
        const dead = pins.filter((p) => p.released);
        return dead.length ? [() => pick(dead).pin.address, ErrorCode.CLOSED] : [() => heap.pin(null as Any), ErrorCode.INVALID_ARG_TYPE];
      },
      () => [() => heap.root(pick([1.5, NaN, -3, {}]) as Any), undefined],
      () => [() => heap.pin(stale.length ? pick(stale) : pick(foreign)), undefined],
      // Interior references: a current-tag number pointing inside a Node (4 words), at every
      // kind of entry point.
      () => {
        const nodes = pool.filter((p) => p.m.kind === 'node');
        if (!nodes.length) return [() => heap.typeOf(foreign[0]), ErrorCode.FOREIGN_REFERENCE];
        const inner = pick(nodes).ref + 1 + int(3);
        const target = pick(withRefs().length ? withRefs() : nodes).ref;
        const calls: Array<() => unknown> = [
          () => heap.setRef(target, 0, inner), () => heap.root(inner), () => heap.pin(inner), () => heap.getU32(inner, 0),
          () => heap.typeOf(inner), () => heap.getRef(inner, 0), () => heap.writeBytes(inner, 0, new Uint8Array(1)),
          () => (roots.find((r) => !r.released)?.root ?? heap.root(null)).set(inner),
        ];
        return [pick(calls), ErrorCode.INVALID_REFERENCE];
      },
      // Lying byte sources: a length getter that under-reports, a Proxy, a subclass.
      () => {
        const nodes = pool.filter((p) => p.m.kind === 'node');
        if (!nodes.length) return [() => heap.typeOf(foreign[0]), ErrorCode.FOREIGN_REFERENCE];
        class Liar extends Uint8Array {
          override get length(): number {
            return 1;
          }
        }
        const liar = pick([new Liar(64), new Proxy(new Uint8Array(4), {}), new Liar(17)]);
        return [() => heap.writeBytes(pick(nodes).ref, 0, liar as Uint8Array), liar instanceof Liar ? ErrorCode.FIELD_RANGE : ErrorCode.INVALID_ARG_TYPE];
      },
    ];

    reacquire();
    const verifyEach = process.env.MOVEGC_FUZZ_VERIFY_EACH === '1';
    const trace: string[] = [];
    // A collection at least every COLLECT_EVERY ops, so that every seed exercises them.
    const COLLECT_EVERY = 200;
    let lastCollect = 0;
    for (let op = 0; op < ops; op++) {
      let x = rnd();
      if (op - lastCollect >= COLLECT_EVERY) x = 0;
      trace.push(x < 0.012 ? 'collect' : x < 0.02 ? 'idle' : x < 0.3 ? 'invalid' : 'valid');
      if (trace.length > 30) trace.shift();
      if (x < 0.012) {
        // A collection; half the time the next operations run while it compacts.
        lastCollect = op;
        counts.collections++;
        if (rnd() < 0.5) await heap.collect();
        else await heap.gc();
        reacquire();
      } else if (x < 0.02) {
        await heap.idle();
      } else if (x < 0.3) {
        const [call, code] = pick(invalid)();
        let e: MoveGcError | undefined;
        try {
          call();
        } catch (err) {
          e = err as MoveGcError;
        }
        if (!(e instanceof MoveGcError) || typeof e.code !== 'string')
          throw new Error(`op ${op}: an invalid call did not throw a MoveGcError with a code: ${String(e)}`);
        if (code && e.code !== code) throw new Error(`op ${op}: expected ${code}, got ${e.code}: ${e.message}`);
        counts.invalid++;
        counts.codes[e.code] = (counts.codes[e.code] ?? 0) + 1;
      } else {
        const vi = int(valid.length);
        trace[trace.length - 1] = `valid${vi}`;
        try {
          valid[vi]();
        } catch (err) {
          if ((err as MoveGcError).code !== ErrorCode.HEAP_FULL) throw err;
          counts.heapFull++;
          await heap.gc();
          counts.collections++;
          reacquire();
        }
        counts.valid++;
      }
      if (heap.cycleActive) counts.opsDuringCycle++;
      if (op % 500 === 499 || verifyEach) {
        try {
          checkpoint();
        } catch (e) {
          throw new Error(`op ${op}: ${(e as Error).message}; last ops: ${trace.join(' ')}`);
        }
      }
    }
    await heap.idle();
    checkpoint();
    return counts;
  } finally {
    await heap.close();
    await other.close();
  }
}

describe('fuzz', () => {
  const envSeed = process.env.MOVEGC_FUZZ_SEED;
  const ops = Number(process.env.MOVEGC_FUZZ_OPS ?? 5000);
  const runs: Array<[ModeName, number]> = [[MODE, ops], ['stw', Math.ceil(ops / 4)]];
  for (const [mode, n] of runs) {
    it(`${n} random valid and invalid calls (${mode}), collections interleaved`, async () => {
      const seed = envSeed !== undefined ? Number(envSeed) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
      console.log(`[movegc] fuzz ${mode}: seed ${seed} (replay with MOVEGC_FUZZ_SEED=${seed}), ${n} ops`);
      let counts;
      try {
        counts = await fuzz(mode, seed, n);
      } catch (e) {
        throw new Error(`fuzz (${mode}) failed with seed ${seed} (MOVEGC_FUZZ_SEED=${seed}): ${(e as Error).message}`, { cause: e });
      }
      console.log(`[movegc] fuzz ${mode}: ${JSON.stringify(counts)}`);
      expect(counts.invalid).toBeGreaterThan(n / 10);
      expect(counts.valid).toBeGreaterThan(n / 2);
      expect(counts.collections).toBeGreaterThan(5);
      expect(counts.checkpoints).toBeGreaterThanOrEqual(Math.floor(n / 500));
      if (mode !== 'stw') expect(counts.opsDuringCycle).toBeGreaterThan(0);
      expect(Object.keys(counts.codes).length).toBeGreaterThan(5);
    }, 120_000);
  }
});

describe('binding layer (child process)', () => {
  it('random hostile arguments to every native and typed binding function: typed errors, no crash', () => {
    const seed = process.env.MOVEGC_FUZZ_SEED !== undefined ? Number(process.env.MOVEGC_FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
    console.log(`[movegc] binding fuzz: seed ${seed}`);
    const r = spawnSync(process.execPath, [path.join(here, 'fixtures', 'binding-fuzz.mjs'), String(seed), '3000'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, `seed ${seed}: killed by a signal (a crash). stderr: ${r.stderr.slice(-2000)}`).toBeNull();
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(res.error ?? null, `seed ${seed}`).toBeNull();
    expect(res.notThrown, `seed ${seed}: calls with an invalid argument that did not throw`).toEqual([]);
    expect(res.untyped, `seed ${seed}: errors without a string code`).toEqual([]);
    expect(res.calls).toBeGreaterThan(2000);
    expect(r.status).toBe(0);
  });
});
