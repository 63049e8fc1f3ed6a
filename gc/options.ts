/**
 * Heap options, validated in one place. The caller's object is read exactly once, key by key,
 * into a plain snapshot (a getter or Proxy cannot hand a different value after validation),
 * unknown keys are refused (a typo such as `verbos` must not pass silently), and the result is
 * frozen: the heap never reads the caller's object again.
 */
import { HEAP_ALIGN, PMD_WORDS, WORD } from './layout.js';
import { ErrorCode, MoveGcError, invalidArg, isMoveGcError } from './errors.js';
import { containedLogger, type HeapLogger, type Logger } from './log.js';
import type { BuilderName } from './build.js';
import { MODES, Mode, type ModeName } from './modes.js';
import { readHidden, type Hideable } from './probe.js';
import { isArray } from './validate.js';

/**
 * The largest heap: 16 GiB less 2 MiB, so that from-space plus its scratch pages fits one
 * Uint32Array (MAX_VIEW_BYTES). Word indices stay below 2^31 (they fit the Int32 control
 * words); u32 indices reach 2^32 - 1, so code indexing the heap as u32 must not use int32
 * arithmetic (`| 0`, `<<`) on them. Tested near the top by test/heap.large.test.ts.
 */
export const MAX_CAPACITY = 2 ** 34 - 2 * 1024 * 1024;
/**
 * Heaps of 1 GiB or more are mapped 1 GiB aligned (heap and from-space alike): the compaction
 * pause's mremap then moves each whole GiB as one page-table entry (one TLB flush) instead of
 * 512 PMD entries, each flushed on its own: 1 GiB in 0.1 ms instead of 5-7 ms with another
 * thread of the process running (pause.ts).
 */
export const PUD_ALIGN = 1024 * 1024 * 1024;
/**
 * Default moveMinRun. x86 invalidates a range of up to 33 pages page by page
 * (tlb_single_page_flush_ceiling) and flushes the whole TLB above that; on these virtual
 * machines each page's invalidation costs a trap: MOVE of 32 pages per call cost 4738 ns per
 * page, of 34 pages 1340 (bench/floor.ts). COPY into an empty entry needs no flush.
 */
export const DEFAULT_MOVE_MIN_RUN = 34;
/** The compactor's longest run (builders.ts MAX_BATCH). */
export const MAX_MOVE_MIN_RUN = 64;

/** Default largeObjectBytes: 16 pages, so that a run of WHOLE pages is long enough to install whole (compact.ts MIN_WHOLE_RUN). */
export const LARGE_OBJECT_BYTES = 65536;
/** largeObjectBytes in heap words: the allocator's and the plan's threshold (0: never). */
export const largeObjectWords = (opts: ResolvedOptions): number => Math.ceil(opts.largeObjectBytes / WORD);
/** Objects at least this long start on a 2 MiB boundary and keep it (0: never): hugePages with large objects on. */
export const hugeObjectWords = (opts: ResolvedOptions): number => (opts.hugePages && opts.largeObjectBytes > 0 ? PMD_WORDS : 0);
export const mapAlignment = (capacity: number): number => (capacity >= PUD_ALIGN ? PUD_ALIGN : HEAP_ALIGN);

export const PauseOrder = Object.freeze({
  /** mremap, then register: page tables move in bulk (O(heap / 2 MiB)). The default. */
  REMAP_FIRST: 'remap-first',
  /** ART's order: register, then mremap (O(pages) on kernels that forbid bulk moves of registered VMAs). */
  REGISTER_FIRST: 'register-first',
} as const);
export type PauseOrderName = (typeof PauseOrder)[keyof typeof PauseOrder];

export const FaultInstallPolicy = Object.freeze({ COPY: 'copy', MOVE: 'move' } as const);
export type FaultInstallName = (typeof FaultInstallPolicy)[keyof typeof FaultInstallPolicy];

/** Where marking runs: in a collector thread while the mutator runs, or in the mutator's pause. */
export const Marking = Object.freeze({ CONCURRENT: 'concurrent', PAUSE: 'pause' } as const);
export type MarkingName = (typeof Marking)[keyof typeof Marking];

/**
 * Scheduling class of the compactor and the marker (threads.ts): 'batch' (SCHED_BATCH, the
 * default: a collector thread the mutator wakes never preempts it, so the flip's wake-up of the
 * compactor does not take the mutator's CPU in the middle of its pause; they share the CPUs
 * fairly otherwise), 'normal' (SCHED_OTHER: a woken thread with less CPU used preempts the
 * running one), or 'idle' (SCHED_IDLE: the kernel gives any other thread their CPU at once; they
 * run on what is left). The fault server stays normal: a thread blocked in a fault waits for it.
 */
export const CollectorPolicy = Object.freeze({ NORMAL: 'normal', IDLE: 'idle', BATCH: 'batch' } as const);
export type CollectorPolicyName = (typeof CollectorPolicy)[keyof typeof CollectorPolicy];

/** Who builds a page the mutator touches during compaction (selfservice.ts). */
export const FaultPath = Object.freeze({ SELF: 'self', HANDLER: 'handler' } as const);
export type FaultPathName = (typeof FaultPath)[keyof typeof FaultPath];

/** How an accessor reads a page not yet built, with faultPath 'self' (unbuilt-reads.ts). */
export const UnbuiltReadPolicy = Object.freeze({ FROM_SPACE: 'from-space', BUILD: 'build' } as const);
export type UnbuiltReadsName = (typeof UnbuiltReadPolicy)[keyof typeof UnbuiltReadPolicy];

export interface InjectOptions {
  /** Fail every Nth MOVE call with EAGAIN (the installer retries). */
  eagainEvery?: number;
  /** Stall the compactor for delayMs after building this many pages. */
  delayAtPage?: number;
  delayMs?: number;
  /** Kill the compactor (an exception ends its Worker) after building this many pages. */
  dieAtPage?: number;
  /** fork(2) a child after the compactor built this many pages; it lives until the cycle ends. */
  forkAtPage?: number;
  /** Kill the fault server when it reads its Nth fault of the cycle, before serving it (see watchdog.ts). */
  faultDieAtFault?: number;
  /** The fault server sleeps this long, once per cycle, as it starts taking over from a gone compactor. */
  faultTakeoverDelayMs?: number;
  /**
   * The fault server takes none of a gone compactor's pages over before it has read this many
   * faults of the cycle: with faultDieAtFault at or below it, never. A rendezvous, not a
   * timing window: the mutator's fault meets a dead compactor and a live fault server however
   * late it comes (watchdog tests; a 200 ms takeover delay missed it on a loaded machine).
   */
  faultTakeoverAtFault?: number;
  /**
   * The fault server, once per cycle, holds a page it built for a fault this long without
   * beating (a thread descheduled there), before it enters the page's install (Built) or inside
   * it (Install); it stops holding as soon as a later cycle compacts.
   */
  faultHoldBuiltMs?: number;
  faultHoldInstallMs?: number;
  /**
   * The fault server, once per cycle, holds a page it installed this long before its state
   * word says MAPPED (a thread descheduled there: the faulting thread runs on meanwhile).
   */
  faultHoldMappedMs?: number;
  /**
   * The fault server, once per cycle, holds this long between a fault's install and its timing
   * (the fault still counts as in flight: the cycle's end waits for its sample, unless the
   * server turns stale).
   */
  faultHoldTimedMs?: number;
  /** The marker standing in for compaction (standin.ts) holds a page it built, before its install, as faultHoldBuiltMs does. */
  markHoldBuiltMs?: number;
  /**
   * The mutator's first read of a cycle served from from-space (unbuilt-reads.ts) sleeps this
   * long between its look at the page's state and its read (a thread descheduled there).
   */
  readHoldMs?: number;
  /** The same for the mutator's first write of a cycle made in from-space (unbuilt-writes.ts): between its claim of the page and its write. */
  writeHoldMs?: number;
  /** The compactor, once per cycle, holds its first WHOLE run this long between its MOVE and its pages' MAPPED. */
  wholeHoldMappedMs?: number;
  /** The compactor, once per cycle, holds its first step of built pages this long between its claims and its build. */
  stepHoldMs?: number;
  /** Stall the marker for markDelayMs after tracing this many objects (concurrent marking). */
  markDelayAtObject?: number;
  markDelayMs?: number;
  /** Kill the marker after tracing this many objects (concurrent marking). */
  markDieAtObject?: number;
  /** Stall the marker this long after it first takes entries from the barrier log, before it says it is busy again. */
  markLogDelayMs?: number;
  /** Hold each marker job this long between posting it and bumping the word that wakes the marker (the mutator sleeps: at most 10 000). */
  markHandGapMs?: number;
  /** The compaction pause sleeps this long between publishing PHASE=COMPACTING and bumping CYCLE (at most 10 000). */
  flipGapMs?: number;
  /** The compaction pause's Nth kernel call (each mremap and UFFDIO_REGISTER, in order) fails: the pause takes back what it did. */
  pauseFailAtCall?: number;
  /** 1: and the undo of that pause fails too (its first kernel call): the heap is lost, every call refuses but close(). */
  pauseFailUndo?: number;
  /** The mutator's Nth self-service build of a cycle throws once it holds the page's claim (counted as below). */
  selfFailAtBuild?: number;
  /**
   * The mutator's Nth self-service build of a cycle throws once built, before its install (the
   * pages an awaited end of the cycle builds on the mutator's thread count as its builds too).
   */
  selfFailAtInstall?: number;
  /** 1: every collector thread ends (without an error) before it is ready: create fails with ERR_COLLECTOR_FAILED. */
  startExit?: number;
}

export interface HeapOptions {
  /** Bytes; a multiple of 2 MiB, at most MAX_CAPACITY (16 GiB less 2 MiB). */
  capacity: number;
  /** Requested mode; falls back move -> copy -> stw when the kernel lacks what it needs. */
  mode?: ModeName;
  /** Marking: 'concurrent' (default in move and copy) or 'pause'; stw always marks in its pause. */
  marking?: MarkingName;
  /** Leading pages at least this live stay in place (default 0.95; >1 disables). */
  denseThreshold?: number;
  /**
   * Objects of at least this many bytes are allocated on a page boundary and kept on one when
   * compacted, so their full pages move whole, without a build (default 65536; 0: never).
   */
  largeObjectBytes?: number;
  /**
   * Back the heap with transparent huge pages (MADV_HUGEPAGE instead of MADV_NOHUGEPAGE;
   * default false). In move mode every aligned 2 MiB of plain pages is then built into a huge
   * page and moved in as one page-table entry, by the compactor or by a mutator that touches
   * it first (a stop of one 2 MiB build instead of one page's; its pages' first touches are
   * then nearly free). Objects of 2 MiB and more (with largeObjectBytes on) start on a 2 MiB
   * boundary and keep one when compacted, so each of their full 2 MiB spans moves unbuilt.
   * Costs up to 2 MiB of gap per such object, and the kernel splits a huge page whenever part
   * of it is moved. A page pinned behind the heap's back (io_uring, DMA; not heap.pin) makes
   * MOVE refuse its whole huge page: EBUSY, 512 copies.
   */
  hugePages?: boolean;
  /** A collector thread silent this long (ms) is considered stalled or dead and taken over. */
  stallMs?: number;
  /**
   * The compactor's and the marker's scheduling class: 'batch' (default: SCHED_BATCH, never
   * preempting the mutator that wakes them), 'normal' or 'idle' (SCHED_IDLE: they yield their
   * CPU to any other thread at once); see CollectorPolicy.
   */
  collectorPolicy?: CollectorPolicyName;
  /** Pause order: 'remap-first' (default, O(1) in heap size) or 'register-first' (ART's); see pause.ts. */
  pauseOrder?: PauseOrderName;
  /** Page builder: 'native' (default, native/build.cc) or 'js' (gc/build.ts, the readable reference). */
  builder?: BuilderName;
  /** Move mode: install pages built for faults with 'copy' (default: no TLB flush) or 'move'; see install.ts. */
  faultInstall?: FaultInstallName;
  /**
   * Move mode: the compactor's runs shorter than this many pages are installed by COPY from its
   * private pages instead of MOVE (default 34; 1: every run moves; at most 64, its longest
   * run); see MOVE_MIN_RUN in compact.ts.
   */
  moveMinRun?: number;
  /**
   * Who builds a page the mutator touches during compaction: 'self' (default: the accessor
   * builds and installs it on the mutator's thread) or 'handler' (the kernel faults, the fault
   * server thread serves); see selfservice.ts. MOVEGC_FAULT_PATH changes the default.
   */
  faultPath?: FaultPathName;
  /**
   * With faultPath 'self': a read (getRef, getU8/U32/F64, length, readBytes of at most two pages) of a
   * page not yet built is served from from-space, the page left to the compactor
   * ('from-space', default), or builds the page as any other access does ('build'); see
   * unbuilt-reads.ts for when each pays. MOVEGC_UNBUILT_READS=build changes the default.
   */
  unbuiltReads?: UnbuiltReadsName;
  /**
   * With unbuiltReads 'from-space': a write of one field (setRef, setU8/U32/F64) to a page
   * nobody has claimed is made in from-space, the page left to the compactor ('from-space',
   * default), or builds the page first ('build'); see unbuilt-writes.ts.
   * MOVEGC_UNBUILT_WRITES=build changes the default.
   */
  unbuiltWrites?: UnbuiltReadsName;
  /** MADV_DONTFORK on the heap's mappings (default true): a child then shares no heap page. */
  dontFork?: boolean;
  /** Run the verifier after every cycle and throw ERR_VERIFY_FAILED if it fails. */
  verify?: boolean;
  /** Hide kernel capabilities, to exercise the fallbacks. */
  hide?: Hideable[];
  /** Use MOVE even on a kernel without the fixes ART gates on (probe().moveFixes); default false. */
  allowUnfixedMove?: boolean;
  inject?: InjectOptions;
  logger?: Logger;
}

/** Options after validation: every default filled in, frozen. */
export interface ResolvedOptions {
  readonly capacity: number;
  readonly mode: ModeName;
  readonly marking: MarkingName;
  readonly denseThreshold: number;
  readonly largeObjectBytes: number;
  readonly hugePages: boolean;
  readonly stallMs: number;
  readonly collectorPolicy: CollectorPolicyName;
  readonly pauseOrder: PauseOrderName;
  readonly faultInstall: FaultInstallName;
  readonly moveMinRun: number;
  readonly builder: BuilderName;
  readonly faultPath: FaultPathName;
  readonly unbuiltReads: UnbuiltReadsName;
  readonly unbuiltWrites: UnbuiltReadsName;
  readonly dontFork: boolean;
  readonly verify: boolean;
  readonly hide: readonly Hideable[];
  readonly allowUnfixedMove: boolean;
  readonly inject: Readonly<InjectOptions>;
  readonly logger: HeapLogger | undefined;
}

const HEAP_KEYS = ['capacity', 'mode', 'marking', 'denseThreshold', 'largeObjectBytes', 'hugePages', 'stallMs', 'collectorPolicy', 'pauseOrder', 'faultInstall', 'moveMinRun', 'builder', 'faultPath', 'unbuiltReads', 'unbuiltWrites', 'dontFork', 'verify', 'hide', 'allowUnfixedMove', 'inject', 'logger'] as const;
const INJECT_KEYS = ['eagainEvery', 'delayAtPage', 'delayMs', 'dieAtPage', 'forkAtPage', 'faultDieAtFault', 'faultTakeoverDelayMs', 'faultTakeoverAtFault', 'faultHoldBuiltMs', 'faultHoldInstallMs', 'faultHoldMappedMs', 'faultHoldTimedMs', 'markHoldBuiltMs', 'readHoldMs', 'writeHoldMs', 'wholeHoldMappedMs', 'stepHoldMs', 'markDelayAtObject', 'markDelayMs', 'markDieAtObject', 'markLogDelayMs', 'markHandGapMs', 'flipGapMs', 'pauseFailAtCall', 'pauseFailUndo', 'selfFailAtBuild', 'selfFailAtInstall', 'startExit'] as const;

/**
 * Reads every own enumerable key of `input` once into a plain object, refusing keys not in
 * `known`. A throwing getter or Proxy trap becomes a typed error.
 */
function snapshot(input: unknown, known: readonly string[], what: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || isArray(what, input)) throw invalidArg(`${what} must be an object`);
  const out: Record<string, unknown> = Object.create(null);
  try {
    for (const k of Object.keys(input)) {
      if (!known.includes(k)) throw new MoveGcError(ErrorCode.UNKNOWN_OPTION, `unknown ${what} key ${JSON.stringify(k)} (expected one of ${known.join(', ')})`);
      out[k] = (input as Record<string, unknown>)[k];
    }
  } catch (e) {
    if (isMoveGcError(e)) throw e;
    throw invalidArg(`${what} could not be read (a getter or Proxy trap threw)`);
  }
  return out;
}

function oneOf<T extends string>(key: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw invalidArg(`${key} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${typeof v === 'string' ? `'${v}'` : typeof v}`);
  return v as T;
}

function intIn(key: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw invalidArg(`${key} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `${key} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

function bool(key: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalidArg(`${key} must be a boolean, got ${typeof v}`);
  return v;
}

/** Injections that sleep the mutator's own thread inside a heap call: bounded, as a pause is. */
const MUTATOR_SLEEPS = { markHandGapMs: true, flipGapMs: true, readHoldMs: true, writeHoldMs: true } as const;
const MUTATOR_SLEEP_MAX_MS = 10_000;

export function resolveInject(input: unknown): Readonly<InjectOptions> {
  const s = snapshot(input, INJECT_KEYS, 'inject option');
  const out: InjectOptions = {};
  for (const k of INJECT_KEYS) {
    const v = s[k];
    if (v !== undefined) out[k] = intIn(`inject.${k}`, v, 0, k in MUTATOR_SLEEPS ? MUTATOR_SLEEP_MAX_MS : 0x7fffffff, 0);
  }
  return Object.freeze(out);
}

/**
 * A default from the environment: unset or empty keeps `dflt`; a value not among `allowed` is
 * refused, as a bad MOVEGC_LOG is (an audit: a misspelled MOVEGC_FAULT_PATH ran the default
 * path, and a test run meant for the handler path tested the other one).
 */
function envDefault<T extends string>(name: string, allowed: readonly T[], dflt: T): T {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `${name} must be one of ${allowed.join(', ')} (or unset), got '${v.slice(0, 40)}'`);
  return v as T;
}

export function resolveOptions(input: unknown): ResolvedOptions {
  const s = snapshot(input, HEAP_KEYS, 'heap option');
  const cap = s.capacity;
  if (typeof cap !== 'number') throw invalidArg('capacity must be a number');
  if (!Number.isSafeInteger(cap) || cap <= 0 || cap % HEAP_ALIGN !== 0 || cap > MAX_CAPACITY)
    throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `capacity must be a positive multiple of 2 MiB up to ${MAX_CAPACITY} bytes, got ${cap}`);
  const mode = oneOf<ModeName>('mode', s.mode, MODES, Mode.MOVE);
  // MOVEGC_MARKING=pause changes the default (e.g. to run a test suite with marking in the pause).
  const envMarking = envDefault('MOVEGC_MARKING', [Marking.CONCURRENT, Marking.PAUSE], Marking.CONCURRENT);
  const marking = oneOf<MarkingName>('marking', s.marking, [Marking.CONCURRENT, Marking.PAUSE], envMarking);
  const envPath = envDefault('MOVEGC_FAULT_PATH', [FaultPath.SELF, FaultPath.HANDLER], FaultPath.SELF);
  const envReads = envDefault('MOVEGC_UNBUILT_READS', [UnbuiltReadPolicy.BUILD, UnbuiltReadPolicy.FROM_SPACE], UnbuiltReadPolicy.FROM_SPACE);
  const envWrites = envDefault('MOVEGC_UNBUILT_WRITES', [UnbuiltReadPolicy.BUILD, UnbuiltReadPolicy.FROM_SPACE], UnbuiltReadPolicy.FROM_SPACE);
  const { stallMs, denseThreshold, largeObjectBytes, hide, logger } = s;
  if (stallMs !== undefined) {
    if (typeof stallMs !== 'number') throw invalidArg(`stallMs must be a number, got ${typeof stallMs}`);
    if (!Number.isFinite(stallMs) || stallMs < 1 || stallMs > 600_000) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `stallMs must be in [1, 600000], got ${stallMs}`);
  }
  if (denseThreshold !== undefined) {
    if (typeof denseThreshold !== 'number') throw invalidArg(`denseThreshold must be a number, got ${typeof denseThreshold}`);
    if (Number.isNaN(denseThreshold) || denseThreshold < 0) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `denseThreshold must be >= 0 (above 1 disables), got ${denseThreshold}`);
  }
  if (largeObjectBytes !== undefined) {
    if (typeof largeObjectBytes !== 'number') throw invalidArg(`largeObjectBytes must be a number, got ${typeof largeObjectBytes}`);
    if (!Number.isSafeInteger(largeObjectBytes) || largeObjectBytes < 0 || largeObjectBytes > cap)
      throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `largeObjectBytes must be an integer in [0, capacity] (0: never), got ${largeObjectBytes}`);
  }
  const hidden = readHidden('hide', hide);
  let log: HeapLogger | undefined;
  if (logger !== undefined) {
    if (typeof logger !== 'object' || logger === null) throw invalidArg('logger must be a pino-style logger object');
    log = containedLogger(logger);
  }
  return Object.freeze({
    capacity: cap,
    mode,
    marking,
    denseThreshold: (denseThreshold as number | undefined) ?? 0.95,
    largeObjectBytes: (largeObjectBytes as number | undefined) ?? LARGE_OBJECT_BYTES,
    hugePages: bool('hugePages', s.hugePages, false),
    stallMs: (stallMs as number | undefined) ?? 200,
    collectorPolicy: oneOf<CollectorPolicyName>('collectorPolicy', s.collectorPolicy, [CollectorPolicy.NORMAL, CollectorPolicy.IDLE, CollectorPolicy.BATCH], CollectorPolicy.BATCH),
    pauseOrder: oneOf<PauseOrderName>('pauseOrder', s.pauseOrder, [PauseOrder.REMAP_FIRST, PauseOrder.REGISTER_FIRST], PauseOrder.REMAP_FIRST),
    faultInstall: oneOf<FaultInstallName>('faultInstall', s.faultInstall, [FaultInstallPolicy.COPY, FaultInstallPolicy.MOVE], FaultInstallPolicy.COPY),
    moveMinRun: intIn('moveMinRun', s.moveMinRun, 1, MAX_MOVE_MIN_RUN, DEFAULT_MOVE_MIN_RUN),
    builder: oneOf<BuilderName>('builder', s.builder, ['native', 'js'], 'native'),
    faultPath: oneOf<FaultPathName>('faultPath', s.faultPath, [FaultPath.SELF, FaultPath.HANDLER], envPath),
    unbuiltReads: oneOf<UnbuiltReadsName>('unbuiltReads', s.unbuiltReads, [UnbuiltReadPolicy.FROM_SPACE, UnbuiltReadPolicy.BUILD], envReads),
    unbuiltWrites: oneOf<UnbuiltReadsName>('unbuiltWrites', s.unbuiltWrites, [UnbuiltReadPolicy.FROM_SPACE, UnbuiltReadPolicy.BUILD], envWrites),
    dontFork: bool('dontFork', s.dontFork, true),
    verify: bool('verify', s.verify, false),
    hide: Object.freeze(hidden),
    allowUnfixedMove: bool('allowUnfixedMove', s.allowUnfixedMove, false),
    inject: s.inject === undefined ? Object.freeze({}) : resolveInject(s.inject),
    logger: log,
  });
}
