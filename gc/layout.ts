/**
 * Object model. The heap is an array of 8-byte words; every object starts on a word with a
 * one-word header the collector can parse without the mutator:
 *
 *   u32[0] typeId   u32[1] length (array elements, or the filler's size in words)
 *   then reference slots (u32 word indices into the heap, 0 = null), padding to 8 bytes,
 *   then raw bytes (see rawOffset).
 *
 * References are word indices, so the largest heap (MAX_CAPACITY, 16 GiB) needs 31 bits. Word
 * 0 is reserved so that 0 can mean null.
 *
 * Type descriptors live in a SharedArrayBuffer table so collector Workers parse objects
 * exactly as the mutator does.
 */
export const WORD = 8;
export const PAGE_WORDS = 512; // 4 KiB pages
export const PAGE_SHIFT_WORDS = 9;
/** Heaps are mapped 2 MiB aligned, in multiples of 2 MiB. */
export const HEAP_ALIGN = 2 * 1024 * 1024;
/** Heap words in 2 MiB: a PMD's span, and the boundary huge objects keep (options.hugePages). */
export const PMD_WORDS = HEAP_ALIGN / WORD;
/** Pages in a PMD's span (512): the WHOLE installs' largest call, which with hugePages ends on one. */
export const PMD_PAGES = PMD_WORDS / PAGE_WORDS;
/** Words reserved at the heap start so that reference 0 is null. */
export const HEAP_START_WORD = 1;

export const Kind = {
  /** Dead space the collector overwrote: skip `length` words. */
  FILLER: 0,
  /** User-declared: `refs` reference slots then `bytes` raw bytes. */
  FIXED: 1,
  /** `length` reference slots. */
  REF_ARRAY: 2,
  /** `length` raw bytes. */
  BYTE_ARRAY: 3,
} as const;

export const FILLER_TYPE = 0;
export const REF_ARRAY_TYPE = 1;
export const BYTE_ARRAY_TYPE = 2;
export const FIRST_USER_TYPE = 3;
export const MAX_TYPES = 4096;
/** Words per row of the type table: kind, refs, bytes, sizeWords. */
export const TYPE_ROW = 4;
const ROW = TYPE_ROW;

/**
 * Byte offset of a declared type's raw area after its header: the reference slots, padded to
 * 8 bytes as a C compiler lays out a struct, so an f64 at raw offset 0 is aligned.
 */
export function rawOffset(refs: number): number {
  return (refs * 4 + 7) & ~7;
}

/** The shared type table: one row of Int32 per type id. */
export class TypeTable {
  readonly rows: Int32Array;
  constructor(buffer: SharedArrayBuffer) {
    this.rows = new Int32Array(buffer);
  }
  static allocate(): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(MAX_TYPES * ROW * 4);
    const rows = new Int32Array(sab);
    rows.set([Kind.FILLER, 0, 0, 0], FILLER_TYPE * ROW);
    rows.set([Kind.REF_ARRAY, 0, 0, 0], REF_ARRAY_TYPE * ROW);
    rows.set([Kind.BYTE_ARRAY, 0, 0, 0], BYTE_ARRAY_TYPE * ROW);
    return sab;
  }
  define(id: number, refs: number, bytes: number): void {
    const size = 1 + ((rawOffset(refs) + bytes + 7) >>> 3);
    this.rows.set([Kind.FIXED, refs, bytes, size], id * ROW);
  }
  kind(id: number): number {
    return this.rows[id * ROW];
  }
  refs(id: number): number {
    return this.rows[id * ROW + 1];
  }
  bytes(id: number): number {
    return this.rows[id * ROW + 2];
  }
}

/**
 * Object size in words, from its header at word `w` of `u32` (a heap or from-space view).
 * Hot on every collector thread.
 */
export function sizeWords(u32: Uint32Array, types: Int32Array, w: number): number {
  const t = u32[w * 2];
  const row = t * ROW;
  const kind = types[row];
  if (kind === Kind.FIXED) return types[row + 3];
  const len = u32[w * 2 + 1];
  if (kind === Kind.REF_ARRAY) return 1 + ((len + 1) >>> 1);
  if (kind === Kind.BYTE_ARRAY) return 1 + ((len + 7) >>> 3);
  return len; // FILLER
}

/**
 * sizeWords of the header at `w`, or 0 if it is no object's: a filler's kind, a type id past
 * the table, or a size of 0. A live object's header is one only if the program wrote the heap
 * outside the accessors after marking checked it (mark.ts liveWords says what then).
 */
export function headerWords(u32: Uint32Array, types: Int32Array, w: number): number {
  if (!(types[u32[w * 2] * ROW] > Kind.FILLER)) return 0;
  const sz = sizeWords(u32, types, w);
  return sz >= 1 ? sz : 0;
}

/** Number of reference slots of the object at `w` (they start at u32 index w*2+2). */
export function refCount(u32: Uint32Array, types: Int32Array, w: number): number {
  const row = u32[w * 2] * ROW;
  const kind = types[row];
  if (kind === Kind.FIXED) return types[row + 1];
  if (kind === Kind.REF_ARRAY) return u32[w * 2 + 1];
  return 0;
}

export function arrayWords(kind: number, length: number): number {
  return kind === Kind.REF_ARRAY ? 1 + ((length + 1) >>> 1) : 1 + ((length + 7) >>> 3);
}

/** Writes a filler header covering `words` words at word `w`. */
export function writeFiller(u32: Uint32Array, w: number, words: number): void {
  u32[w * 2] = FILLER_TYPE;
  u32[w * 2 + 1] = words;
}
