/**
 * Documented claims of the collector, its binding, the CLI and the benchmark's figures that no
 * other test could fail on (a second mutation audit found a one-line change to each that the
 * suite let through). Each test names the claim it holds; each runs on the real kernel (or in
 * a real child process), with generous time bounds.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd, type MoveGcError } from '../dist/gc/index.js';
import { resolveOptions } from '../dist/gc/options.js';
import { cdf, median, mmu } from '../dist/bench/stats.js';
import { closeHeapsAfterEach, openHeap } from './helpers/heap.js';
import { buildGraph, checksum, walk } from './fixtures/graph.mjs';
import { Ctl } from '../dist/gc/control.js';
import { itKernel } from './kernel.js';
import { readersPerTest, settledWithin } from './helpers/actor.js';

closeHeapsAfterEach();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'dist', 'cli', 'movegc.js');
const MiB = 1 << 20;

describe('heap options: the README\'s defaults', () => {
  /**
   * Claim (README, "Every option of Heap.create", the default column): capacity alone gives
   * mode move, stallMs 200, denseThreshold 0.95, largeObjectBytes 65536, hugePages false,
   * collectorPolicy batch, pauseOrder remap-first, faultInstall copy, moveMinRun 34, builder native,
   * unbuiltReads from-space, unbuiltWrites from-space, dontFork true, verify false, hide [], allowUnfixedMove false, no injection, no logger.
   */
  it('resolveOptions({ capacity }) fills in every default the README table names', () => {
    const saved = { m: process.env.MOVEGC_MARKING, f: process.env.MOVEGC_FAULT_PATH, r: process.env.MOVEGC_UNBUILT_READS, w: process.env.MOVEGC_UNBUILT_WRITES };
    delete process.env.MOVEGC_MARKING;
    delete process.env.MOVEGC_FAULT_PATH;
    delete process.env.MOVEGC_UNBUILT_READS;
    delete process.env.MOVEGC_UNBUILT_WRITES;
    try {
      const o = resolveOptions({ capacity: 2 * MiB });
      expect({ ...o }).toEqual({
        capacity: 2 * MiB, mode: 'move', marking: 'concurrent', faultPath: 'self', stallMs: 200, denseThreshold: 0.95,
        largeObjectBytes: 65536, hugePages: false, collectorPolicy: 'batch', pauseOrder: 'remap-first', faultInstall: 'copy',
        moveMinRun: 34, builder: 'native', unbuiltReads: 'from-space', unbuiltWrites: 'from-space', dontFork: true, verify: false, hide: [], allowUnfixedMove: false, inject: {}, logger: undefined,
      });
      expect(Object.isFrozen(o)).toBe(true);
    } finally {
      if (saved.m !== undefined) process.env.MOVEGC_MARKING = saved.m;
      if (saved.f !== undefined) process.env.MOVEGC_FAULT_PATH = saved.f;
      if (saved.r !== undefined) process.env.MOVEGC_UNBUILT_READS = saved.r;
      if (saved.w !== undefined) process.env.MOVEGC_UNBUILT_WRITES = saved.w;
    }
  });
  /**
   * Claim (gc/options.ts: "stallMs must be in [1, 600000]"; HeapOptions.stallMs): the bound
   * is exact: 600000 is accepted, the next millisecond refused with ERR_OUT_OF_RANGE.
   */
  it('stallMs: 1 and 600000 accepted, 600001 refused', () => {
    expect(resolveOptions({ capacity: 2 * MiB, stallMs: 600_000 }).stallMs).toBe(600_000);
    expect(resolveOptions({ capacity: 2 * MiB, stallMs: 1 }).stallMs).toBe(1);
    for (const v of [600_001, 0.5]) {
      let err: MoveGcError | undefined;
      try {
        resolveOptions({ capacity: 2 * MiB, stallMs: v });
      } catch (e) {
        err = e as MoveGcError;
      }
      expect(err?.code, String(v)).toBe('ERR_OUT_OF_RANGE');
    }
  });

  /**
   * Claim (README, the flip row: "Heaps of 1 GiB or more are mapped GiB-aligned"; options.ts
   * PUD_ALIGN): a heap of exactly 1 GiB starts on a GiB boundary.
   */
  it('a heap of exactly 1 GiB is mapped GiB-aligned', async () => {
    // Two heaps, so that a 2 MiB-aligned mapping cannot be GiB-aligned by luck twice.
    for (let i = 0; i < 2; i++) {
      const heap = await openHeap({ capacity: 1 << 30, mode: 'stw' });
      expect(heap.address % 2 ** 30, `heap ${i} at 0x${heap.address.toString(16)}`).toBe(0);
    }
  }, 60_000);
});

describe('large objects kept on pages', () => {
  /**
   * Lays out, from the heap's start: two small live objects a1, a2 (adjacent), 16 KiB of
   * garbage, a live byte array of `bytes` bytes, and optionally a small object that is
   * pinned. Collects once; returns where a2 and the array were and went.
   */
  async function slide(bytes: number, pinAfter: boolean): Promise<{ small: number; before: number; after: number; a2After: number; aligned: number }> {
    const heap = await openHeap({ capacity: 8 * MiB, mode: 'move', stallMs: 10_000 });
    const T = heap.defineType({ name: 'Small', refs: 0, bytes: 16 });
    const a1 = heap.root(heap.alloc(T));
    const a2 = heap.root(heap.alloc(T));
    const small = heap.addressOf(a2.get()!) - heap.addressOf(a1.get()!);
    for (let i = 0; i < 16 * 1024 / 24; i++) heap.alloc(T); // garbage
    const big = heap.root(heap.allocBytes(bytes));
    heap.writeBytes(big.get()!, bytes - 4, new Uint8Array([1, 2, 3, 4]));
    const before = heap.addressOf(big.get()!);
    const pin = pinAfter ? heap.pin(heap.alloc(T)) : null;
    const st = await heap.gc();
    expect([...heap.readBytes(big.get()!, bytes - 4, 4)]).toEqual([1, 2, 3, 4]);
    const out = { small, before, after: heap.addressOf(big.get()!), a2After: heap.addressOf(a2.get()!), aligned: st.plan.alignedObjects };
    pin?.release();
    return out;
  }

  /**
   * Claim (README: "Objects of at least `largeObjectBytes` (64 KiB by default) start on a
   * page and stay on one across collections"): an object of exactly 65536 bytes (a byte array
   * of 65528 bytes and its header) keeps a page when it slides; one word less slides back to
   * back like any object.
   */
  itKernel('an object of exactly largeObjectBytes keeps a page across a collection; one word less does not', async () => {
    const at = await slide(65528, false);
    expect(at.before % PAGE_SIZE, 'allocated on a page').toBe(0);
    expect(at.after, 'it slid down').toBeLessThan(at.before);
    expect(at.after % PAGE_SIZE, 'and landed on a page').toBe(0);
    expect(at.aligned).toBe(1);
    const less = await slide(65520, false);
    expect(less.after, 'one word less: right behind a2').toBe(less.a2After + less.small);
    expect(less.aligned).toBe(0);
  }, ['uffd', 'move'], 60_000);

  /**
   * Claim (README: "Objects below a pinned span slide back to back (the segment must fit under
   * the span, which the plan counts in live words)"): a large object in a segment below a
   * pinned span lands right behind the object before it, not on a page.
   */
  itKernel('a large object below a pinned span slides back to back, not onto a page', async () => {
    const at = await slide(128 * 1024, true);
    expect(at.before % PAGE_SIZE, 'allocated on a page').toBe(0);
    expect(at.after, 'right behind a2').toBe(at.a2After + at.small);
    expect(at.aligned).toBe(0);
  }, ['uffd', 'move'], 60_000);
});

describe('the fault server stands by for the compactor', () => {
  /**
   * Claim (gc/fault.ts: "It is also the standby: when the compactor's heartbeat goes stale
   * mid-cycle (stalled or dead), it reclaims the compactor's claims and finishes the cycle
   * itself"; README: "a stalled or dead collector thread is taken over"): with the compactor
   * dead after 4 pages and a mutator that neither touches the heap nor awaits the cycle's end
   * (only timers run), every page is still installed, by the fault server.
   */
  itKernel('a compactor dead mid-cycle: the fault server installs the rest while the mutator waits for nothing', async () => {
    const heap = await openHeap({ capacity: 16 * MiB, mode: 'move', faultPath: 'handler', stallMs: 100 });
    const { root, type } = buildGraph(heap, { nodes: 30_000, garbage: 0.6, seed: 5 });
    const sum = checksum(heap, root.get());
    for (let i = 0; i < 5000; i++) heap.alloc(type);
    heap.inject({ dieAtPage: 5 });
    await heap.collect();
    let p = heap.progress();
    expect(p.pagesTotal).toBeGreaterThan(20);
    for (const t0 = Date.now(); p.pagesMapped < p.pagesTotal && Date.now() - t0 < 30_000; p = heap.progress()) await new Promise((r) => setTimeout(r, 20));
    expect(p.pagesMapped, JSON.stringify(p)).toBe(p.pagesTotal);
    const st = (await heap.idle())!;
    expect(st.pages.builtByCompactor).toBeLessThanOrEqual(4);
    expect(st.pages.builtByMutator).toBe(0);
    expect(st.pages.builtByFaults).toBeGreaterThanOrEqual(st.pages.total - st.pages.identity - 4);
    expect(checksum(heap, root.get())).toBe(sum);
  }, ['uffd', 'move'], 90_000);
});

describe('the write barrier\'s log', () => {
  /**
   * Claim (gc/barrier.ts: "when it is full the mutator spills to a local array that the
   * marking pause drains, so the mutator never waits for the marker"; README, the mark row:
   * the insertion barrier shades a Ref held in a local since before marking and stored during
   * it): with the marker stalled, 100000 such stores (more than the ring's 65536 entries) all
   * keep their objects alive: those in the ring, the one that fills it, and those spilled.
   */
  itKernel('100000 stores of unmarked objects while the marker is stalled: ring and spill alike keep them alive', async () => {
    const N = 100_000;
    const heap = await openHeap({ capacity: 16 * MiB, mode: 'move', marking: 'concurrent', stallMs: 60_000 });
    const X = heap.defineType({ name: 'X', refs: 0, bytes: 8 });
    const arr = heap.root(heap.allocRefArray(N));
    const xs = [];
    for (let i = 0; i < N; i++) {
      const x = heap.alloc(X); // reachable from nothing but this local
      heap.setU32(x, 0, i);
      xs.push(x);
    }
    // The marker takes entries from the log once, then sleeps 3 s: the ring (65536) fills and
    // the rest spills.
    heap.inject({ markLogDelayMs: 3000 });
    heap.requestCollection();
    // Let it clear the bitmaps and trace arr, the only root, while its slots are still empty.
    const ctl = (): number[] => heap._debugState().ctl as number[];
    for (const t0 = Date.now(); ctl()[Ctl.MARK_CLEARED] !== 1; ) {
      if (Date.now() - t0 > 20_000) throw new Error('the marker did not clear its bitmaps in 20 s');
      await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 200));
    const a = arr.get()!;
    for (let i = 0; i < N; i++) heap.setRef(a, i, xs[i]); // every store is logged: no X is marked
    expect(heap.progress().barrierEntries).toBeGreaterThanOrEqual(N);
    await heap.collect();
    await heap.idle();
    const b = arr.get()!;
    let bad = 0;
    for (let i = 0; i < N; i++) {
      try {
        const x = heap.getRef(b, i);
        if (x === null || heap.getU32(x, 0) !== i) bad++;
      } catch {
        bad++;
      }
    }
    expect(bad, 'objects lost').toBe(0);
    expect(heap.verify().ok).toBe(true);
  }, ['uffd', 'move'], 90_000);
});

describe('self-service', () => {
  /**
   * Claim (gc/selfservice.ts #help: "Built (PROCESSED): install it from that builder's buffer
   * now rather than wait for its install"; README: the stats' selfHelped): a page the
   * compactor has built but not installed, met by an accessor while the compactor is
   * descheduled (well under stallMs: no takeover), is installed by the mutator itself.
   */
  itKernel('a page built by a descheduled compactor and not yet installed is installed by the accessor that meets it', async () => {
    // Reads that build (from from-space, the default, the walk reads those pages where their
    // sources are and installs none).
    const heap = await openHeap({ capacity: 16 * MiB, mode: 'move', faultPath: 'self', unbuiltReads: 'build', stallMs: 30_000 });
    const NODES = 30_000;
    const { root, type } = buildGraph(heap, { nodes: NODES, garbage: 0.6, seed: 11 });
    const sum = checksum(heap, root.get());
    for (let i = 0; i < 5000; i++) heap.alloc(type); // garbage: the cycle moves pages
    // The compactor builds its first 9 pages as one run, then sleeps 6 s before installing it (time enough for the walk on a loaded machine).
    heap.inject({ delayAtPage: 10, delayMs: 6000 });
    await heap.collect();
    const builds = (): number => (heap._debugState().ctl as number[])[Ctl.COMPACTOR_BUILDS];
    for (const t0 = Date.now(); builds() < 9; ) {
      if (Date.now() - t0 > 20_000) throw new Error(`the compactor built ${builds()} pages in 20 s`);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(walk(heap, root)).toBe(NODES); // meets those 9 pages, built and waiting in the compactor's run
    const st = (await heap.idle())!;
    expect(checksum(heap, root.get())).toBe(sum);
    expect(st.takeovers).toBe(0);
    expect(st.stalls.selfHelped, JSON.stringify(st.stalls)).toBeGreaterThan(0);
  }, ['uffd', 'move'], 90_000);
});

describe('benchmark figures', () => {
  /**
   * Claim (README "Benchmarks": the report's "MMU per cycle and over the whole run";
   * bench/stats.ts mmu): minimum mutator utilization, the least fraction of any window of
   * length w in [0, horizon] during which the mutator was not stalled; null past the horizon.
   */
  it('mmu: the worst window of each length, as a fraction of that window', () => {
    // One stall of 10 in a run of 100.
    expect(mmu([[10, 20]], 100, [5, 10, 20, 50, 100, 200])).toEqual([0, 0, 0.5, 0.8, 0.9, null]);
    // Two stalls of 10, 20 apart: a window of 40 can hold both (20 of 40 stalled).
    const two = mmu([[10, 20], [40, 50]], 100, [30, 40, 100]);
    expect(two[0]).toBeCloseTo(1 - 10 / 30, 12); // [10, 40] or [20, 50]: one stall of 10 each
    expect(two[1]).toBeCloseTo(0.5, 12); // [10, 50]
    expect(two[2]).toBeCloseTo(0.8, 12);
    // No stall: utilization 1; a stall past the horizon is clipped to it.
    expect(mmu([], 100, [10, 100])).toEqual([1, 1]);
    expect(mmu([[90, 150]], 100, [10, 20])).toEqual([0, 0.5]);
  });

  /** Claim (README: "medians of 3 reps", "per-mode medians"; bench/stats.ts median): the middle value, or the mean of the two middle values of an even count; NaN and infinities left out. */
  it('median: odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([10, 20])).toBe(15);
    expect(median([NaN, 5, Infinity, 7])).toBe(6);
    expect(median([])).toBeNaN();
  });

  /** Claim (README: the report's "fault-latency exceedance curves"; bench/stats.ts cdf): at most `points` points [value, fraction <= value], always ending at the sample's maximum with fraction 1. */
  it('cdf: thinned to the points asked for, ending at the maximum with fraction 1', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1..1000, unsorted
    const c = cdf(xs, 300);
    expect(c.length).toBeLessThanOrEqual(1000 / 3 + 1);
    expect(c[c.length - 1]).toEqual([1000, 1]);
    for (let i = 1; i < c.length; i++) expect(c[i][0]).toBeGreaterThan(c[i - 1][0]);
    for (const [v, f] of c) expect(f).toBeCloseTo(v / 1000, 12); // the fraction of 1..1000 at or below v
    expect(cdf([5, 1, 3], 300)).toEqual([[1, 1 / 3], [3, 2 / 3], [5, 1]]);
    expect(cdf([], 10)).toEqual([]);
  });
});

describe('movegc bench: ratios and goals', () => {
  /**
   * Claim (README "Benchmarks": latest.json holds "per-mode medians and raw reps, ratios";
   * "The project's design targets (move/copy <= 0.5, ...) are measured in the report's
   * appendix"): each ratio is the quotient of the two modes' medians it names, each goal's
   * value is its ratio and `met` says whether the value meets the target it states.
   */
  itKernel('latest.json: ratios are the quotients of the modes\' medians; goals are met exactly when the value meets the stated target', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-claims2-'));
    try {
      const r = spawnSync(process.execPath, [CLI, 'bench', '--heap', '4', '--reps', '1', '--modes', 'move,copy,stw', '--no-floor', '--mutator-ms', '0'], { cwd, encoding: 'utf8', timeout: 180_000 });
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(cwd, 'bench', 'results', 'latest.json'), 'utf8'));
      const { modes, ratios } = res.main;
      const q = (a: number, b: number): number => a / b;
      for (const m of ['move', 'copy', 'stw']) expect(modes[m].compactionMs, m).toBeGreaterThan(0);
      expect(ratios.moveOverCopyCompaction).toBeCloseTo(q(modes.move.compactionMs, modes.copy.compactionMs), 9);
      expect(ratios.moveOverStwCompaction).toBeCloseTo(q(modes.move.compactionMs, modes.stw.compactionMs), 9);
      expect(ratios.copyOverStwCompaction).toBeCloseTo(q(modes.copy.compactionMs, modes.stw.compactionMs), 9);
      expect(ratios.moveOverCopyPause).toBeCloseTo(q(modes.move.pauseMs, modes.copy.pauseMs), 9);
      expect(ratios.moveOverCopyBusy).toBeCloseTo(q(modes.move.compactorBusyMs, modes.copy.compactorBusyMs), 9);
      expect(ratios.movePeakOverBefore).toBe(modes.move.rssPeakOverBefore);
      expect(ratios.copyPeakOverBefore).toBe(modes.copy.rssPeakOverBefore);
      expect(ratios.stwPeakOverBefore).toBe(modes.stw.rssPeakOverBefore);
      expect(ratios.moveThroughputGBps).toBeCloseTo(modes.move.throughputMBps / 1000, 9);
      expect(ratios.copyThroughputGBps).toBeCloseTo(modes.copy.throughputMBps / 1000, 9);
      // No floor measured (--no-floor): no ratio to it.
      expect(ratios.moveFaultP50OverFloor).toBeNull();
      expect(ratios.moveOverCopyBoundIdle).toBeNull();
      expect(ratios.moveOverCopyBoundBusy).toBeNull();
      const goal = (id: string) => res.goals.find((g: { id: string }) => g.id === id);
      expect(goal('moveVsCopy').value).toBe(ratios.moveOverCopyCompaction);
      expect(goal('moveRss').value).toBe(ratios.movePeakOverBefore);
      expect(goal('throughput').value).toBe(ratios.moveThroughputGBps);
      expect(goal('faultVsFloor')).toMatchObject({ value: null, met: null });
      expect(goal('moveVsCopyBound')).toMatchObject({ value: null, met: null });
      for (const g of res.goals as Array<{ id: string; value: number | null; target: string; met: boolean | null }>) {
        if (g.value === null) continue;
        const [, op, n] = /^(<=|>=|<) ([\d.]+)$/.exec(g.target)!;
        const want = op === '<=' ? g.value <= Number(n) : op === '>=' ? g.value >= Number(n) : g.value < Number(n);
        expect(g.met, `${g.id}: ${g.value} ${g.target}`).toBe(want);
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, ['uffd', 'move'], 240_000);
});

describe('the movegc command', () => {
  /** Claim (cli/movegc.ts: "A mistake on the command line prints the reason and a usage line (exit 2)"): `movegc` with no command prints the help on stderr and exits 2. */
  it('movegc with no command: the usage on stderr, exit 2, nothing on stdout', () => {
    const r = spawnSync(process.execPath, [CLI], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^usage: movegc <command> \[options\]/m);
    expect(r.stdout).toBe('');
  });
});

describe('userfaultfd typed API', () => {
  const PS = PAGE_SIZE;
  /** A Worker that reads an address, blocking in the kernel on a missing page (helpers/actor.ts). */
  const { cleanups, startActor } = readersPerTest();

  /** Claim (Userfaultfd.zeropage, WakeOptions.dontWake): zeropage({ dontWake: true }) maps the zero page but leaves the faulting thread asleep until wake(); without it the thread is woken. */
  itKernel('zeropage(dontWake) leaves the reader asleep until wake(); zeropage() wakes it', async () => {
    const read = await startActor();
    const u = Userfaultfd.open({ features: [] });
    cleanups.push(() => u.close()); // first in cleanup: frees the worker if the test fails
    const m = Mapping.anonymous(2 * PS, { advise: ['NOHUGEPAGE'] });
    cleanups.unshift(() => m.close());
    u.register(m.address, m.length);
    const fault = async (page: number): Promise<void> => {
      const events = [];
      const deadline = Date.now() + 10_000;
      while (events.length < 1 && Date.now() < deadline) events.push(...u.readEvents(50));
      expect(events).toMatchObject([{ type: 'pagefault', address: m.address + page * PS }]);
    };
    // Without dontWake: the zero page goes in and the reader wakes.
    const first = read(m.address + PS + 3);
    await fault(1);
    expect(u.zeropage(m.address + PS, PS)).toBe(PS);
    expect(await settledWithin(first, 10_000)).toBe(0);
    // With dontWake: mapped (readable here), the reader sleeps on until wake().
    const got = read(m.address + 5);
    await fault(0);
    expect(u.zeropage(m.address, PS, { dontWake: true })).toBe(PS);
    expect(new Uint8Array(m.view())[5]).toBe(0);
    expect(await settledWithin(got, 1000)).toBe('pending'); // a whole second to show otherwise
    u.wake(m.address, PS);
    expect(await settledWithin(got, 10_000)).toBe(0);
  }, ['uffd'], 60_000);

  /** Claim (gc/uffd.ts RegisterMode.missing: "Missing-page faults (the default)"): a registration asking for write-protect faults, saying nothing of missing ones, still reports a read of a missing page. */
  itKernel('register({ wp: true }) keeps missing-page faults on: a read of a missing page faults and waits for its page', async () => {
    const read = await startActor();
    const u = Userfaultfd.open({ features: [] });
    cleanups.push(() => u.close());
    const m = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    const src = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    cleanups.unshift(() => {
      m.close();
      src.close();
    });
    new Uint8Array(src.view()).fill(0x3c);
    expect(u.register(m.address, m.length, { wp: true })).toContain('WRITEPROTECT');
    const got = read(m.address + 17);
    const events = [];
    const deadline = Date.now() + 10_000;
    while (events.length < 1 && Date.now() < deadline) events.push(...u.readEvents(50));
    expect(events).toMatchObject([{ type: 'pagefault', address: m.address, wp: false }]);
    expect(u.copy(m.address, src.address, PS)).toBe(PS);
    expect(await settledWithin(got, 10_000)).toBe(0x3c); // the reader saw the page served, not a zero-filled one
  }, ['uffd'], 60_000);
});
