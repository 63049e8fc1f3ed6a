/**
 * Randomized differential test: random graph mutations (allocations of random types and
 * sizes, setRef, raw data writes, roots added, retargeted and dropped, pins taken and
 * released) interleaved with collections, sometimes mutating during the concurrent phase,
 * with the heap compared after EVERY step against a plain JavaScript model of the same graph
 * (helpers/model.ts). Many seeds, all three modes, and in move and copy both fault paths
 * (faultPath 'self': the accessors build the unbuilt pages they touch; 'handler': the kernel
 * faults and the fault server builds them). On the self path some cycles also make one of the
 * mutator's own page builds fail (selfFailAtBuild / selfFailAtInstall): the page must reach the
 * heap through the fault server with nothing lost. A failure names its seed, mode and path, and
 * `GC_SEED=<n> GC_MODE=<mode> GC_PATH=<path> npx vitest run test/heap.random.test.ts` replays it alone.
 */
import { describe, expect } from 'vitest';
import { ErrorCode, type FaultPathName, type Heap, type HeapType, type ModeName, type Ref } from '../dist/gc/index.js';
import { sizeOf, type ObjKind } from './helpers/graph.js';
import { TEST_MODES, checkStats, closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { Model, compareGraph, compareObject, type MObj } from './helpers/model.js';
import { Rng } from './helpers/prng.js';
import { hangGuard } from './helpers/hang.js';

closeHeapsAfterEach();
// A failing self-service build that strands its page would block the mutator in the kernel for
// good (the fault server alive, the watchdog silent): fail the file then, don't hang the run.
const guard = hangGuard(30);

const SEEDS = process.env.GC_SEED ? [Number(process.env.GC_SEED)] : Array.from({ length: 10 }, (_, i) => 1000 + i * 7919);
const MODES_RUN = process.env.GC_MODE ? TEST_MODES.filter((m) => m === process.env.GC_MODE) : TEST_MODES;
/** stw never compacts concurrently: its fault path is moot, one run. */
const RUNS = MODES_RUN.flatMap((m): Array<[ModeName, FaultPathName]> => (m === 'stw' ? [[m, 'self']] : [[m, 'self'], [m, 'handler']])).filter(
  ([, p]) => !process.env.GC_PATH || p === process.env.GC_PATH,
);
const OPS = 300;

interface Totals {
  cycles: number;
  faults: number;
  concurrentSteps: number;
  markingSteps: number;
  builtBySelf: number;
  selfStalls: number;
  handlerStalls: number;
  selfFailed: number;
}

interface Kind {
  type: HeapType | 'RefArray' | 'ByteArray';
}

async function runSeed(mode: ModeName, faultPath: FaultPathName, seed: number): Promise<Totals> {
  const rng = new Rng(seed);
  const heap: Heap = await openHeap({ capacity: 16 << 20, mode, faultPath });
  const types: HeapType[] = [
    heap.defineType({ name: 'R0', refs: 0, bytes: 0 }),
    heap.defineType({ name: 'R1', refs: 1, bytes: 4 }),
    heap.defineType({ name: 'R3', refs: 3, bytes: 17 }),
    heap.defineType({ name: 'R8', refs: 8, bytes: 100 }),
    heap.defineType({ name: 'Big', refs: 2, bytes: 4200 }),
  ];
  const model = new Model();
  let handles: Array<[Ref, MObj]> = []; // valid until the next collection
  let stale: Ref[] = []; // refs from before the last collection
  let step = 0;
  let op = 'start';
  let cycles = 0;
  let faults = 0;
  let concurrentSteps = 0;
  let markingSteps = 0;
  let requested = false;
  const path = { builtBySelf: 0, selfStalls: 0, handlerStalls: 0, selfFailed: 0 };
  const ctx = (): string => `seed ${seed} (${mode}, ${faultPath}) step ${step} [${op}]`;

  const check = (): void => {
    const m2r = compareGraph(heap, model, ctx());
    // Handles to unreachable objects stay valid until the next collection; check them too.
    for (const [r, m] of handles) if (!m2r.has(m)) compareObject(heap, r, m, ctx(), `handle #${m.id}`);
  };
  const refresh = (): void => {
    handles = [...compareGraph(heap, model, ctx())].map(([m, r]) => [r, m]);
  };
  const pickHandle = (pred?: (m: MObj) => boolean): [Ref, MObj] | undefined => {
    const c = pred ? handles.filter(([, m]) => pred(m)) : handles;
    return c.length ? rng.pick(c) : undefined;
  };
  const finishCycle = async (): Promise<void> => {
    if (!heap.cycleActive) return;
    await heap.idle();
  };
  const afterCycle = (): void => {
    const st = heap.history[heap.history.length - 1];
    checkStats(st, mode, { faulted: true, allocatedDuring: true, injected: true });
    faults += st.faults;
    // The fault path's own statistics (selfservice.ts): one stall sample per page it resolved.
    expect(st.faultPath, ctx()).toBe(faultPath);
    expect(st.stalls.self.count, ctx()).toBe(st.pages.builtBySelf);
    expect(st.pages.builtBySelf, ctx()).toBeLessThanOrEqual(st.pages.builtByMutator + st.stalls.selfHelped + st.takeovers);
    // (Kernel faults also come from heap.verify(), which reads the heap directly: afterCycle
    // runs it while the next cycle compacts when collect() finished the last one.)
    if (faultPath === 'handler' || mode === 'stw') {
      expect(st.pages.builtBySelf, ctx()).toBe(0);
      expect(st.stalls.selfLeft + st.stalls.selfFailed, ctx()).toBe(0);
    }
    path.builtBySelf += st.pages.builtBySelf;
    path.selfStalls += st.stalls.self.count;
    path.handlerStalls += st.stalls.handler.count;
    path.selfFailed += st.stalls.selfFailed;
    const v = heap.verify();
    if (!v.ok && process.env.GC_DEBUG) console.log(JSON.stringify({ st, pins: model.pins.map((p) => (p.address - heap.address) / 8), used: heap.usedBytes / 8 }));
    if (!v.ok) throw new Error(`${ctx()}: verify failed: ${v.errors.join('; ')}`);
  };

  const alloc = (): void => {
    const k = rng.weighted<ObjKind | number>([[10, 'fixed'], [3, 'refs'], [4, 'bytes']]);
    let r: Ref;
    let m: MObj;
    if (k === 'refs') {
      const n = rng.chance(0.05) ? rng.int(1000, 2100) : rng.int(0, 40);
      r = heap.allocRefArray(n);
      m = model.make('RefArray', 'refs', n, 0);
    } else if (k === 'bytes') {
      const n = rng.chance(0.08) ? rng.int(4000, 9000) : rng.int(0, 300);
      r = heap.allocBytes(n);
      m = model.make('ByteArray', 'bytes', 0, n);
    } else {
      const t = rng.weighted([[3, types[0]], [5, types[1]], [5, types[2]], [3, types[3]], [1, types[4]]] as const);
      r = heap.alloc(t);
      m = model.make(t.name, 'fixed', t.refs, t.bytes);
    }
    handles.push([r, m]);
    // Usually linked from somewhere reachable at once; sometimes left for a later step.
    const h = rng.chance(0.75) ? pickHandle((x) => x.refs.length > 0 && x !== m) : undefined;
    if (h) {
      const s = rng.int(0, h[1].refs.length - 1);
      heap.setRef(h[0], s, r);
      h[1].refs[s] = m;
    }
  };
  const setRef = (): void => {
    const h = pickHandle((x) => x.refs.length > 0);
    if (!h) return alloc();
    const s = rng.int(0, h[1].refs.length - 1);
    const t = rng.chance(0.12) ? undefined : pickHandle();
    heap.setRef(h[0], s, t ? t[0] : null);
    h[1].refs[s] = t ? t[1] : null;
  };
  const setData = (): void => {
    const h = pickHandle((x) => x.bytes.length > 0);
    if (!h) return alloc();
    const [r, m] = h;
    const n = m.bytes.length;
    const how = rng.int(0, 2);
    if (how === 0) {
      const off = rng.int(0, n - 1);
      const v = rng.int(0, 255);
      heap.setU8(r, off, v);
      m.bytes[off] = v;
    } else if (how === 1 && n >= 4) {
      const off = rng.int(0, (n >>> 2) - 1) * 4;
      const v = rng.u32();
      heap.setU32(r, off, v);
      new DataView(m.bytes.buffer).setUint32(off, v, true);
    } else {
      const off = rng.int(0, n - 1);
      const data = rng.bytes(rng.int(1, Math.min(n - off, 600)));
      heap.writeBytes(r, off, data);
      m.bytes.set(data, off);
    }
  };
  const addRoot = (): void => {
    const h = rng.chance(0.9) ? pickHandle() : undefined;
    const root = heap.root(h ? h[0] : null);
    model.roots.set(root, h ? h[1] : null);
  };
  const setRoot = (): void => {
    const roots = [...model.roots.keys()];
    if (!roots.length) return addRoot();
    const root = rng.pick(roots);
    const h = rng.chance(0.85) ? pickHandle() : undefined;
    root.set(h ? h[0] : null);
    model.roots.set(root, h ? h[1] : null);
  };
  const dropRoot = (): void => {
    const roots = [...model.roots.keys()];
    if (roots.length <= 1) return addRoot();
    const root = rng.pick(roots);
    root.release();
    model.roots.delete(root);
  };
  const pin = (): void => {
    if (model.pins.length >= 3) return unpin();
    const h = pickHandle();
    if (!h) return;
    const p = heap.pin(h[0]);
    model.pins.push({ pin: p, obj: h[1], address: p.address });
  };
  const unpin = (): void => {
    if (!model.pins.length) return;
    const i = rng.int(0, model.pins.length - 1);
    model.pins[i].pin.release();
    model.pins.splice(i, 1);
  };
  const collect = async (): Promise<void> => {
    cycles++;
    // Now and then a cycle with injected trouble: EAGAIN from MOVE, or a compactor that
    // pauses early (short of stallMs) so the mutator's next steps overlap compaction.
    const inj = rng.weighted([[6, {}], [2, { delayAtPage: rng.int(1, 4), delayMs: rng.int(5, 40) }], [mode === 'move' ? 1 : 0, { eagainEvery: rng.int(2, 5) }]] as const);
    // Self path: every third cycle one of the mutator's own builds fails, at its claim or
    // before its install (then it gives up self-service for the cycle), and the compactor
    // waits 20 ms before its first page (unless drawn otherwise) so that the steps after the
    // pause meet unbuilt pages. Derived from the cycle count, not drawn: the seeds' graphs
    // stay what they are on the handler path.
    const fail = cycles % 2 ? { selfFailAtBuild: 1 + (cycles % 4) } : { selfFailAtInstall: 1 + (cycles % 3) };
    const selfFail = faultPath === 'self' && cycles % 3 === 2 ? { delayAtPage: 1, delayMs: 20, ...fail } : {};
    heap.inject({ ...selfFail, ...inj });
    if (rng.chance(0.5)) {
      // The non-blocking form: the cycle is requested and the steps that follow mutate the
      // graph while the marker marks and plans; its pauses run in safepoint() between steps.
      if (heap.cycleActive) {
        await finishCycle(); // may run the pauses of a requested cycle: handles go stale
        afterCycle();
        stale = handles.map(([r]) => r);
        refresh();
      }
      heap.requestCollection();
      requested = true;
      return;
    }
    await heap.collect();
    // Every ref from before the pause is stale now (roots and pins are not).
    stale = handles.map(([r]) => r);
    if (stale.length && rng.chance(0.5)) {
      const r = rng.pick(stale);
      let code: string | undefined;
      try {
        heap.typeOf(r);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      if (code !== ErrorCode.STALE_REFERENCE) throw new Error(`${ctx()}: stale ref gave ${code ?? 'no error'}`);
    }
    refresh(); // walks the heap: during the concurrent phase this meets unbuilt pages
    // The previous cycle (collect() finished it). After the walk: its verify() reads the whole
    // heap directly, kernel faults and all, and would leave no unbuilt page for the accessors.
    if (heap.history.length) afterCycle();
    if (rng.chance(0.5)) {
      await finishCycle();
      afterCycle();
    }
  };

  const next = (): (() => void | Promise<void>) =>
    rng.weighted<() => void | Promise<void>>([
      [22, alloc],
      [20, setRef],
      [14, setData],
      [5, addRoot],
      [5, setRoot],
      [4, dropRoot],
      [2, pin],
      [2, unpin],
    ]);

  try {
    addRoot();
    alloc();
    setRoot();
    check();
    let nextCollect = rng.int(30, 70);
    for (step = 1; step <= OPS; step++) {
      guard.beat(ctx());
      if (step === nextCollect) {
        op = 'collect';
        await collect();
        nextCollect = step + rng.int(30, 70);
      } else {
        const f = next();
        op = f.name;
        await f();
      }
      if (heap.cycleActive) concurrentSteps++;
      if (requested && heap.cyclePhase !== 'compacting') {
        if (heap.cyclePhase !== 'idle') markingSteps++;
        op = 'safepoint';
        if (heap.safepoint()) {
          // A pause ran: every handle is stale (roots and pins are not).
          stale = handles.map(([r]) => r);
          refresh();
          if (!heap.cycleActive || heap.cyclePhase === 'compacting') requested = false;
          if (!heap.cycleActive) afterCycle(); // stw: the whole collection ran here
        }
      }
      check();
    }
    op = 'final collect';
    heap.inject({});
    await heap.gc();
    afterCycle();
    refresh(); // the handles went stale with the collection
    const st = heap.history[heap.history.length - 1];
    // The model's reachable size is exactly what mark found live.
    const reach = compareGraph(heap, model, ctx());
    let bytes = 0;
    for (const m of reach.keys()) bytes += sizeOf(m.kind, m.refs.length, m.bytes.length);
    expect(st.liveBytes, ctx()).toBe(bytes);
    expect(st.liveObjects, ctx()).toBe(reach.size);
    for (const p of model.pins) p.pin.release();
    model.pins.length = 0;
    return { cycles: cycles + 1, faults, concurrentSteps, markingSteps, ...path };
  } catch (e) {
    const err = e as Error;
    err.message = `[replay: GC_SEED=${seed} GC_MODE=${mode} GC_PATH=${faultPath}] ${err.message.includes(`seed ${seed}`) ? '' : ctx() + ': '}${err.message}`;
    throw err;
  } finally {
    guard.pause();
    await heap.close();
  }
}

describe.each(RUNS)('random differential (%s, %s)', (mode, faultPath) => {
  const totals: Totals & { seeds: number } = { cycles: 0, faults: 0, concurrentSteps: 0, markingSteps: 0, builtBySelf: 0, selfStalls: 0, handlerStalls: 0, selfFailed: 0, seeds: 0 };
  for (const seed of SEEDS) {
    itMode(mode, `seed ${seed} (${faultPath})`, async () => {
      const r = await runSeed(mode, faultPath, seed);
      for (const k of Object.keys(r) as Array<keyof Totals>) totals[k] += r[k];
      totals.seeds++;
      expect(r.cycles).toBeGreaterThanOrEqual(5);
      if (totals.seeds === SEEDS.length && mode !== 'stw' && SEEDS.length > 1) {
        // Across all seeds some steps ran during the concurrent phase and touched unbuilt pages.
        expect(totals.concurrentSteps).toBeGreaterThan(0);
        if (process.env.MOVEGC_MARKING !== 'pause') expect(totals.markingSteps, 'steps that mutated while the marker marked or planned').toBeGreaterThan(0);
        if (faultPath === 'self') {
          expect(totals.builtBySelf, 'pages the accessors built themselves').toBeGreaterThan(0);
          expect(totals.selfFailed, 'injected self-service failures').toBeGreaterThan(0);
        } else {
          expect(totals.faults).toBeGreaterThan(0);
          expect(totals.handlerStalls, 'accessor stalls on the kernel path').toBeGreaterThan(0);
        }
        console.info(
          `[random ${mode} ${faultPath}] ${totals.seeds} seeds, ${totals.cycles} cycles, ${totals.concurrentSteps} steps during a cycle (${totals.markingSteps} while marking or planning), ` +
            `${totals.faults} faults, ${totals.builtBySelf} pages built by the accessors, ${totals.handlerStalls} stalls on the kernel path, ${totals.selfFailed} self-service failures`,
        );
      }
    }, 60_000);
  }
});
