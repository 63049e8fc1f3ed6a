/**
 * The fault server. A mutator that touches a heap page not yet installed blocks in the
 * kernel; the JavaScript thread that blocked cannot serve its own fault, so this loop runs
 * on a Worker of its own, waiting in poll(2) on the userfaultfd. For each fault it gets the
 * page built and installed ahead of the background order, and the install wakes the mutator.
 *
 * Departure from ART: ART's mutators take SIGBUS and build the page themselves (it dropped
 * handler threads for their scheduling latency); a JavaScript thread cannot run code from
 * a signal handler, so a handler thread it is.
 *
 * It is also the standby: when the compactor's heartbeat goes stale mid-cycle (stalled or
 * dead), it reclaims the compactor's claims and finishes the cycle itself, so a fault in
 * the collector never leaves the mutator blocked. If it dies itself, it wakes the faults it
 * read, so that they are pending again; with both threads dead, see watchdog.ts.
 */
import { Builders, Scratch, injectedHold } from './builders.js';
import { phaseOf } from './claim.js';
import { PAGE_SIZE } from './native.js';
import { Ctl, Hist, Owner, PagePhase, Phase, now, type Shared } from './shared.js';
import { Role, WatchdogWord } from './heartbeat.js';
import type { Userfaultfd } from './uffd.js';

/** poll(2) timeout: how often the server checks its peers while no fault arrives. */
const POLL_MS_ACTIVE = 2;
const POLL_MS_IDLE = 20;
/** How often a fault waiting on another builder's install is looked at again. */
const PENDING_RECHECK_MS = 0.05;
/** Pages a takeover builds between two looks at the fault queue. */
const TAKEOVER_STEP = 4;

/** Fault injection for the fault server (see InjectOptions.faultDieAtFault). */
export interface FaultServerHooks {
  onDie(): never;
  onDelay(ms: number): void;
}

export function serveFaults(b: Builders, uffd: Userfaultfd, stallMs: number, hooks: FaultServerHooks): void {
  try {
    serveLoop(b, uffd, stallMs, hooks);
  } catch (e) {
    // Dying with faults read but not served: wake their threads so that they fault again and
    // the fault is pending, unread, for whoever serves next (a replacement, or the compactor's
    // install); with nobody left, the native watchdog sees it (watchdog.ts). Waking a range
    // with no waiter is harmless.
    Atomics.store(b.sh.ctl, Ctl.FAULTS_IN_FLIGHT, 0);
    Atomics.store(b.sh.hb.words, WatchdogWord.HELD_FAULT, 0); // (they will be pending again)
    try {
      uffd.wake(b.sh.d.heapAddress, b.sh.d.capacity);
    } catch {
      // the descriptor is closing: nobody is left to wake
    }
    throw e;
  }
}

function serveLoop(b: Builders, uffd: Userfaultfd, stallMs: number, hooks: FaultServerHooks): void {
  const sh: Shared = b.sh;
  const heap = sh.d.heapAddress;
  const capacityPages = b.capacityPages;
  const scratch = b.scratchPage(Scratch.FAULT);
  const out = new Float64Array(128);
  // page -> the read times of its faults: several threads can fault on one page (the mutator,
  // threads reading through views, the kernel), and each fault is timed and counted off once.
  const pending = new Map<number, number[]>();
  b.installWord = Ctl.FAULT_INSTALL_IN; // the cycle's end waits for our installs
  const held = sh.hb.words;
  let cycle = -1;
  let cursorRange = 0;
  let cursor = -1;

  // Injected (faultHoldBuiltMs, faultHoldInstallMs, faultHoldMappedMs, faultHoldTimedMs): a
  // page held before or inside its install, or after it before its state word says so, or a
  // fault held between its install and its timing.
  const hold = injectedHold(b, { built: Ctl.INJECT_FAULT_HOLD_BUILT_MS, installing: Ctl.INJECT_FAULT_HOLD_INSTALL_MS, mapped: Ctl.INJECT_FAULT_HOLD_MAPPED_MS, timed: Ctl.INJECT_FAULT_HOLD_TIMED_MS }, (ms) => hooks.onDelay(ms));
  b.installer.installed = () => hold('mapped');

  /**
   * A fault on a page already installed: it went in after the fault was raised, so a wake is
   * all it needs; or the program dropped it since (MADV_DONTNEED on a heap page), and a wake
   * alone would fault again at once, for ever (an audit saw the mutator hang). The zero page
   * goes in, as the kernel puts one there outside a cycle; EEXIST says the page is there.
   */
  const present = (q: number): void => {
    const a = heap + q * PAGE_SIZE;
    try {
      uffd.zeropage(a, PAGE_SIZE); // wakes the faulting threads
    } catch {
      uffd.wake(a, PAGE_SIZE); // EEXIST: there; anything else: the wake at least
    }
  };

  /** Serves the faults read at times t0s on page q; false if another live builder has the page. */
  const serve = (q: number, t0s: number[]): boolean => {
    if (q < 0 || q >= capacityPages) {
      Atomics.sub(sh.ctl, Ctl.FAULTS_IN_FLIGHT, t0s.length);
      return true;
    }
    const s0 = Atomics.load(sh.pageState, q);
    if (phaseOf(s0) === PagePhase.MAPPED) {
      present(q); // installed meanwhile, or installed and dropped since
    } else if (!b.resolve(q, Owner.FAULT, scratch, stallMs, undefined, hold)) {
      return false;
    }
    const t = now();
    hold('timed');
    for (const t0 of t0s) sh.record(Hist.FAULT_US, (t - t0) * 1000);
    Atomics.sub(sh.ctl, Ctl.FAULTS_IN_FLIGHT, t0s.length); // after the samples: the cycle may end now
    return true;
  };

  let delayed = -1; // the cycle whose injected takeover delay was slept
  while (!Atomics.load(sh.ctl, Ctl.STOP)) {
    const active = Atomics.load(sh.ctl, Ctl.PHASE) === Phase.COMPACTING;
    // Builds only for the cycle compacting now (see Builders.fence); -1: for none.
    b.fence = active ? Atomics.load(sh.ctl, Ctl.CYCLE) : -1;
    const takeover = active && b.compactorGone(stallMs) && !b.allMapped() && Atomics.load(sh.ctl, Ctl.FAULTS) >= Atomics.load(sh.ctl, Ctl.INJECT_FAULT_TAKEOVER_AT_FAULT);
    // A fault waiting on another builder's install: look again soon, not after a full poll
    // timeout (its install wakes the mutator; this only times it and guards against stalls).
    if (pending.size > 0 && !takeover) Atomics.wait(sh.ctl, Ctl.PAGES_MAPPED, Atomics.load(sh.ctl, Ctl.PAGES_MAPPED), PENDING_RECHECK_MS);
    const n = uffd.readFaults(out, takeover || pending.size > 0 ? 0 : active ? POLL_MS_ACTIVE : POLL_MS_IDLE);
    if (n > 0) Atomics.add(sh.ctl, Ctl.FAULTS_IN_FLIGHT, n);
    const t0 = now();
    sh.hb.beat(Role.FAULT);
    const dieAt = Atomics.load(sh.ctl, Ctl.INJECT_FAULT_DIE_AT_FAULT);
    for (let i = 0; i < n; i++) {
      if (Atomics.add(sh.ctl, Ctl.FAULTS, 1) + 1 === dieAt) hooks.onDie();
      const q = Math.floor((out[i] - heap) / PAGE_SIZE);
      const waiting = pending.get(q);
      if (waiting) {
        waiting.push(t0); // served with the fault already waiting on q, just below
        continue;
      }
      // Read, so no longer pending on the userfaultfd: told to the watchdog while it is ours.
      Atomics.store(held, WatchdogWord.HELD_FAULT, q + 1);
      if (!serve(q, [t0])) pending.set(q, [t0]);
    }
    for (const [q, t0s] of pending) {
      Atomics.store(held, WatchdogWord.HELD_FAULT, q + 1);
      if (serve(q, t0s)) pending.delete(q);
    }
    Atomics.store(held, WatchdogWord.HELD_FAULT, pending.size > 0 ? pending.keys().next().value! + 1 : 0);
    // The phase read before the poll may be stale: a cycle can begin while we wait in poll,
    // and its first faults must stay pending (not be dropped untimed) until their pages are in.
    if (Atomics.load(sh.ctl, Ctl.PHASE) !== Phase.COMPACTING) {
      let k = 0;
      for (const t0s of pending.values()) k += t0s.length;
      if (k) Atomics.sub(sh.ctl, Ctl.FAULTS_IN_FLIGHT, k);
      pending.clear();
      Atomics.store(held, WatchdogWord.HELD_FAULT, 0);
      continue;
    }
    if (!active) continue;
    if (takeover) {
      const c = Atomics.load(sh.ctl, Ctl.CYCLE);
      const ranges = [...b.pageRanges()];
      const delayMs = Atomics.load(sh.ctl, Ctl.INJECT_FAULT_TAKEOVER_DELAY_MS);
      if (delayMs > 0 && delayed !== c) {
        delayed = c;
        hooks.onDelay(delayMs); // injected: descheduled with this cycle's ranges in hand
      }
      if (c !== cycle) {
        cycle = c;
        cursorRange = 0;
        cursor = ranges.length ? ranges[0][0] : 0;
      }
      for (let done = 0; done < TAKEOVER_STEP && cursorRange < ranges.length; ) {
        if (cursor >= ranges[cursorRange][1]) {
          if (++cursorRange < ranges.length) cursor = ranges[cursorRange][0];
          continue;
        }
        if (b.resolve(cursor, Owner.FAULT, scratch, stallMs)) cursor++;
        else break; // owned by a live builder: look again next round
        done++;
      }
    }
  }
}
