/**
 * The movegc heap: one mmap'd region, user-declared object types, and the calls through which
 * the collector may pause the mutator (collect, safepoint). What the mutator's calls do
 * (references, allocation, field access, roots and pins, the write barrier) is mutator.ts,
 * which this extends with creation, the collector and the lifecycle. The collector itself:
 * collector.ts (its threads, phase driver and watchdog, as these calls reach them), cycle.ts
 * (the phase driver) and the phase files it names; options.ts; heap-memory.ts (the mappings).
 */
import { MoveGcError, ErrorCode, internal, invalidArg, shown } from './errors.js';
import { Builders } from './builders.js';
import { Collector } from './collector.js';
import { Installer } from './install.js';
import { HeapMemory } from './heap-memory.js';
import { PAGE_SIZE, native } from './native.js';
import { probe, type Capabilities } from './probe.js';
import { chooseMode, Mode, type ModeName } from './modes.js';
import { containedLogger, silentLogger, type HeapLogger as Logger } from './log.js';
import type { CycleStats } from './stats.js';
import { verifyHeap, type VerifyResult } from './verify.js';
import type { Shared } from './shared.js';
import { SelfService } from './selfservice.js';
import { UnbuiltReads } from './unbuilt-reads.js';
import { UnbuiltWrites } from './unbuilt-writes.js';
import { IdleCompaction } from './idle.js';
import { CollectorPolicy, FaultPath, Marking, UnbuiltReadPolicy, largeObjectWords, resolveOptions, type HeapOptions, type FaultPathName, type UnbuiltReadsName, type MarkingName, type ResolvedOptions } from './options.js';
import type { Ref } from './refs.js';
import { census, type Census } from './census.js';
import { deepFreeze } from './values.js';
import { debugState, progressOf, type Progress } from './heap-types.js';
import type { MutatorInternals } from './cycle-state.js';
import { HEAP_MAKE, MutatorHeap } from './mutator.js';
import { Pin, Root } from './roots.js';
import { traceFromEnv } from './trace.js';
import { rehearsePause, warmUpAccessors, warmUpFlip } from './warmup.js';

export type { Ref };
export { Root, Pin };
export { HeapType, type TypeSpec, type Progress } from './heap-types.js';
export type { Census } from './census.js';

export class Heap extends MutatorHeap {
  readonly mode: ModeName;
  readonly requestedMode: ModeName;
  /** Where marking runs: 'concurrent' (a marker thread) or 'pause'; stw always marks in its pause. */
  readonly marking: MarkingName;
  /** Who builds a page the mutator touches during compaction: 'self' or 'handler' (selfservice.ts). */
  readonly faultPath: FaultPathName;
  /** With faultPath 'self': a read of an unbuilt page builds it, or is served in from-space (unbuilt-reads.ts). */
  readonly unbuiltReads: UnbuiltReadsName;
  /** Why the heap runs in a lesser mode than requested (empty if it does not). */
  readonly fallbacks: readonly string[];
  readonly capabilities: Capabilities;
  /** Its mappings, userfaultfd and shared memory (heap-memory.ts). */
  readonly #mem: HeapMemory;
  readonly #sh: Shared;
  /** What this class uses of MutatorHeap's state (mutator.ts). */
  readonly #in: MutatorInternals;
  /** Its threads, phase driver and watchdog, and the calls that run a cycle (collector.ts). */
  readonly #collector: Collector;
  /** The mutator's idle-time builds (idleCompact). */
  readonly #idle: IdleCompaction;
  #closing: Promise<void> | null = null;

  private constructor(make: symbol, opts: ResolvedOptions, caps: Capabilities, mode: ModeName, fallbacks: string[], log: Logger, mem: HeapMemory, trace: boolean) {
    if (make !== HEAP_MAKE) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a heap is made by Heap.create()');
    const sh = mem.sh;
    const from = new Uint32Array(mem.from.view(0, opts.capacity + sh.d.fromExtraPages * PAGE_SIZE));
    const builders = new Builders(sh, from, new Installer(sh, mem.uffd, (msg, data) => log.warn({ ...data, thread: 'mutator' }, msg)), 'mutator');
    const view = mem.heap.view();
    const u32 = new Uint32Array(view);
    const faults = new SelfService(sh, builders, u32, opts.faultPath, opts.stallMs, log);
    const reads = opts.faultPath === FaultPath.SELF && opts.unbuiltReads === UnbuiltReadPolicy.FROM_SPACE ? new UnbuiltReads(sh, u32, from, mem.types.rows, faults) : null;
    const writes = reads && opts.unbuiltWrites === UnbuiltReadPolicy.FROM_SPACE ? new UnbuiltWrites(sh, reads, faults, from) : null;
    let exposed: MutatorInternals | undefined;
    super(make, { opts, log, sh, types: mem.types, view, u32, address: mem.heap.address, faults, reads, writes }, (i) => (exposed = i));
    this.#in = exposed!;
    this.#idle = new IdleCompaction(sh, builders, u32, faults);
    this.#mem = mem;
    this.#sh = sh;
    this.requestedMode = opts.mode;
    this.mode = mode;
    this.marking = mode === Mode.STW ? Marking.PAUSE : opts.marking;
    this.fallbacks = deepFreeze(fallbacks); // chooseMode's own list
    this.capabilities = deepFreeze(caps); // probe()'s copy: the heap's own from here
    this.faultPath = opts.faultPath;
    this.unbuiltReads = opts.unbuiltReads;
    this.#collector = new Collector(
      { sh, opts, mode, builders, uffd: mem.uffd, log, mut: this.#in, inject: this.#in.inject, verify: () => this.verify(), trace },
      this.marking,
    );
    this.#in.setCycleActive(() => this.#collector.active);
    // Its fields are readonly in TypeScript only; the collector's own logger among them (a
    // hostile-caller audit: heap.log replaced from JavaScript hung the heap in a pause).
    Object.freeze(this);
  }

  /**
   * Creates a heap. Capabilities are probed here, not discovered by a crash later: the mode
   * falls back (and logs why) if the kernel lacks what it needs.
   */
  static async create(options: HeapOptions): Promise<Heap> {
    return Heap.#open(options, traceFromEnv());
  }

  /** create(), with or without MOVEGC_TRACE's lines (none for the warm-up's own heap, warmup.ts). */
  static async #open(options: HeapOptions, trace: boolean): Promise<Heap> {
    let opts = resolveOptions(options); // read once, validated, frozen: see options.ts
    const log = opts.logger ?? containedLogger(silentLogger());
    const caps = probe({ hide: [...opts.hide] });
    const { mode, fallbacks } = chooseMode(opts.mode, caps, { allowUnfixedMove: opts.allowUnfixedMove });
    for (const f of fallbacks) log.warn({ requested: opts.mode, mode }, `mode fallback: ${f}`);
    // 'idle' only where an idle thread can be made normal again: one starved on a busy machine
    // is made normal to be replaced or to exit (threads.ts), which an unprivileged process
    // cannot do (an audit: collections starved past 20 s as nobody, with busy loops beside).
    // 'batch' needs no such check: any thread may enter and leave SCHED_BATCH (sched(7)).
    const unidle = opts.collectorPolicy === CollectorPolicy.IDLE && mode !== Mode.STW ? native.idleUndoable() : '';
    if (unidle !== '') {
      const f = `collectorPolicy idle -> normal: this process cannot make an idle thread normal again (${unidle}: leaving SCHED_IDLE takes CAP_SYS_NICE or RLIMIT_NICE 20)`;
      log.warn({ requested: CollectorPolicy.IDLE }, f);
      fallbacks.push(f);
      opts = Object.freeze({ ...opts, collectorPolicy: CollectorPolicy.NORMAL });
    }
    const mem = HeapMemory.open(opts, caps, mode);
    let heap: Heap;
    try {
      heap = new Heap(HEAP_MAKE, opts, caps, mode, fallbacks, log, mem, trace);
    } catch (e) {
      mem.close();
      throw e;
    }
    heap.#in.register();
    try {
      try {
        await heap.#collector.start();
      } finally {
        mem.threadsStarted(); // they have reserved their ranges (or failed to)
      }
      warmUpAccessors(heap, heap.#in, heap.#sh);
      if (heap.marking === Marking.CONCURRENT) warmUpFlip(largeObjectWords(opts));
      if (mode !== Mode.STW) await rehearsePause((o) => Heap.#open(o, false), log);
    } catch (e) {
      await heap.close();
      throw internal(e, 'creating the heap'); // ours keep their code; anything else is a bug
    }
    log.info({ capacity: opts.capacity, mode, marking: heap.marking, uffd: caps.uffd.how, thp: caps.thp }, 'heap created');
    return heap;
  }

  // ---------------------------------------------------------------- collection

  get cycleActive(): boolean {
    return this.#collector.active;
  }
  /** Where the active cycle stands: 'idle', 'marking', 'planning' or 'compacting'. */
  get cyclePhase(): string {
    return this.#collector.phase;
  }
  /** Statistics of every finished cycle (most recent last, up to 1000). */
  get history(): readonly CycleStats[] {
    // A copy, records too: the heap appends to its own list (and drops the oldest), and reads
    // its records (progress(), gc()'s lookup). A list the caller froze or cleared made every
    // later cycle's end throw; a record the caller edited changed what progress(), gc() and
    // idle() said after (an audit: a renumbered record became progress().cycle).
    return this.#collector.history.map((st) => structuredClone(st));
  }

  /**
   * Runs a collection: finishes any active cycle, then marks (concurrently, awaiting the
   * marker), pauses to remark, plans (concurrently), and pauses to flip; returns once the
   * mutator may run again with compaction going on concurrently (await idle() for its end).
   * In `stw` mode the cycle is complete on return. Every Ref held across it is stale. The
   * statistics are a copy as of the return: idle() (or gc()) gives the finished cycle's.
   */
  async collect(): Promise<CycleStats> {
    this.#in.checkOpen();
    return this.#collector.collect(() => this.#in.checkOpen());
  }

  /**
   * The non-blocking form: starts a cycle (concurrent marking begins at once) and returns;
   * the pauses then run inside safepoint() calls. False if a cycle is already active.
   */
  requestCollection(): boolean {
    this.#in.checkOpen();
    return this.#collector.request();
  }

  /**
   * A safepoint, for a loop that must not wait (a frame loop calls it between frames): runs
   * the pause that is due, if any (the marking pause once the marker is done, the compaction
   * pause once the plan is ready, the end of the cycle once every page is installed), and
   * never waits for a collector thread. Returns true when a pause ran: every Ref held across
   * the call is then stale (re-read them from Roots). Ending a cycle makes none stale.
   */
  safepoint(): boolean {
    this.#in.check();
    return this.#collector.safepoint();
  }

  /**
   * Idle time for the collector, from a loop that has some to spare (a frame loop between
   * frames, with the time its next frame starts): while a cycle compacts, the mutator's thread
   * builds and installs pages itself until `deadline` (a performance.now() time), those its
   * roots reach first, and returns how many (idle.ts). Moves no object: no Ref goes stale.
   * Runs no pause (safepoint() does). 0 at once when no cycle compacts or no time is left.
   * A page takes 20-60 µs on the mutator's thread here, a 2 MiB span (hugePages) 1-3 ms;
   * none is begun that its measured cost says would end past the deadline.
   */
  idleCompact(deadline: number): number {
    this.#in.check();
    if (typeof deadline !== 'number' || Number.isNaN(deadline)) throw invalidArg(`idleCompact(deadline): a performance.now() time in ms, not ${shown(deadline)}`);
    if (this.#collector.phase !== 'compacting' || deadline <= performance.now()) return 0;
    return this.#idle.run(deadline, () => this.#in.rootWords());
  }

  /**
   * Waits for the active (or requested) cycle to end; returns the last cycle's statistics. A
   * requested cycle's pending pauses run here: Refs held across it are then stale.
   */
  async idle(): Promise<CycleStats | undefined> {
    this.#in.check();
    return this.#collector.idle();
  }

  /** collect() and wait for the end of the cycle it started (not of one a racing call started). */
  async gc(): Promise<CycleStats> {
    const { cycle } = await this.collect();
    const st = await this.#collector.finished(cycle);
    if (!st) throw new MoveGcError(ErrorCode.CLOSED, `cycle ${cycle} did not finish: the heap was closed`);
    return st;
  }

  /**
   * Where the collector stands, read live from its shared counters (cheap: for tools that
   * watch a cycle, e.g. a benchmark's timeline). Counters belong to the current cycle.
   */
  progress(): Progress {
    this.#in.check();
    return progressOf(this.#sh, this.#collector.activeCycle ?? this.#collector.history.at(-1)?.cycle ?? 0, this.#collector.phase, this.#in.barrierLog.entries);
  }

  /**
   * A census of the heap (as ART's and MMTk's heap dumps give): objects and bytes per type,
   * and the dead space fillers hold, by walking every object up to the top. During compaction
   * the walk faults in the pages it reads.
   */
  census(): Census {
    this.#in.check();
    return census(this.#in.u32, this.#in.types, this.#in.typeList, this.#in.top);
  }

  /** @internal Control words and clocks of the active cycle, for diagnosing a stuck cycle. */
  _debugState(): Record<string, unknown> {
    return debugState(this.#sh, this.#collector.phase);
  }

  /** Walks the heap and checks every object and reference (see verify.ts). */
  verify(): VerifyResult {
    this.#in.check();
    return verifyHeap(this.#in.u32, this.#in.types.rows, this.#in.typeCount, this.#in.top, this.#in.rootWords());
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Finishes any active cycle, stops the collector threads, and releases every mapping and
   * file descriptor. Idempotent. (A heap never closed does not keep the process alive; at
   * exit the kernel takes back its mappings and descriptors, mid-cycle or not.)
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#in.closing();
      this.#closing = this.#close();
    }
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#collector.finishForClose();
    this.#in.retire();
    const { stuck, gone } = await this.#collector.stop();
    if (stuck.length === 0) this.#mem.close();
    else {
      // close() must not wait for a debugger; a stuck thread may still touch the mappings.
      this.log.warn({ threads: stuck }, 'collector threads did not exit: the heap is released when they do');
      void gone.then(() => this.#mem.close());
    }
    this.log.info({ cycles: this.#collector.history.length }, 'heap closed');
  }
}
