/**
 * The movegc benchmark: the same fragmented heap compacted in move, copy and stw mode, side by
 * side, with a concurrent mutator, the kernel floor measured in the same process, a JSON
 * results file and an offline HTML report. `movegc bench` and `movegc sweep` (the options are
 * in cli/commands.ts: `movegc bench --help`).
 *
 * Repetitions are interleaved (rep 1: move, copy, stw; rep 2: ...), each on a fresh heap built
 * the same way from the seed, so slow drifts of a noisy machine hit every mode alike. Figures
 * are medians over the repetitions; the per-rep values are in the JSON.
 *
 * Writes OUT/latest.json and OUT/latest.html and timestamped copies (OUT relative to the current
 * directory); a sweep also writes OUT/sweep-latest.{json,html}, and later non-sweep reports show
 * that sweep (labelled as such), and the latest Splay results (OUT/splay-latest.json).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { probe, type ModeName } from '../gc/index.js';
import { UsageError, type Values } from '../cli/args.js';
import { runRep, stopWatchdog, type RepResult } from './cycle.js';
import { measureFloor, type Floor } from './floor.js';
import { KNOBS, knobGrid, knobLabel, type KnobValues, type MutatorKind } from './knobs.js';
import { startProvenance, provenanceLine, type Provenance } from './provenance.js';
import { cdf, cdfOfBuckets, median, medianOfSampled, mergeBuckets, mmu, mmuWindows, quantiles, type Quantiles } from './stats.js';
import { SIZE_MIX_DOC, MAX_PINS, type Pattern, type SizeMix, type Workload } from './workload.js';
import { renderHtml } from './report.js';
import { SCHEMA as SPLAY_SCHEMA, type SplayResults } from './splay.js';
import { runWhenMain } from '../cli/main.js';

const MiB = 2 ** 20;

export interface Args {
  heapMiB: number;
  live: number;
  pattern: Pattern;
  sizes: SizeMix;
  modes: ModeName[];
  reps: number;
  pinned: number;
  quick: boolean;
  sweep: boolean;
  sweepMiB: number[];
  out: string;
  seed: number;
  fill: number;
  roots: number;
  mutatorMs: number | null;
  sampleMs: number;
  mutator: MutatorKind;
  touchUs: number;
  /** Collections of each fresh heap before the measured one. */
  warmCycles: number;
  verify: boolean;
  floor: boolean;
  /** Heap options that change results: one set for bench, every combination for sweep. */
  knobs: KnobValues[];
}

/** The parsed command line (cli/commands.ts) as the bench's arguments. */
function toArgs(v: Values): Args {
  const quick = v.quick === true;
  const sweep = v.sweep === true;
  const lists: Record<string, Array<string | number>> = {};
  for (const k of KNOBS) {
    const x = v[k.option];
    if (x !== undefined && x !== null) lists[k.option] = Array.isArray(x) ? x : [x as string | number];
  }
  return {
    heapMiB: (v.heap as number | null) ?? (quick ? 256 : 1024),
    live: v.live as number,
    pattern: v.pattern as Pattern,
    sizes: v.sizes as SizeMix,
    modes: v.modes as ModeName[],
    reps: (v.reps as number | null) ?? (quick || sweep ? 3 : 5),
    pinned: v.pinned as number,
    quick,
    sweep,
    sweepMiB: (v.heaps as number[] | undefined) ?? [],
    out: path.resolve(process.cwd(), v.out as string),
    seed: v.seed as number,
    fill: v.fill as number,
    roots: v.roots as number,
    mutatorMs: (v.mutatorMs as number | null) ?? null,
    sampleMs: v.sampleMs as number,
    mutator: v.mutator as MutatorKind,
    touchUs: v.touchUs as number,
    warmCycles: (v.warmCycles as number | undefined) ?? 0,
    verify: v.verify === true,
    floor: v.noFloor !== true,
    knobs: knobGrid(lists),
  };
}

// ------------------------------------------------------------------ results

type RawRep = Omit<RepResult, 'timeline' | 'stalls' | 'stallsCompaction' | 'faultSamplesUs' | 'faultHandlerBuckets'>;

export interface ModeSummary {
  mode: ModeName;
  reps: number;
  heapBytes: number;
  usedBytes: number;
  liveBytes: number;
  liveObjects: number;
  pins: number;
  buildMs: number;
  compactionMs: number;
  pauseMs: number;
  /** The longest single stop of the mutator in any rep (a pause, a faulting access, idle()). */
  stwMaxMs: number;
  /** What that stop was (RepResult.stwMaxKind of the rep it happened in). */
  stwMaxKind: string;
  /** Per rep, the sum of every stop; the median. */
  stwTotalMs: number;
  /** Minimum mutator utilization at 1, 10 and 100 ms windows: per window, the median over reps. */
  mmu1ms: number | null;
  mmu10ms: number | null;
  mmu100ms: number | null;
  /** Median per pause kind (initial, remark, compaction, ...), ms. */
  pausesMs: Record<string, number>;
  marking: string;
  collectMs: number;
  markMs: number;
  planMs: number;
  concurrentMs: number;
  compactorBusyMs: number;
  idleMs: number;
  throughputMBps: number;
  msPerLiveMiB: number;
  faults: number;
  /** Accesses that stalled on an unbuilt page (kernel fault or self-service), see RepResult. */
  mutatorFaults: number;
  /** Mutator side (the stalled access as the mutator sees it), us. */
  faultP50Us: number;
  faultP99Us: number;
  faultMaxUs: number;
  /** Handler side (fault server: read to install), us. */
  handlerFaultP50Us: number;
  handlerFaultP99Us: number;
  pagesTotal: number;
  pagesMoved: number;
  pagesCopied: number;
  /** Installed unbuilt (WHOLE pages of large objects kept on pages, move mode). */
  pagesWhole: number;
  /** Of those, install calls of one aligned 2 MiB span each (--huge-pages): a PMD move when the source is a huge page. */
  wholePmdCalls: number;
  pagesBuiltByFaults: number;
  ebusyFallbacks: number;
  moveCalls: number;
  copyCalls: number;
  batchPagesP50: number;
  /** Pages the mutator's accessors served themselves (self-service). */
  pagesBySelf: number;
  /** The compactor's time split (ms): build, install (MOVE/COPY calls), release (madvise), the rest. */
  compactorBuildMs: number;
  compactorInstallMs: number;
  compactorReleaseMs: number;
  compactorOtherMs: number;
  rssBeforeBytes: number;
  rssPeakBytes: number;
  rssAfterBytes: number;
  rssPeakOverBefore: number;
  touches: number;
  touchErrors: number;
  verifyOk: boolean | null;
  fallbacks: readonly string[];
  raw: RawRep[];
}

export interface Distributions {
  pauseMs: number[];
  collectMs: number[];
  compactionMs: number[];
  faultMutatorCdf: Array<[number, number]>;
  faultMutatorPooled: Quantiles;
  faultHandlerCdf: Array<[number, number]>;
}

export interface Comparison {
  workload: Workload;
  /** The heap options every rep of this comparison ran with (besides capacity and mode). */
  heapOptions: KnobValues;
  horizonMs: number;
  modes: Partial<Record<ModeName, ModeSummary>>;
  ratios: Record<string, number | null>;
  /** curves: every stall (collect() whole); compaction: mark and plan left out. */
  mmu: {
    windowsMs: number[];
    curves: Partial<Record<ModeName, Array<number | null>>>;
    compaction: Partial<Record<ModeName, Array<number | null>>>;
    /** Every rep of a mode back to back (one run of reps x horizon): the worst window anywhere. */
    wholeRun: { windowsMs: number[]; curves: Partial<Record<ModeName, Array<number | null>>> };
  };
  distributions: Partial<Record<ModeName, Distributions>>;
  timelines: Partial<Record<ModeName, RepResult['timeline'] & { rep: number }>>;
}

/**
 * The project's design targets (from its issues: ART's ratios and the pause bound), each
 * measured by this run: kept in the JSON and the report's appendix, not printed, and never
 * asserted (a noisy machine decides many of them).
 */
export interface Goal {
  id: string;
  text: string;
  value: number | null;
  target: string;
  met: boolean | null;
}

export interface SweepPoint {
  heapMiB: number;
  /** The heap options of this point, and the ones that differ from the defaults as a label ('' when none). */
  knobs: KnobValues;
  label: string;
  skipped?: string;
  comparison?: Omit<Comparison, 'timelines' | 'distributions'>;
  msPerLiveMiB: Partial<Record<ModeName, number>>;
  pauseMs: Partial<Record<ModeName, number>>;
  collectMs: Partial<Record<ModeName, number>>;
  compactionMs: Partial<Record<ModeName, number>>;
  throughputMBps: Partial<Record<ModeName, number>>;
}

export interface Results {
  schema: 'movegc-bench/2';
  provenance: Provenance;
  startedAt: string;
  finishedAt: string;
  elapsedS: number;
  command: string;
  params: Omit<Args, 'out'> & { sizesDoc: string };
  machine: Record<string, unknown>;
  floor: (Omit<Floor, 'faultRoundTripSamplesUs' | 'busySibling'> & {
    faultRoundTripCdf: Array<[number, number]>;
    busySibling: Omit<Floor['busySibling'], 'faultRoundTripSamplesUs'> & { faultRoundTripCdf: Array<[number, number]> };
  }) | null;
  main: Comparison | null;
  goals: Goal[];
  sweep: { points: SweepPoint[]; pauseSmallVsLarge: Record<string, unknown> | null; fromEarlierRun?: string } | null;
  /** The latest Splay run in the same results directory (movegc splay), if any. */
  splay: (SplayResults & { fromFile: string }) | null;
}

function strip(r: RepResult): RawRep {
  const { timeline: _t, stalls: _s, stallsCompaction: _c, faultSamplesUs: _f, faultHandlerBuckets: _b, ...rest } = r;
  return rest;
}

function summarizeMode(mode: ModeName, reps: RepResult[]): ModeSummary {
  const m = (f: (r: RepResult) => number): number => median(reps.map(f));
  const mq = (f: (r: RepResult) => Quantiles, k: 'p50' | 'p99' | 'max'): number => medianOfSampled(reps.map(f), k);
  const allVerified = reps.every((r) => r.verify === undefined) ? null : reps.every((r) => r.verify?.ok === true);
  return {
    mode,
    reps: reps.length,
    heapBytes: reps[0].heapBytes,
    usedBytes: m((r) => r.usedBytes),
    liveBytes: m((r) => r.liveBytes),
    liveObjects: m((r) => r.liveObjects),
    pins: m((r) => r.pins),
    buildMs: m((r) => r.buildMs),
    compactionMs: m((r) => r.compactionMs),
    pauseMs: m((r) => r.pauseMs),
    stwMaxMs: Math.max(...reps.map((r) => r.stwMaxMs)),
    stwMaxKind: reps.reduce((x, r) => (r.stwMaxMs > x.stwMaxMs ? r : x), reps[0]).stwMaxKind,
    stwTotalMs: m((r) => r.stwTotalMs),
    mmu1ms: null,
    mmu10ms: null,
    mmu100ms: null,
    pausesMs: Object.fromEntries([...new Set(reps.flatMap((r) => r.pauses.map((p) => p.kind)))].map((k) => [k, m((r) => r.pauses.filter((p) => p.kind === k).reduce((t, p) => t + p.ms, 0))])),
    marking: reps[0].marking,
    collectMs: m((r) => r.collectMs),
    markMs: m((r) => r.markMs),
    planMs: m((r) => r.planMs),
    concurrentMs: m((r) => r.concurrentMs),
    compactorBusyMs: m((r) => r.compactorBusyMs),
    idleMs: m((r) => r.idleMs),
    throughputMBps: m((r) => r.throughputMBps),
    msPerLiveMiB: m((r) => r.compactionMs / (r.liveBytes / MiB)),
    faults: m((r) => r.faults),
    mutatorFaults: m((r) => r.mutatorFaults),
    // Over the reps that have samples (medianOfSampled).
    faultP50Us: mq((r) => r.faultMutatorUs, 'p50'),
    faultP99Us: mq((r) => r.faultMutatorUs, 'p99'),
    faultMaxUs: mq((r) => r.faultMutatorUs, 'max'),
    handlerFaultP50Us: mq((r) => r.faultHandlerUs, 'p50'),
    handlerFaultP99Us: mq((r) => r.faultHandlerUs, 'p99'),
    pagesTotal: m((r) => r.pages.total),
    pagesMoved: m((r) => r.pagesMoved),
    pagesCopied: m((r) => r.pagesCopied),
    pagesWhole: m((r) => r.pages.whole ?? 0),
    wholePmdCalls: m((r) => r.pages.wholePmdCalls ?? 0),
    pagesBuiltByFaults: m((r) => r.pages.builtByFaults),
    ebusyFallbacks: m((r) => r.ebusyFallbacks),
    moveCalls: m((r) => r.moveCalls),
    copyCalls: m((r) => r.copyCalls),
    batchPagesP50: m((r) => r.batchPagesP50),
    pagesBySelf: m((r) => r.pages.builtBySelf ?? 0),
    compactorBuildMs: m((r) => r.compactorSplit?.buildMs ?? 0),
    compactorInstallMs: m((r) => r.compactorSplit?.installMs ?? 0),
    compactorReleaseMs: m((r) => r.compactorSplit?.releaseMs ?? 0),
    compactorOtherMs: m((r) => r.compactorSplit?.otherMs ?? 0),
    rssBeforeBytes: m((r) => r.rssBeforeBytes),
    rssPeakBytes: m((r) => r.rssPeakBytes),
    rssAfterBytes: m((r) => r.rssAfterBytes),
    rssPeakOverBefore: m((r) => r.rssPeakBytes / r.rssBeforeBytes),
    touches: m((r) => r.touches),
    touchErrors: reps.reduce((s, r) => s + r.touchErrors, 0),
    verifyOk: allVerified,
    fallbacks: reps[0].fallbacks,
    raw: reps.map(strip),
  };
}

function downsampleTimeline(t: RepResult['timeline'], max = 2500): RepResult['timeline'] {
  const n = t.tMs.length;
  const step = Math.max(1, Math.ceil(n / max));
  const pick = <T>(xs: T[]): T[] => xs.filter((_, i) => i % step === 0 || i === n - 1);
  const fe = t.faultEvents;
  const fstep = Math.max(1, Math.ceil(fe.length / 4000));
  const r2 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    ...t,
    tMs: pick(t.tMs).map(r2),
    pagesMapped: pick(t.pagesMapped),
    faults: pick(t.faults),
    rssMiB: pick(t.rssMiB).map((x) => Math.round(x * 10) / 10),
    faultEvents: fe.filter((_, i) => i % fstep === 0).map(([a, b]) => [r2(a), Math.round(b * 10) / 10]),
  };
}

/** A mode's reps back to back: their stalls on one time axis, and its length. */
function concatenated(reps: RepResult[]): { stalls: Array<[number, number]>; horizonMs: number } {
  const stalls: Array<[number, number]> = [];
  let t = 0;
  for (const r of reps) {
    for (const [a, b] of r.stalls) stalls.push([t + a, t + b]);
    t += r.horizonMs;
  }
  return { stalls, horizonMs: t };
}

function compare(workload: Workload, heapOptions: KnobValues, horizonMs: number, byMode: Map<ModeName, RepResult[]>, floor: Floor | null): Comparison {
  const modes: Comparison['modes'] = {};
  const distributions: Comparison['distributions'] = {};
  const timelines: Comparison['timelines'] = {};
  let minHorizon = Infinity;
  for (const reps of byMode.values()) for (const r of reps) minHorizon = Math.min(minHorizon, r.horizonMs);
  const windowsMs = mmuWindows(minHorizon, 48);
  const curves: Comparison['mmu']['curves'] = {};
  const compaction: Comparison['mmu']['compaction'] = {};
  const medianCurve = (perRep: Array<Array<number | null>>): Array<number | null> =>
    windowsMs.map((_, i) => {
      const v = perRep.map((c) => c[i]).filter((x): x is number => x !== null);
      return v.length ? Math.round(median(v) * 1e4) / 1e4 : null;
    });
  const runs = new Map([...byMode].map(([m, reps]) => [m, concatenated(reps)]));
  const runMs = Math.min(...[...runs.values()].map((r) => r.horizonMs));
  const runWindowsMs = mmuWindows(runMs, 56);
  const wholeRun: Comparison['mmu']['wholeRun'] = { windowsMs: runWindowsMs, curves: {} };
  for (const [mode, reps] of byMode) {
    const s = summarizeMode(mode, reps);
    const run = runs.get(mode)!;
    wholeRun.curves[mode] = mmu(run.stalls, run.horizonMs, runWindowsMs).map((x) => (x === null ? null : Math.round(x * 1e4) / 1e4));
    modes[mode] = s;
    curves[mode] = medianCurve(reps.map((r) => mmu(r.stalls, r.horizonMs, windowsMs)));
    const at = (w: number): number | null => {
      const v = reps.map((r) => mmu(r.stalls, r.horizonMs, [w])[0]).filter((x): x is number => x !== null);
      return v.length ? Math.round(median(v) * 1e4) / 1e4 : null;
    };
    s.mmu1ms = at(1);
    s.mmu10ms = at(10);
    s.mmu100ms = at(100);
    compaction[mode] = medianCurve(reps.map((r) => mmu(r.stallsCompaction, r.horizonMs, windowsMs)));
    const pooled = reps.flatMap((r) => r.faultSamplesUs);
    distributions[mode] = {
      pauseMs: reps.map((r) => r.pauseMs),
      collectMs: reps.map((r) => r.collectMs),
      compactionMs: reps.map((r) => r.compactionMs),
      faultMutatorCdf: cdf(pooled),
      faultMutatorPooled: quantiles(pooled),
      faultHandlerCdf: cdfOfBuckets(mergeBuckets(reps.map((r) => r.faultHandlerBuckets))),
    };
    // The timeline of the rep whose compaction time is the median one.
    const med = s.compactionMs;
    const rep = [...reps].sort((a, b) => Math.abs(a.compactionMs - med) - Math.abs(b.compactionMs - med))[0];
    timelines[mode] = { ...downsampleTimeline(rep.timeline), rep: rep.rep };
  }
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a === undefined || b === undefined || !(b > 0) || !Number.isFinite(a) ? null : a / b);
  const mv = modes.move;
  const cp = modes.copy;
  const sw = modes.stw;
  const ratios: Record<string, number | null> = {
    moveOverCopyCompaction: ratio(mv?.compactionMs, cp?.compactionMs),
    moveOverStwCompaction: ratio(mv?.compactionMs, sw?.compactionMs),
    copyOverStwCompaction: ratio(cp?.compactionMs, sw?.compactionMs),
    moveOverCopyPause: ratio(mv?.pauseMs, cp?.pauseMs),
    movePeakOverBefore: mv?.rssPeakOverBefore ?? null,
    copyPeakOverBefore: cp?.rssPeakOverBefore ?? null,
    stwPeakOverBefore: sw?.rssPeakOverBefore ?? null,
    moveFaultP50OverFloor: ratio(mv?.faultP50Us, floor?.faultRoundTripUs.p50),
    moveFaultP50OverBusyFloor: ratio(mv?.faultP50Us, floor?.busySibling.faultRoundTripUs.p50),
    moveHandlerFaultP50OverFloor: ratio(mv?.handlerFaultP50Us, floor?.faultRoundTripUs.p50),
    copyFaultP50OverFloor: ratio(cp?.faultP50Us, floor?.faultRoundTripUs.p50),
    moveThroughputGBps: mv ? mv.throughputMBps / 1000 : null,
    copyThroughputGBps: cp ? cp.throughputMBps / 1000 : null,
  };
  return { workload, heapOptions, horizonMs, modes, ratios, mmu: { windowsMs, curves, compaction, wholeRun }, distributions, timelines };
}

function goalsOf(c: Comparison | null, sweep: Results['sweep']): Goal[] {
  const g: Goal[] = [];
  const r = c?.ratios ?? {};
  const fragmented = c ? `${c.workload.pattern}, live ${c.workload.live}, ${c.workload.heapBytes / MiB} MiB` : '';
  const add = (id: string, text: string, value: number | null | undefined, target: string, ok: (v: number) => boolean): void => {
    const v = value ?? null;
    g.push({ id, text, value: v, target, met: v === null ? null : ok(v) });
  };
  add('moveVsCopy', `move compaction time / copy's (${fragmented})`, r.moveOverCopyCompaction, '<= 0.5', (v) => v <= 0.5);
  add('faultVsFloor', 'move fault-to-wake p50 (mutator side) / kernel floor fault round trip p50', r.moveFaultP50OverFloor, '<= 2', (v) => v <= 2);
  add('faultVsBusyFloor', '  the same against the floor measured with a sibling thread busy (as the compactor is)', r.moveFaultP50OverBusyFloor, '<= 2', (v) => v <= 2);
  add('moveRss', 'move RSS peak / RSS before the cycle', r.movePeakOverBefore, '<= 1.10', (v) => v <= 1.1);
  add('throughput', 'move live-data compaction throughput, GB/s', r.moveThroughputGBps, '>= 1', (v) => v >= 1);
  const p = sweep?.pauseSmallVsLarge as { move?: { pause1GiBMs: number | null; ratio: number | null } } | null | undefined;
  if (p?.move) {
    add('pause1G', 'move compaction pause at 1 GiB, ms', p.move.pause1GiBMs, '< 5', (v) => v < 5);
    add('pauseScaling', 'move pause at 1 GiB / pause at 64 MiB (same roots)', p.move.ratio, '<= 1.5', (v) => v <= 1.5);
  } else if (c?.modes.move && c.workload.heapBytes === 1024 * MiB) {
    add('pause1G', 'move compaction pause at 1 GiB, ms', c.modes.move.pauseMs, '< 5', (v) => v < 5);
  }
  return g;
}

// ------------------------------------------------------------------ running

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : os.freemem();
}

function fmtMs(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

async function runComparison(args: Args, heapMiB: number, knobs: KnobValues, floor: Floor | null, t0: number, label: string): Promise<Comparison> {
  const workload: Workload = { heapBytes: heapMiB * MiB, live: args.live, pattern: args.pattern, sizes: args.sizes, pinned: args.pinned, seed: args.seed, fill: args.fill, roots: args.roots };
  const horizonMs = args.mutatorMs ?? Math.max(100, heapMiB / 2);
  const byMode = new Map<ModeName, RepResult[]>(args.modes.map((m) => [m, []]));
  for (let rep = 1; rep <= args.reps; rep++) {
    for (const mode of args.modes) {
      const r = await runRep({ mode, workload, rep, horizonMs, sampleMs: args.sampleMs, verify: args.verify, mutator: args.mutator, touchUs: args.touchUs, warmCycles: args.warmCycles, heapOptions: knobs });
      byMode.get(mode)!.push(r);
      const el = ((performance.now() - t0) / 1000).toFixed(1);
      const fb = r.mode !== mode ? ` (FELL BACK to ${r.mode}: ${r.fallbacks.join('; ')})` : '';
      process.stderr.write(
        `[${el.padStart(6)} s] ${label}rep ${rep}/${args.reps} ${mode.padEnd(4)}${fb} ${heapMiB} MiB: build ${(r.buildMs / 1000).toFixed(1)} s, ` +
          `collect ${fmtMs(r.collectMs)} ms (pause ${fmtMs(r.pauseMs)}), compaction ${fmtMs(r.compactionMs)} ms, ` +
          `${(r.throughputMBps / 1000).toFixed(2)} GB/s, stalled accesses ${r.mutatorFaults} (p50 ${r.faultMutatorUs.p50.toFixed(0)} us), ` +
          `rss x${(r.rssPeakBytes / r.rssBeforeBytes).toFixed(3)}, stw max ${fmtMs(r.stwMaxMs)} ms (${r.stwMaxKind})${r.touchErrors ? `, ${r.touchErrors} BAD READS (first: ${r.firstError})` : ''}${r.stoppedEarly ? `, ${r.stoppedEarly}` : ''}${r.verify && !r.verify.ok ? ', VERIFY FAILED' : ''}\n`,
      );
    }
  }
  return compare(workload, knobs, horizonMs, byMode, floor);
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, j) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (j === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}

export function textSummary(res: Results): string {
  const out: string[] = [];
  const f = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const c = res.main;
  if (c) {
    const w = c.workload;
    out.push(`workload: ${w.heapBytes / MiB} MiB heap, live ${w.live}, pattern ${w.pattern}, sizes ${w.sizes}, pinned ${w.pinned}, seed ${w.seed}; mutator ${res.params.mutator}${res.params.mutator === 'paced' ? ` (${res.params.touchUs} us)` : ''}; ${res.params.warmCycles ? `measured after ${res.params.warmCycles} collections of each heap; ` : ''}medians of ${res.params.reps} reps`);
    const ms = Object.values(c.modes) as ModeSummary[];
    out.push(
      table([
        ['mode', 'live MiB', 'compact ms', 'GB/s', 'pause ms', 'stw max ms', 'stw total ms', 'mmu 10ms', 'collect ms', 'mark ms', 'stalls', 'mut p50 us', 'mut p99 us', 'hdl p50 us', 'hdl p99 us', 'moved', 'copied', 'whole', 'ebusy', 'MOVE calls', 'RSS before MiB', 'peak MiB', 'peak/before'],
        ...ms.map((s) => {
          // stw has no faults, fault server or MOVE calls: "-", not 0.
          const cc = (x: number | null, d = 1): string => (s.mode === 'stw' ? '-' : f(x, d));
          return [
            s.mode, f(s.liveBytes / MiB), f(s.compactionMs), f(s.throughputMBps / 1000, 2), f(s.pauseMs, 2), f(s.stwMaxMs, 2), f(s.stwTotalMs, 1), f(s.mmu10ms, 2), f(s.collectMs), f(s.markMs), cc(s.mutatorFaults, 0),
            cc(s.faultP50Us), cc(s.faultP99Us), cc(s.handlerFaultP50Us), cc(s.handlerFaultP99Us), f(s.pagesMoved, 0), f(s.pagesCopied, 0), f(s.pagesWhole, 0), cc(s.ebusyFallbacks, 0),
            cc(s.moveCalls, 0), f(s.rssBeforeBytes / MiB), f(s.rssPeakBytes / MiB), f(s.rssPeakOverBefore, 3),
          ];
        }),
      ]),
    );
    // Where the compactor's time went, and what split its install runs (each page the mutator
    // served itself is a page the compactor's run must step around: another call).
    const cm = ms.filter((s) => s.mode !== 'stw');
    if (cm.length)
      out.push(
        'compactor ms build / install / release / other; pages per install call (median pages / median calls); pages the mutator served: ' +
          cm.map((s) => `${s.mode} ${f(s.compactorBuildMs, 0)} / ${f(s.compactorInstallMs, 0)} / ${f(s.compactorReleaseMs, 0)} / ${f(s.compactorOtherMs, 0)}; ${f((s.pagesMoved + s.pagesCopied) / Math.max(1, s.moveCalls + s.copyCalls), 1)}; ${f(s.pagesBySelf, 0)}`).join(' | '),
      );
    out.push('ratios: ' + Object.entries(c.ratios).map(([k, v]) => `${k} ${f(v, 3)}`).join(', '));
  }
  if (res.floor) {
    const fl = res.floor;
    out.push(
      `kernel floor (same process): MOVE ${f(fl.movePerPageNs['1'], 0)} / ${f(fl.movePerPageNs['16'], 0)} / ${f(fl.movePerPageNs['32'], 0)} / ${f(fl.movePerPageNs['34'], 0)} / ${f(fl.movePerPageNs['64'], 0)} / ${f(fl.movePerPageNs['512'], 0)} ns/page at 1/16/32/34/64/512 pages per call; ` +
        `COPY ${f(fl.copyPerPageNs['1'], 0)} / ${f(fl.copyPerPageNs['64'], 0)} / ${f(fl.copyPerPageNs['512'], 0)} ns/page at 1/64/512; memcpy ${f(fl.memcpyPerPageNs, 0)} ns/page; ` +
        `first read after mremap ${f(fl.firstReadPerPageNs?.remapped, 0)} ns/page (of a page just written: ${f(fl.firstReadPerPageNs?.written, 0)}); ` +
        `with a sibling thread running: MOVE ${f(fl.busySibling.movePerPageNs['1'], 0)} / ${f(fl.busySibling.movePerPageNs['64'], 0)}, COPY ${f(fl.busySibling.copyPerPageNs['1'], 0)} / ${f(fl.busySibling.copyPerPageNs['64'], 0)} ns/page at 1/64, fault round trip p50 ${f(fl.busySibling.faultRoundTripUs.p50)} us; ` +
        `fault round trip p50 ${f(fl.faultRoundTripUs.p50)} us, p99 ${f(fl.faultRoundTripUs.p99)} us (${fl.faultRoundTripUs.count} faults)`,
    );
  }
  if (res.sweep && !res.sweep.fromEarlierRun) {
    const modes = res.params.modes;
    out.push('sweep (medians): heap MiB | ' + modes.map((m) => `${m} ms/live MiB, pause ms, collect ms`).join(' | '));
    for (const p of res.sweep.points) {
      if (p.skipped) out.push(`  ${p.heapMiB}: skipped (${p.skipped})`);
      else out.push(`  ${p.heapMiB}${p.label ? ` (${p.label})` : ''}: ` + modes.map((m) => `${m} ${f(p.msPerLiveMiB[m], 3)}, ${f(p.pauseMs[m], 2)}, ${f(p.collectMs[m], 0)}`).join(' | '));
    }
    if (res.sweep.pauseSmallVsLarge) out.push('pause 64 MiB vs 1 GiB: ' + JSON.stringify(res.sweep.pauseSmallVsLarge));
  }
  out.push(provenanceLine(res.provenance));
  return out.join('\n');
}

/** The heap options a comparison passes to Heap.create, by mode (capacity and mode vary). */
function heapOptionsRecord(args: Args): Record<string, unknown> {
  const sizes = args.sweep ? args.sweepMiB : [args.heapMiB];
  return { capacityMiB: sizes, modes: args.modes, ...(args.knobs.length === 1 ? args.knobs[0] : { combinations: args.knobs }) };
}

export async function main(v: Values): Promise<void> {
  const args = toArgs(v);
  if (args.sweep && args.sweepMiB.length === 0) throw new UsageError('--heaps needs at least one size');
  const t0 = performance.now();
  const startedAt = new Date();
  const command = ['movegc', ...process.argv.slice(2)].join(' ');
  const prov = startProvenance(command, heapOptionsRecord(args));
  const caps = probe();
  const cpus = os.cpus();
  const machine = {
    kernel: os.release(),
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memTotalBytes: os.totalmem(),
    memAvailableBytes: memAvailable(),
    thp: caps.thp,
    node: process.version,
    v8: process.versions.v8,
    uffd: caps.uffd.ok ? caps.uffd.how : `no (${caps.uffd.reason})`,
    move: caps.move.ok ? 'yes' : `no (${caps.move.reason})`,
    // The probe's answers to what the kernel supports beyond MOVE itself (gc/probe.ts).
    crossMm: caps.crossMm.ok ? 'yes' : `no (${caps.crossMm.reason})`,
    pinsRefused: caps.pinsRefused.ok ? 'yes' : `no (${caps.pinsRefused.reason})`,
    moveFixes: caps.moveFixes.ok ? 'yes' : `no (${caps.moveFixes.reason})`,
    hostname: os.hostname(),
  };
  process.stderr.write(`movegc ${args.sweep ? 'sweep' : 'bench'}: Linux ${machine.kernel}, ${machine.cores} cores, ${machine.cpuModel}, THP ${machine.thp}, node ${machine.node}, MOVE ${machine.move}, load ${prov.record.load.start[0]}\n`);

  let floor: Floor | null = null;
  if (args.floor) {
    if (!caps.uffd.ok) process.stderr.write('kernel floor skipped: no userfaultfd\n');
    else {
      process.stderr.write('kernel floor: MOVE/COPY per page and the fault round trip ...\n');
      floor = await measureFloor(args.quick ? { pages: 4096, reps: 3, faults: 1000 } : { pages: 16384, reps: 3, faults: 2000 });
      process.stderr.write(
        `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] floor: MOVE ${floor.movePerPageNs['1'].toFixed(0)}/${floor.movePerPageNs['16'].toFixed(0)}/${floor.movePerPageNs['32'].toFixed(0)}/${floor.movePerPageNs['34'].toFixed(0)}/${floor.movePerPageNs['64'].toFixed(0)}/${floor.movePerPageNs['512'].toFixed(0)} ns/page at 1/16/32/34/64/512 per call, ` +
          `COPY ${floor.copyPerPageNs['1'].toFixed(0)}/${floor.copyPerPageNs['64'].toFixed(0)}/${floor.copyPerPageNs['512'].toFixed(0)} ns/page, ` +
          `first read after mremap ${floor.firstReadPerPageNs.remapped.toFixed(0)} ns/page (written ${floor.firstReadPerPageNs.written.toFixed(0)}), ` +
          `busy sibling: MOVE ${floor.busySibling.movePerPageNs['1'].toFixed(0)}/${floor.busySibling.movePerPageNs['64'].toFixed(0)} COPY ${floor.busySibling.copyPerPageNs['1'].toFixed(0)}/${floor.busySibling.copyPerPageNs['64'].toFixed(0)} ns/page, round trip p50 ${floor.busySibling.faultRoundTripUs.p50.toFixed(1)} us, fault round trip p50 ${floor.faultRoundTripUs.p50.toFixed(1)} us p99 ${floor.faultRoundTripUs.p99.toFixed(1)} us\n`,
      );
    }
  }

  let mainCmp: Comparison | null = null;
  let sweep: Results['sweep'] = null;
  if (args.sweep) {
    const points: SweepPoint[] = [];
    const comps = new Map<string, Comparison>();
    const key = (mib: number, label: string): string => `${mib}|${label}`;
    for (const knobs of args.knobs) {
      const label = knobLabel(knobs);
      for (const mib of args.sweepMiB) {
        const need = 2.2 * mib * MiB + 768 * MiB;
        const avail = memAvailable();
        if (need > avail) {
          const why = `needs ~${(need / MiB).toFixed(0)} MiB (heap + from-space + process), ${(avail / MiB).toFixed(0)} MiB available`;
          process.stderr.write(`sweep: skipping ${mib} MiB: ${why}\n`);
          points.push({ heapMiB: mib, knobs, label, skipped: why, msPerLiveMiB: {}, pauseMs: {}, collectMs: {}, compactionMs: {}, throughputMBps: {} });
          continue;
        }
        const c = await runComparison(args, mib, knobs, floor, t0, `sweep ${mib} MiB${label ? ` ${label}` : ''} `);
        comps.set(key(mib, label), c);
        const per = <K extends keyof ModeSummary>(k: K): Partial<Record<ModeName, number>> =>
          Object.fromEntries(Object.entries(c.modes).map(([m, s]) => [m, s![k] as number]));
        const { timelines: _t, distributions: _d, ...rest } = c;
        points.push({ heapMiB: mib, knobs, label, comparison: rest, msPerLiveMiB: per('msPerLiveMiB'), pauseMs: per('pauseMs'), collectMs: per('collectMs'), compactionMs: per('compactionMs'), throughputMBps: per('throughputMBps') });
      }
    }
    const first = knobLabel(args.knobs[0]);
    const small = comps.get(key(64, first));
    const large = comps.get(key(1024, first));
    let pauseSmallVsLarge: Record<string, unknown> | null = null;
    if (small && large) {
      pauseSmallVsLarge = Object.fromEntries(
        args.modes.map((m) => {
          const a = small.modes[m]?.pauseMs ?? null;
          const b = large.modes[m]?.pauseMs ?? null;
          return [m, { pause64MiBMs: a, pause1GiBMs: b, ratio: a && b ? b / a : null, roots: args.roots + 1, pins: large.modes[m]?.pins ?? 0 }];
        }),
      );
    }
    sweep = { points, pauseSmallVsLarge };
    mainCmp = comps.get(key(args.sweepMiB.includes(1024) ? 1024 : args.sweepMiB[args.sweepMiB.length - 1], first)) ?? [...comps.values()].pop() ?? null;
  } else {
    mainCmp = await runComparison(args, args.heapMiB, args.knobs[0], floor, t0, '');
    // Show the latest sweep, if any, labelled as coming from an earlier run.
    const prev = path.join(args.out, 'sweep-latest.json');
    if (fs.existsSync(prev)) {
      try {
        const p = JSON.parse(fs.readFileSync(prev, 'utf8')) as Results;
        if (p.sweep) sweep = { ...p.sweep, fromEarlierRun: `${p.startedAt} (${path.basename(prev)})` };
      } catch {
        /* unreadable: ignore */
      }
    }
  }
  let splay: Results['splay'] = null;
  const splayFile = path.join(args.out, 'splay-latest.json');
  if (fs.existsSync(splayFile)) {
    try {
      const p = JSON.parse(fs.readFileSync(splayFile, 'utf8')) as SplayResults;
      if (p.schema === SPLAY_SCHEMA) splay = { ...p, fromFile: path.basename(splayFile) }; // an older shape is not rendered
    } catch {
      /* unreadable: ignore */
    }
  }

  const finishedAt = new Date();
  const { out: _o, ...params } = args;
  const res: Results = {
    schema: 'movegc-bench/2',
    provenance: prov.end(),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    elapsedS: (performance.now() - t0) / 1000,
    command,
    params: { ...params, sizesDoc: SIZE_MIX_DOC[args.sizes] + (args.pinned > 0 ? `; pins capped at ${MAX_PINS}` : '') },
    machine,
    floor: floor
      ? (({ faultRoundTripSamplesUs, busySibling: { faultRoundTripSamplesUs: busySamples, ...busy }, ...rest }) => ({
          ...rest,
          faultRoundTripCdf: cdf(faultRoundTripSamplesUs),
          busySibling: { ...busy, faultRoundTripCdf: cdf(busySamples) },
        }))(floor)
      : null,
    main: mainCmp,
    goals: [],
    sweep,
    splay,
  };
  res.goals = goalsOf(mainCmp, sweep && !sweep.fromEarlierRun ? sweep : null);

  fs.mkdirSync(args.out, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify(res, null, 1);
  const html = renderHtml(res);
  const files: string[] = [];
  const write = (name: string, data: string): void => {
    const p = path.join(args.out, name);
    fs.writeFileSync(p, data);
    files.push(p);
  };
  const base = args.sweep ? `sweep-${stamp}` : stamp;
  write(`${base}.json`, json);
  write(`${base}.html`, html);
  write('latest.json', json);
  write('latest.html', html);
  if (args.sweep) {
    write('sweep-latest.json', json);
    write('sweep-latest.html', html);
  }
  stopWatchdog();
  console.log(textSummary(res));
  console.log(`\nwrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')} (${res.elapsedS.toFixed(0)} s)`);
}

// `node dist/bench/run.js ARGS` is `movegc bench ARGS`.
runWhenMain(import.meta.url, ['bench']);
