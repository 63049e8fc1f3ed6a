/** What the heap's API hands out and takes besides references: type descriptors (and their registry), progress. */
import { ownerOf, phaseOf } from './claim.js';
import { Ctl } from './control.js';
import { ErrorCode, MoveGcError, invalidArg, shown } from './errors.js';
import { BYTE_ARRAY_TYPE, FIRST_USER_TYPE, Kind, MAX_TYPES, REF_ARRAY_TYPE, type TypeTable } from './layout.js';
import { SEG_FIELDS, Seg, type Shared } from './shared.js';

export interface TypeSpec {
  name: string;
  /** Reference slots. */
  refs: number;
  /** Raw bytes after the references (their area starts 8-aligned). */
  bytes: number;
}

/** See Heap.progress(). */
export interface Progress {
  cycle: number;
  phase: string;
  pagesTotal: number;
  pagesMapped: number;
  faults: number;
  markedObjects: number;
  barrierEntries: number;
  /** Concurrent marking has caught up (nothing grey, the log empty): a marking pause now is short. */
  markerIdle: boolean;
  /** Unbuilt pages the mutator's accessors met this cycle, on either fault path (selfservice.ts). */
  unbuiltTouches: number;
  /** Of the accessors' reads, those served from from-space with the page left unbuilt (unbuilt-reads.ts). */
  unbuiltReads: number;
  /** Of the accessors' field stores, those made in from-space with the page left unbuilt (unbuilt-writes.ts). */
  unbuiltWrites: number;
}

/** A type defined by Heap.defineType (or a built-in array type): its id indexes the type table. */
export class HeapType {
  readonly #brand = true;
  constructor(readonly id: number, readonly name: string, readonly refs: number, readonly bytes: number, readonly kind: number) {
    // Frozen: alloc() checks a type by its id and then sizes and tags the object by it; a
    // getter put on `id` (or `kind`) could pass the check as one type and allocate another.
    Object.freeze(this);
  }
  /** One of ours: a private-field check, which runs none of a Proxy's traps or a lying object's getters. */
  static is(x: unknown): x is HeapType {
    return typeof x === 'object' && x !== null && #brand in x;
  }
}

/**
 * The heap's types, by id (`list`: the built-in filler and arrays first) and by name: the
 * descriptors Heap hands out, with their rows in the shared type table the collector reads.
 */
export class TypeRegistry {
  readonly list: HeapType[] = [
    new HeapType(0, '(filler)', 0, 0, Kind.FILLER),
    new HeapType(REF_ARRAY_TYPE, 'RefArray', 0, 0, Kind.REF_ARRAY),
    new HeapType(BYTE_ARRAY_TYPE, 'ByteArray', 0, 0, Kind.BYTE_ARRAY),
  ];
  readonly #byName = new Map<string, HeapType>();

  constructor(readonly table: TypeTable) {}

  /** See Heap.defineType. */
  define(spec: TypeSpec): HeapType {
    const { name, refs, bytes } = readTypeSpec(spec);
    if (this.#byName.has(name)) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `type ${name} is already defined`);
    const id = this.list.length;
    if (id >= MAX_TYPES) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `at most ${MAX_TYPES - FIRST_USER_TYPE} types`);
    this.table.define(id, refs, bytes);
    const t = new HeapType(id, name, refs, bytes, Kind.FIXED);
    this.list.push(t);
    this.#byName.set(name, t);
    return t;
  }

  named(name: string): HeapType {
    const t = this.#byName.get(name);
    if (!t) throw new MoveGcError(ErrorCode.UNKNOWN_TYPE, `unknown type ${shown(name)}`);
    return t;
  }
}

/** A type spec, read once (a getter or Proxy is asked each field once) and checked. */
export function readTypeSpec(spec: TypeSpec): TypeSpec {
  if (typeof spec !== 'object' || spec === null) throw invalidArg('type spec must be an object');
  let name: unknown, refs: unknown, bytes: unknown;
  try {
    ({ name, refs, bytes } = spec);
  } catch {
    throw invalidArg('type spec could not be read (a getter or Proxy trap threw)');
  }
  if (typeof name !== 'string' || name.length === 0) throw invalidArg('type name must be a non-empty string');
  for (const [k, v] of [['refs', refs], ['bytes', bytes]] as const) {
    if (typeof v !== 'number') throw invalidArg(`${k} must be a number`);
    if (!Number.isSafeInteger(v) || v < 0 || v > 1 << 20) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `${k} must be an integer in [0, 2^20], got ${v}`);
  }
  return { name, refs: refs as number, bytes: bytes as number };
}

/** Heap.progress(): read live from the shared counters (they belong to the current cycle). */
export function progressOf(sh: Shared, cycle: number, phase: string, barrierEntries: number): Progress {
  const c = sh.ctl;
  return {
    cycle,
    phase,
    pagesTotal: Atomics.load(c, Ctl.PAGES_TOTAL),
    pagesMapped: Atomics.load(c, Ctl.PAGES_MAPPED),
    faults: Atomics.load(c, Ctl.FAULTS),
    markedObjects: Atomics.load(c, Ctl.MARK_OBJECTS),
    barrierEntries,
    markerIdle: phase === 'marking' && Atomics.load(c, Ctl.MARK_IDLE) === 1,
    unbuiltTouches: Atomics.load(c, Ctl.UNBUILT_TOUCHES),
    unbuiltReads: Atomics.load(c, Ctl.UNBUILT_READS),
    unbuiltWrites: Atomics.load(c, Ctl.UNBUILT_WRITES),
  };
}

/** Control words and, while compacting, the census of page states (owner/phase), for diagnosing a stuck cycle. */
export function debugState(sh: Shared, phase: string): Record<string, unknown> {
  const census: Record<string, number> = {};
  if (phase === 'compacting')
    for (let i = 0, n = sh.ctl[Ctl.SEGMENTS]; i < n; i++)
      for (let q = sh.segments[i * SEG_FIELDS + Seg.FIRST_PAGE]; q < sh.segments[i * SEG_FIELDS + Seg.END_PAGE]; q++) {
        const k = `owner${ownerOf(sh.pageState[q])}/phase${phaseOf(sh.pageState[q])}`;
        census[k] = (census[k] ?? 0) + 1;
      }
  return { ctl: Array.from(sh.ctl), phase, census };
}
