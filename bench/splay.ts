/**
 * `movegc splay`: Octane's Splay and SplayLatency (splay-tree.ts) on the movegc heap in each
 * mode, and on plain JavaScript objects under V8's own collector, in one invocation. Each
 * variant runs in a fresh child process (same cold JIT and process state), reps interleaved
 * (rep 1: move, move-handler, copy, copy-handler, stw, v8; rep 2: ...); figures are medians over
 * reps. `move`/`copy` run the heap's fault path (--fault-path, default self: the accessors build
 * a touched unbuilt page themselves); `move-handler`/`copy-handler` the kernel fault served by
 * the fault-server thread, side by side as issue 11's "Done when" asks.
 *
 * One rep: setup (8000 inserts, a latency sample every 20), then Octane runs (80 inserts and
 * 80 removes each, a sample per run) for --seconds, then Octane's teardown check (8000 keys,
 * sorted, unique) and, on the heap, heap.verify(). On the heap a collection is triggered
 * between inserts when heap use passes --trigger of the capacity (`await heap.collect()`):
 * mark, plan and the pause run there; move/copy then compact concurrently with the next runs.
 *
 * Reported per variant: throughput (runs/s, and Octane's Splay score 100 x 81491 / us per
 * run), latency samples p50/p99/max, the RMS of the samples and Octane's SplayLatency score
 * (100 x 2739514 / round(RMS ms x 10^4)), collection cycles and pauses (collect() calls on
 * the heap; V8's GC pauses from perf_hooks 'gc' entries, counted in every variant, since the
 * heap variants allocate some JavaScript garbage too).
 *
 * Issue 11's yardsticks, per variant: the collection run (the Octane run during which collect()
 * returned and the concurrent compaction began, collect()'s own time removed: the same insert
 * of the same run in every variant, the keys being seeded) and the run after it; from
 * heap.history, the mutator's stall per touched unbuilt page (self and handler samples
 * merged: the population both paths share), pages built by self-service, kernel faults.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ErrorCode, Heap, MoveGcError } from '../gc/index.js';
import { UsageError, type Values } from '../cli/args.js';
import { spawnTied } from '../cli/child.js';
import { HEAP_VARIANTS, KNOBS, heapOptionsOf, heapVariant, knobValuesOf, variantTitle, type KnobValues } from './knobs.js';
import { startProvenance, provenanceLine, type Provenance } from './provenance.js';
import { bucketQuantiles, median, mergeBuckets, quantiles, type Quantiles } from './stats.js';
import { HeapSplayTree, JsSplayTree, SETUP_SAMPLE_EVERY, SPLAY_TREE_MODIFICATIONS, SPLAY_TREE_SIZE, type SplayTreeOps } from './splay-tree.js';
import { rng } from './workload.js';
import { renderSplayHtml } from './report-splay.js';
import { invocation } from '../cli/invocation.js';
import { runWhenMain } from '../cli/main.js';

export const VARIANTS = [...HEAP_VARIANTS, 'v8'] as const;
export type Variant = (typeof VARIANTS)[number];
export const SCHEMA = 'movegc-splay/2';
/** Octane 2.0's reference values for Splay (us per run) and SplayLatency (RMS x 10^4). */
const REFERENCE = [81491, 2739514] as const;

export interface SplayRep {
  variant: Variant;
  /** The heap's mode after any fallback; 'v8' for plain objects. */
  mode: string;
  /** The heap's fault path (null for v8). */
  faultPath: 'self' | 'handler' | null;
  fallbacks: string[];
  rep: number;
  setupMs: number;
  runs: number;
  runsMs: number;
  runsPerS: number;
  usPerRun: number;
  /** Latency samples (ms): setup every 20 inserts, then one per run. */
  latencyMs: Quantiles;
  rmsMs: number;
  splayScore: number;
  latencyScore: number;
  /** Sorted samples, at most 400 of them (for the report's percentile plot). */
  samplesMs: number[];
  /**
   * Per collection during the runs (empty for v8): the run in which collect() returned, less
   * collect()'s own time, and the run after it (null if the benchmark ended first), ms.
   */
  collectionRunsMs: number[];
  nextRunsMs: Array<number | null>;
  /**
   * Per collection whose compaction ended during the runs: the runs from the collection run to
   * the one that ended with every page installed (or to the next collect(), which waits for
   * it), and their time (collect() removed), ms.
   */
  compactionRuns: Array<{ runs: number; ms: number }>;
  /** movegc collections (null for v8). */
  heap: {
    capacityMiB: number;
    cycles: number;
    collectMs: Quantiles & { total: number };
    markPlanMs: number;
    compactionPauseMs: number;
    compactionMs: number;
    /** Kernel faults served by the fault server (every access path). */
    faults: number;
    pagesMoved: number;
    pagesCopied: number;
    /** Pages built by an accessor (self-service) and by the fault server. */
    pagesBuiltBySelf: number;
    pagesBuiltByFaults: number;
    /** The mutator's stall per touched unbuilt page, µs: self, handler and from-space read and write samples merged (unbuiltReads, unbuiltWrites), and each count. */
    stallUs: Quantiles & { self: number; handler: number; reads: number };
    /** Self-service left to the kernel path (another builder held the page) or failed. */
    selfLeft: number;
    selfFailed: number;
    liveMiB: number;
    verifyOk: boolean;
  } | null;
  /** V8's own collections in this process (perf_hooks 'gc' entries). */
  v8gc: { count: number; major: number; minor: number; totalMs: number; maxMs: number };
  keysOk: boolean;
}

export interface SplayResults {
  schema: typeof SCHEMA;
  provenance: Provenance;
  startedAt: string;
  finishedAt: string;
  params: { variants: Variant[]; reps: number; seconds: number; heapMiB: number; trigger: number; seed: number; knobs: KnobValues };
  /** Medians over reps, per variant; `reps` has every rep. */
  summary: Partial<Record<Variant, SplaySummary>>;
  /** Issue 11's "Done when" as ratios self / handler per concurrent mode (null when a side is missing). */
  yardsticks: Yardstick[];
  reps: SplayRep[];
}

export type SplaySummary = Omit<SplayRep, 'rep' | 'samplesMs' | 'latencyMs' | 'heap' | 'v8gc' | 'collectionRunsMs' | 'nextRunsMs' | 'compactionRuns'> & {
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  cycles: number | null;
  collectP50Ms: number | null;
  collectMaxMs: number | null;
  /** Medians over reps of each rep's median and max collection run, and of its median next run (ms). */
  collectionRunP50Ms: number | null;
  collectionRunMaxMs: number | null;
  nextRunP50Ms: number | null;
  /** Medians over reps of each rep's median compaction: runs it spanned, their time (ms). */
  compactionRunsP50: number | null;
  compactionRunsP50Ms: number | null;
  /** Medians over reps: stall per touched unbuilt page p50/p99 (µs, merged paths), its count, self-built pages, kernel faults. */
  stallP50Us: number | null;
  stallP99Us: number | null;
  stalls: number | null;
  pagesBuiltBySelf: number | null;
  /** Self-service left to the kernel path (another builder held the page). */
  selfLeft: number | null;
  faults: number | null;
  v8gcCount: number;
  v8gcMaxMs: number;
  v8gcTotalMs: number;
};

export interface Yardstick {
  mode: 'move' | 'copy';
  /** Stall per touched unbuilt page p50, self over handler (target <= 1/5). */
  stallP50Ratio: number | null;
  /** The collection run's median, self over handler (target <= 1/3 in move mode). */
  collectionRunRatio: number | null;
}
/** Issue 11's targets for the ratios above. */
export const TARGETS = { stallP50Ratio: 1 / 5, collectionRunRatio: 1 / 3 } as const;

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** One rep of one variant, in this process. */
async function runVariant(variant: Variant, rep: number, v: Values, knobs: KnobValues): Promise<SplayRep> {
  const seconds = v.seconds as number;
  const capacity = (v.heap as number) * 2 ** 20;
  const trigger = v.trigger as number;
  const nextKey = rng(v.seed as number);
  const gcs: Array<{ kind: number; ms: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0, ms: e.duration });
  });
  obs.observe({ entryTypes: ['gc'] });

  let heap: Heap | null = null;
  const collects: number[] = [];
  const collectStarts: number[] = [];
  let tree: SplayTreeOps;
  if (variant === 'v8') tree = new JsSplayTree(nextKey);
  else {
    const { mode, faultPath } = heapVariant(variant, (knobs.faultPath ?? 'self') as 'self' | 'handler');
    heap = await Heap.create({ ...heapOptionsOf(knobs), capacity, mode, faultPath });
    tree = new HeapSplayTree(heap, nextKey);
  }
  const h = heap;
  /** A safe point: no reference is held on the JavaScript side here. */
  const maybeCollect = async (): Promise<void> => {
    if (!h || h.usedBytes <= trigger * capacity) return;
    const t = performance.now();
    collectStarts.push(t);
    await h.collect();
    collects.push(performance.now() - t);
  };
  const insert = async (): Promise<number> => {
    await maybeCollect();
    try {
      return tree.insertNewNode();
    } catch (e) {
      if (e instanceof MoveGcError && e.code === ErrorCode.HEAP_FULL)
        throw new UsageError(`the heap filled up (${v.heap} MiB): the tree needs about 33 MiB live plus room to allocate; give --heap 64 or more, or a lower --trigger`);
      throw e;
    }
  };

  const samples: number[] = [];
  let last = performance.now();
  const sample = (): void => {
    const now = performance.now();
    samples.push(now - last);
    last = now;
  };
  const t0 = performance.now();
  for (let i = 0; i < SPLAY_TREE_SIZE; i++) {
    await insert();
    if ((i + 1) % SETUP_SAMPLE_EVERY === SETUP_SAMPLE_EVERY - 1) sample();
  }
  const t1 = performance.now();
  let runs = 0;
  const end = t1 + seconds * 1000;
  const collectionRunsMs: number[] = [];
  const nextRunsMs: Array<number | null> = [];
  const compactionRuns: Array<{ runs: number; ms: number }> = [];
  let compacting: { runs: number; ms: number } | null = null;
  while (performance.now() < end) {
    const before = collects.length;
    const r0 = performance.now();
    for (let i = 0; i < SPLAY_TREE_MODIFICATIONS; i++) {
      const key = await insert();
      const greatest = tree.findGreatestLessThanKey(key);
      tree.remove(greatest === null ? key : greatest);
    }
    let runMs = performance.now() - r0;
    if (nextRunsMs.length < collectionRunsMs.length) nextRunsMs.push(r3(runMs));
    if (collects.length > before) {
      if (compacting) {
        // The last compaction outlasted the runs up to here: collect() waited for its end.
        compactionRuns.push({ runs: compacting.runs + 1, ms: r3(compacting.ms + collectStarts[before] - r0) });
      }
      for (let i = before; i < collects.length; i++) runMs -= collects[i];
      collectionRunsMs.push(r3(runMs));
      compacting = { runs: 0, ms: 0 };
    }
    if (compacting && h) {
      compacting.runs++;
      compacting.ms += runMs;
      // Every page installed (read without the event loop, which this loop never yields to).
      const p = h.progress();
      if (p.pagesMapped >= p.pagesTotal) {
        compactionRuns.push({ runs: compacting.runs, ms: r3(compacting.ms) });
        compacting = null;
      }
    }
    sample();
    runs++;
  }
  if (nextRunsMs.length < collectionRunsMs.length) nextRunsMs.push(null);
  const t2 = performance.now();
  if (h) await h.idle();
  const keys = tree.exportKeys();
  let keysOk = keys.length === SPLAY_TREE_SIZE;
  for (let i = 0; keysOk && i < keys.length - 1; i++) if (!(keys[i] < keys[i + 1])) keysOk = false;
  // perf_hooks delivers 'gc' entries from the event loop: let it run before counting them.
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 10));
  obs.disconnect();

  let heapStats: SplayRep['heap'] = null;
  if (h) {
    const hist = h.history;
    const sum = (f: (c: (typeof hist)[number]) => number): number => hist.reduce((a, c) => a + f(c), 0);
    const q = quantiles(collects);
    const stalls = bucketQuantiles(mergeBuckets(hist.flatMap((c) => [c.stalls.self.buckets, c.stalls.handler.buckets, c.stalls.reads.buckets])));
    heapStats = {
      capacityMiB: v.heap as number,
      cycles: hist.length,
      collectMs: { ...q, total: collects.reduce((a, b) => a + b, 0) },
      markPlanMs: sum((c) => c.markMs + c.planMs),
      compactionPauseMs: sum((c) => c.pause.totalMs),
      compactionMs: sum((c) => c.compactionMs),
      faults: sum((c) => c.faults),
      pagesMoved: sum((c) => c.pages.moved),
      pagesCopied: sum((c) => c.pages.copied),
      pagesBuiltBySelf: sum((c) => c.pages.builtBySelf),
      pagesBuiltByFaults: sum((c) => c.pages.builtByFaults),
      stallUs: { ...stalls, self: sum((c) => c.stalls.self.count), handler: sum((c) => c.stalls.handler.count), reads: sum((c) => c.stalls.reads.count) },
      selfLeft: sum((c) => c.stalls.selfLeft),
      selfFailed: sum((c) => c.stalls.selfFailed),
      liveMiB: hist.length ? hist[hist.length - 1].liveBytes / 2 ** 20 : h.usedBytes / 2 ** 20,
      verifyOk: h.verify().ok,
    };
  }
  const mode = h ? h.mode : 'v8';
  const faultPath = h ? h.faultPath : null;
  const fallbacks = h ? [...h.fallbacks] : [];
  if (h) await h.close();

  const runsMs = t2 - t1;
  const usPerRun = runs ? (runsMs * 1000) / runs : NaN;
  const rmsMs = Math.sqrt(samples.reduce((a, x) => a + x * x, 0) / samples.length);
  const sorted = [...samples].sort((a, b) => a - b);
  const step = Math.max(1, Math.floor(sorted.length / 400));
  const major = gcs.filter((g) => g.kind === 4).length; // NODE_PERFORMANCE_GC_MAJOR
  return {
    variant,
    mode,
    faultPath,
    fallbacks,
    rep,
    setupMs: r3(t1 - t0),
    runs,
    runsMs: r3(runsMs),
    runsPerS: r3((runs * 1000) / runsMs),
    usPerRun: r3(usPerRun),
    latencyMs: quantiles(samples),
    rmsMs: r3(rmsMs),
    splayScore: Math.round((100 * REFERENCE[0]) / usPerRun),
    latencyScore: Math.round((100 * REFERENCE[1]) / Math.round(rmsMs * 10000)),
    samplesMs: sorted.filter((_, i) => i % step === step - 1 || i === sorted.length - 1).map(r3),
    collectionRunsMs: h ? collectionRunsMs : [],
    nextRunsMs: h ? nextRunsMs : [],
    compactionRuns,
    heap: heapStats,
    v8gc: { count: gcs.length, major, minor: gcs.filter((g) => g.kind === 1).length, totalMs: r3(gcs.reduce((a, g) => a + g.ms, 0)), maxMs: r3(Math.max(0, ...gcs.map((g) => g.ms))) },
    keysOk: keysOk && (heapStats?.verifyOk ?? true),
  };
}

/** Runs one variant in a child process (`movegc splay --variant V`) and reads its RESULT line. */
function child(variant: Variant, rep: number, argv: string[]): Promise<SplayRep> {
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/movegc.js');
  return new Promise((resolve, reject) => {
    const c = spawnTied(process.execPath, [cli, 'splay', ...argv, '--variant', variant], { env: { ...process.env, MOVEGC_SPLAY_REP: String(rep) } });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('exit', (code, sig) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as SplayRep);
      else reject(Object.assign(new Error(`splay ${variant} rep ${rep} failed (exit ${code ?? sig}; its error is above)`), { code: 'ERR_CHILD_FAILED' }));
    });
  });
}

/**
 * The argv handed on to the children: every option but --variants and --reps. A child writes
 * nothing, but its --out is checked (and made) before it runs: the parent's, already checked,
 * not the default under the current directory (an audit: an empty ./bench/results left behind,
 * and a run from a read-only directory failed though its --out was writable).
 */
function childArgv(v: Values): string[] {
  const out: string[] = ['--seconds', String(v.seconds), '--heap', String(v.heap), '--trigger', String(v.trigger), '--seed', String(v.seed), '--out', String(v.out)];
  for (const k of KNOBS) out.push(`--${k.flag}`, String(v[k.option]));
  return out;
}

function summarize(reps: SplayRep[]): SplayResults['summary'] {
  const out: SplayResults['summary'] = {};
  for (const variant of VARIANTS) {
    const rs = reps.filter((r) => r.variant === variant);
    if (!rs.length) continue;
    const m = (f: (r: SplayRep) => number): number => r3(median(rs.map(f)));
    const mh = (f: (h: NonNullable<SplayRep['heap']>) => number): number | null => (rs[0].heap ? m((r) => f(r.heap!)) : null);
    const perRep = (f: (r: SplayRep) => number[]): ((g: (xs: number[]) => number) => number | null) => (g) => (rs[0].heap ? r3(median(rs.map((r) => g(f(r))))) : null);
    const collRuns = perRep((r) => r.collectionRunsMs);
    const next = perRep((r) => r.nextRunsMs.filter((x): x is number => x !== null));
    out[variant] = {
      variant,
      mode: rs[0].mode,
      faultPath: rs[0].faultPath,
      fallbacks: rs[0].fallbacks,
      setupMs: m((r) => r.setupMs),
      runs: m((r) => r.runs),
      runsMs: m((r) => r.runsMs),
      runsPerS: m((r) => r.runsPerS),
      usPerRun: m((r) => r.usPerRun),
      rmsMs: m((r) => r.rmsMs),
      splayScore: Math.round(median(rs.map((r) => r.splayScore))),
      latencyScore: Math.round(median(rs.map((r) => r.latencyScore))),
      latencyP50Ms: m((r) => r.latencyMs.p50),
      latencyP99Ms: m((r) => r.latencyMs.p99),
      latencyMaxMs: m((r) => r.latencyMs.max),
      cycles: mh((h) => h.cycles),
      collectP50Ms: mh((h) => h.collectMs.p50),
      collectMaxMs: mh((h) => h.collectMs.max),
      collectionRunP50Ms: collRuns(median),
      collectionRunMaxMs: collRuns((xs) => (xs.length ? Math.max(...xs) : NaN)),
      nextRunP50Ms: next(median),
      compactionRunsP50: perRep((r) => r.compactionRuns.map((c) => c.runs))(median),
      compactionRunsP50Ms: perRep((r) => r.compactionRuns.map((c) => c.ms))(median),
      stallP50Us: mh((h) => h.stallUs.p50),
      stallP99Us: mh((h) => h.stallUs.p99),
      stalls: mh((h) => h.stallUs.count),
      pagesBuiltBySelf: mh((h) => h.pagesBuiltBySelf),
      selfLeft: mh((h) => h.selfLeft),
      faults: mh((h) => h.faults),
      v8gcCount: m((r) => r.v8gc.count),
      v8gcMaxMs: m((r) => r.v8gc.maxMs),
      v8gcTotalMs: m((r) => r.v8gc.totalMs),
      keysOk: rs.every((r) => r.keysOk),
    };
  }
  return out;
}

/** Self over handler, per concurrent mode run both ways. */
export function yardsticks(summary: SplayResults['summary']): Yardstick[] {
  const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || !(b > 0) ? null : r3(a / b));
  const out: Yardstick[] = [];
  for (const mode of ['move', 'copy'] as const) {
    const self = summary[mode];
    const handler = summary[`${mode}-handler`];
    if (!self || !handler || self.faultPath !== 'self' || self.mode !== mode || handler.mode !== mode) continue;
    out.push({ mode, stallP50Ratio: ratio(self.stallP50Us, handler.stallP50Us), collectionRunRatio: ratio(self.collectionRunP50Ms, handler.collectionRunP50Ms) });
  }
  return out;
}

/** The yardsticks as lines for the terminal: the ratio, the target, met or not. */
export function yardstickLines(ys: Yardstick[]): string[] {
  const f = (x: number | null, target: number): string => (x === null ? 'n/a' : `${x.toFixed(3)} (target <= ${target.toFixed(3)}: ${x <= target ? 'met' : 'NOT met'})`);
  return ys.map((y) => `${y.mode}, self / handler: stall p50 per touched unbuilt page ${f(y.stallP50Ratio, TARGETS.stallP50Ratio)}; collection run ${f(y.collectionRunRatio, TARGETS.collectionRunRatio)}`);
}

export function splayTable(res: SplayResults): string {
  const vs = Object.values(res.summary);
  const f = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const rows: Array<[string, (s: (typeof vs)[number]) => string]> = [
    ['runs/s', (s) => f(s.runsPerS, 0)],
    ['us per run', (s) => f(s.usPerRun, 0)],
    ['Splay score', (s) => String(s.splayScore)],
    ['latency p50 ms', (s) => f(s.latencyP50Ms, 2)],
    ['latency p99 ms', (s) => f(s.latencyP99Ms, 2)],
    ['latency max ms', (s) => f(s.latencyMaxMs, 1)],
    ['RMS latency ms', (s) => f(s.rmsMs, 2)],
    ['SplayLatency score', (s) => String(s.latencyScore)],
    ['movegc cycles', (s) => f(s.cycles, 0)],
    ['collect() p50 / max ms', (s) => (s.cycles === null ? '-' : `${f(s.collectP50Ms, 1)} / ${f(s.collectMaxMs, 1)}`)],
    ['collection run p50 / max ms', (s) => (s.cycles === null ? '-' : `${f(s.collectionRunP50Ms, 1)} / ${f(s.collectionRunMaxMs, 1)}`)],
    ['  run after it p50 ms', (s) => f(s.nextRunP50Ms, 1)],
    ['runs while compacting p50: n / ms', (s) => (s.cycles === null ? '-' : `${f(s.compactionRunsP50, 0)} / ${f(s.compactionRunsP50Ms, 1)}`)],
    ['stall/page p50 / p99 us', (s) => (s.stalls ? `${f(s.stallP50Us, 0)} / ${f(s.stallP99Us, 0)}` : '-')],
    ['  touched unbuilt pages', (s) => f(s.stalls, 0)],
    ['  built by self / left to the kernel', (s) => (s.cycles === null ? '-' : `${f(s.pagesBuiltBySelf, 0)} / ${f(s.selfLeft, 0)}`)],
    ['kernel faults', (s) => f(s.faults, 0)],
    ['V8 GCs (max ms)', (s) => `${f(s.v8gcCount, 0)} (${f(s.v8gcMaxMs, 1)})`],
    ['setup ms', (s) => f(s.setupMs, 0)],
    ['keys / heap check', (s) => (s.keysOk ? 'ok' : 'FAILED')],
  ];
  const head = ['', ...vs.map((s) => (s.variant === 'v8' ? 'v8 (plain JS)' : variantTitle(s.mode, s.faultPath) + (s.fallbacks.length ? '*' : '')))];
  const cells = [head, ...rows.map(([k, g]) => [k, ...vs.map(g)])];
  const w = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r, j) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (j === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}

export async function main(v: Values): Promise<void> {
  const knobs: KnobValues = knobValuesOf(v);
  if (v.variant) {
    // A child: one rep of one variant, one RESULT line.
    const r = await runVariant(v.variant as Variant, Number(process.env.MOVEGC_SPLAY_REP ?? 1), v, knobs);
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    return;
  }
  const variants = v.variants as Variant[];
  const reps = v.reps as number;
  const prov = startProvenance(invocation(), { capacityMiB: v.heap, trigger: v.trigger, ...knobs });
  const startedAt = new Date();
  process.stderr.write(`movegc splay: ${variants.join(', ')} x ${reps} reps, ${v.seconds} s of runs each, heap ${v.heap} MiB, load ${prov.record.load.start[0]}\n`);
  const all: SplayRep[] = [];
  for (let rep = 1; rep <= reps; rep++)
    for (const variant of variants) {
      const r = await child(variant, rep, childArgv(v));
      all.push(r);
      const cr = r.collectionRunsMs.length ? median(r.collectionRunsMs).toFixed(1) : '-';
      process.stderr.write(
        `  rep ${rep}/${reps} ${variant.padEnd(12)}: ${r.runsPerS.toFixed(0)} runs/s, latency p50 ${r.latencyMs.p50.toFixed(2)} p99 ${r.latencyMs.p99.toFixed(2)} max ${r.latencyMs.max.toFixed(1)} ms, ` +
          `RMS ${r.rmsMs.toFixed(2)} ms${r.heap ? `, ${r.heap.cycles} cycles, collect() max ${r.heap.cycles ? r.heap.collectMs.max.toFixed(1) : '-'} ms, collection run p50 ${cr} ms, stall/page p50 ${r.heap.stallUs.count ? r.heap.stallUs.p50.toFixed(0) : '-'} us (${r.heap.stallUs.count} pages, ${r.heap.pagesBuiltBySelf} self-built, ${r.heap.stallUs.reads} read or written in from-space, ${r.heap.faults} kernel faults)` : ''}, V8 GCs ${r.v8gc.count}${r.keysOk ? '' : ', CHECK FAILED'}\n`,
      );
    }
  const summary = summarize(all);
  const res: SplayResults = {
    schema: SCHEMA,
    provenance: prov.end(),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    params: { variants, reps, seconds: v.seconds as number, heapMiB: v.heap as number, trigger: v.trigger as number, seed: v.seed as number, knobs },
    summary,
    yardsticks: yardsticks(summary),
    reps: all,
  };
  const out = path.resolve(process.cwd(), v.out as string);
  fs.mkdirSync(out, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify(res, null, 1);
  const html = renderSplayHtml(res);
  const files = [`splay-${stamp}.json`, 'splay-latest.json', `splay-${stamp}.html`, 'splay-latest.html'].map((n) => path.join(out, n));
  files.forEach((p, i) => fs.writeFileSync(p, i < 2 ? json : html));
  console.log(`\nOctane Splay / SplayLatency, medians of ${reps} reps (${v.seconds} s of runs each):\n${splayTable(res)}`);
  const ys = yardstickLines(res.yardsticks);
  if (ys.length) console.log(`\nIssue 11 yardsticks (medians):\n${ys.map((l) => '  ' + l).join('\n')}`);
  console.log(provenanceLine(res.provenance));
  console.log(`\nwrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  if (!all.every((r) => r.keysOk)) process.exitCode = 1;
}

runWhenMain(import.meta.url, ['splay']);
