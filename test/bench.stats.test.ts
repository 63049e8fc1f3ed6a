/**
 * The bench's figures (found by an audit of their computation): a rep with no latency samples
 * is not a 0 us latency in the median over reps, and no MMU window lies past the shortest rep.
 */
import { describe, expect, it } from 'vitest';
import { cdfOfBuckets, median, medianOfSampled, mergeBuckets, mmuWindows, quantiles } from '../dist/bench/stats.js';
import { bucketOf, bucketValue } from '../dist/gc/shared.js';
import { compare, floorBound, goalsOf, type Comparison, type Results } from '../dist/bench/results.js';
import type { RepResult } from '../dist/bench/cycle.js';
import type { Floor } from '../dist/bench/floor.js';
import type { Workload } from '../dist/bench/workload.js';

describe('bench statistics', () => {
  it('the median over reps leaves out figures a rep could not measure (NaN, Infinity)', () => {
    expect(median([3, NaN, 1, 2])).toBe(2);
    expect(median([4, 1, Infinity, 3, 2])).toBe(2.5);
    expect(median([NaN])).toBeNaN();
    expect(median([])).toBeNaN();
  });

  it('the median of a quantile over reps leaves out reps without samples', () => {
    const reps = [quantiles([]), quantiles([]), quantiles(Array(500).fill(60))];
    expect(medianOfSampled(reps, 'p50')).toBe(60);
    expect(medianOfSampled(reps, 'p99')).toBe(60);
    // No samples in any rep: no figure (an audit: 0 µs made ratios of 0 and the fault goals 'met')
    expect(medianOfSampled([quantiles([]), quantiles([])], 'p50')).toBeNull();
    expect(medianOfSampled([], 'max')).toBeNull();
    expect(medianOfSampled([quantiles([10]), quantiles([20]), quantiles([30])], 'p50')).toBe(20);
  });

  it("a bucketed histogram's CDF is exact at each bucket's upper bound", () => {
    // Samples of 10.5 and 20.5 us, bucketed as the collector does ([lower bound, count]).
    const buckets = [10.5, 20.5].map((x) => [bucketValue(bucketOf(x)), 1] as [number, number]);
    expect(buckets).toEqual([[10, 1], [20, 1]]);
    // Both lie above 10 (an audit: [10, 0.5] plotted half of them slower than 10 us).
    expect(cdfOfBuckets(buckets)).toEqual([[11, 0.5], [21, 1]]);
  });

  it('quantiles sort their sample first (nearest rank of the sorted values)', () => {
    const q = quantiles([30, 10, 20]);
    expect(q.p50).toBe(20);
    expect(q.max).toBe(30);
    expect(q.mean).toBe(20);
    expect(q.count).toBe(3);
  });

  it('merged histograms add the counts of a bucket, sorted by bucket', () => {
    expect(mergeBuckets([[[10, 1], [20, 2]], [[10, 3]]])).toEqual([[10, 4], [20, 2]]);
    expect(mergeBuckets([[[20, 2]], [[10, 1], [20, 3]]])).toEqual([[10, 1], [20, 5]]);
    expect(mergeBuckets([])).toEqual([]);
  });

  it('MMU windows stay within the shortest rep', () => {
    for (const h of [123.45678, 317.77777, 0.05, 1, 5000.99999]) {
      const w = mmuWindows(h, 48);
      expect(w).toHaveLength(48);
      expect(Math.max(...w), `horizon ${h}`).toBeLessThanOrEqual(Math.max(0.1, h));
      for (let i = 1; i < w.length; i++) expect(w[i]).toBeGreaterThanOrEqual(w[i - 1]);
    }
  });
});

describe('the floor bound of move/copy (bench/results.ts floorBound)', () => {
  const copy = { compactorBuildMs: 70, compactorReleaseMs: 20, compactorBusyMs: 140, pagesMoved: 0, pagesCopied: 30000 };
  it("move's builds and releases as measured, its installs at the floor's cost a page, over copy's busy time", () => {
    const move = { compactorBuildMs: 60, compactorReleaseMs: 10, compactorBusyMs: 110, pagesMoved: 20000, pagesCopied: 1000 };
    // 60 + 10 + (20000 x 500 ns + 1000 x 2000 ns) = 82 ms, over 140.
    expect(floorBound(move, copy, 500, 2000)).toBeCloseTo(82 / 140, 12);
    // Move's own bookkeeping and measured installs do not count: the same busy time, any split.
    expect(floorBound({ ...move, compactorBusyMs: 1e6 }, copy, 500, 2000)).toBeCloseTo(82 / 140, 12);
    expect(floorBound(move, { ...copy, compactorBusyMs: 70 }, 500, 2000)).toBeCloseTo(82 / 70, 12);
  });
  it('no bound without both modes, a copy time, or a floor', () => {
    const move = { ...copy, pagesMoved: 1, pagesCopied: 0 };
    expect(floorBound(undefined, copy, 500, 2000)).toBeNull();
    expect(floorBound(move, undefined, 500, 2000)).toBeNull();
    expect(floorBound(move, { ...copy, compactorBusyMs: 0 }, 500, 2000)).toBeNull();
    expect(floorBound(move, copy, NaN, 2000)).toBeNull();
  });
});

const MiB = 2 ** 20;
const workload: Workload = { heapBytes: 64 * MiB, live: 0.5, pattern: 'interleaved', sizes: 'mixed', pinned: 0, seed: 1, fill: 0.9, roots: 64 };

/** A rep with the fields compare() and its per-mode summary read (the rest left out). */
function rep(i: number, over: Record<string, unknown> = {}): RepResult {
  return {
    rep: i, mode: 'move', requestedMode: 'move', fallbacks: [], heapBytes: 64 * MiB, usedBytes: 57 * MiB, liveBytes: 28 * MiB, liveObjects: 1000, pins: 0, buildMs: 100,
    collectMs: 5, marking: 'concurrent', pauses: [{ kind: 'compaction', ms: 0.5 }], stwMaxMs: 1, stwMaxKind: 'pause', stwTotalMs: 2, markMs: 3, planMs: 1, pauseMs: 0.5,
    compactionMs: 100, compactorBusyMs: 110, concurrentMs: 100, idleMs: 1, throughputMBps: 300, faults: 0, mutatorFaults: 0, faultMutatorUs: quantiles([40]), faultHandlerUs: quantiles([20]),
    faultPathStalls: undefined, compactorSplit: { buildMs: 60, installMs: 20, releaseMs: 10, otherMs: 20 }, faultHandlerBuckets: [[20, 1]], touches: 100, touchErrors: 0,
    pages: { total: 21000, builtByFaults: 0 }, pagesMoved: 20000, pagesCopied: 1000, moveCalls: 400, copyCalls: 100, batchPagesP50: 64, ebusyFallbacks: 0,
    rssBeforeBytes: 100 * MiB, rssPeakBytes: 105 * MiB, rssAfterBytes: 70 * MiB, horizonMs: 200,
    timeline: { tMs: [0, 1], pagesMapped: [0, 1], faults: [0, 0], rssMiB: [100, 100], faultEvents: [] },
    stalls: [[10, 11]], stallsCompaction: [[10, 11]], faultSamplesUs: [40],
    ...over,
  } as unknown as RepResult;
}

/** A floor whose five per-page figures at 64 pages a call all differ. */
const floor = {
  movePerPageNs: { '1': 1, '16': 1, '32': 1, '34': 1, '64': 500, '512': 1 },
  copyPerPageNs: { '1': 1, '64': 3000, '512': 1 },
  copyFromScratchPerPageNs: { '1': 1, '64': 1100 },
  busySibling: { movePerPageNs: { '1': 1, '64': 1700 }, copyPerPageNs: { '1': 1, '64': 900 }, faultRoundTripUs: quantiles([30]) },
  faultRoundTripUs: quantiles([20]),
} as unknown as Floor;

describe('compare (bench/results.ts): per-mode figures and the ratios between modes', () => {
  const byMode = new Map<'move' | 'copy', RepResult[]>([
    ['move', [rep(1, { stwMaxMs: 1, stwMaxKind: 'pause' }), rep(2, { stwMaxMs: 9, stwMaxKind: 'access' }), rep(3, { stwMaxMs: 3, stwMaxKind: 'idle' })]],
    ['copy', [1, 2, 3].map((i) => rep(i, { mode: 'copy', compactorBusyMs: 140, pagesMoved: 0, pagesCopied: 21000 }))],
  ]);
  const c = compare(workload, {}, 200, byMode, floor);

  it('the floor bound with the other CPU idle uses MOVE at 64 pages and COPY from a scratch buffer at 64 pages', () => {
    expect(c.ratios.moveOverCopyBoundIdle).toBe(floorBound(c.modes.move, c.modes.copy, floor.movePerPageNs['64'], floor.copyFromScratchPerPageNs['64']));
    // 60 + 10 + (20000 x 500 ns + 1000 x 1100 ns) = 81.1 ms, over copy's 140.
    expect(c.ratios.moveOverCopyBoundIdle).toBeCloseTo(81.1 / 140, 12);
  });

  it("the floor bound with a busy sibling uses the busy sibling's MOVE and COPY figures", () => {
    expect(c.ratios.moveOverCopyBoundBusy).toBe(floorBound(c.modes.move, c.modes.copy, floor.busySibling.movePerPageNs['64'], floor.busySibling.copyPerPageNs['64']));
    // 60 + 10 + (20000 x 1700 ns + 1000 x 900 ns) = 104.9 ms, over 140.
    expect(c.ratios.moveOverCopyBoundBusy).toBeCloseTo(104.9 / 140, 12);
  });

  it("a mode's longest stop is the longest over its reps (not a median), and its kind is that rep's", () => {
    expect(c.modes.move!.stwMaxMs).toBe(9);
    expect(c.modes.move!.stwMaxKind).toBe('access');
  });
});

describe('goalsOf (bench/results.ts): each goal is met up to its stated target, and missed past it', () => {
  // [goal id, where its value comes from, target as stated, a value just inside, just outside]
  const table: Array<[string, string, string, number, number]> = [
    ['moveVsCopy', 'moveOverCopyCompaction', '<= 0.5', 0.5, 0.501],
    ['moveVsCopyBound', 'moveOverCopyBoundIdle', '<= 0.5', 0.5, 0.501],
    ['faultVsFloor', 'moveFaultP50OverFloor', '<= 2', 2, 2.01],
    ['faultVsBusyFloor', 'moveFaultP50OverBusyFloor', '<= 2', 2, 2.01],
    ['moveRss', 'movePeakOverBefore', '<= 1.10', 1.1, 1.101],
    ['throughput', 'moveThroughputGBps', '>= 1', 1, 0.99],
    ['pause1G', 'sweep pause1GiBMs', '< 5', 4.99, 5],
    ['pauseScaling', 'sweep ratio', '<= 1.5', 1.5, 1.51],
  ];
  const goals = (values: Record<string, number>): Map<string, { met: boolean | null; target: string; value: number | null }> => {
    const ratios = Object.fromEntries(table.filter(([, k]) => !k.startsWith('sweep')).map(([, k]) => [k, values[k]]));
    const c = { workload, heapOptions: {}, horizonMs: 200, modes: {}, ratios } as unknown as Comparison;
    const sweep = { points: [], pauseSmallVsLarge: { move: { pause1GiBMs: values['sweep pause1GiBMs'], ratio: values['sweep ratio'] } } } as Results['sweep'];
    return new Map(goalsOf(c, sweep).map((g) => [g.id, g]));
  };
  const inside = Object.fromEntries(table.map(([, k, , v]) => [k, v]));

  it('every goal met with each value at its target', () => {
    const g = goals(inside);
    expect([...g.keys()].sort()).toEqual(table.map(([id]) => id).sort());
    for (const [id, , target, v] of table) expect(g.get(id), id).toEqual(expect.objectContaining({ met: true, target, value: v }));
  });

  it.each(table)('%s (from %s, %s): missed just past its target, the others still met', (id, key, _target, _in, out) => {
    const g = goals({ ...inside, [key]: out });
    for (const [other] of table) expect(g.get(other)!.met, other).toBe(other !== id);
  });

  it('without a sweep, the 1 GiB pause goal reads the main comparison at 1 GiB', () => {
    const at = (pauseMs: number): boolean | null => {
      const c = { workload: { ...workload, heapBytes: 1024 * MiB }, heapOptions: {}, horizonMs: 200, modes: { move: { pauseMs } }, ratios: {} } as unknown as Comparison;
      return goalsOf(c, null).find((x) => x.id === 'pause1G')!.met;
    };
    expect(at(4.99)).toBe(true);
    expect(at(5)).toBe(false);
  });
});
