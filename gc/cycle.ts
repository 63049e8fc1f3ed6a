/**
 * The phase driver: one collection cycle as the ordered list of its phases (ART CMC's
 * RunPhases; mmtk's Compressor schedule_collection), each with why it exists and what it
 * must come after. A cycle with concurrent marking:
 *
 *  1. begin (initial mark, a pause of O(roots)): snapshot the roots, fix the black-allocation
 *     boundary at the top, turn the write barrier on, hand the marker its job. Must come
 *     first: the barrier must be on before the marker reads any slot.
 *  2. mark (concurrent, marker thread): clear the bitmaps, then trace below the boundary,
 *     consuming the barrier log (which logs every store until the bitmaps are clear).
 *  3. remark (the marking pause, O(log + roots)): park the marker, drain the log, re-scan the
 *     roots (root stores have no barrier), blacken what was allocated since 1, retag every
 *     reference (a Ref from before may name an object found dead), hand over the plan.
 *     Must come after the marker is parked: from here the bitmaps are the mutator's.
 *  4. plan (concurrent, marker thread): new addresses and per-page sources (plan.ts).
 *  5. flip (the compaction pause, O(roots + pins + allocation since 3)): extend the plan over
 *     what was allocated since 3 (it slides as one block), forward roots, remap and register
 *     (pause.ts), retag. Must come after 4: it installs the plan.
 *  6. compact (concurrent: compactor, fault server; compact.ts, fault.ts).
 *  7. end: every page installed; unregister, release from-space, record (cycle-end.ts).
 * With `marking: 'pause'` (and in `stw` mode) 1-5 run as one pause on the mutator's thread.
 *
 * What the driver is given and keeps per cycle: cycle-state.ts. The plan the flip installs (5):
 * flip-plan.ts. The waits on the marker (2, 4):
 * marker-link.ts; on the compaction (6): compaction-end.ts.
 *
 * Pauses run only inside calls the mutator makes: collect() (awaiting each concurrent phase)
 * or safepoint() (runs whichever pause is due, never waits for a collector thread). JavaScript
 * cannot update a Ref held in a local, so the collector never stops the mutator on its own.
 */
import { nextSet } from './bits.js';
import { drainLog } from './barrier.js';
import { RSS_SAMPLE_PAGES, readRss, sampleRss } from './builders.js';
import { awaitCompaction, compactionSettled } from './compaction-end.js';
import { endCycle, reportCycle } from './cycle-end.js';
import { CyclePhase, type ActiveCycle, type CycleContext, type CyclePhaseName } from './cycle-state.js';
import { Clk, Ctl, MarkJob, Phase, armCompaction, resetMarking } from './control.js';
import { ErrorCode, MoveGcError } from './errors.js';
import { mapHeadroom } from './map-count.js';
import { Tracer, clearMarks } from './mark.js';
import { blackenAllocated, planForFlip } from './flip-plan.js';
import { MarkerLink } from './marker-link.js';
import { Mode } from './modes.js';
import { Marking, largeObjectWords } from './options.js';
import { compactionPause, pauseError, unprotectHeap } from './pause.js';
import { liveEndOf, type Plan } from './plan.js';
import { Owner, now, sleepSync } from './shared.js';
import { emptyStats, recordMarking, recordPlan, type CycleStats, type PauseKind } from './stats.js';
import { keepAlive } from './threads.js';
import { Role as HbRole } from './heartbeat.js';
import { rounded, roundMs } from './trace.js';

export class CycleDriver {
  readonly #c: CycleContext;
  readonly concurrentMarking: boolean;
  /** Large objects (options.largeObjectBytes) that start on a page keep doing so: plan.ts, step 6. */
  readonly #alignWords: number;
  #active: ActiveCycle | null = null;
  #history: CycleStats[] = [];
  /**
   * The same records by cycle number, as recorded: gc() finds its cycle's here, not by a
   * record's `cycle` field. The records are the heap's own: callers get copies (Heap.history,
   * Collector.idle and finished).
   */
  readonly #byCycle = new Map<number, CycleStats>();
  #cycles = 0;
  #finishing: Promise<void> | null = null;
  /** A collection asked for by request() in a pause-marking heap: runs at the next safepoint. */
  #requested = false;
  /** The end of a cycle failed on the event loop (verify: true): for the mutator's next cycle call. */
  #endError: unknown = null;
  readonly #marker: MarkerLink;

  constructor(c: CycleContext) {
    this.#c = c;
    this.concurrentMarking = c.mode !== Mode.STW && c.opts.marking === Marking.CONCURRENT;
    this.#alignWords = largeObjectWords(c.opts);
    this.#marker = new MarkerLink(c.sh, c.threads, c.log);
    c.threads.onCompactorDone = () => {
      if (this.#active?.phase === CyclePhase.COMPACTING && !c.threads.closed) this.#tryFinalize();
    };
  }

  get active(): boolean {
    return this.#active !== null;
  }
  get activeCycle(): number | undefined {
    return this.#active?.stats.cycle;
  }
  get phase(): CyclePhaseName | 'idle' {
    return this.#active?.phase ?? 'idle';
  }
  get history(): readonly CycleStats[] {
    return this.#history;
  }
  /** The record of cycle `cycle`, if it finished and is still in the history. */
  recordOf(cycle: number): CycleStats | undefined {
    return this.#byCycle.get(cycle);
  }

  // ------------------------------------------------------------------ the mutator's calls

  /**
   * A whole cycle up to the end of the compaction pause, awaiting the concurrent phases.
   * The caller has waited for any active cycle to end.
   */
  async collect(): Promise<CycleStats> {
    this.throwEndError();
    this.#requested = false;
    const a = this.#begin();
    await this.#driveToFlip(a);
    return a.stats;
  }

  /**
   * Runs the cycle's phases up to the end of its compaction pause. Several callers may drive
   * the same cycle (collect, finish, safepoint between them): each phase checks that it is
   * still due after every wait, so each runs once.
   */
  async #driveToFlip(a: ActiveCycle): Promise<void> {
    while (this.#active === a && a.phase !== CyclePhase.COMPACTING) {
      if (a.phase === CyclePhase.MARKING && this.concurrentMarking) {
        const parked = await this.#awaitMarking(a);
        if (this.#active === a && a.phase === CyclePhase.MARKING) this.#remark(a, parked);
      } else if (a.phase === CyclePhase.PLANNING) {
        await this.#awaitPlan(a);
        if (this.#active === a && a.phase === CyclePhase.PLANNING) this.#flip(a);
      } else this.#flip(a); // marking in the pause
    }
    if (a.error) throw a.error;
  }

  /** The number of the last cycle begun. */
  get begun(): number {
    return this.#cycles;
  }

  /**
   * For a collect() called when `since` cycles had begun: the active cycle, if it began after
   * that call and has not reached its compaction pause, driven there in place of a new one
   * (it is a whole cycle since the call), if request() began it and no other collect() took
   * it. Without this, a caller that requests the next cycle as each one ends (a logger hook
   * on 'cycle done', from the microtask that logs it) kept collect() and gc() waiting for
   * ever. Null when there is no such cycle.
   */
  async adopt(since: number): Promise<CycleStats | null> {
    const a = this.#active;
    // Only one begun by request(), and adopted once: concurrent collect() calls each get a cycle of their own.
    if (!a || !a.adoptable || a.stats.cycle <= since || a.phase === CyclePhase.COMPACTING) return null;
    a.adoptable = false;
    this.throwEndError();
    await this.#driveToFlip(a);
    return a.stats;
  }

  /** Starts a cycle without waiting (see Heap.requestCollection). False if one is active. */
  request(): boolean {
    if (this.#active || this.#requested) return false;
    if (this.concurrentMarking) this.#begin().adoptable = true;
    else this.#requested = true;
    return true;
  }

  /**
   * Runs the pause that is due, if any, and returns true if one ran that made References
   * stale; ends a compacting cycle whose pages are all installed. Never waits for a collector
   * thread: a marker or compactor still working is left to work.
   */
  safepoint(): boolean {
    this.throwEndError();
    if (this.#requested) {
      this.#requested = false;
      this.#flip(this.#begin());
      return true;
    }
    const a = this.#active;
    if (!a) return false;
    if (a.phase === CyclePhase.COMPACTING) {
      // The end of the cycle, if it is due: stale References are not made here (the flip did).
      this.#finalizeIfDone();
      return false;
    }
    const m = this.#marker;
    const failed = m.failed(a.request);
    const lost = !failed && m.lost(a.request);
    if (a.phase === CyclePhase.MARKING) {
      if (!failed && !lost && !m.parked) {
        // Caught up: ask it to park, without waiting (it used to wait up to 2 ms here). A
        // later safepoint finds it parked and remarks.
        if (!m.idle) return false;
        m.askToPark();
        if (!m.parked) return false;
      }
      // Lost: its stack died with it, so marking is redone in this pause.
      this.#remark(a, !failed && !lost);
      return true;
    }
    // Planning: flip once the plan is there (or the marker failed or was lost: plan in the pause).
    if (!failed && !lost && !m.done(a.request)) return false;
    this.#flip(a);
    return true;
  }

  /**
   * Drives the cycles active or requested now to their end (every phase), with bounded waits;
   * not those begun after this call.
   */
  async finish(): Promise<void> {
    const upTo = this.#cycles + (this.#requested && !this.#active ? 1 : 0);
    // A run already under way may be bound to an older cycle (safepoints can end it and start
    // the next meanwhile, without yielding): wait for it, then look again.
    while ((this.#active !== null && this.#active.stats.cycle <= upTo) || (this.#requested && this.#cycles < upTo)) {
      // One at a time: two concurrent runs could both replace a stalled thread (two compactors).
      if (!this.#finishing) this.#finishing = keepAlive(this.#finishOnce()).finally(() => (this.#finishing = null));
      await this.#finishing;
    }
    this.throwEndError();
  }

  /**
   * close(): a collection requested of a heap marking in the pause and not begun yet is
   * dropped. Nothing has moved for it, and the heap is about to be released: running it would
   * make close() stop the world for a whole mark-compaction nobody will use (seconds at 1 GiB).
   */
  dropRequest(): void {
    this.#requested = false;
  }

  /**
   * A cycle whose end failed on the event loop (its verification, with `verify: true`) had no
   * caller to reject: the mutator's next call that drives or awaits a cycle (collect, safepoint,
   * idle, gc) throws it, once.
   */
  throwEndError(): void {
    const e = this.#endError;
    this.#endError = null;
    if (e !== null) throw e;
  }

  async #finishOnce(): Promise<void> {
    // A collection requested of a heap marking in the pause runs now (finish is a call the
    // mutator made, awaiting the end of every collection it asked for).
    if (this.#requested && !this.#active) {
      this.#requested = false;
      this.#flip(this.#begin());
    }
    const a = this.#active;
    if (!a) return;
    await this.#driveToFlip(a);
    await this.#finishCompaction(a);
  }

  // ------------------------------------------------------------------ 1. begin

  #begin(): ActiveCycle {
    const { sh, mut } = this.#c;
    const t0 = now();
    unprotectHeap(sh); // before anything reads it: a program's PROT_NONE would fault the marker
    resetMarking(sh.ctl, sh.clk);
    this.#cycles++;
    const stats = emptyStats(this.#cycles, this.#c.mode, this.concurrentMarking ? Marking.CONCURRENT : Marking.PAUSE, this.#c.opts.faultPath);
    stats.rss.beforeBytes = readRss(sh);
    const a: ActiveCycle = { stats, phase: CyclePhase.MARKING, blackStart: mut.top, typeCount: mut.typeCount, planTop: mut.top, plan: null, pinsAdded: mut.pinsAdded, request: 0, pauseEnd: 0, liveEnd: 0 };
    this.#active = a;
    mut.allocGaps = [];
    if (!this.concurrentMarking) return a;
    mut.barrierLog.reset();
    mut.setBarrier(true, a.blackStart);
    Atomics.store(sh.ctl, Ctl.PHASE, Phase.MARKING);
    a.request = this.#marker.hand({ job: MarkJob.MARK, roots: Uint32Array.from(mut.rootWords()), blackStart: a.blackStart, typeCount: a.typeCount, epoch: mut.epochStarts }, this.#c.inject().markHandGapMs);
    this.#pause(a, 'initial', t0);
    return a;
  }

  // ------------------------------------------------------------------ 2. mark (await)

  /** Waits for the marker (marker-link.ts): true once it parked with nothing left, false if it was lost or failed. */
  #awaitMarking(a: ActiveCycle): Promise<boolean> {
    return this.#marker.awaitMarked(a.request, () => this.#active === a && a.phase === CyclePhase.MARKING, this.#c.opts.stallMs);
  }

  // ------------------------------------------------------------------ 3. remark

  /**
   * The marking pause. `parked`: the marker stopped with its work done; otherwise (it died,
   * stalled or failed) marking is redone here from the roots. A failure that is the heap's
   * (a corrupt header) ends the cycle with the error, nothing moved.
   */
  #remark(a: ActiveCycle, parked: boolean): void {
    const { sh, mut } = this.#c;
    const t0 = now();
    mut.setBarrier(false, 0);
    const failure = this.#marker.failed(a.request) ? this.#marker.reply(a.request) : null;
    if (failure && !failure.ok && failure.code === ErrorCode.HEAP_CORRUPT) {
      const e = new MoveGcError(failure.code, failure.message);
      this.#abort(a, e);
      throw e;
    }
    const t = new Tracer(mut.u32, sh.types, a.typeCount, sh.starts, sh.live, a.blackStart, sh.objects[mut.epochStarts]);
    if (parked) {
      drainLog(sh.logRing, sh.ctl, (w) => t.visit(w));
      for (const w of mut.barrierLog.spill) t.visit(w);
    } else {
      clearMarks(sh.starts, sh.live); // all of it: bits above the boundary are blackened below
      a.stats.takeovers++;
      this.#c.log.warn({ cycle: a.stats.cycle, reason: failure && !failure.ok ? failure.message : 'marker stalled or dead' }, 'marker lost: marking redone in the marking pause');
    }
    try {
      for (const w of mut.rootWords()) t.visit(w);
      if (!parked) {
        // What black objects refer to reached the marker through the log, which died with it
        // (entries it consumed are gone): their slots are roots of this re-mark.
        const objects = sh.objects[mut.epochStarts];
        for (let o = nextSet(objects, a.blackStart, mut.top); o < mut.top; o = nextSet(objects, o + 1, mut.top)) t.scanSlots(o);
      }
      t.drain();
    } catch (e) {
      this.#abort(a, e);
      throw e;
    }
    recordMarking(a.stats, sh, t, mut.barrierLog.entries);
    // Everything allocated since marking began is live and slides as a block (ART's black
    // allocations): its words are live, its starts are the allocator's.
    blackenAllocated(this.#c, a, a.blackStart, mut.top);
    a.planTop = mut.top;
    mut.retag();
    mut.setUnmarkedBelow(a.planTop); // until the flip: what marking left unmarked is garbage
    a.phase = CyclePhase.PLANNING;
    Atomics.store(sh.ctl, Ctl.PHASE, Phase.REMARKED);
    a.pinsAdded = mut.pinsAdded;
    a.request = this.#marker.hand({ job: MarkJob.PLAN, topWord: a.planTop, pins: mut.pinWords(), denseThreshold: this.#c.opts.denseThreshold, alignWords: this.#alignWords, next: mut.epochStarts ^ 1, nextExtent: mut.nextStartsExtent }, this.#c.inject().markHandGapMs);
    this.#pause(a, 'remark', t0);
  }

  /** Ends a cycle that failed before anything moved: the heap stays as it was. */
  #abort(a: ActiveCycle, e: unknown): void {
    a.error = e as Error;
    const { sh, mut } = this.#c;
    // A plan of this cycle (the marker's, or one in the pause) may have written the next
    // layout's object starts anywhere below the top: the next cycle's plan must clear them,
    // or they become object starts of the layout after it (found by an audit: a plan that
    // threw ERR_PIN_LIMIT in the pause left them; two cycles later interior words passed for
    // objects and the page builder read garbage headers).
    mut.nextStartsExtent = Math.max(mut.nextStartsExtent, (mut.top >>> 5) + 1);
    mut.setBarrier(false, 0);
    mut.setUnmarkedBelow(0);
    mut.allocGaps = null;
    Atomics.store(sh.ctl, Ctl.PHASE, Phase.IDLE);
    if (this.#active === a) this.#active = null;
    this.#cycles--;
  }

  // ------------------------------------------------------------------ 4. plan (await)

  #awaitPlan(a: ActiveCycle): Promise<void> {
    return this.#marker.awaitPlanned(a.request, () => this.#active === a && a.phase === CyclePhase.PLANNING, this.#c.opts.stallMs);
  }

  // ------------------------------------------------------------------ 5. flip

  /** The compaction pause (and, marking in the pause, marking and planning before it). */
  #flip(a: ActiveCycle): void {
    const { sh, mut, opts } = this.#c;
    const t0 = now();
    const st = a.stats;
    let p: Plan;
    try {
      p = planForFlip(this.#c, a, this.concurrentMarking ? this.#marker : null, this.#alignWords);
    } catch (e) {
      this.#abort(a, e);
      throw e;
    }
    const tpe = now();
    a.liveEnd = liveEndOf(sh, p, mut.u32, sh.objects[mut.epochStarts ^ 1], mut.top);
    recordPlan(st, p, mut.top, a.liveEnd);
    this.#c.log.debug({ phase: 'plan', cycle: st.cycle, ms: roundMs(st.planMs), pages: p.pagesTotal, identityPages: p.identityPages, pinnedSpans: p.pinnedSpans.length }, 'plan');

    // Counted here, in the pause, whoever planned: the program may use its mappings up between
    // a marker's plan and the safepoint that flips, and a pause that ran out part-way could
    // not be undone (an audit lost a heap that way, with pins). See map-count.ts.
    const tm = now();
    const headroom = mapHeadroom();
    const mapCountMs = now() - tm;
    st.plan.mapHeadroom = headroom;
    armCompaction(sh.ctl, sh.clk, this.#c.inject(), p.segments.length, p.pagesTotal);
    sh.hist.fill(0);
    sh.clk[Clk.RSS_PEAK] = st.rss.beforeBytes;

    const tf = now();
    try {
      const pause = compactionPause(mut.u32, this.#c.builders.from, sh, p, mut.roots, mut.rootCount, this.#c.uffd, opts.pauseOrder, headroom, { failAtCall: this.#c.inject().pauseFailAtCall, failUndo: this.#c.inject().pauseFailUndo === 1 });
      st.pause = { totalMs: 0, ...pause, planMs: tpe - t0 - (this.concurrentMarking ? 0 : st.markMs), mapCountMs };
    } catch (e) {
      // The pause took back what it had done (pause.ts, PauseUndo): the cycle ends with its
      // error and the heap as it was. If the undo failed too, the heap is lost: it refuses
      // every call from now on (close() still releases it).
      const err = pauseError(e);
      this.#abort(a, err);
      if (err.code === ErrorCode.HEAP_CORRUPT) mut.lose(err);
      throw err;
    }
    mut.retag();
    mut.setUnmarkedBelow(0); // the new epoch's bitmap holds live objects only
    mut.nextStartsExtent = (mut.top >>> 5) + 1; // the retiring bitmap's bits all lie below the old top
    mut.epochStarts ^= 1;
    mut.top = p.allocTop;
    mut.allocGaps = null;
    a.plan = p;
    a.phase = CyclePhase.COMPACTING;
    a.pauseEnd = now();
    st.pause.totalMs = a.pauseEnd - tf;
    this.#c.log.info({ phase: 'pause', cycle: st.cycle, ...rounded(st.pause) }, 'compaction pause');

    if (this.#c.mode === Mode.STW) {
      // Stop-the-world: the same page builder, writing straight into the emptied heap.
      const b = this.#c.builders;
      const t = now();
      let built = 0;
      for (const [first, end] of b.pageRanges()) {
        for (let q = first; q < end; q++) {
          b.buildOne(q, Owner.MUTATOR, 0, mut.u32);
          if (++built % RSS_SAMPLE_PAGES === 0) sampleRss(sh); // the peak is here: from-space goes back at the end
        }
      }
      sampleRss(sh);
      sh.clk[Clk.COMPACT_START] = t;
      sh.clk[Clk.COMPACT_END] = now();
      sh.clk[Clk.COMPACTOR_BUSY] = now() - t;
      st.pause.totalMs += now() - t;
      this.#pause(a, 'stw', t0);
      this.#finalize();
      return;
    }
    this.#pause(a, this.concurrentMarking ? 'compaction' : 'mark-compaction', t0);
    sh.hb.beatUnlessDead(HbRole.COMPACTOR); // its job starts now; a compactor that died stays so
    Atomics.store(sh.ctl, Ctl.PHASE, Phase.COMPACTING);
    // Until CYCLE is bumped below, the words read "the last cycle compacts": Builders.inCycle.
    const gap = this.#c.inject().flipGapMs ?? 0;
    if (gap > 0) sleepSync(gap); // injected: the mutator descheduled inside the flip
    // Nothing to build: the cycle ends here, and a compactor waking for it must back out (see
    // CLOSING_CYCLE) rather than walk it, and release from-space, while the next one begins.
    if (p.pagesTotal === 0) Atomics.store(sh.ctl, Ctl.CLOSING_CYCLE, Atomics.load(sh.ctl, Ctl.CYCLE) + 1);
    Atomics.add(sh.ctl, Ctl.CYCLE, 1);
    mut.setCompacting(true); // before the mutator resumes: its first access may be to an unbuilt page
    Atomics.notify(sh.ctl, Ctl.CYCLE);
    if (p.pagesTotal === 0) this.#finalize();
  }

  // ------------------------------------------------------------------ 6. compact (await)

  /**
   * Waits (bounded, taking over from stalled threads: compaction-end.ts), then ends cycle `a`.
   * Only `a`: while this waits, a safepoint may end it and flip the next one, whose pages are
   * not installed yet (ending that one would unregister its heap and release its from-space).
   */
  async #finishCompaction(a: ActiveCycle): Promise<void> {
    const { sh, threads, builders, opts } = this.#c;
    await awaitCompaction({ sh, threads, builders, stallMs: opts.stallMs, mutator: this.#c.mut.selfService }, () => this.#active === a);
    if (this.#active === a) this.#finalize();
  }

  /** The end of the cycle from the event loop (the compactor said it is done). */
  #tryFinalize(): void {
    try {
      if (this.#finalizeIfDone() === 'again') setTimeout(() => this.#tryFinalize(), 1).unref(); // a fault still being timed, or a stalled installer being replaced
    } catch (e) {
      this.#c.log.error({ err: e }, 'cycle finalization failed');
      this.#endError = e;
    }
  }

  /**
   * Ends the compacting cycle if nothing is left to wait for: every page installed, the
   * compactor out of the cycle, no fault still being timed. Never waits (a safepoint's and
   * the event loop's way to the end of a cycle; #finishCompaction is the waiting one).
   */
  #finalizeIfDone(): 'done' | 'busy' | 'again' {
    const { sh, threads, builders, log } = this.#c;
    const due = this.#active?.phase === CyclePhase.COMPACTING ? compactionSettled(sh, threads, builders, log) : 'busy';
    if (due !== 'settled') return due;
    this.#finalize();
    return 'done';
  }

  // ------------------------------------------------------------------ 7. end

  /** Every page installed (cycle-end.ts): the cycle leaves the driver, its record joins the history. */
  #finalize(): void {
    const a = this.#active;
    if (!a || a.phase !== CyclePhase.COMPACTING) return;
    this.#active = null;
    const st = endCycle(this.#c, a);
    this.#history.push(st);
    this.#byCycle.set(st.cycle, st);
    if (this.#history.length > 1000) {
      this.#history.shift();
      this.#byCycle.delete(this.#byCycle.keys().next().value!); // the oldest, by the number it was recorded under
    }
    reportCycle(this.#c, st);
  }

  // ------------------------------------------------------------------ records

  #pause(a: ActiveCycle, kind: PauseKind, t0: number): void {
    const t1 = now();
    a.stats.pauses.push({ kind, startMs: t0, ms: t1 - t0 });
  }
}
