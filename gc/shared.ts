/**
 * State shared by the mutator thread and the collector Workers, all in SharedArrayBuffers
 * so that every thread sees the same plan and the same per-page states. Built once per heap
 * (sized to its capacity) and reused by every cycle, so cycles allocate nothing.
 */
import fs from 'node:fs';
import { LOG_CAPACITY } from './barrier.js';
import { PAGE_WORDS } from './layout.js';
import { native } from './native.js';
import { Heartbeats } from './heartbeat.js';

export { Ctl, Clk, Phase, MarkJob, CtlGroup, ClkGroup, resetMarking, armCompaction, armMarking } from './control.js';
import { Ctl, Clk } from './control.js';

/** Page phases (low 2 bits of a page state word); the owner is in the bits above. */
export const PagePhase = { UNPROCESSED: 0, PROCESSING: 1, PROCESSED: 2, MAPPED: 3 } as const;
/** Who claimed a page (the marker only as the last stand-in: marker.ts). */
export const Owner = { NONE: 0, COMPACTOR: 1, FAULT: 2, MUTATOR: 3, MARKER: 4 } as const;
export type OwnerId = (typeof Owner)[keyof typeof Owner];

/**
 * How a to-space page is rebuilt. WHOLE: a slide page that is one from-space page shifted by
 * whole pages; GAP: a slide page inside the gap before an object kept on a 2 MiB boundary, all
 * zeros (plan.ts, step 6).
 */
export const PageKind = { NONE: 0, SLIDE: 1, IDENTITY: 2, WHOLE: 3, GAP: 4 } as const;

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
/**
 * FAULT_US: the fault server's read-to-install time. SELF_STALL_US / HANDLER_STALL_US: the
 * mutator's own stall per touched unbuilt page, on each fault path (selfservice.ts).
 * UNBUILT_READ_US: an accessor's read of an unbuilt page served from from-space (unbuilt-reads.ts),
 * or its write made there (unbuilt-writes.ts).
 */
export const Hist = { FAULT_US: 0, BATCH_PAGES: 1, SELF_STALL_US: 2, HANDLER_STALL_US: 3, UNBUILT_READ_US: 4 } as const;
const HISTS = Object.keys(Hist).length;

export interface SharedDescriptor {
  heapAddress: number;
  fromAddress: number;
  capacity: number;
  /** Pages of the from-space mapping past the capacity: the scratch pages, and the huge scratch pages if the heap builds 2 MiB spans (builders.ts). */
  fromExtraPages: number;
  uffdFd: number;
  uffdFeatures: number;
  /** /proc/self/statm, opened with the heap (readRss): -1 if it could not be. */
  statmFd: number;
  ctl: SharedArrayBuffer;
  clk: SharedArrayBuffer;
  live: SharedArrayBuffer;
  starts: SharedArrayBuffer;
  objects: [SharedArrayBuffer, SharedArrayBuffer];
  logRing: SharedArrayBuffer;
  /** Heartbeats per thread role (heartbeat.ts) and the heap's epoch for them. */
  hb: SharedArrayBuffer;
  hbEpoch: number;
  chunkNew: SharedArrayBuffer;
  pageState: SharedArrayBuffer;
  pageFirst: SharedArrayBuffer;
  pageKind: SharedArrayBuffer;
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
  /**
   * Object-start bitmaps of the heap's layout (every object, live or not yet collected), one
   * per epoch: the allocator sets a bit per object, references are checked against it, and
   * the plan writes the next layout's into the other one.
   */
  readonly objects: [Uint32Array, Uint32Array];
  /** The write barrier's log (barrier.ts). */
  readonly logRing: Uint32Array;
  readonly hb: Heartbeats;
  /** Per 64-word chunk: new word index of its first live word, or IN_PLACE. */
  readonly chunkNew: Uint32Array;
  /** Per to-space page: phase, owner and built buffer in one word (claim.ts). */
  readonly pageState: Int32Array;
  /** Per to-space page: from-space word of the first object overlapping it. */
  readonly pageFirst: Uint32Array;
  readonly pageKind: Uint8Array;
  readonly segments: Float64Array;
  readonly hist: Int32Array;
  readonly types: Int32Array;

  constructor(d: SharedDescriptor) {
    this.d = d;
    this.ctl = new Int32Array(d.ctl);
    this.clk = new Float64Array(d.clk);
    this.live = new Uint32Array(d.live);
    this.starts = new Uint32Array(d.starts);
    this.objects = [new Uint32Array(d.objects[0]), new Uint32Array(d.objects[1])];
    this.logRing = new Uint32Array(d.logRing);
    this.hb = new Heartbeats(d.hb, d.hbEpoch);
    this.chunkNew = new Uint32Array(d.chunkNew);
    this.pageState = new Int32Array(d.pageState);
    this.pageFirst = new Uint32Array(d.pageFirst);
    this.pageKind = new Uint8Array(d.pageKind);
    this.segments = new Float64Array(d.segments);
    this.hist = new Int32Array(d.hist);
    this.types = new Int32Array(d.types);
  }

  static allocate(base: Omit<SharedDescriptor, 'ctl' | 'clk' | 'live' | 'starts' | 'objects' | 'logRing' | 'hb' | 'hbEpoch' | 'chunkNew' | 'pageState' | 'pageFirst' | 'pageKind' | 'segments' | 'hist'>): Shared {
    const words = base.capacity / 8;
    const hb = Heartbeats.allocate();
    const pages = words / PAGE_WORDS;
    const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));
    const sh = new Shared({
      ...base,
      ctl: sab(Ctl.SIZE * 4),
      clk: sab(Clk.SIZE * 8),
      live: sab(words / 8),
      objects: [sab(words / 8 + 4), sab(words / 8 + 4)],
      logRing: sab(LOG_CAPACITY * 4),
      hb: hb.sab,
      hbEpoch: hb.epoch,
      starts: sab(words / 8),
      chunkNew: sab((words / 64) * 4),
      pageState: sab(pages * 4),
      pageFirst: sab(pages * 4),
      pageKind: sab(pages),
      segments: sab(MAX_SEGMENTS * SEG_FIELDS * 8),
      hist: sab(HISTS * HIST_BUCKETS * 4),
    });
    // Issue 11: a page no cycle has planned reads as installed, so that the accessors' check
    // (selfservice.ts) leaves memory above every earlier top alone; plan() sets the pages it plans.
    sh.pageState.fill(PagePhase.MAPPED);
    return sh;
  }

  count(i: number, n = 1): void {
    Atomics.add(this.ctl, i, n);
  }

  /** Adds a sample to histogram `h` (log-linear buckets), standing for `weight` of them. */
  record(h: number, value: number, weight = 1): void {
    Atomics.add(this.hist, h * HIST_BUCKETS + bucketOf(value), weight);
  }
}

/**
 * One access in SAMPLE_EVERY timed, recorded with that weight, so that the histogram's
 * quantiles and count stand for every access: two clock reads (54 ns each on these guests)
 * cost as much as a read of an unbuilt page served from from-space (about 200 ns), which
 * every read of such a page used to pay twice over (unbuilt-reads.ts, unbuilt-writes.ts).
 */
export const SAMPLE_EVERY = 8;
export class SampledClock {
  #left = 1;
  /** At the access's start: its start time if this one is timed, else -1. */
  start(): number {
    if (--this.#left > 0) return -1;
    this.#left = SAMPLE_EVERY;
    return now();
  }
  /** At its end, served: recorded into histogram h if it was timed. */
  done(sh: Shared, h: number, t0: number): void {
    if (t0 >= 0) sh.record(h, (now() - t0) * 1000, SAMPLE_EVERY);
  }
  /** The next access is timed (a new cycle's first, say). */
  reset(): void {
    this.#left = 1;
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

/** This thread's [ns on a CPU, ns runnable waiting for a CPU] so far, or zeros (see CompactorSplit). */
export function schedstat(): [number, number] {
  try {
    const f = fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return [Number(f[0]), Number(f[1])];
  } catch {
    return [0, 0];
  }
}

/** Blocks this thread for ms (fault injection: a stalled collector thread, a held window). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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
