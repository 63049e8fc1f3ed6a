/**
 * An ART-style app on the movegc heap: a long-lived UI tree (views with children arrays, text
 * byte arrays and styles) plus bursts of short-lived objects every frame (input events, layout
 * temporaries, display-list ops, strings), driven by a 60 fps frame loop with a 16.7 ms budget.
 *
 * When heap use passes a threshold (or every --every N frames) the app requests a collection
 * (`heap.requestCollection()`, non-blocking) and calls `heap.safepoint()` at the end of every
 * frame: the marking pause and the compaction pause run there when due, while marking, planning
 * (marker thread) and compaction (move/copy) run concurrently with the frames, which fault on
 * pages not rebuilt yet. In stw mode the first safepoint is the whole collection. Nothing
 * waits for a cycle's end: it is picked up by the event loop between frames, or by idle().
 *
 * A frame touching a page not rebuilt yet stalls: with --fault-path self (the default) the
 * heap's accessor builds that page on the frame's thread; with handler the access faults and
 * waits for the fault-server thread. --compare puts both side by side (issue 11): per column
 * the stall per touched unbuilt page, kernel faults, frames over budget and frame p99.
 *
 *   movegc example art [--mode move|copy|stw] [--fault-path self|handler] [--unbuilt-reads build|from-space] [--safepoint end|start] [--idle-compact on|off] [--huge-pages off|on] [--seconds 10] [--heap 32]
 *   movegc example art --compare [--modes move,move-handler,copy,stw]     (one child process per column)
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, Heap, MoveGcError, type CycleStats, type FaultPathName, type ModeName, type UnbuiltReadsName } from '../gc/index.js';
import { heapVariant, variantTitle, type HeapVariant } from '../bench/knobs.js';
import { bucketQuantiles, mergeBuckets } from '../bench/stats.js';
import { benchReportLine, exampleProvenance, emitResult, exampleLogger, mib, modeArg, ms, num, percentile, prng, runModes, sideBySide, writeOut, type Args } from './common.js';
import { runWhenMain } from '../cli/main.js';
import { App, BUDGET_MS, defineTypes } from './art-ui.js';

export interface ArtResult {
  mode: ModeName;
  /** The heap's fault path (stw has none to take). */
  faultPath: FaultPathName;
  /** With the self path: reads of unbuilt pages build them, or are served in from-space (null: the handler path, or stw). */
  unbuiltReads: UnbuiltReadsName | null;
  /** Where each frame called heap.safepoint(): after its work or before it. */
  safepoint: 'end' | 'start';
  /** Whether the time between frames went to a compacting cycle (heap.idleCompact). */
  idleCompact: boolean;
  fallbacks: string[];
  frames: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
  overBudget: number;
  cycles: number;
  /** GC pauses as the app saw them: the safepoint calls that ran a pause (stw: the whole collection). */
  gcPauseTotalMs: number;
  gcPauseMaxMs: number;
  /** The compaction pause alone (CycleStats.pause.totalMs; the whole compaction in stw mode). */
  compactionPauseMs: number;
  markPlanMs: number;
  /** Pause end to the compactor's last install, summed (concurrent work in move/copy). */
  compactionMs: number;
  compactorBusyMs: number;
  /** Kernel faults served by the fault server, and its service time (read to install). */
  faults: number;
  faultP50Us: number;
  faultP99Us: number;
  /**
   * The frames' stall per touched unbuilt page (µs, CycleStats.stalls: self-service, kernel
   * fault and from-space read and store samples merged, log-bucket lower bounds): p50, p99, pages, their sum (ms, so a lower
   * bound), and the pages the accessors built themselves.
   */
  stallP50Us: number;
  stallP99Us: number;
  stalls: number;
  stallTotalMs: number;
  pagesBuiltBySelf: number;
  /** Pages the frame loop built in its idle time between frames (Heap.idleCompact), and that time (ms). */
  idlePages: number;
  idleMs: number;
  /** Self-service left to the kernel path: another builder held the page (its stall is in the handler samples). */
  selfLeft: number;
  pagesMoved: number;
  pagesCopied: number;
  reclaimedBytes: number;
  liveBytes: number;
  nodes: number;
  /** Frames cut short by ERR_HEAP_FULL (the next frame collects first). */
  heapFullFrames: number;
  verifyOk: boolean;
}

/** Seconds of frames: --seconds, else 10 (6.5 per column with --compare: four columns in about the time three took at 10). */
function seconds(args: Args): number {
  return (args.seconds as number | null) ?? (args.compare ? 6.5 : 10);
}

async function runOne(args: Args, mode: ModeName, faultPath: FaultPathName): Promise<ArtResult> {
  const log = exampleLogger(`art-app:${variantTitle(mode, faultPath).replace(' (', ':').replace(')', '')}`);
  const secs = seconds(args);
  const capacity = num(args, 'heap') * (1 << 20);
  const nodes = num(args, 'nodes');
  const visit = num(args, 'visit');
  const every = num(args, 'every');
  const threshold = num(args, 'threshold');
  const seed = num(args, 'seed');
  const safepointAtEnd = args.safepoint !== 'start';
  const idleCompact = args.idleCompact === 'on';
  // Reads that build: this loop's frames read the same few hundred pages again and again, so a
  // page built once costs less than every read served in from-space until the compactor gets
  // there (issue 11, heavier setting, 15 interleaved rounds twice: frames over budget fewer than
  // the handler path's in 11 and 12 rounds, against 7 with reads from from-space; README).
  const unbuiltReads = args.unbuiltReads as UnbuiltReadsName;
  const heap = await Heap.create({ capacity, mode, faultPath, unbuiltReads, hugePages: args.hugePages === 'on', logger: log.child({ heap: mode }, { level: process.env.MOVEGC_LOG ?? 'warn' }) });
  const t = defineTypes(heap);
  const rnd = prng(seed);
  const app = new App(heap, t, rnd, heap.root(null));
  const tb = performance.now();
  app.build(nodes);
  log.info({ mode: heap.mode, nodes: app.nodes, usedMiB: +mib(heap.usedBytes), buildMs: Math.round(performance.now() - tb) }, 'UI tree built');
  // A first collection settles the tree (what is garbage from building is gone) before frames count.
  await heap.gc();
  const settled = heap.history.length;
  log.info({ liveMiB: +mib(heap.usedBytes), frames: Math.round(secs * 60) }, 'rendering');

  const total = Math.round(secs * 60);
  const frameMs = new Float64Array(total);
  const pauses: number[] = [];
  const gcFrame = new Int32Array(total).fill(-1); // frame of the last collect() at or before each frame
  let lastGc = -1;
  let forceGc = false;
  let heapFull = 0;
  // The non-blocking form: a collection is requested, and its pauses run in the safepoint when
  // due; marking and planning go on concurrently, no frame waits. At the end of a frame (the
  // default), the concurrent phase that follows a pause gets the rest of the frame's budget
  // before the next frame touches the heap; measured against the start: frames over budget
  // 10 / 7 / 9 / 10 / 12 at the start against 1 / 3 / 7 / 4 / 7 at the end (README). Either
  // way the pause counts in its frame's time.
  const safepoint = (f: number): void => {
    const used = heap.usedBytes;
    if ((forceGc || (every > 0 && f > 0 && f % every === 0) || (every <= 0 && used > threshold * capacity)) && heap.requestCollection()) {
      forceGc = false;
      log.debug({ frame: f, usedMiB: +mib(used) }, 'collection requested');
    }
    const ts = performance.now();
    if (heap.safepoint()) {
      const p = performance.now() - ts;
      pauses.push(p);
      lastGc = f;
      log.debug({ frame: f, phase: heap.cyclePhase, usedMiB: +mib(used), afterMiB: +mib(heap.usedBytes), pauseMs: +ms(p, 2) }, 'pause');
    }
  };
  const start = performance.now();
  let next = start;
  let lastReport = start;
  for (let f = 0; f < total; f++) {
    // Idle time until the next frame (less a millisecond for the timer's wake-up) goes to a
    // compacting cycle: the pages the next frame will reach first from the tree's root.
    if (idleCompact) heap.idleCompact(next - 1);
    const wait = next - performance.now();
    if (wait > 1) await sleep(wait);
    else await new Promise<void>((r) => setImmediate(r)); // let the event loop deliver cycle ends
    const t0 = performance.now();
    if (!safepointAtEnd) safepoint(f);
    try {
      app.frame(f, visit);
    } catch (e) {
      // Out of heap mid-frame: the frame's work is dropped and a collection is forced.
      if (!(e instanceof MoveGcError) || e.code !== ErrorCode.HEAP_FULL) throw e;
      heapFull++;
      forceGc = true;
    }
    if (safepointAtEnd) safepoint(f);
    const t1 = performance.now();
    frameMs[f] = t1 - t0;
    gcFrame[f] = lastGc;
    next = Math.max(next + BUDGET_MS, t1 - BUDGET_MS); // a late frame is dropped, not caught up
    if (t1 - lastReport >= 2000) {
      lastReport = t1;
      const done = frameMs.subarray(0, f + 1);
      log.info({ frame: f + 1, of: total, usedMiB: +mib(heap.usedBytes), cycles: heap.history.length - settled + (heap.cycleActive ? 1 : 0), overBudget: done.filter((x) => x > BUDGET_MS).length }, 'progress');
    }
  }
  const elapsed = (performance.now() - start) / 1000;
  await heap.idle();
  const cycles: CycleStats[] = heap.history.slice(settled);
  const verify = heap.verify();
  const sorted = Float64Array.from(frameMs).sort();
  const sum = (g: (c: CycleStats) => number): number => cycles.reduce((a, c) => a + g(c), 0);
  const faultMerged = cycles.flatMap((c) => c.faultUs.buckets).sort((a, b) => a[0] - b[0]);
  const faultPct = (p: number): number => {
    const count = faultMerged.reduce((a, [, n]) => a + n, 0);
    let seen = 0;
    for (const [v, n] of faultMerged) if ((seen += n) >= Math.ceil(p * count)) return v;
    return 0;
  };
  const stallBuckets = mergeBuckets(cycles.flatMap((c) => [c.stalls.self.buckets, c.stalls.handler.buckets, c.stalls.reads.buckets]));
  const stalls = bucketQuantiles(stallBuckets);
  const r: ArtResult = {
    mode: heap.mode,
    faultPath: heap.faultPath,
    unbuiltReads: heap.faultPath === 'self' && heap.mode !== 'stw' ? heap.unbuiltReads : null,
    safepoint: safepointAtEnd ? 'end' : 'start',
    idleCompact,
    fallbacks: [...heap.fallbacks],
    frames: total,
    seconds: elapsed,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? 0,
    overBudget: frameMs.filter((x) => x > BUDGET_MS).length,
    cycles: cycles.length,
    gcPauseTotalMs: pauses.reduce((a, b) => a + b, 0),
    gcPauseMaxMs: Math.max(0, ...pauses),
    compactionPauseMs: sum((c) => c.pause.totalMs),
    markPlanMs: sum((c) => (c.marking === 'concurrent' ? c.mark.concurrentMs : c.markMs) + c.planMs),
    compactionMs: sum((c) => c.compactionMs),
    compactorBusyMs: sum((c) => c.compactorBusyMs),
    faults: sum((c) => c.faults),
    faultP50Us: faultPct(0.5),
    faultP99Us: faultPct(0.99),
    stallP50Us: stalls.p50,
    stallP99Us: stalls.p99,
    stalls: stalls.count,
    stallTotalMs: (stalls.mean * stalls.count) / 1000,
    pagesBuiltBySelf: sum((c) => c.pages.builtBySelf),
    idlePages: sum((c) => c.idle.pages),
    idleMs: sum((c) => c.idle.ms),
    selfLeft: sum((c) => c.stalls.selfLeft),
    pagesMoved: sum((c) => c.pages.moved),
    pagesCopied: sum((c) => c.pages.copied),
    reclaimedBytes: sum((c) => c.reclaimedBytes),
    liveBytes: cycles.length ? cycles[cycles.length - 1].liveBytes : 0,
    nodes: app.nodes,
    heapFullFrames: heapFull,
    verifyOk: verify.ok,
  };
  const worst = [...frameMs.keys()].sort((x, y) => frameMs[y] - frameMs[x]).slice(0, 5);
  log.info({ worst: worst.map((f) => `#${f} ${ms(frameMs[f])}ms${gcFrame[f] === f ? ' (collect)' : gcFrame[f] >= 0 ? ` (+${f - gcFrame[f]} after collect)` : ''}`).join(', ') }, 'slowest frames');
  if (!verify.ok) log.error({ errors: verify.errors.slice(0, 5) }, 'heap verification failed');
  log.info({ frames: r.frames, p50: +ms(r.p50, 2), p99: +ms(r.p99, 2), overBudget: r.overBudget, cycles: r.cycles, faults: r.faults }, 'done');
  await heap.close();
  return r;
}

export function table(rs: ArtResult[]): string {
  const col = (f: (r: ArtResult) => string | number) => rs.map(f);
  const rows: Array<[string, ...Array<string | number>]> = [
    ['frames (60 fps)', ...col((r) => r.frames)],
    ['frame p50 ms', ...col((r) => ms(r.p50, 2))],
    ['frame p99 ms', ...col((r) => ms(r.p99, 2))],
    ['frame max ms', ...col((r) => ms(r.max, 1))],
    [`frames over ${ms(BUDGET_MS)} ms`, ...col((r) => `${r.overBudget} (${ms((100 * r.overBudget) / r.frames)}%)`)],
    ['GC cycles', ...col((r) => r.cycles)],
    ['GC pauses total ms', ...col((r) => ms(r.gcPauseTotalMs))],
    ['GC pause max ms', ...col((r) => ms(r.gcPauseMaxMs))],
    ['mark+plan ms (concurrent except stw)', ...col((r) => ms(r.markPlanMs))],
    ['compaction pauses ms (stw: the whole collection)', ...col((r) => ms(r.compactionPauseMs))],
    ['concurrent compaction ms', ...col((r) => (r.mode === 'stw' ? '-' : ms(r.compactionMs)))],
    ['  compactor busy ms', ...col((r) => (r.mode === 'stw' ? '-' : ms(r.compactorBusyMs)))],
    ['reads of unbuilt pages (self path)', ...col((r) => r.unbuiltReads ?? '-')],
    ['stall/page p50 / p99 us', ...col((r) => (r.stalls ? `${r.stallP50Us} / ${r.stallP99Us}` : '-'))],
    ['  touched unbuilt pages / self-built / left', ...col((r) => (r.mode === 'stw' ? '-' : `${r.stalls} / ${r.pagesBuiltBySelf} / ${r.selfLeft}`))],
    ['  stalls total ms (reads: 1 in 8 timed)', ...col((r) => (r.mode === 'stw' ? '-' : ms(r.stallTotalMs)))],
    ['pages built between frames / ms', ...col((r) => (r.mode === 'stw' ? '-' : r.idleCompact ? `${r.idlePages} / ${ms(r.idleMs)}` : 'off'))],
    ['kernel faults', ...col((r) => r.faults)],
    ['  fault service p50 / p99 us', ...col((r) => (r.faults ? `${r.faultP50Us} / ${r.faultP99Us}` : '-'))],
    ['pages moved / copied', ...col((r) => `${r.pagesMoved} / ${r.pagesCopied}`)],
    ['reclaimed MiB', ...col((r) => mib(r.reclaimedBytes))],
    ['live MiB (last cycle)', ...col((r) => (r.cycles ? mib(r.liveBytes) : '-'))],
    ...(rs.some((r) => r.heapFullFrames > 0) ? [['frames cut by ERR_HEAP_FULL', ...col((r) => r.heapFullFrames)] as [string, ...number[]]] : []),
    ['heap verifies', ...col((r) => (r.verifyOk ? 'yes' : 'NO'))],
  ];
  return sideBySide('art-app: frame times and GC per mode and fault path (same seeded workload)', rs.map((r) => variantTitle(r.mode, r.faultPath) + (r.fallbacks.length ? '*' : '')), rows);
}

/** A column's median round: the one whose frames over budget (then frame p99) are the median. */
export function medianRound(runs: ArtResult[]): ArtResult {
  const sorted = [...runs].sort((a, b) => a.overBudget - b.overBudget || a.p99 - b.p99);
  return sorted[(sorted.length - 1) >> 1];
}

function summary(rs: ArtResult[], rounds: ArtResult[][] = [rs]): string {
  const lines: string[] = [];
  const by = (m: string, p?: FaultPathName) => rs.find((r) => r.mode === m && (p === undefined || r.faultPath === p));
  const mv = by('move', 'self') ?? by('move');
  const cp = by('copy', 'self') ?? by('copy');
  const stw = by('stw');
  const first = rs[0];
  const title = (r: ArtResult): string => variantTitle(r.mode, r.faultPath);
  lines.push(
    `Summary: ${first.frames} frames of a ${first.nodes}-view UI tree per column; ${rs.map((r) => `${title(r)}: ${r.cycles} cycles, ${r.overBudget} frames over budget, p99 ${ms(r.p99, 1)} ms`).join('; ')}.`,
  );
  if (mv && cp && mv.faultPath === cp.faultPath) {
    const d = (100 * (cp.compactionMs - mv.compactionMs)) / Math.max(1, cp.compactionMs);
    lines.push(
      `move vs copy (${mv.faultPath}): concurrent compaction ${ms(mv.compactionMs)} vs ${ms(cp.compactionMs)} ms in total (${ms(Math.abs(d), 0)}% ${d >= 0 ? 'less' : 'more'} with MOVE), ` +
        `${mv.faults} vs ${cp.faults} kernel faults, compaction pauses ${ms(mv.compactionPauseMs)} vs ${ms(cp.compactionPauseMs)} ms (remap only).`,
    );
  }
  for (const m of ['move', 'copy'] as const) {
    const s = by(m, 'self');
    const h = by(m, 'handler');
    if (!s || !h || s.mode !== m || h.mode !== m) continue;
    const drop = (a: number, b: number): string => (a < b ? 'drop' : 'do not drop');
    lines.push(
      `${m}, self vs handler (issue 11${rounds.length > 1 ? `, median rounds of ${rounds.length}` : ''}): stall per touched unbuilt page p50 ${s.stallP50Us} vs ${h.stallP50Us} us, p99 ${s.stallP99Us} vs ${h.stallP99Us} us, ` +
        `stalls ${ms(s.stallTotalMs)} vs ${ms(h.stallTotalMs)} ms in total (${drop(s.stallTotalMs, h.stallTotalMs)}), ${s.faults} vs ${h.faults} kernel faults; ` +
        `frames over budget ${s.overBudget} vs ${h.overBudget} (${drop(s.overBudget, h.overBudget)}), frame p99 ${ms(s.p99, 1)} vs ${ms(h.p99, 1)} ms.`,
    );
    if (rounds.length > 1) {
      // Each round's pair, and in how many rounds self had fewer: the medians alone hide the spread.
      const pairs = rounds.map((r) => [r[rs.indexOf(s)], r[rs.indexOf(h)]] as const);
      const fewer = (f: (r: ArtResult) => number): number => pairs.filter(([a, b]) => f(a) < f(b)).length;
      lines.push(
        `  by round, self / handler: frames over budget ${pairs.map(([a, b]) => `${a.overBudget}/${b.overBudget}`).join(', ')} (self fewer in ${fewer((r) => r.overBudget)} of ${pairs.length}); ` +
          `stalls ms ${pairs.map(([a, b]) => `${ms(a.stallTotalMs)}/${ms(b.stallTotalMs)}`).join(', ')} (self less in ${fewer((r) => r.stallTotalMs)} of ${pairs.length}).`,
      );
    }
  }
  const conc = mv ?? cp;
  if (stw && conc)
    lines.push(
      `stw compacts inside the pause (${ms(stw.gcPauseTotalMs)} ms of pauses over ${stw.cycles} cycles); ${conc.mode} pauses ${ms(conc.gcPauseTotalMs)} ms in all over ${conc.cycles} cycles (compaction pauses ${ms(conc.compactionPauseMs)}) and compacts while frames render. ` +
        `Marking and planning: ${rs.map((r) => `${title(r)} ${ms(r.markPlanMs)} ms ${r.mode === 'stw' ? 'in its pauses' : 'concurrent (marker thread)'}`).join(', ')}.`,
    );
  if (os.loadavg()[0] > os.cpus().length) lines.push(`(load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs: other work competed for the CPUs; repeat before comparing small differences)`);
  if (rs.some((r) => r.fallbacks.length)) lines.push('* ran in a fallback mode: ' + rs.flatMap((r) => r.fallbacks).join('; '));
  return lines.join('\n');
}

export async function main(args: Args): Promise<void> {
  // Provenance only for a file to write (--out, which a --compare child is never handed).
  const prov = typeof args.out !== 'string' ? null : exampleProvenance({ capacityMiB: args.heap, modes: args.compare ? args.modes : [args.mode], faultPath: args.faultPath, unbuiltReads: args.unbuiltReads, hugePages: args.hugePages === 'on', idleCompact: args.idleCompact === 'on' });
  const faultPath = args.faultPath as FaultPathName;
  if (args.compare) {
    // One column per variant: its mode, its fault path, and the seconds every column runs.
    const runs = (args.modes as HeapVariant[]).map((v) => {
      const h = heapVariant(v, faultPath);
      return { mode: h.mode, extra: ['--fault-path', h.faultPath, '--seconds', String(seconds(args))] };
    });
    // Rounds interleave the columns, so that a stretch of load on this shared machine falls on
    // all of them; frames over budget vary run to run by more than the fault path changes them.
    const rounds: ArtResult[][] = [];
    for (let i = 0; i < num(args, 'reps'); i++) rounds.push(await runModes<ArtResult>('art', runs, args));
    const rs = runs.map((_, c) => medianRound(rounds.map((r) => r[c])));
    if (args.json) emitResult(rs); // one RESULT line, as --json says (an audit: the table, and no --out)
    else {
      console.log('\n' + table(rs) + '\n');
      console.log(summary(rs, rounds));
    }
    writeOut(args, 'art-app', rounds.length > 1 ? { median: rs, rounds } : rs, prov);
    const report = benchReportLine();
    if (report) (args.json ? console.error : console.log)(report); // with --json, RESULT is stdout's only line
    return;
  }
  const r = await runOne(args, modeArg(args), faultPath);
  if (args.json) emitResult(r);
  else {
    console.log('\n' + table([r]) + '\n');
    console.log(summary([r]));
  }
  writeOut(args, 'art-app', [r], prov);
}

// `node dist/examples/art-app.js ARGS` is `movegc example art ARGS`.
runWhenMain(import.meta.url, ['example', 'art']);
