/**
 * The heap verifier: walks every object from the heap start to the allocation top and checks
 * that headers parse, sizes stay in bounds, and every reference (in objects and roots) points
 * at the start of a real object. For tests, and as a debug option after each cycle.
 */
import { nextSet, setBit, testBit } from './bits.js';
import { HEAP_START_WORD, Kind, refCount, sizeWords } from './layout.js';

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
    if (size < 1 || w + size > topWord) {
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
  if (w !== topWord && errors.length === 0) err(`walk ended at ${w}, top is ${topWord}`);
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
