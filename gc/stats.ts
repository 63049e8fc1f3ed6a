/** Per-cycle statistics for researchers: every figure ART records, and the ones it lacks. */
import { Clk, Ctl } from './control.js';
import { asArgument, invalidArg, outOfRange, shown } from './errors.js';
import { typedArrayKind } from './values.js';
import { WORD } from './layout.js';
import type { Plan } from './plan.js';
import { HIST_BUCKETS, Hist, bucketValue, type Shared } from './shared.js';
import type { ModeName } from './modes.js';

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Non-empty buckets: [lower bound, count]. */
  buckets: Array<[number, number]>;
}

export interface CycleStats {
  cycle: number;
  mode: ModeName;
  /** Heap bytes in use (allocation top) before and after the cycle. */
  usedBeforeBytes: number;
  usedAfterBytes: number;
  liveBytes: number;
  liveObjects: number;
  /**
   * Bytes in use before, less what live data spans after: the top's drop, plus gapBytes (from
   * the compaction pause; less at the cycle's end if the mutator allocated during compaction,
   * as the top then stays a page boundary above the live data until the next cycle).
   */
  reclaimedBytes: number;
  /**
   * Free bytes compaction left below pinned objects (each segment's tail, up to the next pinned
   * span): below the top, allocated into when the top is full, between cycles (holes.ts).
   */
  gapBytes: number;
  markMs: number;
  planMs: number;
  /**
   * The compaction pause's flip (pause.ts: roots, pins, register, remap; and the retag) and its
   * parts. What else the compaction pause holds (pauses[] has it whole): planMs, the plan's
   * work inside it (the marker's plan extended over what was allocated since the marking
   * pause; or the whole plan when made there, plan.inPause; a mark in the pause excluded),
   * and mapCountMs, the count of the process's mappings against vm.max_map_count (map-count.ts).
   */
  pause: { totalMs: number; rootsMs: number; pinnedMs: number; registerMs: number; remapMs: number; planMs: number; mapCountMs: number };
  /** Compaction-thread completion time: pause end to the compactor's last install. */
  compactionMs: number;
  compactorBusyMs: number;
  /**
   * The compactor thread's busy time split (move and copy; zeros in stw and when the
   * compactor did not run the cycle): building pages, installing runs (MOVE/COPY ioctls and
   * page states), releasing consumed from-space (madvise), and the rest (claims, buffers,
   * heartbeats, RSS samples). waitMs (injected stalls) is outside busy time. cpuMs and
   * queuedMs: the thread's time on a CPU and runnable but waiting for one over its cycle
   * (/proc/thread-self/schedstat, updated at scheduler ticks: coarse for a short cycle; 0
   * where the kernel lacks it): on a shared machine the wall-clock split includes time the
   * thread was not running.
   */
  compactor: CompactorSplit;
  /** Pause end to the cycle's end (every page installed, heap unregistered). */
  concurrentMs: number;
  pages: {
    total: number;
    identity: number;
    /** Of builtByCompactor: WHOLE pages (plan.wholePages) it installed from their from-space page with no build, moved (or copied) as they were. */
    whole: number;
    /** Of whole (move mode): pages whose from-space page was never written (a hole, skipped by MOVE): the zero page was mapped instead. */
    zero: number;
    /** Of whole (move mode, hugePages): install calls of one aligned 2 MiB span each, which the kernel moves as one PMD when the source is a huge page. */
    wholePmdCalls: number;
    /** Move mode with hugePages: pages built 2 MiB at a time into a huge scratch page and moved in as one PMD, by the compactor or the mutator (their first touch is then one TLB entry's, not 512). */
    pmdBuilt: number;
    /** Of pmdBuilt: the spans the mutator built (self-service: the span of a page it touched; in builtByMutator). */
    pmdBuiltBySelf: number;
    /** GAP pages (inside the gap before an object kept on 2 MiB, hugePages) the compactor installed as the zero page, unbuilt. */
    gap: number;
    moved: number;
    copied: number;
    /** Move mode: pages of the compactor's runs shorter than moveMinRun, installed by COPY from its private pages (most are in copied). */
    shortRunCopied: number;
    /** Move mode with hugePages: the part of a 2 MiB span claimed before another thread's page stopped it (pmdBuilt), installed by COPY from the scratch pages it was built in. */
    scratchCopied: number;
    builtByCompactor: number;
    builtByFaults: number;
    builtByMutator: number;
    /** Pages the marker built as the last stand-in (compactor and fault server both gone: marker.ts). */
    builtByMarker: number;
    /** Pages an accessor resolved on touching them (self-service): built, or taken over from a stalled builder and installed. */
    builtBySelf: number;
    recycledBuffers: number;
    freshBuffers: number;
    /**
     * From-space pages the compactor gave back with madvise(DONTNEED) while compacting, counted by
     * the length of the ranges: in move mode most of them were already moved away (no page behind).
     */
    released: number;
    /** Pages whose destination the program unmapped or mapped over mid-cycle: nothing was installed there. */
    gone: number;
  };
  moveCalls: number;
  copyCalls: number;
  batchPages: LatencySummary;
  ebusy: number;
  ebusyCopies: number;
  /** Pages rebuilt into a private page before a COPY: their buffer was an old heap page that unpinned I/O may still write (install.ts). */
  rebuilds: number;
  eexist: number;
  eagain: number;
  /** Install calls refused because their run crossed from one VMA of the heap into the next (split at past pinned spans), then retried in pieces. */
  splitRuns: number;
  enoent: number;
  /**
   * Live objects the builders found malformed (a header, or a reference outside the heap: the
   * program wrote the heap outside the accessors after marking), counted per page built, and
   * the first one's word before the move (-1: none). Non-zero fails the cycle with
   * ERR_HEAP_CORRUPT (build.ts).
   */
  malformedObjects: number;
  malformedAt: number;
  takeovers: number;
  errors: number;
  faults: number;
  /** Fault service latency on the handler (read to install), microseconds. */
  faultUs: LatencySummary;
  /**
   * The mutator's fault path this cycle (selfservice.ts) and its stall per touched unbuilt
   * page, microseconds, measured on the mutator's thread: `self` for pages it built itself,
   * `handler` for pages left to the kernel fault (every page with faultPath 'handler'; with
   * 'self', pages another builder held). Accesses that bypass the accessors are not in them:
   * `faults` counts every kernel fault, theirs included.
   */
  faultPath: 'self' | 'handler';
  stalls: {
    self: LatencySummary;
    handler: LatencySummary;
    selfLeft: number;
    selfFailed: number;
    selfHelped: number;
    /** Pages the mutator took from the compactor mid-step (claimed, not yet built) and built itself, rather than wait for the step. */
    selfStolen: number;
    unbuiltTouches: number;
    /**
     * Accessor reads of unbuilt pages served from from-space (options.unbuiltReads), each a
     * short stop of the mutator and no build: their count and duration.
     */
    unbuiltReads: number;
    /** Accessor writes into unbuilt pages made in from-space (options.unbuiltWrites), timed in `reads` with them. */
    unbuiltWrites: number;
    /**
     * The mutator saw every page installed and turned its accessors' page checks off then, not
     * at the cycle's end (a loop that never yields between collections would pay them until
     * its next collect()).
     */
    checksOffEarly: boolean;
    reads: LatencySummary;
    /**
     * Of the `self` stalls, ms: building the pages the mutator claimed itself, and installing
     * them (the rest is claims, helping other builders' pages in, takeovers and bookkeeping).
     * The first build of a page reads its from-space sources for the first time since the flip.
     */
    selfBuildMs: number;
    selfInstallMs: number;
  };
  /** The mutator's idle-time compaction (Heap.idleCompact): pages it installed, and the calls' time in all (ms). */
  idle: { pages: number; ms: number };
  /** Resident set size of the process (0 where /proc/self/statm could not be read). */
  rss: { beforeBytes: number; peakBytes: number; afterBytes: number };
  /**
   * Who gave from-space back at the end of the cycle: the compactor as it left, every page
   * installed (the usual case: off the mutator's thread), or the cycle's end on the mutator's
   * thread (stw, or the compactor was not last: a stalled or replaced compactor, a fault).
   */
  fromSpaceReleasedBy: 'compactor' | 'mutator';
  pinnedSpans: number;
  segments: number;
  /** Where marking ran: 'concurrent' (marker thread) or 'pause' (and stw). */
  marking: 'concurrent' | 'pause';
  /**
   * Every time this cycle stopped the mutator, in order: 'initial' (root snapshot), 'remark'
   * (marking pause), 'compaction' (the flip); with marking in the pause one 'mark-compaction';
   * in stw mode one 'stw' (the whole collection). startMs is absolute (performance.timeOrigin based).
   */
  pauses: Array<{ kind: PauseKind; startMs: number; ms: number }>;
  mark: {
    /** Objects and words marked (the marker's and the marking pause's), black excluded. */
    objects: number;
    words: number;
    /** Objects the marking pause itself traced (from the log's rest and the roots). */
    remarkObjects: number;
    /** Wall time of concurrent marking (begin to the marker's idle) and the marker's busy time. */
    concurrentMs: number;
    cpuMs: number;
    /** References the write barrier logged, and how many the marker consumed concurrently. */
    barrierEntries: number;
    logConsumed: number;
    /** Allocated since marking began (live, sliding as a block). */
    blackObjects: number;
    blackBytes: number;
  };
  plan: {
    /** Wall and busy time of the marker's concurrent plan (0 when planned in a pause). */
    concurrentMs: number;
    cpuMs: number;
    /** Planned in the compaction pause (a pin added since, or the marker lost). */
    inPause: boolean;
    /**
     * Large objects kept on a page (options.largeObjectBytes), the gap bytes before them in
     * to-space (the allocator's gaps are not live: they are reclaimed), and their pages
     * planned WHOLE (shifted by whole pages: pages.whole of them needed no build).
     */
    alignedObjects: number;
    alignGapBytes: number;
    wholePages: number;
    /**
     * Mappings the process had left under vm.max_map_count when the plan was made, which the
     * compaction pause checks before it remaps anything (map-count.ts); -1: unknown (no procfs).
     */
    mapHeadroom: number;
  };
  /** When the cycle ended (absolute ms). */
  endMs: number;
}

export type PauseKind = 'initial' | 'remark' | 'compaction' | 'mark-compaction' | 'stw';

export function emptyStats(cycle: number, mode: ModeName, marking: 'concurrent' | 'pause', faultPath: 'self' | 'handler' = 'self'): CycleStats {
  const empty = summarize(new Int32Array(HIST_BUCKETS), 0);
  return {
    cycle,
    mode,
    usedBeforeBytes: 0,
    usedAfterBytes: 0,
    liveBytes: 0,
    liveObjects: 0,
    reclaimedBytes: 0,
    gapBytes: 0,
    markMs: 0,
    planMs: 0,
    pause: { totalMs: 0, rootsMs: 0, pinnedMs: 0, registerMs: 0, remapMs: 0, planMs: 0, mapCountMs: 0 },
    compactionMs: 0,
    compactorBusyMs: 0,
    concurrentMs: 0,
    pages: { total: 0, identity: 0, whole: 0, zero: 0, wholePmdCalls: 0, pmdBuilt: 0, pmdBuiltBySelf: 0, gap: 0, moved: 0, copied: 0, shortRunCopied: 0, scratchCopied: 0, builtByCompactor: 0, builtByFaults: 0, builtByMutator: 0, builtByMarker: 0, builtBySelf: 0, recycledBuffers: 0, freshBuffers: 0, released: 0, gone: 0 },
    moveCalls: 0,
    copyCalls: 0,
    batchPages: empty,
    ebusy: 0,
    ebusyCopies: 0,
    rebuilds: 0,
    eexist: 0,
    eagain: 0,
    splitRuns: 0,
    enoent: 0,
    malformedObjects: 0,
    malformedAt: -1,
    takeovers: 0,
    errors: 0,
    faults: 0,
    faultUs: empty,
    faultPath,
    stalls: { self: empty, handler: empty, selfLeft: 0, selfFailed: 0, selfHelped: 0, selfStolen: 0, unbuiltTouches: 0, unbuiltReads: 0, unbuiltWrites: 0, checksOffEarly: false, reads: empty, selfBuildMs: 0, selfInstallMs: 0 },
    idle: { pages: 0, ms: 0 },
    rss: { beforeBytes: 0, peakBytes: 0, afterBytes: 0 },
    fromSpaceReleasedBy: 'mutator',
    pinnedSpans: 0,
    segments: 0,
    marking,
    pauses: [],
    mark: { objects: 0, words: 0, remarkObjects: 0, concurrentMs: 0, cpuMs: 0, barrierEntries: 0, logConsumed: 0, blackObjects: 0, blackBytes: 0 },
    plan: { concurrentMs: 0, cpuMs: 0, inPause: false, alignedObjects: 0, alignGapBytes: 0, wholePages: 0, mapHeadroom: -1 },
    compactor: { buildMs: 0, installMs: 0, releaseMs: 0, otherMs: 0, waitMs: 0, cpuMs: 0, queuedMs: 0 },
    endMs: 0,
  };
}

export interface CompactorSplit {
  buildMs: number;
  installMs: number;
  releaseMs: number;
  otherMs: number;
  waitMs: number;
  cpuMs: number;
  queuedMs: number;
}

export function summarize(hist: Int32Array, offset: number): LatencySummary {
  if (typedArrayKind(hist) !== 'Int32Array') throw invalidArg('summarize(hist, offset): hist must be an Int32Array');
  if (!Number.isInteger(offset) || offset < 0 || offset + HIST_BUCKETS > (hist as Int32Array).length)
    throw outOfRange(`summarize(hist, offset): offset must be an integer with ${HIST_BUCKETS} buckets from it inside hist, got ${shown(offset)}`);
  let count = 0;
  const buckets: Array<[number, number]> = [];
  for (let b = 0; b < HIST_BUCKETS; b++) {
    const n = hist[offset + b];
    if (n > 0) {
      count += n;
      buckets.push([bucketValue(b), n]);
    }
  }
  const pct = (p: number): number => {
    if (count === 0) return 0;
    let seen = 0;
    const rank = Math.ceil(p * count);
    for (const [v, n] of buckets) if ((seen += n) >= rank) return v;
    return buckets[buckets.length - 1][0];
  };
  return { count, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: buckets.length ? buckets[buckets.length - 1][0] : 0, buckets };
}

/** The most numbers median() takes (2^24: 128 MiB of doubles). */
export const MAX_MEDIAN_ITEMS = 1 << 24;

/** Median of a list (benchmarks quote medians: these machines are noisy). */
export function median(xs: number[]): number {
  const s = asArgument('median(xs): an array of numbers', () => {
    if (!Array.isArray(xs)) throw new TypeError(`got ${shown(xs)}`);
    // By index, each element read once and checked as it is read: never the array's own
    // iterator (a caller's could run for ever), and a hole stops the copy at once.
    const n = xs.length;
    // A Proxy claiming 2^32 - 1 elements ended the process (V8's invalid size error).
    if (!(n <= MAX_MEDIAN_ITEMS)) throw outOfRange(`median(xs): more than ${MAX_MEDIAN_ITEMS} numbers (${shown(n)})`);
    const c: number[] = [];
    for (let i = 0; i < n; i++) {
      const x: unknown = xs[i];
      if (typeof x !== 'number') throw new TypeError(`element ${i} is ${shown(x)}, not a number`);
      c.push(x);
    }
    return c;
  });
  if (s.length === 0) return NaN;
  s.sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The compaction's counters and histograms (control.ts `counters`, shared.ts Hist) into the cycle's statistics. */
export function readCompactionCounters(st: CycleStats, sh: Shared, stw: boolean): void {
  const c = sh.ctl;
  st.pages.moved = c[Ctl.PAGES_MOVED];
  st.pages.copied = c[Ctl.PAGES_COPIED];
  st.pages.shortRunCopied = c[Ctl.SHORT_RUN_COPIES];
  st.pages.scratchCopied = c[Ctl.SCRATCH_COPIES];
  st.pages.builtByCompactor = c[Ctl.COMPACTOR_BUILDS];
  st.pages.whole = c[Ctl.WHOLE_PAGES];
  st.pages.zero = c[Ctl.ZERO_PAGES];
  st.pages.wholePmdCalls = c[Ctl.WHOLE_PMD_CALLS];
  st.pages.pmdBuilt = c[Ctl.PMD_PAGES];
  st.pages.pmdBuiltBySelf = c[Ctl.PMD_SELF_PAGES];
  st.pages.gap = c[Ctl.GAP_PAGES];
  st.pages.builtByFaults = c[Ctl.FAULT_BUILDS];
  st.pages.builtByMutator = stw ? st.pages.total : c[Ctl.MUTATOR_BUILDS];
  st.pages.builtByMarker = c[Ctl.MARKER_BUILDS];
  st.pages.recycledBuffers = c[Ctl.RECYCLED_BUFFERS];
  st.pages.freshBuffers = c[Ctl.FRESH_BUFFERS];
  st.pages.released = c[Ctl.RELEASED_PAGES];
  st.pages.gone = c[Ctl.PAGES_GONE];
  st.moveCalls = c[Ctl.MOVE_CALLS];
  st.copyCalls = c[Ctl.COPY_CALLS];
  st.ebusy = c[Ctl.EBUSY];
  st.ebusyCopies = c[Ctl.EBUSY_COPIES];
  st.rebuilds = c[Ctl.REBUILDS];
  st.eexist = c[Ctl.EEXIST];
  st.eagain = c[Ctl.EAGAIN];
  st.splitRuns = c[Ctl.SPLIT_RUNS];
  st.enoent = c[Ctl.ENOENT];
  st.malformedObjects = c[Ctl.MALFORMED];
  st.malformedAt = st.malformedObjects > 0 ? c[Ctl.MALFORMED_AT] >>> 0 : -1;
  st.takeovers += c[Ctl.TAKEOVERS];
  st.errors = c[Ctl.ERRORS];
  st.faults = c[Ctl.FAULTS];
  st.faultUs = summarize(sh.hist, Hist.FAULT_US * HIST_BUCKETS);
  st.pages.builtBySelf = c[Ctl.SELF_RESOLVED];
  st.stalls = { self: summarize(sh.hist, Hist.SELF_STALL_US * HIST_BUCKETS), handler: summarize(sh.hist, Hist.HANDLER_STALL_US * HIST_BUCKETS), selfLeft: c[Ctl.SELF_LEFT], selfFailed: c[Ctl.SELF_FAILED], selfHelped: c[Ctl.SELF_HELPED], selfStolen: c[Ctl.SELF_STOLEN], unbuiltTouches: c[Ctl.UNBUILT_TOUCHES], unbuiltReads: c[Ctl.UNBUILT_READS], unbuiltWrites: c[Ctl.UNBUILT_WRITES], checksOffEarly: false, reads: summarize(sh.hist, Hist.UNBUILT_READ_US * HIST_BUCKETS), selfBuildMs: sh.clk[Clk.SELF_BUILD], selfInstallMs: sh.clk[Clk.SELF_INSTALL] };
  st.idle = { pages: c[Ctl.IDLE_PAGES], ms: sh.clk[Clk.IDLE_WORK] };
  st.batchPages = summarize(sh.hist, Hist.BATCH_PAGES * HIST_BUCKETS);
}

/** reclaimedBytes, with the top after the cycle (before any allocation since) at `endWord`. */
export function setReclaimed(st: CycleStats, endWord: number): void {
  st.reclaimedBytes = st.usedBeforeBytes - endWord * WORD + st.gapBytes;
}

/** What the plan decided, into the cycle's statistics (at the flip; `topWord`: the top before it). */
export function recordPlan(st: CycleStats, p: Plan, topWord: number, liveEnd: number): void {
  st.liveObjects = st.mark.objects + st.mark.blackObjects;
  st.liveBytes = st.mark.words * WORD + st.mark.blackBytes;
  st.usedBeforeBytes = topWord * WORD;
  st.gapBytes = 0;
  for (let i = 0; i < p.segments.length - 1; i++) st.gapBytes += (p.segments[i].end - p.segments[i].newEnd) * WORD;
  // Where the top goes back at the cycle's end (cycle.ts giveBackTail); if the mutator
  // allocates during compaction it stays at p.allocTop instead, and the end says so.
  setReclaimed(st, liveEnd);
  st.pages.total = p.pagesTotal;
  st.pages.identity = p.identityPages;
  st.plan.alignedObjects = p.aligned.objects;
  st.plan.alignGapBytes = p.aligned.gapWords * WORD;
  st.plan.wholePages = p.aligned.wholePages;
  st.pinnedSpans = p.pinnedSpans.length;
  st.segments = p.segments.length;
}

/** Concurrent marking's counters and times at the marking pause; `remark`: what the pause itself traced. */
export function recordMarking(st: CycleStats, sh: Shared, remark: { objects: number; words: number }, barrierEntries: number): void {
  st.mark.remarkObjects = remark.objects;
  st.mark.objects = sh.ctl[Ctl.MARK_OBJECTS] + remark.objects;
  st.mark.words = sh.ctl[Ctl.MARK_WORDS] + remark.words;
  st.mark.barrierEntries = barrierEntries;
  st.mark.logConsumed = sh.ctl[Ctl.MARK_LOG_ENTRIES];
  st.mark.concurrentMs = sh.clk[Clk.MARK_END] > 0 ? sh.clk[Clk.MARK_END] - sh.clk[Clk.MARK_START] : 0;
  st.mark.cpuMs = sh.clk[Clk.MARK_CPU];
}

/** The compaction's times and counters at the end of the cycle (`pauseEnd`, `end`: absolute ms). */
export function recordCompaction(st: CycleStats, sh: Shared, stw: boolean, pauseEnd: number, end: number): void {
  const clk = sh.clk;
  st.compactionMs = stw ? clk[Clk.COMPACT_END] - clk[Clk.COMPACT_START] : clk[Clk.COMPACT_END] > 0 ? clk[Clk.COMPACT_END] - pauseEnd : end - pauseEnd;
  st.compactorBusyMs = clk[Clk.COMPACTOR_BUSY];
  st.compactor = compactorSplit(clk);
  st.concurrentMs = stw ? 0 : end - pauseEnd;
  readCompactionCounters(st, sh, stw);
  st.rss.peakBytes = Math.max(clk[Clk.RSS_PEAK], st.rss.beforeBytes);
  st.endMs = end;
}

/** The compactor's time split of one cycle (ms), as CycleStats reports it (Clk entries). */
export function compactorSplit(clk: Float64Array): CompactorSplit {
  return {
    buildMs: clk[Clk.COMPACTOR_BUILD],
    installMs: clk[Clk.COMPACTOR_INSTALL],
    releaseMs: clk[Clk.COMPACTOR_RELEASE],
    otherMs: clk[Clk.COMPACTOR_OTHER],
    waitMs: clk[Clk.COMPACTOR_WAIT],
    cpuMs: clk[Clk.COMPACTOR_CPU],
    queuedMs: clk[Clk.COMPACTOR_QUEUED],
  };
}
