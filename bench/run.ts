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
import { resolveOptions } from '../gc/options.js';
import { UsageError, type Values } from '../cli/args.js';
import { runRep, stopWatchdog, type RepResult } from './cycle.js';
import { measureFloor, type Floor } from './floor.js';
import { KNOBS, heapOptionsOf, knobGrid, knobLabel, type KnobValues, type MutatorKind } from './knobs.js';
import { startProvenance, provenanceLine } from './provenance.js';
import { cdf } from './stats.js';
import { SIZE_MIX_DOC, MAX_PINS, type Pattern, type SizeMix, type Workload } from './workload.js';
import { renderHtml } from './report.js';
import { SCHEMA as SPLAY_SCHEMA, type SplayResults } from './splay.js';
import { runWhenMain } from '../cli/main.js';
import { compare, goalsOf, type Comparison, type ModeSummary, type Results, type SweepPoint } from './results.js';
import { invocation } from '../cli/invocation.js';

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
          `${(r.throughputMBps / 1000).toFixed(2)} GB/s, stalled accesses ${r.mutatorFaults}${r.mutatorFaults ? ` (p50 ${r.faultMutatorUs.p50.toFixed(0)} us)` : ''}, ` +
          `rss x${(r.rssPeakBytes / r.rssBeforeBytes).toFixed(3)}, stw max ${fmtMs(r.stwMaxMs)} ms (${r.stwMaxKind})${r.runtimeThreadsCpuMs === null ? '' : `, V8 threads ${fmtMs(r.runtimeThreadsCpuMs)} ms CPU`}${r.touchErrors ? `, ${r.touchErrors} BAD READS (first: ${r.firstError})` : ''}${r.stoppedEarly ? `, ${r.stoppedEarly}` : ''}${r.verify && !r.verify.ok ? ', VERIFY FAILED' : ''}\n`,
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
    out.push(`workload: ${w.heapBytes / MiB} MiB heap, live ${w.live}, pattern ${w.pattern}, sizes ${w.sizes}, pinned ${w.pinned}, seed ${w.seed}; mutator ${res.params.mutator}${res.params.mutator.startsWith('paced') ? ` (${res.params.touchUs} us)` : ''}; ${res.params.warmCycles ? `measured after ${res.params.warmCycles} collections of each heap; ` : ''}medians of ${res.params.reps} reps`);
    const ms = Object.values(c.modes) as ModeSummary[];
    out.push(
      table([
        ['mode', 'live MiB', 'compact ms', 'GB/s', 'pause ms', 'stw max ms (max of reps)', 'stw total ms', 'mmu 10ms', 'collect ms', 'mark ms', 'stalls', 'mut p50 us', 'mut p99 us', 'hdl p50 us', 'hdl p99 us', 'moved', 'copied', 'whole', 'ebusy', 'MOVE calls', 'RSS before MiB', 'peak MiB', 'peak/before'],
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
        'compactor ms build / install / release / other; pages per install call (median pages / median calls); pages the mutator served (its ms build / install)[; pages moved in as 2 MiB spans, the mutator\'s]: ' +
          cm.map((s) => `${s.mode} ${f(s.compactorBuildMs, 0)} / ${f(s.compactorInstallMs, 0)} / ${f(s.compactorReleaseMs, 0)} / ${f(s.compactorOtherMs, 0)}; ${f((s.pagesMoved + s.pagesCopied) / Math.max(1, s.moveCalls + s.copyCalls), 1)}; ${f(s.pagesBySelf, 0)} (${f(s.selfBuildMs, 1)} / ${f(s.selfInstallMs, 1)})${s.pagesPmd > 0 ? `; ${f(s.pagesPmd, 0)}, ${f(s.pagesPmdBySelf, 0)}` : ''}`).join(' | '),
      );
    out.push('ratios: ' + Object.entries(c.ratios).map(([k, v]) => `${k} ${f(v, 3)}`).join(', '));
  }
  if (res.floor) {
    const fl = res.floor;
    out.push(
      `kernel floor (same process): MOVE ${f(fl.movePerPageNs['1'], 0)} / ${f(fl.movePerPageNs['16'], 0)} / ${f(fl.movePerPageNs['32'], 0)} / ${f(fl.movePerPageNs['34'], 0)} / ${f(fl.movePerPageNs['64'], 0)} / ${f(fl.movePerPageNs['512'], 0)} ns/page at 1/16/32/34/64/512 pages per call; ` +
        `COPY ${f(fl.copyPerPageNs['1'], 0)} / ${f(fl.copyPerPageNs['64'], 0)} / ${f(fl.copyPerPageNs['512'], 0)} ns/page at 1/64/512, from one reused buffer (as the collector installs) ${f(fl.copyFromScratchPerPageNs?.['1'], 0)} / ${f(fl.copyFromScratchPerPageNs?.['64'], 0)} at 1/64; memcpy ${f(fl.memcpyPerPageNs, 0)} ns/page; ` +
        `first read after mremap ${f(fl.firstReadPerPageNs?.remapped, 0)} ns/page (of a page just written: ${f(fl.firstReadPerPageNs?.written, 0)}; just installed by MOVE / COPY: ${f(fl.firstReadPerPageNs?.installed?.move, 0)} / ${f(fl.firstReadPerPageNs?.installed?.copy, 0)}; moved in as a 2 MiB PMD: ${f(fl.firstReadPerPageNs?.installed?.pmd, 0)}); ` +
        `MOVE of 2 MiB huge pages ${f(fl.pmd?.movePerPageNs, 0)} ns/page (huge source ${f((fl.pmd?.hugeSource ?? NaN) * 100, 0)}%); ` +
        `with a sibling thread running: MOVE ${f(fl.busySibling.movePerPageNs['1'], 0)} / ${f(fl.busySibling.movePerPageNs['64'], 0)}, COPY ${f(fl.busySibling.copyPerPageNs['1'], 0)} / ${f(fl.busySibling.copyPerPageNs['64'], 0)} ns/page at 1/64, fault round trip p50 ${f(fl.busySibling.faultRoundTripUs.p50)} us; ` +
        `what each call costs that sibling: MOVE ${f(fl.busySibling.siblingLossUsPerCall?.move['1'])} / ${f(fl.busySibling.siblingLossUsPerCall?.move['64'])}, COPY ${f(fl.busySibling.siblingLossUsPerCall?.copy['1'])} / ${f(fl.busySibling.siblingLossUsPerCall?.copy['64'])} us at 1/64 pages per call; ` +
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
  // Every heap the run will make, checked before the first: an option one size refuses
  // (largeObjectBytes over a small heap) ended a sweep after its first points, losing them.
  for (const mib of args.sweep ? args.sweepMiB : [args.heapMiB])
    for (const k of args.knobs) for (const mode of args.modes) resolveOptions({ ...heapOptionsOf(k), capacity: mib * 2 ** 20, mode });
  const t0 = performance.now();
  const startedAt = new Date();
  const command = invocation();
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
          `COPY ${floor.copyPerPageNs['1'].toFixed(0)}/${floor.copyPerPageNs['64'].toFixed(0)}/${floor.copyPerPageNs['512'].toFixed(0)} ns/page (from a reused buffer ${floor.copyFromScratchPerPageNs['1'].toFixed(0)}/${floor.copyFromScratchPerPageNs['64'].toFixed(0)} at 1/64), ` +
          `first read after mremap ${floor.firstReadPerPageNs.remapped.toFixed(0)} ns/page (written ${floor.firstReadPerPageNs.written.toFixed(0)}, installed by MOVE/COPY/PMD ${floor.firstReadPerPageNs.installed.move.toFixed(0)}/${floor.firstReadPerPageNs.installed.copy.toFixed(0)}/${floor.firstReadPerPageNs.installed.pmd.toFixed(0)}), ` +
          `MOVE of 2 MiB huge pages ${floor.pmd.movePerPageNs.toFixed(0)} ns/page, ` +
          `busy sibling: MOVE ${floor.busySibling.movePerPageNs['1'].toFixed(0)}/${floor.busySibling.movePerPageNs['64'].toFixed(0)} COPY ${floor.busySibling.copyPerPageNs['1'].toFixed(0)}/${floor.busySibling.copyPerPageNs['64'].toFixed(0)} ns/page, sibling's loss per call MOVE ${floor.busySibling.siblingLossUsPerCall.move['1'].toFixed(1)}/${floor.busySibling.siblingLossUsPerCall.move['64'].toFixed(1)} COPY ${floor.busySibling.siblingLossUsPerCall.copy['1'].toFixed(1)}/${floor.busySibling.siblingLossUsPerCall.copy['64'].toFixed(1)} us, round trip p50 ${floor.busySibling.faultRoundTripUs.p50.toFixed(1)} us, fault round trip p50 ${floor.faultRoundTripUs.p50.toFixed(1)} us p99 ${floor.faultRoundTripUs.p99.toFixed(1)} us\n`,
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
    const p = readEarlier<Pick<Results, 'sweep' | 'startedAt'>>(prev, (r) => (r.sweep ? { sweep: r.sweep, startedAt: r.startedAt } : null));
    if (p?.sweep) sweep = { ...p.sweep, fromEarlierRun: `${p.startedAt} (${path.basename(prev)})` };
  }
  const splayFile = path.join(args.out, 'splay-latest.json');
  const sp = readEarlier<SplayResults>(splayFile, (r) => (r.schema === SPLAY_SCHEMA ? r : null)); // an older shape is not rendered
  const splay: Results['splay'] = sp ? { ...sp, fromFile: path.basename(splayFile) } : null;

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
  let html: string;
  try {
    html = renderHtml(res);
  } catch (e) {
    // Only an earlier run's results can break the report (this run's are its own): shown
    // without them, rather than losing this run.
    if (!res.splay && !res.sweep?.fromEarlierRun) throw e;
    console.warn(`movegc bench: the report left out an earlier run's results it could not render (${(e as Error).message})`);
    res.splay = null;
    if (res.sweep?.fromEarlierRun) res.sweep = null;
    html = renderHtml(res);
  }
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

/**
 * An earlier run's results file in --out (the latest sweep or Splay run), shown beside this
 * run's: what `pick` takes of it (null if nothing), or null with a warning unless it parses
 * and what is picked is plain data, with no string or key holding markup characters (the
 * report would carry them into its HTML). A part that passes and still cannot be rendered is
 * left out of the report then (see renderHtml's call).
 */
function readEarlier<T>(file: string, pick: (r: T) => T | null): T | null {
  if (!fs.existsSync(file)) return null;
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error('not an object');
    const part = pick(r as T);
    const bad = markup(part);
    if (bad !== null) throw new Error(`markup in ${bad}`);
    return part;
  } catch (e) {
    console.warn(`movegc bench: ${file} left out of the report: ${(e as Error).message}`);
    return null;
  }
}

/** The path of the first string or key in x holding <, > or &, or null. */
function markup(x: unknown, at = '$'): string | null {
  const has = (s: string): boolean => /[<>&]/.test(s);
  if (typeof x === 'string') return has(x) ? at : null;
  if (typeof x !== 'object' || x === null) return null;
  for (const [k, v] of Object.entries(x)) {
    if (has(k)) return `${at} (a key)`;
    const bad = markup(v, `${at}.${k}`);
    if (bad !== null) return bad;
  }
  return null;
}

// `node dist/bench/run.js ARGS` is `movegc bench ARGS`.
runWhenMain(import.meta.url, ['bench']);
