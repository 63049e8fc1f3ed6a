/**
 * Plan (ART CMC's "prepare for compaction"): from the mark bitmaps, without forwarding
 * pointers, decide where everything goes.
 *
 *  1. Pinned spans: page-aligned ranges around user-pinned objects. They are never remapped:
 *     the pages stay where they are (a pinned page must not move) and compaction flows around
 *     them. Objects straddling a span's edges are not widened into it (in a heap of small
 *     objects every page edge is straddled, and widening would cascade over the heap); the
 *     pause copies their in-span part to from-space so builders read them like any other.
 *     One exception: a sliding object straddling a span's start whose in-span tail is longer
 *     than its region's free words cannot slide below the span, so the span grows over it.
 *  2. Segments: the runs between pinned spans. Each slides its live objects down to its own
 *     start, keeping their order (sliding compaction), so objects never cross a pinned span.
 *  3. Dense prefix: the leading pages of the first segment that are at least `denseThreshold`
 *     live stay at their addresses ("identity" pages); only their references are updated.
 *     An object straddling the prefix end stays too: sliding starts at the prefix end and
 *     counts its tail words, so they land exactly at their own addresses (as in ART).
 *  4. chunkNew: per 64-word chunk, the new address of its first live word (an exclusive
 *     prefix sum of live words, reset at each segment start), or IN_PLACE.
 *  5. pageFirst: per to-space page, the from-space object that is first to overlap it (on
 *     a page whose first word starts a gap: the object past the gap), so any thread can build
 *     any page on its own, in any order.
 *  6. Large objects (at least `alignWords`, starting on a page in from-space, in the last
 *     segment) land on a page too: the slide skips to the next page before them (the builders
 *     write a filler in the gap). Their full pages past the header and the reference slots
 *     are then shifted by whole pages: WHOLE pages, which the compactor may install straight
 *     from their from-space page with no build (compact.ts), so MOVE relocates them unread.
 *     With huge pages (Ctl.HUGE_PAGES), an object of 2 MiB or more that starts on a 2 MiB
 *     boundary lands on one: its full 2 MiB spans then move as one PMD each. The filler on
 *     the page where its gap starts covers the whole gap; the pages wholly inside it are GAP
 *     pages, all zeros (installed as the zero page: no build, no memory).
 *
 * Departure from ART: ART has one moving space with a single black-dense prefix; pinning in
 * ART is per region elsewhere, and large objects live in a space of their own that never
 * moves. Here pins split the space into independently slid segments, and large objects move
 * with the rest (step 6).
 */
import { ErrorCode, MoveGcError } from './errors.js';
import { countRange, fillBeating, nextSet, popcount32, prevSet, testBit } from './bits.js';
import { CHUNK_WORDS, IN_PLACE, forward } from './forward.js';
import { HEAP_START_WORD, PAGE_WORDS, PMD_WORDS, refCount, sizeWords } from './layout.js';
import { blacken, liveWords } from './mark.js';
import { Ctl, MAX_SEGMENTS, PageKind, PagePhase, SEG_FIELDS, Seg, type Shared } from './shared.js';

export const NONE = 0xffffffff;

export interface Span {
  start: number;
  end: number;
}

export interface Plan {
  /** Segments as written into shared.segments. */
  segments: Array<{ start: number; end: number; identEnd: number; newEnd: number; fillerEnd: number; firstPage: number; endPage: number; endExt: number }>;
  pinnedSpans: Span[];
  /** To-space pages to build this cycle. */
  pagesTotal: number;
  identityPages: number;
  /** Word where allocation resumes after the cycle (page aligned: the page below is being built). */
  allocTop: number;
  /** Old top, page aligned: everything below it is remapped or pinned. */
  oldTopAligned: number;
  /** The last segment's slide state at the chunk holding the plan's top (see extendPlan). */
  resume: SlideState;
  /** Large objects kept on a page, the gap words that cost, and the pages shifted whole. */
  aligned: { objects: number; gapWords: number; wholePages: number };
}

/** Where a segment's slide stands: the next chunk, its new address, the first slide page. */
export interface SlideState {
  chunk: number;
  cursor: number;
  firstSlidePage: number;
  /** Large objects kept page-aligned so far, the words of gap before them, their WHOLE pages. */
  aligned: number;
  alignGapWords: number;
  wholePages: number;
}

/** How the slide keeps large objects on pages (none: objects land back to back). */
export interface Alignment {
  heap: Uint32Array;
  types: Int32Array;
  /** Objects of at least this many words that start on a page keep doing so. */
  words: number;
}

const newSlide = (chunk: number, cursor: number): SlideState => ({ chunk, cursor, firstSlidePage: -1, aligned: 0, alignGapWords: 0, wholePages: 0 });

const CHUNKS_PER_PAGE = PAGE_WORDS / CHUNK_WORDS;

/**
 * The large object o (from-space, page-aligned, `sz` words) lands at page-aligned word t: its
 * full pages past its header and reference slots are shifted whole. Returns how many. (The
 * header page never is: builders of the object's other pages read its header in from-space.)
 */
function markWhole(sh: Shared, heap: Uint32Array, types: Int32Array, o: number, t: number, sz: number): number {
  const slotsEnd = t + 1 + ((refCount(heap, types, o) + 1) >>> 1); // > t
  const first = Math.ceil(slotsEnd / PAGE_WORDS);
  const end = Math.floor((t + sz) / PAGE_WORDS);
  for (let p = first; p < end; p++) sh.pageKind[p] = PageKind.WHOLE;
  return Math.max(0, end - first);
}

/**
 * Slides chunks [st.chunk, toChunk) of a segment ending at `segEnd`: the exclusive prefix sum
 * of live words per chunk into chunkNew, and pageFirst of every to-space page whose first
 * word lands in them.
 */
function slideChunks(sh: Shared, st: SlideState, toChunk: number, segEnd: number, align: Alignment | null, beat?: () => void): void {
  const { live, starts, chunkNew, pageFirst } = sh;
  const huge = Atomics.load(sh.ctl, Ctl.HUGE_PAGES) !== 0;
  let cursor = st.cursor;
  let firstSlidePage = st.firstSlidePage;
  // The object holding word x, for x rising through the call: the starts bitmap is scanned
  // forward once, not back from each x (from inside an N-page object that cost O(N) per page).
  let lastStart = -1;
  let scanned = 0;
  const objectAt = (x: number): number => {
    if (lastStart < 0) lastStart = prevSet(starts, x, 0);
    else for (let s = nextSet(starts, scanned, x + 1); s <= x; s = nextSet(starts, s + 1, x + 1)) lastStart = s;
    scanned = x + 1;
    return lastStart;
  };
  for (let c = st.chunk; c < toChunk; c++) {
    if (beat !== undefined && (c & (BEAT_CHUNKS - 1)) === 0) beat();
    const n = popcount32(live[c * 2]) + popcount32(live[c * 2 + 1]);
    if (n === 0) {
      chunkNew[c] = cursor;
      continue;
    }
    if (firstSlidePage < 0) {
      // The segment's first slide page starts with its first live object (leading words,
      // if any, are the reserved null word, or the gap before a large object).
      firstSlidePage = Math.floor(cursor / PAGE_WORDS);
      pageFirst[firstSlidePage] = objectAt(nextSet(live, c * CHUNK_WORDS, segEnd));
    }
    // A large object starting on a page lands on one (its chunk is its first: only page
    // starts are looked at).
    if (align !== null && (c & (CHUNKS_PER_PAGE - 1)) === 0 && (live[c * 2] & 1) !== 0 && testBit(starts, c * CHUNK_WORDS)) {
      const o = c * CHUNK_WORDS;
      const sz = sizeWords(align.heap, align.types, o);
      if (sz >= align.words) {
        const t = huge && sz >= PMD_WORDS && o % PMD_WORDS === 0 ? Math.ceil(cursor / PMD_WORDS) * PMD_WORDS : alignUp(cursor);
        // A gap starting on a page's first word (the object below ends on the page edge): no
        // object overlaps that page, yet its filler goes there. Its build starts from the
        // object past the gap, as the segment's first page does; GAP would leave it all zeros.
        if (t > cursor && cursor % PAGE_WORDS === 0) pageFirst[cursor / PAGE_WORDS] = o;
        st.aligned++;
        st.alignGapWords += t - cursor;
        st.wholePages += markWhole(sh, align.heap, align.types, o, t, sz);
        cursor = t;
      }
    }
    chunkNew[c] = cursor;
    // Pages whose first word lands inside this chunk's new range [cursor, cursor+n).
    for (let pw = alignUp(cursor); pw < cursor + n; pw += PAGE_WORDS) {
      const p = pw / PAGE_WORDS;
      if (p === firstSlidePage) continue;
      let k = pw - cursor; // the k-th live word of chunk c
      let x = c * CHUNK_WORDS;
      for (;; x++) if (testBit(live, x) && k-- === 0) break;
      pageFirst[p] = objectAt(x);
    }
    cursor += n;
  }
  st.chunk = Math.max(st.chunk, toChunk);
  st.cursor = cursor;
  st.firstSlidePage = firstSlidePage;
}

/**
 * A slide page that no object overlaps, wholly below the segment's end, lies inside the gap
 * before an object kept on a 2 MiB boundary: GAP (the filler on the page where the gap starts
 * covers it; it is the zero page).
 */
const slideKind = (pageFirst: Uint32Array, p: number, newEnd: number): number => (pageFirst[p] === NONE && (p + 1) * PAGE_WORDS <= newEnd ? PageKind.GAP : PageKind.SLIDE);

export const alignUp = (w: number): number => Math.ceil(w / PAGE_WORDS) * PAGE_WORDS;
const alignDown = (w: number): number => Math.floor(w / PAGE_WORDS) * PAGE_WORDS;

/** Page-aligned spans around pinned objects, merged where they touch. */
export function pinnedSpans(heap: Uint32Array, types: Int32Array, sh: Shared, pinned: Iterable<number>): Span[] {
  const spans: Span[] = [];
  for (const w of pinned) spans.push({ start: alignDown(w), end: alignUp(w + liveWords(heap, types, sh.starts, sh.live, w)) });
  spans.sort((a, b) => a.start - b.start);
  const merged: Span[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else merged.push({ ...s });
  }
  return merged;
}

/** The live object whose extent contains word `w`, or -1. */
export function liveObjectAt(heap: Uint32Array, types: Int32Array, sh: Shared, w: number): number {
  const s = prevSet(sh.starts, w, 0);
  return s >= 0 && s + liveWords(heap, types, sh.starts, sh.live, s) > w ? s : -1;
}

export interface PlanOptions {
  topWord: number;
  pinned: Iterable<number>;
  /** Live fraction at or above which a leading page stays in place (>1 disables). */
  denseThreshold: number;
  /** Called every few MiB of heap planned: the marker thread's heartbeat. */
  beat?: () => void;
  /** Large objects that start on a page keep doing so from this many words (0: none). */
  alignWords: number;
}

const BEAT_CHUNKS = 1 << 14; // 8 MiB of heap

export function plan(heap: Uint32Array, types: Int32Array, sh: Shared, opts: PlanOptions): Plan {
  const oldTopAligned = alignUp(opts.topWord);
  const spans = pinnedSpans(heap, types, sh, opts.pinned);
  const { live, starts, chunkNew, pageFirst, pageKind, pageState } = sh;
  const totalPages = oldTopAligned / PAGE_WORDS;
  // With heartbeats: first touches of these tables are page faults (64 MiB of them at 16 GiB).
  fillBeating(pageKind, PageKind.NONE, 0, totalPages, opts.beat);
  fillBeating(pageState, PagePhase.MAPPED, 0, totalPages, opts.beat);
  fillBeating(pageFirst, NONE, 0, totalPages, opts.beat);

  // Regions between pinned spans; the last one runs to the old top (possibly empty).
  const regions: Span[] = [];
  let at = 0;
  for (const s of spans) {
    regions.push({ start: at, end: s.start });
    chunkNew.fill(IN_PLACE, s.start / CHUNK_WORDS, s.end / CHUNK_WORDS);
    at = s.end;
  }
  regions.push({ start: at, end: Math.max(at, oldTopAligned) });
  if (regions.length > MAX_SEGMENTS)
    throw new MoveGcError(ErrorCode.PIN_LIMIT, `too many pinned spans (${spans.length}, at most ${MAX_SEGMENTS - 1} separate page ranges): release pins or pin objects that share pages`);

  // Dense prefix: leading full pages of the first region that are at least denseThreshold live.
  let identEnd = 0;
  const first = regions[0];
  const fullEnd = Math.min(first.end, alignDown(opts.topWord));
  while (identEnd < fullEnd && countRange(live, identEnd, identEnd + PAGE_WORDS) >= opts.denseThreshold * PAGE_WORDS) {
    identEnd += PAGE_WORDS;
    if (opts.beat !== undefined && (identEnd & (BEAT_CHUNKS * CHUNK_WORDS - 1)) === 0) opts.beat();
  }

  const segments: Plan['segments'] = [];
  let resume: SlideState = newSlide(0, 0);
  const align: Alignment | null = opts.alignWords > 0 ? { heap, types, words: opts.alignWords } : null;
  let aligned: Plan['aligned'] = { objects: 0, gapWords: 0, wholePages: 0 };
  let pagesTotal = 0;
  let identityPages = 0;
  regions.forEach((r, i) => {
    const segIdent = i === 0 ? identEnd : r.start;
    const cursorStart = Math.max(segIdent, r.start === 0 ? HEAP_START_WORD : r.start);
    chunkNew.fill(IN_PLACE, r.start / CHUNK_WORDS, segIdent / CHUNK_WORDS);
    for (let p = r.start / PAGE_WORDS; p < segIdent / PAGE_WORDS; p++) {
      pageKind[p] = PageKind.IDENTITY;
      pageState[p] = PagePhase.UNPROCESSED;
      const pw = p * PAGE_WORDS;
      const o = testBit(live, pw) ? prevSet(starts, pw, 0) : nextSet(starts, pw, pw + PAGE_WORDS);
      pageFirst[p] = o < pw + PAGE_WORDS ? o : NONE;
      identityPages++;
    }
    // A sliding object straddling the region's end into the next pinned span: its in-span
    // tail is not counted by the chunk loop below (it lies past END), yet it slides with the
    // object. It must fit below the span: if the region has fewer dead words than the tail
    // (but some), sliding would run it into the span, so the span grows down to cover it.
    const last = i === regions.length - 1;
    let tailX = -1;
    let tail = 0;
    while (!last && r.end > segIdent) {
      const x = liveObjectAt(heap, types, sh, r.end - 1);
      if (x < segIdent) break; // none, or it stays in the dense prefix
      const xEnd = x + liveWords(heap, types, sh.starts, sh.live, x);
      if (xEnd <= r.end) break;
      const gap = r.end - (cursorStart + countRange(live, segIdent, r.end));
      if (gap === 0) break; // everything below stays in place, and so does x
      if (gap >= xEnd - r.end) {
        tailX = x;
        tail = xEnd - r.end;
        break;
      }
      const span = spans[i];
      span.start = alignDown(x);
      chunkNew.fill(IN_PLACE, span.start / CHUNK_WORDS, r.end / CHUNK_WORDS);
      r.end = span.start;
    }
    // Slide: exclusive prefix sum of live words per chunk; note the object that starts each
    // to-space page as the cursor crosses it.
    const st = newSlide(segIdent / CHUNK_WORDS, cursorStart);
    // Only the last segment keeps large objects on pages: below a pinned span the slide must
    // fit under it, which the checks above count in live words alone.
    const segAlign = last ? align : null;
    if (last) {
      // The last segment can grow in the compaction pause by what the mutator allocated
      // after the plan's top (extendPlan): keep the slide state where that top falls.
      const resumeChunk = Math.min(Math.max(opts.topWord >>> 6, st.chunk), r.end / CHUNK_WORDS);
      slideChunks(sh, st, resumeChunk, r.end, segAlign, opts.beat);
      resume = { ...st };
    }
    slideChunks(sh, st, r.end / CHUNK_WORDS, r.end, segAlign, opts.beat);
    if (last) aligned = { objects: st.aligned, gapWords: st.alignGapWords, wholePages: st.wholePages };
    let cursor = st.cursor;
    if (tail > 0) {
      // Pages that start inside the straddler's slid tail begin with the straddler.
      for (let pw = alignUp(cursor); pw < cursor + tail; pw += PAGE_WORDS) pageFirst[pw / PAGE_WORDS] = tailX;
      cursor += tail;
    }
    const newEnd = cursor;
    const fillerEnd = last ? alignUp(newEnd) : r.end;
    const firstPage = r.start / PAGE_WORDS;
    const endPage = Math.max(segIdent / PAGE_WORDS, newEnd > cursorStart ? alignUp(newEnd) / PAGE_WORDS : segIdent / PAGE_WORDS);
    for (let p = segIdent / PAGE_WORDS; p < endPage; p++) {
      if (pageKind[p] !== PageKind.WHOLE) pageKind[p] = slideKind(pageFirst, p, newEnd);
      pageState[p] = PagePhase.UNPROCESSED;
    }
    pagesTotal += endPage - firstPage;
    // A sliding object straddling the end into a pinned span: its run extends past END.
    const x = r.end > r.start && !last ? liveObjectAt(heap, types, sh, r.end - 1) : -1;
    const endExt = x >= 0 && chunkNew[x >>> 6] !== IN_PLACE ? Math.max(r.end, x + liveWords(heap, types, sh.starts, sh.live, x)) : r.end;
    const seg = { start: r.start, end: r.end, identEnd: segIdent, newEnd, fillerEnd, firstPage, endPage, endExt };
    segments.push(seg);
    sh.segments.set([seg.start, seg.end, seg.identEnd, seg.newEnd, seg.fillerEnd, seg.firstPage, seg.endPage, seg.endExt], i * SEG_FIELDS);
  });
  const lastSeg = segments[segments.length - 1];
  return {
    segments,
    pinnedSpans: spans,
    pagesTotal,
    identityPages,
    // With pages to build, allocation resumes above them (the filler covers the gap below);
    // with none, right where the live data ends.
    allocTop: lastSeg.endPage > lastSeg.firstPage ? lastSeg.endPage * PAGE_WORDS : lastSeg.newEnd,
    oldTopAligned,
    resume,
    aligned,
  };
}

/**
 * The next layout's object starts: the new address (forward()) of every object whose start bit
 * is set in `source` within words [from, to), into `next`. With the mark bitmap as source, dead
 * objects get no bit: in the dense prefix and pinned spans they become fillers.
 */
export function forwardObjectStarts(sh: Shared, source: Uint32Array, next: Uint32Array, from: number, to: number, beat?: () => void): void {
  const { chunkNew, live } = sh;
  for (let i = from >>> 5, n = (to + 31) >>> 5; i < n; i++) {
    if (beat !== undefined && (i & (BEAT_CHUNKS - 1)) === 0) beat();
    let v = source[i];
    while (v !== 0) {
      const o = (i << 5) | (31 - Math.clz32(v & -v));
      v &= v - 1;
      if (o < from || o >= to) continue;
      const t = forward(chunkNew, live, o);
      next[t >>> 5] |= 1 << (t & 31);
    }
  }
}

/**
 * Extends the plan, in the compaction pause, over what the mutator allocated after the plan's
 * top: objects allocated after the marking pause are live (ART's black allocations) and slide
 * as one block at the end of the last segment. The caller has set their live and start bits.
 * Cost: the chunks and pages of that allocation, not the heap.
 */
export function extendPlan(sh: Shared, p: Plan, planTop: number, newTop: number, align: Alignment | null): void {
  if (newTop <= planTop) return;
  const i = p.segments.length - 1;
  const seg = p.segments[i];
  const endAligned = alignUp(newTop);
  const { pageKind, pageState, pageFirst } = sh;
  const from = p.oldTopAligned / PAGE_WORDS;
  const to = endAligned / PAGE_WORDS;
  pageKind.fill(PageKind.NONE, from, to);
  pageState.fill(PagePhase.MAPPED, from, to);
  pageFirst.fill(NONE, from, to);
  const st: SlideState = { ...p.resume };
  slideChunks(sh, st, endAligned / CHUNK_WORDS, endAligned, align);
  p.aligned = { objects: st.aligned, gapWords: st.alignGapWords, wholePages: st.wholePages };
  const cursorStart = Math.max(seg.identEnd, seg.start === 0 ? HEAP_START_WORD : seg.start);
  const newEnd = st.cursor;
  const endPage = Math.max(seg.identEnd / PAGE_WORDS, newEnd > cursorStart ? alignUp(newEnd) / PAGE_WORDS : seg.identEnd / PAGE_WORDS);
  for (let q = seg.endPage; q < endPage; q++) {
    if (pageKind[q] !== PageKind.WHOLE) pageKind[q] = slideKind(pageFirst, q, newEnd);
    pageState[q] = PagePhase.UNPROCESSED;
  }
  p.pagesTotal += endPage - seg.endPage;
  Object.assign(seg, { end: endAligned, newEnd, fillerEnd: alignUp(newEnd), endPage, endExt: endAligned });
  sh.segments.set([seg.start, seg.end, seg.identEnd, seg.newEnd, seg.fillerEnd, seg.firstPage, seg.endPage, seg.endExt], i * SEG_FIELDS);
  p.allocTop = endPage > seg.firstPage ? endPage * PAGE_WORDS : newEnd;
  p.oldTopAligned = endAligned;
}

/**
 * The compaction pause's work for what the mutator allocated after the plan's top (the flip,
 * cycle.ts, and its warm-up, warmup.ts): blacken [planTop, top) (mark.ts), extend the plan over
 * it, and forward its object starts into the next layout's bitmap. Returns what was blackened.
 */
export function extendOverAllocations(sh: Shared, p: Plan, allocStarts: Uint32Array, nextStarts: Uint32Array, gaps: readonly number[], planTop: number, top: number, align: Alignment | null): { objects: number; words: number } {
  const black = blacken(sh.starts, sh.live, allocStarts, gaps, planTop, top);
  extendPlan(sh, p, planTop, top, align);
  forwardObjectStarts(sh, sh.starts, nextStarts, planTop, top);
  return black;
}

/**
 * Where live data ends in the plan's layout, below `top`: the end of the object with the
 * highest start in `nextStarts` (the layout's object starts, complete once the plan covers
 * `top`). An object in place (the dense prefix, a pinned span) has its header where it will
 * stay: its end is read from it. Any other is in the last segment, slid: the data ends at that
 * segment's slide cursor. Read in the compaction pause, before anything is remapped.
 */
export function liveEndOf(sh: Shared, p: Plan, heap: Uint32Array, nextStarts: Uint32Array, top: number): number {
  // From the new layout's top, not the old one: the scan would cross all that compaction
  // frees (5-6 ms in the pause at 256 MiB, half of it garbage).
  const from = Math.min(top, p.allocTop);
  const o = from > HEAP_START_WORD ? prevSet(nextStarts, from - 1, HEAP_START_WORD) : -1;
  if (o < HEAP_START_WORD) return HEAP_START_WORD;
  const inPlace = o < p.segments[0].identEnd || p.pinnedSpans.some((s) => o >= s.start && o < s.end);
  const end = inPlace ? o + sizeWords(heap, sh.types, o) : p.segments[p.segments.length - 1].newEnd;
  return Math.min(end, p.allocTop);
}

export { Seg };
