/**
 * The end of concurrent compaction, awaited (collect's finish, idle, close): bounded waits,
 * with takeover. While the collector threads make progress the mutator's thread waits for
 * them; when the compactor is stalled or dead (heartbeat older than stallMs) it builds the
 * remaining pages itself (it reads only from-space: it cannot fault), so a cycle always
 * completes and no mutator access waits forever. The non-waiting way to the end is
 * compactionSettled (a safepoint's, or the event loop's on the compactor's word that it is done).
 * The end itself: cycle-end.ts.
 */
import { Scratch, type Builders } from './builders.js';
import { Ctl } from './control.js';
import type { HeapLogger as Logger } from './log.js';
import { Owner, now, type Shared } from './shared.js';
import type { SelfService } from './selfservice.js';
import { Role, type CollectorThreads } from './threads.js';

export interface CompactionEndContext {
  sh: Shared;
  threads: CollectorThreads;
  builders: Builders;
  stallMs: number;
  /** The mutator's builds: their injection points, and giving up a page it could not install. */
  mutator: Pick<SelfService, 'hook' | 'giveUp'>;
}

/**
 * Returns once every page is installed, no collector thread is inside an install, dead threads are
 * replaced and faults in flight are timed; or at once when `active()` turns false (another
 * caller ended the cycle meanwhile).
 */
export async function awaitCompaction(c: CompactionEndContext, active: () => boolean): Promise<void> {
  const { sh, threads, builders: b } = c;
  for (;;) {
    if (!active()) return;
    const mapped = Atomics.load(sh.ctl, Ctl.PAGES_MAPPED);
    if (b.allMapped()) {
      // No collector thread may still be installing (installerInside).
      const inside = installerInside(sh);
      if (inside === null) break;
      if (threads.isStale(inside)) {
        await threads.replace(inside); // terminated, it installs nothing more
        continue;
      }
    } else if (threads.isDead(Role.COMPACTOR) || b.compactorGone(c.stallMs)) {
      buildTheRest(c);
      // What is left belongs to a live builder (the fault server): wait for it, don't spin.
      if (b.allMapped()) continue;
    }
    const r = Atomics.waitAsync(sh.ctl, Ctl.PAGES_MAPPED, mapped, b.allMapped() ? 1 : Math.max(5, c.stallMs / 4));
    if (r.async) await r.value;
  }
  // Dead threads replaced now, so that the next cycle does not run on the stand-ins alone.
  await threads.replaceDead();
  await faultsServed(c);
}

/**
 * Closes the current cycle to late installs (every page is in): says so in CLOSING_CYCLE, then
 * names a thread that may still be inside one of the cycle's installs, or null. The compactor
 * (COMPACTOR_IN) may still be finishing its walk, and one that has not entered the cycle yet
 * must not enter it; the fault server (FAULT_INSTALL_IN) may be between a build and its
 * install (Builders.installWord). Either, descheduled there, would otherwise install into the
 * next cycle's to-space. The store comes before the loads, as the threads store theirs before
 * they load CLOSING_CYCLE: one side sees the other.
 */
export function installerInside(sh: Shared): typeof Role.COMPACTOR | typeof Role.FAULT | null {
  const cycle = Atomics.load(sh.ctl, Ctl.CYCLE);
  Atomics.store(sh.ctl, Ctl.CLOSING_CYCLE, cycle);
  if (Atomics.load(sh.ctl, Ctl.COMPACTOR_IN) !== 0) return Role.COMPACTOR;
  if (Atomics.load(sh.ctl, Ctl.FAULT_INSTALL_IN) === cycle) return Role.FAULT;
  return null;
}

/**
 * Whether the cycle can end now, never waiting: every page installed, the compactor out of the
 * cycle, no fault still being timed ('settled'). 'busy': the compactor's 'done' brings the
 * caller back. 'again': look again shortly (a fault still being timed, or a stalled installer
 * being replaced).
 */
export function compactionSettled(sh: Shared, threads: CollectorThreads, b: Builders, log: Logger): 'settled' | 'busy' | 'again' {
  if (!b.allMapped()) return 'busy';
  let inside = installerInside(sh);
  // Terminated and exited, it installs nothing more: cleaned up here, as its Worker's 'exit'
  // comes through the event loop, which a frame loop that never yields never reaches.
  if (inside !== null && threads.reapLeft(inside)) inside = installerInside(sh);
  if (inside !== null) {
    // Still in the cycle: the compactor finishing its walk (its 'done' brings us back), or the
    // fault server between a build and its install (it leaves in microseconds). Either,
    // stalled there past stallMs, is replaced as the awaited end does: a loop that only calls
    // safepoint() would otherwise never see the cycle end behind a stalled compactor (an
    // audit: 3560 safepoints over 4 s).
    if (threads.isStale(inside)) {
      void threads.replace(inside).catch((e) => log.error({ err: e, role: inside }, 'replacing a stalled collector thread failed'));
      return 'again';
    }
    return inside === Role.COMPACTOR ? 'busy' : 'again';
  }
  if (Atomics.load(sh.ctl, Ctl.FAULTS_IN_FLIGHT) > 0 && !threads.isStale(Role.FAULT)) return 'again';
  return 'settled';
}

/**
 * Waits (bounded) for faults the fault server has read but not yet served and timed: they
 * belong to this cycle's statistics. All pages are installed, so no new fault can come.
 */
async function faultsServed(c: CompactionEndContext): Promise<void> {
  const ctl = c.sh.ctl;
  const deadline = now() + c.stallMs;
  for (;;) {
    const n = Atomics.load(ctl, Ctl.FAULTS_IN_FLIGHT);
    if (n <= 0 || c.threads.isDead(Role.FAULT) || now() > deadline) return;
    const r = Atomics.waitAsync(ctl, Ctl.FAULTS_IN_FLIGHT, n, 1);
    if (r.async) await r.value;
  }
}

/**
 * The mutator's thread builds every page still unbuilt, taking over from stalled owners. A page
 * it built but could not install (the kernel refused the install) is given up to the other
 * threads before the error reaches the caller: held under a live mutator, nobody could
 * install it, and the cycle could never end.
 */
function buildTheRest(c: CompactionEndContext): void {
  const b = c.builders;
  const scratch = b.scratchPage(Scratch.MUTATOR);
  for (const [first, end] of b.pageRanges()) {
    for (let q = first; q < end; q++) {
      try {
        b.resolve(q, Owner.MUTATOR, scratch, c.stallMs, undefined, c.mutator.hook);
      } catch (e) {
        c.mutator.giveUp(q);
        throw e;
      }
    }
  }
}
