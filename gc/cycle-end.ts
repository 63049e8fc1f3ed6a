/**
 * The end of a cycle (cycle.ts, phase 7), once every page is installed: unregister the heap,
 * give the allocator its room back, release from-space, record the statistics, then report.
 * Apart from the driver because it is one step with resources of its own; the driver keeps
 * only which cycle is active and its history. Whether the end is due: compaction-end.ts.
 */
import { WatchdogWord } from './heartbeat.js';
import { readRss, releaseFromSpace } from './builders.js';
import { Ctl, Phase } from './control.js';
import { ErrorCode, MoveGcError, fromNative } from './errors.js';
import { giveBackTail } from './holes.js';
import { Mode } from './modes.js';
import { PAGE_SIZE } from './native.js';
import { now } from './shared.js';
import { recordCompaction, setReclaimed, type CycleStats } from './stats.js';
import { formatTrace, roundMs } from './trace.js';
import type { ActiveCycle, CycleContext } from './cycle-state.js';

/** Ends compacting cycle `a` (already no longer the driver's active one); returns its statistics, complete. */
export function endCycle(c: CycleContext, a: ActiveCycle): CycleStats {
  const { sh, uffd, mut } = c;
  const checksOffEarly = !mut.compacting;
  mut.setCompacting(false);
  Atomics.store(sh.ctl, Ctl.PHASE, Phase.IDLE);
  // Every page is in: no thread waits on a fault of this cycle. A fault server stalled while it
  // held one (not terminated: the cycle ends without it) would otherwise leave the page named
  // for the watchdog, and that page missing again later (the next cycle, above its new end)
  // would read as a thread blocked on it (a review: a healthy process aborted).
  Atomics.store(sh.hb.words, WatchdogWord.HELD_FAULT, 0);
  const end = now();
  const base = sh.d.heapAddress;
  if (uffd) for (const s of a.plan!.segments) if (s.endPage > s.firstPage) uffd.unregister(base + s.firstPage * PAGE_SIZE, (s.endPage - s.firstPage) * PAGE_SIZE);
  const st = a.stats;
  if (!giveBackTail(a.plan!, mut, a.liveEnd)) setReclaimed(st, a.plan!.allocTop);
  mut.holes.reset(a.plan!.segments);
  // From-space now holds only pages nobody reads: give them back (unless the compactor did).
  st.fromSpaceReleasedBy = c.mode !== Mode.STW && Atomics.load(sh.ctl, Ctl.FROM_RELEASED) === Atomics.load(sh.ctl, Ctl.CYCLE) ? 'compactor' : 'mutator';
  if (st.fromSpaceReleasedBy === 'mutator') {
    try {
      releaseFromSpace(sh);
    } catch (e) {
      throw fromNative(e, 'madvise(DONTNEED)');
    }
  }
  st.usedAfterBytes = mut.top * 8;
  recordCompaction(st, sh, c.mode === Mode.STW, a.pauseEnd, end);
  st.stalls.checksOffEarly = checksOffEarly && c.mode !== Mode.STW;
  st.rss.afterBytes = readRss(sh);
  return st;
}

/** After the cycle is recorded: dead threads replaced, its log lines (and trace line), verification if asked. */
export function reportCycle(c: CycleContext, st: CycleStats): void {
  // Whichever way the cycle ended (a safepoint, the event loop): no dead thread into the next one.
  void c.threads.replaceDead();
  c.log.info(
    { phase: 'compaction', cycle: st.cycle, mode: st.mode, compactionMs: roundMs(st.compactionMs), pagesMoved: st.pages.moved, pagesCopied: st.pages.copied, faults: st.faults, faultP50Us: roundMs(st.faultUs.p50), ebusy: st.ebusy, reclaimedBytes: st.reclaimedBytes },
    'cycle done',
  );
  if (st.ebusy > 0) c.log.warn({ cycle: st.cycle, ebusy: st.ebusy, copied: st.ebusyCopies }, 'pages refused by MOVE were copied');
  if (c.trace) process.stderr.write(`${formatTrace(st, c.opts.capacity)}\n`);
  if (st.malformedObjects > 0) {
    // Built anyway, so the cycle ended (build.ts malformedWords); the heap stays usable, and
    // the next walk that meets such an object (marking, verify, census) reports it too.
    throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `cycle ${st.cycle}: live object at word ${st.malformedAt} (before the move) had a malformed header or reference when compaction met it (${st.malformedObjects} met in all): the heap was written outside the API during the cycle; those words were moved as they were`);
  }
  if (c.opts.verify) {
    const v = c.verify();
    if (!v.ok) throw new MoveGcError(ErrorCode.VERIFY_FAILED, `heap verification failed after cycle ${st.cycle}: ${v.errors.join('; ')}`);
  }
}
