/**
 * The movegc benchmark: the same fragmented heap compacted in move, copy and stw mode, side by
 * side, with a concurrent mutator, the kernel floor measured in the same process, a JSON
 * results file and an offline HTML report.
 *
 *   npm run build && node dist/bench/run.js [options]
 *
 *   --heap MiB        heap capacity (default 1024; a multiple of 2, at most 4094)
 *   --live F          live fraction of the objects (default 0.5)
 *   --pattern P       interleaved | blocks | random (default interleaved)
 *   --sizes S         small | mixed | large (default mixed; see workload.ts)
 *   --modes LIST      comma-separated (default move,copy,stw)
 *   --reps N          repetitions per mode (default 5; 3 with --quick or --sweep)
 *   --pinned F        fraction of live objects pinned with heap.pin (default 0; at most 2000 pins)
 *   --builder LIST    page builders, comma-separated: native | js (default: the heap's default,
 *                     native). With several, every (builder, mode) pair runs in each rep; the
 *                     first builder's comparison is the main one (report, goals), and each
 *                     other builder's table and its compaction ratio to the first are printed.
 *   --quick           256 MiB heap, 3 reps, shorter floor: the whole run in under a minute
 *   --sweep           scaling sweep over 64 MiB, 256 MiB, 1 GiB, 2 GiB, 4 GiB - 2 MiB
 *   --sweep-sizes L   the sweep's sizes in MiB, comma-separated
 *   --out DIR         results directory (default bench/results)
 *   --seed N          workload seed (default 1)
 *   --fill F          fraction of the capacity allocated before collecting (default 0.9)
 *   --roots N         extra roots (default 64, the same at every size)
 *   --mutator-ms MS   the mutator runs at least this long after collect() (default max(100, heap MiB / 2))
 *   --sample-ms MS    timeline sampling period (default 1)
 *   --mutator K       paced (one touch every --touch-us, sleeping between; default) | busy (back to
 *                     back, a worst case) | none (no touches)
 *   --touch-us US     paced mutator: microseconds between touches (default 100)
 *   --verify          heap.verify() after every cycle (slow; reported, never asserted)
 *   --no-floor        skip the kernel floor
 *
 * Repetitions are interleaved (rep 1: move, copy, stw; rep 2: ...), each on a fresh heap built
 * the same way from the seed, so slow drifts of a noisy machine hit every mode alike. Figures
 * are medians over the repetitions; the per-rep values are in the JSON.
 *
 * Writes OUT/latest.json and OUT/latest.html and timestamped copies; a sweep run also writes
 * OUT/sweep-latest.{json,html}, and later non-sweep reports show that sweep (labelled as such).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_CAPACITY, probe, type ModeName } from '../gc/index.js';
import type { BuilderName } from '../gc/build.js';
import { MUTATORS, runRep, stopWatchdog, type MutatorKind, type RepResult } from './cycle.js';
import { measureFloor, type Floor } from './floor.js';
import { cdf, cdfOfBuckets, logSpace, median, mergeBuckets, mmu, quantiles, type Quantiles } from './stats.js';
import { PATTERNS, SIZE_MIXES, SIZE_MIX_DOC, MAX_PINS, type Pattern, type SizeMix, type Workload } from './workload.js';
import { renderHtml } from './report.js';

const MiB = 2 ** 20;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SWEEP_MIB = [64, 256, 1024, 2048, 4094];

export interface Args {
  heapMiB: number;
  live: number;
  pattern: Pattern;
  sizes: SizeMix;
  modes: ModeName[];
  builders: BuilderName[];
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
  verify: boolean;
  floor: boolean;
}

const USAGE = fs.existsSync(fileURLToPath(import.meta.url))
  ? (fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').match(/\/\*\*([\s\S]*?)\*\//)?.[1] ?? '').replace(/^ \* ?/gm, '')
  : '';

function parseArgs(argv: string[]): Args {
  const a: Args = {
    heapMiB: 1024, live: 0.5, pattern: 'interleaved', sizes: 'mixed', modes: ['move', 'copy', 'stw'], builders: ['native'], reps: 5, pinned: 0, quick: false,
    sweep: false, sweepMiB: SWEEP_MIB, out: path.join(ROOT, 'bench/results'), seed: 1, fill: 0.9, roots: 64, mutatorMs: null, sampleMs: 1,
    mutator: 'paced', touchUs: 100, verify: false, floor: true,
  };
  let repsSet = false;
  let heapSet = false;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    const num = (lo: number, hi: number): number => {
      const v = Number(val());
      if (!Number.isFinite(v) || v < lo || v > hi) throw new Error(`${k} must be a number in [${lo}, ${hi}]`);
      return v;
    };
    switch (k) {
      case '--heap': a.heapMiB = num(2, MAX_CAPACITY / MiB); heapSet = true; break;
      case '--live': a.live = num(0, 1); break;
      case '--pattern': {
        const p = val();
        if (!(PATTERNS as readonly string[]).includes(p)) throw new Error(`--pattern must be one of ${PATTERNS.join(', ')}`);
        a.pattern = p as Pattern;
        break;
      }
      case '--sizes': {
        const s = val();
        if (!(SIZE_MIXES as readonly string[]).includes(s)) throw new Error(`--sizes must be one of ${SIZE_MIXES.join(', ')}`);
        a.sizes = s as SizeMix;
        break;
      }
      case '--modes': {
        const m = val().split(',').map((x) => x.trim()).filter(Boolean);
        for (const x of m) if (!['move', 'copy', 'stw'].includes(x)) throw new Error(`unknown mode ${x}`);
        a.modes = m as ModeName[];
        break;
      }
      case '--builder': {
        const b = val().split(',').map((x) => x.trim()).filter(Boolean);
        for (const x of b) if (x !== 'js' && x !== 'native') throw new Error(`unknown builder ${x} (expected js, native)`);
        if (b.length === 0) throw new Error('--builder needs at least one builder');
        a.builders = [...new Set(b)] as BuilderName[];
        break;
      }
      case '--reps': a.reps = Math.round(num(1, 1000)); repsSet = true; break;
      case '--pinned': a.pinned = num(0, 1); break;
      case '--quick': a.quick = true; break;
      case '--sweep': a.sweep = true; break;
      case '--sweep-sizes': a.sweepMiB = val().split(',').map((x) => Number(x)); break;
      case '--out': a.out = path.resolve(val()); break;
      case '--seed': a.seed = Math.round(num(0, 2 ** 31)); break;
      case '--fill': a.fill = num(0.05, 0.99); break;
      case '--roots': a.roots = Math.round(num(0, 100000)); break;
      case '--mutator-ms': a.mutatorMs = num(0, 600000); break;
      case '--sample-ms': a.sampleMs = num(0.1, 1000); break;
      case '--mutator': {
        const m = val();
        if (!(MUTATORS as readonly string[]).includes(m)) throw new Error(`--mutator must be one of ${MUTATORS.join(', ')}`);
        a.mutator = m as MutatorKind;
        break;
      }
      case '--touch-us': a.touchUs = num(0, 1e6); break;
      case '--verify': a.verify = true; break;
      case '--no-floor': a.floor = false; break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown argument ${k} (see --help)`);
    }
  }
  if (a.quick) {
    if (!heapSet) a.heapMiB = 256;
    if (!repsSet) a.reps = 3;
  }
  if (a.sweep && !repsSet) a.reps = 3;
  for (const m of [a.heapMiB, ...a.sweepMiB]) if (!Number.isInteger(m) || m % 2 !== 0 || m * MiB > MAX_CAPACITY) throw new Error(`heap sizes must be even MiB up to ${MAX_CAPACITY / MiB}, got ${m}`);
  return a;
}

// ------------------------------------------------------------------ results

type RawRep = Omit<RepResult, 'timeline' | 'stalls' | 'stallsCompaction' | 'faultSamplesUs' | 'faultHandlerBuckets'>;

export interface ModeSummary {
  mode: ModeName;
  builder: BuilderName;
  reps: number;
  heapBytes: number;
  usedBytes: number;
  liveBytes: number;
  liveObjects: number;
  pins: number;
  buildMs: number;
  compactionMs: number;
  pauseMs: number;
  collectMs: number;
  markMs: number;
  planMs: number;
  concurrentMs: number;
  compactorBusyMs: number;
  /** The compactor thread's time split (ms, medians; move and copy only). */
  compactorBuildMs: number;
  compactorInstallMs: number;
  compactorReleaseMs: number;
  compactorOtherMs: number;
  compactorWaitMs: number;
  compactorCpuMs: number;
  compactorQueuedMs: number;
  idleMs: number;
  throughputMBps: number;
  msPerLiveMiB: number;
  faults: number;
  mutatorFaults: number;
  /** Mutator side (fault to wake as the faulting access sees it), us. */
  faultP50Us: number;
  faultP99Us: number;
  faultMaxUs: number;
  /** Handler side (fault server: read to install), us. */
  handlerFaultP50Us: number;
  handlerFaultP99Us: number;
  pagesTotal: number;
  pagesMoved: number;
  pagesCopied: number;
  pagesBuiltByFaults: number;
  ebusyFallbacks: number;
  moveCalls: number;
  copyCalls: number;
  batchPagesP50: number;
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
  builder: BuilderName;
  workload: Workload;
  horizonMs: number;
  modes: Partial<Record<ModeName, ModeSummary>>;
  ratios: Record<string, number | null>;
  /** curves: every stall (collect() whole); compaction: mark and plan left out. */
  mmu: { windowsMs: number[]; curves: Partial<Record<ModeName, Array<number | null>>>; compaction: Partial<Record<ModeName, Array<number | null>>> };
  distributions: Partial<Record<ModeName, Distributions>>;
  timelines: Partial<Record<ModeName, RepResult['timeline'] & { rep: number }>>;
}

export interface Goal {
  id: string;
  text: string;
  value: number | null;
  target: string;
  met: boolean | null;
}

export interface SweepPoint {
  heapMiB: number;
  skipped?: string;
  comparison?: Omit<Comparison, 'timelines' | 'distributions'>;
  msPerLiveMiB: Partial<Record<ModeName, number>>;
  pauseMs: Partial<Record<ModeName, number>>;
  collectMs: Partial<Record<ModeName, number>>;
  compactionMs: Partial<Record<ModeName, number>>;
  throughputMBps: Partial<Record<ModeName, number>>;
}

export interface Results {
  schema: 'movegc-bench/1';
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
  /** With --builder listing several: every builder's comparison (main is the first's). */
  builders?: Partial<Record<BuilderName, Comparison>>;
  goals: Goal[];
  sweep: { points: SweepPoint[]; pauseSmallVsLarge: Record<string, unknown> | null; fromEarlierRun?: string } | null;
}

function strip(r: RepResult): RawRep {
  const { timeline: _t, stalls: _s, stallsCompaction: _c, faultSamplesUs: _f, faultHandlerBuckets: _b, ...rest } = r;
  return rest;
}

function summarizeMode(mode: ModeName, reps: RepResult[]): ModeSummary {
  const m = (f: (r: RepResult) => number): number => median(reps.map(f));
  const allVerified = reps.every((r) => r.verify === undefined) ? null : reps.every((r) => r.verify?.ok === true);
  return {
    mode,
    builder: reps[0].builder,
    reps: reps.length,
    heapBytes: reps[0].heapBytes,
    usedBytes: m((r) => r.usedBytes),
    liveBytes: m((r) => r.liveBytes),
    liveObjects: m((r) => r.liveObjects),
    pins: m((r) => r.pins),
    buildMs: m((r) => r.buildMs),
    compactionMs: m((r) => r.compactionMs),
    pauseMs: m((r) => r.pauseMs),
    collectMs: m((r) => r.collectMs),
    markMs: m((r) => r.markMs),
    planMs: m((r) => r.planMs),
    concurrentMs: m((r) => r.concurrentMs),
    compactorBusyMs: m((r) => r.compactorBusyMs),
    compactorBuildMs: m((r) => r.compactor.buildMs),
    compactorInstallMs: m((r) => r.compactor.installMs),
    compactorReleaseMs: m((r) => r.compactor.releaseMs),
    compactorOtherMs: m((r) => r.compactor.otherMs),
    compactorWaitMs: m((r) => r.compactor.waitMs),
    compactorCpuMs: m((r) => r.compactor.cpuMs),
    compactorQueuedMs: m((r) => r.compactor.queuedMs),
    idleMs: m((r) => r.idleMs),
    throughputMBps: m((r) => r.throughputMBps),
    msPerLiveMiB: m((r) => r.compactionMs / (r.liveBytes / MiB)),
    faults: m((r) => r.faults),
    mutatorFaults: m((r) => r.mutatorFaults),
    faultP50Us: m((r) => r.faultMutatorUs.p50),
    faultP99Us: m((r) => r.faultMutatorUs.p99),
    faultMaxUs: m((r) => r.faultMutatorUs.max),
    handlerFaultP50Us: m((r) => r.faultHandlerUs.p50),
    handlerFaultP99Us: m((r) => r.faultHandlerUs.p99),
    pagesTotal: m((r) => r.pages.total),
    pagesMoved: m((r) => r.pagesMoved),
    pagesCopied: m((r) => r.pagesCopied),
    pagesBuiltByFaults: m((r) => r.pages.builtByFaults),
    ebusyFallbacks: m((r) => r.ebusyFallbacks),
    moveCalls: m((r) => r.moveCalls),
    copyCalls: m((r) => r.copyCalls),
    batchPagesP50: m((r) => r.batchPagesP50),
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

function compare(builder: BuilderName, workload: Workload, horizonMs: number, byMode: Map<ModeName, RepResult[]>, floor: Floor | null): Comparison {
  const modes: Comparison['modes'] = {};
  const distributions: Comparison['distributions'] = {};
  const timelines: Comparison['timelines'] = {};
  let minHorizon = Infinity;
  for (const reps of byMode.values()) for (const r of reps) minHorizon = Math.min(minHorizon, r.horizonMs);
  const windowsMs = logSpace(0.05, Math.max(0.1, minHorizon), 48).map((x) => Math.round(x * 1e4) / 1e4);
  const curves: Comparison['mmu']['curves'] = {};
  const compaction: Comparison['mmu']['compaction'] = {};
  const medianCurve = (perRep: Array<Array<number | null>>): Array<number | null> =>
    windowsMs.map((_, i) => {
      const v = perRep.map((c) => c[i]).filter((x): x is number => x !== null);
      return v.length ? Math.round(median(v) * 1e4) / 1e4 : null;
    });
  for (const [mode, reps] of byMode) {
    const s = summarizeMode(mode, reps);
    modes[mode] = s;
    curves[mode] = medianCurve(reps.map((r) => mmu(r.stalls, r.horizonMs, windowsMs)));
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
    moveOverCopyCompactorCpu: ratio(mv?.compactorCpuMs, cp?.compactorCpuMs),
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
  return { builder, workload, horizonMs, modes, ratios, mmu: { windowsMs, curves, compaction }, distributions, timelines };
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

/** One comparison per builder (args.builders order), reps interleaved over every (builder, mode). */
async function runComparison(args: Args, heapMiB: number, floor: Floor | null, t0: number, label: string): Promise<Comparison[]> {
  const workload: Workload = { heapBytes: heapMiB * MiB, live: args.live, pattern: args.pattern, sizes: args.sizes, pinned: args.pinned, seed: args.seed, fill: args.fill, roots: args.roots };
  const horizonMs = args.mutatorMs ?? Math.max(100, heapMiB / 2);
  const byBuilder = new Map(args.builders.map((b) => [b, new Map<ModeName, RepResult[]>(args.modes.map((m) => [m, []]))]));
  const named = args.builders.length > 1;
  for (let rep = 1; rep <= args.reps; rep++) {
    for (const builder of args.builders) for (const mode of args.modes) {
      const r = await runRep({ mode, workload, rep, horizonMs, sampleMs: args.sampleMs, verify: args.verify, mutator: args.mutator, touchUs: args.touchUs, builder });
      byBuilder.get(builder)!.get(mode)!.push(r);
      const el = ((performance.now() - t0) / 1000).toFixed(1);
      const fb = r.mode !== mode ? ` (FELL BACK to ${r.mode}: ${r.fallbacks.join('; ')})` : '';
      const c = r.compactor;
      process.stderr.write(
        `[${el.padStart(6)} s] ${label}rep ${rep}/${args.reps} ${named ? `${builder.padEnd(6)} ` : ''}${mode.padEnd(4)}${fb} ${heapMiB} MiB: build ${(r.buildMs / 1000).toFixed(1)} s, ` +
          `collect ${fmtMs(r.collectMs)} ms (pause ${fmtMs(r.pauseMs)}), compaction ${fmtMs(r.compactionMs)} ms, ` +
          `${(r.throughputMBps / 1000).toFixed(2)} GB/s, faults ${r.mutatorFaults} (p50 ${r.faultMutatorUs.p50.toFixed(0)} us), ` +
          `rss x${(r.rssPeakBytes / r.rssBeforeBytes).toFixed(3)}` +
          (r.mode === 'stw' ? '' : `, compactor build/install/release/other/wait ${fmtMs(c.buildMs)}/${fmtMs(c.installMs)}/${fmtMs(c.releaseMs)}/${fmtMs(c.otherMs)}/${fmtMs(c.waitMs)} ms, cpu ${fmtMs(c.cpuMs)} queued ${fmtMs(c.queuedMs)}`) +
          `${r.touchErrors ? `, ${r.touchErrors} BAD READS (first: ${r.firstError})` : ''}${r.stoppedEarly ? `, ${r.stoppedEarly}` : ''}${r.verify && !r.verify.ok ? ', VERIFY FAILED' : ''}\n`,
      );
    }
  }
  return args.builders.map((b) => compare(b, workload, horizonMs, byBuilder.get(b)!, floor));
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, j) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (j === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}

export function textSummary(res: Results): string {
  const out: string[] = [];
  const f = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const all = res.builders ? (Object.values(res.builders) as Comparison[]) : res.main ? [res.main] : [];
  for (const c of all) {
    const w = c.workload;
    out.push(`${all.length > 1 ? `builder ${c.builder}: ` : ''}workload: ${w.heapBytes / MiB} MiB heap, live ${w.live}, pattern ${w.pattern}, sizes ${w.sizes}, pinned ${w.pinned}, seed ${w.seed}; mutator ${res.params.mutator}${res.params.mutator === 'paced' ? ` (${res.params.touchUs} us)` : ''}; builder ${c.builder}; medians of ${res.params.reps} reps`);
    const ms = Object.values(c.modes) as ModeSummary[];
    out.push(
      table([
        ['mode', 'live MiB', 'compact ms', 'GB/s', 'pause ms', 'collect ms', 'mark ms', 'faults', 'mut p50 us', 'mut p99 us', 'hdl p50 us', 'hdl p99 us', 'moved', 'copied', 'ebusy', 'MOVE calls', 'RSS before MiB', 'peak MiB', 'peak/before'],
        ...ms.map((s) => [
          s.mode, f(s.liveBytes / MiB), f(s.compactionMs), f(s.throughputMBps / 1000, 2), f(s.pauseMs, 2), f(s.collectMs), f(s.markMs), f(s.mutatorFaults, 0),
          f(s.faultP50Us), f(s.faultP99Us), f(s.handlerFaultP50Us), f(s.handlerFaultP99Us), f(s.pagesMoved, 0), f(s.pagesCopied, 0), f(s.ebusyFallbacks, 0),
          f(s.moveCalls, 0), f(s.rssBeforeBytes / MiB), f(s.rssPeakBytes / MiB), f(s.rssPeakOverBefore, 3),
        ]),
      ]),
    );
    const cm = ms.filter((s) => s.mode !== 'stw');
    if (cm.length)
      out.push(
        'compactor thread (ms): ' +
          cm.map((s) => `${s.mode} busy ${f(s.compactorBusyMs)} = build ${f(s.compactorBuildMs)} + install ${f(s.compactorInstallMs)} + release ${f(s.compactorReleaseMs)} + other ${f(s.compactorOtherMs)}; wait ${f(s.compactorWaitMs)}; on CPU ${f(s.compactorCpuMs)}, runnable but off CPU ${f(s.compactorQueuedMs)}`).join(' | '),
      );
    out.push('ratios: ' + Object.entries(c.ratios).map(([k, v]) => `${k} ${f(v, 3)}`).join(', '));
  }
  if (all.length > 1) {
    const [first, ...rest] = all;
    for (const c of rest)
      out.push(
        `builder ${c.builder} / ${first.builder}, compaction ms: ` +
          Object.keys(first.modes).map((m) => `${m} ${f((c.modes[m as ModeName]?.compactionMs ?? NaN) / (first.modes[m as ModeName]?.compactionMs ?? NaN), 3)}`).join(', '),
      );
  }
  if (res.floor) {
    const fl = res.floor;
    out.push(
      `kernel floor (same process): MOVE ${f(fl.movePerPageNs['1'], 0)} / ${f(fl.movePerPageNs['16'], 0)} / ${f(fl.movePerPageNs['64'], 0)} / ${f(fl.movePerPageNs['512'], 0)} ns/page at 1/16/64/512 pages per call; ` +
        `COPY ${f(fl.copyPerPageNs['1'], 0)} / ${f(fl.copyPerPageNs['64'], 0)} / ${f(fl.copyPerPageNs['512'], 0)} ns/page at 1/64/512; memcpy ${f(fl.memcpyPerPageNs, 0)} ns/page; ` +
        `with a sibling thread running: MOVE ${f(fl.busySibling.movePerPageNs['1'], 0)} / ${f(fl.busySibling.movePerPageNs['64'], 0)}, COPY ${f(fl.busySibling.copyPerPageNs['1'], 0)} / ${f(fl.busySibling.copyPerPageNs['64'], 0)} ns/page at 1/64, fault round trip p50 ${f(fl.busySibling.faultRoundTripUs.p50)} us; ` +
        `fault round trip p50 ${f(fl.faultRoundTripUs.p50)} us, p99 ${f(fl.faultRoundTripUs.p99)} us (${fl.faultRoundTripUs.count} faults)`,
    );
  }
  if (res.sweep && !res.sweep.fromEarlierRun) {
    const modes = res.params.modes;
    out.push('sweep (medians): heap MiB | ' + modes.map((m) => `${m} ms/live MiB, pause ms, collect ms`).join(' | '));
    for (const p of res.sweep.points) {
      if (p.skipped) out.push(`  ${p.heapMiB}: skipped (${p.skipped})`);
      else out.push(`  ${p.heapMiB}: ` + modes.map((m) => `${m} ${f(p.msPerLiveMiB[m], 3)}, ${f(p.pauseMs[m], 2)}, ${f(p.collectMs[m], 0)}`).join(' | '));
    }
    if (res.sweep.pauseSmallVsLarge) out.push('pause 64 MiB vs 1 GiB: ' + JSON.stringify(res.sweep.pauseSmallVsLarge));
  }
  out.push('goals (measured, not asserted):');
  for (const g of res.goals) out.push(`  ${g.met === null ? '?  ' : g.met ? 'met' : 'MISSED'} ${g.text}: ${f(g.value, 3)} (goal ${g.target})`);
  return out.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const startedAt = new Date();
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
    hostname: os.hostname(),
  };
  process.stderr.write(`movegc bench: Linux ${machine.kernel}, ${machine.cores} cores, ${machine.cpuModel}, THP ${machine.thp}, node ${machine.node}, MOVE ${machine.move}\n`);

  let floor: Floor | null = null;
  if (args.floor) {
    if (!caps.uffd.ok) process.stderr.write('kernel floor skipped: no userfaultfd\n');
    else {
      process.stderr.write('kernel floor: MOVE/COPY per page and the fault round trip ...\n');
      floor = await measureFloor(args.quick ? { pages: 4096, reps: 3, faults: 1000 } : { pages: 16384, reps: 3, faults: 2000 });
      process.stderr.write(
        `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] floor: MOVE ${floor.movePerPageNs['1'].toFixed(0)}/${floor.movePerPageNs['16'].toFixed(0)}/${floor.movePerPageNs['64'].toFixed(0)}/${floor.movePerPageNs['512'].toFixed(0)} ns/page, ` +
          `COPY ${floor.copyPerPageNs['1'].toFixed(0)}/${floor.copyPerPageNs['64'].toFixed(0)}/${floor.copyPerPageNs['512'].toFixed(0)} ns/page, ` +
          `busy sibling: MOVE ${floor.busySibling.movePerPageNs['1'].toFixed(0)}/${floor.busySibling.movePerPageNs['64'].toFixed(0)} COPY ${floor.busySibling.copyPerPageNs['1'].toFixed(0)}/${floor.busySibling.copyPerPageNs['64'].toFixed(0)} ns/page, round trip p50 ${floor.busySibling.faultRoundTripUs.p50.toFixed(1)} us, fault round trip p50 ${floor.faultRoundTripUs.p50.toFixed(1)} us p99 ${floor.faultRoundTripUs.p99.toFixed(1)} us\n`,
      );
    }
  }

  let mainCmp: Comparison | null = null;
  let byBuilder: Results['builders'];
  let sweep: Results['sweep'] = null;
  if (args.sweep) {
    const points: SweepPoint[] = [];
    const comps = new Map<number, Comparison>();
    for (const mib of args.sweepMiB) {
      const need = 2.2 * mib * MiB + 768 * MiB;
      const avail = memAvailable();
      if (need > avail) {
        const why = `needs ~${(need / MiB).toFixed(0)} MiB (heap + from-space + process), ${(avail / MiB).toFixed(0)} MiB available`;
        process.stderr.write(`sweep: skipping ${mib} MiB: ${why}\n`);
        points.push({ heapMiB: mib, skipped: why, msPerLiveMiB: {}, pauseMs: {}, collectMs: {}, compactionMs: {}, throughputMBps: {} });
        continue;
      }
      const c = (await runComparison({ ...args, builders: args.builders.slice(0, 1) }, mib, floor, t0, `sweep ${mib} MiB `))[0];
      comps.set(mib, c);
      const per = <K extends keyof ModeSummary>(k: K): Partial<Record<ModeName, number>> =>
        Object.fromEntries(Object.entries(c.modes).map(([m, s]) => [m, s![k] as number]));
      const { timelines: _t, distributions: _d, ...rest } = c;
      points.push({ heapMiB: mib, comparison: rest, msPerLiveMiB: per('msPerLiveMiB'), pauseMs: per('pauseMs'), collectMs: per('collectMs'), compactionMs: per('compactionMs'), throughputMBps: per('throughputMBps') });
    }
    const small = comps.get(64);
    const large = comps.get(1024);
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
    mainCmp = comps.get(args.heapMiB) ?? [...comps.values()].pop() ?? null;
  } else {
    const cs = await runComparison(args, args.heapMiB, floor, t0, '');
    mainCmp = cs[0];
    if (cs.length > 1) byBuilder = Object.fromEntries(cs.map((c) => [c.builder, c]));
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

  const finishedAt = new Date();
  const { out: _o, ...params } = args;
  const res: Results = {
    schema: 'movegc-bench/1',
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    elapsedS: (performance.now() - t0) / 1000,
    command: ['node', path.relative(ROOT, fileURLToPath(import.meta.url)), ...process.argv.slice(2)].join(' '),
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
    builders: byBuilder,
    goals: [],
    sweep,
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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
