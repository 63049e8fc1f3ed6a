/**
 * The heap verifier: walks every object from the heap start to the allocation top and checks
 * that headers parse, sizes stay in bounds, and every reference (in objects and roots) points
 * at the start of a real object. For tests, and as a debug option after each cycle.
 * verifyMarks checks the mark bitmaps against the heap.
 */
import { nextClear, nextSet, setBit, testBit } from './bits.js';
import { HEAP_START_WORD, Kind, PAGE_WORDS, refCount, sizeWords } from './layout.js';

export interface VerifyResult {
  ok: boolean;
  objects: number;
  fillers: number;
  words: number;
  errors: string[];
}

const MAX_ERRORS = 20;

export function verifyHeap(heap: Uint32Array, types: Int32Array, typeCount: number, topWord: number, roots: Iterable<number>): VerifyResult {
  const errors: string[] = [];
  const starts = new Uint32Array((topWord >>> 5) + 1);
  let objects = 0;
  let fillers = 0;
  let w = HEAP_START_WORD;
  const err = (m: string): void => {
    if (errors.length < MAX_ERRORS) errors.push(m);
  };
  while (w < topWord) {
    const t = heap[w * 2];
    if (t >= typeCount) {
      err(`word ${w}: bad type id ${t}`);
      break;
    }
    const size = sizeWords(heap, types, w);
    if (size < 1) {
      err(`word ${w}: size ${size}: the walk cannot step over it`);
      break;
    }
    if (w + size > topWord) {
      err(`word ${w}: size ${size} runs past the top ${topWord}`);
      break;
    }
    if (types[t * 4] === Kind.FILLER) fillers++;
    else {
      setBit(starts, w);
      objects++;
    }
    w += size;
  }
  for (let o = nextSet(starts, 0, topWord); o < topWord && errors.length < MAX_ERRORS; o = nextSet(starts, o + 1, topWord)) {
    const n = refCount(heap, types, o);
    for (let i = 0; i < n; i++) {
      const r = heap[o * 2 + 2 + i];
      if (r !== 0 && (r >= topWord || !testBit(starts, r))) err(`object ${o} slot ${i}: ${r} is not an object start`);
    }
  }
  for (const r of roots) if (r !== 0 && (r >= topWord || !testBit(starts, r))) err(`root ${r} is not an object start`);
  return { ok: errors.length === 0, objects, fillers, words: topWord, errors };
}

/**
 * The mark bitmaps against the heap they were computed from (after mark, before the plan
 * uses them): a wrong bit there misplaces every later object, silently. Checks that each
 * object-start bit is an object's first word, that the live-words bits are exactly the words
 * of marked objects, and that marking is closed: roots and every reference of a marked
 * object point at marked objects. Bits between the top and the next page boundary must be
 * clear (the builders scan whole pages).
 */
export function verifyMarks(
  heap: Uint32Array, types: Int32Array, typeCount: number, topWord: number, roots: Iterable<number>, starts: Uint32Array, live: Uint32Array,
): VerifyResult {
  const errors: string[] = [];
  const err = (m: string): void => {
    if (errors.length < MAX_ERRORS) errors.push(m);
  };
  let objects = 0;
  let fillers = 0;
  let w = HEAP_START_WORD;
  if (testBit(live, 0) || testBit(starts, 0)) err('word 0 (null) is marked');
  while (w < topWord && errors.length < MAX_ERRORS) {
    const t = heap[w * 2];
    const size = t < typeCount ? sizeWords(heap, types, w) : 0;
    if (t >= typeCount || size < 1 || w + size > topWord) {
      err(`word ${w}: unparseable header (type ${t}, size ${size}): marks not checked past it`);
      break;
    }
    const filler = types[t * 4] === Kind.FILLER;
    const marked = !filler && testBit(starts, w);
    if (filler) fillers++;
    else objects++;
    if (!marked && testBit(starts, w)) err(`start bit at word ${w} is not an object start (filler)`);
    for (let x = nextSet(starts, w + 1, w + size); x < w + size; x = nextSet(starts, x + 1, w + size))
      err(`start bit at word ${x} is not an object start (inside ${filler ? 'filler' : 'object'} ${w})`);
    if (marked) {
      const clear = nextClear(live, w, w + size);
      if (clear < w + size) err(`object ${w}: live bit clear at word ${clear}`);
      const n = refCount(heap, types, w);
      for (let i = 0; i < n; i++) {
        const r = heap[w * 2 + 2 + i];
        if (r !== 0 && (r >= topWord || !testBit(starts, r))) err(`object ${w} slot ${i}: target ${r} is not marked`);
      }
    } else {
      const stray = nextSet(live, w, w + size);
      if (stray < w + size) err(`live bit at word ${stray} outside any marked object`);
    }
    w += size;
  }
  const pageEnd = Math.ceil(topWord / PAGE_WORDS) * PAGE_WORDS;
  const above = Math.min(nextSet(live, topWord, pageEnd), nextSet(starts, topWord, pageEnd));
  if (above < pageEnd) err(`mark bit at word ${above}, above the top ${topWord}`);
  for (const r of roots) if (r !== 0 && (r >= topWord || !testBit(starts, r))) err(`root ${r} is not marked`);
  return { ok: errors.length === 0, objects, fillers, words: topWord, errors };
}
