/** Per-cycle statistics for researchers: every figure ART records, and the ones it lacks. */
import { HIST_BUCKETS, bucketValue } from './shared.js';
import type { ModeName } from './modes.js';

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Non-empty buckets: [lower bound, count]. */
  buckets: Array<[number, number]>;
}

export interface CycleStats {
  cycle: number;
  mode: ModeName;
  /** Heap bytes in use (allocation top) before and after the cycle. */
  usedBeforeBytes: number;
  usedAfterBytes: number;
  liveBytes: number;
  liveObjects: number;
  reclaimedBytes: number;
  markMs: number;
  planMs: number;
  /** The compaction pause (mark and plan excluded), and its parts. */
  pause: { totalMs: number; rootsMs: number; pinnedMs: number; registerMs: number; remapMs: number };
  /** Compaction-thread completion time: pause end to the compactor's last install. */
  compactionMs: number;
  compactorBusyMs: number;
  /**
   * The compactor thread's busy time split (move and copy; zeros in stw and when the
   * compactor did not run the cycle): building pages, installing runs (MOVE/COPY ioctls and
   * page states), releasing consumed from-space (madvise), and the rest (claims, buffers,
   * heartbeats, RSS samples). waitMs (injected stalls) is outside busy time. cpuMs and
   * queuedMs: the thread's time on a CPU and runnable but waiting for one over its cycle
   * (/proc/thread-self/schedstat, updated at scheduler ticks: coarse for a short cycle; 0
   * where the kernel lacks it): on a shared machine the wall-clock split includes time the
   * thread was not running.
   */
  compactor: CompactorSplit;
  /** Pause end to the cycle's end (every page installed, heap unregistered). */
  concurrentMs: number;
  pages: {
    total: number;
    identity: number;
    moved: number;
    copied: number;
    builtByCompactor: number;
    builtByFaults: number;
    builtByMutator: number;
    recycledBuffers: number;
    freshBuffers: number;
    released: number;
  };
  moveCalls: number;
  copyCalls: number;
  batchPages: LatencySummary;
  ebusy: number;
  ebusyCopies: number;
  eexist: number;
  eagain: number;
  enoent: number;
  takeovers: number;
  errors: number;
  faults: number;
  /** Fault service latency on the handler (read to install), microseconds. */
  faultUs: LatencySummary;
  rss: { beforeBytes: number; peakBytes: number; afterBytes: number };
  pinnedSpans: number;
  segments: number;
}

export interface CompactorSplit {
  buildMs: number;
  installMs: number;
  releaseMs: number;
  otherMs: number;
  waitMs: number;
  cpuMs: number;
  queuedMs: number;
}

export function summarize(hist: Int32Array, offset: number): LatencySummary {
  let count = 0;
  const buckets: Array<[number, number]> = [];
  for (let b = 0; b < HIST_BUCKETS; b++) {
    const n = hist[offset + b];
    if (n > 0) {
      count += n;
      buckets.push([bucketValue(b), n]);
    }
  }
  const pct = (p: number): number => {
    if (count === 0) return 0;
    let seen = 0;
    const rank = Math.ceil(p * count);
    for (const [v, n] of buckets) if ((seen += n) >= rank) return v;
    return buckets[buckets.length - 1][0];
  };
  return { count, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: buckets.length ? buckets[buckets.length - 1][0] : 0, buckets };
}

/** Median of a list (benchmarks quote medians: these machines are noisy). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
