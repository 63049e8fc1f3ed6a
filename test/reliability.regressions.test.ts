/**
 * Heap corruptions found by the reliability tests and fuzz, each kept as the smallest scenario
 * that showed it, in every mode:
 *  - a second collection after a cycle lowered the top: stale mark bits above the top read as
 *    live objects and the page builder looped forever (gc/mark.ts);
 *  - a pinned span right after a dense (in-place) object straddling into it: that object's
 *    reference slots inside the span were never forwarded (gc/pause.ts);
 *  - a pinned span above a first segment with no live word: the filler at word 1 was never
 *    written, so the heap no longer parsed (gc/pause.ts);
 *  - a page the program dropped (MADV_DONTNEED) mid-cycle hung the mutator (gc/fault.ts).
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Heap, type ModeName, type Root } from '../dist/gc/index.js';
import { buildGraph, captureLogger, checksum } from './fixtures/graph.mjs';
import { itKernel } from './kernel.js';
import { fixtureResult } from './helpers/child.js';

const heaps: Heap[] = [];
afterEach(async () => {
  while (heaps.length) await heaps.pop()!.close();
});
async function open(mode: ModeName): Promise<Heap> {
  const h = await Heap.create({ capacity: 8 << 20, mode, stallMs: 100 });
  heaps.push(h);
  return h;
}
function expectOk(h: Heap): void {
  const v = h.verify();
  expect(v.errors).toEqual([]);
  expect(v.ok).toBe(true);
}

/**
 * The race tests' heap content: a list of `n` nodes (node i holds i; the root holds the last),
 * each after 200 bytes of garbage, so that the first collection moves every page. `mid`: the
 * node held by a second root.
 */
const LIST_NODES = 6000;
function buildList(h: Heap, mid = -1): { root: Root; mid: Root } {
  const N = h.defineType({ name: 'N', refs: 1, bytes: 8 });
  const root = h.root(null);
  const midRoot = h.root(null);
  for (let i = 0; i < LIST_NODES; i++) {
    h.allocBytes(200);
    const n = h.alloc(N);
    h.setU32(n, 0, i);
    h.setRef(n, 0, root.get());
    root.set(n);
    if (i === mid) midRoot.set(n);
  }
  return { root, mid: midRoot };
}
/** Nodes below `v` (the lowest addresses) become garbage: the next cycle moves every page. */
function cutBelow(h: Heap, root: Root, v: number): void {
  let r = root.get();
  while (h.getU32(r!, 0) !== v) r = h.getRef(r!, 0);
  h.setRef(r!, 0, null);
}
/** The list still holds nodes LIST_NODES-1 down to `lowest`, in order. */
function expectList(h: Heap, root: Root, lowest = 0): void {
  let i = LIST_NODES;
  for (let x = root.get(); x !== null; x = h.getRef(x, 0)) expect(h.getU32(x, 0)).toBe(--i);
  expect(i).toBe(lowest);
}

describe.each(['move', 'copy', 'stw'] as const)('regressions (%s)', (mode) => {
  const test = (name: string, fn: () => Promise<void>) =>
    mode === 'stw' ? it(`[${mode}] ${name}`, fn, 20_000) : itKernel(`[${mode}] ${name}`, fn, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 20_000);

  test('collections after the top fell: no phantom objects from stale mark bits', async () => {
    const h = await open(mode);
    const { root, type } = buildGraph(h, { nodes: 1000, garbage: 0.6, seed: 11 });
    const sum = checksum(h, root.get());
    for (let c = 0; c < 4; c++) {
      const top = h.usedBytes;
      await h.gc();
      expect(h.usedBytes).toBeLessThan(top);
      expectOk(h);
      expect(checksum(h, root.get())).toBe(sum);
      for (let i = 0; i < 10 + c * 500; i++) h.alloc(type); // a little garbage above the new top
    }
  });

  test('an in-place object straddling into a pinned span keeps its references right', async () => {
    const h = await open(mode);
    const T = h.defineType({ name: 'Node', refs: 2, bytes: 16 });
    const n = 5000;
    const arr = h.root(h.allocRefArray(n)); // words 1..2501: pages 0-4, fully live (dense prefix)
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) h.allocBytes(100);
      const x = h.alloc(T);
      h.setU32(x, 0, i + 1);
      h.setRef(arr.get()!, i, x);
    }
    const pin = h.pin(h.getRef(arr.get()!, 0)!); // on page 4, where the array's tail lies
    const addr = pin.address;
    await h.gc();
    expectOk(h);
    expect(pin.address).toBe(addr);
    for (let i = 0; i < n; i++) expect(h.getU32(h.getRef(arr.get()!, i)!, 0)).toBe(i + 1);
    pin.release();
    await h.gc();
    expectOk(h);
    for (let i = 0; i < n; i += 97) expect(h.getU32(h.getRef(arr.get()!, i)!, 0)).toBe(i + 1);
  });

  test('a pinned span above a first segment with no live word: the heap still parses', async () => {
    const h = await open(mode);
    const T = h.defineType({ name: 'Node', refs: 2, bytes: 16 });
    for (let i = 0; i < 200; i++) h.allocBytes(50); // garbage only, pages 0-2
    const pinned = h.allocBytes(10);
    h.writeBytes(pinned, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    for (let i = 0; i < 3000; i++) h.allocBytes(50);
    const c = h.alloc(T);
    h.setU32(c, 0, 99);
    const rc = h.root(c);
    const pin = h.pin(pinned);
    await h.gc();
    expectOk(h);
    expect(Array.from(h.readBytes(pin.ref, 0, 10))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(h.getU32(rc.get()!, 0)).toBe(99);
    pin.release();
    await h.gc();
    expectOk(h);
    expect(h.getU32(rc.get()!, 0)).toBe(99);
  });

  test('a 1.5 GiB heap (GiB-aligned mappings, remapped through its end in the pause): live data and a pin above the first GiB', async () => {
    // The last segment is remapped up to the heap's end so whole GiBs move as one page-table
    // entry each (the rest by PMDs); a pinned object above the GiB boundary splits the segments.
    const h = await Heap.create({ capacity: 1536 << 20, mode, stallMs: 2000 });
    heaps.push(h);
    expect(h.address % 2 ** 30).toBe(0);
    const { root, type } = buildGraph(h, { nodes: 3000, garbage: 0.6, seed: 5 });
    const sum = checksum(h, root.get());
    h.allocBytes(1030 << 20); // garbage (never touched): what follows lies above the first GiB
    const T = h.defineType({ name: 'Tail', refs: 2, bytes: 16 });
    const tail = h.root(h.allocRefArray(3000));
    for (let i = 0; i < 3000; i++) {
      const x = h.alloc(T);
      h.setU32(x, 0, i);
      h.setRef(tail.get()!, i, x);
      h.allocBytes(200); // garbage between: every page slides
    }
    const pinned = h.allocBytes(64);
    h.writeBytes(pinned, 0, new Uint8Array([9, 8, 7, 6]));
    const pin = h.pin(pinned);
    const addr = pin.address;
    expect(addr - h.address).toBeGreaterThan(2 ** 30);
    for (let i = 0; i < 2000; i++) h.alloc(type);
    for (let c = 0; c < 2; c++) {
      await h.gc();
      expectOk(h);
      expect(checksum(h, root.get())).toBe(sum);
      for (let i = 0; i < 3000; i += 7) expect(h.getU32(h.getRef(tail.get()!, i)!, 0)).toBe(i);
      expect(pin.address).toBe(addr);
      expect(Array.from(h.readBytes(pin.ref, 0, 4))).toEqual([9, 8, 7, 6]);
      const x = h.alloc(T); // allocation above the new top: in the remapped-away tail
      h.setU32(x, 0, c);
      expect(h.getU32(x, 0)).toBe(c);
    }
    pin.release();
    await h.gc();
    expectOk(h);
    expect(h.usedBytes).toBeLessThan(2 ** 30); // everything slid below the boundary
    for (let i = 0; i < 3000; i += 7) expect(h.getU32(h.getRef(tail.get()!, i)!, 0)).toBe(i);
  });
});

describe.each(['move', 'copy'] as const)('a collector thread descheduled across the end of its cycle (%s)', (mode) => {
  itKernel(`[${mode}] the fault server builds no page of the next plan`, async () => {
    // Found by the race audit: the fault server, taking over from a dead compactor, was
    // descheduled with the cycle's page ranges in hand; the mutator finished that cycle, the
    // next one planned (its page states written before its flip), and the fault server woke and
    // claimed and built those pages from a plan still being written: a live node read as a
    // filler after the next cycle (copy: every run). faultTakeoverDelayMs holds it there.
    const h = await Heap.create({ capacity: 64 << 20, mode, stallMs: 20, faultPath: 'self', marking: 'concurrent' });
    heaps.push(h);
    const { root } = buildList(h);
    h.inject({ dieAtPage: 2, faultTakeoverDelayMs: 1500 });
    await h.collect();
    await h.idle(); // the mutator builds the rest; the cycle ends while the fault server sleeps
    h.inject({});
    h.requestCollection();
    for (let i = 0; i < 20_000 && h.cyclePhase === 'marking'; i++) {
      h.safepoint();
      await new Promise((r) => setImmediate(r));
    }
    expect(h.cyclePhase).toBe('planning');
    const until = Date.now() + 2500;
    while (Date.now() < until); // no safepoint: the plan is written, the fault server wakes
    while (!h.safepoint()); // the flip
    await h.idle();
    expectList(h, root);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);

  // Found by a code review: the fault server's claims were fenced to their cycle, its installs
  // not. Descheduled between its build and its install past stallMs, its page was taken over
  // and installed (here by the marker standing in: the mutator waits in the kernel fault), the
  // cycle ended and the next one flipped; it then woke and installed its page of the old layout
  // into the new to-space and marked it mapped there. The holds keep it there until the flip:
  // before it says which cycle it installs for (its check then backs out), and after (the
  // cycle's end then waits for it, and replaces it as it is stalled).
  itKernel(`[${mode}] a fault server that looks inside the next flip builds none of its pages`, async () => {
    // Found by a race audit: the flip publishes PHASE=COMPACTING before it bumps CYCLE. In
    // between, the words read "the last cycle compacts" (and its compactor is done), so the fault
    // server, fenced to the last cycle, took over the new plan's first page, built it and could
    // not install it (its cycle was closing): the page stayed PROCESSED under a live owner and
    // the cycle never ended (idle() and close() hung). flipGapMs holds the flip in that window.
    const h = await Heap.create({ capacity: 16 << 20, mode, stallMs: 200, faultPath: 'handler', marking: 'concurrent' });
    const { root } = buildList(h);
    await h.gc(); // undisturbed: its compactor is done
    cutBelow(h, root, 2000);
    h.inject({ flipGapMs: 100 });
    await h.collect();
    h.inject({});
    const ended = await Promise.race([h.idle().then(() => true), new Promise<false>((res) => setTimeout(() => res(false), 5000))]);
    if (!ended) return void expect.fail('the cycle did not end in 5 s (its heap is left open: close() would hang too)');
    heaps.push(h);
    expectList(h, root, 2000);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);

  itKernel(`[${mode}] a fault server that looks inside a heap's first flip takes none of its pages over`, async () => {
    // Found by a fresh-clone CI run (heap.unbuilt-reads saw pages installed while its compactor
    // slept): in the first flip's gap (PHASE published, CYCLE still 0) the words read "cycle 0
    // compacts and its compactor is done" (COMPACTOR_DONE 0), and a fault server with no fence
    // yet took the new plan's pages over from a compactor that was alive. No fault is raised
    // here, and the compactor sleeps 300 ms before its first page: nobody else may build one.
    const h = await Heap.create({ capacity: 16 << 20, mode, stallMs: 5000, faultPath: 'handler', marking: 'concurrent', inject: { flipGapMs: 300, delayAtPage: 1, delayMs: 300 } });
    heaps.push(h);
    const { root } = buildList(h);
    cutBelow(h, root, 2000);
    const st = (await h.gc())!;
    expect(st.cycle).toBe(1);
    expect(st.faults, JSON.stringify(st.pages)).toBe(0);
    expect(st.pages.builtByFaults, JSON.stringify(st.pages)).toBe(0);
    expectList(h, root, 2000);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);

  itKernel(`[${mode}] a fault raised inside the next flip is served after it, by no thread fenced to the last cycle`, async () => {
    // Builders.#inCycle's CLOSING_CYCLE term. Inside the flip's gap (PHASE published, CYCLE not
    // yet bumped) the words read "the last cycle compacts". A thread reading the heap by its
    // address faults there, and the fault server, fenced to the last cycle, would claim and
    // build the new plan's page; held past CYCLE's bump (faultHoldBuiltMs), it could no longer
    // install it, and the page stayed PROCESSED under a live owner: the cycle never ended.
    // register-first: the reader's loads must never meet the heap remapped and not yet armed.
    const h = await Heap.create({ capacity: 16 << 20, mode, stallMs: 5000, faultPath: 'handler', marking: 'concurrent', pauseOrder: 'register-first' });
    const { root } = buildList(h);
    await h.gc(); // the fault server's last cycle is over
    cutBelow(h, root, 2000);
    // A page in the middle of the live data: the next cycle slides other nodes onto it.
    let probe = root.get()!;
    while (h.getU32(probe, 0) !== 3000) probe = h.getRef(probe, 0)!;
    const word = ((h.addressOf(probe) - h.address) >>> 2) + 2;
    const sync = new Int32Array(new SharedArrayBuffer(8));
    const reader = new Worker(
      `const { workerData: d, parentPort } = require('node:worker_threads');
      import(d.distUrl).then(({ viewOf }) => {
        const heap = new Uint32Array(viewOf(d.heapAddress, d.capacity));
        parentPort.postMessage('ready');
        let v = 0;
        while (Atomics.load(d.sync, 0) === 0) v ^= heap[d.word]; // faults once the flip arms the heap
        parentPort.postMessage(v);
      });`,
      { eval: true, workerData: { distUrl: new URL('../dist/gc/memory.js', import.meta.url).href, heapAddress: h.address, capacity: h.capacity, word, sync } },
    );
    await new Promise<void>((resolve) => reader.once('message', () => resolve()));
    let ended = false;
    try {
      h.inject({ flipGapMs: 300, faultHoldBuiltMs: 600 });
      h.requestCollection();
      for (let i = 0; i < 200_000 && h.cyclePhase !== 'compacting'; i++) {
        h.safepoint();
        await new Promise((r) => setImmediate(r));
      }
      expect(h.cyclePhase).toBe('compacting');
      h.inject({});
      ended = await Promise.race([h.idle().then(() => true), new Promise<false>((res) => setTimeout(() => res(false), 8000))]);
      // Not ended: the reader waits in a fault nobody serves, and so would its termination.
      if (!ended) return void expect.fail('the cycle did not end in 8 s (its heap and the reader are left as they are: close() would hang too)');
      expect(h.history.at(-1)!.faults, 'the reader faulted').toBeGreaterThan(0);
    } finally {
      Atomics.store(sync, 0, 1);
      if (ended) await reader.terminate();
      else reader.unref();
    }
    heaps.push(h);
    expectList(h, root, 2000);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);

  itKernel(`[${mode}] the marker standing in, descheduled with a built page, installs nothing after its cycle`, async () => {
    // Found by a race audit: the marker standing in for compaction (both compaction threads
    // gone) was taken over while it held a built page; the cycle ended, and its install then
    // failed on the unregistered heap, which killed the thread. The compactor dies at its second
    // page, the fault server sleeps as it starts taking over, the marker stands in and holds its
    // first page; the awaited end takes that page over and ends the cycle.
    const { logger, messages } = await captureLogger('warn');
    const h = await Heap.create({ capacity: 16 << 20, mode, stallMs: 100, marking: 'concurrent', logger });
    heaps.push(h);
    const { root } = buildList(h);
    h.inject({ dieAtPage: 2, faultTakeoverDelayMs: 1500, markHoldBuiltMs: 800 });
    await h.collect();
    h.inject({});
    await new Promise((res) => setTimeout(res, 500)); // the marker stands in and holds
    await h.idle();
    await new Promise((res) => setTimeout(res, 1200)); // the marker wakes after the cycle's end
    await h.gc(); // marked by the marker, if it lives
    expect(messages.filter((m) => m === 'collector thread died')).toHaveLength(1); // the compactor, injected
    expect(messages).toContain('the compactor and the fault server are both gone: the marker installs what is left of the cycle');
    expectList(h, root);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);

  const ends = { awaited: 'idle()', safepoints: 'safepoints' } as const;
  for (const [at, end] of [['faultHoldBuiltMs', ends.awaited], ['faultHoldInstallMs', ends.awaited], ['faultHoldInstallMs', ends.safepoints]] as const) {
    itKernel(`[${mode}] the fault server installs no page into the next cycle's to-space (${at}, cycle ended by ${end})`, async () => {
      const h = await Heap.create({ capacity: 64 << 20, mode, stallMs: 200, faultPath: 'handler', marking: 'concurrent' });
      heaps.push(h);
      const { root, mid } = buildList(h, 3000);
      // The compactor waits at its first page (not long enough to be stale), so the mutator's
      // first touch faults on an unbuilt page, which the fault server builds and holds.
      h.inject({ delayAtPage: 1, delayMs: 100, [at]: 5000 });
      await h.collect();
      expect(h.getU32(mid.get()!, 0)).toBe(3000);
      const t0 = Date.now();
      if (end === ends.awaited) await h.idle();
      else while (h.cyclePhase !== 'idle') {
        h.safepoint(); // the end that never waits (it starts the stalled server's replacement)
        await new Promise((res) => setTimeout(res, 1));
      }
      expect(Date.now() - t0).toBeLessThan(4000); // a server stalled inside its install is replaced, not waited for (5 s)
      cutBelow(h, root, 2000);
      h.inject({ delayAtPage: 1, delayMs: 150 }); // the page the fault server held stays unbuilt a while
      await h.collect();
      await new Promise((res) => setTimeout(res, 60)); // untouched: the held server wakes and installs, if it can
      await h.idle();
      expectList(h, root, 2000);
      expectOk(h);
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);
  }
});

describe.each(['move', 'copy'] as const)('the end of a cycle by safepoints (%s)', (mode) => {
  itKernel(`[${mode}] waits for a fault installed but not yet timed: its sample is the cycle's`, async () => {
    // The fault server holds a fault between its install and its timing (faultHoldTimedMs,
    // under stallMs: not stale) while the compactor finishes every other page. The end that
    // never waits (safepoint) must not close the cycle's statistics without that sample.
    const h = await Heap.create({ capacity: 16 << 20, mode, stallMs: 500, faultPath: 'handler', marking: 'concurrent' });
    heaps.push(h);
    const { root, mid } = buildList(h, 3000);
    h.inject({ delayAtPage: 1, delayMs: 30, faultHoldTimedMs: 200 });
    await h.collect();
    expect(h.getU32(mid.get()!, 0)).toBe(3000); // faults: the compactor waits at its first page
    while (h.cyclePhase !== 'idle') {
      h.safepoint();
      await new Promise((res) => setTimeout(res, 1));
    }
    const st = h.history.at(-1)!;
    expect(st.faults, 'faults read').toBeGreaterThan(0);
    expect(st.faultUs.count, 'faults timed in the cycle').toBe(st.faults);
    expectList(h, root);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);
});

describe.each(['move', 'copy'] as const)('the awaited end of a cycle (%s)', (mode) => {
  itKernel(`[${mode}] a page it built but could not install goes to the other threads, not nowhere`, async () => {
    // Found by a race audit: the awaited end builds what a dead compactor left on the mutator's
    // thread. When such an install threw, the page stayed built under the mutator's name, which
    // no thread counts stale: nobody could install it, the next idle() waited forever (as would
    // any thread faulting on it). The compactor dies at its second page and the fault server
    // sleeps as it starts taking over, so the mutator builds the rest; its first install throws.
    const h = await Heap.create({ capacity: 16 << 20, mode, stallMs: 100, marking: 'concurrent' });
    heaps.push(h);
    const { root } = buildList(h);
    h.inject({ dieAtPage: 2, faultTakeoverDelayMs: 500, selfFailAtInstall: 1 });
    await h.collect();
    h.inject({});
    await expect(h.idle()).rejects.toMatchObject({ code: 'ERR_INJECTED' });
    const ended = await Promise.race([h.idle().then(() => true), new Promise<false>((res) => setTimeout(() => res(false), 8000))]);
    if (!ended) heaps.pop(); // left open: its close() would wait for the cycle too
    expect(ended, 'the cycle ended').toBe(true);
    expectList(h, root);
    expectOk(h);
  }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 30_000);
});

describe('a page the program drops (MADV_DONTNEED) after it was installed, mid-cycle', () => {
  // Found by a kernel-edge audit: the page's state said installed, so the fault server only
  // woke the faulting mutator, which faulted again at once, for ever (both modes). Now the zero
  // page goes in (fault.ts), as the kernel puts one there outside a cycle. In a child: a hang
  // must not take the runner down.
  for (const [mode, faultPath] of [['move', 'self'], ['move', 'handler'], ['copy', 'self'], ['copy', 'handler']] as const) {
    itKernel(`${mode}, ${faultPath} path: the dropped page reads zeros, the rest of the object is intact, the cycle ends`, async () => {
      const res = await fixtureResult('dontneed-mid-cycle.mjs', [mode, faultPath], 30_000);
      expect(res).toMatchObject({ phase: 'compacting', before: 7, dropped: 0, others: [7, 7], verify: true, after: [7, 0, 7] });
    }, ['uffd', 'move'], 60_000);
  }
});

describe('live objects the program overwrites after marking, before the flip (their page dropped, or a reference outside the heap)', () => {
  // Found by a kernel-edge audit: the builders met headers of 0 after the flip. The native one
  // stopped (ERR_INTERNAL) with every page still unbuilt, and the next access waited until the
  // watchdog aborted the process; a pinned object's page spun the compaction pause for ever.
  // Now such objects go as raw words over the extent marking recorded (build.ts
  // malformedWords), the cycle ends, and collect() says ERR_HEAP_CORRUPT. In a child: a hang
  // must not take the runner down.
  // A reference outside the heap, written into a live object's slot then, stopped the native
  // builder the same way (and the TypeScript one wrote null there).
  const whats = { slide: 'objects that slide', pinned: 'a pinned object', reference: 'a reference outside the heap', dead: 'a reference into a dead object that slides' };
  for (const [mode, builder, where] of [['move', 'native', 'slide'], ['move', 'js', 'pinned'], ['copy', 'js', 'slide'], ['copy', 'native', 'pinned'], ['move', 'native', 'reference'], ['copy', 'js', 'reference'], ['move', 'js', 'dead'], ['copy', 'native', 'dead']] as const) {
    itKernel(`${mode}, ${builder} builder, ${whats[where]}: ERR_HEAP_CORRUPT, the cycle ends, other objects intact`, async () => {
      const res = await fixtureResult('dontneed-after-marking.mjs', [mode, builder, where], 30_000);
      expect(res).toMatchObject({ phase: 'marking', collect: 'ERR_HEAP_CORRUPT', after: 'idle', keep: true, verify: false });
      // A header of 0 stops the next marking; a reference past the top does not (marking cannot
      // tell it from a black object's while the mutator allocates), and the next cycle may
      // build no page that holds it: verify() is what finds it then. A reference kept raw into
      // a dead object lands wherever the move left that word: marking refuses it if no object
      // starts there, which is likely, not certain.
      if (where !== 'reference' && where !== 'dead') expect(res.again).toBe('ERR_HEAP_CORRUPT');
      expect(res.message).toMatch(/malformed header or reference when compaction met it/);
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 60_000);
  }
});

describe("a program's mprotect() of part of its heap between collections", () => {
  // Found by a kernel-edge audit: PROT_READ followed the pages to from-space, where move mode's
  // compactor writes (SIGSEGV: the process died), and PROT_NONE stopped the marker's reads in
  // every mode. A cycle now makes the heap read-write first, and again in its pause
  // (pause.ts unprotectHeap). In a child: a crash must not take the runner down.
  for (const mode of ['move', 'copy', 'stw'] as const) {
    for (const prot of ['read', 'none'] as const) {
      itKernel(`${mode}, PROT_${prot.toUpperCase()}: the collection completes, the pages are writable after it, values intact`, async () => {
        const res = await fixtureResult('mprotect-heap.mjs', [mode, prot], 30_000);
        expect(res).toEqual({ mode, prot, count: 50_000, verify: true, written: 50_000, countAfterGc: 50_000, verifyAfterGc: true });
      }, mode === 'move' ? ['uffd', 'move'] : mode === 'copy' ? ['uffd'] : [], 60_000);
    }
  }
});

describe('a program that unmaps part of its heap, or maps over it, while the cycle compacts', () => {
  // Found by kernel-edge audits: every thread that met a page it could not install there
  // (ENOENT) died, idle() rejected, and the next touch of any unbuilt page waited for a fault
  // server that was gone (the watchdog aborted the process). Now such a page is counted
  // (pages.gone; install.ts #gone: mincore says unmapped, or a one-page COPY's ENOENT says no
  // registration covers it) and the cycle ends. The next collection refuses with a typed
  // error: the heap cannot be made read-write whole (unmapped), or marking meets the zeros
  // the program's mapping holds where objects were (mapped over). In a child: an abort must
  // not take the runner down.
  for (const how of ['unmap', 'remap'] as const) {
    for (const [mode, faultPath] of [['move', 'self'], ['move', 'handler'], ['copy', 'self'], ['copy', 'handler']] as const) {
      itKernel(`${how}, ${mode}, ${faultPath} path: the cycle ends, the 16 pages counted gone, every object elsewhere intact`, async () => {
        const res = await fixtureResult('unmap-mid-cycle.mjs', [mode, faultPath, how], 30_000);
        expect(res).toMatchObject({ phase: 'compacting', idle: 'ok', gone: 16, active: false, n: 20_000 });
        expect(res.lost).toBeGreaterThan(0);
        expect(res.ok + res.lost).toBe(20_000);
        expect(res.next).toBe(how === 'unmap' ? 'ENOMEM' : 'ERR_HEAP_CORRUPT');
      }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 60_000);
    }
  }
});

describe("a program's mlock() of part of its heap", () => {
  // Found by a kernel-edge audit: the pause's mremap carries VM_LOCKED to from-space, where
  // giving the pages back (MADV_DONTNEED) is refused with EINVAL: the compactor died and the
  // collection failed (its statistics lost), in both modes. Now from-space is unlocked first
  // (builders.ts releaseFrom). In move mode each locked page's MOVE is refused (EINVAL: source
  // and destination differ in VM_LOCKED) and copied instead.
  for (const mode of ['move', 'copy'] as const) {
    itKernel(`${mode}: collections complete, values intact, every cycle recorded`, async () => {
      const { native } = await import('../dist/gc/native.js');
      const { WARNINGS_PER_CYCLE } = await import('../dist/gc/install.js');
      const { logger, messages } = await captureLogger();
      const h = await Heap.create({ capacity: 32 << 20, mode, logger });
      heaps.push(h);
      try {
        native.mlock(h.address, 4 << 20);
      } catch (e) {
        // Root may lock any amount; anyone else only up to RLIMIT_MEMLOCK.
        if (process.getuid?.() === 0) throw e;
        return void console.warn(`[movegc] skipping: mlock of 4 MiB refused (${(e as { code?: string }).code}): not root, RLIMIT_MEMLOCK`);
      }
      const { root } = buildList(h);
      // More live data in the locked range: enough pages for the compactor's long MOVE runs.
      const T = h.defineType({ name: 'T', refs: 1, bytes: 8 });
      const more = h.root(null);
      for (let i = 0; i < 20_000; i++) {
        h.alloc(T);
        const x = h.alloc(T);
        h.setU32(x, 0, i);
        h.setRef(x, 0, more.get());
        more.set(x);
      }
      const moreOk = (): void => {
        let i = 20_000;
        for (let x = more.get(); x !== null; x = h.getRef(x, 0)) expect(h.getU32(x, 0)).toBe(--i);
        expect(i).toBe(0);
      };
      for (let c = 1; c <= 2; c++) {
        await h.gc();
        expect(h.history).toHaveLength(c);
        expectList(h, root);
        moreOk();
        expectOk(h);
      }
      await new Promise((r) => setTimeout(r, 200)); // the collector threads' warnings come through the event loop
      if (mode === 'move') {
        // The first cycle's MOVEs of locked pages were refused, each logged up to
        // WARNINGS_PER_CYCLE per thread (install.ts), then once that the rest are not.
        const refused = h.history[0].errors;
        const warned = messages.filter((m: string) => m.startsWith('MOVE failed')).length;
        expect(refused).toBeGreaterThan(3 * WARNINGS_PER_CYCLE);
        expect(warned).toBeGreaterThan(0);
        expect(warned).toBeLessThanOrEqual(3 * WARNINGS_PER_CYCLE);
        expect(messages.some((m: string) => m.includes('not logged'))).toBe(true);
      }
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd']);
  }
});
