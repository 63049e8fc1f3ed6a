/**
 * Missing-page faults served from another thread, against the real kernel: the main test
 * thread touches a registered page and blocks inside the kernel; a worker_threads Worker
 * (test/workers/serve-faults.mjs) reads the fault from the same userfaultfd and resolves it
 * with UFFDIO_MOVE. The worker is bounded in time and maps zero pages over whatever it failed
 * to serve, so a broken binding fails these tests on contents instead of hanging them.
 */
import { afterEach, describe, expect } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Mapping, PAGE_SIZE, Userfaultfd } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';

const PS = PAGE_SIZE;
const DIST_URL = new URL('../dist/gc/index.js', import.meta.url).href;
const WORKER_URL = new URL('./workers/serve-faults.mjs', import.meta.url);
const SLOT = { state: 0, served: 1, lastFault: 2, moveDoneAt: 3, wakeAt: 4, bytesMoved: 5 };
const STATE_DONE = 2n;

const patternByte = (tag: number, page: number, i: number): number => (tag * 131 + page * 17 + i * 7 + 1) & 0xff;

function fillPages(u8: Uint8Array, pages: number, tag: number): void {
  for (let p = 0; p < pages; p++) for (let i = 0; i < PS; i++) u8[p * PS + i] = patternByte(tag, p, i);
}

/** First byte of `page` that differs from the pattern, or -1. */
function mismatch(u8: Uint8Array, page: number, tag: number, base = page * PS): number {
  for (let i = 0; i < PS; i++) if (u8[base + i] !== patternByte(tag, page, i)) return i;
  return -1;
}

const isZero = (u8: Uint8Array, from: number, len: number): boolean => {
  for (let i = from; i < from + len; i++) if (u8[i] !== 0) return false;
  return true;
};

interface Served {
  worker: Worker;
  slots: BigInt64Array;
  done: Promise<{ served: number; error?: { code: string; message: string } }>;
  exited: Promise<number>;
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Starts the fault server and resolves once it has adopted the descriptor and is polling. */
async function startServer(opts: {
  uffd: Userfaultfd; dst: Mapping; src: Mapping; faults: number; dontWake?: boolean; wakeDelayMs?: number;
}): Promise<Served> {
  const shared = new SharedArrayBuffer(8 * 8);
  const slots = new BigInt64Array(shared);
  const worker = new Worker(WORKER_URL, {
    workerData: {
      distUrl: DIST_URL,
      fd: opts.uffd.fd,
      features: opts.uffd.features,
      dst: opts.dst.address,
      src: opts.src.address,
      length: opts.dst.length,
      faults: opts.faults,
      dontWake: opts.dontWake ?? false,
      wakeDelayMs: opts.wakeDelayMs ?? 0,
      timeoutMs: 10_000,
      shared,
    },
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  cleanups.push(async () => {
    await worker.terminate();
    await exited;
  });
  let onDone!: (m: { served: number; error?: { code: string; message: string } }) => void;
  const done = new Promise<{ served: number; error?: { code: string; message: string } }>((r) => (onDone = r));
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: { type: string; served: number; error?: { code: string; message: string } }) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'done') onDone(m);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`fault server exited (${code}) before it was ready`)));
  });
  await ready;
  return { worker, slots, done, exited };
}

function setup(pages: number): { uffd: Userfaultfd; src: Mapping; dst: Mapping; srcU8: Uint8Array; dstU8: Uint8Array } {
  const uffd = Userfaultfd.open({ features: ['MOVE'] });
  const src = Mapping.anonymous(pages * PS, { advise: ['NOHUGEPAGE'] });
  const dst = Mapping.anonymous(pages * PS, { advise: ['NOHUGEPAGE'] });
  cleanups.push(() => {
    src.close();
    dst.close();
    uffd.close();
  });
  const srcU8 = new Uint8Array(src.view());
  const dstU8 = new Uint8Array(dst.view());
  fillPages(srcU8, pages, 3);
  expect(uffd.register(dst.address, dst.length)).toContain('MOVE');
  return { uffd, src, dst, srcU8, dstU8 };
}

describe('missing-page faults served by MOVE from a Worker', () => {
  itKernel('the main thread blocks on a registered page until the worker moves it in, then reads the data', async () => {
    const { uffd, src, dst, srcU8, dstU8 } = setup(1);
    expect(dst.residentPages()).toBe(0);
    const server = await startServer({ uffd, dst, src, faults: 1 });

    // The faulting access: this thread sleeps in the kernel until the worker's MOVE wakes it.
    const first = dstU8[100];

    const msg = await server.done;
    expect(msg.error).toBeUndefined();
    expect(msg.served).toBe(1);
    expect(first).toBe(patternByte(3, 0, 100));
    expect(mismatch(dstU8, 0, 3)).toBe(-1);
    expect(Atomics.load(server.slots, SLOT.state)).toBe(STATE_DONE);
    expect(Number(server.slots[SLOT.bytesMoved])).toBe(PS);
    const fault = Number(server.slots[SLOT.lastFault]);
    expect(fault - (fault % PS)).toBe(dst.address);
    // Moved, not copied: the source page is gone (not resident) and reads as zeros.
    expect(src.residentPages()).toBe(0);
    expect(isZero(srcU8, 0, PS)).toBe(true);
    expect(await server.exited).toBe(0);
  });

  itKernel('several faults in a row, in any order, are each served by their own MOVE', async () => {
    const pages = 4;
    const { uffd, src, dst, srcU8, dstU8 } = setup(pages);
    const server = await startServer({ uffd, dst, src, faults: pages });

    const order = [2, 0, 3, 1];
    const seen = order.map((p) => dstU8[p * PS + 7]);

    const msg = await server.done;
    expect(msg.error).toBeUndefined();
    expect(msg.served).toBe(pages);
    expect(seen).toEqual(order.map((p) => patternByte(3, p, 7)));
    for (let p = 0; p < pages; p++) expect(mismatch(dstU8, p, 3)).toBe(-1);
    expect(Number(server.slots[SLOT.bytesMoved])).toBe(pages * PS);
    expect(src.residentPages()).toBe(0);
    expect(isZero(srcU8, 0, pages * PS)).toBe(true);
    expect(await server.exited).toBe(0);
  });

  itKernel('DONTWAKE leaves the faulting thread asleep after the MOVE until an explicit WAKE', async () => {
    const { uffd, src, dst, srcU8, dstU8 } = setup(1);
    const server = await startServer({ uffd, dst, src, faults: 1, dontWake: true, wakeDelayMs: 300 });

    // Blocks until the worker's UFFDIO_WAKE, not its (earlier) UFFDIO_MOVE.
    const first = dstU8[0];
    const readerDoneAt = process.hrtime.bigint();

    const msg = await server.done;
    expect(msg.error).toBeUndefined();
    expect(msg.served).toBe(1);
    expect(first).toBe(patternByte(3, 0, 0));
    expect(mismatch(dstU8, 0, 3)).toBe(-1);
    const moveDoneAt = Atomics.load(server.slots, SLOT.moveDoneAt);
    const wakeAt = Atomics.load(server.slots, SLOT.wakeAt);
    expect(moveDoneAt).toBeGreaterThan(0n);
    // Ordering, not timing: the worker stamps wakeAt after the MOVE and its sleep, just
    // before UFFDIO_WAKE. Without DONTWAKE the MOVE itself would have woken the reader,
    // which would have returned well before wakeAt.
    expect(wakeAt).toBeGreaterThan(moveDoneAt);
    expect(readerDoneAt).toBeGreaterThanOrEqual(wakeAt);
    expect(src.residentPages()).toBe(0);
    expect(isZero(srcU8, 0, PS)).toBe(true);
    expect(await server.exited).toBe(0);
  });
});
