/**
 * Documented claims that no other test could fail on (a mutation audit found a one-line
 * change to each that the suite let through). Each test names the claim it holds; each runs
 * on the real kernel (or in a real child process), with generous time bounds.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Heap, Mapping, PAGE_SIZE, Userfaultfd, summarize, viewOf } from '../dist/gc/index.js';
import { containedLogger } from '../dist/gc/log.js';
import { FATAL_FLOOR_MS, FATAL_STALLS, watchdogThresholds } from '../dist/gc/watchdog.js';
import { HIST_BUCKETS, bucketValue } from '../dist/gc/shared.js';
import { heapOptionsOf } from '../dist/bench/knobs.js';
import { closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { vmasIn } from './helpers/procfs.js';
import { rejected } from './helpers/thrown.js';
import { itKernel } from './kernel.js';
import { readersPerTest, settledWithin } from './helpers/actor.js';

closeHeapsAfterEach();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1 << 20;

const ENV_CHILD = fileURLToPath(new URL('./fixtures/claims-env-child.mjs', import.meta.url));

/**
 * Runs test/fixtures/claims-env-child.mjs with `env` over this process's environment
 * (undefined: unset): each heap of `heaps` created, given `gcs` gc() calls and closed. Returns
 * the "<mode>:<marking>" of each heap, and the child's stderr.
 */
function envChild(arg: { heaps: Array<Record<string, unknown>>; gcs?: number }, env: Record<string, string | undefined>): { heaps: string[]; stderr: string } {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  const r = spawnSync(process.execPath, [ENV_CHILD, JSON.stringify(arg)], { encoding: 'utf8', env: e, timeout: 60_000 });
  expect(r.status, `child exited with ${r.status} (${r.signal}): ${r.stderr}`).toBe(0);
  return { heaps: JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
}

describe('heap options', () => {
  /** Claim (HeapOptions.verify): `verify: true` runs the verifier after every cycle, and gc() rejects with ERR_VERIFY_FAILED when it fails. */
  // A dangling reference the program writes before a cycle is the cycle's own to find (marking
  // refuses it, or the builders keep it raw: ERR_HEAP_CORRUPT). One written after the flip into
  // a page already built is found by nothing but the verifier: written here while the
  // compactor is held (the write faults, the fault server builds the page, then the write lands).
  itMode('move', 'verify: true makes gc() reject with ERR_VERIFY_FAILED after a cycle that leaves a dangling reference', async () => {
    const heap = await openHeap({ capacity: 2 * MiB, mode: 'move', verify: true });
    const Node = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
    const a = heap.alloc(Node);
    heap.setRef(a, 0, heap.alloc(Node));
    const r = heap.root(a);
    for (let i = 0; i < 100; i++) heap.allocBytes(100); // garbage
    await heap.gc(); // a clean heap verifies: no rejection
    for (let i = 0; i < 100; i++) heap.allocBytes(100); // more garbage: the next cycle moves pages
    heap.inject({ delayAtPage: 1, delayMs: 200 });
    const done = heap.gc();
    while (heap.cyclePhase !== 'compacting') await new Promise((res) => setTimeout(res, 1));
    const u32 = new Uint32Array(viewOf(heap.address, heap.capacity));
    const aw = (heap.addressOf(r.get()!) - heap.address) / 8;
    u32[aw * 2 + 3] = heap.usedBytes / 8 + 3; // slot 1: just past the top, no object there
    const e = await rejected(() => done);
    expect(e.code).toBe('ERR_VERIFY_FAILED');
    expect(e.message).toMatch(/heap verification failed after cycle 2: .*is not an object start/);
  });

  /** Claim (options.ts): options are validated: allowUnfixedMove must be a boolean. */
  it("allowUnfixedMove: 'yes' is refused with ERR_INVALID_ARG_TYPE", async () => {
    const e = await rejected(async () => Heap.create({ capacity: 2 * MiB, mode: 'stw', allowUnfixedMove: 'yes' as unknown as boolean }));
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(e.message).toMatch(/allowUnfixedMove must be a boolean/);
  });

  /** Claim (options.ts): MOVEGC_MARKING=pause makes heaps mark in the pause unless the option says otherwise (child process). */
  itKernel('MOVEGC_MARKING=pause changes the default marking, not an explicit choice (child process)', () => {
    const heaps = [{ mode: 'move' }, { mode: 'move', marking: 'concurrent' }, { mode: 'move', marking: 'pause' }];
    expect(envChild({ heaps }, { MOVEGC_MARKING: 'pause' }).heaps).toEqual(['move:pause', 'move:concurrent', 'move:pause']);
    expect(envChild({ heaps }, { MOVEGC_MARKING: undefined }).heaps).toEqual(['move:concurrent', 'move:concurrent', 'move:pause']);
    // A value it does not know is refused (a typo would run the default unnoticed).
    const r = spawnSync(process.execPath, [ENV_CHILD, JSON.stringify({ heaps })], { encoding: 'utf8', env: { ...process.env, MOVEGC_MARKING: 'pasue' }, timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/MOVEGC_MARKING must be one of concurrent, pause \(or unset\), got 'pasue'/);
  }, ['uffd', 'move'], 120_000);

  /** Claim (MOVEGC_TRACE): MOVEGC_TRACE=1 prints one line per cycle on stderr (child process). */
  it('MOVEGC_TRACE=1 prints a trace line per cycle on stderr; unset, none', () => {
    const arg = { heaps: [{ mode: 'stw' }], gcs: 2 };
    const on = envChild(arg, { MOVEGC_TRACE: '1' });
    expect(on.heaps).toEqual(['stw:pause']);
    const lines = on.stderr.split('\n').filter((l) => /^gc \d+ /.test(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^gc 1 stw: /);
    expect(lines[1]).toMatch(/^gc 2 stw: /);
    expect(envChild(arg, { MOVEGC_TRACE: undefined }).stderr).not.toMatch(/^gc \d+ /m);
  }, 120_000);

  // The first move heap of a process rehearses two collections on a stw heap of its own
  // (warmup.ts rehearsePause): they are not the program's, and trace nothing.
  itKernel("MOVEGC_TRACE=1 traces the program's cycles, not the warm-up's", () => {
    const on = envChild({ heaps: [{ mode: 'move' }], gcs: 2 }, { MOVEGC_TRACE: '1' });
    expect(on.heaps).toEqual(['move:concurrent']);
    const lines = on.stderr.split('\n').filter((l) => /^gc \d+ /.test(l));
    expect(lines.map((l) => l.slice(0, l.indexOf(':')))).toEqual(['gc 1 move', 'gc 2 move']);
  }, ['uffd', 'move'], 120_000);
});

describe('huge pages', () => {
  /** Claim (pause.ts step 4): a hugePages heap is MADV_NOHUGEPAGE only during the pause, MADV_HUGEPAGE again after it. */
  itMode('move', 'a hugePages heap is MADV_HUGEPAGE again after its compaction pause (smaps VmFlags hg, not nh)', async () => {
    const heap = await openHeap({ capacity: 16 * MiB, mode: 'move', hugePages: true });
    const flags = (): string[][] => vmasIn(heap.address, heap.capacity).map((v) => v.flags);
    for (const f of flags()) expect(f).toContain('hg');
    const keep = heap.root(heap.allocRefArray(1000));
    for (let i = 0; i < 20_000; i++) {
      const x = heap.allocBytes(200);
      if (i % 3 === 0 && i / 3 < 1000) heap.setRef(keep.get()!, i / 3, x);
    }
    const st = await heap.gc();
    expect(st.pages.total).toBeGreaterThan(0); // the pause remapped and registered the heap
    const after = flags();
    expect(after.length).toBeGreaterThan(0);
    for (const f of after) {
      expect(f).toContain('hg');
      expect(f).not.toContain('nh');
    }
  }, 60_000);

  /** Claim (bench/knobs.ts heapOptionsOf): the boolean knob 'on' / 'off' stands for true / false. */
  it("heapOptionsOf: hugePages 'on' is true, 'off' is false, other knobs pass through", () => {
    expect(heapOptionsOf({ hugePages: 'on' }).hugePages).toBe(true);
    expect(heapOptionsOf({ hugePages: 'off' }).hugePages).toBe(false);
    expect(heapOptionsOf({ pauseOrder: 'register-first', largeObjectBytes: 4096 })).toEqual({ pauseOrder: 'register-first', largeObjectBytes: 4096 });
  });
});

describe('the benchmark', () => {
  /** Claim (bench/cycle.ts runRep): the bench passes its heap options (knobs) to the heap it measures. */
  itKernel('bench --marking pause --fault-path handler: the measured heap marks in the pause', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-claims-'));
    try {
      const args = ['--heap', '4', '--reps', '1', '--modes', 'move', '--no-floor', '--mutator-ms', '0', '--marking', 'pause', '--fault-path', 'handler', '--out', out];
      const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'run.js'), ...args], { cwd: out, encoding: 'utf8', timeout: 150_000 });
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
      const rep = res.main.modes.move.raw[0];
      expect(rep.mode).toBe('move');
      expect(rep.marking).toBe('pause');
      // Marking in the pause: one stop that marks and compacts, no initial or remark pause.
      expect(rep.pauses.map((p: { kind: string }) => p.kind)).toEqual(['mark-compaction']);
      // The mutator loop (bench/mutator-loop.ts) ran and read right; V8's threads' CPU was read.
      expect(rep.touches).toBeGreaterThan(0);
      expect(rep.touchErrors).toBe(0);
      expect(rep.runtimeThreadsCpuMs).toBeGreaterThanOrEqual(0);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, ['uffd', 'move'], 180_000);
});

describe('statistics', () => {
  /** Claim (stats.ts summarize): p50 / p90 / p99 are the nearest-rank quantiles of the histogram, max its largest bucket. */
  it('summarize: nearest-rank quantiles of a hand-filled histogram', () => {
    const offset = 3 * HIST_BUCKETS; // a histogram that is not the first
    const hist = new Int32Array(offset + HIST_BUCKETS);
    hist[0] = 1000; // another histogram: must not count
    // 100 samples: 10 x 1, 50 x 2, 35 x 3, 4 x 20, 1 x 40 (bucketValue: exact below 16, log-linear above).
    const b20 = [...Array(HIST_BUCKETS).keys()].find((b) => bucketValue(b) === 20)!;
    const b40 = [...Array(HIST_BUCKETS).keys()].find((b) => bucketValue(b) === 40)!;
    hist[offset + 1] = 10;
    hist[offset + 2] = 50;
    hist[offset + 3] = 35;
    hist[offset + b20] = 4;
    hist[offset + b40] = 1;
    const s = summarize(hist, offset);
    expect(s.count).toBe(100);
    expect(s.p50).toBe(2); // rank 50: cumulative 10, 60
    expect(s.p90).toBe(3); // rank 90: cumulative 95
    expect(s.p99).toBe(20); // rank 99: cumulative 99
    expect(s.max).toBe(40);
    expect(summarize(new Int32Array(HIST_BUCKETS), 0)).toMatchObject({ count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });

  /**
   * Claim (CycleStats.rss): cycle statistics carry RSS before / peak / after. In copy mode a
   * page is built and COPY'd into a fresh page while its from-space source is released only
   * later, in chunks of RELEASE_CHUNK_PAGES (8 MiB) once no page reads it (a long object's
   * included: only its header's page is kept, compact.ts consumedLimit): a 32 MiB live array,
   * slid down by the garbage before it, needs a chunk or more of fresh pages at a time (12 MiB
   * seen; before recycling passed into long objects, the whole 32). The peak shows it.
   */
  itMode('copy', 'rss: peak above before when compaction needs fresh pages; after and peak consistent', async () => {
    const heap = await openHeap({ capacity: 128 * MiB, mode: 'copy' });
    heap.allocBytes(256 << 10); // garbage: the array slides
    const big = heap.allocBytes(32 * MiB);
    const keep = heap.root(big);
    const chunk = new Uint8Array(MiB).fill(7);
    for (let o = 0; o < 32 * MiB; o += MiB) heap.writeBytes(big, o, chunk); // resident before the cycle
    const st = await heap.gc();
    expect(st.pages.total).toBeGreaterThanOrEqual(8192);
    expect(st.rss.beforeBytes).toBeGreaterThan(0);
    expect(st.rss.afterBytes).toBeGreaterThan(0);
    expect(st.rss.peakBytes).toBeGreaterThanOrEqual(st.rss.beforeBytes);
    expect(st.rss.peakBytes).toBeGreaterThanOrEqual(st.rss.afterBytes);
    // Half a chunk: RSS is sampled every 1024 pages built.
    expect(st.rss.peakBytes - st.rss.beforeBytes, JSON.stringify(st.rss)).toBeGreaterThanOrEqual(4 * MiB);
    expect(st.rss.peakBytes - st.rss.beforeBytes, 'from-space released during the walk').toBeLessThan(24 * MiB);
    expect(heap.getU8(keep.get()!, 32 * MiB - 1)).toBe(7);
  }, 60_000);

  /**
   * Claim (CycleStats.rss) in stw mode: the pause rebuilds every page into the emptied heap
   * while from-space still holds the old ones (given back at the cycle's end), so the peak is
   * about the live data above before. A figures audit: nothing sampled RSS inside the pause,
   * and the bench's stw peak / before read 1.000 in every run.
   */
  itMode('stw', 'rss: the peak is sampled inside the pause, a live array above before', async () => {
    const heap = await openHeap({ capacity: 128 * MiB, mode: 'stw' });
    heap.allocBytes(256 << 10); // garbage: the array slides
    const keep = heap.root(heap.allocBytes(32 * MiB));
    const chunk = new Uint8Array(MiB).fill(7);
    for (let o = 0; o < 32 * MiB; o += MiB) heap.writeBytes(keep.get()!, o, chunk);
    const st = await heap.gc();
    expect(st.rss.peakBytes - st.rss.beforeBytes, JSON.stringify(st.rss)).toBeGreaterThanOrEqual(24 * MiB);
    expect(st.rss.peakBytes).toBeGreaterThanOrEqual(st.rss.afterBytes);
    expect(heap.getU8(keep.get()!, 32 * MiB - 1)).toBe(7);
  }, 60_000);

  /** Claim (HeapOptions / Heap.history): heap.history keeps the statistics of up to 1000 cycles, most recent last. */
  it('history keeps the last 1000 cycles', async () => {
    const heap = await openHeap({ capacity: 2 * MiB, mode: 'stw' });
    for (let i = 0; i < 1001; i++) await heap.gc();
    expect(heap.history).toHaveLength(1000);
    expect(heap.history[0].cycle).toBe(2);
    expect(heap.history[999].cycle).toBe(1001);
  }, 120_000);
});

describe('WHOLE pages', () => {
  /** Claim (compact.ts MIN_WHOLE_RUN): WHOLE runs shorter than 16 pages are built like any page; longer ones are installed whole. */
  itMode('move', 'runs of WHOLE pages shorter than 16 are built; runs of 16 or more are installed whole', async () => {
    const run = async (size: number) => {
      const heap = await openHeap({ capacity: 32 * MiB, mode: 'move', largeObjectBytes: 4096 });
      const keep = heap.root(heap.allocRefArray(100));
      for (let i = 0; i < 100; i++) {
        heap.allocBytes(3000); // garbage: every array slides
        heap.setRef(keep.get()!, i, heap.allocBytes(size));
      }
      const st = await heap.gc();
      expect(heap.verify().ok).toBe(true);
      return st;
    };
    const short = await run(40 << 10); // 10 pages each: runs of at most 10
    expect(short.plan.wholePages).toBeGreaterThan(0);
    expect(short.pages.whole).toBe(0);
    const long = await run(128 << 10); // 32 pages each
    expect(long.plan.wholePages).toBeGreaterThan(0);
    expect(long.pages.whole).toBeGreaterThanOrEqual(100 * 16);
    expect(long.pages.whole).toBeLessThanOrEqual(long.plan.wholePages);
  }, 60_000);
});

describe('logging', () => {
  /** Claim (log.ts containedLogger): the caller's logger runs from a microtask, in order, never inside the call that logged. */
  it("the contained logger calls the caller's logger later, in the order logged", async () => {
    const seen: string[] = [];
    const rec = (level: string) => (msg: string) => void seen.push(`${level} ${msg}`);
    const log = containedLogger({ debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') });
    log.info('first');
    log.warn('second');
    log.error('third');
    log.debug('fourth');
    expect(seen).toEqual([]); // not inside the call
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['info first', 'warn second', 'error third', 'debug fourth']);
  });
});

describe('the watchdog', () => {
  /** Claim (README, watchdog.ts): the watchdog aborts after max(20 x stallMs, 5 s) of silence. */
  it('fatalMs is exactly max(20 x stallMs, 5000)', () => {
    expect(FATAL_STALLS).toBe(20);
    expect(FATAL_FLOOR_MS).toBe(5000);
    expect(watchdogThresholds(200).fatalMs).toBe(5000);
    expect(watchdogThresholds(250).fatalMs).toBe(5000);
    expect(watchdogThresholds(300).fatalMs).toBe(6000);
    expect(watchdogThresholds(1000).fatalMs).toBe(20_000);
    expect(watchdogThresholds(5000)).toEqual({ periodMs: 250, stillMs: 2500, staleMs: 5000, fatalMs: 100_000 });
  });
});

describe('close', () => {
  /**
   * Claim (threads.ts close): close() terminates a collector thread that does not exit in time
   * (2 s). The compactor dies at its second page; the fault server, about to take over, sleeps
   * 20 s first (inject.faultTakeoverDelayMs: a thread that does not look at STOP); the marker,
   * seeing both silent past stallMs, stands in and installs the rest. The test makes no heap
   * call meanwhile (no page is built on its thread), so the pages are the marker's: the fault
   * server was asleep. The cycle ends; close() must not wait the 20 s out.
   */
  itMode('move', 'close() terminates a collector thread that ignores STOP, in far less than its 20 s sleep', async () => {
    const heap = await Heap.create({ capacity: 16 * MiB, mode: 'move', stallMs: 1000, faultPath: 'self', marking: 'concurrent' });
    let closed = false;
    try {
      const keep = heap.root(heap.allocRefArray(2000));
      for (let i = 0; i < 20_000; i++) {
        const x = heap.allocBytes(100);
        if (i % 10 === 0) heap.setRef(keep.get()!, i / 10, x);
      }
      heap.inject({ dieAtPage: 2, faultTakeoverDelayMs: 20_000 });
      await heap.collect();
      // Hands off: only the collector threads build (progress() reads counters, builds nothing).
      const until = Date.now() + 30_000;
      for (let p = heap.progress(); p.pagesMapped < p.pagesTotal && Date.now() < until; p = heap.progress()) await new Promise((r) => setTimeout(r, 50));
      const st = (await heap.idle())!;
      heap.inject({});
      expect(st.pages.builtByMarker, JSON.stringify(st.pages)).toBeGreaterThan(0); // the fault server was asleep
      const t0 = Date.now();
      await heap.close();
      closed = true;
      const ms = Date.now() - t0;
      expect(ms, `close() took ${ms} ms`).toBeLessThan(10_000);
    } finally {
      if (!closed) await heap.close();
    }
  }, 90_000);
});

describe('userfaultfd COPY', () => {
  const PS = PAGE_SIZE;
  /** A Worker that reads an address, blocking in the kernel on a missing page (helpers/actor.ts). */
  const { cleanups, startActor } = readersPerTest();

  /** Claim (Userfaultfd.copy, WakeOptions.dontWake): copy({ dontWake: true }) installs the page but leaves the faulting thread asleep until wake(). */
  itKernel('copy(dontWake) leaves the reader asleep until wake()', async () => {
    const read = await startActor();
    const u = Userfaultfd.open({ features: [] });
    cleanups.push(() => u.close()); // first in cleanup: frees the worker if the test fails
    const m = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    const src = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    cleanups.unshift(() => {
      m.close();
      src.close();
    });
    new Uint8Array(src.view()).fill(0x5a);
    u.register(m.address, m.length);
    const got = read(m.address + 9);
    const events = [];
    const deadline = Date.now() + 10_000;
    while (events.length < 1 && Date.now() < deadline) events.push(...u.readEvents(50));
    expect(events).toMatchObject([{ type: 'pagefault', address: m.address }]);
    expect(u.copy(m.address, src.address, PS, { dontWake: true })).toBe(PS);
    // Installed (readable here) but the reader sleeps on: given a whole second to show otherwise.
    expect(new Uint8Array(m.view())[9]).toBe(0x5a);
    expect(await settledWithin(got, 1000)).toBe('pending');
    u.wake(m.address, PS);
    expect(await Promise.race([got, new Promise((r) => setTimeout(() => r('still blocked after 10 s'), 10_000))])).toBe(0x5a);
  }, ['uffd'], 60_000);
});
