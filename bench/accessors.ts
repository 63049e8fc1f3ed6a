/**
 * What the raw accessors cost the mutator at a small heap (64 MiB, no cycle running): getU8,
 * setU8, getU32, setF64, readBytes and writeBytes of 48 bytes, ns per call, interleaved reps,
 * medians. With `--baseline PATH` (the gc/index.js of another movegc build) that build runs
 * side by side in the same process: e.g. against the build from before heaps over 4 GiB, whose
 * bytes went through a Uint8Array over the heap (now a DataView, and a Uint8Array window per
 * readBytes/writeBytes call: a Uint8Array stops at 4 GiB).
 *
 *   node dist/bench/accessors.js [--ops N] [--reps N] [--baseline /path/to/dist/gc/index.js]
 */
import os from 'node:os';
import { importBaseline, microBenchArgs } from '../cli/args.js';
import { Heap } from '../gc/index.js';

const values = microBenchArgs('accessors', 'the raw accessors at a small heap, no cycle running (ns per call, medians)', 'calls per rep');
const OPS = values.ops;
const REPS = values.reps;
const N = 4096;

type H = Heap;
const BYTES = new Uint8Array(48).fill(7);

/** ns per call of each accessor over OPS calls spread over N objects. */
const OPS_BY_NAME: Record<string, (h: H, o: number[]) => void> = {
  getU8: (h, o) => {
    let s = 0;
    for (let k = 0; k < OPS; k++) s += h.getU8(o[k & (N - 1)], k & 63);
    if (s < 0) throw new Error('unreachable');
  },
  setU8: (h, o) => {
    for (let k = 0; k < OPS; k++) h.setU8(o[k & (N - 1)], k & 63, k & 0xff);
  },
  getU32: (h, o) => {
    let s = 0;
    for (let k = 0; k < OPS; k++) s += h.getU32(o[k & (N - 1)], (k & 15) * 4);
    if (s < 0) throw new Error('unreachable');
  },
  setF64: (h, o) => {
    for (let k = 0; k < OPS; k++) h.setF64(o[k & (N - 1)], (k & 7) * 8, k);
  },
  readBytes48: (h, o) => {
    let s = 0;
    for (let k = 0; k < OPS / 4; k++) s += h.readBytes(o[k & (N - 1)], 8, 48)[0];
    if (s < 0) throw new Error('unreachable');
  },
  writeBytes48: (h, o) => {
    for (let k = 0; k < OPS / 4; k++) h.writeBytes(o[k & (N - 1)], 8, BYTES);
  },
};

function setup(h: H): number[] {
  const T = h.defineType({ name: 'R', refs: 0, bytes: 64 });
  const objs: number[] = [];
  for (let i = 0; i < N; i++) objs.push(h.alloc(T));
  return objs;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const heaps: Array<[string, H, number[]]> = [];
const cur = await Heap.create({ capacity: 64 << 20, mode: 'move' });
heaps.push(['this build', cur, setup(cur)]);
if (values.baseline) {
  const mod = (await importBaseline(values.baseline, 'npm run bench:accessors --')) as { Heap: typeof Heap };
  const b = await mod.Heap.create({ capacity: 64 << 20, mode: 'move' });
  heaps.push(['baseline', b, setup(b)]);
}
const load0 = os.loadavg()[0];
const res: Record<string, Record<string, number[]>> = {};
for (let r = 0; r < REPS; r++)
  for (const [name, fn] of Object.entries(OPS_BY_NAME))
    for (const [label, h, o] of heaps) {
      const t0 = process.hrtime.bigint();
      fn(h, o);
      const ops = name.endsWith('48') ? OPS / 4 : OPS;
      ((res[name] ??= {})[label] ??= []).push(Number(process.hrtime.bigint() - t0) / ops);
    }
console.log(`raw accessors, ns per call, median of ${REPS} reps of ${OPS} (64 MiB heap, no cycle); load ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`);
for (const [name, byLabel] of Object.entries(res)) {
  const m = Object.fromEntries(Object.entries(byLabel).map(([l, xs]) => [l, median(xs)]));
  const ratio = m.baseline ? `  x${(m['this build'] / m.baseline).toFixed(2)} of the baseline (${m.baseline.toFixed(1)} ns)` : '';
  console.log(`  ${name.padEnd(13)} ${m['this build'].toFixed(1).padStart(6)} ns${ratio}`);
}
for (const [, h] of heaps) await h.close();
