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
 * WHOLE pages (plan.ts, step 6: full pages of a large object kept on a page) need no build:
 * in move mode the compactor installs each long run of them straight from its from-space
 * pages, so MOVE relocates them without touching their bytes. Copy mode builds them like any
 * page: COPY must copy the bytes anyway, and copying from from-space pages measured twice as
 * slow as from the scratch page they are built into (bench --sizes huge: 355 vs 173 ms, the
 * kernel's first touch of each from-space page). Other threads build them like any page:
 * their sources stay intact until the compactor's own install. GAP pages (inside the gap
 * before an object kept on 2 MiB, hugePages) are all zeros: the compactor installs each run
 * of them as the zero page, in every mode but stw; other threads build them (zeros).
 *
 * Spans (move mode with hugePages): an aligned 2 MiB of plain unclaimed pages is built into a
 * huge scratch page and moved in with one call, as one PMD (Builders.buildPmd; the mutator
 * builds the span of a page it touches first the same way, selfservice.ts). The compactor also
 * faults the mutator's huge scratch pages in again as its spans take them away.
 *
 * Recycling: sliding compaction reads from-space at or above what it writes, so once every
 * to-space page below q is installed, every from-space page below q's first source page has
 * been read for the last time (installed, not built: until then a page may be rebuilt from its
 * sources, install.ts). Those pages become the buffers for the next builds, and their
 * physical pages move into the heap: compaction needs no new memory (RSS stays flat). A
 * long object built page by page (a reference array) keeps only its header's page back (the
 * builders read it for every page of the object), not its consumed pages (consumedLimit).
 * ART walks in reverse for the same effect; walking forward keeps the mutator's likely
 * next pages (the low ones, where the old data lands) ready first.
 */
import { Builders, MAX_BATCH, PMD_SCRATCH, RSS_SAMPLE_PAGES, SELF_SPAN_SLOTS, Scratch, releaseFrom, releaseFromSpace, sampleRss } from './builders.js';
import { claim, markProcessed, phaseOf } from './claim.js';
import { Install } from './install.js';
import { PAGE_WORDS, PMD_PAGES } from './layout.js';
import { native, PAGE_SIZE } from './native.js';
import { forward } from './forward.js';
import { NONE } from './plan.js';
import { Clk, Ctl, Owner, PageKind, PagePhase, SEG_FIELDS, Seg, now, schedstat } from './shared.js';
import { Role } from './heartbeat.js';

/** WHOLE pages per call at most (none waits: a run is installed as soon as it is claimed): a PMD's worth (2 MiB). */
export const MAX_WHOLE_RUN = PMD_PAGES;
/**
 * WHOLE runs shorter than this are built like any page. A run installed on its own costs a
 * MOVE call and splits the built pages around it into two runs (a second call); each call
 * flushes the TLB of every CPU running the process, 50-200 us on this VM under load, against
 * about 1-12 us to build a page (its first touch of from-space included). Measured (4-64 KiB
 * arrays, every run taken whole): twice the compaction time of building them.
 */
export const MIN_WHOLE_RUN = 16;
/** Consumed from-space pages kept for reuse before the surplus is released (ART: 8 MiB). */
export const POOL_KEEP_PAGES = 2048;
/**
 * Consumed from-space pages released at once (fewer madvise calls, longer buffer runs). Each
 * call flushes the TLB of the CPU the mutator runs on: 2048 against 256 halved the compactor's
 * release time (quick bench, 3 alternating runs: 22-28 against 47-61 ms in move mode, 33-46
 * against 76-87 in copy) for an RSS peak 0.5-1% higher.
 */
export const RELEASE_CHUNK_PAGES = 2048;

/** Test/research hooks that act on the compactor; see inject.ts for the options. */
export interface CompactorHooks {
  onDelay(ms: number): void;
  onDie(): never;
  onFork(): void;
}

/**
 * The compactor's cycle: every page in address order, in steps of up to MAX_BATCH pages.
 * A step finds contiguous buffers (recycled from-space pages, or scratch), claims the run of
 * pages that fits, builds it with one builder call, and appends it to the pending install
 * run (one MOVE per run). Per-page work is only what must be per page (the claim and the
 * state change); heartbeats, counters, buffer bookkeeping and RSS samples are per step.
 * Pages other threads claimed are skipped (they break a run).
 */
export function compactCycle(b: Builders, hooks: CompactorHooks): void {
  const sh = b.sh;
  const install = Atomics.load(sh.ctl, Ctl.INSTALL);
  const recycle = install === Install.MOVE;
  const huge = Atomics.load(sh.ctl, Ctl.HUGE_PAGES) !== 0;
  const builder = b.builder;
  // Per segment, flat: pages [first, end) to build, from-space pages [start, end) it consumes.
  // Typed arrays, not arrays of pairs: the interpreter and compactCycle's optimized code made
  // those with different maps, so each cycle's optimized code deoptimized on them ('wrong
  // map') and was compiled again, about 100 ms of V8's compiler threads each time.
  const nSegs = Atomics.load(sh.ctl, Ctl.SEGMENTS);
  const ranges = new Int32Array(nSegs * 2); // page indexes
  const segs = new Float64Array(nSegs * 2);
  for (let i = 0; i < nSegs; i++) {
    ranges[2 * i] = sh.segments[i * SEG_FIELDS + Seg.FIRST_PAGE];
    ranges[2 * i + 1] = sh.segments[i * SEG_FIELDS + Seg.END_PAGE];
    segs[2 * i] = sh.segments[i * SEG_FIELDS + Seg.START] / PAGE_WORDS;
    segs[2 * i + 1] = sh.segments[i * SEG_FIELDS + Seg.END] / PAGE_WORDS;
  }
  const scratch0 = b.scratchPage(Scratch.COMPACTOR);
  const sched0 = schedstat();
  const t0 = now();
  sh.clk[Clk.COMPACT_START] = t0;
  sampleRss(sh);
  // Time split (ms): build, install, release; the rest of the busy time is bookkeeping.
  let buildMs = 0;
  let installMs = 0;
  let releaseMs = 0;
  let waitMs = 0;

  // The pending run: to-space pages [runQ, runQ+runN) built into buffers [runB, runB+runN).
  let runQ = 0;
  let runB = 0;
  let runN = 0;
  let scratchNext = 0;
  // Move mode: runs shorter than this go in by COPY from scratch pages (options.moveMinRun:
  // MOVE's TLB flush costs per page up to x86's ceiling of 33, on a virtual machine a trap each).
  const minMoveRun = recycle ? Atomics.load(sh.ctl, Ctl.MOVE_MIN_RUN) : 0;
  let runCopy = false; // the pending run is one of those
  let runLimit = MAX_BATCH; // the pending run's longest length
  const flush = (): void => {
    if (runN > 0) {
      const t = now();
      if (runCopy) b.installer.installShortRun(runQ, runB, runN);
      else b.installer.install(runQ, runB, runN);
      installMs += now() - t;
    }
    runCopy = false;
    runLimit = MAX_BATCH;
    runN = 0;
    // scratchNext is NOT reset here: scratch pages are handed out in order and only reused
    // after every one of them has been installed (see buffers()).
  };
  // A run broken inside a step keeps the step's install: its pages after the break are in the
  // same buffers (a short step's scratch pages are copied, never moved away).
  let stepCopy = false;
  let stepLimit = MAX_BATCH;
  const breakRun = (): void => {
    flush();
    runCopy = stepCopy;
    runLimit = stepLimit;
  };
  const release = (fromPage: number, toPage: number): void => {
    const t = now();
    releaseFrom(sh.d.fromAddress + fromPage * PAGE_SIZE, (toPage - fromPage) * PAGE_SIZE);
    sh.count(Ctl.RELEASED_PAGES, toPage - fromPage);
    releaseMs += now() - t;
  };

  // Recycling state: the lowest page not yet installed, and the next from-space page to reuse.
  // Installed, not built: until a page is in, any thread may have to build it again from its
  // sources (Installer: a page MOVE refused is rebuilt, never copied from its buffer). In a
  // dense heap the pending run's own sources then hold the limit, and the next step goes to
  // scratch pages once; the pool keeps that slack from then on. (Flushing the run instead
  // made runs as short as the slide: 1M live items over 6 pages of garbage, 1172 MOVE calls
  // against 92 and 2.5x the compaction time; this way 93 calls and 64 fresh pages.)
  let ri = 0; // range index of `low`
  let low = nSegs ? ranges[0] : 0;
  let si = 0; // segment index of `reuse`
  let reuse = nSegs ? segs[0] : 0;
  let released = reuse; // copy mode: from-space released below this
  // Move mode: from-space page runs [start, end) that WHOLE installs moved away, in address
  // order; the recycler steps over them (a buffer there would be a fresh page).
  const holes: number[] = [];
  let hi = 0;
  // The header page of a long object the limit has passed into (-1: none): every build of the
  // object's pages reads its header, so that page is neither reused nor released (the
  // recycler steps over it; the cycle's end releases it with the rest of from-space).
  let keep = -1;
  const consumedLimit = (): number => {
    for (;;) {
      while (ri < nSegs && low >= ranges[2 * ri + 1]) if (++ri < nSegs) low = ranges[2 * ri];
      if (ri >= nSegs) return Infinity;
      if (phaseOf(Atomics.load(sh.pageState, low)) < PagePhase.MAPPED) break;
      low++;
    }
    const first = sh.pageFirst[low];
    if (first === NONE) return low;
    // Sources of `low` and every page above it start at its first object (monotone), except
    // that of a long object straddling into `low` only its header and its words from low's
    // first on are still read: the limit passes into it (an audit: one 256 MiB reference
    // array, held at its header, doubled peak RSS).
    const firstPage = Math.floor(first / PAGE_WORDS);
    const dest = forward(sh.chunkNew, sh.live, first);
    const lowStart = low * PAGE_WORDS;
    if (dest >= lowStart) return firstPage;
    const srcPage = Math.floor((first + lowStart - dest) / PAGE_WORDS);
    if (srcPage <= firstPage + 1) return firstPage;
    keep = firstPage;
    return srcPage;
  };
  // Releases [from, to), the kept header page excepted.
  const releaseAround = (from: number, to: number): void => {
    if (keep < from || keep >= to) return release(from, to);
    if (keep > from) release(from, keep);
    if (keep + 1 < to) release(keep + 1, to);
  };
  // Contiguous buffers for the next step: sets bufAt and returns how many (>= 1) there are.
  // Recycled from-space pages lie below every source of the pages not yet installed, so a whole
  // run can be built into them in one call; otherwise the scratch pages.
  let bufAt = 0;
  let bufRecycled = false;
  const advance = (): void => {
    for (;;) {
      while (si < nSegs && reuse >= segs[2 * si + 1]) if (++si < nSegs) reuse = segs[2 * si];
      while (hi < holes.length && holes[hi + 1] <= reuse) hi += 2;
      if (reuse === keep) {
        reuse++;
        continue;
      }
      if (hi >= holes.length || holes[hi] > reuse) return;
      reuse = holes[hi + 1];
    }
  };
  // Move mode: keeps a bounded pool of consumed from-space pages and releases the surplus, so
  // RSS falls as compaction proceeds. Returns the recycling limit.
  const releaseSurplus = (): number => {
    const limit = consumedLimit();
    advance();
    if (si < nSegs && limit !== Infinity && limit - reuse > POOL_KEEP_PAGES + RELEASE_CHUNK_PAGES) {
      const upTo = Math.min(limit - POOL_KEEP_PAGES, segs[2 * si + 1]);
      releaseAround(reuse, upTo);
      reuse = upTo;
      advance();
    }
    return limit;
  };
  const buffers = (): number => {
    if (recycle) {
      const limit = releaseSurplus();
      if (si < nSegs && reuse < limit) {
        bufAt = reuse;
        bufRecycled = true;
        return Math.min(limit, segs[2 * si + 1], hi < holes.length ? holes[hi] : Infinity, keep > reuse ? keep : Infinity) - reuse;
      }
    } else {
      const limit = Math.min(consumedLimit(), nSegs ? segs[2 * nSegs - 1] : 0);
      if (limit - released >= RELEASE_CHUNK_PAGES) {
        releaseAround(released, limit);
        released = limit;
      }
    }
    return scratchBuffers();
  };
  const scratchBuffers = (): number => {
    if (scratchNext === MAX_BATCH) {
      flush(); // every scratch page handed out so far is now installed: reuse them
      scratchNext = 0;
    }
    bufAt = scratch0 + scratchNext;
    bufRecycled = false;
    return MAX_BATCH - scratchNext;
  };

  // inject.wholeHoldMappedMs: the cycle's first WHOLE run held between its MOVE and MAPPED.
  let wholeHold = Atomics.load(sh.ctl, Ctl.INJECT_WHOLE_HOLD_MAPPED_MS);
  b.installer.installed = (whole) => {
    if (!whole || wholeHold <= 0) return;
    hooks.onDelay(wholeHold);
    wholeHold = 0;
  };
  // inject.stepHoldMs: the cycle's first step of built pages held between its claims and its build.
  let stepHold = Atomics.load(sh.ctl, Ctl.INJECT_STEP_HOLD_MS);
  let delayAt = Atomics.load(sh.ctl, Ctl.INJECT_DELAY_AT_PAGE);
  const dieAt = Atomics.load(sh.ctl, Ctl.INJECT_DIE_AT_PAGE);
  const forkAt = Atomics.load(sh.ctl, Ctl.INJECT_FORK_AT_PAGE);
  // A step of at most `cap` pages stops at an injection point, so each fires exactly where it
  // did page by page.
  const stepCap = (built: number, cap: number): number => {
    if (delayAt > 0 && built < delayAt - 1) cap = Math.min(cap, delayAt - 1 - built);
    if (dieAt > 0 && built < dieAt - 1) cap = Math.min(cap, dieAt - 1 - built);
    if (forkAt > 0 && built < forkAt) cap = Math.min(cap, forkAt - built);
    return cap;
  };
  let built = 0;
  // A step took n pages: inject.forkAtPage's fork once `built` reaches it; an RSS sample every
  // RSS_SAMPLE_PAGES pages for steps that build (`sample`: GAP and WHOLE steps only install).
  const counted = (n: number, sample: boolean): void => {
    if (forkAt > 0 && built < forkAt && built + n >= forkAt) hooks.onFork();
    if (sample && Math.floor((built + n) / RSS_SAMPLE_PAGES) !== Math.floor(built / RSS_SAMPLE_PAGES)) sampleRss(sh);
    built += n;
  };
  let busySince = now();
  let busy = 0;
  // From-space page of WHOLE page q: its object's page, shifted as the object is.
  const sourceOf = (q: number): number => {
    const o = sh.pageFirst[q];
    return o / PAGE_WORDS + q - sh.chunkNew[o >>> 6] / PAGE_WORDS;
  };
  // WHOLE pages from q whose sources follow on, counted up to `lim`.
  const wholeAhead = (q: number, lim: number): number => {
    if (sh.pageKind[q] !== PageKind.WHOLE) return 0;
    const src = sourceOf(q);
    let n = 1;
    while (n < lim && sh.pageKind[q + n] === PageKind.WHOLE && sourceOf(q + n) === src + n) n++;
    return n;
  };
  const takeWhole = (q: number, end: number): boolean => recycle && wholeAhead(q, Math.min(MIN_WHOLE_RUN, end - q)) >= MIN_WHOLE_RUN;
  // A step of WHOLE pages from q: claims the run whose sources follow on, installs it at once
  // (its sources must not wait where the recycler will go). Returns how many pages it took.
  const wholeStep = (q: number, cap: number): number => {
    flush();
    const src = sourceOf(q);
    const run = wholeAhead(q, cap);
    let n = 0;
    while (n < run && claim(sh, q + n, Owner.COMPACTOR)) n++;
    let i = 0;
    while (i < n) {
      let k = 0;
      while (i + k < n && markProcessed(sh, q + i + k, Owner.COMPACTOR, src + i + k)) k++;
      if (k > 0) {
        const t = now();
        b.installer.installWhole(q + i, src + i, k);
        installMs += now() - t;
        sh.count(Ctl.WHOLE_PAGES, k);
        sh.count(Ctl.COMPACTOR_BUILDS, k); // resolved by the compactor; `whole` says how
        holes.push(src + i, src + i + k); // (move mode only: see takeWhole)
      }
      i += k + 1; // past a page taken over while we stalled
    }
    return n;
  };
  // Pages from q that steps could claim and build in runs, counted up to `lim`. Claims made
  // after this look are not seen: a run they cut short still moves.
  const ahead = (q: number, end: number, lim: number): number => {
    let n = 0;
    while (n < lim && q + n < end && !isGap(q + n) && !takeWhole(q + n, end) && Atomics.load(sh.pageState, q + n) === PagePhase.UNPROCESSED) n++;
    return n;
  };
  // At a run's start: how long it may be (0: it is short, and goes in by COPY). A stretch of
  // fewer than MAX_BATCH + minMoveRun pages is split in two runs that both move, rather than
  // a full run and a short one (so a heap nobody touches mid-cycle moves every page; below
  // 2 * minMoveRun the first of the two is under the flush ceiling, and moves all the same).
  const runLength = (q: number, end: number): number => {
    if (minMoveRun <= 1) return MAX_BATCH;
    const n = ahead(q, end, MAX_BATCH + minMoveRun);
    if (n < minMoveRun) return 0;
    return n > MAX_BATCH && n < MAX_BATCH + minMoveRun ? n - minMoveRun : MAX_BATCH;
  };
  const isGap = (q: number): boolean => install !== Install.DIRECT && sh.pageKind[q] === PageKind.GAP;
  // Move mode with hugePages: a 2 MiB-aligned span of plain unclaimed pages is built into the
  // huge scratch page and moved in with one call, as one PMD (Builders.buildPmd says why).
  const pmdScratch = b.capacityPages + PMD_SCRATCH.COMPACTOR;
  const pmdBlocks = Atomics.load(sh.ctl, Ctl.PMD_SPANS) !== 0;
  // The mutator's huge scratch pages, faulted in here rather than by its first write in the
  // mutator's span build: a fresh huge page cost 0.18 ms at the median there and 7 ms at p90
  // (quick bench, 90 spans; the VM's host backs new memory on first touch). POPULATE_WRITE
  // maps it without writing, so a span the mutator is building meanwhile is left intact. The
  // bit is cleared once the page is in: until then the mutator prefers the others.
  const selfScratch = sh.d.fromAddress + (b.capacityPages + PMD_SCRATCH.MUTATOR) * PAGE_SIZE;
  const faultInSelfScratch = (): void => {
    if (!pmdBlocks) return;
    const empty = Atomics.load(sh.ctl, Ctl.SELF_SPAN_EMPTY);
    for (let i = 0; i < SELF_SPAN_SLOTS; i++) {
      if ((empty & (1 << i)) === 0) continue;
      try {
        native.madvise(selfScratch + i * PMD_PAGES * PAGE_SIZE, PMD_PAGES * PAGE_SIZE, native.advice.POPULATE_WRITE);
      } catch {
        // Best effort (a kernel before 5.14 refuses the advice): the mutator's write faults it in.
      }
      Atomics.and(sh.ctl, Ctl.SELF_SPAN_EMPTY, ~(1 << i)); // (its time counts as `other`)
    }
  };
  if (pmdBlocks) Atomics.store(sh.ctl, Ctl.SELF_SPAN_EMPTY, (1 << SELF_SPAN_SLOTS) - 1); // the cycle's end released them
  const takePmd = (q: number, end: number): boolean =>
    pmdBlocks && q % PMD_PAGES === 0 && end - q >= PMD_PAGES && stepCap(built, PMD_PAGES) === PMD_PAGES && ahead(q, end, PMD_PAGES) === PMD_PAGES;
  // A step of PMD_PAGES pages from q (takePmd): built into the huge scratch page and moved in
  // as one PMD (Builders.buildPmd). Returns the pages taken.
  const pmdStep = (q: number): number => {
    flush();
    const [b0, i0] = [b.buildMs, b.installMs];
    const n = b.buildPmd(q, Owner.COMPACTOR, pmdScratch, () => {
      sh.hb.beat(Role.COMPACTOR);
      faultInSelfScratch(); // (a span takes ~1.5 ms: the mutator may need its next one sooner)
    });
    sh.count(Ctl.FRESH_BUFFERS, n); // built into the huge scratch page, not a recycled one
    buildMs += b.buildMs - b0;
    installMs += b.installMs - i0;
    releaseSurplus(); // (the from-space these pages consumed)
    return n;
  };
  // A step of GAP pages from q: claims the run, installs it as the zero page in one call
  // straight from PROCESSING (there is no buffer for anyone to install from). A claim taken
  // over meanwhile was rebuilt (zeros) by its taker: the call skips it (EEXIST). Any other
  // refusal throws: this thread dies and is taken over like any failed compactor.
  const gapStep = (q: number, cap: number): number => {
    flush();
    let n = 0;
    while (n < cap && isGap(q + n) && claim(sh, q + n, Owner.COMPACTOR)) n++;
    if (n > 0) {
      const t = now();
      b.installer.installZero(q, n);
      installMs += now() - t;
      sh.count(Ctl.COMPACTOR_BUILDS, n);
    }
    return n;
  };
  for (let r = 0; r < nSegs; r++) {
    for (let q = ranges[2 * r], end = ranges[2 * r + 1]; q < end; ) {
      sh.hb.beat(Role.COMPACTOR);
      if (Atomics.load(sh.ctl, Ctl.STOP)) return;
      if (built === delayAt - 1 && delayAt > 0) {
        const t = now();
        busy += t - busySince;
        hooks.onDelay(Atomics.load(sh.ctl, Ctl.INJECT_DELAY_MS));
        busySince = now();
        waitMs += busySince - t;
        // Once: if other threads build every page from here on, `built` stays put and the
        // delay would otherwise repeat at every page it skips (a stall of pages x delayMs).
        delayAt = 0;
      }
      if (built === dieAt - 1 && dieAt > 0) hooks.onDie();
      faultInSelfScratch();
      if (Atomics.load(sh.ctl, Ctl.FLUSH_REQUEST)) {
        Atomics.store(sh.ctl, Ctl.FLUSH_REQUEST, 0);
        flush();
      }
      if (isGap(q)) {
        const n = gapStep(q, Math.min(end - q, stepCap(built, MAX_WHOLE_RUN)));
        counted(n, false);
        q += Math.max(n, 1); // none: another thread has q
        continue;
      }
      if (takePmd(q, end)) {
        const n = pmdStep(q);
        counted(n, true);
        q += Math.max(n, 1); // none: another thread has q
        continue;
      }
      if (takeWhole(q, end)) {
        // With huge pages a call ends on a 2 MiB boundary: a call that cut a span short
        // would make the kernel split that span's huge page instead of moving its PMD.
        const toPmd = huge ? PMD_PAGES - (q % PMD_PAGES) : MAX_WHOLE_RUN;
        const n = wholeStep(q, Math.min(end - q, stepCap(built, toPmd)));
        counted(n, false);
        q += Math.max(n, 1); // none: another thread has q
        continue;
      }
      // A run that would end before minMoveRun pages is built into scratch pages and copied.
      if (runN > 0 && q !== runQ + runN) flush();
      const limit: number = runN > 0 ? (runCopy ? 0 : runLimit) : runLength(q, end);
      const short: boolean = limit === 0;
      const avail = short ? scratchBuffers() : buffers();
      // The step extends the pending run when its buffers follow on too (its pages do: above).
      // Otherwise the run goes in now, before this step's build, not after it (where the loop
      // below would break it too): a mutator waiting on one of its pages waits one build less.
      if (runN > 0 && (bufAt !== runB + runN || runN >= runLimit)) flush();
      if (runN === 0) {
        runCopy = short;
        runLimit = short ? MAX_BATCH : limit;
      }
      const cap = Math.min(avail, end - q, stepCap(built, runLimit - runN));
      let n = 0;
      // A long WHOLE run, or a GAP page, starts a step of its own.
      while (n < cap && !takeWhole(q + n, end) && !isGap(q + n) && claim(sh, q + n, Owner.COMPACTOR)) n++;
      if (n === 0) {
        flush(); // q belongs to another thread
        q++;
        continue;
      }
      if (stepHold > 0) {
        hooks.onDelay(stepHold);
        stepHold = 0;
      }
      const t = now();
      builder.buildRun(q, n, b.from, bufAt * PAGE_WORDS * 2);
      b.commitMalformed(); // inside COMPACTOR_IN: the cycle's end waits for this walk
      buildMs += now() - t;
      if (bufRecycled) {
        reuse += n;
        sh.count(Ctl.RECYCLED_BUFFERS, n);
      } else {
        scratchNext += n;
        if (recycle && !short) sh.count(Ctl.FRESH_BUFFERS, n);
      }
      counted(n, true);
      let mine = 0;
      stepCopy = runCopy;
      stepLimit = runLimit;
      for (let i = 0; i < n; i++) {
        if (!markProcessed(sh, q + i, Owner.COMPACTOR, bufAt + i)) {
          breakRun(); // taken from us (stalled, or by the mutator mid-step): the run breaks here
          continue;
        }
        mine++;
        if (runN > 0 && (q + i !== runQ + runN || bufAt + i !== runB + runN)) breakRun();
        if (runN === 0) {
          runQ = q + i;
          runB = bufAt + i;
        }
        runN++;
      }
      sh.count(Ctl.COMPACTOR_BUILDS, mine);
      if (runN >= runLimit) flush();
      q += n;
    }
  }
  flush();
  // Pages reclaimed from us while we stalled went back to UNPROCESSED behind our cursor (or
  // were given back by a claim that raced a cycle's end: Builders.fence). Their build and
  // install count in the split too.
  const [b0, i0] = [b.buildMs, b.installMs];
  const builds0 = Atomics.load(sh.ctl, Ctl.COMPACTOR_BUILDS);
  for (let r = 0; r < nSegs; r++)
    for (let q = ranges[2 * r], end = ranges[2 * r + 1]; q < end; q++)
      if (Atomics.load(sh.pageState, q) === PagePhase.UNPROCESSED) b.buildOne(q, Owner.COMPACTOR, scratch0);
  // Built into a scratch page: fresh buffers, as every build counts in one kind of buffer.
  if (recycle) sh.count(Ctl.FRESH_BUFFERS, Atomics.load(sh.ctl, Ctl.COMPACTOR_BUILDS) - builds0);
  buildMs += b.buildMs - b0;
  installMs += b.installMs - i0;
  const walked = now(); // the compaction's end: its last install (what follows is the release)
  sampleRss(sh);
  // Every page installed (usually: the compactor walks them all, and is last): nobody reads
  // from-space again this cycle, so it is given back here, off the mutator's thread.
  if (b.allMapped()) {
    const t = now();
    releaseFromSpace(sh);
    releaseMs += now() - t;
    Atomics.store(sh.ctl, Ctl.FROM_RELEASED, Atomics.load(sh.ctl, Ctl.CYCLE));
  }
  const t1 = now();
  busy += t1 - busySince;
  sh.clk[Clk.COMPACTOR_BUSY] = busy;
  sh.clk[Clk.COMPACTOR_BUILD] = buildMs;
  sh.clk[Clk.COMPACTOR_INSTALL] = installMs;
  sh.clk[Clk.COMPACTOR_RELEASE] = releaseMs;
  sh.clk[Clk.COMPACTOR_OTHER] = Math.max(0, busy - buildMs - installMs - releaseMs);
  sh.clk[Clk.COMPACTOR_WAIT] = waitMs;
  const sched1 = schedstat();
  sh.clk[Clk.COMPACTOR_CPU] = (sched1[0] - sched0[0]) / 1e6;
  sh.clk[Clk.COMPACTOR_QUEUED] = (sched1[1] - sched0[1]) / 1e6;
  sh.clk[Clk.COMPACT_END] = walked;
  sh.hb.idle(Role.COMPACTOR); // done: holds no claim, never stale
}
