/**
 * The per-cycle trace line (gc/trace.ts): a pure formatter over CycleStats, checked on a
 * fixed record (every field it shows, rounded) and on a real cycle; MOVEGC_TRACE parsing;
 * and rounded(), which keeps log records free of values like 12.929931640625.
 */
import { describe, expect, it } from 'vitest';
import { Heap, formatTrace, median, rounded, roundMs, summarize, traceFromEnv, type CycleStats } from '../dist/gc/index.js';
import { thrown } from './helpers/thrown.js';
import { itKernel } from './kernel.js';
import { captureLogger } from './helpers/heap.js';

const lat = (p50: number, p99: number, count: number): CycleStats['faultUs'] => ({ count, p50, p90: p99, p99, max: p99, buckets: [] });

function stats(over: Partial<CycleStats> = {}): CycleStats {
  return {
    cycle: 3,
    mode: 'move',
    usedBeforeBytes: 921.4 * 2 ** 20,
    usedAfterBytes: 460.7 * 2 ** 20,
    liveBytes: 460.2 * 2 ** 20,
    liveObjects: 100,
    reclaimedBytes: 0,
    markMs: 12.929931640625,
    planMs: 1.23456,
    pause: { totalMs: 0.29131, rootsMs: 0.01234, pinnedMs: 0, registerMs: 0.05111, remapMs: 0.20111, planMs: 0.04321, mapCountMs: 0.23456 },
    compactionMs: 1028.4321,
    compactorBusyMs: 905.04,
    concurrentMs: 1040,
    pages: { total: 60000, identity: 0, moved: 57344, copied: 12, builtByCompactor: 0, builtByFaults: 0, builtByMutator: 0, recycledBuffers: 0, freshBuffers: 0, released: 0 },
    moveCalls: 0,
    copyCalls: 0,
    batchPages: lat(0, 0, 0),
    ebusy: 2,
    ebusyCopies: 2,
    eexist: 0,
    eagain: 0,
    enoent: 0,
    takeovers: 0,
    errors: 0,
    faults: 1234,
    faultUs: lat(36, 1995, 1234),
    rss: { beforeBytes: 0, peakBytes: 0, afterBytes: 0 },
    pinnedSpans: 0,
    segments: 1,
    marking: 'pause',
    pauses: [{ kind: 'mark-compaction', startMs: 0, ms: 14.4567 }],
    mark: { objects: 100, words: 400, remarkObjects: 0, concurrentMs: 0, cpuMs: 0, barrierEntries: 0, logConsumed: 0, blackObjects: 0, blackBytes: 0 },
    plan: { concurrentMs: 0, cpuMs: 0, inPause: false },
    endMs: 0,
    ...over,
  } as CycleStats;
}

describe('formatTrace', () => {
  it('prints every figure of the cycle on one line, times to three significant digits', () => {
    expect(formatTrace(stats(), 1024 * 2 ** 20)).toBe(
      'gc 3 move: stops mark-compaction 14.5 ms; mark 12.9 ms, plan 1.23 ms, flip 0.291 ms (roots 0.012, pins 0, register 0.051, remap 0.201; before it: plan 0.043, map count 0.235), compaction 1028 ms (busy 905 ms); ' +
        'heap 921M->461M (live 460M) / 1024M; pages 57344 moved, 12 copied, 2 EBUSY; faults 1234 p50 36 us p99 1995 us',
    );
  });

  it('with concurrent marking: every stop of the mutator, and the marker\'s concurrent time', () => {
    const line = formatTrace(
      stats({
        marking: 'concurrent',
        pauses: [{ kind: 'initial', startMs: 0, ms: 0.1234 }, { kind: 'remark', startMs: 1, ms: 0.5678 }, { kind: 'compaction', startMs: 2, ms: 0.3 }],
        mark: { objects: 100, words: 400, remarkObjects: 3, concurrentMs: 420.4, cpuMs: 380.2, barrierEntries: 9, logConsumed: 9, blackObjects: 0, blackBytes: 0 },
      }),
    );
    expect(line).toMatch(/^gc 3 move: stops initial 0\.123 \+ remark 0\.568 \+ compaction 0\.3 ms; mark 420 ms concurrent \(cpu 380 ms\), plan 1\.23 ms concurrent, flip 0\.291 ms/);
  });

  it('says where stw compacts, shows KiB below 1 MiB, and "faults 0" without faults', () => {
    const line = formatTrace(stats({ mode: 'stw', usedBeforeBytes: 512 * 1024, usedAfterBytes: 200 * 1024, liveBytes: 199.5 * 1024, faults: 0, faultUs: lat(0, 0, 0), ebusy: 0 }));
    expect(line).toContain('compaction 1028 ms in the pause');
    expect(line).toContain('heap 512K->200K (live 199.5K);');
    expect(line).toMatch(/faults 0$/);
    expect(line).not.toContain('\n');
  });

  it("with mutator stalls on the self-service path: the stalls part, after the faults", () => {
    const stalls = { self: lat(48, 900, 17), handler: lat(0, 0, 0) } as CycleStats['stalls'];
    const line = formatTrace(stats({ faultPath: 'self', stalls }));
    expect(line).toMatch(/; faults 1234 p50 36 us p99 1995 us; mutator stalls \(self\): self 17 p50 48 us, kernel 0 p50 0 us$/);
    // Without stalls, no such part.
    expect(formatTrace(stats({ faultPath: 'self', stalls: { ...stalls, self: lat(0, 0, 0) } }))).not.toContain('mutator stalls');
  });

  it('roundMs and rounded() round log values, integers untouched', () => {
    expect(roundMs(12.929931640625)).toBe(12.9);
    expect(roundMs(0.000123456)).toBe(0);
    expect(roundMs(0.0123456)).toBe(0.012);
    expect(roundMs(1028.6)).toBe(1029);
    expect(rounded({ phase: 'mark', ms: 12.929931640625, objects: 1234567, nested: { remapMs: 0.20111, list: [1.23456] } })).toEqual({
      phase: 'mark', ms: 12.9, objects: 1234567, nested: { remapMs: 0.201, list: [1.23] },
    });
  });
});

describe("the package's pure helpers refuse what is not their input with a typed error (an API audit: TypeErrors and a Proxy's own errors escaped)", () => {
  const trap = () => {
    throw new Error('trap');
  };
  const hostile = new Proxy({}, { get: trap, ownKeys: trap, getPrototypeOf: trap, has: trap });
  it('formatTrace, rounded, median, summarize', () => {
    for (const bad of [null, undefined, {}, 5, 'x', hostile, new Proxy([], { get: trap })]) {
      expect(thrown(() => formatTrace(bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => median(bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => summarize(bad as never, 0)).code).toBe('ERR_INVALID_ARG_TYPE');
    }
    expect(thrown(() => rounded(hostile)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => rounded({ a: [1.5, hostile] })).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => median([1, '2'] as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    for (const off of [-1, 0.5, NaN, 1e9, '0']) expect(thrown(() => summarize(new Int32Array(4096), off as never)).code).toMatch(/^ERR_(OUT_OF_RANGE|INVALID_ARG_TYPE)$/);
    // Their inputs still work, and the error keeps what went wrong as its cause.
    expect(median([3, 1, 2])).toBe(2);
    expect(Number.isNaN(median([]))).toBe(true);
    expect(summarize(new Int32Array(4096), 0).count).toBe(0);
    expect(rounded({ a: 1.23456, b: [2.34567] })).toEqual({ a: 1.23, b: [2.35] });
    expect((thrown(() => rounded(hostile)) as Error & { cause?: Error }).cause?.message).toBe('trap');
  });

  it('arrays whose length or iterator lies: a typed error at once, not minutes of walking holes (an audit)', () => {
    const huge = Object.assign([], { length: 2 ** 32 - 1 });
    const endless = Object.assign([1], {
      *[Symbol.iterator]() {
        for (;;) yield 1;
      },
    });
    expect(thrown(() => rounded(huge)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => rounded({ a: [huge] })).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => formatTrace(stats({ pauses: huge as never }))).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => median(huge)).code).toBe('ERR_OUT_OF_RANGE');
    // A Proxy of an array (Array.isArray says yes) claiming 2^32 - 1 numbers: median() copied
    // them until V8 ended the process ("invalid size error", a hostile-caller audit).
    const claims = new Proxy([], { get: (t, k) => (k === 'length' ? 2 ** 32 - 1 : 1) }) as number[];
    expect(thrown(() => median(claims)).code).toBe('ERR_OUT_OF_RANGE');
    // roundMs() of anything but a number: a typed error, not the value handed back.
    for (const bad of ['12.3456', null, {}, Symbol('s'), 1n]) expect(thrown(() => roundMs(bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(median(endless)).toBe(1); // its one element, by index: the iterator is never run
    const big = new Array(1000).fill(1.23456);
    expect(rounded({ big })).toEqual({ big: new Array(1000).fill(1.23) });
  });
});

describe('traceFromEnv', () => {
  it('reads MOVEGC_TRACE', () => {
    for (const v of ['1', 'true', 'yes', 'on', ' TRUE ']) expect(traceFromEnv({ MOVEGC_TRACE: v })).toBe(true);
    for (const v of ['0', '', 'no', 'off', 'false']) expect(traceFromEnv({ MOVEGC_TRACE: v })).toBe(false);
    expect(traceFromEnv({})).toBe(false);
  });
  it('an environment that is not one: a typed error', () => {
    for (const bad of [null, 5, 'x', { MOVEGC_TRACE: 5 }, { MOVEGC_TRACE: Symbol('x') }, { get MOVEGC_TRACE() { throw new Error('trap'); } }])
      expect(thrown(() => traceFromEnv(bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

/** 20 000 nodes, every other one kept in a rooted list: something for a cycle to move. */
function halfLive(heap: Heap): void {
  const T = heap.defineType({ name: 'T', refs: 1, bytes: 8 });
  const keep = heap.root(null);
  for (let i = 0; i < 20000; i++) {
    const o = heap.alloc(T);
    if (i % 2) {
      heap.setRef(o, 0, keep.get());
      keep.set(o);
    }
  }
}

describe('formatTrace on a real cycle', () => {
  itKernel('matches the cycle the heap recorded', async () => {
    const heap = await Heap.create({ capacity: 4 * 2 ** 20, mode: 'move', marking: 'concurrent' });
    try {
      halfLive(heap);
      await heap.collect();
      const st = (await heap.idle())!;
      const line = formatTrace(st, heap.capacity);
      expect(line).toMatch(/^gc 1 move: stops initial [\d.]+ \+ remark [\d.]+ \+ compaction [\d.]+ ms; mark [\d.]+ ms concurrent \(cpu [\d.]+ ms\), plan [\d.]+ ms concurrent, flip [\d.]+ ms \(roots [\d.]+, pins [\d.]+, register [\d.]+, remap [\d.]+; before it: plan [\d.]+, map count [\d.]+\), compaction [\d.]+ ms \(busy [\d.]+ ms\); heap [\d.]+[KM]->[\d.]+[KM] \(live [\d.]+[KM]\) \/ 4M; /);
      expect(line).toContain(`pages ${st.pages.moved} moved, ${st.pages.copied} copied, ${st.ebusy} EBUSY`);
      expect(st.pages.moved + st.pages.copied).toBeGreaterThan(0);
      // The compaction pause as the mutator saw it holds the flip and the work before it.
      const pause = st.pauses.find((x) => x.kind === 'compaction')!.ms;
      expect(st.pause.mapCountMs).toBeGreaterThan(0); // /proc/self/maps read in the pause
      expect(st.pause.planMs).toBeGreaterThan(0);
      expect(st.pause.totalMs + st.pause.planMs + st.pause.mapCountMs).toBeLessThanOrEqual(pause);
    } finally {
      await heap.close();
    }
  });
});

describe("the heap's log records", () => {
  itKernel("the 'compaction pause' record of a move cycle holds rounded figures only (rounded(), like the trace)", async () => {
    const { logger, records } = captureLogger('info');
    const heap = await Heap.create({ capacity: 4 * 2 ** 20, mode: 'move', logger });
    try {
      halfLive(heap);
      await heap.collect();
      await heap.idle();
      await new Promise((r) => setImmediate(r)); // the contained logger writes from a microtask
      const rec = records.find((r) => r.msg === 'compaction pause');
      expect(rec, JSON.stringify(records.map((r) => r.msg))).toBeDefined();
      const figures = ['totalMs', 'rootsMs', 'pinnedMs', 'registerMs', 'remapMs', 'planMs', 'mapCountMs'];
      for (const k of figures) expect(typeof rec![k], k).toBe('number');
      // Every number in it, as rounded() would give it (an unrounded flip time read 0.29131...).
      const numbers: Array<[string, number]> = [];
      const walk = (x: unknown, at: string): void => {
        if (typeof x === 'number') numbers.push([at, x]);
        else if (x !== null && typeof x === 'object') for (const [k, v] of Object.entries(x)) walk(v, `${at}.${k}`);
      };
      walk(rec, 'record');
      for (const [at, x] of numbers) expect(x, at).toBe(roundMs(x)); // (integers: themselves)
      // Not vacuous: the flip's figures are fractions of a ms, not all rounded to integers.
      expect(figures.some((k) => !Number.isInteger(rec![k]))).toBe(true);
    } finally {
      await heap.close();
    }
  });
});
