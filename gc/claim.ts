/**
 * The per-page state word (ART CMC's moving_pages_status_): which thread builds a to-space
 * page is decided by compare-and-swap, so no page is built twice, and a page whose builder
 * stalled or died can be reclaimed by another thread.
 *
 *   UNPROCESSED --claim--> PROCESSING(owner) --built--> PROCESSED(owner, buffer) --installed--> MAPPED
 *
 * One word holds the phase (bits 0-1), the owner (bits 2-4) and, once built, the buffer page
 * the built contents wait in (bits 5 and up, plus one): a thread that sees PROCESSED reads the
 * buffer from the same load, so a stale owner's late write can never point it at a buffer
 * that is being reused.
 *
 * A page that was PROCESSED never goes back to UNPROCESSED: another thread installs it from
 * its buffer, or (a buffer that I/O may still write, install.ts) from a rebuild into its own
 * private page. The compactor recycles a page's from-space sources only once it is MAPPED
 * (compact.ts), so a rebuild until then reads them intact.
 */
import { Ctl, Owner, PagePhase, type OwnerId, type Shared } from './shared.js';

export const phaseOf = (s: number): number => s & 3;
export const ownerOf = (s: number): number => (s >>> 2) & 7;
/** The buffer page a PROCESSED page's contents wait in (-1 in other phases). */
export const bufferOf = (s: number): number => (s >>> 5) - 1;
const state = (owner: number, phase: number, buf = -1): number => ((buf + 1) << 5) | (owner << 2) | phase;

export function claim(sh: Shared, q: number, owner: OwnerId): boolean {
  return Atomics.compareExchange(sh.pageState, q, PagePhase.UNPROCESSED, state(owner, PagePhase.PROCESSING)) === PagePhase.UNPROCESSED;
}

/** Gives a claim back (the build failed before anything was installed). False if reclaimed meanwhile. */
export function unclaim(sh: Shared, q: number, owner: OwnerId): boolean {
  return Atomics.compareExchange(sh.pageState, q, state(owner, PagePhase.PROCESSING), PagePhase.UNPROCESSED) === state(owner, PagePhase.PROCESSING);
}

/** PROCESSING -> PROCESSED, with the buffer the built page waits in. False if reclaimed meanwhile. */
export function markProcessed(sh: Shared, q: number, owner: OwnerId, buf: number): boolean {
  return Atomics.compareExchange(sh.pageState, q, state(owner, PagePhase.PROCESSING), state(owner, PagePhase.PROCESSED, buf)) === state(owner, PagePhase.PROCESSING);
}

/** Every page of the cycle is installed (PAGES_MAPPED counts each page once, after its install). */
export function allMapped(sh: Shared): boolean {
  return Atomics.load(sh.ctl, Ctl.PAGES_MAPPED) >= Atomics.load(sh.ctl, Ctl.PAGES_TOTAL);
}

/**
 * Any phase -> MAPPED, once the kernel has the page (installed by us, or EEXIST: by someone
 * else). Counts each page once and wakes whoever waits for the cycle to end.
 */
export function markMapped(sh: Shared, q: number): boolean {
  for (;;) {
    const s = Atomics.load(sh.pageState, q);
    if (phaseOf(s) === PagePhase.MAPPED) return false;
    if (Atomics.compareExchange(sh.pageState, q, s, PagePhase.MAPPED) === s) {
      const mapped = Atomics.add(sh.ctl, Ctl.PAGES_MAPPED, 1) + 1;
      if (mapped >= Atomics.load(sh.ctl, Ctl.PAGES_TOTAL)) Atomics.notify(sh.ctl, Ctl.PAGES_MAPPED);
      return true;
    }
  }
}

/**
 * markMapped for the pages [q, q+n) of one install: one counter update (and at most one
 * wake) per run instead of per page. Returns how many it marked.
 */
export function markMappedRun(sh: Shared, q: number, n: number): number {
  let k = 0;
  for (let i = q; i < q + n; i++) {
    for (;;) {
      const s = Atomics.load(sh.pageState, i);
      if (phaseOf(s) === PagePhase.MAPPED) break;
      if (Atomics.compareExchange(sh.pageState, i, s, PagePhase.MAPPED) === s) {
        k++;
        break;
      }
    }
  }
  if (k > 0) {
    const mapped = Atomics.add(sh.ctl, Ctl.PAGES_MAPPED, k) + k;
    if (mapped >= Atomics.load(sh.ctl, Ctl.PAGES_TOTAL)) Atomics.notify(sh.ctl, Ctl.PAGES_MAPPED);
  }
  return k;
}

/**
 * Takes a stale owner's claim. PROCESSING goes back to UNPROCESSED: it was never built, so
 * its sources are not recycled yet and any thread can rebuild it. PROCESSED stays PROCESSED,
 * with `by` as its owner and the same buffer, which the caller installs; should `by` stall in
 * turn, the next taker installs the same buffer (a second install finds the page in: EEXIST
 * or ENOENT, both counted as installed). Returns the state word taken, or -1.
 */
export function reclaim(sh: Shared, q: number, stale: OwnerId, by: OwnerId): number {
  const s = Atomics.load(sh.pageState, q);
  if (ownerOf(s) !== stale) return -1;
  const ph = phaseOf(s);
  if (ph === PagePhase.PROCESSING && Atomics.compareExchange(sh.pageState, q, s, PagePhase.UNPROCESSED) === s) return s;
  if (ph === PagePhase.PROCESSED && Atomics.compareExchange(sh.pageState, q, s, state(by, PagePhase.PROCESSED, bufferOf(s))) === s) return s;
  return -1;
}

export { Owner, PagePhase };
