/**
 * The machinery every builder thread shares (compactor, fault server, marker standing in,
 * mutator): its view of from-space and the scratch pages after it, the page builder (the
 * TypeScript reference or its compiled twin), the installer, and the single-page build,
 * takeover and staleness rules that let any thread resolve any page (ART CMC's
 * moving_pages_status_ protocol: claim.ts). The compactor's own walk is compact.ts.
 */
import fs from 'node:fs';
import { allMapped, claim, markProcessed, ownerOf, phaseOf, reclaim, unclaim, bufferOf } from './claim.js';
import { Builder, PageBuilder, commitMalformed, type RunBuilder } from './build.js';
import { NativePageBuilder } from './build-native.js';
import type { Installer } from './install.js';
import { HEAP_ALIGN, PAGE_WORDS, PMD_PAGES } from './layout.js';
import { MAX_VIEW_BYTES } from './memory.js';
import { native, PAGE_SIZE } from './native.js';
import { Clk, Ctl, Owner, PagePhase, Phase, SEG_FIELDS, Seg, now, type OwnerId, type Shared } from './shared.js';
import { Role, type RoleId } from './heartbeat.js';

/** Pages per MOVE call at most: bounds how long a built page waits for its run. */
export const MAX_BATCH = 64;
/** Which REBUILD page each installing thread owns (Installer's rebuilds). */
export const RebuildPage = { compactor: 0, fault: 1, marker: 2, mutator: 3 } as const;
export type Installing = keyof typeof RebuildPage;
/**
 * Scratch pages (beyond the capacity in the from-space mapping) per builder, in this order
 * and of these sizes; REBUILD: one private page per installing thread.
 */
const SCRATCH_SIZES = { COMPACTOR: MAX_BATCH, FAULT: 1, MUTATOR: 1, SELF: 1, MARKER: 1, REBUILD: Object.keys(RebuildPage).length } as const;
export const Scratch = scratchLayout(SCRATCH_SIZES);
/**
 * The mutator's huge scratch pages: it takes one per span it builds (the MOVE takes the huge
 * page away), and the compactor faults the next ones in off its thread (compact.ts). After a
 * flip the mutator builds spans back to back: with one, it found it not yet faulted in for 23-57
 * of 71-105 spans (two quick runs), each a fresh huge page's fault (p90 5 ms) in its stop.
 */
export const SELF_SPAN_SLOTS = 3;
/**
 * The huge scratch pages (move mode with hugePages; Builders.buildPmd): the compactor's, then
 * the mutator's, each 2 MiB after the capacity's first 2 MiB (the scratch pages above) in the
 * from-space mapping, so aligned, advised MADV_HUGEPAGE.
 */
export const PMD_SCRATCH = { COMPACTOR: PMD_PAGES, MUTATOR: 2 * PMD_PAGES } as const;
if (Scratch.PAGES > PMD_PAGES) throw new Error('the scratch pages overlap the huge scratch pages');
/** The huge scratch pages' bytes. */
export const PMD_SCRATCH_BYTES = (1 + SELF_SPAN_SLOTS) * HEAP_ALIGN;

/**
 * From-space's mapping and views past the capacity: the scratch pages (2 MiB), then the huge
 * scratch pages if the heap builds 2 MiB spans and they fit: a view is a Uint32Array, at most
 * MAX_VIEW_BYTES, so a heap within 10 MiB of it builds none.
 */
export function fromExtraBytes(capacity: number, spans: boolean): number {
  return spans && capacity + HEAP_ALIGN + PMD_SCRATCH_BYTES <= MAX_VIEW_BYTES ? HEAP_ALIGN + PMD_SCRATCH_BYTES : HEAP_ALIGN;
}

function scratchLayout<K extends string>(sizes: Readonly<Record<K, number>>): Readonly<Record<K | 'PAGES', number>> {
  const at = {} as Record<K | 'PAGES', number>;
  let next = 0;
  for (const k of Object.keys(sizes) as K[]) {
    at[k] = next;
    next += sizes[k];
  }
  at.PAGES = next;
  return at;
}

/** Each builder's count of pages built, by owner (anything else is counted as the compactor's). */
const BUILDS_OF: Readonly<Record<number, number>> = { [Owner.FAULT]: Ctl.FAULT_BUILDS, [Owner.MUTATOR]: Ctl.MUTATOR_BUILDS, [Owner.MARKER]: Ctl.MARKER_BUILDS };
/** The heartbeat that says whether a claim's owner still lives (the mutator has none: see isStale). */
const HEARTBEAT_OF: Readonly<Record<number, RoleId>> = { [Owner.COMPACTOR]: Role.COMPACTOR, [Owner.FAULT]: Role.FAULT, [Owner.MARKER]: Role.MARKER };

/**
 * Fault injection inside one page build: called once claimed, once built, and once inside
 * the install (after the thread said which cycle it installs for: Builders.installWord).
 */
export type BuildHook = (stage: 'claimed' | 'built' | 'installing' | 'mapped' | 'timed') => void;

/**
 * Fault injection: a thread descheduled with a built page in hand. Once per cycle, at a stage
 * that has a control word in `words` (its value: how long, ms), the thread holds, without
 * beating, until that time is up or a later cycle compacts. `sleep`: the thread's delay hook.
 */
export function injectedHold(b: Builders, words: Partial<Record<'built' | 'installing' | 'mapped' | 'timed', number>>, sleep: (ms: number) => void): BuildHook {
  const ctl = b.sh.ctl;
  let held = -1; // the cycle whose hold was served
  return (stage) => {
    const word = stage === 'claimed' ? undefined : words[stage];
    const ms = word === undefined ? 0 : Atomics.load(ctl, word);
    const c = b.fence;
    if (ms <= 0 || held === c) return;
    held = c;
    const until = now() + ms;
    while (now() < until && (Atomics.load(ctl, Ctl.CYCLE) === c || Atomics.load(ctl, Ctl.PHASE) !== Phase.COMPACTING)) sleep(1);
  };
}

/**
 * Resident set size in bytes, read in place from the heap's /proc/self/statm descriptor
 * (heap-memory.ts; any thread may pread it): a statistic must not need a new descriptor
 * mid-cycle (with the process out of them, EMFILE failed cycles and killed the compactor: a
 * resource-edge audit). Best effort: 0 if it cannot be read.
 */
export function readRss(sh: Shared): number {
  try {
    const buf = Buffer.alloc(128);
    const n = fs.readSync(sh.d.statmFd, buf, 0, buf.length, 0);
    const rss = Number(buf.toString('latin1', 0, n).split(' ')[1]) * PAGE_SIZE;
    return Number.isFinite(rss) ? rss : 0;
  } catch {
    return 0;
  }
}

/**
 * Gives from-space pages [address, address + length) back (MADV_DONTNEED). A program that
 * mlock()ed part of its heap had the lock carried to from-space by the pause's mremap (the
 * kernel moves VM_LOCKED with the pages; the heap's range loses it, as any range mremap
 * empties does), and DONTNEED refuses locked memory (EINVAL): that killed the compactor and
 * failed the cycle (a kernel-edge audit). Those pages are the heap's own now: unlocked, then
 * given back.
 */
export function releaseFrom(address: number, length: number): void {
  try {
    native.madvise(address, length, native.advice.DONTNEED);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EINVAL') throw e;
    native.munlock(address, length);
    native.madvise(address, length, native.advice.DONTNEED);
  }
}

/** Gives back all of from-space and its scratch pages: every page of the cycle is installed, nobody reads them. */
export function releaseFromSpace(sh: Shared): void {
  releaseFrom(sh.d.fromAddress, sh.d.capacity + sh.d.fromExtraPages * PAGE_SIZE);
}

/** Pages built between two RSS samples (the statistics' peak; one statm read each). */
export const RSS_SAMPLE_PAGES = 1024;

export function sampleRss(sh: Shared): void {
  const rss = readRss(sh);
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

  constructor(sh: Shared, from: Uint32Array, installer: Installer, thread: Installing) {
    this.sh = sh;
    this.from = from;
    this.jsBuilder = new PageBuilder(sh, from);
    this.nativeBuilder = new NativePageBuilder(sh, from);
    this.installer = installer;
    this.capacityPages = sh.d.capacity / PAGE_SIZE;
    const own = this.scratchPage(Scratch.REBUILD + RebuildPage[thread]);
    installer.rebuildWith(
      (q) => {
        this.builder.buildRun(q, 1, from, own * PAGE_WORDS * 2);
        sh.count(Ctl.REBUILDS);
        return own;
      },
      // Its tally counts only if its copy put the page in: then the page was not installed
      // during the rebuild, and its sources were intact. A copy that met the page installed
      // (the mutator helping, descheduled mid-rebuild while the owner installed it and the
      // compactor recycled or released its sources) read other pages' bytes or zeros, and
      // the page that went in was another build's, which counted for itself.
      (installed) => (installed ? this.commitMalformed() : this.dropMalformed()),
    );
  }

  /**
   * What this thread's builds found malformed goes into the cycle's counters (build.ts
   * MalformedTally). Called only where the build is the cycle's own: inside an install
   * (enterInstall), or on a thread the cycle's end waits for (the compactor in COMPACTOR_IN,
   * the mutator, the pause), and for a rebuild only once its copy went in (Installer
   * #copyPrivate). A build thrown away is forgotten (dropMalformed): a thread that slept
   * through the end of its cycle may have read the next plan's tables half written, and a
   * rebuild of a page installed meanwhile may have read from-space the compactor had
   * recycled or released since.
   */
  commitMalformed(): void {
    commitMalformed(this.sh, this.jsBuilder);
    commitMalformed(this.sh, this.nativeBuilder);
  }

  dropMalformed(): void {
    for (const b of [this.jsBuilder, this.nativeBuilder]) b.malformed = b.malformedFirst = 0;
  }

  get builder(): RunBuilder {
    return Atomics.load(this.sh.ctl, Ctl.BUILDER) === Builder.NATIVE ? this.nativeBuilder : this.jsBuilder;
  }

  scratchPage(which: number): number {
    return this.capacityPages + which;
  }

  /**
   * The cycle this thread builds for (0: unfenced, for threads fenced otherwise: the compactor
   * by COMPACTOR_IN and CLOSING_CYCLE, the mutator by running the cycle's end itself). The next
   * cycle's plan writes its page states before its flip; a thread descheduled across the end
   * of its cycle (the fault server, the marker standing in) would otherwise claim those pages
   * and build them from a plan still being written: a claim made once its cycle has ended is
   * given back (checked after the claim, so no end can slip between check and claim).
   */
  fence = 0;
  /**
   * The control word in which this thread says which cycle it installs for, or -1. The fence
   * above checks a claim, but a thread descheduled between its build (or its takeover of a
   * stale thread's built page) and the install could wake after a taker installed the page,
   * the cycle ended and the next one flipped: its install would then put a page of the old
   * layout into the new to-space and mark the new page mapped. The fault server says so in
   * Ctl.FAULT_INSTALL_IN, which the cycle's end waits for (compaction-end.ts, cycle.ts), as
   * it waits for COMPACTOR_IN. (The marker standing in has no word, only the check: the next
   * cycle's plan is its own next job, see standin.ts.)
   */
  installWord = -1;
  /** This thread's time building and installing pages one at a time (buildOne), ms. */
  buildMs = 0;
  installMs = 0;

  /**
   * Whether cycle c is the one compacting now, with pages left to build. Not once it is
   * closing (CLOSING_CYCLE: every page is in): the flip of the next cycle publishes its phase
   * before its number, and in between CYCLE and PHASE read "cycle c compacts" while the page
   * states are already the next plan's. A thread fenced to c that looked then took over the
   * next cycle's pages (COMPACTOR_DONE still equals CYCLE), built one, and could not install it
   * (its cycle was closing): the page stayed PROCESSED under a live owner and the cycle never
   * ended (found by a race audit; inject.flipGapMs widens that window).
   */
  #inCycle(c: number): boolean {
    const ctl = this.sh.ctl;
    return Atomics.load(ctl, Ctl.CYCLE) === c && Atomics.load(ctl, Ctl.PHASE) === Phase.COMPACTING && Atomics.load(ctl, Ctl.CLOSING_CYCLE) !== c;
  }

  /** This thread is fenced to a cycle that is no longer the one compacting (see fence). */
  #fencedOut(): boolean {
    return this.fence !== 0 && !this.#inCycle(this.fence);
  }

  /**
   * Enters an install for this thread's cycle: false once that cycle is closing (every page
   * is in, so a page this thread holds was taken over and installed) or over. The store comes
   * before the loads, as the cycle's end stores CLOSING_CYCLE before it loads the word: one
   * of the two sees the other.
   */
  #enterInstall(): boolean {
    if (this.fence === 0) return true;
    const ctl = this.sh.ctl;
    if (this.installWord >= 0) Atomics.store(ctl, this.installWord, this.fence);
    if (this.#inCycle(this.fence)) return true;
    this.#leaveInstall();
    return false;
  }

  #leaveInstall(): void {
    if (this.installWord >= 0) Atomics.store(this.sh.ctl, this.installWord, 0);
  }

  /**
   * Builds the 2 MiB-aligned span [q, q + PMD_PAGES) into the huge scratch page at buf
   * (PMD_SCRATCH) and moves it in with one call: the kernel moves a huge page as one PMD.
   * A page installed alone by MOVE or COPY costs its first toucher about 8 us on this VM (the
   * kernel floor's `installed`), a page of a PMD moved in 40 ns (`installed.pmd`), and the call
   * under 0.1 us a page. COPY cannot install a huge page: move mode only. Claims stop at a
   * page another thread has; what was claimed then goes in by COPY from the huge page, which
   * stays for the next span. A page taken over meanwhile (this thread stalled) is installed
   * twice, the second refused (EEXIST): the same bytes. Returns how many pages it claimed.
   */
  buildPmd(q: number, owner: OwnerId, buf: number, beat?: () => void): number {
    const sh = this.sh;
    let n = 0;
    while (n < PMD_PAGES && claim(sh, q + n, owner)) n++;
    if (n > 0 && this.#fencedOut()) {
      for (let i = 0; i < n; i++) unclaim(sh, q + i, owner);
      return 0;
    }
    const t0 = now();
    try {
      for (let i = 0; i < n; i += MAX_BATCH) {
        beat?.();
        this.builder.buildRun(q + i, Math.min(MAX_BATCH, n - i), this.from, (buf + i) * PAGE_WORDS * 2);
      }
    } catch (e) {
      this.dropMalformed();
      for (let i = 0; i < n; i++) unclaim(sh, q + i, owner);
      throw e;
    }
    const t1 = now();
    this.buildMs += t1 - t0;
    // Installed straight from PROCESSING: a PROCESSED page would invite a waiting mutator to
    // copy it in from the huge page first (selfservice.ts #help), which splits the span.
    sh.count(BUILDS_OF[owner] ?? Ctl.COMPACTOR_BUILDS, n);
    if (n === 0 || !this.#enterInstall()) {
      this.dropMalformed();
      return n; // its cycle is closing: taken over and installed
    }
    try {
      this.commitMalformed();
      if (n === PMD_PAGES) this.installer.installPmd(q, buf, owner === Owner.MUTATOR);
      else if (owner === Owner.MUTATOR) this.installer.installSpanPart(q, buf, n);
      else this.installer.installScratchRun(q, buf, n);
    } finally {
      this.#leaveInstall();
    }
    this.installMs += now() - t1;
    return n;
  }

  /** Builds and installs page q alone, into the scratch page given. False if another thread has it. */
  buildOne(q: number, owner: OwnerId, scratch: number, heapDirect?: Uint32Array, hook?: BuildHook): boolean {
    const sh = this.sh;
    if (!claim(sh, q, owner)) return false;
    if (this.#fencedOut()) {
      unclaim(sh, q, owner);
      return false;
    }
    const t0 = now();
    try {
      hook?.('claimed');
      if (heapDirect) this.builder.buildRun(q, 1, heapDirect, q * PAGE_WORDS * 2);
      else this.builder.buildRun(q, 1, this.from, scratch * PAGE_WORDS * 2);
    } catch (e) {
      this.dropMalformed();
      unclaim(sh, q, owner);
      throw e;
    }
    const t1 = now();
    this.buildMs += t1 - t0;
    if (!markProcessed(sh, q, owner, scratch)) {
      this.dropMalformed();
      return false;
    }
    sh.count(BUILDS_OF[owner] ?? Ctl.COMPACTOR_BUILDS);
    hook?.('built');
    if (!this.#enterInstall()) {
      this.dropMalformed();
      return false; // taken over and installed meanwhile: see installWord
    }
    try {
      this.commitMalformed();
      hook?.('installing');
      if (heapDirect) this.installer.install(q, scratch, 1);
      else this.installer.installOne(q, scratch);
    } finally {
      this.#leaveInstall();
    }
    this.installMs += now() - t1;
    return true;
  }

  /**
   * Resolves page q for a thread that needs it now. Returns true once it is mapped;
   * false if another live builder owns it (its install will wake any faulting thread).
   */
  resolve(q: number, me: OwnerId, scratch: number, stallMs: number, heapDirect?: Uint32Array, hook?: BuildHook): boolean {
    const sh = this.sh;
    for (;;) {
      if (this.#fencedOut()) return false; // its cycle ended: see fence
      const s = Atomics.load(sh.pageState, q);
      const ph = phaseOf(s);
      if (ph === PagePhase.MAPPED) return true;
      if (ph === PagePhase.UNPROCESSED) {
        if (this.buildOne(q, me, scratch, heapDirect, hook)) return true;
        continue;
      }
      const owner = ownerOf(s) as OwnerId;
      if (owner === me && !this.isStale(owner, stallMs)) return false;
      if (ph === PagePhase.PROCESSED) Atomics.store(sh.ctl, Ctl.FLUSH_REQUEST, 1);
      if (!this.isStale(owner, stallMs)) return false;
      const took = reclaim(sh, q, owner, me);
      if (took < 0) continue;
      sh.count(Ctl.TAKEOVERS);
      if (phaseOf(took) === PagePhase.PROCESSED) {
        if (!this.#enterInstall()) continue; // its cycle is closing or over: see installWord
        try {
          this.installer.install(q, bufferOf(took), 1);
        } finally {
          this.#leaveInstall();
        }
        return true;
      }
    }
  }

  /**
   * The compactor has walked the whole cycle (or is stale): other threads must finish what is
   * left. Cycle 0 is none: inside a heap's first flip (PHASE published, CYCLE not yet bumped)
   * COMPACTOR_DONE's initial 0 would otherwise read as a walk finished, and a fault server with
   * no fence yet took the new plan's pages over from a live compactor.
   */
  compactorGone(stallMs: number): boolean {
    const c = Atomics.load(this.sh.ctl, Ctl.CYCLE);
    return (c !== 0 && Atomics.load(this.sh.ctl, Ctl.COMPACTOR_DONE) === c) || this.isStale(Owner.COMPACTOR, stallMs);
  }

  /** A builder thread is stale when its heartbeat is older than stallMs (stalled or dead). */
  isStale(owner: number, stallMs: number): boolean {
    const role = HEARTBEAT_OF[owner];
    if (role !== undefined) return this.sh.hb.isStale(role, stallMs);
    // The mutator holds a claim across no call of its own, except a page whose install failed
    // in self-service: it then gives the cycle's claims up (selfservice.ts).
    const abandoned = Atomics.load(this.sh.ctl, Ctl.SELF_ABANDONED);
    return abandoned !== 0 && abandoned === Atomics.load(this.sh.ctl, Ctl.CYCLE);
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
    return allMapped(this.sh);
  }
}
