/**
 * Idle-time compaction: time the mutator has to spare (a frame loop between frames calls
 * Heap.idleCompact with the time its next frame starts) goes to the cycle's compaction, on the
 * mutator's own thread, which would otherwise sleep while the compactor has the other CPU.
 *
 * It follows V8's idle-time GC scheduling (Degenbaev et al., "Idle Time Garbage Collection
 * Scheduling", PLDI 2016: the program announces idle periods with a deadline, the collector
 * fits bounded steps into them) applied to ART CMC's compaction phase, whose mutator-side
 * builds exist already (selfservice.ts). Where it departs from the compactor is the order: the
 * compactor walks the heap in address order; idle time builds the pages a program reaches
 * first from its roots, breadth first (ZGC relocates what the roots refer to first for the
 * same reason), so the frames after a flip meet fewer unbuilt pages. When that walk has found
 * everything it may remember (MAX_SEEN objects), it builds from the top of the heap down, the
 * pages the compactor reaches last.
 *
 * It reads a page only once it is installed, holds no claim across calls and moves no object:
 * no reference goes stale. A page another builder holds is skipped (that builder installs it);
 * the object on it is looked at again once the walk has run dry.
 */
import type { Builders } from './builders.js';
import { PAGE_WORDS, refCount } from './layout.js';
import type { SelfService } from './selfservice.js';
import { Clk, Ctl, PagePhase, type Shared } from './shared.js';

/**
 * Objects the walk remembers per cycle. Its memory is typed arrays of fixed size, made at the
 * first call (2 MiB): a Set and a growing array were rehashed and copied inside calls with a
 * deadline (quick bench, 256 MiB: calls of 0.1 ms ending 10-50 ms late).
 */
export const MAX_SEEN = 1 << 17;
/** Slots of the open-addressing set of seen objects: twice MAX_SEEN, so it stays half empty. */
const SEEN_BITS = 18;
const SEEN_SLOTS = 1 << SEEN_BITS;
if (SEEN_SLOTS !== MAX_SEEN * 2) throw new Error('the seen set must be twice MAX_SEEN');
/** Time a 2 MiB span's build and MOVE may take (ms): not begun with less left (1.5 ms at the median here, up to 6-14). */
const SPAN_MS = 3;
/** A page's build and install (ms) until measured: 20-60 us on the mutator's thread here. */
const FIRST_PAGE_MS = 0.05;
/** Objects and reference slots looked at between reads of the clock (about 10-30 us of work). */
const CLOCK_EVERY = 256;

/** What #ready found: the page is in; another builder has it; no time is left to build it. */
const Page = { READY: 0, HELD: 1, LATE: 2 } as const;
type PageReady = (typeof Page)[keyof typeof Page];

export class IdleCompaction {
  readonly #sh: Shared;
  readonly #b: Builders;
  readonly #u32: Uint32Array;
  readonly #types: Int32Array;
  readonly #state: Int32Array;
  readonly #self: SelfService;
  readonly #spans: boolean;
  /** The cycle the walk belongs to (0: none yet). */
  #cycle = 0;
  /**
   * Breadth-first queue of object words, [#head, #tail); objects on held pages, for later (read
   * again once, at the queue's start). Every object is queued once, and again at most once
   * from #later: twice MAX_SEEN entries.
   */
  #queue: Uint32Array | null = null;
  #head = 0;
  #tail = 0;
  /** The head object's next slot to read (a call that ran out of time inside it goes on there). */
  #at = 0;
  #later: number[] = [];
  /** Objects seen this cycle (0: an empty slot; linear probing). */
  #seen: Uint32Array | null = null;
  #seenCount = 0;
  /** The top-down cursor ([first, end) page ranges of the cycle, the range and page it is at). */
  #ranges: [number, number][] = [];
  #range = 0;
  #down = 0;
  /** A page's build and install on this thread, ms (moving average). */
  #pageMs = FIRST_PAGE_MS;

  constructor(sh: Shared, builders: Builders, u32: Uint32Array, self: SelfService) {
    this.#sh = sh;
    this.#b = builders;
    this.#u32 = u32;
    this.#types = sh.types;
    this.#state = sh.pageState;
    this.#self = self;
    this.#spans = Atomics.load(sh.ctl, Ctl.PMD_SPANS) !== 0;
  }

  /** Builds pages until `deadline` (performance.now() ms) or none is left to this thread; how many. */
  run(deadline: number, roots: () => number[]): number {
    const sh = this.#sh;
    if (this.#b.allMapped()) return 0;
    const cycle = Atomics.load(sh.ctl, Ctl.CYCLE);
    if (cycle !== this.#cycle) this.#begin(cycle, roots());
    const t0 = performance.now();
    const before = Atomics.load(sh.ctl, Ctl.IDLE_PAGES);
    try {
      if (!this.#walk(deadline)) this.#topDown(deadline);
    } finally {
      sh.clk[Clk.IDLE_WORK] += performance.now() - t0;
    }
    return Atomics.load(sh.ctl, Ctl.IDLE_PAGES) - before;
  }

  #begin(cycle: number, roots: number[]): void {
    this.#cycle = cycle;
    if (this.#seen === null) {
      this.#seen = new Uint32Array(SEEN_SLOTS);
      this.#queue = new Uint32Array(MAX_SEEN * 2);
    } else if (this.#seenCount > 0) this.#seen.fill(0);
    this.#seenCount = 0;
    this.#head = 0;
    this.#tail = 0;
    this.#at = 0;
    this.#later = [];
    for (const w of roots) this.#note(w);
    this.#ranges = [...this.#b.pageRanges()].filter(([a, e]) => e > a);
    this.#range = this.#ranges.length - 1;
    this.#down = this.#range >= 0 ? this.#ranges[this.#range][1] - 1 : -1;
  }

  /** Queues object w unless seen this cycle (or MAX_SEEN are). */
  #note(w: number): void {
    if (w === 0 || this.#seenCount >= MAX_SEEN) return;
    const seen = this.#seen!;
    for (let i = Math.imul(w, 0x9e3779b1) >>> (32 - SEEN_BITS); ; i = (i + 1) & (SEEN_SLOTS - 1)) {
      const v = seen[i];
      if (v === w) return;
      if (v === 0) {
        seen[i] = w;
        this.#seenCount++;
        this.#queue![this.#tail++] = w;
        return;
      }
    }
  }

  /** Page q installed, by this thread if need be and if time allows. */
  #ready(q: number, deadline: number): PageReady {
    if (this.#state[q] === PagePhase.MAPPED) return Page.READY;
    const t = performance.now();
    const left = deadline - t;
    if (left < (this.#spans ? SPAN_MS : this.#pageMs)) return Page.LATE;
    if (!this.#self.ahead(q, left >= SPAN_MS)) return Page.HELD;
    if (!this.#spans) this.#pageMs = 0.8 * this.#pageMs + 0.2 * (performance.now() - t);
    return Page.READY;
  }

  /**
   * Breadth first from the roots, building each page before reading it. True if time ran out:
   * the object being read stays at the head, to go on from the slot it stopped at.
   */
  #walk(deadline: number): boolean {
    const u32 = this.#u32;
    let retried = false;
    for (let work = 1; ; work++) {
      if (this.#head === this.#tail) {
        if (retried || this.#later.length === 0) return false;
        retried = true; // objects on pages other builders held: once more per call
        this.#queue!.set(this.#later);
        this.#head = 0;
        this.#tail = this.#later.length;
        this.#later = [];
      }
      if (work % CLOCK_EVERY === 0 && performance.now() >= deadline) return true;
      const w = this.#queue![this.#head];
      let r: PageReady = this.#ready(Math.floor(w / PAGE_WORDS), deadline);
      const n = r === Page.READY ? refCount(u32, this.#types, w) : 0;
      // Its reference slots, a page at a time (a long array spans pages past its header's),
      // with the clock read as often as between objects: an array may hold thousands.
      let i = this.#at;
      for (let q = -1; i < n; i++) {
        const s = w * 2 + 2 + i;
        const sq = Math.floor(s / (PAGE_WORDS * 2));
        if (sq !== q && (r = this.#ready(sq, deadline)) !== Page.READY) break;
        q = sq;
        this.#note(u32[s]);
        if (++work % CLOCK_EVERY === 0 && performance.now() >= deadline) {
          r = Page.LATE;
          i++;
          break;
        }
      }
      if (r === Page.LATE) {
        this.#at = i;
        return true;
      }
      this.#at = 0;
      this.#head++;
      if (r === Page.HELD) this.#later.push(w); // read again from its first slot
    }
  }

  /** From the top of the heap down: the pages the compactor, walking up, reaches last. */
  #topDown(deadline: number): void {
    for (let looked = 1; this.#range >= 0; looked++) {
      const [first] = this.#ranges[this.#range];
      if (this.#down < first) {
        if (--this.#range >= 0) this.#down = this.#ranges[this.#range][1] - 1;
        continue;
      }
      if (looked % CLOCK_EVERY === 0 && performance.now() >= deadline) return;
      if (this.#ready(this.#down, deadline) === Page.LATE) return;
      this.#down--;
    }
  }
}
