/**
 * Heartbeats of the collector threads, one Int32 word per thread role, written and read with
 * Atomics: a read can never be torn (a torn Float64 could make a live thread look stalled
 * and get its pages taken over, or its replacement spawned, for nothing).
 *
 * A beat is the thread's monotonic clock (CLOCK_MONOTONIC, the clock of process.hrtime and
 * of the native watchdog) in ms since the heap's epoch, modulo 2^31: ages are computed
 * modulo 2^31 too, so they stay right for 24 days after any beat, however long the heap
 * lives. IDLE (-1, never a beat value) marks a thread that holds no claim in the current
 * cycle (the compactor once it has walked it): never stale, and no help to a blocked fault.
 *
 * The native watchdog (native/watchdog.cc) reads the same words from its own thread.
 */

/** Thread roles: the index of each one's heartbeat word. */
export const Role = { COMPACTOR: 0, FAULT: 1, MARKER: 2 } as const;
export type RoleId = (typeof Role)[keyof typeof Role];
export const ROLE_NAMES: Record<RoleId, string> = { 0: 'compactor', 1: 'fault server', 2: 'marker' };
/** Words in the table (room for one more role). */
export const ROLE_SLOTS = 4;
/** Roles whose thread can install the page a blocked mutator waits for (see watchdog.ts); the marker too where there is one (standin.ts). */
export const FAULT_SERVING_ROLES: readonly RoleId[] = [Role.COMPACTOR, Role.FAULT];

export const IDLE = -1;
const MASK = 0x7fffffff;

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
    const sab = new SharedArrayBuffer(ROLE_SLOTS * 4);
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

  /** Milliseconds since the role's last beat, or -1 while it is idle. */
  ageMs(role: RoleId): number {
    const v = Atomics.load(this.words, role);
    return v === IDLE ? -1 : (this.#stamp() - v) & MASK;
  }

  /** Beating, but not for more than stallMs (stalled or dead). An idle role is never stale. */
  isStale(role: RoleId, stallMs: number): boolean {
    return this.ageMs(role) > stallMs;
  }
}
