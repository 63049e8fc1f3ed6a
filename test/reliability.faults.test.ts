/**
 * Fault injection: each fault the collector can meet in the field, made for real, during a
 * cycle in which the mutator walks the whole graph (faulting unbuilt pages in while
 * compaction runs). After each: the cycle ends with heap.verify() ok and the reachable
 * graph's checksum unchanged, the mutator was never left blocked (the walk returned and every
 * wait is bounded by the test timeouts, with stallMs = 100), and the heap goes on working
 * (a clean cycle after the faulty one, with a live compactor again).
 *
 *  - real io_uring pins (IORING_REGISTER_BUFFERS) on chosen heap pages: MOVE says EBUSY
 *  - fork-shared pages (forkAtPage with dontFork: false): EBUSY, and none with MADV_DONTFORK
 *  - EAGAIN on every Nth MOVE call: retried
 *  - a stalled compactor (delayAtPage/delayMs > stallMs): taken over and replaced
 *  - a compactor killed mid-cycle (dieAtPage): taken over and replaced
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Heap, IoUringPin, PAGE_SIZE, type CycleStats, type HeapOptions, type InjectOptions } from '../dist/gc/index.js';
import { buildGraph, captureLogger, checksum, walk } from './fixtures/graph.mjs';
import { Ctl } from '../dist/gc/control.js';
import { WARNINGS_PER_CYCLE } from '../dist/gc/install.js';
import { itKernel } from './kernel.js';
import { childPids } from './helpers/procfs.js';

const NODES = 40_000;
const T_OUT = 30_000;
const heaps: Heap[] = [];
const pins: IoUringPin[] = [];
afterEach(async () => {
  while (pins.length) pins.pop()!.release();
  while (heaps.length) await heaps.pop()!.close();
});

// The handler path unless a test says otherwise: these tests are about the collector threads'
// installs and takeovers, which a self-servicing mutator would do in their place.
async function setup(opts: Partial<HeapOptions> = {}) {
  const { logger, messages } = await captureLogger('warn');
  const heap = await Heap.create({ capacity: 16 << 20, mode: 'move', stallMs: 100, faultPath: 'handler', logger, ...opts });
  heaps.push(heap);
  const { root, type } = buildGraph(heap, { nodes: NODES, garbage: 0.6, seed: 42 });
  const sum = checksum(heap, root.get());
  return { heap, root, type, sum, messages };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** One cycle with `inject`, the mutator walking and checksumming during compaction. */
async function faultyCycle(s: Setup, inject: InjectOptions, walkAfterBuilds: number | 'all' = 0): Promise<CycleStats> {
  const { heap, root, type, sum } = s;
  heap.inject(inject);
  for (let i = 0; i < 10_000; i++) heap.alloc(type); // garbage: the cycle must move pages
  const pause = await heap.collect();
  expect(heap.cycleActive || heap.mode === 'stw' || pause.pages.total === 0).toBe(true);
  // Optionally, the walk waits until the compactor has built this many pages (on a loaded
  // machine the walk could otherwise build them before the compactor gets a CPU).
  const builds = walkAfterBuilds === 'all' ? pause.pages.total : walkAfterBuilds;
  for (const t0 = Date.now(); (heap._debugState().ctl as number[])[Ctl.COMPACTOR_BUILDS] < builds; ) {
    if (Date.now() - t0 > 20_000) throw new Error(`the compactor did not build ${builds} pages`);
    await new Promise((r) => setTimeout(r, 1));
  }
  expect(walk(heap, root)).toBe(NODES); // the mutator reads every node while pages are unbuilt
  expect(checksum(heap, root.get())).toBe(sum);
  const st = (await heap.idle())!;
  expect(st.cycle).toBe(pause.cycle);
  expect(heap.cycleActive).toBe(false);
  expectConsistent(s);
  heap.inject({});
  return st;
}

function expectConsistent(s: Setup): void {
  const v = s.heap.verify();
  expect(v.errors).toEqual([]);
  expect(v.ok).toBe(true);
  expect(checksum(s.heap, s.root.get())).toBe(s.sum);
}

/**
 * Clean cycles after the faulty one: the heap still works, with a live compactor. First one
 * without the mutator touching the heap during compaction, so that only the compactor can
 * build pages (a dead one would leave them to the fault server's stand-in after stallMs),
 * then one with the mutator walking.
 */
async function cleanCycle(s: Setup): Promise<CycleStats> {
  s.heap.inject({});
  for (let i = 0; i < 10_000; i++) s.heap.alloc(s.type);
  const quiet = await s.heap.gc();
  expect(quiet.pages.total).toBeGreaterThan(0);
  // (All of them, normally; > 0 tolerates a compactor descheduled past stallMs on a loaded machine.)
  expect(quiet.pages.builtByCompactor, 'a compactor is alive again').toBeGreaterThan(0);
  expect(quiet.ebusy + quiet.errors).toBe(0);
  expectConsistent(s);
  const st = await faultyCycle(s, {});
  expect(st.pages.total).toBeGreaterThan(0);
  expect(st.ebusy + st.errors).toBe(0);
  return st;
}

const allInstalled = (st: CycleStats): void => {
  expect(st.pages.moved + st.pages.copied).toBeGreaterThanOrEqual(st.pages.total);
  expect(st.pages.builtByCompactor + st.pages.builtByFaults + st.pages.builtByMutator).toBeGreaterThanOrEqual(st.pages.total);
};

/** Worker warnings reach the logger through the event loop: give it turns, bounded. */
async function logged(messages: string[], text: string): Promise<boolean> {
  for (let i = 0; i < 100 && !messages.some((m) => m.includes(text)); i++) await new Promise((r) => setTimeout(r, 20));
  return messages.some((m) => m.includes(text));
}

describe('real pins and shared pages: MOVE says EBUSY, the page is copied', () => {
  itKernel('io_uring-pinned heap pages are copied instead of moved, contents intact', async () => {
    // Only the compactor MOVEs recycled buffers (other builders use scratch pages and COPY):
    // the walk waits for it to build every page, and a long stallMs keeps the fault server
    // from standing in for it on a loaded machine (both once left this test with no EBUSY).
    const s = await setup({ stallMs: 2000 });
    const used = Math.floor(s.heap.usedBytes / PAGE_SIZE);
    // Chosen pages in the part of the heap whose from-space pages are recycled as build
    // buffers (the compacted heap is ~1/4 of the used pages): one page, one page, a run of 4.
    const chosen: Array<[number, number]> = [[Math.floor(used * 0.06), 1], [Math.floor(used * 0.12), 1], [Math.floor(used * 0.18), 4]];
    for (const [p, n] of chosen) pins.push(IoUringPin.pin(s.heap.address + p * PAGE_SIZE, n * PAGE_SIZE));
    const st = await faultyCycle(s, {}, 'all');
    expect(st.ebusy, JSON.stringify(st.pages)).toBeGreaterThan(0);
    expect(st.ebusyCopies).toBe(st.ebusy);
    expect(st.pages.copied).toBeGreaterThanOrEqual(st.ebusy);
    expect(st.errors).toBe(0);
    allInstalled(st);
    expect(await logged(s.messages, 'page refused by MOVE')).toBe(true);
    while (pins.length) pins.pop()!.release();
    await cleanCycle(s);
  }, undefined, T_OUT);

  itKernel('pages shared with a child forked mid-cycle (dontFork: false) are copied', async () => {
    // No takeover (stallMs 5 s): every refusal is then the compactor's (the fault server
    // installs its own builds by COPY), which the warning count below relies on.
    const s = await setup({ dontFork: false, stallMs: 5000 });
    const before = childPids().length;
    // The walk waits for the compactor to pass the fork (on a loaded machine the walk's faults
    // built the pages first, the compactor never reached page 20, and nothing forked: the
    // fresh-clone suite failed here twice).
    const st = await faultyCycle(s, { forkAtPage: 20 }, 25);
    // Pages built before the fork and not yet installed are shared with the child: EBUSY.
    expect(st.ebusy).toBeGreaterThan(0);
    expect(st.ebusyCopies).toBe(st.ebusy);
    expect(st.pages.copied).toBeGreaterThan(0);
    allInstalled(st);
    expect(childPids().length, 'the forked child was reaped at the end of the cycle').toBe(before);
    // One warning per refused page, up to WARNINGS_PER_CYCLE per thread, then one saying so.
    // The pending run at the fork is ~19 pages, all refused in the compactor: past its cap.
    // (The check was `if (st.ebusy > 3 * WARNINGS_PER_CYCLE)`: never true here, so a cap that
    // logged every page passed.)
    expect(st.ebusy).toBeGreaterThan(WARNINGS_PER_CYCLE);
    expect(await logged(s.messages, 'not logged')).toBe(true); // after the compactor's last warning
    const warned = s.messages.filter((m) => m.includes('page refused by MOVE')).length;
    expect(warned).toBe(WARNINGS_PER_CYCLE);
    await cleanCycle(s);
  }, undefined, T_OUT);

  itKernel('with MADV_DONTFORK (the default) the same fork shares nothing: no EBUSY', async () => {
    // Every page by MOVE, faults and short runs too. No takeover (stallMs 5 s): a stand-in
    // installing a stalled builder's page copies a rebuild of it (install.ts), which on a
    // loaded machine stallMs 100 allows (the EAGAIN test below failed once in a run under load).
    const s = await setup({ faultInstall: 'move', moveMinRun: 1, stallMs: 5000 });
    const st = await faultyCycle(s, { forkAtPage: 20 }, 25);
    expect(st.ebusy).toBe(0);
    expect(st.pages.copied).toBe(0);
    expect(st.pages.moved).toBe(st.pages.total);
  }, undefined, T_OUT);
});

describe('EAGAIN on chosen MOVE calls', () => {
  itKernel('every 2nd and every 5th MOVE fails with EAGAIN: retried, every page moved', async () => {
    const s = await setup({ faultInstall: 'move', moveMinRun: 1, stallMs: 5000 }); // as above
    for (const every of [2, 5]) {
      const st = await faultyCycle(s, { eagainEvery: every });
      expect(st.eagain).toBeGreaterThan(0);
      expect(st.moveCalls).toBeGreaterThan(st.eagain);
      expect(st.pages.moved).toBe(st.pages.total);
      expect(st.pages.copied).toBe(0);
      expect(st.errors).toBe(0);
    }
    await cleanCycle(s);
  }, undefined, T_OUT);

  itKernel('EAGAIN on every MOVE: after bounded retries each page is copied instead', async () => {
    const s = await setup({ faultInstall: 'move' });
    const st = await faultyCycle(s, { eagainEvery: 1 });
    expect(st.pages.moved).toBe(0);
    expect(st.pages.copied).toBe(st.pages.total);
    expect(st.eagain).toBeGreaterThan(st.pages.total);
    await cleanCycle(s);
  }, undefined, T_OUT);
});

describe.each(['move', 'copy'] as const)('collector thread faults (%s)', (mode) => {
  const need: Array<'uffd' | 'move'> = mode === 'move' ? ['uffd', 'move'] : ['uffd'];

  itKernel(`[${mode}] a compactor stalled longer than stallMs is taken over and replaced`, async () => {
    const s = await setup({ mode });
    const st = await faultyCycle(s, { delayAtPage: 3, delayMs: 3000 }, 2); // the walk after the compactor's 2 builds, as below
    expect(st.pages.builtByCompactor).toBeLessThanOrEqual(2);
    expect(st.pages.builtByFaults + st.pages.builtByMutator).toBeGreaterThanOrEqual(st.pages.total - 2);
    allInstalled(st);
    expect(s.messages).toContain('replacing a stalled or dead collector thread');
    await cleanCycle(s);
  }, need, T_OUT);

  itKernel(`[${mode}] a compactor stalled with built pages in its unflushed batch: they are installed by the stand-in`, async () => {
    // The walk waits for the compactor's 39 builds (as the tests here that need the compactor
    // at its injected page do): CI's machine once let the walk and the fault server build every
    // page before the compactor reached its stall (no takeover, nothing tested).
    const s = await setup({ mode });
    const st = await faultyCycle(s, { delayAtPage: 40, delayMs: 2000 }, 39);
    allInstalled(st);
    expect(st.takeovers).toBeGreaterThan(0);
    await cleanCycle(s);
  }, need, T_OUT);

  itKernel(`[${mode}] a stall shorter than stallMs needs no takeover`, async () => {
    // Handler path: a self-servicing walk can build the compactor's next pages before it gets
    // there, and a compactor that builds fewer than 2 never reaches its injected stall.
    const s = await setup({ mode, stallMs: 2000, faultPath: 'handler' });
    const st = await faultyCycle(s, { delayAtPage: 3, delayMs: 50 }, 2);
    allInstalled(st);
    expect(st.takeovers).toBe(0);
    // The stall is the compactor's waiting time, outside its busy time, after 2 pages built.
    expect(st.compactor.waitMs).toBeGreaterThanOrEqual(49);
    expect(st.compactor.buildMs).toBeGreaterThan(0);
    expect(s.messages).not.toContain('replacing a stalled or dead collector thread');
  }, need, T_OUT);

  itKernel(`[${mode}] self path: pages the stalled compactor built but has not installed are installed by the mutator from its buffers`, async () => {
    // The compactor sleeps after 20 pages with its run of built pages not yet installed (it
    // installs a run at once); stallMs is far longer, so nobody takes them over. The walk
    // copies them in itself (and builds the rest): no kernel fault, nothing lost.
    const s = await setup({ mode, stallMs: 10_000, faultPath: 'self' });
    const st = await faultyCycle(s, { delayAtPage: 20, delayMs: 400 }, 19);
    allInstalled(st);
    expect(st.takeovers).toBe(0);
    expect(st.pages.builtByCompactor).toBeGreaterThanOrEqual(19);
    expect(st.stalls.selfHelped).toBeGreaterThan(0);
    expect(st.faults).toBe(0);
    expect(st.eexist).toBeGreaterThan(0); // the compactor's own install of those pages, after waking
  }, need, T_OUT);

  for (const faultPath of ['handler', 'self'] as const)
    itKernel(`[${mode}] a short stall while the mutator faults in every page (${faultPath}): the delay happens once, not at every page`, async () => {
      // The compactor stalls before its first page for 1 s (less than stallMs: no takeover);
      // the mutator's walk touches every page meanwhile. A delay repeated at each page the
      // compactor then skips made such a cycle last pages x delayMs (here ~6 min: the timeout).
      // (No object kept on a page: a page that is all gap before one holds nothing to walk.)
      // The walk's reads build (unbuiltReads 'build'): this is about the accessors building every page.
      const s = await setup({ mode, stallMs: 10_000, faultPath, unbuiltReads: 'build', largeObjectBytes: 0 });
      const t0 = Date.now();
      const st = await faultyCycle(s, { delayAtPage: 1, delayMs: 1000 });
      // Failed once in a quiet run of this file, not since in 9: the whole picture if it does again.
      const ctx = JSON.stringify({ ms: Date.now() - t0, pages: st.pages, faults: st.faults, takeovers: st.takeovers, stalls: st.stalls, messages: s.messages });
      allInstalled(st);
      expect(st.pages.builtByCompactor, ctx).toBe(0);
      expect(st.takeovers, ctx).toBe(0);
      if (faultPath === 'handler') {
        expect(st.pages.builtByFaults, ctx).toBe(st.pages.total);
        expect(st.stalls.handler.count, ctx).toBe(st.pages.total);
      } else {
        // Every page built by the walk's accessors themselves: no kernel fault at all.
        expect(st.pages.builtBySelf, ctx).toBe(st.pages.total);
        expect(st.stalls.self.count, ctx).toBe(st.pages.total);
        expect(st.faults, ctx).toBe(0);
      }
    }, need, T_OUT);

  for (const at of [1, 3, 150]) {
    itKernel(`[${mode}] a compactor killed at page ${at} of the cycle: the cycle completes, the compactor is replaced`, async () => {
      const s = await setup({ mode });
      const st = await faultyCycle(s, { dieAtPage: at }, at - 1);
      expect(st.pages.builtByCompactor).toBeLessThanOrEqual(at - 1);
      allInstalled(st);
      // The very next cycle already has a compactor (not only once the event loop has turned).
      await cleanCycle(s);
      expect(await logged(s.messages, 'collector thread died')).toBe(true);
    }, need, T_OUT);
  }

  itKernel(`[${mode}] close() during a stalled cycle returns and frees the heap`, async () => {
    const s = await setup({ mode });
    s.heap.inject({ delayAtPage: 3, delayMs: 3000 });
    await s.heap.collect();
    expect(walk(s.heap, s.root)).toBe(NODES);
    await s.heap.close();
    expect(s.heap.closed).toBe(true);
    expect(() => s.heap.verify()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  }, need, T_OUT);
});

describe('a collector thread terminated inside native code', () => {
  it('a native error thrown while a Worker is being terminated does not abort the process', () => {
    // The heap terminates a stalled compactor; if it is inside a failing native call right
    // then (a MOVE refused with EEXIST), the error can no longer be thrown into JavaScript.
    // Found by the long soak: the whole process died ("terminate called after throwing an
    // instance of 'Napi::Error'"). Run in a child process, 70 times.
    const fixture = fileURLToPath(new URL('./fixtures/terminate-native.mjs', import.meta.url));
    // 70 Worker starts: ~8 s here (CI time: 100 took 12 s).
    const r = spawnSync(process.execPath, [fixture, '70'], { encoding: 'utf8', timeout: 80_000 });
    expect(r.stderr).not.toContain('terminate called');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('survived 70');
  }, 90_000);
});

describe('faults combined', () => {
  itKernel('pins + fork + EAGAIN + a stalled compactor in one cycle', async () => {
    const s = await setup({ dontFork: false });
    const used = Math.floor(s.heap.usedBytes / PAGE_SIZE);
    pins.push(IoUringPin.pin(s.heap.address + Math.floor(used * 0.1) * PAGE_SIZE, 2 * PAGE_SIZE));
    const before = childPids().length;
    // The walk waits for the compactor to pass the fork, as in the fork tests above (a fresh-clone
    // suite failed here once: ebusy 0, the walk's self-service had built the pages first).
    const st = await faultyCycle(s, { eagainEvery: 3, forkAtPage: 10, delayAtPage: 30, delayMs: 1500 }, 15);
    allInstalled(st);
    expect(st.ebusy).toBeGreaterThan(0);
    expect(st.eagain).toBeGreaterThan(0);
    expect(childPids().length, 'no forked child left behind').toBe(before);
    while (pins.length) pins.pop()!.release();
    await cleanCycle(s);
  }, undefined, T_OUT);

  itKernel('ten faulty cycles in a row, a different fault each time, then clean ones', async () => {
    const s = await setup({ dontFork: false });
    const faults: InjectOptions[] = [
      { eagainEvery: 2 }, { dieAtPage: 5 }, { forkAtPage: 7 }, { delayAtPage: 2, delayMs: 400 }, { dieAtPage: 1 },
      { eagainEvery: 1 }, { delayAtPage: 60, delayMs: 400 }, { dieAtPage: 90 }, { forkAtPage: 1, eagainEvery: 4 }, {},
    ];
    for (const f of faults) allInstalled(await faultyCycle(s, f));
    await cleanCycle(s);
    await cleanCycle(s);
  }, undefined, 60_000);
});
