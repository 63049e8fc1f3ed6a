/**
 * Installing built pages into the heap, per mode:
 *  MOVE   UFFDIO_MOVE the built buffer page into place: no allocation, zeroing or copy in the
 *         kernel; runs of contiguous pages whose buffers are contiguous go in one call.
 *  COPY   UFFDIO_COPY: the ART-before-MOVE baseline (the kernel allocates and copies).
 *  DIRECT stop-the-world: the page was built in place; nothing to install.
 * Runs of GAP pages (all zeros) go in as the zero page, in move and copy mode alike.
 *
 * Kernel refusals are handled as ART handles them: EEXIST (another thread installed the page)
 * counts as installed; ENOENT (our buffer was already moved out by a thread that took over a
 * stalled builder's page) likewise; a short move continues from its progress; EAGAIN without
 * progress retries; EBUSY (the buffer page is pinned, e.g. by io_uring, or shared after fork)
 * falls back at once to copying that page, since retrying a pinned page makes compaction
 * "really long" (ART) and I/O into the pinned page can no longer reach the heap. A run that
 * crosses from one of the heap's VMAs into the next (split at past cycles' pinned spans; the
 * kernel wants one) is refused whole, EINVAL for MOVE and ENOENT for COPY and ZEROPAGE, and
 * goes on in pieces (Ctl.SPLIT_RUNS).
 *
 * Departure from ART: bytes are copied into the heap only from a page no one else can write.
 * A recycled from-space buffer is an old heap page, and a program that did I/O into it
 * without heap.pin (io_uring, DMA) may still be writing it: a page built there and copied
 * after EBUSY carried that I/O into unrelated objects (examples/pinned-io, 1 run in 10).
 * So EBUSY rebuilds the page into the thread's private page and copies that, and so does
 * installing another builder's page from a recycled buffer. While the page is not installed,
 * its from-space sources are intact (compact.ts recycles only below installed pages); a page
 * installed meanwhile is left alone (#copyPrivate). What this cannot catch: I/O that lands in
 * a recycled buffer and whose pin is released before the install, so that MOVE succeeds (the
 * kernel's EBUSY is the only sign of the pin). I/O into the heap belongs behind heap.pin.
 */
import { PagePhase, markMapped, markMappedRun, phaseOf } from './claim.js';
import { MoveGcError } from './errors.js';
import { PAGE_SIZE, native } from './native.js';
import { PMD_PAGES } from './layout.js';
import { Ctl, Hist, type Shared } from './shared.js';
import type { Userfaultfd } from './uffd.js';

export const Install = { MOVE: 1, COPY: 2, DIRECT: 3 } as const;
/** MOVE of from-space pages the mutator may never have written (installWhole). */
const SRC_HOLES = { allowSrcHoles: true } as const;
export type InstallKind = (typeof Install)[keyof typeof Install];

/**
 * How a single page built out of order (for a fault, or by the mutator) is installed in move
 * mode. MOVE unmaps the buffer page, and each MOVE call flushes the TLB of every CPU running
 * the process: with the mutator running on the other CPU, a one-page MOVE cost 18-23 us on
 * these virtual machines against ~2 us for a one-page COPY (bench/floor.ts, "busy sibling").
 * A fault is one page, so COPY is the default there; the compactor's long runs amortise the
 * flush and keep MOVE. (ART notes the same cost: it disables MOVE on virtual devices.)
 */
export const FaultInstall = { COPY: 0, MOVE: 1 } as const;
export type FaultInstallName = 'copy' | 'move';

const MAX_EAGAIN_RETRIES = 1000;

export type Warn = (msg: string, data: Record<string, unknown>) => void;
/** Builds page q again into this thread's private page and returns that page's index (Builders). */
export type Rebuild = (q: number) => number;
/**
 * Says what became of the last rebuild: true if its copy installed the page, false if it was
 * thrown away (it threw, or the page was installed by another thread meanwhile: EEXIST). What a
 * thrown-away rebuild found malformed is not the cycle's (Builders.commitMalformed).
 */
export type RebuildSettled = (installed: boolean) => void;

/**
 * Page-by-page warnings (a MOVE refused, a page gone) one thread logs per cycle. KSM-merged
 * or fork-shared from-space can refuse thousands of pages (an audit counted 7443 warnings in
 * one run), each a message from a collector thread to the heap's; the statistics count every
 * one.
 */
export const WARNINGS_PER_CYCLE = 8;

export class Installer {
  readonly #sh: Shared;
  readonly #uffd: Userfaultfd | null;
  readonly #heap: number;
  readonly #from: number;
  readonly #warn: Warn;
  readonly #fromPages: number;
  #rebuild: Rebuild | null = null;
  #rebuildSettled: RebuildSettled | null = null;
  #calls = 0;
  #warnCycle = -1;
  #warned = 0;
  /** mincore's answer for a WHOLE run (at most MAX_WHOLE_RUN pages; grown if asked for more). */
  #resident = new Uint8Array(512);
  /** mincore's answer for one page (#gone: called inside #fillHoles, which reads #resident). */
  readonly #onePage = new Uint8Array(1);

  constructor(sh: Shared, uffd: Userfaultfd | null, warn: Warn) {
    this.#sh = sh;
    this.#uffd = uffd;
    this.#heap = sh.d.heapAddress;
    this.#from = sh.d.fromAddress;
    this.#warn = warn;
    this.#fromPages = sh.d.capacity / PAGE_SIZE;
  }

  /** A page's warning, the first WARNINGS_PER_CYCLE of a cycle; then one saying the rest are not logged. */
  #pageWarning(msg: string, data: Record<string, unknown>): void {
    const cycle = Atomics.load(this.#sh.ctl, Ctl.CYCLE);
    if (cycle !== this.#warnCycle) {
      this.#warnCycle = cycle;
      this.#warned = 0;
    }
    const n = ++this.#warned;
    if (n <= WARNINGS_PER_CYCLE) this.#warn(msg, data);
    else if (n === WARNINGS_PER_CYCLE + 1) this.#warn('more page warnings this cycle: counted in its statistics (ebusy, errors, pages.gone), not logged', { cycle });
  }

  /**
   * Called between a run's install and its state words' MAPPED, with whether it was a WHOLE
   * run (injected holds, faultHoldMappedMs and wholeHoldMappedMs: a thread descheduled there,
   * the state words lagging the kernel).
   */
  installed: ((whole: boolean) => void) | null = null;

  /** How this thread rebuilds a page whose buffer it must not copy from (set by Builders). */
  rebuildWith(rebuild: Rebuild, settled?: RebuildSettled): void {
    this.#rebuild = rebuild;
    this.#rebuildSettled = settled ?? null;
  }

  /** Installs to-space pages [q, q+n) from from-space buffer pages [buf, buf+n), then marks them mapped. */
  install(q: number, buf: number, n: number): void {
    const kind = Atomics.load(this.#sh.ctl, Ctl.INSTALL);
    if (kind === Install.MOVE) this.#move(q, buf, n);
    else if (kind === Install.COPY) this.#copyRun(q, buf, n);
    else markMappedRun(this.#sh, q, n);
  }

  /**
   * Installs to-space pages [q, q+n) by COPY from this thread's scratch pages [buf, buf+n), in
   * move mode too: a run too short to amortise MOVE's TLB flush (compact.ts MOVE_MIN_RUN).
   * Scratch pages are private (no I/O can reach them), so they are copied as they are.
   */
  installShortRun(q: number, buf: number, n: number): void {
    this.#sh.count(Ctl.SHORT_RUN_COPIES, n);
    this.#copyRun(q, buf, n);
  }

  /**
   * Installs to-space pages [q, q+n) by COPY from the compactor's scratch pages [buf, buf+n)
   * in move mode: a MOVE would take the scratch pages with it, and the next build there would
   * fault a fresh page in for each (compact.ts).
   */
  installScratchRun(q: number, buf: number, n: number): void {
    this.#sh.count(Ctl.SCRATCH_COPIES, n);
    this.#copyRun(q, buf, n);
  }

  /**
   * Installs to-space pages [q, q+PMD_PAGES), 2 MiB aligned, built into a huge scratch page
   * at buf, with one MOVE: the kernel moves the huge page as one PMD when the
   * destination's PMD is empty (otherwise, or if the scratch page is small pages, page by
   * page in the same call). Move mode only (Builders.buildPmd); `self`: the mutator's span.
   */
  installPmd(q: number, buf: number, self: boolean): void {
    if (this.#move(q, buf, PMD_PAGES) !== PMD_PAGES) return;
    this.#sh.count(Ctl.PMD_PAGES, PMD_PAGES);
    if (self) this.#sh.count(Ctl.PMD_SELF_PAGES, PMD_PAGES);
  }

  /** Installs pages [q, q+n) the mutator built into its huge scratch page at buf, by COPY: a span it could not claim whole. */
  installSpanPart(q: number, buf: number, n: number): void {
    this.#copyRun(q, buf, n);
  }

  /** Installs one page built out of order (see FaultInstall). */
  installOne(q: number, buf: number): void {
    const sh = this.#sh;
    if (Atomics.load(sh.ctl, Ctl.INSTALL) === Install.MOVE && Atomics.load(sh.ctl, Ctl.FAULT_INSTALL) === FaultInstall.COPY) this.#copyRun(q, buf, 1);
    else this.install(q, buf, 1);
  }

  /**
   * Installs WHOLE pages [q, q+n) straight from their from-space pages [src, src+n)
   * (compact.ts). A from-space page the mutator never wrote is a hole (no page at all): MOVE
   * skips it (ALLOW_SRC_HOLES), and the zero page goes in its place before the pages count
   * as installed (a MAPPED page with nothing behind it would fault forever). COPY reads a
   * hole as zeros.
   */
  installWhole(q: number, src: number, n: number): void {
    if (Atomics.load(this.#sh.ctl, Ctl.INSTALL) !== Install.MOVE) return this.install(q, src, n);
    this.#move(q, src, n, true);
  }

  /**
   * GAP pages [q, q+n) (plan.ts: all zeros, inside a filler) as the zero page, one call per
   * run: no build, no buffer, no memory. A page another thread installed meanwhile (it took
   * the page over and built it: zeros too) stops the call there (EEXIST) and is skipped.
   */
  installZero(q: number, n: number): void {
    const sh = this.#sh;
    sh.count(Ctl.GAP_PAGES, this.#zeroRun(q, n, () => sh.count(Ctl.EEXIST)));
    markMappedRun(sh, q, n); // every page of the run is in now, ours or the taker's
  }

  /**
   * The zero page at [q, q+n), one call per run of empty pages: a page already there stops a
   * call (EEXIST), is stepped over and reported to `present`. Returns the pages it mapped.
   */
  #zeroRun(q: number, n: number, present: (page: number) => void): number {
    let mapped = 0;
    let single = false; // after ENOENT on a run: it crosses two VMAs (see #copyRun), go page by page
    for (let at = q; at < q + n; ) {
      let z: number;
      try {
        z = this.#uffd!.zeropage(this.#heap + at * PAGE_SIZE, (single ? 1 : q + n - at) * PAGE_SIZE) / PAGE_SIZE;
      } catch (e) {
        const code = (e as MoveGcError).code;
        z = Math.floor(((e as MoveGcError).bytesDone ?? 0) / PAGE_SIZE);
        if (code === 'ENOENT' && !single && q + n - at > 1) {
          this.#sh.count(Ctl.SPLIT_RUNS);
          single = true;
          mapped += z;
          at += z;
          continue;
        }
        if (code === 'ENOENT' && this.#gone(at + z, true)) {
          mapped += z;
          at += z + 1;
          continue;
        }
        if (code !== 'EEXIST') throw e;
        present(at + z);
        at++;
      }
      mapped += z;
      at += z;
    }
    return mapped;
  }

  /** The zero page at every page of [q, q+n) that a MOVE with source holes left empty. */
  #fillHoles(q: number, n: number): void {
    if (this.#resident.length < n) this.#resident = new Uint8Array(n);
    const r = this.#resident;
    if (native.residency(this.#heap + q * PAGE_SIZE, n * PAGE_SIZE, r) === n) return;
    for (let i = 0; i < n; ) {
      if (r[i] & 1) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && !(r[j] & 1)) j++;
      // (A page there after all, EEXIST: one mincore could not see, e.g. moved in as a swap entry.)
      this.#sh.count(Ctl.ZERO_PAGES, this.#zeroRun(q + i, j - i, () => {}));
      i = j;
    }
  }

  /**
   * MOVE pages [buf, buf+n) to [q, q+n), in as few calls as the kernel takes; refusals as the
   * file's comment says. `whole`: the sources are from-space pages (installWhole), and one the
   * mutator never wrote is a hole, skipped and then filled with the zero page. Returns how
   * many pages its first call moved (all n: one call did it).
   */
  #move(q: number, buf: number, n: number, whole = false): number {
    const sh = this.#sh;
    const uffd = this.#uffd!;
    let first = -1;
    let i = 0;
    let retries = 0;
    let pages = n; // pages per call: halved while a call crosses from one VMA into the next
    while (i < n) {
      const len = Math.min(pages, n - i) * PAGE_SIZE;
      sh.count(Ctl.MOVE_CALLS);
      sh.record(Hist.BATCH_PAGES, len / PAGE_SIZE);
      if (whole && (q + i) % PMD_PAGES === 0 && len === PMD_PAGES * PAGE_SIZE) sh.count(Ctl.WHOLE_PMD_CALLS);
      try {
        const every = Atomics.load(sh.ctl, Ctl.INJECT_EAGAIN_EVERY);
        if (every > 0 && ++this.#calls % every === 0) throw new MoveGcError('EAGAIN', 'injected EAGAIN', { errno: 11, bytesDone: 0 });
        const moved = uffd.moveOnce(this.#heap + (q + i) * PAGE_SIZE, this.#from + (buf + i) * PAGE_SIZE, len, whole ? SRC_HOLES : undefined);
        const k = moved / PAGE_SIZE;
        if (first < 0) first = k;
        if (whole) this.#fillHoles(q + i, k);
        this.installed?.(whole);
        markMappedRun(sh, q + i, k);
        sh.count(Ctl.PAGES_MOVED, k);
        if (k < len / PAGE_SIZE) sh.count(Ctl.EAGAIN); // short move: continue from the progress
        i += k;
        pages = n;
      } catch (e) {
        const code = (e as MoveGcError).code;
        // Pages moved before the refusal are in: count them, and retry from the refused page
        // (re-moving them would only meet their holes: ENOENT, miscounted).
        const done = Math.floor(((e as MoveGcError).bytesDone ?? 0) / PAGE_SIZE);
        if (done > 0 && code !== 'EAGAIN') {
          if (whole) this.#fillHoles(q + i, done);
          markMappedRun(sh, q + i, done);
          sh.count(Ctl.PAGES_MOVED, done);
          i += done;
          continue;
        }
        if (code === 'EAGAIN') {
          sh.count(Ctl.EAGAIN);
          if (++retries <= MAX_EAGAIN_RETRIES) continue;
          this.#copyPrivate(q + i, buf + i, 'EAGAIN');
        } else if (code === 'EEXIST') {
          sh.count(Ctl.EEXIST);
          markMapped(sh, q + i);
        } else if (code === 'ENOENT') {
          // No page at the source: moved in by a thread that took it over (the destination
          // has it), or a WHOLE page's from-space page never written (it has none: zeros).
          sh.count(Ctl.ENOENT);
          if (!this.#gone(q + i, false)) {
            this.#fillHoles(q + i, 1);
            markMapped(sh, q + i);
          }
        } else if (code === 'EINVAL' && len > PAGE_SIZE) {
          // A run whose source or destination crosses two VMAs (the kernel wants one each):
          // the boundary is found in log2(run) calls.
          sh.count(Ctl.SPLIT_RUNS);
          pages = Math.ceil(len / PAGE_SIZE / 2);
          continue;
        } else if (code === 'EBUSY') {
          sh.count(Ctl.EBUSY);
          this.#copyPrivate(q + i, buf + i, 'EBUSY');
        } else {
          sh.count(Ctl.ERRORS);
          this.#pageWarning('MOVE failed, copying the page instead', { page: q + i, code, error: String(e) });
          this.#copyPrivate(q + i, buf + i, code);
        }
        if (first < 0) first = 0;
        i++;
      }
    }
    return first;
  }

  /**
   * Installs a page another builder has built (PROCESSED) but not installed yet, from its
   * buffer (the mutator's self-service, selfservice.ts), by the single-page policy. Safe
   * against that builder's own install: a COPY landing second gets EEXIST, a MOVE second finds
   * its source gone (ENOENT) or its destination full (EEXIST), all handled as installed; and a
   * buffer moved away or reused meanwhile can only be read once the page is in, so it is
   * never installed. A COPY from a recycled from-space buffer is a COPY of a rebuild (see the
   * top of the file).
   */
  installBuilt(q: number, buf: number): void {
    const sh = this.#sh;
    if (Atomics.load(sh.ctl, Ctl.INSTALL) === Install.MOVE && Atomics.load(sh.ctl, Ctl.FAULT_INSTALL) === FaultInstall.MOVE) this.#move(q, buf, 1);
    else this.#copyPrivate(q, buf, 'help');
  }

  /**
   * copyOne from a page holding q's bytes that only this thread can write: buf itself if it
   * is a scratch page, else q rebuilt into this thread's private page (see the top of the
   * file). A page installed meanwhile needs neither: its sources may be recycled by then, so
   * a rebuild would read other pages' bytes (and may throw on them), and its COPY would only
   * meet EEXIST.
   */
  #copyPrivate(q: number, buf: number, why: string): void {
    if (buf >= this.#fromPages) {
      this.#copyOne(q, buf, why);
      return;
    }
    const sh = this.#sh;
    const installed = (): boolean => {
      if (phaseOf(Atomics.load(sh.pageState, q)) !== PagePhase.MAPPED) return false;
      sh.count(Ctl.EEXIST);
      return true;
    };
    if (installed()) return;
    let page: number;
    try {
      page = this.#rebuild!(q);
    } catch (e) {
      this.#rebuildSettled?.(false);
      if (installed()) return;
      throw e;
    }
    // The page may have gone in while it was rebuilt (this thread descheduled): its sources
    // may have been recycled or released since, so the rebuild may have read anything. Only a
    // copy that goes in proves the page was not installed, its sources intact, throughout.
    let ours = false;
    try {
      ours = this.#copyOne(q, page, why);
    } finally {
      this.#rebuildSettled?.(ours);
    }
  }

  /**
   * After a page's own ENOENT: true if its destination is no longer the heap's, which only the
   * program can have done mid-cycle: no longer mapped at all (mincore: ENOMEM; munmap, or
   * mremap away, of part of its heap), or (`replaced`: the caller's ENOENT was a one-page COPY
   * or ZEROPAGE, which the kernel gives only for a destination no userfaultfd registration
   * covers) mapped anew by the program (mmap MAP_FIXED, or mremap, over it). Nothing can go
   * there: counted (PAGES_GONE) and marked installed, so that no thread dies on it and the
   * cycle ends; the program's access there meets its own mapping, or faults. Anything else
   * (false) is an error, as before. (A MOVE's ENOENT is about its source: not `replaced`.)
   */
  #gone(q: number, replaced: boolean): boolean {
    let unmapped = false;
    try {
      native.residency(this.#heap + q * PAGE_SIZE, PAGE_SIZE, this.#onePage);
    } catch (e) {
      unmapped = (e as { code?: unknown }).code === 'ENOMEM';
    }
    if (!unmapped && !replaced) return false;
    this.#sh.count(Ctl.PAGES_GONE);
    this.#pageWarning(
      unmapped
        ? 'a heap page is no longer mapped (the program unmapped it mid-cycle): nothing installed there'
        : 'a heap page is no longer registered (the program mapped over it mid-cycle): nothing installed there',
      { page: q },
    );
    markMapped(this.#sh, q);
    return true;
  }

  /**
   * One page by UFFDIO_COPY (a fallback from MOVE); EEXIST means someone installed it. True if
   * this copy installed it.
   */
  #copyOne(q: number, buf: number, why: string): boolean {
    const sh = this.#sh;
    let ours = true;
    try {
      sh.count(Ctl.COPY_CALLS);
      sh.record(Hist.BATCH_PAGES, 1);
      this.#uffd!.copy(this.#heap + q * PAGE_SIZE, this.#from + buf * PAGE_SIZE, PAGE_SIZE);
      sh.count(Ctl.PAGES_COPIED);
      if (why === 'EBUSY') {
        sh.count(Ctl.EBUSY_COPIES);
        this.#pageWarning('page refused by MOVE (pinned or shared): copied instead; I/O into the old page no longer reaches the heap', { page: q });
      }
    } catch (e) {
      const code = (e as MoveGcError).code;
      if (code === 'ENOENT' && this.#gone(q, true)) return false;
      if (code !== 'EEXIST') throw e;
      sh.count(Ctl.EEXIST);
      ours = false;
    }
    markMapped(sh, q);
    return ours;
  }

  #copyRun(q: number, buf: number, n: number): void {
    const sh = this.#sh;
    sh.count(Ctl.COPY_CALLS);
    sh.record(Hist.BATCH_PAGES, n);
    try {
      this.#uffd!.copy(this.#heap + q * PAGE_SIZE, this.#from + buf * PAGE_SIZE, n * PAGE_SIZE);
      sh.count(Ctl.PAGES_COPIED, n);
      this.installed?.(false);
      markMappedRun(sh, q, n);
    } catch (e) {
      // EEXIST: someone installed one of them: go on page by page. ENOENT: the run crosses
      // from one VMA into the next (the kernel wants one; a heap's VMAs split at past cycles'
      // pinned spans need not merge again, and a later segment may span them): go on in
      // halves, which find the boundary in log2(n) calls. A page's own ENOENT throws.
      const code = (e as MoveGcError).code;
      if (code === 'ENOENT' && n === 1 && this.#gone(q, true)) return;
      if (code !== 'EEXIST' && !(code === 'ENOENT' && n > 1)) throw e;
      const done = ((e as MoveGcError).bytesDone ?? 0) / PAGE_SIZE;
      sh.count(Ctl.PAGES_COPIED, done);
      markMappedRun(sh, q, done);
      if (code === 'ENOENT') {
        sh.count(Ctl.SPLIT_RUNS);
        const rest = n - done;
        const half = Math.ceil(rest / 2);
        if (rest > 0) this.#copyRun(q + done, buf + done, half);
        if (rest > half) this.#copyRun(q + done + half, buf + done + half, rest - half);
        return;
      }
      for (let i = done; i < n; i++) this.#copyOne(q + i, buf + i, 'EEXIST');
    }
  }
}
