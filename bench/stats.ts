/** Small statistics for the benchmark: medians, quantiles, CDFs and minimum mutator utilization. */
import { median as medianOf } from '../gc/stats.js';
import { bucketOf, bucketValue } from '../gc/shared.js';

/** The median of the finite values (a figure a rep could not measure is NaN): gc/stats.ts median. */
export function median(xs: readonly number[]): number {
  return medianOf(xs.filter((x) => Number.isFinite(x)));
}

export interface Quantiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank quantiles of a sample (zeros when empty). */
export function quantiles(xs: readonly number[]): Quantiles {
  if (xs.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const s = Float64Array.from(xs).sort();
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  let sum = 0;
  for (const x of s) sum += x;
  return { count: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1], mean: sum / s.length };
}

/** CDF points [value, fraction <= value] of a sample, at most `points` of them. */
export function cdf(xs: readonly number[], points = 300): Array<[number, number]> {
  if (xs.length === 0) return [];
  const s = Float64Array.from(xs).sort();
  const out: Array<[number, number]> = [];
  const step = Math.max(1, Math.floor(s.length / points));
  for (let i = step - 1; i < s.length; i += step) out.push([s[i], (i + 1) / s.length]);
  if (out[out.length - 1][1] < 1) out.push([s[s.length - 1], 1]);
  return out;
}

/**
 * CDF points of a bucketed histogram ([lower bound, count] pairs, as CycleStats carries):
 * [upper bound, fraction of samples below it] per bucket, exact at each bound. (At the lower
 * bound, the fraction counted the bucket's own samples, which lie above it: a figures audit
 * found the exceedance plot one bucket too fast.)
 */
export function cdfOfBuckets(buckets: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  let total = 0;
  for (const [, n] of buckets) total += n;
  let seen = 0;
  return [...buckets].sort((a, b) => a[0] - b[0]).map(([v, n]) => [bucketValue(bucketOf(v) + 1), (seen += n) / total] as [number, number]);
}

/** Merges bucketed histograms. */
export function mergeBuckets(hs: ReadonlyArray<ReadonlyArray<readonly [number, number]>>): Array<[number, number]> {
  const m = new Map<number, number>();
  for (const h of hs) for (const [v, n] of h) m.set(v, (m.get(v) ?? 0) + n);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

/** Quantiles of a bucketed histogram (bucket lower bounds, as the collector reports them). */
export function bucketQuantiles(buckets: ReadonlyArray<readonly [number, number]>): Quantiles {
  let total = 0;
  let sum = 0;
  for (const [v, n] of buckets) {
    total += n;
    sum += v * n;
  }
  if (total === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const q = (p: number): number => {
    const rank = Math.ceil(p * total);
    let seen = 0;
    for (const [v, n] of sorted) if ((seen += n) >= rank) return v;
    return sorted[sorted.length - 1][0];
  };
  return { count: total, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted[sorted.length - 1][0], mean: sum / total };
}

/**
 * Minimum mutator utilization: for each window size w, the least fraction of any window of
 * length w inside [0, horizon] during which the mutator was not stalled. `stalls` are
 * [start, end] intervals (same unit as w and horizon), sorted and non-overlapping (the
 * mutator is one thread). The worst window starts at a stall's start or ends at a stall's end.
 * Windows longer than the horizon give null.
 */
export function mmu(stalls: ReadonlyArray<readonly [number, number]>, horizon: number, windows: readonly number[]): Array<number | null> {
  const n = stalls.length;
  const starts = new Float64Array(n);
  const ends = new Float64Array(n);
  const cum = new Float64Array(n + 1); // stall time before interval i
  for (let i = 0; i < n; i++) {
    starts[i] = Math.max(0, stalls[i][0]);
    ends[i] = Math.min(horizon, Math.max(starts[i], stalls[i][1]));
    cum[i + 1] = cum[i] + (ends[i] - starts[i]);
  }
  // Stall time in [0, x].
  const C = (x: number): number => {
    let lo = 0;
    let hi = n; // first interval with start > x
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return 0;
    const i = lo - 1;
    return cum[i] + Math.min(x, ends[i]) - starts[i];
  };
  return windows.map((w) => {
    if (w > horizon) return null;
    let worst = 0;
    const consider = (t: number): void => {
      const a = Math.min(Math.max(0, t), horizon - w);
      const s = C(a + w) - C(a);
      if (s > worst) worst = s;
    };
    for (let i = 0; i < n; i++) {
      consider(starts[i]);
      consider(ends[i] - w);
    }
    return Math.max(0, 1 - worst / w);
  });
}

/** `count` log-spaced values from lo to hi. */
export function logSpace(lo: number, hi: number, count: number): number[] {
  const out: number[] = [];
  const a = Math.log(lo);
  const b = Math.log(hi);
  for (let i = 0; i < count; i++) out.push(Math.exp(a + ((b - a) * i) / (count - 1)));
  return out;
}

/**
 * The median of quantile `k` over the reps that have samples: a rep with none is no latency of
 * 0 us (it was counted as one, so a p50 median of reps with 0, 0 and 500 faults read 0). Null
 * if no rep has any.
 */
export function medianOfSampled(qs: readonly Quantiles[], k: 'p50' | 'p90' | 'p99' | 'max' | 'mean'): number | null {
  const xs = qs.filter((q) => q.count > 0).map((q) => q[k]);
  return xs.length ? median(xs) : null; // no samples: no figure (0 µs made ratios of 0 and goals met)
}

/**
 * `n` log-spaced MMU windows from 0.05 ms to `maxMs`, rounded to 0.1 us and never past `maxMs`
 * (a last window rounded up past the shortest rep had no value in that rep).
 */
export function mmuWindows(maxMs: number, n: number): number[] {
  const top = Math.max(0.1, maxMs);
  const cap = Math.floor(top * 1e4) / 1e4;
  return logSpace(0.05, top, n).map((x) => Math.min(Math.round(x * 1e4) / 1e4, cap));
}
