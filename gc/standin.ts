/**
 * The last stand-in of compaction: the marker thread. A page a thread waits for in a kernel
 * fault is installed by the fault server, or else by the compactor's walk (whose stand-in is
 * the fault server). With both gone in one cycle (dead, or silent past stallMs), nothing would
 * install it: the blocked thread cannot help itself, and the native watchdog would end the
 * process (watchdog.ts). A heap marking concurrently has a third collector thread, idle while
 * its cycle compacts: it then builds and installs what is left, in page order (each install
 * wakes whoever faults on that page), until the cycle ends or a fault server or compactor
 * beats again. ART has no equivalent: its mutators serve their own faults (SIGBUS).
 *
 * Safe against the next cycle: its plan is written only once every page of this one is in,
 * and only by this same thread (a PLAN job, after we return) or in a pause that waits for it.
 * A page it built and was descheduled with may be taken over and installed, and the cycle
 * end, meanwhile: its install then backs out (Builders, enterInstall) rather than fail on the
 * unregistered heap, which killed the thread.
 */
import { Scratch, type BuildHook, type Builders } from './builders.js';
import { Ctl, Owner, Phase } from './shared.js';

/** Pages built between two looks at the peers (a replacement may have come back). */
const STEP = 8;

/** True while compaction has pages left and neither of its threads is there to install them. */
export function noInstaller(b: Builders, stallMs: number): boolean {
  return Atomics.load(b.sh.ctl, Ctl.PHASE) === Phase.COMPACTING && !b.allMapped() && b.compactorGone(stallMs) && b.isStale(Owner.FAULT, stallMs);
}

/** Installs what is left of the cycle while noInstaller() holds. `hold`: fault injection. */
export function standIn(b: Builders, stallMs: number, beat: () => void, hold?: BuildHook): void {
  const ctl = b.sh.ctl;
  const cycle = Atomics.load(ctl, Ctl.CYCLE);
  b.fence = cycle;
  const scratch = b.scratchPage(Scratch.MARKER);
  let looked = 0;
  for (const [first, end] of b.pageRanges()) {
    for (let q = first; q < end; q++, looked++) {
      if (looked % STEP === 0) {
        beat();
        if (Atomics.load(ctl, Ctl.CYCLE) !== cycle || !noInstaller(b, stallMs)) return;
      }
      // False: another live builder has it (the mutator's self-service); its install wakes.
      b.resolve(q, Owner.MARKER, scratch, stallMs, undefined, hold);
    }
  }
}
