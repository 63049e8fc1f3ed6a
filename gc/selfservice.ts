/**
 * The mutator's own fault path during compaction (ART CMC's SIGBUS handler, moved into the
 * heap's accessors). While a cycle compacts, every accessor looks up the state word of the
 * page it is about to touch (mutator.ts, one load); a page not yet installed comes here, before
 * the kernel is involved:
 *
 *  - 'self' (the default): claim the page through the same per-page state word every builder
 *    uses (claim.ts), build it on this thread with the heap's builder, install it by the same
 *    policy as the fault server (install.ts, FaultInstall), and go on: no kernel fault, no
 *    wake-up of another thread, no wait for a CPU. A page another live builder holds (the
 *    compactor's run, the fault server's fault) is left to the kernel path: the access faults
 *    and that builder's install wakes us.
 *  - 'handler': the kernel path only. The page is touched here, so the stall is timed here.
 *
 * Why: on 2 vCPUs shared by the mutator, the compactor and the fault server, a kernel fault
 * costs the mutator the fault server's wake-up and its wait for a CPU, several times the
 * service itself (issue 11's Splay port: ~75 us stall per fault against 13 us of service).
 * ART dropped its handler threads for the same latency. JavaScript cannot run in a signal
 * handler; every mutator access goes through an accessor, which can do the same work.
 *
 * The userfaultfd fault server stays for every access that bypasses the accessors (I/O into
 * pinned addresses, other threads' views, the verifier), and finishes pages whose self-service
 * build fails: a build that throws gives its claim back (the kernel path then serves that
 * page); an install that throws leaves a built page the mutator can no longer install, so it
 * gives up self-service for the cycle (Ctl.SELF_ABANDONED) and the page is reclaimed by the
 * others like a stale thread's (Builders.isStale), from its own scratch page, which nothing
 * else writes.
 */
import { PMD_SCRATCH, SELF_SPAN_SLOTS, Scratch, type BuildHook, type Builders } from './builders.js';
import { bufferOf, phaseOf, ownerOf, reclaim } from './claim.js';
import { ErrorCode, MoveGcError } from './errors.js';
import { PAGE_WORDS, PMD_PAGES } from './layout.js';
import type { HeapLogger as Logger } from './log.js';
import { FaultPath, type FaultPathName, type InjectOptions } from './options.js';
import { Clk, Ctl, Hist, Owner, PageKind, PagePhase, now, type Shared } from './shared.js';

/** Looks at a page another builder is building before sleeping between looks, and the sleep. */
const HELP_SPINS = 200;
const HELP_SLEEP_MS = 0.05;

export class SelfService {
  readonly #sh: Shared;
  readonly #b: Builders;
  readonly #heap: Uint32Array;
  readonly #scratch: number;
  readonly #stallMs: number;
  readonly #log: Logger;
  readonly self: boolean;
  /** This cycle: gave up after a failed install; builds so far; injection points. */
  #abandoned = false;
  #builds = 0;
  #failAtBuild = 0;
  #failAtInstall = 0;
  /**
   * Pages this cycle has already seen installed (stamped with the cycle's epoch): their state
   * word can lag the kernel (a builder is descheduled between its install, which wakes us, and
   * its state update), and every access in that window would come here again. One stall
   * sample per page per cycle, and the window costs one load.
   */
  readonly #present: Uint32Array;
  /** The mutator's huge scratch pages (builders.ts PMD_SCRATCH, SELF_SPAN_SLOTS), and the last one it took. */
  readonly #pmdOwn: number;
  #slot = 0;
  /** Move mode with hugePages: a page whose 2 MiB span nobody has begun is built with the span (#pmdSpan). */
  readonly #pmd: boolean;
  #epoch = 0;
  /**
   * Whether a fault server will serve a kernel fault now (set by the collector: threads.ts
   * serving). If not, a page the accessors meet is built here, on either path (#serveHere).
   */
  serverUp: () => boolean = () => true;
  /** Keeps the handler path's touch from being optimised away. */
  #sink = 0;
  readonly #hook: BuildHook = (stage) => {
    if (stage === 'claimed' && ++this.#builds === this.#failAtBuild) throw new MoveGcError(ErrorCode.INJECTED, `injected: self-service build ${this.#builds} fails`);
    if (stage === 'built' && this.#builds === this.#failAtInstall) throw new MoveGcError(ErrorCode.INJECTED, `injected: self-service install ${this.#builds} fails`);
  };

  constructor(sh: Shared, builders: Builders, heap: Uint32Array, path: FaultPathName, stallMs: number, log: Logger) {
    this.#sh = sh;
    this.#b = builders;
    this.#heap = heap;
    this.#scratch = builders.scratchPage(Scratch.SELF);
    this.#pmdOwn = builders.capacityPages + PMD_SCRATCH.MUTATOR;
    this.#pmd = Atomics.load(sh.ctl, Ctl.PMD_SPANS) !== 0;
    this.#stallMs = stallMs;
    this.#log = log;
    this.self = path === FaultPath.SELF;
    this.#present = new Uint32Array(builders.capacityPages);
  }

  /**
   * Page q has been through fault() this cycle: installed in the kernel, whatever its state
   * word says yet (see #present). Every page the mutator wrote during compaction is MAPPED or
   * this, so a read that trusts it sees the mutator's own writes (unbuilt-reads.ts).
   */
  seen(q: number): boolean {
    return this.#epoch !== 0 && this.#present[q] === this.#epoch; // epoch 0: no cycle has begun, nothing seen
  }

  /** At the compaction pause: a new cycle, its injection points. */
  begin(inject: Readonly<InjectOptions>): void {
    if (++this.#epoch === 0x100000000) {
      this.#present.fill(0);
      this.#epoch = 1;
    }
    this.#abandoned = false;
    this.#builds = 0;
    this.#failAtBuild = inject.selfFailAtBuild ?? 0;
    this.#failAtInstall = inject.selfFailAtInstall ?? 0;
  }

  /** The injection points of the mutator's builds, for its builds outside the accessors (compaction-end.ts). */
  get hook(): BuildHook {
    return this.#hook;
  }

  /**
   * A build of page q on the mutator's thread threw. If it was built but not installed (the
   * install threw), only another thread can install it now: the mutator gives up its claims
   * for the cycle (Ctl.SELF_ABANDONED: Builders.isStale then counts it stale, so any thread,
   * the mutator too, reclaims the page from its scratch page) and self-service with them.
   * True if so.
   */
  giveUp(q: number): boolean {
    const sh = this.#sh;
    const st = Atomics.load(sh.pageState, q);
    if (phaseOf(st) !== PagePhase.PROCESSED || ownerOf(st) !== Owner.MUTATOR) return false;
    this.#abandoned = true;
    Atomics.store(sh.ctl, Ctl.SELF_ABANDONED, Atomics.load(sh.ctl, Ctl.CYCLE));
    return true;
  }

  /**
   * Page q belongs to another live builder. Built (PROCESSED): install it from that builder's
   * buffer now rather than wait for its install (the compactor installs a run of up to 64
   * pages at once; that wait was the self path's tail, 1-8 ms). Being built (PROCESSING):
   * watch it until it is built, then do the same; a kernel fault would wait for the same
   * build plus the install and a wake-up. Bounded by stallMs: past it resolve() takes the
   * page from a stalled owner, or the kernel path serves it.
   */
  #help(q: number, t0: number): boolean {
    const sh = this.#sh;
    for (let i = 0; ; i++) {
      const s = Atomics.load(sh.pageState, q);
      const ph = phaseOf(s);
      if (ph === PagePhase.MAPPED) return true;
      if (ph === PagePhase.PROCESSED && ownerOf(s) !== Owner.MUTATOR) {
        this.#b.installer.installBuilt(q, bufferOf(s));
        sh.count(Ctl.SELF_HELPED);
        return true;
      }
      // Being built by the compactor's step (up to 64 pages claimed at once: about 0.2 ms, far
      // longer if it is descheduled meanwhile): taken from it and built here, as from a
      // stalled owner (reclaim); its own build of the page is dropped (its markProcessed
      // fails and its run breaks there). Not a WHOLE or GAP page (the compactor installs those
      // straight from from-space, whose page moves away once claimed), nor a page of 2 MiB
      // spans (a span's pages go in together).
      if (ph === PagePhase.PROCESSING && ownerOf(s) === Owner.COMPACTOR && this.#stealable(q) && reclaim(sh, q, Owner.COMPACTOR, Owner.MUTATOR) >= 0) {
        sh.count(Ctl.SELF_STOLEN);
        continue;
      }
      // Unclaimed again (reclaimed from a stalled owner), or its owner stalled: build it.
      if ((ph === PagePhase.UNPROCESSED || i % 64 === 63) && this.#b.resolve(q, Owner.MUTATOR, this.#scratch, this.#stallMs, undefined, this.#hook)) return true;
      if (now() - t0 > this.#stallMs) return false;
      // Spin a little (a run builds in ~0.2 ms), then sleep in short steps: the builder may
      // need this CPU.
      if (i >= HELP_SPINS) Atomics.wait(sh.pageState, q, s, HELP_SLEEP_MS);
    }
  }

  /** Page q may be taken from the compactor mid-step (#help). */
  #stealable(q: number): boolean {
    const k = this.#sh.pageKind[q];
    return !this.#pmd && k !== PageKind.WHOLE && k !== PageKind.GAP;
  }

  /**
   * Page q's 2 MiB span, if no other thread has begun it: built and moved in whole, as one
   * PMD (Builders.buildPmd). It stops the mutator for the span's build (about 1 ms with the
   * compiled builder, against 10-40 us for one page), and spares it the first-touch trap of
   * every page of the span it meets later (8 us each on this VM). True if q is in.
   */
  #pmdSpan(q: number): boolean {
    const sh = this.#sh;
    const first = q - (q % PMD_PAGES);
    if (first + PMD_PAGES > this.#b.capacityPages) return false;
    for (let i = first; i < first + PMD_PAGES; i++) if (Atomics.load(sh.pageState, i) !== PagePhase.UNPROCESSED) return false;
    // A huge scratch page the compactor has faulted in, else the next in turn.
    const empty = Atomics.load(sh.ctl, Ctl.SELF_SPAN_EMPTY);
    let slot = (this.#slot + 1) % SELF_SPAN_SLOTS;
    for (let i = 0; i < SELF_SPAN_SLOTS && (empty & (1 << slot)) !== 0; i++) slot = (slot + 1) % SELF_SPAN_SLOTS;
    this.#slot = slot;
    if (this.#b.buildPmd(first, Owner.MUTATOR, this.#pmdOwn + slot * PMD_PAGES) === PMD_PAGES) Atomics.or(sh.ctl, Ctl.SELF_SPAN_EMPTY, 1 << slot);
    return phaseOf(Atomics.load(sh.pageState, q)) === PagePhase.MAPPED;
  }

  /**
   * Pages built, helped in and taken over so far. A resolved page counts as self-service only
   * if this moved: another thread may have installed it since the accessor looked (resolve
   * then finds it mapped), which is no build and no stall of ours.
   */
  #work(): number {
    const c = this.#sh.ctl;
    return Atomics.load(c, Ctl.MUTATOR_BUILDS) + Atomics.load(c, Ctl.SELF_HELPED) + Atomics.load(c, Ctl.TAKEOVERS);
  }

  /**
   * Page q built and installed by this thread, with its 2 MiB span if that can go in whole (a
   * span a page of which is taken loses nothing more by q alone); true once q is in. False if
   * another live builder has it.
   */
  #resolve(q: number): boolean {
    return (this.#pmd && this.#pmdSpan(q)) || this.#b.resolve(q, Owner.MUTATOR, this.#scratch, this.#stallMs, undefined, this.#hook);
  }

  /** A build of q on this thread threw: counted, the page given up if it was built (giveUp), logged. */
  #failed(q: number, e: unknown, msg: string): void {
    this.#sh.count(Ctl.SELF_FAILED);
    this.giveUp(q);
    this.#log.warn({ page: q, abandoned: this.#abandoned, error: String((e as Error)?.message ?? e) }, msg);
  }

  /**
   * Idle-time work (idle.ts): page q built and installed before any access needs it, if no
   * other builder has it; never waits for one, and counts no stall (nothing waited). In move
   * mode with hugePages q's span is built whole if it can be, and nothing at all unless
   * `spanOk` (time for a span's build). True if q is installed now.
   */
  ahead(q: number, spanOk: boolean): boolean {
    const sh = this.#sh;
    if (phaseOf(Atomics.load(sh.pageState, q)) === PagePhase.MAPPED) return true;
    if (this.#abandoned) return false;
    const before = this.#work();
    try {
      if (this.#pmd && !spanOk) return false;
      const done = this.#resolve(q);
      const n = this.#work() - before; // a span's build counts its pages
      if (n > 0) sh.count(Ctl.IDLE_PAGES, n);
      return done;
    } catch (e) {
      this.#failed(q, e, 'idle-time build failed: the fault server serves the page');
      return false;
    }
  }

  /** Page q is not installed yet (the accessor saw its state word): make it so, or fault on it. */
  fault(q: number): void {
    if (this.#present[q] === this.#epoch) return;
    this.#present[q] = this.#epoch; // set before: a throw below leaves the page to the kernel path
    const sh = this.#sh;
    if (phaseOf(Atomics.load(sh.pageState, q)) === PagePhase.MAPPED) return; // installed since the accessor looked
    sh.count(Ctl.UNBUILT_TOUCHES);
    const t0 = now();
    if (this.self && !this.#abandoned) {
      try {
        const before = this.#work();
        const b0 = this.#b.buildMs;
        const i0 = this.#b.installMs;
        const resolved = this.#resolve(q);
        sh.clk[Clk.SELF_BUILD] += this.#b.buildMs - b0;
        sh.clk[Clk.SELF_INSTALL] += this.#b.installMs - i0;
        if (resolved || this.#help(q, t0)) {
          this.#resolvedHere(before, t0);
          return;
        }
        sh.count(Ctl.SELF_LEFT); // another live builder still has it: its install wakes our fault
      } catch (e) {
        this.#failed(q, e, 'self-service failed: the fault server serves the page');
      }
    }
    if (!this.serverUp()) return this.#serveHere(q, t0);
    this.#sink ^= this.#heap[q * PAGE_WORDS * 2]; // the kernel path: fault here, timed
    sh.record(Hist.HANDLER_STALL_US, (now() - t0) * 1000);
  }

  /**
   * No fault server to serve a kernel fault (stalled, dead, or being replaced): a fault here
   * would block this thread, and with it the event loop its successor is spawned from, until
   * the watchdog aborts the process (an audit: stallMs 1 on the handler path, 1 run in 8).
   * This thread builds the page instead, on either path, waiting only for a live builder that
   * holds it (resolve takes it from one that has stalled).
   */
  #serveHere(q: number, t0: number): void {
    const before = this.#work();
    try {
      while (!this.#resolve(q) && !this.#help(q, now()));
    } catch (e) {
      this.#failed(q, e, 'a build with no fault server to fall back on failed');
      throw e; // the access fails rather than waits for ever
    }
    this.#resolvedHere(before, t0);
  }

  /** A page resolved on this thread since t0: its stall counted as self-service, if this thread's work moved (#work). */
  #resolvedHere(before: number, t0: number): void {
    if (this.#work() === before) return;
    this.#sh.record(Hist.SELF_STALL_US, (now() - t0) * 1000);
    this.#sh.count(Ctl.SELF_RESOLVED);
  }
}
