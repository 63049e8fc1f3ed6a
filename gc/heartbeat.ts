/**
 * Heartbeats of the collector threads, one Int32 word per thread role, written and read with
 * Atomics: a read can never be torn (a torn Float64 could make a live thread look stalled
 * and get its pages taken over, or its replacement spawned, for nothing).
 *
 * A beat is the thread's monotonic clock (CLOCK_MONOTONIC, the clock of process.hrtime and
 * of the native watchdog) in ms since the heap's epoch, modulo 2^31: ages are computed
 * modulo 2^31 too, so they stay right for 12 days after any beat, however long the heap
 * lives. A beat can read as slightly in the future: each JavaScript thread estimates the
 * clock from its own origin (ORIGIN), and one that reads a little ahead of another writes
 * stamps the other sees as not yet come. Such a beat is fresh (age 0): read modulo 2^31 it
 * was 24 days old, a stall at any stallMs (found by reading the code, not seen in a run).
 * IDLE (-1, never a beat value) marks a thread that holds no claim in the current cycle (the
 * compactor once it has walked it): never stale, and no help to a blocked fault. DEAD (-2)
 * is written by a thread as it dies of an exception (collector-worker.ts): stale at once, to
 * every reader, the native watchdog included, until its successor beats. Without it a dead
 * thread passed for a live one for stallMs, or until its Worker's exit event reached an event
 * loop that a frame loop which never yields never turns (a mutator on the handler path then
 * faulted into the kernel with nobody to read the fault).
 *
 * The native watchdog (native/watchdog.cc) reads the same words from its own thread, and
 * writes two of its own after them (WatchdogWord): when it last looked, and when it last found
 * that the whole process had stood still (SIGSTOP, a debugger, a suspended VM). A stop ages
 * every beat at once, and no thread failed to beat in it: isStale does not count it, so a stop
 * does not get healthy threads replaced or their claims taken over.
 */

/** Thread roles: the index of each one's heartbeat word. */
export const Role = { COMPACTOR: 0, FAULT: 1, MARKER: 2 } as const;
export type RoleId = (typeof Role)[keyof typeof Role];
export const ROLE_NAMES: Record<RoleId, string> = { 0: 'compactor', 1: 'fault server', 2: 'marker' };
/** Words for the roles' beats (room for one more role). */
export const ROLE_SLOTS = 4;
/**
 * The native watchdog's words, after the roles'. LOOK and RESUMED: its stamps, on the same
 * clock as the beats (IDLE: no watchdog). HELD_FAULT: written by the fault server, 1 + the
 * heap page of a fault it has read and not served yet (0: none): a fault read is no longer
 * pending on the userfaultfd, and the watchdog would not see its thread blocked otherwise.
 */
export const WatchdogWord = { LOOK: ROLE_SLOTS, RESUMED: ROLE_SLOTS + 1, HELD_FAULT: ROLE_SLOTS + 2 } as const;
const TABLE_WORDS = ROLE_SLOTS + 3;

/**
 * How often the watchdog looks, for a heap's stallMs: a quarter of a stall, so that a stop of
 * the process is seen before it could pass for a stall (isStale).
 */
export const watchdogPeriodMs = (stallMs: number): number => Math.min(250, Math.max(10, Math.ceil(stallMs / 4)));
/** A watchdog look this much later than its period says the process stood still: half a stall. */
export const stillMs = (stallMs: number): number => Math.max(1, Math.ceil(stallMs / 2));
/** Roles whose thread can install the page a blocked mutator waits for (see watchdog.ts); the marker too where there is one (standin.ts). */
export const FAULT_SERVING_ROLES: readonly RoleId[] = [Role.COMPACTOR, Role.FAULT];

export const IDLE = -1;
export const DEAD = -2;
const MASK = 0x7fffffff;
/** Differences above this, modulo 2^31, are stamps ahead of the reader's clock (see the top). */
const AHEAD = MASK >>> 1;

/**
 * This thread's CLOCK_MONOTONIC in ms. performance.now() is cheap but counts from each
 * thread's own origin; process.hrtime is the monotonic clock itself but costs a BigInt. So
 * the origin is measured once per thread (the tightest of a few bracketed samples).
 */
const ORIGIN = ((): number => {
  let best = Infinity;
  let origin = 0;
  for (let i = 0; i < 8; i++) {
    const p1 = performance.now();
    const h = Number(process.hrtime.bigint()) / 1e6;
    const p2 = performance.now();
    if (p2 - p1 < best) {
      best = p2 - p1;
      origin = h - (p1 + p2) / 2;
    }
  }
  return origin;
})();

export function monotonicMs(): number {
  return performance.now() + ORIGIN;
}

export class Heartbeats {
  readonly words: Int32Array;
  /** monotonicMs() at the heap's creation: beats count from here. */
  readonly epoch: number;

  constructor(sab: SharedArrayBuffer, epoch: number) {
    this.words = new Int32Array(sab);
    this.epoch = epoch;
  }

  static allocate(): { sab: SharedArrayBuffer; epoch: number } {
    const sab = new SharedArrayBuffer(TABLE_WORDS * 4);
    new Int32Array(sab).fill(IDLE);
    return { sab, epoch: Math.floor(monotonicMs()) };
  }

  #stamp(): number {
    return Math.floor(monotonicMs() - this.epoch) & MASK;
  }

  beat(role: RoleId): void {
    Atomics.store(this.words, role, this.#stamp());
  }

  idle(role: RoleId): void {
    Atomics.store(this.words, role, IDLE);
  }

  /** Said by a thread of `role` as it dies (see DEAD). */
  died(role: RoleId): void {
    Atomics.store(this.words, role, DEAD);
  }

  /** The thread of `role` said it died, and no successor has beaten since. */
  isDead(role: RoleId): boolean {
    return Atomics.load(this.words, role) === DEAD;
  }

  /** A beat on behalf of the thread of `role` (a new job handed to it), unless it died: that stays said. */
  beatUnlessDead(role: RoleId): void {
    const v = Atomics.load(this.words, role);
    if (v !== DEAD) Atomics.compareExchange(this.words, role, v, this.#stamp()); // lost to the thread's own beat: as good
  }

  /** Milliseconds since the stamp in word `i` (a role's beat, a watchdog word), or -1 while it is idle, Infinity once it died; 0 for a stamp ahead of this thread's clock. */
  ageMs(i: number): number {
    const v = Atomics.load(this.words, i);
    if (v === IDLE) return -1;
    if (v === DEAD) return Infinity;
    const d = (this.#stamp() - v) & MASK;
    return d > AHEAD ? 0 : d;
  }

  /**
   * Beating, but not for more than stallMs (stalled or dead). An idle role is never stale. Where
   * a watchdog looks, neither is one whose beat aged while the whole process stood still: not
   * before the watchdog's first look after the stop (its last look is too old: the process may
   * just have been continued), nor for a stall after the look that saw the stop. With stallMs of
   * 40 or more, a thread that beats at least every quarter stall is never taken for stalled by a
   * stop of any length (below 40 the watchdog's 10 ms floor on its period narrows that margin).
   */
  isStale(role: RoleId, stallMs: number): boolean {
    const age = this.ageMs(role);
    if (age <= stallMs) return false;
    if (age === Infinity) return true; // it died: no stop of the process explains that
    const look = this.ageMs(WatchdogWord.LOOK);
    if (look < 0) return true; // no watchdog: age alone
    if (look > watchdogPeriodMs(stallMs) + stillMs(stallMs)) return false;
    const resumed = this.ageMs(WatchdogWord.RESUMED);
    return resumed < 0 || resumed > stallMs;
  }
}
