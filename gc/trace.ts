/**
 * One line per collection cycle, like Go's GODEBUG=gctrace=1, V8's --trace-gc or Java's
 * -Xlog:gc: enough to follow a program's collections from the terminal without a profiler.
 *
 *   gc 3 move: stops initial 0.12 + remark 0.57 + compaction 0.3 ms; mark 420 ms concurrent (cpu 380 ms),
 *   plan 95 ms concurrent, flip 0.291 ms (roots 0.012, pins 0, register 0.051, remap 0.201),
 *   compaction 1028 ms (busy 905 ms); heap 921M->461M (live 460M) / 1024M; pages 57344 moved, 12 copied, 0 EBUSY;
 *   faults 1234 p50 36 us p99 1995 us
 *
 * (one line; wrapped here). Times are rounded to three significant digits, sizes to MiB (M)
 * or KiB (K); the heap's capacity is shown when given. Enabled by MOVEGC_TRACE=1; the heap
 * prints the line on stderr at each cycle's end.
 */
import { asArgument, invalidArg, outOfRange, shown } from './errors.js';
import type { CycleStats } from './stats.js';

/** A duration in ms, to three significant digits (0 stays 0). */
export function roundMs(ms: number): number {
  if (typeof ms !== 'number') throw invalidArg(`roundMs(ms): a number, got ${shown(ms)}`);
  if (!Number.isFinite(ms) || ms === 0) return ms;
  const a = Math.abs(ms);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return Number(ms.toFixed(digits));
}

/**
 * Array elements a log record may hold in all (rounded) or stops a trace may list
 * (formatTrace): an array's length is the caller's to lie about, and a sparse one of 2^32 - 1
 * took a minute to walk.
 */
export const MAX_RECORD_ITEMS = 1 << 20;

/** Every non-integer number of a log record rounded (roundMs), nested objects too: for pino lines. */
export function rounded<T>(data: T): T {
  const budget = { left: MAX_RECORD_ITEMS };
  return asArgument('rounded(data): a log record (plain objects, arrays and numbers)', () => roundedIn(data, budget));
}

function roundedIn<T>(data: T, budget: { left: number }): T {
  if (typeof data === 'number') return (Number.isInteger(data) ? data : roundMs(data)) as T;
  if (Array.isArray(data)) {
    const n = data.length;
    if (!(n <= budget.left)) throw outOfRange(`rounded(data): a log record of more than ${MAX_RECORD_ITEMS} array elements`);
    budget.left -= n;
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = roundedIn(data[i], budget);
    return out as T;
  }
  if (data !== null && typeof data === 'object' && Object.getPrototypeOf(data) === Object.prototype)
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, roundedIn(v, budget)])) as T;
  return data;
}

const ms = (x: number): string => String(roundMs(x));

function size(bytes: number): string {
  const mib = bytes / 2 ** 20;
  if (mib >= 1) return `${mib >= 100 ? Math.round(mib) : Number(mib.toFixed(1))}M`;
  return `${Number((bytes / 1024).toFixed(1))}K`;
}

/** The cycle's trace line (no newline). Pure: the same stats give the same line. */
export function formatTrace(s: CycleStats, capacityBytes?: number): string {
  return asArgument("formatTrace(stats): a cycle's statistics (CycleStats, as collect() returns them)", () => formatTraceOf(s, capacityBytes));
}

function formatTraceOf(s: CycleStats, capacityBytes?: number): string {
  const p = s.pause;
  const parts: string[] = [];
  // Every stop of the mutator, in order (initial, remark, compaction; one for pause marking).
  const pauses = s.pauses ?? [];
  if (!(pauses.length <= MAX_RECORD_ITEMS)) throw outOfRange(`formatTrace(stats): more than ${MAX_RECORD_ITEMS} pauses`);
  const stops = pauses.map((x) => `${x.kind} ${ms(x.ms)}`).join(' + ');
  const mark = s.marking === 'concurrent' ? `mark ${ms(s.mark.concurrentMs)} ms concurrent (cpu ${ms(s.mark.cpuMs)} ms), plan ${ms(s.planMs)} ms${s.plan.inPause ? ' in the pause' : ' concurrent'}` : `mark ${ms(s.markMs)} ms, plan ${ms(s.planMs)} ms`;
  parts.push(
    `gc ${s.cycle} ${s.mode}: ${stops ? `stops ${stops} ms; ` : ''}${mark}, flip ${ms(p.totalMs)} ms ` +
      `(roots ${ms(p.rootsMs)}, pins ${ms(p.pinnedMs)}, register ${ms(p.registerMs)}, remap ${ms(p.remapMs)}; before it: plan ${ms(p.planMs)}, map count ${ms(p.mapCountMs)}), ` +
      (s.mode === 'stw' ? `compaction ${ms(s.compactionMs)} ms in the pause` : `compaction ${ms(s.compactionMs)} ms (busy ${ms(s.compactorBusyMs)} ms)`),
  );
  parts.push(`heap ${size(s.usedBeforeBytes)}->${size(s.usedAfterBytes)} (live ${size(s.liveBytes)})${capacityBytes ? ` / ${size(capacityBytes)}` : ''}`);
  parts.push(`pages ${s.pages.moved} moved, ${s.pages.copied} copied, ${s.ebusy} EBUSY`);
  parts.push(s.faults > 0 ? `faults ${s.faults} p50 ${s.faultUs.p50} us p99 ${s.faultUs.p99} us` : 'faults 0');
  const st = s.stalls;
  if (st && st.self.count + st.handler.count > 0)
    parts.push(`mutator stalls (${s.faultPath}): self ${st.self.count} p50 ${st.self.p50} us, kernel ${st.handler.count} p50 ${st.handler.p50} us`);
  return parts.join('; ');
}

/** Whether MOVEGC_TRACE asks for trace lines (1, true, yes, on; anything else is off). */
export function traceFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return asArgument('traceFromEnv(env): an environment (an object of strings)', () => {
    if (env === null || typeof env !== 'object') throw new TypeError(`got ${shown(env)}`);
    const v: unknown = env.MOVEGC_TRACE;
    if (v !== undefined && typeof v !== 'string') throw new TypeError(`MOVEGC_TRACE is ${shown(v)}`);
    return /^(1|true|yes|on)$/i.test((v ?? '').trim());
  });
}
