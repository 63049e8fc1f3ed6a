/**
 * The plan the compaction pause installs (cycle.ts, phase 5). With concurrent marking it is the
 * marker's (phase 4), extended over what the mutator allocated since the marking pause: that
 * slides as one block at the end, as ART's black allocations do. Otherwise the plan is made
 * here, in the pause: marking in the pause (`marking: 'pause'`, `stw`), a pin added since the
 * marker planned (its span is unknown to that plan, and it may lie in what was allocated since,
 * which the extension would slide), or a marker that failed or died while planning.
 */
import type { ActiveCycle, CycleContext } from './cycle-state.js';
import { blacken, mark } from './mark.js';
import type { MarkerLink } from './marker-link.js';
import { extendOverAllocations, forwardObjectStarts, plan as planHeap, type Plan } from './plan.js';
import { Clk, now } from './shared.js';
import { WORD } from './layout.js';

/** Black allocation (mark.ts blacken), counted in the cycle's marking statistics. */
export function blackenAllocated(c: CycleContext, a: ActiveCycle, from: number, to: number): void {
  const { sh, mut } = c;
  countBlack(a, blacken(sh.starts, sh.live, sh.objects[mut.epochStarts], mut.allocGaps ?? [], from, to));
}

function countBlack(a: ActiveCycle, black: { objects: number; words: number }): void {
  a.stats.mark.blackObjects += black.objects;
  a.stats.mark.blackBytes += black.words * WORD;
}

/**
 * The plan for cycle `a`, its marking and planning times recorded in a.stats. `marker` is null
 * when this heap marks in the pause. Throws what marking or planning threw (the caller aborts
 * the cycle: nothing has moved yet).
 */
export function planForFlip(c: CycleContext, a: ActiveCycle, marker: MarkerLink | null, alignWords: number): Plan {
  const { sh, mut, opts } = c;
  const st = a.stats;
  if (!marker) {
    const t0 = now();
    const m = mark(mut.u32, sh.types, mut.typeCount, sh.starts, sh.live, mut.top, mut.rootWords(), sh.objects[mut.epochStarts]);
    st.mark.objects = m.objects;
    st.mark.words = m.words;
    a.planTop = mut.top;
    st.markMs = now() - t0;
  }
  const tp = now();
  const reply = marker?.done(a.request) ? marker.reply(a.request) : null;
  const top = mut.top;
  if (reply?.ok && reply.plan && mut.pinsAdded === a.pinsAdded) {
    const p = reply.plan;
    st.planMs = sh.clk[Clk.PLAN_END] - sh.clk[Clk.PLAN_START];
    st.plan.concurrentMs = st.planMs;
    st.plan.cpuMs = sh.clk[Clk.PLAN_CPU];
    if (top > a.planTop) {
      const align = alignWords > 0 ? { heap: mut.u32, types: sh.types, words: alignWords } : null;
      countBlack(a, extendOverAllocations(sh, p, sh.objects[mut.epochStarts], sh.objects[mut.epochStarts ^ 1], mut.allocGaps ?? [], a.planTop, top, align));
    }
    return p;
  }
  if (marker) st.plan.inPause = true;
  if (top > a.planTop) blackenAllocated(c, a, a.planTop, top);
  a.planTop = top;
  const p = planHeap(mut.u32, sh.types, sh, { topWord: top, pinned: mut.pinWords(), denseThreshold: opts.denseThreshold, alignWords });
  const next = sh.objects[mut.epochStarts ^ 1];
  // A marker's plan (unused: a pin since, or it failed or was lost) may have written next
  // layout starts anywhere below the top; left above the old extent, they would be object
  // starts in free space, which the next cycle's black allocation takes for its own.
  next.fill(0, 0, marker ? Math.max(mut.nextStartsExtent, (top >>> 5) + 1) : mut.nextStartsExtent);
  forwardObjectStarts(sh, sh.starts, next, 0, p.oldTopAligned);
  st.planMs = now() - tp;
  return p;
}
