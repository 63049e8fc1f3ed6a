/**
 * Code the first cycle of a process would otherwise run cold, run once here first: the
 * accessors' compacting paths (warmUpAccessors) and the flip's plan extension (warmUpFlip).
 *
 * The flip's plan extension, warmed up once per process. The marker plans in its own Worker
 * (its own JIT), so the code that extends the plan over what the mutator allocated since the
 * marking pause (plan.ts extendOverAllocations: blacken, extendPlan, forwardObjectStarts) first
 * ran on the mutator's thread inside the first compaction pause, in V8's interpreter: in the
 * art demo 1.2 + 6.2 + 6.4 ms for 107K words in that first pause, against 0.1-0.5 ms for the
 * same work in later ones. So the first heap of a process with concurrent marking runs that
 * same function here, on a small heap of its own (the same classes, so the same type feedback), before
 * any pause needs it: 3 rounds on 1 MiB cost about 45 ms once, and the demo's first extension
 * then took 0.5-0.7 ms.
 */
import { BYTE_ARRAY_TYPE, HEAP_START_WORD, Kind, PAGE_SHIFT_WORDS, TypeTable, arrayWords } from './layout.js';
import type { MutatorInternals } from './cycle-state.js';
import type { MutatorHeap } from './mutator.js';
import { mark } from './mark.js';
import type { UnbuiltReads } from './unbuilt-reads.js';
import { extendOverAllocations, plan } from './plan.js';
import { PagePhase, Shared } from './shared.js';

/** Rounds over the small heap (more measured no better in the first pause). */
const ROUNDS = 3;
const CAPACITY = 1 << 20;

let warmed = false;
let accessorsWarmed = false;

/**
 * V8 optimizes the accessors while no cycle compacts, and a branch that never ran has no type
 * feedback: the first compaction of a process deoptimized every accessor at once at its page
 * check (`--trace-deopt`: "insufficient type feedback"), in the frame right after the flip.
 * (The first marking did the same at the write barrier.) So each accessor's compacting path
 * and the barrier's run here first, a few hundred times, on two objects that are then taken
 * back: their page reads as unbuilt, and SelfService.fault() returns at once (no cycle has
 * begun: every page counts as present). Feedback is per function, so once per process.
 */
export function warmUpAccessors(heap: MutatorHeap, i: MutatorInternals, sh: Shared, reads: UnbuiltReads | null): void {
  if (accessorsWarmed) return;
  accessorsWarmed = true;
  const top = i.top;
  const a = heap.allocRefArray(2);
  // b lies 32 words or more into its chunk: forwarding it reads the chunk's second bitmap word.
  const pad = i.top;
  heap.allocBytes(32 * 8);
  const b = heap.allocBytes(24);
  heap.setRef(a, 0, b); // a read of it from from-space then forwards a reference
  const bw = i.top - arrayWords(Kind.BYTE_ARRAY, 24);
  const q = top >>> PAGE_SHIFT_WORDS;
  const last = (i.top - 1) >>> PAGE_SHIFT_WORDS;
  // The write barrier's path too (the first marking): every store shades nothing, as
  // everything is at or above the black-allocation boundary 0.
  i.setChecks(true, true);
  try {
    for (let p = q; p <= last; p++) sh.pageState[p] = PagePhase.UNPROCESSED;
    const accesses = (): void => {
      for (let n = 0; n < 300; n++) {
        heap.setRef(a, 0, b);
        heap.setRef(a, 1, heap.getRef(a, 0));
        heap.length(a);
        heap.typeOf(b);
        heap.setU8(b, 0, heap.getU8(b, 1));
        heap.setU32(b, 4, heap.getU32(b, 8));
        heap.setF64(b, 8, heap.getF64(b, 16));
        heap.writeBytes(b, 0, heap.readBytes(b, 8, 8));
      }
    };
    // With reads served from from-space, the same calls take that path (unbuilt-reads.ts):
    // the tables say the two objects are unbuilt and in place for the length of it.
    if (reads) reads.rehearse([top, pad, bw], i.top, accesses);
    else accesses();
  } finally {
    i.setChecks(false, false);
    for (let p = q; p <= last; p++) sh.pageState[p] = PagePhase.MAPPED;
    // Take the two objects back: the words they used, their start bits, the top.
    const objects = sh.objects[i.epochStarts];
    i.u32.fill(0, top * 2, i.top * 2);
    for (let w = top; w < i.top; w++) objects[w >>> 5] &= ~(1 << (w & 31));
    i.top = top;
  }
}

/** Once per process: mark, plan, then the flip's extension over later allocations, ROUNDS times on a throwaway heap. */
export function warmUpFlip(alignWords: number): void {
  if (warmed) return;
  warmed = true;
  const sh = Shared.allocate({ heapAddress: 0, fromAddress: 0, capacity: CAPACITY, fromExtraPages: 0, uffdFd: -1, uffdFeatures: 0, statmFd: -1, types: TypeTable.allocate() });
  const heap = new Uint32Array(CAPACITY / 4);
  const words = arrayWords(Kind.BYTE_ARRAY, 40);
  const objects = sh.objects[0];
  const roots: number[] = [];
  let top = HEAP_START_WORD;
  for (let i = 0; top + words <= CAPACITY / 8; i++, top += words) {
    heap[top * 2] = BYTE_ARRAY_TYPE;
    heap[top * 2 + 1] = 40;
    objects[top >>> 5] |= 1 << (top & 31);
    if (i % 2 === 0) roots.push(top);
  }
  const planTop = HEAP_START_WORD + Math.floor((top - HEAP_START_WORD) / words / 2) * words; // the rest is "allocated since"
  const align = alignWords > 0 ? { heap, types: sh.types, words: alignWords } : null;
  for (let r = 0; r < ROUNDS; r++) {
    mark(heap, sh.types, BYTE_ARRAY_TYPE + 1, sh.starts, sh.live, planTop, roots.filter((w) => w < planTop));
    const p = plan(heap, sh.types, sh, { topWord: planTop, pinned: [], denseThreshold: 0.95, alignWords });
    sh.objects[1].fill(0);
    extendOverAllocations(sh, p, objects, sh.objects[1], [], planTop, top, align);
  }
}
