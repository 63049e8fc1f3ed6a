/**
 * Which cycle collect() and gc() answer with (found by a hostile-tester audit).
 *
 * collect() and gc() while something requests the next cycle as each one ends (found by a
 * hostile-tester audit: a logger whose 'cycle done' hook calls requestCollection(), run from
 * the microtask that logs the end, got in before collect()'s wait returned, every time: gc()
 * never returned while thousands of cycles ran). A cycle requestCollection() began after the
 * call, not yet flipped, is now driven to its flip in place of a new one.
 *
 * gc() returns its own cycle's record even when the caller edited an earlier one: gc() looked
 * its cycle up by the records' `cycle` field, and handed out the heap's own records, so a
 * record the caller renumbered was returned again as a later cycle's statistics. Records are
 * handed out as copies now (history, gc, idle), so an edit changes nothing the heap says.
 */
import { describe, expect, it } from 'vitest';
import { Heap } from '../dist/gc/index.js';

/** A rooted list of n nodes: something for each cycle to trace and move. */
function rootedList(h: Heap, n: number): void {
  const T = h.defineType({ name: 'N', refs: 1, bytes: 8 });
  const r = h.root(null);
  for (let i = 0; i < n; i++) {
    const x = h.alloc(T);
    h.setRef(x, 0, r.get());
    r.set(x);
  }
}

// A fourth audit: the same hook calling collect() or gc() (not requestCollection) began its
// cycle inside the end the program's call was awaiting, each time, and the program's gc()
// never returned (1000 cycles in 5 s in move and copy). collect() calls are queued in order now.
const HOOKS = {
  requestCollection: (h: Heap) => void h.requestCollection(),
  collect: (h: Heap) => void h.collect().catch(() => {}),
  gc: (h: Heap) => void h.gc().catch(() => {}),
};
describe.each(Object.keys(HOOKS) as Array<keyof typeof HOOKS>)('collect() beside a logger that calls %s() whenever a cycle is done', (call) => {
  for (const mode of ['move', 'copy', 'stw'] as const) {
    it(`${mode}: gc() returns, each time`, async () => {
      let heap: Heap | undefined;
      const logger = {
        debug() {},
        info(_o: unknown, msg: string) {
          if (msg === 'cycle done' && heap && !heap.closed) HOOKS[call](heap);
        },
        warn() {},
        error() {},
      };
      heap = await Heap.create({ capacity: 8 << 20, mode, logger: logger as never });
      try {
        rootedList(heap, 5000);
        let last = 0;
        for (let i = 0; i < 3; i++) {
          const st = await Promise.race([heap.gc(), new Promise<null>((res) => setTimeout(() => res(null), 5000).unref())]);
          expect(st, `gc() #${i} still pending after 5 s (${heap.history.length} cycles ran)`).not.toBeNull();
          expect(st!.cycle).toBeGreaterThan(last);
          last = st!.cycle;
        }
        expect(heap.verify().ok).toBe(true);
      } finally {
        await heap.close();
      }
    }, 30_000);
  }
});

// README: collect() calls made while one runs "wait their turn, in call order". Found by a
// mutation audit: the queue taken last-in first-out (cycles 1, 4, 3, 2) failed no test.
describe('collect() calls made together', () => {
  for (const mode of ['move', 'copy', 'stw'] as const) {
    it(`${mode}: each gets its own cycle, in call order`, async () => {
      const heap = await Heap.create({ capacity: 8 << 20, mode });
      try {
        rootedList(heap, 2000);
        const sts = await Promise.all([0, 1, 2, 3].map(() => heap.collect()));
        const first = sts[0].cycle;
        expect(sts.map((s) => s.cycle)).toEqual([first, first + 1, first + 2, first + 3]);
        expect(heap.verify().ok).toBe(true);
      } finally {
        await heap.close();
      }
    }, 30_000);
  }
});

// A fifth audit: with three or more collect() calls queued, close() (or the heap lost: a pause
// whose undo fails) settled the first two and left the rest pending for ever: a queued call
// refused before it woke the next one.
describe('collect() calls queued when the heap closes, or is lost', () => {
  const settle = (ps: Array<Promise<unknown>>): Promise<string[]> =>
    Promise.race([
      Promise.all(ps.map((p) => p.then(() => 'ok', (e: { code?: string }) => String(e.code)))),
      new Promise<string[]>((res) => setTimeout(() => res(['PENDING after 5 s']), 5000).unref()),
    ]);
  for (const mode of ['move', 'copy', 'stw'] as const) {
    it(`${mode}: close() settles every queued call (ERR_CLOSED after the first)`, async () => {
      const h = await Heap.create({ capacity: 8 << 20, mode });
      rootedList(h, 2000);
      const ps = [0, 1, 2, 3, 4].map(() => h.collect());
      const closing = h.close();
      const got = await settle(ps);
      await closing;
      expect(got).toEqual(['ok', 'ERR_CLOSED', 'ERR_CLOSED', 'ERR_CLOSED', 'ERR_CLOSED']);
    }, 30_000);
  }
  for (const mode of ['move', 'copy'] as const) {
    it(`${mode}: a lost heap settles every queued call with its error`, async () => {
      const h = await Heap.create({ capacity: 8 << 20, mode, inject: { pauseFailAtCall: 1, pauseFailUndo: 1 } });
      try {
        rootedList(h, 2000);
        const got = await settle([0, 1, 2, 3].map(() => h.collect()));
        expect(got).toHaveLength(4);
        expect(got.every((c) => c === 'ERR_HEAP_CORRUPT'), got.join()).toBe(true);
      } finally {
        await h.close();
      }
    }, 30_000);
  }
});

it('a record the caller renumbered is not returned for a later cycle', async () => {
  const h = await Heap.create({ capacity: 4 << 20 });
  try {
    rootedList(h, 2000);
    const first = await h.gc();
    const n = first.cycle;
    (first as { cycle: number }).cycle = n + 1;
    // The heap hands out copies (a third audit: the caller's edits to a record gc() or idle()
    // returned, or to one in history, were the heap's, and progress() read them back).
    expect(h.history.at(-1)!.cycle).toBe(n);
    expect(h.progress().cycle).toBe(n);
    (h.history.at(-1) as { cycle: number }).cycle = 777;
    (h.history.at(-1)!.pauses as unknown[]).push({ kind: 'x', startMs: 0, ms: 1e9 });
    expect((await h.idle())!.cycle).toBe(n);
    expect(h.history.at(-1)!.pauses.some((p) => p.kind === ('x' as never))).toBe(false);
    const second = await h.gc();
    expect(second).not.toBe(first);
    expect(second.cycle).toBe(n + 1);
    expect(h.history.at(-1)).toEqual(second);
    expect(h.history.at(-1)).not.toBe(second);
  } finally {
    await h.close();
  }
});
