/**
 * What the phase driver (cycle.ts) works on: the mutator's side of the heap (MutatorState,
 * implemented by MutatorHeap, mutator.ts, with what Heap alone uses of it: MutatorInternals,
 * and what it is built from: MutatorParts), the collector's parts it is given (CycleContext),
 * and the state of the active cycle (ActiveCycle). Apart from the driver so that the files its phases call (the
 * cycle's end: cycle-end.ts) can share them without importing the driver.
 */
import type { BarrierLog } from './barrier.js';
import type { Builders } from './builders.js';
import type { MoveGcError } from './errors.js';
import type { HeapType } from './heap-types.js';
import type { Holes } from './holes.js';
import type { TypeTable } from './layout.js';
import type { HeapLogger as Logger } from './log.js';
import type { ModeName } from './modes.js';
import type { InjectOptions, ResolvedOptions } from './options.js';
import type { Plan } from './plan.js';
import type { SelfService } from './selfservice.js';
import type { Shared } from './shared.js';
import type { CycleStats } from './stats.js';
import type { CollectorThreads } from './threads.js';
import type { Userfaultfd } from './uffd.js';
import type { UnbuiltReads } from './unbuilt-reads.js';
import type { UnbuiltWrites } from './unbuilt-writes.js';

/** What the driver needs of the mutator's side of the heap (implemented by MutatorHeap, mutator.ts). */
export interface MutatorState {
  readonly u32: Uint32Array;
  top: number;
  readonly typeCount: number;
  readonly roots: Uint32Array;
  readonly rootCount: number;
  /** Root words then pinned words (non-null). */
  rootWords(): number[];
  pinWords(): number[];
  /** Bumped whenever a pin is added: a plan made before cannot know its span. */
  readonly pinsAdded: number;
  /** A new reference tag: every Ref handed out before is stale. */
  retag(): void;
  /** The barrier: on with its black boundary, or off. */
  setBarrier(on: boolean, blackStart: number): void;
  /** From the marking pause to the flip: references to unmarked objects below `w` are refused (0: none). */
  setUnmarkedBelow(w: number): void;
  /** Compaction under way: the accessors check page states (selfservice.ts). */
  setCompacting(on: boolean): void;
  /** Whether they still do: they stop once the mutator sees every page installed (mutator.ts #settle). */
  readonly compacting: boolean;
  /** The mutator's page builds (the accessors', and the awaited end's: compaction-end.ts). */
  readonly selfService: SelfService;
  readonly barrierLog: BarrierLog;
  /** Gaps below pinned objects the allocator may use between cycles (never while one runs): set as a cycle ends. */
  readonly holes: Holes;
  /** The heap can no longer be used (a failed pause could not be undone): every call throws `e`'s message. */
  lose(e: MoveGcError): void;
  /** This epoch's object-start bitmap index in sh.objects; swapped at the flip. */
  epochStarts: number;
  /** While a cycle runs: the filler gaps the allocator put before large objects, [start, end) pairs. */
  allocGaps: number[] | null;
  nextStartsExtent: number;
}

/** Where the active cycle stands. */
export const CyclePhase = { MARKING: 'marking', PLANNING: 'planning', COMPACTING: 'compacting' } as const;
export type CyclePhaseName = (typeof CyclePhase)[keyof typeof CyclePhase];

export interface ActiveCycle {
  stats: CycleStats;
  phase: CyclePhaseName;
  /** Objects at or above this word were allocated since marking began: live (black). */
  blackStart: number;
  typeCount: number;
  /** The top at the marking pause: the plan covers what lies below. */
  planTop: number;
  plan: Plan | null;
  pinsAdded: number;
  /** The marker request carrying this cycle's current job (marker-link.ts). */
  request: number;
  /** Begun by requestCollection() and not yet taken by a collect() (CycleDriver.adopt). */
  adoptable?: boolean;
  /** Why the cycle ended before its compaction pause (nothing moved). */
  error?: Error;
  pauseEnd: number;
  /** Where live data ends in the new layout (plan.ts liveEndOf): the top goes back there at the end. */
  liveEnd: number;
}

export interface CycleContext {
  sh: Shared;
  opts: ResolvedOptions;
  mode: ModeName;
  threads: CollectorThreads;
  builders: Builders;
  uffd: Userfaultfd | null;
  log: Logger;
  mut: MutatorState;
  inject: () => Readonly<InjectOptions>;
  verify: () => { ok: boolean; errors: string[] };
  /** One line per cycle on stderr (MOVEGC_TRACE, trace.ts); never for the warm-up's own heap. */
  trace: boolean;
}

/** What MutatorHeap is built from (Heap's constructor). */
export interface MutatorParts {
  opts: ResolvedOptions;
  log: Logger;
  sh: Shared;
  types: TypeTable;
  /** The heap's bytes (an external ArrayBuffer over its mapping), as words, and its address. */
  view: ArrayBuffer;
  u32: Uint32Array;
  address: number;
  faults: SelfService;
  /** The read path of unbuilt pages (options.unbuiltReads 'from-space' with faultPath 'self'), or null. */
  reads: UnbuiltReads | null;
  /** The accessors' write path of unbuilt pages (options.unbuiltWrites 'from-space' with reads from from-space), or null. */
  writes: UnbuiltWrites | null;
}

/** What the phase driver (MutatorState) and Heap use of MutatorHeap, and no caller may. */
export interface MutatorInternals extends MutatorState {
  /** The accessors' read path of unbuilt pages (unbuilt-reads.ts), or null: for the warm-up. */
  readonly reads: UnbuiltReads | null;
  readonly typeList: HeapType[];
  readonly types: TypeTable;
  inject(): Readonly<InjectOptions>;
  /** Whether a cycle runs: the allocator takes holes only between cycles. */
  setCycleActive(f: () => boolean): void;
  /** Named by other heaps' reference errors, from now until retire(). */
  register(): void;
  /** close() was called: calls that start work are refused from now on. */
  closing(): void;
  /** Closed: every call refuses; the reference tag is given back. */
  retire(): void;
  /** Throws once the heap is closed (or lost). */
  check(): void;
  /** For calls that start work: throws once close() was called, even before it completes. */
  checkOpen(): void;
  /** The accessors' checks on or off, and nothing else; settleEvery: see mutator.ts #settle (warmup.ts: warmUpAccessors). */
  setChecks(compacting: boolean, barrier: boolean, settleEvery?: number): void;
}
