/**
 * Concurrent compaction (ART CMC's compaction phase). After the pause, the heap's pages are
 * empty and registered with userfaultfd; this code rebuilds them from from-space.
 *
 *  - The compactor (a Worker) walks the to-space pages in address order, builds each into a
 *    recycled from-space page and installs runs of them with one MOVE per run.
 *  - Any other thread (the fault server, or the mutator finishing a cycle) builds single pages
 *    out of order with {@link Builders.buildOne}; the page-state CAS makes sure that no page
 *    is built twice.
 *
 * Recycling: sliding compaction reads from-space at or above what it writes, so once every
 * to-space page below q is built, every from-space page below q's first source page has been
 * read for the last time. Those pages become the buffers for the next builds, and their
 * physical pages move into the heap: compaction needs no new memory (RSS stays flat).
 * ART walks in reverse for the same effect; walking forward keeps the mutator's likely
 * next pages (the low ones, where the old data lands) ready first.
 */
import fs from 'node:fs';
import { claim, markProcessed, ownerOf, phaseOf, reclaim, unclaim } from './claim.js';
import { Builder, PageBuilder, type RunBuilder } from './build.js';
import { NativePageBuilder } from './build-native.js';
import { Install, type Installer } from './install.js';
import { PAGE_WORDS } from './layout.js';
import { native, PAGE_SIZE } from './native.js';
import { NONE } from './plan.js';
import { Clk, Ctl, Owner, PagePhase, SEG_FIELDS, Seg, now, type OwnerId, type Shared } from './shared.js';

/** Pages per MOVE call at most: bounds how long a built page waits for its run. */
export const MAX_BATCH = 64;
/** Scratch pages (beyond the capacity in the from-space mapping) per builder. */
export const Scratch = { COMPACTOR: 0, FAULT: MAX_BATCH, MUTATOR: MAX_BATCH + 1, PAGES: MAX_BATCH + 2 } as const;
/** Consumed from-space pages kept for reuse before the surplus is released (ART: 8 MiB). */
export const POOL_KEEP_PAGES = 2048;
/** Consumed from-space pages released at once (fewer madvise calls, longer buffer runs). */
const RELEASE_CHUNK_PAGES = 256;
const RSS_SAMPLE_PAGES = 1024;

export function readRss(): number {
  const statm = fs.readFileSync('/proc/self/statm', 'utf8');
  return Number(statm.split(' ')[1]) * PAGE_SIZE;
}

function sampleRss(sh: Shared): void {
  const rss = readRss();
  if (rss > sh.clk[Clk.RSS_PEAK]) sh.clk[Clk.RSS_PEAK] = rss;
}

/** The builders' shared machinery, one per thread. */
export class Builders {
  readonly sh: Shared;
  /** The readable reference builder and its compiled twin; Ctl.BUILDER picks one. */
  readonly jsBuilder: PageBuilder;
  readonly nativeBuilder: NativePageBuilder;
  readonly installer: Installer;
  /** From-space plus scratch, as u32. */
  readonly from: Uint32Array;
  readonly capacityPages: number;

  constructor(sh: Shared, from: Uint32Array, installer: Installer) {
    this.sh = sh;
    this.from = from;
    this.jsBuilder = new PageBuilder(sh, from);
    this.nativeBuilder = new NativePageBuilder(sh, from);
    this.installer = installer;
    this.capacityPages = sh.d.capacity / PAGE_SIZE;
  }

  get builder(): RunBuilder {
    return Atomics.load(this.sh.ctl, Ctl.BUILDER) === Builder.NATIVE ? this.nativeBuilder : this.jsBuilder;
  }

  scratchPage(which: number): number {
    return this.capacityPages + which;
  }

  /** Builds and installs page q alone, into the scratch page given. False if another thread has it. */
  buildOne(q: number, owner: OwnerId, scratch: number, heapDirect?: Uint32Array): boolean {
    const sh = this.sh;
    if (!claim(sh, q, owner)) return false;
    try {
      if (heapDirect) this.builder.buildRun(q, 1, heapDirect, q * PAGE_WORDS * 2);
      else this.builder.buildRun(q, 1, this.from, scratch * PAGE_WORDS * 2);
    } catch (e) {
      unclaim(sh, q, owner);
      throw e;
    }
    if (!markProcessed(sh, q, owner, scratch)) return false;
    sh.count(owner === Owner.FAULT ? Ctl.FAULT_BUILDS : owner === Owner.MUTATOR ? Ctl.MUTATOR_BUILDS : Ctl.COMPACTOR_BUILDS);
    if (heapDirect) this.installer.install(q, scratch, 1);
    else this.installer.installOne(q, scratch);
    return true;
  }

  /**
   * Resolves page q for a thread that needs it now. Returns true once it is mapped;
   * false if another live builder owns it (its install will wake any faulting thread).
   */
  resolve(q: number, me: OwnerId, scratch: number, stallMs: number, heapDirect?: Uint32Array): boolean {
    const sh = this.sh;
    for (;;) {
      const s = Atomics.load(sh.pageState, q);
      const ph = phaseOf(s);
      if (ph === PagePhase.MAPPED) return true;
      if (ph === PagePhase.UNPROCESSED) {
        if (this.buildOne(q, me, scratch, heapDirect)) return true;
        continue;
      }
      const owner = ownerOf(s) as OwnerId;
      if (owner === me) return false;
      if (ph === PagePhase.PROCESSED) Atomics.store(sh.ctl, Ctl.FLUSH_REQUEST, 1);
      if (!this.isStale(owner, stallMs)) return false;
      const took = reclaim(sh, q, owner, me);
      if (took === PagePhase.PROCESSED) {
        sh.count(Ctl.TAKEOVERS);
        this.installer.install(q, sh.pageBuf[q], 1);
        return true;
      }
      if (took === PagePhase.PROCESSING) sh.count(Ctl.TAKEOVERS);
    }
  }

  /** The compactor has walked the whole cycle (or is stale): other threads must finish what is left. */
  compactorGone(stallMs: number): boolean {
    return Atomics.load(this.sh.ctl, Ctl.COMPACTOR_DONE) === Atomics.load(this.sh.ctl, Ctl.CYCLE) || this.isStale(Owner.COMPACTOR, stallMs);
  }

  /** A builder thread is stale when its heartbeat is older than stallMs (stalled or dead). */
  isStale(owner: number, stallMs: number): boolean {
    const hb = owner === Owner.COMPACTOR ? this.sh.clk[Clk.HB_COMPACTOR] : owner === Owner.FAULT ? this.sh.clk[Clk.HB_FAULT] : Infinity;
    return now() - hb > stallMs;
  }

  /** Every page of the cycle, in order, as [first, end) page ranges. */
  *pageRanges(): Generator<[number, number]> {
    const sh = this.sh;
    const n = Atomics.load(sh.ctl, Ctl.SEGMENTS);
    for (let i = 0; i < n; i++) {
      const s = i * SEG_FIELDS;
      yield [sh.segments[s + Seg.FIRST_PAGE], sh.segments[s + Seg.END_PAGE]];
    }
  }

  allMapped(): boolean {
    return Atomics.load(this.sh.ctl, Ctl.PAGES_MAPPED) >= Atomics.load(this.sh.ctl, Ctl.PAGES_TOTAL);
  }
}

/** Test/research hooks that act on the compactor; see inject.ts for the options. */
export interface CompactorHooks {
  onDelay(ms: number): void;
  onDie(): never;
  onFork(): void;
}

/**
 * The compactor's cycle: every page in address order, built into recycled from-space pages
 * and installed in runs. Pages other threads claimed are skipped (they break a run).
 */
export function compactCycle(b: Builders, hooks: CompactorHooks): void {
  const sh = b.sh;
  const install = Atomics.load(sh.ctl, Ctl.INSTALL);
  const recycle = install === Install.MOVE;
  const ranges = [...b.pageRanges()];
  const segs = ranges.map((_, i) => [sh.segments[i * SEG_FIELDS + Seg.START] / PAGE_WORDS, sh.segments[i * SEG_FIELDS + Seg.END] / PAGE_WORDS]);
  const scratch0 = b.scratchPage(Scratch.COMPACTOR);
  const t0 = now();
  sh.clk[Clk.COMPACT_START] = t0;
  sampleRss(sh);

  // The pending run: to-space pages [runQ, runQ+runN) built into buffers [runB, runB+runN).
  let runQ = 0;
  let runB = 0;
  let runN = 0;
  let scratchNext = 0;
  const flush = (): void => {
    if (runN > 0) b.installer.install(runQ, runB, runN);
    runN = 0;
    // scratchNext is NOT reset here: the caller may hold a scratch page it just built into,
    // not yet in the run, which the next takeBuffer() would otherwise hand out again.
  };

  // Recycling state: the lowest page not yet built, and the next from-space page to reuse.
  let ri = 0; // range index of `low`
  let low = ranges.length ? ranges[0][0] : 0;
  let si = 0; // segment index of `reuse`
  let reuse = segs.length ? segs[0][0] : 0;
  let released = reuse; // copy mode: from-space released below this
  const consumedLimit = (): number => {
    for (;;) {
      while (ri < ranges.length && low >= ranges[ri][1]) if (++ri < ranges.length) low = ranges[ri][0];
      if (ri >= ranges.length) return Infinity;
      if (phaseOf(Atomics.load(sh.pageState, low)) < PagePhase.PROCESSED) break;
      low++;
    }
    const first = sh.pageFirst[low];
    // Sources of `low` and every page above it start at its first object (monotone).
    return first === NONE ? low : Math.floor(first / PAGE_WORDS);
  };
  const takeBuffer = (): number => {
    if (recycle) {
      const limit = consumedLimit();
      while (si < segs.length && reuse >= segs[si][1]) if (++si < segs.length) reuse = segs[si][0];
      // Keep a bounded pool; release the surplus so RSS falls as compaction proceeds.
      if (si < segs.length && limit !== Infinity && limit - reuse > POOL_KEEP_PAGES + RELEASE_CHUNK_PAGES) {
        const upTo = Math.min(limit - POOL_KEEP_PAGES, segs[si][1]);
        native.madvise(sh.d.fromAddress + reuse * PAGE_SIZE, (upTo - reuse) * PAGE_SIZE, native.advice.DONTNEED);
        sh.count(Ctl.RELEASED_PAGES, upTo - reuse);
        reuse = upTo;
      }
      if (si < segs.length && reuse < limit) {
        sh.count(Ctl.RECYCLED_BUFFERS);
        return reuse++;
      }
    } else {
      const limit = Math.min(consumedLimit(), segs.length ? segs[segs.length - 1][1] : 0);
      if (limit - released >= RELEASE_CHUNK_PAGES) {
        native.madvise(sh.d.fromAddress + released * PAGE_SIZE, (limit - released) * PAGE_SIZE, native.advice.DONTNEED);
        sh.count(Ctl.RELEASED_PAGES, limit - released);
        released = limit;
      }
    }
    if (scratchNext === MAX_BATCH) {
      flush(); // every scratch page handed out so far is now installed: reuse them
      scratchNext = 0;
    }
    if (recycle) sh.count(Ctl.FRESH_BUFFERS);
    return scratch0 + scratchNext++;
  };

  let delayAt = Atomics.load(sh.ctl, Ctl.INJECT_DELAY_AT_PAGE);
  const dieAt = Atomics.load(sh.ctl, Ctl.INJECT_DIE_AT_PAGE);
  const forkAt = Atomics.load(sh.ctl, Ctl.INJECT_FORK_AT_PAGE);
  let built = 0;
  let busySince = now();
  let busy = 0;
  for (const [first, end] of ranges) {
    for (let q = first; q < end; q++) {
      sh.clk[Clk.HB_COMPACTOR] = now();
      if (Atomics.load(sh.ctl, Ctl.STOP)) return;
      if (built === delayAt - 1 && delayAt > 0) {
        busy += now() - busySince;
        hooks.onDelay(Atomics.load(sh.ctl, Ctl.INJECT_DELAY_MS));
        busySince = now();
        // Once: if other threads build every page from here on, `built` stays put and the
        // delay would otherwise repeat at every page it skips (a stall of pages x delayMs).
        delayAt = 0;
      }
      if (built === dieAt - 1 && dieAt > 0) hooks.onDie();
      if (Atomics.load(sh.ctl, Ctl.FLUSH_REQUEST)) {
        Atomics.store(sh.ctl, Ctl.FLUSH_REQUEST, 0);
        flush();
      }
      if (!claim(sh, q, Owner.COMPACTOR)) {
        flush();
        continue;
      }
      const buf = takeBuffer();
      b.builder.buildRun(q, 1, b.from, buf * PAGE_WORDS * 2);
      if (built === forkAt - 1 && forkAt > 0) hooks.onFork();
      built++;
      if (built % RSS_SAMPLE_PAGES === 0) sampleRss(sh);
      if (!markProcessed(sh, q, Owner.COMPACTOR, buf)) continue; // taken over while we stalled
      sh.count(Ctl.COMPACTOR_BUILDS);
      if (runN > 0 && (q !== runQ + runN || buf !== runB + runN || runN >= MAX_BATCH)) flush();
      if (runN === 0) {
        runQ = q;
        runB = buf;
      }
      runN++;
    }
  }
  flush();
  // Pages reclaimed from us while we stalled went back to UNPROCESSED behind our cursor.
  for (const [first, end] of ranges)
    for (let q = first; q < end; q++)
      if (Atomics.load(sh.pageState, q) === PagePhase.UNPROCESSED) b.buildOne(q, Owner.COMPACTOR, scratch0);
  sampleRss(sh);
  const t1 = now();
  sh.clk[Clk.COMPACTOR_BUSY] = busy + (t1 - busySince);
  sh.clk[Clk.COMPACT_END] = t1;
  sh.clk[Clk.HB_COMPACTOR] = Infinity; // done: never stale
}
