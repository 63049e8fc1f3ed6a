/**
 * The per-page state word (ART CMC's moving_pages_status_): which thread builds a to-space
 * page is decided by compare-and-swap, so no page is built twice, and a page whose builder
 * stalled or died can be reclaimed by another thread.
 *
 *   UNPROCESSED --claim--> PROCESSING(owner) --built--> PROCESSED(owner) --installed--> MAPPED
 *
 * The owner sits in the bits above the 2-bit phase.
 */
import { Ctl, Owner, PagePhase, type OwnerId, type Shared } from './shared.js';

export const phaseOf = (s: number): number => s & 3;
export const ownerOf = (s: number): number => s >>> 2;
const state = (owner: number, phase: number): number => (owner << 2) | phase;

export function claim(sh: Shared, q: number, owner: OwnerId): boolean {
  return Atomics.compareExchange(sh.pageState, q, PagePhase.UNPROCESSED, state(owner, PagePhase.PROCESSING)) === PagePhase.UNPROCESSED;
}

/** Gives a claim back (the build failed before anything was installed). */
export function unclaim(sh: Shared, q: number, owner: OwnerId): void {
  Atomics.compareExchange(sh.pageState, q, state(owner, PagePhase.PROCESSING), PagePhase.UNPROCESSED);
}

/** PROCESSING -> PROCESSED, recording where the built page waits. False if reclaimed meanwhile. */
export function markProcessed(sh: Shared, q: number, owner: OwnerId, buf: number): boolean {
  sh.pageBuf[q] = buf;
  return Atomics.compareExchange(sh.pageState, q, state(owner, PagePhase.PROCESSING), state(owner, PagePhase.PROCESSED)) === state(owner, PagePhase.PROCESSING);
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
 * Takes a stale owner's claim: PROCESSING goes back to UNPROCESSED (its sources were not
 * recycled, so any thread can rebuild it); PROCESSED becomes PROCESSING(by), and the caller
 * installs the already built buffer at pageBuf[q]. Returns the phase taken, or -1.
 */
export function reclaim(sh: Shared, q: number, stale: OwnerId, by: OwnerId): number {
  const s = Atomics.load(sh.pageState, q);
  if (ownerOf(s) !== stale) return -1;
  const ph = phaseOf(s);
  if (ph === PagePhase.PROCESSING && Atomics.compareExchange(sh.pageState, q, s, PagePhase.UNPROCESSED) === s) return ph;
  if (ph === PagePhase.PROCESSED && Atomics.compareExchange(sh.pageState, q, s, state(by, PagePhase.PROCESSING)) === s) return ph;
  return -1;
}

export { Owner, PagePhase };
