/**
 * One repetition: a fresh heap built by the workload, one collection, and a mutator that runs
 * on the main thread concurrently with the compaction.
 *
 * The mutator: as soon as collect() returns, the main thread touches random live objects
 * (directory slot, chunk slot, the object's id: three loads, each timed with
 * process.hrtime.bigint) until the compaction has installed every page and at least
 * `horizonMs` have passed since collect() was called. `paced` (the default) touches one object
 * every touchUs and sleeps in between, like an application doing other work; `busy` touches
 * back to back (a worst case: on 2 cores it takes a whole core from the collector's two
 * threads); `none` only samples the timeline. An access during which the
 * collector's fault counter moved is an access that faulted on a not-yet-installed page:
 * its duration is a mutator-side fault latency (fault to wake, as the mutator sees it). The
 * handler-side service time (read to install, on the fault server) comes from the heap's
 * CycleStats.faultUs. The mutator also checks every id it reads.
 *
 * Timeline: every `sampleMs` (between touches) the mutator records pages installed
 * (PAGES_MAPPED), faults so far (FAULTS) and the process RSS (/proc/self/statm).
 *
 * The cycle is requested (heap.requestCollection) and its pauses run inside safepoint() calls
 * the mutator makes between touches, as a frame loop would; marking and planning run
 * concurrently unless the heap marks in the pause. The loop goes on calling safepoint() after
 * the flip: the end of the cycle (unregister, statistics) runs in one once every page is
 * installed, as in a frame loop. Stalls for the MMU: each safepoint() call that ran a pause or
 * took over 50 us, every access that stalled on an unbuilt page (it faulted, or self-service
 * built or installed the page inline), and the final idle() call.
 *
 * Reading the collector's counters: heap.progress(), the public API, at every sample and
 * around every access.
 */
import fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Heap, PAGE_SIZE, type CycleStats, type ModeName } from '../gc/index.js';
import { buildHeap, rng, type Workload } from './workload.js';
import { heapOptionsOf, type KnobValues, type MutatorKind } from './knobs.js';
import { bucketQuantiles, quantiles, type Quantiles } from './stats.js';
import { CTL, RepMutator, hr } from './mutator-loop.js';
import { runtimeThreadsCpuMs } from './procfs.js';


export interface Timeline {
  /** ms since collect() was called. */
  tMs: number[];
  pagesMapped: number[];
  faults: number[];
  rssMiB: number[];
  pagesTotal: number;
  /** [ms since collect() was called, mutator-side latency in us] of every faulting access. */
  faultEvents: Array<[number, number]>;
  collectEndMs: number;
  /** Phase ends inside collect() (CycleStats.markMs, + planMs): markers on the report's timelines. */
  markEndMs: number;
  planEndMs: number;
  /** Start of the compaction pause (collect() end minus the pause): mark and plan come before. */
  pauseStartMs: number;
  cycleEndMs: number;
  idleStartMs: number;
  idleEndMs: number;
}

export interface RepResult {
  rep: number;
  mode: ModeName;
  requestedMode: ModeName;
  fallbacks: readonly string[];
  heapBytes: number;
  usedBytes: number;
  liveBytes: number;
  liveObjects: number;
  pins: number;
  buildMs: number;
  /** From the request to the end of the compaction pause (marking and planning, concurrent or not, included). */
  collectMs: number;
  marking: CycleStats['marking'];
  /** Every stop of the mutator by the cycle, in order. */
  pauses: Array<{ kind: string; ms: number }>;
  /** The longest single stop of the mutator (a pause, a faulting access, the final idle()) and their sum. */
  stwMaxMs: number;
  /**
   * What that longest stop was: 'request' (requestCollection: the initial pause), 'pause' (a
   * safepoint that ran the marking or compaction pause; stw: the collection), 'safepoint' (one
   * that ran none but took over 50 us: the end of the cycle, or waiting for the marker to
   * park), 'access' (an access that met an unbuilt page), 'idle' (the final idle()); with
   * ' + V8 GC' when V8's own collector ran inside it (the JavaScript heap, not this one).
   */
  stwMaxKind: string;
  /**
   * CPU ms V8's and libuv's own threads ran from the request to the loop's end (procfs.ts
   * runtimeThreadsCpuMs; null without procfs): mostly the optimizing compiler, for the
   * collector's Workers, which start with fresh isolates in every heap.
   */
  runtimeThreadsCpuMs: number | null;
  /** V8's own garbage collections (node:perf_hooks 'gc' entries) inside the stops, ms in total. */
  v8GcInStopsMs: number;
  stwTotalMs: number;
  /** Marking's wall time, in the pause or concurrent (CycleStats.mark.concurrentMs). */
  markMs: number;
  planMs: number;
  /** The compaction pause as recorded in `pauses` (stw: the whole collection). */
  pauseMs: number;
  pause: CycleStats['pause'];
  compactionMs: number;
  compactorBusyMs: number;
  concurrentMs: number;
  /** Wall time of the final idle() call (finalization on the mutator's thread). */
  idleMs: number;
  /** Live MB (10^6 B) compacted per second of compactionMs. */
  throughputMBps: number;
  /** Faults the fault server read (handler side). */
  faults: number;
  /**
   * Mutator accesses that stalled on an unbuilt page, and their latencies (us): a kernel fault
   * (handler path) or a page the accessor served itself (self-service); both are collector time.
   */
  mutatorFaults: number;
  faultMutatorUs: Quantiles;
  faultHandlerUs: Quantiles;
  /** The heap's own split of the mutator's stalls per touched unbuilt page (self-service vs the kernel path). */
  faultPathStalls: CycleStats['stalls'];
  /** The compactor's time split (build / install / release / other / wait), ms. */
  compactorSplit: CycleStats['compactor'];
  /** Pages per MOVE/COPY call (every installer), with its histogram. */
  batchPages: CycleStats['batchPages'];
  faultHandlerBuckets: Array<[number, number]>;
  touches: number;
  touchErrors: number;
  /** The heap's cycle number of the measured collection (1 + warmCycles). */
  cycle: number;
  pages: CycleStats['pages'];
  pagesMoved: number;
  pagesCopied: number;
  moveCalls: number;
  copyCalls: number;
  batchPagesP50: number;
  ebusyFallbacks: number;
  eexist: number;
  eagain: number;
  takeovers: number;
  errors: number;
  rssBeforeBytes: number;
  /** max(collector's sampled peak, the mutator's timeline samples). */
  rssPeakBytes: number;
  rssPeakCollectorBytes: number;
  rssAfterBytes: number;
  horizonMs: number;
  verify?: { ok: boolean; objects: number; errors: string[] };
  /** Set when the mutator had to stop before the cycle's end (the collector made no progress). */
  stoppedEarly?: string;
  /** The first wrong read of the mutator, if any. */
  firstError?: string;
  /** Not written for every rep (see run.ts): the median rep's timeline goes in the report. */
  timeline: Timeline;
  /** Mutator stall intervals [start, end] in ms since collect(): for the MMU. */
  stalls: Array<[number, number]>;
  /** The same from the compaction pause's start on (stops while marking left out; stw and marking 'pause' keep mark and plan, inside the pause). */
  stallsCompaction: Array<[number, number]>;
  faultSamplesUs: number[];
}

export interface RepOptions {
  mode: ModeName;
  workload: Workload;
  rep: number;
  /** The mutator runs at least this long after collect() is called. */
  horizonMs: number;
  sampleMs: number;
  verify: boolean;
  /** paced: one touch every touchUs (sleeping between); busy: back to back; none: no touches. */
  mutator: MutatorKind;
  touchUs: number;
  /**
   * Collections of the fresh heap before the measured one: its pages were then installed by
   * the last cycle and not touched since (cold data), not written just before (0: the default).
   */
  warmCycles?: number;
  /** Heap options that change results (knobs.ts), passed to Heap.create as they are. */
  heapOptions: KnobValues;
}

export { MUTATORS, type MutatorKind } from './knobs.js';


/** Seconds without mutator progress after which the watchdog ends the process (see watchdog.ts). */
export const STUCK_MS = 30_000;

let watchdog: { worker: Worker; beat: Int32Array } | null = null;
function watchdogOn(ctl: Int32Array, label: string, stuckMs: number): Int32Array {
  if (!watchdog) {
    const sab = new SharedArrayBuffer(16);
    const worker = new Worker(new URL('./watchdog.js', import.meta.url), { workerData: { beat: sab, stuckMs: STUCK_MS } });
    worker.unref();
    watchdog = { worker, beat: new Int32Array(sab) };
  }
  watchdog.worker.postMessage({ ctl: ctl.buffer, names: Object.keys(CTL), label, stuckMs });
  return watchdog.beat;
}
/** Stops the watchdog (at the end of the run). */
export function stopWatchdog(): void {
  if (!watchdog) return;
  Atomics.store(watchdog.beat, 2, 1);
  void watchdog.worker.terminate();
  watchdog = null;
}

/**
 * The collector's live counters through the public progress API, in an Int32Array the
 * watchdog reads too. A class, not a closure per rep, for the reason given in mutator-loop.ts.
 */
export class ControlBlock {
  readonly #heap: Heap;
  readonly #c = new Int32Array(new SharedArrayBuffer(4 * Object.keys(CTL).length));
  constructor(heap: Heap) {
    this.#heap = heap;
  }
  read(): Int32Array {
    const p = this.#heap.progress();
    const c = this.#c;
    c[CTL.PAGES_TOTAL] = p.pagesTotal;
    c[CTL.PAGES_MAPPED] = p.pagesMapped;
    c[CTL.FAULTS] = p.faults;
    // An access stalled if it faulted or met an unbuilt page (self-service builds it inline,
    // or reads it from from-space: a short stop, timed all the same).
    c[CTL.STALLS] = p.faults + p.unbuiltTouches + p.unbuiltReads + p.unbuiltWrites;
    return c;
  }
}

class Statm {
  readonly #fd = fs.openSync('/proc/self/statm', 'r');
  readonly #buf = Buffer.alloc(128);
  rssBytes(): number {
    const n = fs.readSync(this.#fd, this.#buf, 0, 128, 0);
    const s = this.#buf.toString('latin1', 0, n);
    const a = s.indexOf(' ');
    return Number(s.slice(a + 1, s.indexOf(' ', a + 1))) * PAGE_SIZE;
  }
  close(): void {
    fs.closeSync(this.#fd);
  }
}

export async function runRep(o: RepOptions): Promise<RepResult> {
  const w = o.workload;
  const heap = await Heap.create({ ...heapOptionsOf(o.heapOptions), capacity: w.heapBytes, mode: o.mode });
  const statm = new Statm();
  try {
    const ctl = new ControlBlock(heap);
    const built = buildHeap(heap, w);
    for (let i = 0; i < (o.warmCycles ?? 0); i++) await heap.gc();
    const liveCount = built.liveCount;
    const rnd = rng(w.seed * 31 + o.rep);
    const tl: Timeline = { tMs: [], pagesMapped: [], faults: [], rssMiB: [], pagesTotal: 0, faultEvents: [], collectEndMs: 0, markEndMs: 0, planEndMs: 0, pauseStartMs: 0, cycleEndMs: 0, idleStartMs: 0, idleEndMs: 0 };
    const t0 = hr();
    const perf0 = performance.timeOrigin + performance.now();
    // V8's own collections, on the same clock as the stops: a stop may be one of them.
    const p0 = performance.now();
    const v8gc: Array<[number, number]> = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) v8gc.push([e.startTime - p0, e.startTime - p0 + e.duration]);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const ms = (t: number): number => (t - t0) / 1e6;
    tl.tMs.push(0);
    tl.pagesMapped.push(0); // (the control words still count the last cycle's: mutator-loop.ts sample)
    tl.faults.push(0);
    tl.rssMiB.push(statm.rssBytes() / 2 ** 20);
    // The cycle is driven the way a frame loop drives it (see Heap.safepoint): requested, then
    // every pause runs inside a safepoint() call the mutator makes between touches. Each
    // call that ran a pause (or took long) is a stall; marking and planning run meanwhile.
    // (stw: the first safepoint is the whole collection.)
    const ta = hr();
    heap.requestCollection();
    const tb = hr();
    // A stw collection is one safepoint call: seconds per GiB on this machine (26 s at 8 GiB).
    const beat = watchdogOn(ctl.read(), `rep ${o.rep} ${o.mode} ${w.heapBytes / 2 ** 20} MiB`, Math.max(STUCK_MS, (w.heapBytes / 2 ** 30) * 10_000));
    Atomics.store(beat, 0, 1);
    const mut = new RepMutator(heap, o, tl, t0, tb, ctl, statm, built.dir, liveCount, rnd, beat);
    mut.stall(ms(ta), ms(tb), 'request');
    const v8a = runtimeThreadsCpuMs();
    await mut.run(tb);
    const v8b = runtimeThreadsCpuMs();
    const { stalls, stallKinds, faultUs, touches, touchErrors } = mut;
    const stoppedEarly = mut.stoppedEarly || undefined;
    const firstError = mut.firstError || undefined;
    let tc = mut.tc;
    const ti = hr();
    const st = (await heap.idle())!;
    // The stop ends here. The event-loop turn below is the benchmark's own (its GC observer's
    // entries arrive there), and it runs whatever V8 queued on this thread while the loop above
    // never yielded. Counted in the idle() stop, it was most of it: 0.3-2.3 ms against 0.02-0.35
    // for idle() itself in six instrumented reps at 1 GiB.
    const te = hr();
    await new Promise((r) => setImmediate(r));
    gcObserver.disconnect();
    if (!mut.flipped) {
      tc = ti;
      tl.collectEndMs = ms(ti);
    }
    // Phase ends from the cycle's own record of its pauses (absolute ms, performance.timeOrigin based).
    const abs0 = perf0;
    const remark = st.pauses.find((p) => p.kind === 'remark');
    const flip = st.pauses.find((p) => p.kind === 'compaction' || p.kind === 'mark-compaction' || p.kind === 'stw');
    tl.markEndMs = remark ? remark.startMs - abs0 : flip ? flip.startMs - abs0 + st.markMs : 0;
    tl.planEndMs = flip ? flip.startMs - abs0 + (remark ? 0 : st.markMs + st.planMs) : 0;
    Atomics.store(beat, 0, 0);
    mut.stall(ms(ti), ms(te), 'idle');
    tl.idleStartMs = ms(ti);
    tl.idleEndMs = ms(te);
    if (o.mode === 'stw' || heap.mode === 'stw') tl.cycleEndMs = tl.collectEndMs;
    const verify = o.verify ? heap.verify() : undefined;
    // The longest stop: its length, what it was, and whether V8's own collector ran inside it.
    const longest = stalls.reduce((m, [a, b], i) => (m < 0 || b - a > stalls[m][1] - stalls[m][0] ? i : m), -1);
    const [la, lb] = longest < 0 ? [0, 0] : stalls[longest];
    const sampledPeak = Math.max(0, ...tl.rssMiB.map((m) => m * 2 ** 20));
    const handler = st.faultUs;
    return {
      rep: o.rep,
      mode: heap.mode,
      requestedMode: o.mode,
      fallbacks: heap.fallbacks,
      heapBytes: w.heapBytes,
      usedBytes: built.usedBytes,
      liveBytes: st.liveBytes,
      liveObjects: st.liveObjects,
      pins: built.pins.length,
      buildMs: built.buildMs,
      collectMs: ms(tc),
      marking: st.marking,
      pauses: st.pauses.map((p) => ({ kind: p.kind, ms: p.ms })),
      stwMaxMs: lb - la,
      stwMaxKind: longest < 0 ? '-' : stallKinds[longest] + (v8gc.some(([s, e]) => s < lb && e > la) ? ' + V8 GC' : ''),
      runtimeThreadsCpuMs: v8a === null || v8b === null ? null : v8b - v8a,
      v8GcInStopsMs: stalls.reduce((t, [a, b]) => t + v8gc.reduce((u, [s, e]) => u + Math.max(0, Math.min(b, e) - Math.max(a, s)), 0), 0),
      stwTotalMs: stalls.reduce((t, [a, b]) => t + (b - a), 0),
      // Marking's wall time wherever it ran: CycleStats.markMs is the pause's marking only (0
      // with concurrent marking, the default), mark.concurrentMs the marker's.
      markMs: st.markMs > 0 ? st.markMs : st.mark.concurrentMs,
      planMs: st.planMs,
      // The compaction pause as the mutator saw it (the recorded pause, as in `pauses`), not the
      // split's total, which starts after the plan's extension over black allocations.
      pauseMs: st.pauses.find((p) => p.kind === 'compaction' || p.kind === 'mark-compaction' || p.kind === 'stw')?.ms ?? st.pause.totalMs,
      pause: st.pause,
      compactionMs: st.compactionMs,
      compactorBusyMs: st.compactorBusyMs,
      concurrentMs: st.concurrentMs,
      idleMs: ms(te) - ms(ti),
      throughputMBps: st.compactionMs > 0 ? st.liveBytes / 1e6 / (st.compactionMs / 1000) : 0,
      faults: st.faults,
      mutatorFaults: faultUs.length,
      faultMutatorUs: quantiles(faultUs),
      faultHandlerUs: bucketQuantiles(handler.buckets),
      faultHandlerBuckets: handler.buckets,
      faultPathStalls: st.stalls,
      compactorSplit: st.compactor,
      batchPages: st.batchPages,
      touches,
      touchErrors,
      cycle: st.cycle,
      pages: st.pages,
      pagesMoved: st.pages.moved,
      pagesCopied: st.pages.copied,
      moveCalls: st.moveCalls,
      copyCalls: st.copyCalls,
      batchPagesP50: st.batchPages.p50,
      ebusyFallbacks: st.ebusy,
      eexist: st.eexist,
      eagain: st.eagain,
      takeovers: st.takeovers,
      errors: st.errors,
      rssBeforeBytes: st.rss.beforeBytes,
      rssPeakBytes: Math.max(st.rss.peakBytes, sampledPeak),
      rssPeakCollectorBytes: st.rss.peakBytes,
      rssAfterBytes: st.rss.afterBytes,
      horizonMs: ms(te),
      stoppedEarly,
      firstError,
      verify: verify ? { ok: verify.ok, objects: verify.objects, errors: verify.errors.slice(0, 5) } : undefined,
      timeline: tl,
      stalls,
      stallsCompaction: stalls.filter(([a]) => a >= tl.pauseStartMs),
      faultSamplesUs: faultUs,
    };
  } finally {
    statm.close();
    await heap.close();
  }
}
