/**
 * The bench's figures (found by an audit of their computation): a rep with no latency samples
 * is not a 0 us latency in the median over reps, and no MMU window lies past the shortest rep.
 */
import { describe, expect, it } from 'vitest';
import { cdfOfBuckets, median, medianOfSampled, mmuWindows, quantiles } from '../dist/bench/stats.js';
import { bucketOf, bucketValue } from '../dist/gc/shared.js';
import { floorBound } from '../dist/bench/results.js';

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
