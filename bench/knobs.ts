/**
 * Heap options that change results, as benchmark flags. Each row is one HeapOptions field: the
 * bench passes it explicitly (so the JSON records exactly what the heap ran with), `bench`
 * takes one value, `sweep` takes a comma-separated list and runs every combination.
 * A new heap option that changes results is one more row here, nothing else to change.
 *
 * No run-time import of gc/ here: the CLI reads this table for --help without loading the addon.
 */
import type { CollectorPolicyName, FaultInstallName, FaultPathName, HeapOptions, MarkingName, PauseOrderName, UnbuiltReadsName } from '../gc/options.js';

export interface Knob {
  /** The command-line flag (without --). */
  flag: string;
  /** The HeapOptions field. */
  option: keyof HeapOptions;
  /** The value the bench passes when the flag is not given (the heap's own default). */
  default: string | number;
  /** The environment variable that changes the heap's default (gc/options.ts envDefault): the bench's too. */
  env?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** Whole numbers only (refused by the command line, not by the heap once the run started). */
  integer?: true;
  /** A boolean option, given as 'on' or 'off' (see heapOptionsOf). */
  boolean?: true;
  help: string;
}

export const KNOBS: readonly Knob[] = [
  {
    flag: 'pause-order', option: 'pauseOrder', default: 'remap-first', choices: ['remap-first', 'register-first'] satisfies PauseOrderName[],
    help: 'compaction pause: mremap then register (O(1) in heap size) or ART\'s register then mremap',
  },
  {
    flag: 'fault-install', option: 'faultInstall', default: 'copy', choices: ['copy', 'move'] satisfies FaultInstallName[],
    help: 'move mode: install single pages built for faults with UFFDIO_COPY (no TLB flush) or UFFDIO_MOVE',
  },
  {
    flag: 'move-min-run', option: 'moveMinRun', default: 34, min: 1, max: 64, integer: true,
    help: 'move mode: the compactor\'s runs shorter than this many pages are installed with UFFDIO_COPY from its private pages (1: every run moves)',
  },
  { flag: 'dense-threshold', option: 'denseThreshold', default: 0.95, min: 0, help: 'leading pages at least this live stay in place (above 1 disables)' },
  {
    flag: 'large-object-bytes', option: 'largeObjectBytes', default: 65536, min: 0, integer: true,
    help: 'objects at least this large start on a page and keep doing so: their full pages are installed whole, unbuilt (0: never)',
  },
  {
    flag: 'huge-pages', option: 'hugePages', default: 'off', choices: ['off', 'on'], boolean: true,
    help: 'back the heap with transparent huge pages; in move mode pages are built 2 MiB at a time into a huge page and moved in as one PMD, and objects of 2 MiB and more keep a 2 MiB boundary so their full spans move unbuilt',
  },
  {
    flag: 'collector-policy', option: 'collectorPolicy', default: 'batch', choices: ['batch', 'normal', 'idle'] satisfies CollectorPolicyName[],
    help: 'scheduling class of the compactor and the marker: batch (SCHED_BATCH: woken, they never preempt the mutator), normal, or idle (SCHED_IDLE: any other thread takes their CPU at once)',
  },
  {
    flag: 'builder', option: 'builder', default: 'native', choices: ['native', 'js'],
    help: 'page builder: compiled (native/build.cc) or the TypeScript reference (gc/build.ts)',
  },
  {
    flag: 'fault-path', env: 'MOVEGC_FAULT_PATH', option: 'faultPath', default: 'self', choices: ['self', 'handler'] satisfies FaultPathName[],
    help: 'a page the mutator touches during compaction: built by the accessor itself, or left to the kernel fault and the fault server thread',
  },
  {
    flag: 'unbuilt-reads', env: 'MOVEGC_UNBUILT_READS', option: 'unbuiltReads', default: 'from-space', choices: ['build', 'from-space'] satisfies UnbuiltReadsName[],
    help: "with --fault-path self: a read of a page not yet built builds the page as any access does, or is served from from-space (the page left to the compactor)",
  },
  {
    flag: 'unbuilt-writes', env: 'MOVEGC_UNBUILT_WRITES', option: 'unbuiltWrites', default: 'from-space', choices: ['build', 'from-space'] satisfies UnbuiltReadsName[],
    help: 'with --unbuilt-reads from-space: a store of one field to a page nobody has claimed builds the page first, or is made in from-space (the page left to the compactor)',
  },
  {
    flag: 'marking', env: 'MOVEGC_MARKING', option: 'marking', default: 'concurrent', choices: ['concurrent', 'pause'] satisfies MarkingName[],
    help: 'marking and planning in a marker thread while the mutator runs, or in the pause (stw always marks in its pause)',
  },
];

/** Knob values by HeapOptions field, e.g. { pauseOrder: 'remap-first', ... }. */
export type KnobValues = Partial<Record<keyof HeapOptions, string | number>>;

/**
 * What the bench passes when the knob's flag is not given: its environment variable's value if
 * set and one of its choices (as the heap would take it; a bad one is the heap's to refuse, at
 * creation), else the heap's default. Passing the default explicitly made the variable a no-op
 * in the benches (an audit).
 */
export function knobDefault(k: Knob): string | number {
  const e = k.env === undefined ? undefined : process.env[k.env];
  return e !== undefined && k.choices?.includes(e) ? e : k.default;
}

export function knobDefaults(): KnobValues {
  return Object.fromEntries(KNOBS.map((k) => [k.option, knobDefault(k)]));
}

/** The knob values a command was given (its parsed flags, by HeapOptions field). */
export function knobValuesOf(v: Readonly<Record<string, unknown>>): KnobValues {
  return Object.fromEntries(KNOBS.map((k) => [k.option, v[k.option] as string | number]));
}

/** The heap options the knob values stand for ('on' / 'off' of a boolean knob as true / false). */
export function heapOptionsOf(v: KnobValues): Partial<HeapOptions> {
  const out: Record<string, unknown> = { ...v };
  for (const k of KNOBS) if (k.boolean && v[k.option] !== undefined) out[k.option] = v[k.option] === 'on';
  return out as Partial<HeapOptions>;
}

/** 'pauseOrder=register-first, faultInstall=move' for the values that differ from the defaults. */
export function knobLabel(v: KnobValues): string {
  return KNOBS.filter((k) => v[k.option] !== undefined && v[k.option] !== k.default).map((k) => `${k.flag}=${v[k.option]}`).join(', ');
}

/** Every combination of the given value lists (knobs not listed keep their default). */
export function knobGrid(lists: Partial<Record<keyof HeapOptions, Array<string | number>>>): KnobValues[] {
  let out: KnobValues[] = [knobDefaults()];
  for (const k of KNOBS) {
    const vs = lists[k.option];
    if (!vs || vs.length === 0) continue;
    out = out.flatMap((base) => vs.map((v) => ({ ...base, [k.option]: v })));
  }
  return out;
}

/** The benchmark's mutators (see cycle.ts); `paced-idle` is paced and gives its sleeps to a compacting cycle (heap.idleCompact). */
export const MUTATORS = ['paced', 'paced-idle', 'busy', 'none'] as const;
export type MutatorKind = (typeof MUTATORS)[number];

/**
 * Heap variants run side by side (splay, the art example): a mode, and for the concurrent
 * modes the fault path. `move` and `copy` take the heap's fault path (--fault-path, default
 * self: the accessors build unbuilt pages themselves); `move-handler` and `copy-handler` leave
 * them to the kernel fault and the fault-server thread (issue 11's yardstick compares the two).
 */
export const HEAP_VARIANTS = ['move', 'move-handler', 'copy', 'copy-handler', 'stw'] as const;
export type HeapVariant = (typeof HEAP_VARIANTS)[number];

/** The heap's mode and fault path for a variant; `faultPath` is what the plain names run with. */
export function heapVariant(v: HeapVariant, faultPath: FaultPathName): { mode: 'move' | 'copy' | 'stw'; faultPath: FaultPathName } {
  const handler = v.endsWith('-handler');
  return { mode: v.replace('-handler', '') as 'move' | 'copy' | 'stw', faultPath: handler ? 'handler' : faultPath };
}

/** A column title: 'move (self)', 'copy (handler)', 'stw' (it has no fault path). */
export function variantTitle(mode: string, faultPath: string | null | undefined): string {
  return mode === 'stw' || !faultPath ? mode : `${mode} (${faultPath})`;
}
