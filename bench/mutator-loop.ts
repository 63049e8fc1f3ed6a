/**
 * The benchmark's mutator during one rep (cycle.ts runRep): safepoint() between touches, a
 * touch (three timed loads) every touchUs, a timeline sample every sampleMs, until the cycle
 * has ended and the horizon has passed. What it records is described in cycle.ts.
 *
 * A class at module level, not closures inside runRep: its methods are the same functions in
 * every rep, so the code V8 optimized once stays valid. As closures made afresh per rep, the
 * loop deoptimized in each rep ("wrong call target": the new rep's closures) and V8
 * recompiled runRep whole (on-stack replacement of this loop): 87-154 ms of TurboFan a time
 * on V8's worker threads (`--trace-opt`), inside the measured cycle, taking a CPU from the
 * mutator and the compactor on a 2-core machine (`perf sched timehist`: the main thread
 * waited 2-8 ms for a CPU while those threads ran). For the same reason every field starts
 * with a value of the kind it keeps: a field that went from undefined to a string changed the
 * class's hidden map, and code optimized for the old one deoptimized in the next rep.
 */
import type { Heap, Ref } from '../gc/index.js';
import type { ControlBlock, RepOptions, Timeline } from './cycle.js';

/** The counters the bench follows (heap.progress()), in a small array it refreshes. */
export const CTL = { PAGES_TOTAL: 0, PAGES_MAPPED: 1, FAULTS: 2, STALLS: 3 } as const;

/** Seconds without an installed page after which the mutator stops and lets idle() finish the cycle. */
const NO_PROGRESS_MS = 10_000;

export const hr = (): number => Number(process.hrtime.bigint());

interface Samples {
  rssBytes(): number;
}

export class RepMutator {
  readonly stalls: Array<[number, number]> = [];
  readonly stallKinds: string[] = [];
  /** Mutator-side latency (us) of every access that stalled on an unbuilt page. */
  readonly faultUs: number[] = [];
  touches = 0;
  touchErrors = 0;
  flipped = false;
  /** When collect() ended as the mutator saw it (the flip's safepoint). */
  tc: number;
  /** '' for none: every field keeps the kind of value it starts with (see the file's comment). */
  stoppedEarly = '';
  firstError = '';

  readonly #heap: Heap;
  readonly #o: RepOptions;
  readonly #tl: Timeline;
  readonly #t0: number;
  readonly #ctl: ControlBlock;
  readonly #statm: Samples;
  readonly #dir: { get(): Ref | null };
  readonly #liveCount: number;
  readonly #rnd: () => number;
  readonly #beat: Int32Array;
  readonly #sleeper = new Int32Array(new SharedArrayBuffer(4));
  #dirRef: Ref;

  constructor(heap: Heap, o: RepOptions, tl: Timeline, t0: number, tb: number, ctl: ControlBlock, statm: Samples, dir: { get(): Ref | null }, liveCount: number, rnd: () => number, beat: Int32Array) {
    this.#heap = heap;
    this.#o = o;
    this.#tl = tl;
    this.#t0 = t0;
    this.tc = tb;
    this.#ctl = ctl;
    this.#statm = statm;
    this.#dir = dir;
    this.#dirRef = dir.get()!;
    this.#liveCount = liveCount;
    this.#rnd = rnd;
    this.#beat = beat;
  }

  /** ms since collect() was called. */
  ms(t: number): number {
    return (t - this.#t0) / 1e6;
  }

  stall(a: number, b: number, kind: string): void {
    this.stalls.push([a, b]);
    this.stallKinds.push(kind);
  }

  /** A pause runs here (or the cycle's end); one that ran, or a call over 50 us, is a stall. */
  safepoint(): void {
    const a = hr();
    const paused = this.#heap.safepoint();
    const b = hr();
    if (paused || b - a > 50_000) this.stall(this.ms(a), this.ms(b), paused ? 'pause' : 'safepoint');
    if (!paused) return;
    this.#dirRef = this.#dir.get()!; // a pause made every Ref stale: re-read from the root
    if (!this.flipped && (this.#heap.cyclePhase === 'compacting' || !this.#heap.cycleActive)) {
      const tl = this.#tl;
      this.flipped = true;
      this.tc = b;
      tl.collectEndMs = this.ms(b);
      tl.pauseStartMs = this.ms(a);
      tl.pagesTotal = this.#ctl.read()[CTL.PAGES_TOTAL];
      // As the pause starts: none of the cycle's pages installed, RSS as last sampled (the
      // pause runs inside the call: nothing reads it there); then a real sample as it ends
      // (stw: every page built inside the pause). A figures audit: this point carried the
      // RSS of the cycle's start, a dip that never happened.
      tl.tMs.push(tl.pauseStartMs);
      tl.pagesMapped.push(0);
      tl.faults.push(0);
      tl.rssMiB.push(tl.rssMiB.at(-1)!);
      this.sample(b);
    }
  }

  /** A timeline point; the page and fault counters are the cycle's own only from its flip on (before it, the last cycle's: 0 here). */
  sample(t: number): void {
    const tl = this.#tl;
    const c = this.#ctl.read();
    tl.tMs.push(this.ms(t));
    tl.pagesMapped.push(this.flipped ? c[CTL.PAGES_MAPPED] : 0);
    tl.faults.push(this.flipped ? c[CTL.FAULTS] : 0);
    tl.rssMiB.push(this.#statm.rssBytes() / 2 ** 20);
  }

  faulted(a: number, b: number): void {
    const us = (b - a) / 1000;
    this.faultUs.push(us);
    this.stall(this.ms(a), this.ms(b), 'access');
    this.#tl.faultEvents.push([this.ms(a), us]);
  }

  /** Runs until the cycle has ended and horizonMs have passed (or the collector stopped making progress). */
  async run(tb: number): Promise<void> {
    const o = this.#o;
    const heap = this.#heap;
    const horizonNs = o.horizonMs * 1e6;
    const sampleNs = o.sampleMs * 1e6;
    const touchNs = o.touchUs * 1000;
    const paced = o.mutator === 'paced' || o.mutator === 'paced-idle';
    const idleWork = o.mutator === 'paced-idle';
    let nextSample = tb + sampleNs;
    let nextTouch = tb;
    let done = false;
    let lastMapped = -1;
    let lastMappedAt = tb;
    let lastYield = hr();
    for (;;) {
      this.safepoint(); // the end of the cycle, too, comes at a safepoint once every page is installed
      // A stalled marker is replaced by the event loop (Worker.terminate): let it turn now and then.
      if (!this.flipped && hr() - lastYield > 20e6) {
        await new Promise((r) => setImmediate(r));
        lastYield = hr();
      }
      const now = hr();
      if (now >= nextSample) {
        this.sample(now);
        nextSample = now + sampleNs;
      }
      const ctl = this.#ctl.read();
      const mapped = ctl[CTL.PAGES_MAPPED];
      if (!this.flipped) {
        lastMappedAt = now; // marking and planning: no page is due yet
      } else if (!done && mapped >= ctl[CTL.PAGES_TOTAL]) {
        done = true;
        this.#tl.cycleEndMs = this.ms(now);
      }
      if (done && now - this.#t0 >= horizonNs) {
        if (!heap.cycleActive) break;
        if (this.ms(now) - this.#tl.cycleEndMs > NO_PROGRESS_MS) {
          this.stoppedEarly = `the cycle did not end ${NO_PROGRESS_MS / 1000} s after its last page: idle() finished it`;
          break;
        }
      }
      if (mapped !== lastMapped) {
        lastMapped = mapped;
        lastMappedAt = now;
      } else if (!done && now - lastMappedAt > NO_PROGRESS_MS * 1e6) {
        this.stoppedEarly = `no page installed for ${NO_PROGRESS_MS / 1000} s: the mutator stopped and idle() finished the cycle`;
        break;
      }
      Atomics.store(this.#beat, 1, this.touches);
      if (o.mutator === 'none' || this.#liveCount === 0 || (paced && now < nextTouch)) {
        // Think time: sleep until the next touch or sample, whichever comes first. paced-idle
        // first gives it to a compacting cycle (and sleeps when that had nothing to do in it);
        // a call that ends past the next touch delays that touch, a stop of the mutator.
        const until = paced && this.#liveCount > 0 ? Math.min(nextTouch, nextSample) : nextSample;
        if (idleWork && this.flipped && heap.idleCompact(performance.now() + (until - now) / 1e6) > 0) {
          const late = hr();
          if (late > until) this.stall(this.ms(until), this.ms(late), 'idle work');
          continue;
        }
        const waitMs = (until - now) / 1e6;
        if (waitMs > 0.02) Atomics.wait(this.#sleeper, 0, 0, waitMs);
        continue;
      }
      nextTouch = now + touchNs;
      this.touch();
    }
  }

  /** One touch: directory slot, chunk slot, the object's id, each access timed; a wrong read is counted. */
  touch(): void {
    const heap = this.#heap;
    const i = Math.floor(this.#rnd() * this.#liveCount);
    try {
      let f = this.#ctl.read()[CTL.STALLS];
      let a = hr();
      const c = heap.getRef(this.#dirRef, i >>> 12);
      let b = hr();
      let g = this.#ctl.read()[CTL.STALLS];
      if (g !== f) this.faulted(a, b);
      if (c === null) throw new Error('null chunk');
      f = g;
      a = hr();
      const obj = heap.getRef(c, i & 4095);
      b = hr();
      g = this.#ctl.read()[CTL.STALLS];
      if (g !== f) this.faulted(a, b);
      if (obj === null) throw new Error('null object');
      f = g;
      a = hr();
      const id = heap.getU32(obj, 0);
      b = hr();
      g = this.#ctl.read()[CTL.STALLS];
      if (g !== f) this.faulted(a, b);
      if (id !== i + 1) throw new Error(`id ${id}`);
    } catch (e) {
      // A wrong read is a collector bug: counted and reported, never hidden.
      if (this.touchErrors++ === 0) this.firstError = `live object ${i}: ${(e as Error).message}`;
    }
    this.touches++;
  }
}
