/**
 * I/O into heap memory the program did not pin (examples/pinned-io, its second run): a 64 KiB
 * byte array registered with io_uring (a real long-term pin of its pages) but only rooted, so
 * the collector moves it. Its old pages become recycled from-space buffers that io_uring
 * still writes. The reads are lost (the program's error); the heap must stay intact:
 *
 *  - a page built into such a buffer, refused by MOVE (EBUSY), is rebuilt and the rebuild
 *    copied, never the buffer (mutant "copy the buffer": the reads land in other objects);
 *  - the mutator helping in a page another builder built into such a buffer copies a rebuild
 *    too (mutant: the walk meets a corrupt header);
 *  - a rebuild needs the page's from-space sources: the recycler reuses none of a page not
 *    installed yet (mutant "limit at built pages": a dense heap rebuilds from overwritten
 *    sources, every builder dies on a malformed header, the watchdog aborts the process).
 *
 * Deterministic where a compactor stall is injected: the reads land while the pending run
 * built into those buffers waits for its install.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect } from 'vitest';
import { Heap, IoUringPin, PAGE_SIZE, type CycleStats, type FaultPathName, type Ref } from '../dist/gc/index.js';
import { Ctl } from '../dist/gc/control.js';
import { itKernel } from './kernel.js';

const BUF = 64 * 1024;
const T_OUT = 60_000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-unpinned-'));
const file = path.join(dir, 'data.bin');
fs.writeFileSync(file, crypto.randomBytes(16 * BUF));
const fd = fs.openSync(file, 'r');
afterAll(() => {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

const open: Array<{ heap: Heap; io: IoUringPin }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    o.io.release();
    await o.heap.close();
  }
});

/**
 * The example's layout: garbage below, a list of live items each followed by a dead one,
 * the array (contents page aligned, io_uring-registered, rooted), more live list above.
 * dense: no dead items in the list, and `below` dead items only under it.
 */
async function setup(faultPath: FaultPathName, { dense = false, below = 10_000 } = {}) {
  // The walk's reads build or help install (unbuiltReads 'build'): these tests are about the
  // buffers of pages the mutator installs, which a read served from from-space never does.
  const heap = await Heap.create({ capacity: 32 << 20, mode: 'move', largeObjectBytes: 0, stallMs: 5000, faultPath, unbuiltReads: 'build' });
  const Item = heap.defineType({ name: 'Item', refs: 1, bytes: 8 });
  const list = heap.root(null);
  let items = 0;
  const layer = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const it = heap.alloc(Item);
      heap.setU32(it, 0, items++);
      heap.setRef(it, 0, list.get());
      list.set(it);
      if (!dense) heap.alloc(Item);
    }
  };
  for (let i = 0; i < below; i++) heap.alloc(Item);
  layer(20_000);
  const gap = (PAGE_SIZE - ((heap.usedBytes + 8) % PAGE_SIZE)) % PAGE_SIZE;
  if (gap) heap.allocBytes(gap - 8);
  const buf = heap.root(heap.allocBytes(BUF));
  const oldPage = (heap.addressOf(buf.get()!) + 8 - heap.address) / PAGE_SIZE;
  const io = IoUringPin.pin(heap.address + oldPage * PAGE_SIZE, BUF, { io: true });
  open.push({ heap, io });
  io.readFixed(fd, 0, BUF, 0); // chunk 0: the array holds it from here on
  layer(50_000);
  /** Reads chunks 1..15 into the registered (old) pages. */
  const scribble = (): void => {
    for (let k = 1; k < 16; k++) io.readFixed(fd, k * BUF, BUF, 0);
  };
  /** The list walked from its head: every item, values n-1 .. 0 in order (the mutator reads every page). */
  const walk = (): number => {
    let n = 0;
    for (let cur: Ref | null = list.get(); cur !== null; cur = heap.getRef(cur, 0)) {
      expect(heap.getU32(cur, 0)).toBe(items - 1 - n);
      n++;
    }
    return n;
  };
  const intact = (moved = true): void => {
    const v = heap.verify();
    expect(v.errors).toEqual([]);
    expect(walk()).toBe(items);
    // The array kept what it held when it moved: the reads after that went to the old pages.
    if (moved) expect(Buffer.from(heap.readBytes(buf.get()!, 0, BUF)).equals(fs.readFileSync(file).subarray(0, BUF))).toBe(true);
  };
  return { heap, oldPage, scribble, walk, intact, items: () => items };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/**
 * Starts a cycle whose compactor stalls (1.5 s, under stallMs) once it has built `at` - 1
 * pages, waits for that (spinning: the mutator must not touch the heap), and then lands the
 * reads in the array's old pages, under a run built into them and not yet installed.
 */
async function scribbleUnderPendingRun(s: Setup, at: number): Promise<void> {
  s.heap.inject({ delayAtPage: at, delayMs: 1500 });
  await s.heap.collect();
  for (const t0 = Date.now(); (s.heap._debugState().ctl as number[])[Ctl.COMPACTOR_BUILDS] < at - 1; ) {
    if (Date.now() - t0 > 20_000) throw new Error(`the compactor did not build ${at - 1} pages`);
  }
  s.scribble();
}

describe('I/O into old heap pages the program did not pin', () => {
  itKernel('a page refused by MOVE (EBUSY) is rebuilt: the I/O into its buffer never reaches the heap', async () => {
    const s = await setup('handler');
    // Where the pending run sits in the array's old pages (scanned: 70-85 pages past them;
    // with the mutant 'copy the buffer' the heap verifies corrupt there, and intact below).
    await scribbleUnderPendingRun(s, s.oldPage + 78);
    const st: CycleStats = (await s.heap.idle())!;
    s.intact(); // first: what the mutant breaks
    expect(st.ebusy, 'MOVE refused the io_uring-pinned buffers').toBeGreaterThan(0);
    expect(st.ebusyCopies).toBe(st.ebusy);
    expect(st.rebuilds).toBeGreaterThanOrEqual(st.ebusy);
    s.scribble(); // after the cycle: the old pages are no part of the heap
    s.intact();
    s.heap.inject({});
    await s.heap.gc();
    s.intact();
  }, undefined, T_OUT);

  itKernel('the mutator installing a page built into such a buffer copies a rebuild of it', async () => {
    const s = await setup('self');
    // The mutator's walk finds those pages built (PROCESSED) by a live compactor and
    // installs them itself.
    await scribbleUnderPendingRun(s, s.oldPage + 78); // (the same run as above)
    expect(s.walk()).toBe(s.items());
    const st = (await s.heap.idle())!;
    expect(st.pages.builtByMutator, 'the mutator helped').toBeGreaterThan(0);
    expect(st.rebuilds).toBeGreaterThan(0);
    s.intact();
  }, undefined, T_OUT);

  itKernel('a dense heap: recycled buffers stay below the sources of every page not installed', async () => {
    const s = await setup('handler', { dense: true, below: 4000 });
    for (let c = 0; c < 2; c++) {
      await s.heap.collect();
      const cycle = (s.heap._debugState().ctl as number[])[Ctl.CYCLE];
      // Reads for the whole of the compaction (bounded): they land whenever a run sits in the old pages.
      for (const t0 = Date.now(); Date.now() - t0 < 5000 && (s.heap._debugState().ctl as number[])[Ctl.COMPACTOR_DONE] !== cycle; ) s.scribble();
      const st = (await s.heap.idle())!;
      if (c === 0) expect(st.ebusy).toBeGreaterThan(0);
      s.intact(false); // (reads before the array moved reached it)
    }
  }, undefined, T_OUT);
});
