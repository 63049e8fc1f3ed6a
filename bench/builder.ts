/**
 * The page builders alone: every to-space page of a benchmark-like heap built by the
 * TypeScript builder (gc/build.ts) and by the compiled one (native/build.cc), one thread, no
 * kernel, into the same pre-touched destination (runs of 64 pages, as the compactor builds),
 * alternated rep by rep. Reports on-CPU ns per page (process CPU time: this thread is the only
 * busy one; wall time on a shared machine includes other tenants) as medians, the ratio, and
 * checks that both wrote the same bytes.
 *
 *   node dist/bench/builder.js [--heap MiB] [--sizes small|mixed|large|huge] [--live F] [--reps N]
 *                              [--order sequential|random] [--run N]
 *
 * `--order random --run 1` builds the pages one at a time in a random order, as the mutator's
 * self-service and the fault server meet them: each build then starts with cold caches and
 * TLB (its sources, and the forwarding tables at every reference's target), which the
 * compactor's in-order runs mostly do not.
 *
 * The heap is laid out directly in memory like bench/workload.ts lays it out through the Heap
 * (interleaved live and dead objects; Nodes of 32-64 B with 2 references, byte arrays of
 * 1-16 KiB for `mixed`, 4-64 KiB for `large`, 4-16 MiB for `huge`: ns per page there must stay
 * that of `large`, or building a page costs O(object), as it once did), then marked and planned
 * by the collector.
 */
import os from 'node:os';
import { evenMiB, scriptArgs } from '../cli/args.js';
import { PageBuilder, type RunBuilder } from '../gc/build.js';
import { NativePageBuilder } from '../gc/build-native.js';
import { BYTE_ARRAY_TYPE, FIRST_USER_TYPE, PAGE_WORDS, REF_ARRAY_TYPE, TypeTable, arrayWords, Kind } from '../gc/layout.js';
import { mark } from '../gc/mark.js';
import { plan } from '../gc/plan.js';
import { Ctl, Shared } from '../gc/shared.js';
import { median } from '../gc/stats.js';
import { rng } from './workload.js';

const values = scriptArgs({
  name: 'bench:builder',
  run: 'npm run bench:builder --',
  summary: 'the page builders alone, TypeScript and compiled, on one heap (ns per page, byte-identical output)',
  options: {
    // At most 8 GiB: the heap is laid out in one Uint32Array, which 16 GiB overflows (an audit).
    heap: { type: 'int', min: 2, max: 8192, default: 256, metavar: 'MiB', check: evenMiB, help: 'heap size' },
    sizes: { type: 'string', choices: ['small', 'mixed', 'large', 'huge'], default: 'mixed', help: 'object sizes' },
    live: { type: 'number', min: 0.01, max: 1, default: 0.5, help: 'live fraction' },
    reps: { type: 'int', min: 1, max: 1000, default: 5, help: 'interleaved reps' },
    only: { type: 'string', choices: ['js', 'native'], help: 'one builder only (for profiling)' },
    order: { type: 'string', choices: ['sequential', 'random'], default: 'sequential', help: 'the order the runs are built in' },
    run: { type: 'int', min: 1, max: 64, default: 64, metavar: 'N', help: 'pages per build call (the compactor: 64; a fault or self-service: 1)' },
  },
}) as { heap: number; sizes: string; live: number; reps: number; only?: string; order: string; run: number };
const capacity = values.heap * 2 ** 20;
const sizes = values.sizes;
const liveFraction = values.live;
const reps = values.reps;

const words = capacity / 8;
const typesSab = TypeTable.allocate();
const types = new TypeTable(typesSab);
const NODE_BYTES = [32, 40, 48, 56, 64];
NODE_BYTES.forEach((b, i) => types.define(FIRST_USER_TYPE + i, 2, b - 16));
const sh = Shared.allocate({ heapAddress: 0, fromAddress: 0, capacity, fromExtraPages: 0, uffdFd: -1, uffdFeatures: 0, statmFd: -1, types: typesSab });
const heap = new Uint32Array(words * 2);
const rnd = rng(1);

// Directory and chunk arrays as in workload.ts, so every live object is reachable.
const CHUNK = 4096;
let top = 1;
const alloc = (typeId: number, len: number): number => {
  const kind = types.kind(typeId);
  const size = kind === Kind.FIXED ? types.rows[typeId * 4 + 3] : arrayWords(kind, len);
  const w = top;
  top += size;
  heap[w * 2] = typeId;
  heap[w * 2 + 1] = len;
  return w;
};
const target = Math.floor(words * 0.9);
const dir = alloc(REF_ARRAY_TYPE, Math.ceil(target / 4 / CHUNK) + 1);
let chunk = 0;
let live = 0;
let objects = 0;
const RING = 65536;
const ring = new Float64Array(RING);
while (top + (sizes === 'huge' ? 2 << 20 : 16 * 1024) < target) {
  let typeId = FIRST_USER_TYPE + Math.floor(rnd() * NODE_BYTES.length);
  let len = 0;
  const r = rnd();
  if ((sizes === 'mixed' && r < 0.005) || (sizes === 'large' && r < 0.9) || (sizes === 'huge' && r < 0.5)) {
    typeId = BYTE_ARRAY_TYPE;
    len = sizes === 'mixed' ? 1024 + Math.floor(rnd() * 15 * 1024) : sizes === 'large' ? 4096 + Math.floor(rnd() * 60 * 1024) : (4 << 20) + Math.floor(rnd() * (12 << 20));
  }
  const isLive = Math.floor((objects + 1) * liveFraction) > Math.floor(objects * liveFraction);
  objects++;
  if (isLive && live % CHUNK === 0) {
    chunk = alloc(REF_ARRAY_TYPE, CHUNK);
    heap[dir * 2 + 2 + live / CHUNK] = chunk;
  }
  const o = alloc(typeId, len);
  for (let i = o * 2 + 2; i < top * 2; i++) heap[i] = i * 2654435761;
  if (!isLive) continue;
  if (typeId !== BYTE_ARRAY_TYPE) {
    heap[o * 2 + 2] = live > 0 ? ring[(live - 1) % RING] : 0;
    heap[o * 2 + 3] = live > 0 ? ring[(live - 1 - Math.floor(rnd() * Math.min(live, RING))) % RING] : 0;
  }
  heap[chunk * 2 + 2 + (live % CHUNK)] = o;
  ring[live % RING] = o;
  live++;
}
const m = mark(heap, sh.types, FIRST_USER_TYPE + NODE_BYTES.length, sh.starts, sh.live, top, [dir]);
const p = plan(heap, sh.types, sh, { topWord: top, pinned: [], denseThreshold: 0.95, alignWords: 0 }); // back to back: the builder alone
sh.ctl[Ctl.SEGMENTS] = p.segments.length;
const from = new Uint32Array((words + 64 * PAGE_WORDS) * 2);
from.set(heap);
const scratch = words * 2;

const builders: Array<[string, RunBuilder]> = [
  ['js', new PageBuilder(sh, from)],
  ['native', new NativePageBuilder(sh, from)],
];
// The runs to build, [first page, pages], in the order asked for (the same for both builders).
const runs: Array<[number, number]> = [];
for (const s of p.segments) for (let q = s.firstPage; q < s.endPage; q += values.run) runs.push([q, Math.min(values.run, s.endPage - q)]);
if (values.order === 'random') {
  for (let i = runs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [runs[i], runs[j]] = [runs[j], runs[i]];
  }
}
const ns: Record<string, number[]> = { js: [], native: [] };
const sums: Record<string, number> = {};
for (let rep = 0; rep <= reps; rep++) {
  for (const [name, b] of rep % 2 ? builders : [...builders].reverse()) {
    if (values.only && values.only !== name) continue;
    let sum = 0;
    const c0 = process.cpuUsage();
    for (const [q, n] of runs) {
      b.buildRun(q, n, from, scratch);
      sum = (sum + from[scratch + 7] + from[scratch + n * 1024 - 1]) >>> 0;
    }
    const c = process.cpuUsage(c0);
    const t = (c.user + c.system) * 1000; // on-CPU ns: the machine is shared
    if (rep > 0) ns[name].push(t / p.pagesTotal); // rep 0 warms up
    sums[name] = sum;
  }
}
const js = median(ns.js);
const nat = median(ns.native);
console.log(
  `builders alone: ${values.heap} MiB, sizes ${sizes}, live ${liveFraction}, runs of ${values.run} in ${values.order} order, ${p.pagesTotal} pages (${p.identityPages} in place), ${m.objects} live objects, ${(m.words * 8 / 2 ** 20).toFixed(1)} MiB live; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
);
console.log(`  js     ${js.toFixed(0)} ns/page (reps ${ns.js.map((x) => x.toFixed(0)).join(' ')})`);
console.log(`  native ${nat.toFixed(0)} ns/page (reps ${ns.native.map((x) => x.toFixed(0)).join(' ')})`);
console.log(`  native / js ${(nat / js).toFixed(3)}; live data built at ${((m.words * 8) / (nat * p.pagesTotal)).toFixed(2)} GB/s native, ${((m.words * 8) / (js * p.pagesTotal)).toFixed(2)} GB/s js (on-CPU)`);
if (!values.only && sums.js !== sums.native) throw new Error('the builders wrote different bytes');
