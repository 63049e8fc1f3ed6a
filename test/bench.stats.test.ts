/**
 * The bench's figures (found by an audit of their computation): a rep with no latency samples
 * is not a 0 us latency in the median over reps, and no MMU window lies past the shortest rep.
 */
import { describe, expect, it } from 'vitest';
import { median, medianOfSampled, mmuWindows, quantiles } from '../dist/bench/stats.js';

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

  it('MMU windows stay within the shortest rep', () => {
    for (const h of [123.45678, 317.77777, 0.05, 1, 5000.99999]) {
      const w = mmuWindows(h, 48);
      expect(w).toHaveLength(48);
      expect(Math.max(...w), `horizon ${h}`).toBeLessThanOrEqual(Math.max(0.1, h));
      for (let i = 1; i < w.length; i++) expect(w[i]).toBeGreaterThanOrEqual(w[i - 1]);
    }
  });
});
