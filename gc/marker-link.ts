/**
 * The mutator's end of the marker protocol (marker.ts is the other end): handing the marker a
 * job, reading its reply, asking it to park for the marking pause, and noticing that it was
 * lost. Jobs are numbered (Ctl.MARK_REQUEST); the marker answers a job by storing its number
 * in MARK_DONE or MARK_FAILED, and its reply (the plan) comes through the job port.
 *
 * A marker that stops beating is terminated and replaced (threads.ts), and the job it held is
 * lost with its stack: from then on the pause does that job itself (cycle.ts: remark marks
 * from the roots, the flip plans). "Then" is once its thread has exited, which a safepoint can
 * see without the event loop (CollectorThreads.hasLeft). A marker that is merely slow is never
 * raced: it must be gone before the mutator writes the bitmaps or the plan itself.
 */
import { receiveMessageOnPort } from 'node:worker_threads';
import { Ctl } from './control.js';
import type { HeapLogger as Logger } from './log.js';
import type { MarkerJob, MarkerMessage, MarkerReply } from './marker.js';
import { now, sleepSync, type Shared } from './shared.js';
import { Role, type CollectorThreads } from './threads.js';

export class MarkerLink {
  readonly #sh: Shared;
  readonly #threads: CollectorThreads;
  readonly #log: Logger;
  #replacing: Promise<void> | null = null;
  /** Jobs up to this request number were held by a marker that has since been replaced. */
  #lostUpTo = 0;

  constructor(sh: Shared, threads: CollectorThreads, log: Logger) {
    this.#sh = sh;
    this.#threads = threads;
    this.#log = log;
  }

  /** Hands the marker a job; returns its request number. `gapMs`: fault injection (see below). */
  hand(job: MarkerJob, gapMs = 0): number {
    const ctl = this.#sh.ctl;
    Atomics.store(ctl, Ctl.MARK_STOP, 0);
    Atomics.store(ctl, Ctl.MARK_PARKED, 0);
    Atomics.store(ctl, Ctl.MARK_IDLE, 0);
    Atomics.store(ctl, Ctl.MARK_CLEARED, 0);
    // The job first, then the word that wakes the marker: it finds the job when it wakes.
    const req = Atomics.load(ctl, Ctl.MARK_REQUEST) + 1;
    const msg: MarkerMessage = { ...job, req };
    this.#threads.markerPort!.postMessage(msg);
    // Injected: widens the window in which a marker polling the word finds this job (marker.ts).
    if (gapMs > 0) sleepSync(gapMs);
    Atomics.store(ctl, Ctl.MARK_REQUEST, req);
    Atomics.notify(ctl, Ctl.MARK_REQUEST);
    return req;
  }

  /** The reply to request `req` (older replies, of jobs nobody waits for, are dropped). */
  reply(req: number): MarkerReply | null {
    const port = this.#threads.markerPort;
    for (;;) {
      const r = port && (receiveMessageOnPort(port)?.message as MarkerReply | undefined);
      if (!r) return null;
      if (r.req === req) return r;
    }
  }

  done(req: number): boolean {
    return Atomics.load(this.#sh.ctl, Ctl.MARK_DONE) === req;
  }
  failed(req: number): boolean {
    return Atomics.load(this.#sh.ctl, Ctl.MARK_FAILED) === req;
  }
  /** Marking: nothing left to trace (it keeps consuming the barrier log until parked). */
  get idle(): boolean {
    return Atomics.load(this.#sh.ctl, Ctl.MARK_IDLE) === 1;
  }
  get parked(): boolean {
    return Atomics.load(this.#sh.ctl, Ctl.MARK_PARKED) === 1;
  }

  /** Asks the marker to stop tracing and park (it traces what it holds first: see marker.ts). */
  askToPark(): void {
    const ctl = this.#sh.ctl;
    Atomics.store(ctl, Ctl.MARK_STOP, 1);
    Atomics.notify(ctl, Ctl.LOG_TAIL);
  }

  /** Asks the marker to stop and waits up to `ms` for it to park. */
  park(ms: number): boolean {
    const ctl = this.#sh.ctl;
    this.askToPark();
    const deadline = now() + ms;
    while (Atomics.load(ctl, Ctl.MARK_PARKED) === 0) {
      const left = deadline - now();
      if (left <= 0) return false;
      Atomics.wait(ctl, Ctl.MARK_PARKED, 0, left);
    }
    return true;
  }

  /**
   * True once the marker that held job `req` has been terminated (its thread gone); while it
   * is only stale, starts that replacement and says false.
   */
  lost(req: number): boolean {
    if (req <= this.#lostUpTo) return true;
    // Its thread has exited but the event loop has not yet said so (a frame loop that never
    // yields: its safepoints must see the pause take over): every job so far went to its port.
    if (this.#threads.hasLeft(Role.MARKER)) return true;
    if (!this.#replacing && this.#threads.isStale(Role.MARKER)) {
      // Every job handed so far went to the terminated thread's port; its successor gets a
      // new port (threads.ts #spawn), so jobs handed from then on are its own, not lost.
      const gone = (): void => void (this.#lostUpTo = Atomics.load(this.#sh.ctl, Ctl.MARK_REQUEST));
      this.#replacing = this.#threads
        .replace(Role.MARKER, gone)
        .then(
          () => {},
          (e) => this.#log.error({ err: e }, 'replacing the marker failed'),
        )
        .finally(() => (this.#replacing = null));
    }
    return false;
  }

  /**
   * Marking (cycle.ts, phase 2): waits until the marker has nothing left (true) or is dead,
   * stalled or failed (false); true at once when `due()` turns false (remarked meanwhile).
   */
  async awaitMarked(req: number, due: () => boolean, stallMs: number): Promise<boolean> {
    const ctl = this.#sh.ctl;
    for (;;) {
      if (!due()) return true;
      if (this.failed(req)) return false;
      if (await this.awaitLost(req)) return false;
      if (this.parked) return true;
      if (this.idle && this.park(Math.min(50, stallMs))) return true;
      const r = Atomics.waitAsync(ctl, Ctl.MARK_IDLE, 0, Math.max(1, stallMs / 4));
      if (r.async) await r.value;
    }
  }

  /** Planning (phase 4): waits until job `req` is answered or lost, or `due()` turns false (flipped meanwhile). */
  async awaitPlanned(req: number, due: () => boolean, stallMs: number): Promise<void> {
    const ctl = this.#sh.ctl;
    for (;;) {
      if (!due()) return;
      if (this.done(req) || this.failed(req)) return;
      if (await this.awaitLost(req)) return; // lost with the marker: the flip plans in the pause
      const r = Atomics.waitAsync(ctl, Ctl.MARK_DONE, Atomics.load(ctl, Ctl.MARK_DONE), Math.max(1, stallMs / 4));
      if (r.async) await r.value;
    }
  }

  /** lost(), awaiting a replacement it starts. */
  async awaitLost(req: number): Promise<boolean> {
    this.lost(req);
    if (this.#replacing) await this.#replacing;
    return req <= this.#lostUpTo;
  }
}
