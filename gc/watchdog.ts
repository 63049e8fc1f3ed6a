/**
 * The last resort for a mutator blocked in a fault that nobody can serve (issue 8): if both
 * collector threads are dead or stalled, the thread blocked in the kernel waits forever and
 * cannot save itself, and serving it a zero page would corrupt the heap. A native thread per
 * heap (native/watchdog.cc), which runs no JavaScript, turns that silent hang into a fatal
 * error naming the cause: an unread fault (or one the fault server read and holds, its page
 * still missing) with no fault-serving heartbeat for fatalMs. It also
 * publishes its looks, which tell the heap's stall decisions a stopped process (heartbeat.ts).
 *
 * The decision's thresholds live here. They are generous: aborting is for a thread that
 * will never be served, not for one descheduled on a loaded machine, so the silence must
 * last many stall periods and at least FATAL_FLOOR_MS.
 */
import { FAULT_SERVING_ROLES, ROLE_NAMES, Role, WatchdogWord, stillMs, watchdogPeriodMs } from './heartbeat.js';
import { fromNative } from './errors.js';
import { native } from './native.js';
import type { Shared } from './shared.js';

/** Silent stall periods before the fatal error... */
export const FATAL_STALLS = 20;
/** ...and never less than this. */
export const FATAL_FLOOR_MS = 5000;

export interface WatchdogThresholds {
  /** How often the watchdog looks (a quarter stall: heartbeat.ts). */
  periodMs: number;
  /** A look this much later than periodMs: the process stood still (heartbeat.ts). */
  stillMs: number;
  /** A heartbeat older than this does not count as a thread serving faults. */
  staleMs: number;
  /** An unread fault with no fresh heartbeat for this long is fatal. */
  fatalMs: number;
}

export function watchdogThresholds(stallMs: number): WatchdogThresholds {
  const s = Math.ceil(stallMs);
  return { periodMs: watchdogPeriodMs(s), stillMs: stillMs(s), staleMs: s, fatalMs: Math.max(FATAL_FLOOR_MS, FATAL_STALLS * s) };
}

export class Watchdog {
  #id: number;

  private constructor(id: number) {
    this.#id = id;
  }

  /**
   * Starts watching the heap's userfaultfd and its collector threads' heartbeats (`marker`: the
   * heap has one, the last stand-in of compaction: standin.ts).
   */
  static start(sh: Shared, uffdFd: number, stallMs: number, marker: boolean): Watchdog {
    const t = watchdogThresholds(stallMs);
    const slots = marker ? [...FAULT_SERVING_ROLES, Role.MARKER] : [...FAULT_SERVING_ROLES];
    try {
      return new Watchdog(native.watchdog.start(uffdFd, sh.hb.words, sh.hb.epoch, slots, slots.map((r) => ROLE_NAMES[r]), sh.d.heapAddress, sh.d.capacity, t.periodMs, t.staleMs, t.fatalMs, WatchdogWord.LOOK, WatchdogWord.RESUMED, t.stillMs, WatchdogWord.HELD_FAULT));
    } catch (e) {
      throw fromNative(e, 'starting the watchdog thread'); // pthread_create: EAGAIN at the thread limit
    }
  }

  /** Stops and joins the thread (before the userfaultfd closes). Idempotent. */
  stop(): void {
    if (this.#id === 0) return;
    native.watchdog.stop(this.#id);
    this.#id = 0;
  }
}
