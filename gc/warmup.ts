/**
 * Code the first cycle of a process would otherwise run cold, run once here first: the
 * accessors' compacting paths (warmUpAccessors), the flip's plan extension (warmUpFlip) and
 * the rest of a collection's pause and end (rehearsePause).
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
import type { Heap } from './heap.js';
import type { HeapOptions } from './options.js';
import type { HeapLogger as Logger } from './log.js';
import type { MutatorHeap } from './mutator.js';
import { mark } from './mark.js';
import { extendOverAllocations, plan } from './plan.js';
import { Ctl, PagePhase, Shared, now } from './shared.js';

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
export function warmUpAccessors(heap: MutatorHeap, i: MutatorInternals, sh: Shared): void {
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
  // And the look at whether every page is installed (mutator.ts #settle), at every access to
  // an installed page: it finds one page still to come until the last access below.
  const ctl = sh.ctl;
  const [total, mapped] = [Atomics.load(ctl, Ctl.PAGES_TOTAL), Atomics.load(ctl, Ctl.PAGES_MAPPED)];
  Atomics.store(ctl, Ctl.PAGES_TOTAL, 1);
  Atomics.store(ctl, Ctl.PAGES_MAPPED, 0);
  i.setChecks(true, true, 1);
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
    // Then each accessor's way back to the usual path when from-space cannot serve it, and its
    // look at an installed page (a length() built it, say): with writes served from from-space
    // too, those first ran in the first compaction, and deoptimized their callers.
    if (i.reads) i.reads.rehearse([top, pad, bw], i.top, accesses);
    accesses();
    for (let p = q; p <= last; p++) sh.pageState[p] = PagePhase.MAPPED;
    accesses();
    Atomics.store(ctl, Ctl.PAGES_MAPPED, 1);
    heap.length(a); // every page installed: the checks go off here
  } finally {
    Atomics.store(ctl, Ctl.PAGES_TOTAL, total);
    Atomics.store(ctl, Ctl.PAGES_MAPPED, mapped);
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

let pauseRehearsed = false;

/** Collections rehearsed, objects per collection. */
const REHEARSALS = 2;
const REHEARSAL_OBJECTS = 600;

/**
 * Once per process, at the first move or copy heap: two whole collections of a throwaway
 * 2 MiB stop-the-world heap (no Workers, no userfaultfd), then closed. Every function runs
 * once when first called, and V8 compiles it then (lazily): the first compaction pause of a
 * process compiled the pause's own code (pause.ts: roots, pinned spans, remap), the
 * retagging, the page builder's mutator side and the cycle's end as it went, 3.4-5.3 ms
 * against 1.1-1.5 for the same heap's pause in later reps (1 GiB bench, rep 1), and 2.4 ms
 * after this rehearsal, which costs the first heap's creation 30-50 ms. The stw heap runs the
 * same code but for userfaultfd (its registration stays cold) and concurrent marking
 * (warmUpFlip).
 */
export async function rehearsePause(open: (o: HeapOptions) => Promise<Heap>, log: Logger): Promise<void> {
  if (pauseRehearsed) return;
  pauseRehearsed = true;
  const t0 = now();
  try {
    await rehearse(open);
    log.debug({ ms: Math.round(now() - t0) }, 'pause rehearsed');
  } catch (e) {
    // Only the first pause is colder for it: the heap itself is fine.
    log.warn({ err: e }, 'the pause rehearsal failed');
  }
}

async function rehearse(open: (o: HeapOptions) => Promise<Heap>): Promise<void> {
  const h = await open({ capacity: 2 << 20, mode: 'stw' });
  try {
    const T = h.defineType({ name: 'rehearsal', refs: 2, bytes: 8 });
    for (let r = 0; r < REHEARSALS; r++) {
      const root = h.root(h.allocRefArray(64));
      for (let i = 0; i < REHEARSAL_OBJECTS; i++) {
        const x = h.alloc(T);
        h.allocBytes(40); // garbage between the live objects: they slide
        if (i % 3 === 0) h.setRef(root.get()!, i & 63, x);
        if (i % 3 === 0) h.setRef(x, 0, h.allocBytes(16));
      }
      const pin = h.pin(h.getRef(root.get()!, 5)!); // a pinned span: its references forwarded in place
      await h.gc();
      pin.release();
      root.release();
    }
  } finally {
    await h.close();
  }
}
