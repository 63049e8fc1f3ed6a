/**
 * Unmovable pages, made for real (no mocks): an io_uring buffer registration (a long-term
 * pin, as DMA would hold) and a forked child sharing the process's anonymous pages.
 * UFFDIO_MOVE refuses both with EBUSY; the binding must report it with the progress made.
 * Every mapping here is MADV_NOHUGEPAGE: the kernel can retry forever on a pinned large folio.
 */
import fs from 'node:fs';
import { afterEach, describe, expect } from 'vitest';
import { ForkedChild, IoUringPin, Mapping, MoveGcError, PAGE_SIZE, Userfaultfd } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';
import { fixtureResult } from './helpers/child.js';

const PS = PAGE_SIZE;
const patternByte = (tag: number, page: number, i: number): number => (tag * 131 + page * 17 + i * 7 + 1) & 0xff;

function fillPages(u8: Uint8Array, pages: number, tag: number): void {
  for (let p = 0; p < pages; p++) for (let i = 0; i < PS; i++) u8[p * PS + i] = patternByte(tag, p, i);
}
function mismatch(u8: Uint8Array, firstPage: number, pages: number, tag: number): number {
  for (let p = firstPage; p < firstPage + pages; p++)
    for (let i = 0; i < PS; i++) if (u8[p * PS + i] !== patternByte(tag, p, i)) return p * PS + i;
  return -1;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function setup(pages: number, srcAdvise: Array<'DONTFORK' | 'NOHUGEPAGE'> = ['NOHUGEPAGE']) {
  const uffd = Userfaultfd.open({ features: ['MOVE'] });
  const src = Mapping.anonymous(pages * PS, { advise: srcAdvise });
  const dst = Mapping.anonymous(pages * PS, { advise: ['NOHUGEPAGE'] });
  cleanups.push(() => {
    src.close();
    dst.close();
    uffd.close();
  });
  const s = new Uint8Array(src.view());
  const d = new Uint8Array(dst.view());
  fillPages(s, pages, 11);
  uffd.register(dst.address, dst.length);
  return { uffd, src, dst, s, d };
}

function pin(address: number, length: number): IoUringPin {
  const p = IoUringPin.pin(address, length);
  cleanups.push(() => p.release());
  return p;
}

function spawnChild(): ForkedChild {
  const c = ForkedChild.spawn();
  cleanups.push(() => c.release());
  return c;
}

describe('io_uring-pinned pages', () => {
  itKernel('EBUSY for a pinned page, and the move succeeds once the pin is released', () => {
    const { uffd, src, dst, s, d } = setup(1);
    const p = pin(src.address, PS);
    expect(p.released).toBe(false);

    const e = thrown(() => uffd.moveOnce(dst.address, src.address, PS));
    expect(e).toBeInstanceOf(MoveGcError);
    expect(e.code).toBe('EBUSY');
    expect(e.errno).toBe(16);
    expect(e.syscall).toBe('UFFDIO_MOVE');
    expect(e.bytesDone).toBe(0);
    expect(e.message).toMatch(/pinned/);
    // Refused means untouched: the page stays in the source, the destination stays empty.
    expect(dst.residentPages()).toBe(0);
    expect(mismatch(s, 0, 1, 11)).toBe(-1);

    p.release();
    expect(p.released).toBe(true);
    p.release(); // idempotent
    expect(uffd.moveOnce(dst.address, src.address, PS)).toBe(PS);
    expect(mismatch(d, 0, 1, 11)).toBe(-1);
    expect(src.residentPages()).toBe(0);
  });

  itKernel('partial progress: 4 pages with the 3rd pinned', () => {
    const { uffd, src, dst, s, d } = setup(4);
    pin(src.address + 2 * PS, PS);

    // What the kernel does (Linux 6.18, mm/userfaultfd.c move_pages): it moves page by page
    // and stops at the first error. Pages 0 and 1 move; page 2 fails with EBUSY; because
    // something moved, the ioctl returns -1/EAGAIN with uffdio_move.move = 2 pages (the
    // EBUSY is not reported on this call). The binding returns that short count from
    // moveOnce; calling again at the pinned page reports the EBUSY itself (move = -EBUSY,
    // nothing moved). Page 3, after the pin, is not attempted.
    expect(uffd.moveOnce(dst.address, src.address, 4 * PS)).toBe(2 * PS);
    expect(dst.residentPages()).toBe(2);
    expect(dst.residentPages(0, 2 * PS)).toBe(2);
    expect(src.residentPages()).toBe(2);
    expect(src.residentPages(2 * PS, 2 * PS)).toBe(2);
    expect(mismatch(d, 0, 2, 11)).toBe(-1);

    const again = thrown(() => uffd.moveOnce(dst.address + 2 * PS, src.address + 2 * PS, 2 * PS));
    expect(again.code).toBe('EBUSY');
    expect(again.bytesDone).toBe(0);
    expect(mismatch(s, 2, 2, 11)).toBe(-1); // pinned page and the one after it: still in the source
  });

  itKernel('move() continues after the short move and throws EBUSY with bytesDone = 2 pages', () => {
    const { uffd, src, dst, s, d } = setup(4);
    const p = pin(src.address + 2 * PS, PS);

    const e = thrown(() => uffd.move(dst.address, src.address, 4 * PS));
    expect(e).toBeInstanceOf(MoveGcError);
    expect(e.code).toBe('EBUSY');
    expect(e.errno).toBe(16);
    expect(e.bytesDone).toBe(2 * PS);
    expect(dst.residentPages()).toBe(2);
    expect(mismatch(d, 0, 2, 11)).toBe(-1);
    expect(mismatch(s, 2, 2, 11)).toBe(-1);

    // Resume where it stopped once the pin is gone.
    p.release();
    const done = e.bytesDone!;
    expect(uffd.move(dst.address + done, src.address + done, 4 * PS - done)).toBe(2 * PS);
    expect(mismatch(d, 0, 4, 11)).toBe(-1);
    expect(src.residentPages()).toBe(0);
  });
});

describe('pages shared with a forked child', () => {
  itKernel('EBUSY after fork when the mapping lacks MADV_DONTFORK', () => {
    const { uffd, src, dst, s, d } = setup(2);
    const child = spawnChild();
    expect(child.pid).toBeGreaterThan(0);

    const e = thrown(() => uffd.moveOnce(dst.address, src.address, 2 * PS));
    expect(e.code).toBe('EBUSY');
    expect(e.errno).toBe(16);
    expect(e.bytesDone).toBe(0);
    expect(e.message).toMatch(/not exclusive|fork/);
    expect(dst.residentPages()).toBe(0);
    expect(mismatch(s, 0, 2, 11)).toBe(-1);

    child.release();
    // The pages stay marked shared until written again (copy-on-write makes them exclusive).
    expect(thrown(() => uffd.moveOnce(dst.address, src.address, PS)).code).toBe('EBUSY');
    fillPages(s, 2, 12);
    expect(uffd.moveOnce(dst.address, src.address, 2 * PS)).toBe(2 * PS);
    expect(mismatch(d, 0, 2, 12)).toBe(-1);
  });

  itKernel('MADV_DONTFORK keeps the pages exclusive: they move while the child lives', () => {
    const { uffd, src, dst, d } = setup(2, ['DONTFORK', 'NOHUGEPAGE']);
    const child = spawnChild();

    expect(uffd.moveOnce(dst.address, src.address, 2 * PS)).toBe(2 * PS);
    expect(mismatch(d, 0, 2, 11)).toBe(-1);
    expect(src.residentPages()).toBe(0);
    child.release();
  });
});

describe('releasing a forked child', () => {
  // Found by an API audit: release() closed the child's pipe and waited for it, and a stopped
  // child never reads the pipe's end. Run in a child process: a hang must not take the runner.
  itKernel('a child someone stopped (SIGSTOP) is released at once, and reaped', async () => {
    const out = await fixtureResult('stopped-child.mjs', [], 30_000);
    expect(out).toMatchObject({ alive: false });
  });
});

describe('forkHold with a record (the compactor forks through it: forkAtPage)', () => {
  itKernel('stores pid and fd in the record before it returns; a bad record forks nothing', async () => {
    // The compactor used to store them after the call: terminated while it forked (a fork
    // outlasts stallMs on a loaded VM), it left a child and a pipe no one released.
    const { native } = await import('../dist/gc/native.js');
    const kids = (): number => fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).length;
    const rec = new Int32Array(4);
    const before = kids();
    const r = native.pin.forkHold(rec, 1, 3);
    expect([rec[1], rec[3]]).toEqual([r.pid, r.fd]);
    expect(kids()).toBe(before + 1);
    native.pin.release(r.pid, r.fd);
    expect(kids()).toBe(before);
    for (const [args, code] of [
      [[new Uint32Array(4), 0, 1], 'ERR_INVALID_ARG_TYPE'],
      [[rec, 0, 0], 'ERR_OUT_OF_RANGE'],
      [[rec, 0, 4], 'ERR_OUT_OF_RANGE'],
      [[rec, -1, 2], 'ERR_OUT_OF_RANGE'],
      [[rec, 0.5, 2], 'ERR_OUT_OF_RANGE'],
    ] as const)
      expect(thrown(() => native.pin.forkHold(...(args as unknown as [Int32Array, number, number]))).code, JSON.stringify(args.slice(1))).toBe(code);
    expect(kids()).toBe(before);
  });
});
