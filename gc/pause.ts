/**
 * The compaction pause (ART CMC's compaction pause). The mutator is stopped; afterwards it
 * sees only to-space addresses. Its cost depends on the roots and the pinned spans, not on
 * the heap size: page tables move in bulk, nothing is copied.
 *
 * Order matters:
 *  1. Roots are forwarded: the mutator resumes holding new addresses only.
 *  2. Pinned spans (never remapped) get their references forwarded and their dead objects
 *     turned into fillers now, while nothing runs concurrently with them. First, the in-span
 *     part of any object straddling a span edge is copied to from-space, so that builders of
 *     the neighbouring segments read it there like everything else.
 *  3. mremap(MREMAP_DONTUNMAP) moves every segment's pages to from-space, and the to-space
 *     ranges are registered with userfaultfd (MISSING), both before the mutator resumes, so
 *     it can never read a zero page where its data was. A segment's free tail is remapped
 *     too but stays unregistered, so allocation there costs no userfault.
 *
 *     The order is a named mode (PauseOrder). ART registers first, because other threads
 *     (running native code) may touch the heap during its pause and would read a zero page
 *     in between. Here no other thread can: the heap's views belong to the mutator thread,
 *     which is the one running this pause, and the collector threads read only from-space.
 *     And registering first makes the pause O(heap) on this kernel: the page tables of a
 *     registered VMA (without UFFD_FEATURE_EVENT_REMAP) are moved entry by entry instead of
 *     a whole table per 2 MiB (measured on Linux 6.18: mremap of 1 GiB 1.1 ms registered vs
 *     0.13 ms unregistered, 64 MiB 0.13 ms). So REMAP_FIRST is the default, and
 *     REGISTER_FIRST keeps ART's order for comparison.
 *  4. The heap is MADV_NOHUGEPAGE from before the mremap until every segment is registered,
 *     then MADV_HUGEPAGE again if it is backed by huge pages (options.hugePages); without
 *     them, a program's own MADV_HUGEPAGE on its heap is dropped, as its mprotect is. In
 *     between, to-space is empty and not yet armed, and the kernel would fill it with zeros
 *     that userfaultfd never sees: a write there (the free-tail filler of step 5) takes a
 *     whole huge page when its 2 MiB lie in remapped pages, and khugepaged collapses a 2 MiB
 *     range holding a page that stays (a pinned span) by filling the empty pages around it.
 *     Once registered, neither happens (khugepaged leaves empty pages of an armed range
 *     alone; a fault there goes to userfaultfd), and a page installed on top of a zero page
 *     is refused (EEXIST), so the zeros would have stayed: lost objects. From-space receives
 *     the heap's pages with this flag, so khugepaged leaves it alone too (PMD-mapped pages
 *     still move as PMDs).
 *  5. A segment whose live data ends on a page boundary below a pinned span gets its filler
 *     written here: that page is not built by anyone.
 * Before all of it the heap is made read-write again (unprotectHeap).
 */
import { nextClear, nextSet } from './bits.js';
import { ErrorCode, MoveGcError, fromNative, messageOf } from './errors.js';
import { forward } from './forward.js';
import { commitMalformed, forwardSlot, malformedWords, planTop, type MalformedTally } from './build.js';
import { FILLER_TYPE, HEAP_START_WORD, PAGE_WORDS, refCount } from './layout.js';
import { liveWords, markedHeaderWords } from './mark.js';
import { HEADROOM_UNKNOWN, checkPauseMappings } from './map-count.js';
import { checkPauseLimits } from './address-space.js';
import { remapDontUnmap, vmasOver } from './memory.js';
import { PAGE_SIZE, native } from './native.js';
import { Ctl, now, type Shared } from './shared.js';
import { liveObjectAt, type Plan } from './plan.js';
import { PauseOrder, type PauseOrderName } from './options.js';
import type { Userfaultfd } from './uffd.js';

export { PauseOrder, type PauseOrderName };

export interface PauseBreakdown {
  rootsMs: number;
  pinnedMs: number;
  registerMs: number;
  remapMs: number;
}

/** Forwards every root in place. */
export function forwardRoots(sh: Shared, roots: Uint32Array, count: number): void {
  for (let i = 0; i < count; i++) {
    const r = roots[i];
    if (r !== 0) roots[i] = forward(sh.chunkNew, sh.live, r);
  }
}

/**
 * Forwards references inside pinned spans and turns their dead runs into fillers. Objects
 * straddling a span edge: their in-span words are first copied to from-space (same offsets,
 * a part of from-space no segment uses); one that slides out of the span leaves a filler.
 */
export function fixPinnedSpans(heap: Uint32Array, from: Uint32Array, sh: Shared, plan: Plan, undo: number[] = []): void {
  const { live, chunkNew, types } = sh;
  const top = planTop(sh); // forwardSlot: no object lies above
  // The pause is the cycle's own: what it finds malformed is committed as it goes.
  const tally: MalformedTally = { malformed: 0, malformedFirst: 0 };
  // Every heap word written, with its old value first (index, value pairs): see PauseUndo.
  const set = (k: number, v: number): void => {
    undo.push(k, heap[k]);
    heap[k] = v;
  };
  for (const { start, end } of plan.pinnedSpans) {
    // Word 0 is the reserved null word, never an object: a span at the heap's start is
    // walked from word 1, or its leading dead run would get its filler header at word 0,
    // where no heap walk looks, leaving dead objects with stale references parseable.
    let w = Math.max(start, HEAP_START_WORD);
    const x = liveObjectAt(heap, types, sh, start);
    if (x >= 0 && x < start) {
      const xEnd = Math.min(end, x + liveWords(heap, types, sh.starts, live, x));
      from.set(heap.subarray(start * 2, xEnd * 2), start * 2);
      if (forward(chunkNew, live, x) !== x) {
        set(start * 2, FILLER_TYPE);
        set(start * 2 + 1, xEnd - start);
      } else {
        // x stays where it is (dense prefix, or its own pinned span): no builder ever writes
        // its in-span words, so its reference slots there are forwarded here, in place.
        const lo = Math.max(x * 2 + 2, start * 2);
        const hi = Math.min(x * 2 + 2 + refCount(heap, types, x), xEnd * 2);
        for (let k = lo; k < hi; k++) {
          const r = heap[k];
          if (r !== 0) set(k, forwardSlot(sh, tally, r, x, top));
        }
      }
      w = xEnd;
    }
    const y = liveObjectAt(heap, types, sh, end - 1);
    if (y >= w && y + liveWords(heap, types, sh.starts, live, y) > end) from.set(heap.subarray(y * 2, end * 2), y * 2);
    while (w < end) {
      const d = nextClear(live, w, end);
      for (let o = w; o < d; ) {
        // A malformed header (build.ts malformedWords): no slots, the bitmaps' extent, counted.
        const sz = markedHeaderWords(heap, types, sh.starts, live, o);
        const n = sz > 0 ? Math.min(refCount(heap, types, o), end * 2 - (o * 2 + 2)) : 0;
        for (let i = 0; i < n; i++) {
          const r = heap[o * 2 + 2 + i];
          if (r !== 0) set(o * 2 + 2 + i, forwardSlot(sh, tally, r, o, top));
        }
        o += sz || malformedWords(sh, tally, o, d);
      }
      if (d >= end) break;
      const e = nextSet(live, d, end);
      set(d * 2, FILLER_TYPE);
      set(d * 2 + 1, e - d);
      w = e;
    }
  }
  commitMalformed(sh, tally);
}

/**
 * mremap(DONTUNMAP) of a range that may span several VMAs. mremap refuses that (EFAULT) before
 * Linux 6.17, and still for VMAs registered with userfaultfd (register-first order), and after
 * a cycle the heap's mapping can stay split where a segment ended (the kernel does not always
 * merge the ranges back when they are unregistered), so a later, longer segment crosses the old
 * boundary. Then: one mremap per VMA, boundaries from /proc/self/maps.
 */
export function remapRange(from: number, length: number, to: number, moved: Array<[number, number, number]> = []): void {
  try {
    remapDontUnmap(from, length, to);
    moved.push([from, length, to]);
    return;
  } catch (e) {
    if ((e as MoveGcError).code !== 'EFAULT') throw e;
  }
  const vmas = vmasOver(from, length);
  if (vmas === null) return remapHalves(from, length, to, moved); // no procfs (an audit: every later pause refused, ENOENT)
  for (const v of vmas) {
    const a = Math.max(v.start, from);
    const b = Math.min(v.end, from + length);
    remapDontUnmap(a, b - a, to + (a - from));
    moved.push([a, b - a, to + (a - from)]);
  }
}

/**
 * remapRange without procfs: the range halved (at page boundaries) until each part lies in one
 * VMA, which the EFAULT says before anything moves. A few more calls, and splits at the halves
 * besides the VMAs' own boundaries.
 */
function remapHalves(from: number, length: number, to: number, moved: Array<[number, number, number]>): void {
  try {
    remapDontUnmap(from, length, to);
    moved.push([from, length, to]);
    return;
  } catch (e) {
    if ((e as MoveGcError).code !== 'EFAULT' || length <= PAGE_SIZE) throw e;
  }
  const half = Math.floor(length / PAGE_SIZE / 2) * PAGE_SIZE;
  remapHalves(from, half, to, moved);
  remapHalves(from + half, length - half, to + half, moved);
}

/**
 * Refuses (EBUSY, nothing changed) a heap any part of which another userfaultfd has registered
 * (the program's own). Since Linux 6.17 one mremap moves several VMAs but stops with EFAULT at
 * such a one that is not the first, the ones before it moved: remapRange's VMA-by-VMA retry
 * would then move their emptied ranges over the pages they had just moved (found by a
 * kernel-edge audit: the heap read zeros). In both orders: register-first registers only the
 * segments' built parts, and the rest is remapped too. Two ioctls over the whole heap.
 */
function checkNoForeignUffd(uffd: Userfaultfd, heapAddr: number, capacity: number): void {
  try {
    uffd.register(heapAddr, capacity, { missing: true });
  } catch (e) {
    if (!registeredNothing(e)) uffd.unregister(heapAddr, capacity);
    throw e;
  }
  uffd.unregister(heapAddr, capacity);
}

/**
 * Whether a refused UFFDIO_REGISTER left its range as it was. EBUSY (part of it is another
 * userfaultfd's: the program's own) and EINVAL are refused before any mapping changes, and
 * unregistering such a range would be refused too (EINVAL), losing the heap. A later failure
 * (ENOMEM splitting a mapping) may leave part of it registered: that part must be taken back.
 */
function registeredNothing(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'EBUSY' || code === 'EINVAL';
}

/**
 * What the pause changed, so that a failed kernel call leaves the heap as it was: the pause
 * is all or nothing. mremap and UFFDIO_REGISTER can fail (ENOMEM: the process's mapping
 * count at vm.max_map_count, each remapped segment splitting VMAs), and they come after the
 * roots and the pinned spans were rewritten (steps 1-2 read the heap where it still is). The
 * undo: unregister, move each remapped range back (mremap again, the other way), restore the
 * words written in pinned spans and the roots. A free-tail filler written into remapped
 * to-space goes with the range it lies in. The moves back need free mappings too, so a pause
 * that might run out of them is refused before it starts (map-count.ts).
 */
class PauseUndo {
  readonly roots: Uint32Array;
  /** Heap word index, old value: pairs in write order. */
  readonly words: number[] = [];
  /** [from, length, to] of each range mremap moved. */
  readonly moved: Array<[number, number, number]> = [];
  /** [address, length] of each range registered. */
  readonly registered: Array<[number, number]> = [];
  huge = false;

  constructor(roots: Uint32Array, count: number) {
    this.roots = roots.slice(0, count);
  }

  /** Takes every change back; throws if the kernel refuses one (the heap is then lost). `fail`: injected, the first call does. */
  undo(heap: Uint32Array, roots: Uint32Array, heapAddr: number, capacity: number, uffd: Userfaultfd | null, fail: boolean): void {
    if (fail) throw new MoveGcError(ErrorCode.INJECTED, "injected: the undo's first kernel call fails");
    for (const [a, len] of this.registered.reverse()) uffd!.unregister(a, len);
    for (const [from, len, to] of this.moved.reverse()) remapRange(to, len, from);
    if (this.huge) native.madvise(heapAddr, capacity, native.advice.HUGEPAGE);
    for (let i = this.words.length - 2; i >= 0; i -= 2) heap[this.words[i]] = this.words[i + 1];
    roots.set(this.roots);
  }
}

/**
 * Makes the heap read-write again, at the start of a cycle and in its compaction pause.
 * Objects move, so a program's mprotect of heap pages means nothing across a collection; left
 * alone, PROT_NONE stops the marker's reads (SIGSEGV), and any protection follows its pages to
 * from-space, where builders write (SIGSEGV in the compactor), and stays on to-space pages
 * that will hold other objects. Costs next to nothing when no protection changed.
 */
export function unprotectHeap(sh: Shared): void {
  try {
    native.mprotect(sh.d.heapAddress, sh.d.capacity, native.prot.READ | native.prot.WRITE);
  } catch (e) {
    throw fromNative(e, 'making the heap read-write');
  }
}

/**
 * A failed pause as the cycle reports it: undone (PauseUndo took back what it had done, the
 * heap is as it was), or HEAP_CORRUPT when the undo failed too (the heap is lost).
 */
export function pauseError(e: unknown): MoveGcError {
  const cause = fromNative(e);
  const hint = cause.code === 'ENOMEM' && !/RLIMIT_/.test(cause.message) ? ' [each remapped segment splits mappings: the process may be at vm.max_map_count]' : '';
  const undone = cause.code === ErrorCode.HEAP_CORRUPT ? '' : ' (undone: the heap is as it was)';
  return new MoveGcError(cause.code, `compaction pause${undone}: ${cause.message}${hint}`, { errno: cause.errno, syscall: cause.syscall, cause });
}

export function compactionPause(
  heap: Uint32Array,
  from: Uint32Array,
  sh: Shared,
  plan: Plan,
  roots: Uint32Array,
  rootCount: number,
  uffd: Userfaultfd | null,
  order: PauseOrderName = PauseOrder.REMAP_FIRST,
  mapHeadroom = HEADROOM_UNKNOWN,
  inject: { failAtCall?: number; failUndo?: boolean } = {},
): PauseBreakdown {
  // Before anything changes: a pause that ran out of mappings part-way could not be undone.
  checkPauseMappings(plan.segments.length, mapHeadroom);
  checkPauseLimits();
  const failAtCall = inject.failAtCall ?? 0;
  const heapAddr = sh.d.heapAddress;
  const fromAddr = sh.d.fromAddress;
  const undo = new PauseUndo(roots, rootCount);
  // inject.pauseFailAtCall: the pause's Nth kernel call (mremap, register) fails.
  let calls = 0;
  const kernelCall = (what: string): void => {
    if (++calls === failAtCall) throw new MoveGcError(ErrorCode.INJECTED, `injected: the compaction pause's kernel call ${calls} (${what}) fails`);
  };
  unprotectHeap(sh); // again: PROT_READ set while the cycle marked (PROT_NONE then faults the marker)
  const t0 = now();
  let t1 = t0;
  let t2 = t0;
  const register = (): void => {
    if (!uffd) return;
    for (const s of plan.segments) {
      if (s.endPage <= s.firstPage) continue;
      const [a, len] = [heapAddr + s.firstPage * 4096, (s.endPage - s.firstPage) * 4096];
      kernelCall('UFFDIO_REGISTER');
      try {
        uffd.register(a, len, { missing: true });
      } catch (e) {
        if (!registeredNothing(e)) undo.registered.push([a, len]); // the undo takes it back
        throw e;
      }
      undo.registered.push([a, len]);
    }
  };
  const remap = (start: number, end: number): void => {
    kernelCall('mremap');
    remapRange(heapAddr + start * 8, (end - start) * 8, fromAddr + start * 8, undo.moved);
  };
  const remapFirst = order === PauseOrder.REMAP_FIRST;
  let t3 = t0;
  let t4 = t0;
  try {
    // Inside the undo's reach: a walk that fails part-way (a heap written outside the API)
    // leaves roots and pinned spans as they were.
    forwardRoots(sh, roots, rootCount);
    t1 = now();
    fixPinnedSpans(heap, from, sh, plan, undo.words);
    t2 = now();
    if (uffd) {
      kernelCall('UFFDIO_REGISTER');
      checkNoForeignUffd(uffd, heapAddr, sh.d.capacity);
    }
    if (!remapFirst) register();
    t3 = now();
    // Step 4: no huge page may appear in to-space before it is registered. Whatever the
    // option: a program's own MADV_HUGEPAGE on a heap without hugePages is no different (its
    // advice, like its mprotect, does not survive a collection).
    if (remapFirst && uffd !== null) {
      native.madvise(heapAddr, sh.d.capacity, native.advice.NOHUGEPAGE);
      undo.huge = Atomics.load(sh.ctl, Ctl.HUGE_PAGES) !== 0;
    }
    const last = plan.segments[plan.segments.length - 1];
    for (const s of plan.segments) {
      const builtEnd = s.endPage * PAGE_WORDS;
      if (remapFirst) {
        // One mremap per segment, the last one through the heap's end (nothing lives above the
        // top): with 1 GiB-aligned mappings, whole GiBs move as one page-table entry each.
        const end = s === last ? sh.d.capacity / 8 : s.end;
        if (end > s.start) remap(s.start, end);
      } else {
        // Registered part and free tail are separate VMAs once registered: one mremap each.
        if (builtEnd > s.start) remap(s.start, builtEnd);
        const tailStart = Math.max(builtEnd, s.start);
        if (s.end > tailStart) remap(tailStart, s.end);
      }
      // The free tail's filler, where no page builder will write it: at a page boundary, or in a
      // page that is not built at all: a first segment with no live word below a pinned span
      // (newEnd is word 1). (The last segment's tail needs none there: allocation resumes at it.)
      const unbuilt = s.newEnd >= builtEnd && s !== last;
      if ((s.newEnd % PAGE_WORDS === 0 || unbuilt) && s.newEnd < s.fillerEnd) {
        heap[s.newEnd * 2] = FILLER_TYPE;
        heap[s.newEnd * 2 + 1] = s.fillerEnd - s.newEnd;
      }
    }
    t4 = now();
    if (remapFirst) register();
    if (undo.huge) native.madvise(heapAddr, sh.d.capacity, native.advice.HUGEPAGE);
  } catch (e) {
    try {
      undo.undo(heap, roots, heapAddr, sh.d.capacity, uffd, inject.failUndo === true);
    } catch (e2) {
      throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `compaction pause failed (${messageOf(e)}) and could not be undone (${messageOf(e2)}): the heap is lost`, { cause: e });
    }
    throw e;
  }
  const t5 = now();
  return { rootsMs: t1 - t0, pinnedMs: t2 - t1, registerMs: t3 - t2 + (t5 - t4), remapMs: t4 - t3 };
}
