/**
 * What the write barrier costs the mutator: setRef throughput with no cycle marking (the barrier
 * is one load and a branch), during concurrent marking (the barrier checks the mark bit and logs),
 * and a plain typed-array store as the floor, interleaved, medians of the reps. With
 * `--baseline PATH` (the gc/index.js of another movegc build, e.g. a checkout from before the
 * barrier), that build's setRef runs side by side in the same process.
 *
 *   node dist/bench/barrier.js [--ops N] [--reps N] [--baseline /path/to/dist/gc/index.js]
 */
import os from 'node:os';
import { importBaseline, microBenchArgs } from '../cli/args.js';
import { Heap } from '../gc/index.js';

const values = microBenchArgs('barrier', 'setRef throughput with marking off, during concurrent marking, and a plain store (ns per store, medians)', 'stores per rep');
const OPS = values.ops;
const REPS = values.reps;

interface HeapLike {
  defineType(s: { name: string; refs: number; bytes: number }): unknown;
  alloc(t: unknown): number;
  setRef(o: number, i: number, v: number | null): void;
  root(r: number | null): unknown;
  close(): Promise<void>;
}

const N = 4096;
/** ns per setRef over OPS stores into N objects. */
function run(h: HeapLike, objs: number[]): number {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < OPS; k++) h.setRef(objs[k & (N - 1)], 0, objs[(k * 7) & (N - 1)]);
  return Number(process.hrtime.bigint() - t0) / OPS;
}

function setup(h: HeapLike): number[] {
  const T = h.defineType({ name: 'N', refs: 2, bytes: 8 });
  const objs: number[] = [];
  for (let i = 0; i < N; i++) objs.push(h.alloc(T));
  const arr = objs[0];
  for (let i = 1; i < N; i++) h.setRef(objs[i - 1], 1, objs[i]); // all reachable from the first
  h.root(arr);
  return objs;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const off = (await Heap.create({ capacity: 64 << 20, mode: 'move' })) as unknown as HeapLike & Heap;
const offObjs = setup(off);
// A heap held in marking for the whole measurement: its marker stalls after the first objects.
const marking = (await Heap.create({ capacity: 64 << 20, mode: 'move', stallMs: 1000, inject: { markDelayAtObject: 2, markDelayMs: 60_000 } })) as unknown as HeapLike & Heap;
const markObjs = setup(marking);
for (let i = 0; i < 200_000; i++) marking.allocBytes(64); // garbage, so marking is not trivially over
marking.requestCollection();
await new Promise((r) => setTimeout(r, 50));
if (marking.cyclePhase !== 'marking') throw new Error(`expected the heap to be marking, it is ${marking.cyclePhase}`);
let base: (HeapLike & { close(): Promise<void> }) | null = null;
let baseObjs: number[] = [];
if (values.baseline) {
  const mod = (await importBaseline(values.baseline, 'npm run bench:barrier --')) as { Heap: { create(o: unknown): Promise<HeapLike> } };
  base = await mod.Heap.create({ capacity: 64 << 20, mode: 'move' });
  baseObjs = setup(base);
}
const raw = new Uint32Array(N * 4);
const rawRun = (): number => {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < OPS; k++) raw[(k & (N - 1)) * 4 + 2] = (k * 7) & (N - 1);
  return Number(process.hrtime.bigint() - t0) / OPS;
};

const r: Record<string, number[]> = { off: [], marking: [], raw: [], baseline: [] };
for (let i = 0; i < REPS + 1; i++) {
  const warm = i === 0;
  const a = run(off, offObjs);
  const b = run(marking, markObjs);
  const c = rawRun();
  const d = base ? run(base, baseObjs) : NaN;
  if (warm) continue;
  r.off.push(a);
  r.marking.push(b);
  r.raw.push(c);
  if (base) r.baseline.push(d);
}
const m = Object.fromEntries(Object.entries(r).filter(([, v]) => v.length).map(([k, v]) => [k, median(v)]));
console.log(`setRef ns/op, medians of ${REPS} interleaved reps of ${OPS} stores (load ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores):`);
console.log(`  no cycle (barrier off): ${m.off.toFixed(1)}`);
console.log(`  during marking (barrier on): ${m.marking.toFixed(1)}  (x${(m.marking / m.off).toFixed(2)} of off)`);
if (base) console.log(`  baseline build (${values.baseline}): ${m.baseline.toFixed(1)}  (off / baseline x${(m.off / m.baseline).toFixed(2)})`);
console.log(`  plain Uint32Array store: ${m.raw.toFixed(2)}`);
console.log(JSON.stringify({ opsPerRep: OPS, reps: REPS, load: os.loadavg()[0], nsPerSetRef: m }));
marking.inject({});
await off.close();
await marking.close();
await base?.close();
