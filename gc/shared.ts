/**
 * State shared by the mutator thread and the collector Workers, all in SharedArrayBuffers
 * so that every thread sees the same plan and the same per-page states. Built once per heap
 * (sized to its capacity) and reused by every cycle, so cycles allocate nothing.
 */
import { PAGE_WORDS } from './layout.js';
import { native } from './native.js';

/** Indices into the Int32 control block. */
export const Ctl = {
  CYCLE: 0,
  /** Phase of the current cycle, see {@link Phase}. */
  PHASE: 1,
  SEGMENTS: 2,
  /** Pages to build this cycle, and how many are installed. */
  PAGES_TOTAL: 3,
  PAGES_MAPPED: 4,
  /** Set by a fault server when the page it needs sits in the compactor's unflushed batch. */
  FLUSH_REQUEST: 5,
  /** Set when the heap closes: workers exit. */
  STOP: 6,
  FAULTS: 7,
  MOVE_CALLS: 8,
  PAGES_MOVED: 9,
  PAGES_COPIED: 10,
  COPY_CALLS: 11,
  EBUSY: 12,
  EEXIST: 13,
  EAGAIN: 14,
  ENOENT: 15,
  /** Pages built into fresh scratch because no recycled from-space page was free. */
  FRESH_BUFFERS: 16,
  RECYCLED_BUFFERS: 17,
  TAKEOVERS: 18,
  ERRORS: 19,
  /** The install method of this cycle (see Install in compact.ts). */
  INSTALL: 20,
  /** Pages the fault server built ahead of the background order. */
  FAULT_BUILDS: 21,
  MUTATOR_BUILDS: 22,
  EBUSY_COPIES: 23,
  // Fault injection, off (0) by default; see inject.ts.
  INJECT_EAGAIN_EVERY: 24,
  INJECT_DELAY_AT_PAGE: 25,
  INJECT_DELAY_MS: 26,
  INJECT_DIE_AT_PAGE: 27,
  INJECT_FORK_AT_PAGE: 28,
  /** Pages the compactor itself built. */
  COMPACTOR_BUILDS: 29,
  RELEASED_PAGES: 30,
  /** The cycle the compactor is working on, 0 when it is outside any cycle. */
  COMPACTOR_IN: 31,
  /** The last cycle the compactor finished walking (pages reclaimed behind it may remain). */
  COMPACTOR_DONE: 32,
  /** A child forked by the forkAtPage injection, held until the cycle ends: pid (0: none) and pipe fd. */
  FORK_PID: 33,
  FORK_FD: 34,
  /** The cycle in which the compactor threw (its Worker is dying), 0 if none. */
  COMPACTOR_FAILED: 35,
  /** How single pages built for a fault (or by the mutator) are installed, see FaultInstall. */
  FAULT_INSTALL: 36,
  /**
   * Faults the fault server has read but not yet served and timed. The cycle's statistics
   * wait for it to drain (a fault served after the cycle's end would be lost from them).
   * Not reset per cycle.
   */
  FAULTS_IN_FLIGHT: 37,
  /**
   * The cycle the heap is finishing (all pages installed). A compactor that announces itself
   * in COMPACTOR_IN for this cycle only now backs out: the heap stores this, then reads
   * COMPACTOR_IN; the compactor stores COMPACTOR_IN, then reads this (one sees the other).
   */
  CLOSING_CYCLE: 38,
  /** Which page builder every thread uses: Builder.JS or Builder.NATIVE (build.ts). Set by the heap at create. */
  BUILDER: 39,
  SIZE: 40,
} as const;

export const Phase = { IDLE: 0, COMPACTING: 1 } as const;

/** Indices into the Float64 clock block (absolute ms, see now()). */
export const Clk = {
  HB_COMPACTOR: 0,
  HB_FAULT: 1,
  COMPACT_START: 2,
  COMPACT_END: 3,
  RSS_PEAK: 4,
  /** Compactor busy time this cycle (ms), excluding waits. */
  COMPACTOR_BUSY: 5,
  FAULT_BUSY: 6,
  /** The compactor's time split this cycle (ms, see CycleStats.compactor): written at its end. */
  COMPACTOR_BUILD: 7,
  COMPACTOR_INSTALL: 8,
  COMPACTOR_RELEASE: 9,
  COMPACTOR_OTHER: 10,
  COMPACTOR_WAIT: 11,
  /** The compactor thread's time on a CPU and runnable but waiting for one (schedstat). */
  COMPACTOR_CPU: 12,
  COMPACTOR_QUEUED: 13,
  SIZE: 14,
} as const;

/** Page phases (low 2 bits of a page state word); the owner is in the bits above. */
export const PagePhase = { UNPROCESSED: 0, PROCESSING: 1, PROCESSED: 2, MAPPED: 3 } as const;
/** Who claimed a page. */
export const Owner = { NONE: 0, COMPACTOR: 1, FAULT: 2, MUTATOR: 3 } as const;
export type OwnerId = (typeof Owner)[keyof typeof Owner];

/** How a to-space page is rebuilt. */
export const PageKind = { NONE: 0, SLIDE: 1, IDENTITY: 2 } as const;

/**
 * Per-segment record (a segment is a run of the heap between pinned spans, compacted on its
 * own): START..END old words; IDENT_END: end of its in-place (dense prefix) part, where
 * sliding starts; NEW_END: end of its live data after compaction; FILLER_END: where the
 * filler written at NEW_END stops; FIRST_PAGE..END_PAGE: the to-space pages to build;
 * END_EXT: END, or the end of a sliding object that straddles END into a pinned span.
 */
export const Seg = { START: 0, END: 1, IDENT_END: 2, NEW_END: 3, FILLER_END: 4, FIRST_PAGE: 5, END_PAGE: 6, END_EXT: 7 } as const;
export const SEG_FIELDS = 8;
export const MAX_SEGMENTS = 4096;

/** Histogram: log-linear buckets, 16 per power of two, of microseconds. */
export const HIST_BUCKETS = 512;
export const Hist = { FAULT_US: 0, BATCH_PAGES: 1 } as const;

export interface SharedDescriptor {
  heapAddress: number;
  fromAddress: number;
  capacity: number;
  scratchPages: number;
  uffdFd: number;
  uffdFeatures: number;
  ctl: SharedArrayBuffer;
  clk: SharedArrayBuffer;
  live: SharedArrayBuffer;
  starts: SharedArrayBuffer;
  chunkNew: SharedArrayBuffer;
  pageState: SharedArrayBuffer;
  pageFirst: SharedArrayBuffer;
  pageKind: SharedArrayBuffer;
  pageBuf: SharedArrayBuffer;
  segments: SharedArrayBuffer;
  hist: SharedArrayBuffer;
  types: SharedArrayBuffer;
}

export class Shared {
  readonly d: SharedDescriptor;
  readonly ctl: Int32Array;
  readonly clk: Float64Array;
  /** Live-words bitmap: every word of every live object (ART's live_words_bitmap_). */
  readonly live: Uint32Array;
  /** Object-start bitmap of live objects (ART's mark bitmap). */
  readonly starts: Uint32Array;
  /** Per 64-word chunk: new word index of its first live word, or IN_PLACE. */
  readonly chunkNew: Uint32Array;
  readonly pageState: Int32Array;
  /** Per to-space page: from-space word of the first object overlapping it. */
  readonly pageFirst: Uint32Array;
  readonly pageKind: Uint8Array;
  /** Per to-space page: from-space page holding its built contents while PROCESSED. */
  readonly pageBuf: Int32Array;
  readonly segments: Float64Array;
  readonly hist: Int32Array;
  readonly types: Int32Array;

  constructor(d: SharedDescriptor) {
    this.d = d;
    this.ctl = new Int32Array(d.ctl);
    this.clk = new Float64Array(d.clk);
    this.live = new Uint32Array(d.live);
    this.starts = new Uint32Array(d.starts);
    this.chunkNew = new Uint32Array(d.chunkNew);
    this.pageState = new Int32Array(d.pageState);
    this.pageFirst = new Uint32Array(d.pageFirst);
    this.pageKind = new Uint8Array(d.pageKind);
    this.pageBuf = new Int32Array(d.pageBuf);
    this.segments = new Float64Array(d.segments);
    this.hist = new Int32Array(d.hist);
    this.types = new Int32Array(d.types);
  }

  static allocate(base: Omit<SharedDescriptor, 'ctl' | 'clk' | 'live' | 'starts' | 'chunkNew' | 'pageState' | 'pageFirst' | 'pageKind' | 'pageBuf' | 'segments' | 'hist'>): Shared {
    const words = base.capacity / 8;
    const pages = words / PAGE_WORDS;
    const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));
    return new Shared({
      ...base,
      ctl: sab(Ctl.SIZE * 4),
      clk: sab(Clk.SIZE * 8),
      live: sab(words / 8),
      starts: sab(words / 8),
      chunkNew: sab((words / 64) * 4),
      pageState: sab(pages * 4),
      pageFirst: sab(pages * 4),
      pageKind: sab(pages),
      pageBuf: sab(pages * 4),
      segments: sab(MAX_SEGMENTS * SEG_FIELDS * 8),
      hist: sab(2 * HIST_BUCKETS * 4),
    });
  }

  count(i: number, n = 1): void {
    Atomics.add(this.ctl, i, n);
  }

  /** Adds a sample to histogram `h` (log-linear buckets). */
  record(h: number, value: number): void {
    Atomics.add(this.hist, h * HIST_BUCKETS + bucketOf(value), 1);
  }
}

/**
 * Lets the child forked by the forkAtPage injection exit and reaps it, once (whichever thread
 * gets there first: the compactor at the end of its cycle, or the heap after terminating a
 * stalled compactor).
 */
export function releaseForkedChild(sh: Shared): void {
  const pid = Atomics.exchange(sh.ctl, Ctl.FORK_PID, 0);
  if (pid !== 0) native.pin.release(pid, Atomics.load(sh.ctl, Ctl.FORK_FD));
}

/** Absolute milliseconds, comparable across threads (each thread has its own timeOrigin). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Log-linear bucket: values < 16 get their own bucket; above, 16 buckets per power of two. */
export function bucketOf(v: number): number {
  if (!(v > 0)) return 0;
  if (v < 16) return Math.floor(v);
  const e = Math.floor(Math.log2(v));
  const sub = Math.floor((v / 2 ** e - 1) * 16);
  return Math.min(HIST_BUCKETS - 1, 16 + (e - 4) * 16 + sub);
}

/** Lower bound of a bucket (inverse of bucketOf). */
export function bucketValue(b: number): number {
  if (b < 16) return b;
  const e = 4 + Math.floor((b - 16) / 16);
  const sub = (b - 16) % 16;
  return 2 ** e * (1 + sub / 16);
}
