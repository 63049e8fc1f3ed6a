/**
 * Mark: trace from the roots and record every live object in two bitmaps, as ART does: the
 * object-start bitmap (which words begin a live object) and the live-words bitmap (every
 * word of a live object), from which the plan computes new addresses.
 *
 * Stop-the-world for now: ART marks concurrently behind a card-table write barrier and
 * re-scans in a short pause; this prototype keeps marking simple and measures it apart
 * from the compaction pause.
 */
import { setBit, setRange, testBit } from './bits.js';
import { ErrorCode, MoveGcError } from './errors.js';
import { Kind, PAGE_WORDS, refCount, sizeWords } from './layout.js';

/**
 * An object's size, checked: a header that does not parse (unknown type, a filler reached by a
 * reference, a size that is zero or runs past the top) stops the cycle with ERR_HEAP_CORRUPT
 * before anything moved, instead of feeding every later walk a size that never advances.
 */
export function checkedSize(heap: Uint32Array, types: Int32Array, typeCount: number, w: number, topWord: number): number {
  const t = heap[w * 2];
  const size = t < typeCount && types[t * 4] !== Kind.FILLER ? sizeWords(heap, types, w) : 0;
  if (size < 1 || w + size > topWord)
    throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `object at word ${w} has a malformed header (type ${t}, size ${size} words, top ${topWord}): the heap was written outside the API`);
  return size;
}

export interface MarkResult {
  objects: number;
  words: number;
}

export function mark(heap: Uint32Array, types: Int32Array, typeCount: number, starts: Uint32Array, live: Uint32Array, topWord: number, roots: Iterable<number>): MarkResult {
  // Clear through the page-aligned top: the plan and the page builders scan whole pages, and
  // bits above the top left by an earlier, larger cycle would read as phantom live objects.
  const bitWords = (Math.ceil(topWord / PAGE_WORDS) * PAGE_WORDS + 31) >>> 5;
  starts.fill(0, 0, bitWords + 1);
  live.fill(0, 0, bitWords + 1);
  const stack: number[] = [];
  let objects = 0;
  let words = 0;
  const visit = (w: number): void => {
    if (w === 0 || testBit(starts, w)) return;
    const size = checkedSize(heap, types, typeCount, w, topWord);
    setBit(starts, w);
    setRange(live, w, w + size);
    objects++;
    words += size;
    stack.push(w);
  };
  for (const r of roots) visit(r);
  while (stack.length > 0) {
    const w = stack.pop()!;
    const n = refCount(heap, types, w);
    const slot = w * 2 + 2;
    for (let i = 0; i < n; i++) {
      const r = heap[slot + i];
      if (r !== 0 && !testBit(starts, r)) visit(r);
    }
  }
  return { objects, words };
}
