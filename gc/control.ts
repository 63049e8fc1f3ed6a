/**
 * The control block: the Int32 words every collector thread shares, grouped by kind and laid
 * out from the groups, never numbered by hand. What a cycle resets is a group, not a list of
 * indices, so a counter added to `counters` is reset with the others.
 *
 *  - settings: written by the heap at creation or before a cycle; read-only for the threads;
 *  - protocol: the handshakes between the mutator and the collector threads;
 *  - counters: statistics of the current cycle, zeroed by the phase that owns them;
 *  - lifetime: state that outlives cycles.
 * The clock block (Float64, absolute ms) follows the same rule; heartbeats: heartbeat.ts.
 */
import type { InjectOptions } from './options.js';

type Layout<G extends Record<string, readonly string[]>> = {
  readonly [K in G[keyof G][number]]: number;
} & { readonly SIZE: number };

function layout<const G extends Record<string, readonly string[]>>(groups: G): { words: Layout<G>; ranges: { readonly [K in keyof G]: readonly [number, number] } } {
  const words: Record<string, number> = {};
  const ranges: Record<string, readonly [number, number]> = {};
  let i = 0;
  for (const [g, names] of Object.entries(groups)) {
    const start = i;
    for (const n of names) {
      if (n in words) throw new Error(`control word ${n} defined twice`);
      words[n] = i++;
    }
    ranges[g] = [start, i];
  }
  words.SIZE = i;
  return { words: Object.freeze(words) as Layout<G>, ranges: Object.freeze(ranges) as { readonly [K in keyof G]: readonly [number, number] } };
}

const ctl = layout({
  settings: [
    /** How pages are installed this heap: see Install in install.ts. */
    'INSTALL',
    /** How single pages built for a fault (or by the mutator) are installed: see FaultInstall. */
    'FAULT_INSTALL',
    /** Which page builder every thread uses: Builder.JS or Builder.NATIVE (build.ts). */
    'BUILDER',
    /** Move mode: the compactor's runs shorter than this go in by COPY (options.moveMinRun). */
    'MOVE_MIN_RUN',
    /**
     * 1: the heap is backed by transparent huge pages (options.hugePages): objects of 2 MiB
     * and more keep a 2 MiB boundary (plan.ts) and WHOLE installs end on one (compact.ts).
     */
    'HUGE_PAGES',
    /**
     * 1: move mode with hugePages: plain pages are built 2 MiB at a time into a huge scratch
     * page and moved in as one PMD (Builders.buildPmd), unless the heap is too large for the
     * huge scratch pages to fit in from-space's views (fromExtraBytes).
     */
    'PMD_SPANS',
    // Fault injection, off (0) by default; see options.ts InjectOptions.
    'INJECT_EAGAIN_EVERY',
    'INJECT_DELAY_AT_PAGE',
    'INJECT_DELAY_MS',
    'INJECT_DIE_AT_PAGE',
    'INJECT_FORK_AT_PAGE',
    /** The fault server dies on reading its Nth fault of the cycle (watchdog tests). */
    'INJECT_FAULT_DIE_AT_FAULT',
    /** The fault server sleeps this long once per cycle, as it starts taking over the compactor's pages. */
    'INJECT_FAULT_TAKEOVER_DELAY_MS',
    /** The fault server takes no gone compactor's page over before its Nth fault of the cycle. */
    'INJECT_FAULT_TAKEOVER_AT_FAULT',
    /** The fault server holds one built page of the cycle this long, before or inside its install. */
    'INJECT_FAULT_HOLD_BUILT_MS',
    'INJECT_FAULT_HOLD_INSTALL_MS',
    /** The fault server holds one installed page of the cycle this long before its state word says MAPPED. */
    'INJECT_FAULT_HOLD_MAPPED_MS',
    /** The fault server holds once per cycle between a fault's install and its timing. */
    'INJECT_FAULT_HOLD_TIMED_MS',
    /** The marker standing in for compaction holds one built page of the cycle this long before its install. */
    'INJECT_MARK_HOLD_BUILT_MS',
    /** The mutator's first from-space read of a cycle sleeps this long between its look at the page and its read. */
    'INJECT_READ_HOLD_MS',
    /** The mutator's first from-space write of a cycle sleeps this long between its claim of the page and its write. */
    'INJECT_WRITE_HOLD_MS',
    /** The compactor holds its first WHOLE run of a cycle this long between its MOVE and its state words' MAPPED. */
    'INJECT_WHOLE_HOLD_MAPPED_MS',
    /** The compactor holds its first step of a cycle this long between its claims and its build. */
    'INJECT_STEP_HOLD_MS',
    'INJECT_MARK_DELAY_AT',
    'INJECT_MARK_DELAY_MS',
    'INJECT_MARK_DIE_AT',
    'INJECT_MARK_LOG_DELAY_MS',
    /** 1: each collector thread ends (process.exit) before it says it is ready. */
    'INJECT_START_EXIT',
  ],
  protocol: [
    'CYCLE',
    /** Phase of the current cycle, see {@link Phase}. */
    'PHASE',
    'SEGMENTS',
    /** Pages to build this cycle, and how many are installed. */
    'PAGES_TOTAL',
    'PAGES_MAPPED',
    /** Set by a fault server when the page it needs sits in the compactor's unflushed batch. */
    'FLUSH_REQUEST',
    /** Bit i: the mutator's huge scratch page i went with a span it built; the compactor faults it in again and clears the bit (compact.ts). */
    'SELF_SPAN_EMPTY',
    /** Set when the heap closes: workers exit. */
    'STOP',
    /** The cycle the compactor is working on, 0 when it is outside any cycle. */
    'COMPACTOR_IN',
    /**
     * The cycle the fault server installs a page for, 0 outside its installs: a page it built
     * (or took over) goes in only while its cycle compacts, never into the next cycle's
     * to-space. Fenced with CLOSING_CYCLE as COMPACTOR_IN is (Builders.enterInstall).
     */
    'FAULT_INSTALL_IN',
    /** The last cycle the compactor finished walking (pages reclaimed behind it may remain). */
    'COMPACTOR_DONE',
    /** A child forked by the forkAtPage injection, held until the cycle ends: pid (0: none) and pipe fd. */
    'FORK_PID',
    'FORK_FD',
    /**
     * Faults the fault server has read but not yet served and timed. The cycle's statistics
     * wait for it to drain (a fault served after the cycle's end would be lost from them).
     */
    'FAULTS_IN_FLIGHT',
    /**
     * The cycle the heap is finishing (all pages installed). A compactor that announces itself
     * in COMPACTOR_IN for this cycle only now backs out: the heap stores this, then reads
     * COMPACTOR_IN; the compactor stores COMPACTOR_IN, then reads this (one sees the other).
     */
    'CLOSING_CYCLE',
    /**
     * The cycle whose from-space the compactor released as it left (every page was installed):
     * the end of the cycle, on the mutator's thread, then has none of that madvise to do.
     */
    'FROM_RELEASED',
    // Marking and planning (see marker.ts): a request word the heap bumps, the marker's state.
    /** Bumped by the heap for each job it hands the marker (see MarkJob). */
    'MARK_REQUEST',
    /** The job asked for: MarkJob.*. */
    'MARK_JOB',
    /** The last request the marker finished (or failed: MARK_FAILED). */
    'MARK_DONE',
    'MARK_FAILED',
    /** Set by the heap to make the marker stop tracing (the marking pause); acked in MARK_PARKED. */
    'MARK_STOP',
    'MARK_PARKED',
    /** The marker is idle with an empty stack and an empty barrier log (a remark can start). */
    'MARK_IDLE',
    /** The marker has cleared the mark bitmaps for this marking: the barrier may trust them. */
    'MARK_CLEARED',
    /** Barrier log ring: entries written by the mutator [head, tail), consumed by the marker. */
    'LOG_HEAD',
    'LOG_TAIL',
    /**
     * The cycle in which the mutator gave up self-service after an install failed: a page it
     * left PROCESSED is then anyone's to install (Builders.isStale), as a stale thread's is.
     */
    'SELF_ABANDONED',
  ],
  /** Statistics of the compaction phase, zeroed at the compaction pause. */
  counters: [
    'FAULTS',
    'MOVE_CALLS',
    'PAGES_MOVED',
    'PAGES_COPIED',
    'COPY_CALLS',
    'EBUSY',
    'EEXIST',
    'EAGAIN',
    /** Install calls refused because their run crossed from one VMA of the heap into the next, then retried in pieces (install.ts). */
    'SPLIT_RUNS',
    'ENOENT',
    /** Pages whose destination the program unmapped or mapped over mid-cycle: nothing installed there (install.ts #gone). */
    'PAGES_GONE',
    /** Pages built into fresh scratch because no recycled from-space page was free. */
    'FRESH_BUFFERS',
    'RECYCLED_BUFFERS',
    'TAKEOVERS',
    'ERRORS',
    /** Pages the fault server built ahead of the background order. */
    'FAULT_BUILDS',
    'MUTATOR_BUILDS',
    /** Pages the marker built standing in for a compactor and a fault server both gone (marker.ts). */
    'MARKER_BUILDS',
    'EBUSY_COPIES',
    /** Pages of the compactor's short runs, installed by COPY in move mode (options.moveMinRun). */
    'SHORT_RUN_COPIES',
    /** Pages of the compactor's other runs built into its scratch pages, installed by COPY in move mode (compact.ts). */
    'SCRATCH_COPIES',
    /**
     * Pages built a second time into a thread's private page before a COPY, because their
     * buffer was a recycled from-space page that I/O may still write (install.ts).
     */
    'REBUILDS',
    /** Mutator self-service (selfservice.ts): pages it resolved itself, pages it left to the kernel (another builder had them), builds that failed. */
    'SELF_RESOLVED',
    'SELF_LEFT',
    'SELF_FAILED',
    /** Of SELF_RESOLVED: pages another builder had built, installed by the mutator from its buffer. */
    'SELF_HELPED',
    /** Pages the mutator took from the compactor mid-step and built itself (selfservice.ts #help). */
    'SELF_STOLEN',
    /** Unbuilt pages the accessors met, on either fault path (each a stall of the mutator). */
    'UNBUILT_TOUCHES',
    /** Accessor reads of unbuilt pages served from from-space, the page left unbuilt (unbuilt-reads.ts). */
    'UNBUILT_READS',
    /** Accessor writes into unbuilt pages made in from-space, the page left unbuilt (unbuilt-writes.ts). */
    'UNBUILT_WRITES',
    /** Pages the mutator built in time it gave the cycle (Heap.idleCompact, idle.ts): no access waited for them. */
    'IDLE_PAGES',
    /** Pages the compactor itself built (WHOLE pages included: it installs them unbuilt). */
    'COMPACTOR_BUILDS',
    /** WHOLE pages the compactor installed straight from their from-space page, with no build. */
    'WHOLE_PAGES',
    /** Of them, pages whose from-space page was a hole (never written): the zero page went in. */
    'ZERO_PAGES',
    /** WHOLE install calls that covered one aligned 2 MiB span: a PMD move if its source was a huge page. */
    'WHOLE_PMD_CALLS',
    /** Pages built 2 MiB at a time into a huge scratch page and moved in as one PMD (move mode, hugePages). */
    'PMD_PAGES',
    /** Of PMD_PAGES: the mutator's (self-service built the span of a page it touched). */
    'PMD_SELF_PAGES',
    /** GAP pages (plan.ts) the compactor installed as the zero page, with no build. */
    'GAP_PAGES',
    'RELEASED_PAGES',
    /**
     * Live objects a builder found malformed (a header, or a reference outside the heap,
     * written outside the accessors after marking read them), counted per page built, and the
     * first one's from-space word: build.ts malformedWords, malformedAt.
     */
    'MALFORMED',
    'MALFORMED_AT',
  ],
  /** Statistics of marking, zeroed when a cycle begins: what the marker traced and consumed. */
  markCounters: ['MARK_OBJECTS', 'MARK_WORDS', 'MARK_LOG_ENTRIES'],
  lifetime: [],
});

/** Indices into the Int32 control block. */
export const Ctl = ctl.words;
export const CtlGroup = ctl.ranges;

const clk = layout({
  compaction: [
    'COMPACT_START',
    'COMPACT_END',
    'RSS_PEAK',
    /** Compactor busy time this cycle (ms), excluding waits. */
    'COMPACTOR_BUSY',
    'FAULT_BUSY',
    /** The compactor's time split this cycle (ms, see CycleStats.compactor): written at its end. */
    'COMPACTOR_BUILD',
    'COMPACTOR_INSTALL',
    'COMPACTOR_RELEASE',
    'COMPACTOR_OTHER',
    'COMPACTOR_WAIT',
    /** The compactor thread's time on a CPU and runnable but waiting for one (schedstat). */
    'COMPACTOR_CPU',
    'COMPACTOR_QUEUED',
    /** The mutator's self-service split this cycle (ms, see CycleStats.stalls): its page builds and their installs. */
    'SELF_BUILD',
    'SELF_INSTALL',
    /** The mutator's idle-time compaction this cycle (ms, Heap.idleCompact): its calls' time in all. */
    'IDLE_WORK',
  ],
  marking: [
    /** Marker: wall-clock start and end of concurrent marking and of planning, and its CPU time. */
    'MARK_START',
    'MARK_END',
    'MARK_CPU',
    'PLAN_START',
    'PLAN_END',
    'PLAN_CPU',
  ],
});

/** Indices into the Float64 clock block (absolute ms, see now()). */
export const Clk = clk.words;
export const ClkGroup = clk.ranges;

/** Zeroes what marking starts from (when a cycle begins). */
export function resetMarking(ctlWords: Int32Array, clocks: Float64Array): void {
  ctlWords.fill(0, CtlGroup.markCounters[0], CtlGroup.markCounters[1]);
  clocks.fill(0, ClkGroup.marking[0], ClkGroup.marking[1]);
}

/** The marker's fault injections (it reads them when a marking starts). */
export function armMarking(ctlWords: Int32Array, inj: Readonly<InjectOptions>): void {
  ctlWords[Ctl.INJECT_MARK_DELAY_AT] = inj.markDelayAtObject ?? 0;
  ctlWords[Ctl.INJECT_MARK_DELAY_MS] = inj.markDelayMs ?? 0;
  ctlWords[Ctl.INJECT_MARK_DIE_AT] = inj.markDieAtObject ?? 0;
  ctlWords[Ctl.INJECT_MARK_LOG_DELAY_MS] = inj.markLogDelayMs ?? 0;
}

/**
 * Sets up the words a compaction starts from (in the compaction pause): its counters and
 * clocks zeroed, its plan's size, and the compaction threads' fault injections (read when
 * they enter the cycle).
 */
export function armCompaction(ctlWords: Int32Array, clocks: Float64Array, inj: Readonly<InjectOptions>, segments: number, pagesTotal: number): void {
  ctlWords.fill(0, CtlGroup.counters[0], CtlGroup.counters[1]);
  clocks.fill(0, ClkGroup.compaction[0], ClkGroup.compaction[1]);
  const c = ctlWords;
  c[Ctl.INJECT_EAGAIN_EVERY] = inj.eagainEvery ?? 0;
  c[Ctl.INJECT_DELAY_AT_PAGE] = inj.delayAtPage ?? 0;
  c[Ctl.INJECT_DELAY_MS] = inj.delayMs ?? 0;
  c[Ctl.INJECT_DIE_AT_PAGE] = inj.dieAtPage ?? 0;
  c[Ctl.INJECT_FORK_AT_PAGE] = inj.forkAtPage ?? 0;
  c[Ctl.INJECT_FAULT_DIE_AT_FAULT] = inj.faultDieAtFault ?? 0;
  c[Ctl.INJECT_FAULT_TAKEOVER_DELAY_MS] = inj.faultTakeoverDelayMs ?? 0;
  c[Ctl.INJECT_FAULT_TAKEOVER_AT_FAULT] = inj.faultTakeoverAtFault ?? 0;
  c[Ctl.INJECT_FAULT_HOLD_BUILT_MS] = inj.faultHoldBuiltMs ?? 0;
  c[Ctl.INJECT_FAULT_HOLD_INSTALL_MS] = inj.faultHoldInstallMs ?? 0;
  c[Ctl.INJECT_FAULT_HOLD_MAPPED_MS] = inj.faultHoldMappedMs ?? 0;
  c[Ctl.INJECT_FAULT_HOLD_TIMED_MS] = inj.faultHoldTimedMs ?? 0;
  c[Ctl.INJECT_MARK_HOLD_BUILT_MS] = inj.markHoldBuiltMs ?? 0;
  c[Ctl.INJECT_READ_HOLD_MS] = inj.readHoldMs ?? 0;
  c[Ctl.INJECT_WRITE_HOLD_MS] = inj.writeHoldMs ?? 0;
  c[Ctl.INJECT_WHOLE_HOLD_MAPPED_MS] = inj.wholeHoldMappedMs ?? 0;
  c[Ctl.INJECT_STEP_HOLD_MS] = inj.stepHoldMs ?? 0;
  c[Ctl.SEGMENTS] = segments;
  c[Ctl.PAGES_TOTAL] = pagesTotal;
  c[Ctl.PAGES_MAPPED] = 0;
  c[Ctl.FLUSH_REQUEST] = 0;
}

export const Phase = { IDLE: 0, MARKING: 1, REMARKED: 2, PLANNED: 3, COMPACTING: 4 } as const;

/** Jobs the heap hands the marker thread. */
export const MarkJob = { NONE: 0, MARK: 1, PLAN: 2 } as const;
