/**
 * The benchmark's results: what the JSON file holds (Results and its parts) and how the
 * repetitions of each mode become it (per-mode medians, MMU curves, distributions, the ratios
 * between modes, the goals met or not). Apart from run.ts, which runs the repetitions and
 * writes the files, because report.ts reads these same shapes.
 */
import type { ModeName } from '../gc/index.js';
import type { RepResult } from './cycle.js';
import type { Floor } from './floor.js';
import type { KnobValues } from './knobs.js';
import type { Provenance } from './provenance.js';
import type { Args } from './run.js';
import { cdf, cdfOfBuckets, median, medianOfSampled, mergeBuckets, mmu, mmuWindows, quantiles, type Quantiles } from './stats.js';
import type { SplayResults } from './splay.js';
import type { Workload } from './workload.js';

const MiB = 2 ** 20;

type RawRep = Omit<RepResult, 'timeline' | 'stalls' | 'stallsCompaction' | 'faultSamplesUs' | 'faultHandlerBuckets'>;

/**
 * What a mode's summary takes from its reps under the same name and type: the median over the
 * reps (heapBytes and fallbacks: the first rep's; touchErrors: their sum; see summarizeMode).
 */
type FromReps = Pick<
  RepResult,
  | 'heapBytes'
  | 'usedBytes'
  | 'liveBytes'
  | 'liveObjects'
  | 'pins'
  | 'buildMs'
  | 'compactionMs'
  | 'pauseMs'
  | 'collectMs'
  | 'markMs'
  | 'planMs'
  | 'concurrentMs'
  | 'compactorBusyMs'
  | 'idleMs'
  | 'throughputMBps'
  | 'faults'
  | 'pagesMoved'
  | 'pagesCopied'
  | 'ebusyFallbacks'
  | 'moveCalls'
  | 'copyCalls'
  | 'batchPagesP50'
  | 'rssBeforeBytes'
  | 'rssPeakBytes'
  | 'rssAfterBytes'
  | 'touches'
  | 'touchErrors'
  | 'fallbacks'
>;

export interface ModeSummary extends FromReps {
  mode: ModeName;
  reps: number;
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
  msPerLiveMiB: number;
  /** Accesses that stalled on an unbuilt page (kernel fault or self-service), see RepResult. */
  mutatorFaults: number;
  /** Mutator side (the stalled access as the mutator sees it), us; null with no samples in any rep. */
  faultP50Us: number | null;
  faultP99Us: number | null;
  faultMaxUs: number | null;
  /** Handler side (fault server: read to install), us; null with no samples in any rep. */
  handlerFaultP50Us: number | null;
  handlerFaultP99Us: number | null;
  pagesTotal: number;
  /** Installed unbuilt (WHOLE pages of large objects kept on pages, move mode). */
  pagesWhole: number;
  /** Of those, install calls of one aligned 2 MiB span each (--huge-pages): a PMD move when the source is a huge page. */
  wholePmdCalls: number;
  pagesBuiltByFaults: number;
  /** Pages the mutator's accessors served themselves (self-service). */
  pagesBySelf: number;
  /** Pages moved in as whole 2 MiB spans (hugePages, move mode), and of them the mutator's. */
  pagesPmd: number;
  pagesPmdBySelf: number;
  /** Of the mutator's self-service stalls (ms): its own page builds and their installs (CycleStats.stalls). */
  selfBuildMs: number;
  selfInstallMs: number;
  /** The compactor's time split (ms): build, install (MOVE/COPY calls), release (madvise), the rest. */
  compactorBuildMs: number;
  compactorInstallMs: number;
  compactorReleaseMs: number;
  compactorOtherMs: number;
  rssPeakOverBefore: number;
  verifyOk: boolean | null;
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
  /** curves: every stall; compaction: the stalls from the compaction pause on. */
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
  const mq = (f: (r: RepResult) => Quantiles, k: 'p50' | 'p99' | 'max'): number | null => medianOfSampled(reps.map(f), k);
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
    pagesPmd: m((r) => r.pages.pmdBuilt ?? 0),
    pagesPmdBySelf: m((r) => r.pages.pmdBuiltBySelf ?? 0),
    selfBuildMs: m((r) => r.faultPathStalls?.selfBuildMs ?? 0),
    selfInstallMs: m((r) => r.faultPathStalls?.selfInstallMs ?? 0),
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

/** What floorBound reads of a mode's medians. */
export type BoundInputs = Pick<ModeSummary, 'compactorBuildMs' | 'compactorReleaseMs' | 'compactorBusyMs' | 'pagesMoved' | 'pagesCopied'>;

/**
 * The lowest move/copy compactor time this run's own work allows: move's compactor with its
 * builds and releases as measured, its installs at the kernel floor (ns a page at 64 pages a
 * call, as its runs are: `moveNs` for the pages it moved, `copyNs` for those it copied) and
 * no bookkeeping at all, over copy's compactor as measured. Busy time on both sides (both
 * count the cycle's last release). A target below this bound needs faster builds, not a
 * leaner install path. Null without both modes.
 */
export function floorBound(move: BoundInputs | undefined, copy: BoundInputs | undefined, moveNs: number, copyNs: number): number | null {
  if (!move || !copy || !(copy.compactorBusyMs > 0) || !Number.isFinite(moveNs) || !Number.isFinite(copyNs)) return null;
  return (move.compactorBuildMs + move.compactorReleaseMs + (move.pagesMoved * moveNs + move.pagesCopied * copyNs) / 1e6) / copy.compactorBusyMs;
}

export function compare(workload: Workload, heapOptions: KnobValues, horizonMs: number, byMode: Map<ModeName, RepResult[]>, floor: Floor | null): Comparison {
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
  const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || !(b > 0) || !Number.isFinite(a) ? null : a / b);
  const mv = modes.move;
  const cp = modes.copy;
  const sw = modes.stw;
  const ratios: Record<string, number | null> = {
    moveOverCopyCompaction: ratio(mv?.compactionMs, cp?.compactionMs),
    moveOverStwCompaction: ratio(mv?.compactionMs, sw?.compactionMs),
    copyOverStwCompaction: ratio(cp?.compactionMs, sw?.compactionMs),
    // The same over the compactors' busy time, and the floor bounds of that (floorBound):
    // MOVE at the floor with the other CPU idle, and with a thread of the process running there.
    moveOverCopyBusy: ratio(mv?.compactorBusyMs, cp?.compactorBusyMs),
    moveOverCopyBoundIdle: floor ? floorBound(mv, cp, floor.movePerPageNs['64'], floor.copyFromScratchPerPageNs['64']) : null,
    moveOverCopyBoundBusy: floor ? floorBound(mv, cp, floor.busySibling.movePerPageNs['64'], floor.busySibling.copyPerPageNs['64']) : null,
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

export function goalsOf(c: Comparison | null, sweep: Results['sweep']): Goal[] {
  const g: Goal[] = [];
  const r = c?.ratios ?? {};
  const fragmented = c ? `${c.workload.pattern}, live ${c.workload.live}, ${c.workload.heapBytes / MiB} MiB` : '';
  const add = (id: string, text: string, value: number | null | undefined, target: string, ok: (v: number) => boolean): void => {
    const v = value ?? null;
    g.push({ id, text, value: v, target, met: v === null ? null : ok(v) });
  };
  add('moveVsCopy', `move compaction time / copy's (${fragmented})`, r.moveOverCopyCompaction, '<= 0.5', (v) => v <= 0.5);
  add('moveVsCopyBound', '  the lowest this run\'s builds and releases allow (move\'s installs at the kernel floor, idle CPU; no bookkeeping)', r.moveOverCopyBoundIdle, '<= 0.5', (v) => v <= 0.5);
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
