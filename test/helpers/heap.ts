/**
 * Heap test plumbing: per-mode `it` (kernel-gated for move/copy), heaps closed after each
 * test, and the per-cycle statistics consistency check every heap test applies.
 */
import { afterEach, expect, it } from 'vitest';
import { pino } from 'pino';
import { Heap, type CycleStats, type HeapOptions, type Logger, type ModeName } from '../../dist/gc/index.js';
import { itKernel } from '../kernel.js';

export const TEST_MODES: readonly ModeName[] = ['move', 'copy', 'stw'];

/** `it` for a mode: move needs userfaultfd + MOVE, copy needs userfaultfd, stw needs nothing. */
export function itMode(mode: ModeName, name: string, fn: () => unknown | Promise<unknown>, timeout?: number): void {
  const full = `[${mode}] ${name}`;
  if (mode === 'stw') it(full, fn, timeout);
  else itKernel(full, fn, mode === 'move' ? ['uffd', 'move'] : ['uffd'], timeout);
}

const open: Heap[] = [];
/** Registers the afterEach that closes every heap a test opened (call once per file). */
export function closeHeapsAfterEach(): void {
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
  });
}

/**
 * Creates a heap in exactly the mode asked (a silent fallback would void the test). Unless
 * the test sets it, stallMs is 5 s: on a loaded machine a collector thread can be
 * descheduled for longer than the 200 ms default, and a takeover would then be a fact of
 * scheduling, not of the code under test (tests of takeovers set their own stallMs).
 */
export async function openHeap(opts: HeapOptions): Promise<Heap> {
  const heap = await Heap.create({ stallMs: 5000, ...opts });
  open.push(heap);
  expect(heap.mode, `heap fell back: ${heap.fallbacks.join('; ')}`).toBe(opts.mode ?? 'move');
  return heap;
}

export interface StatsExpect {
  /** The mutator allocated during the concurrent phase (usedAfter then exceeds the plan). */
  allocatedDuring?: boolean;
  /** EBUSY refusals are expected (pins, fork). */
  ebusy?: boolean;
  /** Threads were killed/stalled: claims may have been taken over, EEXIST/ENOENT tolerated. */
  injected?: boolean;
  /** The mutator touched the heap during the concurrent phase (faults, single-page installs). */
  faulted?: boolean;
}

/** Granularity of /proc/thread-self/schedstat's run time (a scheduler tick, at most 10 ms). */
const SCHED_TICK_MS = 10;
const num = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/** Consistency of one cycle's statistics with each other and with the mode. */
export function checkStats(st: CycleStats, mode: ModeName, e: StatsExpect = {}): void {
  // Everything the page and call bounds below are made of, so that a rare failure can be read
  // from its message alone.
  const ctx = `cycle ${st.cycle} (${mode}): ${JSON.stringify({ pages: st.pages, moveCalls: st.moveCalls, copyCalls: st.copyCalls, faults: st.faults, ebusy: st.ebusy, ebusyCopies: st.ebusyCopies, eexist: st.eexist, enoent: st.enoent, eagain: st.eagain, splitRuns: st.splitRuns, takeovers: st.takeovers, errors: st.errors, selfHelped: st.stalls.selfHelped, selfLeft: st.stalls.selfLeft, selfFailed: st.stalls.selfFailed, unbuiltTouches: st.stalls.unbuiltTouches, expect: e })}`;
  expect(st.mode, ctx).toBe(mode);
  // Pause fields are present and sane.
  for (const k of ['totalMs', 'rootsMs', 'pinnedMs', 'registerMs', 'remapMs'] as const) expect(num(st.pause[k]), `${ctx} pause.${k}=${st.pause[k]}`).toBe(true);
  expect(st.pause.totalMs + 1e-6, ctx).toBeGreaterThanOrEqual(st.pause.rootsMs + st.pause.pinnedMs + st.pause.registerMs + st.pause.remapMs - 1e-3);
  for (const k of ['markMs', 'planMs', 'compactionMs', 'compactorBusyMs', 'concurrentMs'] as const) expect(num(st[k]), `${ctx} ${k}=${st[k]}`).toBe(true);
  // The compactor's time split: parts of its busy time (waits outside it), zeros in stw.
  const cs = st.compactor;
  for (const k of ['buildMs', 'installMs', 'releaseMs', 'otherMs', 'waitMs', 'cpuMs', 'queuedMs'] as const) expect(num(cs[k]), `${ctx} compactor.${k}=${cs[k]}`).toBe(true);
  expect(cs.buildMs + cs.installMs + cs.releaseMs + cs.otherMs, `${ctx} ${JSON.stringify(cs)}`).toBeCloseTo(mode === 'stw' ? 0 : st.compactorBusyMs, 3);
  // (A compactor that died or was replaced mid-cycle reports nothing: busy time 0.)
  if (mode !== 'stw' && st.pages.builtByCompactor > 0 && st.compactorBusyMs > 0) {
    expect(cs.buildMs, `${ctx} ${JSON.stringify(cs)}`).toBeGreaterThan(0);
    expect(cs.installMs, `${ctx} ${JSON.stringify(cs)}`).toBeGreaterThan(0);
    // schedstat is updated at scheduler ticks: a short cycle may read 0, any cycle one tick more.
    expect(cs.cpuMs, `${ctx} ${JSON.stringify(cs)}`).toBeLessThanOrEqual(st.compactionMs + SCHED_TICK_MS);
  }
  // The mapping count the pause checked (map-count.ts), from the marker's plan or the pause's own.
  expect(st.plan.mapHeadroom, `${ctx} plan ${JSON.stringify(st.plan)}`).toBeGreaterThan(0);
  expect(st.rss.beforeBytes, ctx).toBeGreaterThan(0);
  expect(st.rss.peakBytes, ctx).toBeGreaterThanOrEqual(st.rss.beforeBytes);
  expect(st.rss.afterBytes, ctx).toBeGreaterThan(0);
  expect(st.errors, ctx).toBe(0);
  if (!e.ebusy) {
    expect(st.ebusy, ctx).toBe(0);
    expect(st.ebusyCopies, ctx).toBe(0);
  }
  expect(st.ebusyCopies, ctx).toBeLessThanOrEqual(st.ebusy);
  // Live data is what the plan keeps; allocation top never exceeds the old one unless the
  // mutator allocated during the concurrent phase.
  expect(st.liveBytes, ctx).toBeLessThanOrEqual(st.usedBeforeBytes);
  if (!e.allocatedDuring) {
    expect(st.usedAfterBytes, ctx).toBe(st.usedBeforeBytes - st.reclaimedBytes + st.gapBytes);
    expect(st.usedAfterBytes, ctx).toBeGreaterThanOrEqual(st.liveBytes);
  }
  const p = st.pages;
  expect(p.identity, ctx).toBeLessThanOrEqual(p.total);
  // WHOLE pages: planned by the plan, installed unbuilt by the compactor alone (never in stw).
  expect(p.whole, ctx).toBeLessThanOrEqual(Math.min(st.plan.wholePages, p.builtByCompactor));
  if (mode === 'stw') expect(p.whole + p.gap, ctx).toBe(0);
  // GAP pages: only with hugePages, installed as the zero page by the compactor alone.
  expect(p.gap, ctx).toBeLessThanOrEqual(p.builtByCompactor);
  // Short runs copied in move mode (moveMinRun): only by the compactor, only in move mode.
  expect(p.shortRunCopied, ctx).toBeLessThanOrEqual(mode === 'move' ? p.builtByCompactor : 0);
  // Other runs built into the compactor's scratch pages: copied too, in move mode only.
  expect(p.scratchCopied, ctx).toBeLessThanOrEqual(mode === 'move' ? p.freshBuffers : 0);
  // Every page is built exactly once, by someone.
  expect(p.builtByCompactor + p.builtByFaults + p.builtByMutator, ctx).toBe(p.total);
  if (mode === 'stw') {
    expect(p.moved + p.copied, ctx).toBe(0);
    expect(p.builtByMutator, ctx).toBe(p.total);
    expect(st.faults, ctx).toBe(0);
    expect(st.moveCalls + st.copyCalls, ctx).toBe(0);
    return;
  }
  // Every page installed once: by MOVE, COPY or as a GAP's zero page (EEXIST/ENOENT only when
  // a builder was taken over).
  if (e.injected) {
    expect(p.moved + p.copied + p.gap, ctx).toBeLessThanOrEqual(p.total);
    expect(p.moved + p.copied + p.gap + st.eexist + st.enoent, ctx).toBeGreaterThanOrEqual(p.total);
  } else {
    expect(p.moved + p.copied + p.gap, ctx).toBe(p.total);
    // A page the mutator installed from another builder's buffer (selfHelped): whichever of
    // the two installs came second met EEXIST.
    expect(st.enoent + st.takeovers, ctx).toBe(0);
    expect(st.eexist, ctx).toBeLessThanOrEqual(st.stalls.selfHelped);
  }
  if (mode === 'copy') {
    expect(p.moved, ctx).toBe(0);
    expect(st.moveCalls, ctx).toBe(0);
    expect(p.recycledBuffers, ctx).toBe(0);
  } else {
    // In move mode a page is copied when MOVE refused it, when it was built alone for a
    // fault or by the mutator (faultInstall 'copy', the default: a one-page MOVE costs a
    // TLB shootdown on every CPU, a one-page COPY does not), or when the compactor's run was
    // shorter than moveMinRun or built into its scratch pages (one COPY call per run; a page
    // of one met EEXIST if taken over).
    const single = p.builtByFaults + p.builtByMutator - p.pmdBuiltBySelf; // (a span the mutator built whole was moved)
    const helped = st.stalls.selfHelped; // COPYs of another builder's buffer: won or met EEXIST
    const others = p.copied - st.ebusyCopies - single - p.shortRunCopied - p.scratchCopied;
    if (!e.injected) expect(others + st.eexist, ctx).toBeGreaterThanOrEqual(0);
    if (!e.injected) expect(others, ctx).toBeLessThanOrEqual(helped);
    expect(st.copyCalls, ctx).toBeGreaterThanOrEqual(p.copied - p.shortRunCopied - p.scratchCopied);
    // A lost race costs up to two COPY calls (a one-page run meeting EEXIST is retried page by page).
    // A run across two of the heap's VMAs costs a call more for each refusal (then in halves).
    expect(st.copyCalls, ctx).toBeLessThanOrEqual(p.copied + 2 * helped + st.splitRuns + (e.injected ? 2 * st.eexist : 0));
    // Batching: one MOVE call per run, not per page (a histogram sample per call, MOVE or COPY).
    if (!e.injected) expect(st.batchPages.count, ctx).toBe(st.moveCalls + st.copyCalls);
    if (p.total >= 128 && !e.faulted && !e.injected) expect(st.moveCalls, ctx).toBeLessThan(p.total / 4);
    // Buffers: the compactor's pages were built into recycled from-space or scratch pages
    // (fresh, or a short run's), or were WHOLE (installed from their from-space page, unbuilt)
    // or GAP (the zero page).
    expect(p.recycledBuffers + p.freshBuffers + p.shortRunCopied + p.whole + p.gap, ctx).toBeGreaterThanOrEqual(p.builtByCompactor);
  }
  // Every fault read was served and timed; every page the accessors built was timed.
  expect(st.faultUs.count, ctx).toBe(st.faults);
  expect(st.stalls.self.count, ctx).toBe(st.pages.builtBySelf);
  if (st.faultPath === 'handler') expect(st.pages.builtBySelf, ctx).toBe(0);
  // (mode is not 'stw' here: the stw branch above returned; the guard it had was always true.)
  expect(st.pages.builtByMutator + st.takeovers + st.stalls.selfHelped, ctx).toBeGreaterThanOrEqual(st.pages.builtBySelf);
  if (!e.faulted && !e.injected) expect(st.faults, ctx).toBe(0);
}

/** A pino logger that keeps every record (warn and above by default) for assertions. */
export function captureLogger(level = 'warn'): { logger: Logger; records: Array<{ level: number; msg: string; [k: string]: unknown }> } {
  const records: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records };
}
