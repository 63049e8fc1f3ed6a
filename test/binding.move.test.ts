/**
 * UFFDIO_MOVE (and COPY/ZEROPAGE) through the typed binding, against the real kernel:
 * contents carried, sources left empty, and the kernel's refusals (EEXIST, ENOENT, EINVAL)
 * surfaced as typed errors with errno and progress.
 */
import { afterEach, describe, expect } from 'vitest';
import fs from 'node:fs';
import { HUGE_PAGE_SIZE, Mapping, MoveGcError, PAGE_SIZE, Userfaultfd, probe } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';

const PS = PAGE_SIZE;
const patternByte = (tag: number, page: number, i: number): number => (tag * 131 + page * 17 + i * 7 + 1) & 0xff;

function fillPages(u8: Uint8Array, firstPage: number, pages: number, tag: number): void {
  for (let p = firstPage; p < firstPage + pages; p++) for (let i = 0; i < PS; i++) u8[p * PS + i] = patternByte(tag, p, i);
}

/** Index of the first byte of pages [firstPage, +pages) of `u8` not matching the pattern of `tag` (page numbers shifted by `shift`), or -1. */
function mismatch(u8: Uint8Array, firstPage: number, pages: number, tag: number, shift = 0): number {
  for (let p = firstPage; p < firstPage + pages; p++)
    for (let i = 0; i < PS; i++) if (u8[p * PS + i] !== patternByte(tag, p + shift, i)) return p * PS + i;
  return -1;
}

function zeroRun(u8: Uint8Array, from: number, len: number): boolean {
  for (let i = from; i < from + len; i++) if (u8[i] !== 0) return false;
  return true;
}


const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function uffdOpen(): Userfaultfd {
  const u = Userfaultfd.open({ features: ['MOVE'] });
  cleanups.push(() => u.close());
  return u;
}
function map(len: number, opts: Parameters<typeof Mapping.anonymous>[1] = { advise: ['NOHUGEPAGE'] }): Mapping {
  const m = Mapping.anonymous(len, opts);
  cleanups.push(() => m.close());
  return m;
}

describe('MOVE carries contents', () => {
  for (const pages of [1, 7, 64]) {
    itKernel(`${pages} page(s) in one call: destination gets the data, source is left reading zeros`, () => {
      const u = uffdOpen();
      const src = map(pages * PS);
      const dst = map(pages * PS);
      const s = new Uint8Array(src.view());
      const d = new Uint8Array(dst.view());
      fillPages(s, 0, pages, pages);
      expect(u.register(dst.address, dst.length)).toContain('MOVE');
      expect(src.residentPages()).toBe(pages);
      expect(dst.residentPages()).toBe(0);

      expect(u.moveOnce(dst.address, src.address, pages * PS)).toBe(pages * PS);

      // Pages changed owner: none left in the source, all in the destination.
      expect(src.residentPages()).toBe(0);
      expect(dst.residentPages()).toBe(pages);
      expect(mismatch(d, 0, pages, pages)).toBe(-1);
      expect(zeroRun(s, 0, pages * PS)).toBe(true);
    });
  }

  itKernel('move() into the middle of a larger registered destination, at an offset from the source', () => {
    const u = uffdOpen();
    const src = map(8 * PS);
    const dst = map(16 * PS);
    const s = new Uint8Array(src.view());
    const d = new Uint8Array(dst.view());
    fillPages(s, 0, 8, 9);
    u.register(dst.address, dst.length);
    // Source pages 2..5 -> destination pages 10..13.
    expect(u.move(dst.address + 10 * PS, src.address + 2 * PS, 4 * PS)).toBe(4 * PS);
    expect(dst.residentPages()).toBe(4);
    expect(dst.residentPages(10 * PS, 4 * PS)).toBe(4);
    expect(mismatch(d, 10, 4, 9, -8)).toBe(-1);
    // Untouched source pages keep their data; moved ones read zeros.
    expect(mismatch(s, 0, 2, 9)).toBe(-1);
    expect(mismatch(s, 6, 2, 9)).toBe(-1);
    expect(zeroRun(s, 2 * PS, 4 * PS)).toBe(true);
    u.unregister(dst.address, dst.length);
    expect(zeroRun(d, 0, 10 * PS)).toBe(true);
  });

  itKernel('COPY leaves the source intact; ZEROPAGE maps zeros; both only on registered destinations', () => {
    const u = uffdOpen();
    const src = map(4 * PS);
    const dst = map(8 * PS);
    const s = new Uint8Array(src.view());
    const d = new Uint8Array(dst.view());
    fillPages(s, 0, 4, 5);
    u.register(dst.address, dst.length);
    expect(u.copy(dst.address, src.address, 4 * PS)).toBe(4 * PS);
    expect(u.zeropage(dst.address + 4 * PS, 4 * PS)).toBe(4 * PS);
    expect(dst.residentPages()).toBe(8);
    expect(mismatch(d, 0, 4, 5)).toBe(-1);
    expect(mismatch(s, 0, 4, 5)).toBe(-1);
    expect(zeroRun(d, 4 * PS, 4 * PS)).toBe(true);
    // Copying over a populated page: EEXIST, like MOVE.
    const e = thrown(() => u.copy(dst.address, src.address, PS));
    expect(e.code).toBe('EEXIST');
  });
});

describe('kernel refusals', () => {
  itKernel('EEXIST when the destination page is already populated; nothing changes', () => {
    const u = uffdOpen();
    const src = map(2 * PS);
    const dst = map(2 * PS);
    const s = new Uint8Array(src.view());
    const d = new Uint8Array(dst.view());
    fillPages(s, 0, 2, 1);
    fillPages(d, 0, 1, 2); // destination page 0 populated before registration
    u.register(dst.address, dst.length);

    const e = thrown(() => u.moveOnce(dst.address, src.address, PS));
    expect(e).toBeInstanceOf(MoveGcError);
    expect(e.code).toBe('EEXIST');
    expect(e.errno).toBe(17);
    expect(e.syscall).toBe('UFFDIO_MOVE');
    expect(e.bytesDone).toBe(0);
    expect(e.message).toMatch(/already populated/);
    expect(mismatch(d, 0, 1, 2)).toBe(-1);
    expect(mismatch(s, 0, 2, 1)).toBe(-1);

    // move() over [populated, empty]: nothing moved before the populated page.
    const e2 = thrown(() => u.move(dst.address, src.address, 2 * PS));
    expect(e2.code).toBe('EEXIST');
    expect(e2.bytesDone).toBe(0);
    // The empty destination page still takes a move.
    expect(u.moveOnce(dst.address + PS, src.address + PS, PS)).toBe(PS);
    expect(mismatch(d, 1, 1, 1)).toBe(-1);
  });

  itKernel('ENOENT for a hole in the source; allowSrcHoles succeeds and leaves the destination missing there', () => {
    const u = uffdOpen();
    const src = map(3 * PS);
    const dst = map(3 * PS);
    const s = new Uint8Array(src.view(0, PS));
    const s2 = new Uint8Array(src.view(2 * PS, PS));
    fillPages(s, 0, 1, 4);
    s2.fill(0xab);
    u.register(dst.address, dst.length);
    expect(src.residentPages(PS, PS)).toBe(0); // page 1 is a hole

    // A hole first: nothing moves.
    const e = thrown(() => u.moveOnce(dst.address + PS, src.address + PS, PS));
    expect(e.code).toBe('ENOENT');
    expect(e.errno).toBe(2);
    expect(e.bytesDone).toBe(0);
    expect(e.message).toMatch(/hole/);

    // A hole after a present page: one page moved, then ENOENT with that progress.
    const e2 = thrown(() => u.move(dst.address, src.address, 2 * PS));
    expect(e2.code).toBe('ENOENT');
    expect(e2.bytesDone).toBe(PS);
    expect(dst.residentPages()).toBe(1);
    const d = new Uint8Array(dst.view());
    expect(mismatch(d, 0, 1, 4)).toBe(-1);

    // With allowSrcHoles the hole counts as done and the destination stays missing there.
    expect(u.move(dst.address + PS, src.address + PS, 2 * PS, { allowSrcHoles: true })).toBe(2 * PS);
    expect(dst.residentPages(PS, PS)).toBe(0);
    expect(dst.residentPages(2 * PS, PS)).toBe(1);
    expect(d[2 * PS]).toBe(0xab);
    expect(d[3 * PS - 1]).toBe(0xab);
    // Still missing: reading it now would fault. Unregister first, then it reads zeros.
    u.unregister(dst.address, dst.length);
    expect(zeroRun(d, PS, PS)).toBe(true);
  });

  itKernel('EINVAL with a clear message for unaligned addresses and zero length (before the kernel)', () => {
    const u = uffdOpen();
    const src = map(2 * PS);
    const dst = map(2 * PS);
    u.register(dst.address, dst.length);
    const cases: Array<[number, number, number, RegExp]> = [
      [dst.address + 1, src.address, PS, /destination: address 0x[0-9a-f]+ is not page aligned/],
      [dst.address, src.address + 8, PS, /source: address 0x[0-9a-f]+ is not page aligned/],
      [dst.address, src.address, PS + 1, /length 4097 is not a multiple of the page size/],
      [dst.address, src.address, 0, /length must not be zero/],
    ];
    for (const [d, s, len, msg] of cases) {
      for (const op of [() => u.moveOnce(d, s, len), () => u.move(d, s, len)]) {
        const e = thrown(op);
        expect(e).toBeInstanceOf(MoveGcError);
        expect(e.code).toBe('EINVAL');
        expect(e.errno).toBe(22); // the kernel's errno for it, as the native path gives...
        expect(e.cause).toBeUndefined(); // ...but caught by the typed layer: no native error underneath
        expect(e.message).toMatch(msg);
      }
    }
  });

  itKernel("EINVAL from the kernel for an unregistered destination, with the registration hint", () => {
    const u = uffdOpen();
    const src = map(PS);
    const dst = map(PS); // never registered
    const s = new Uint8Array(src.view());
    fillPages(s, 0, 1, 6);
    const e = thrown(() => u.moveOnce(dst.address, src.address, PS));
    expect(e).toBeInstanceOf(MoveGcError);
    expect(e.code).toBe('EINVAL');
    expect(e.errno).toBe(22);
    expect(e.syscall).toBe('UFFDIO_MOVE');
    expect(e.message).toMatch(/destination not registered/);
    // Nothing moved.
    expect(mismatch(s, 0, 1, 6)).toBe(-1);
    expect(dst.residentPages()).toBe(0);

    // Registered on a different userfaultfd counts as unregistered for this one.
    const other = uffdOpen();
    other.register(dst.address, dst.length);
    expect(thrown(() => u.moveOnce(dst.address, src.address, PS)).code).toBe('EINVAL');
    expect(other.moveOnce(dst.address, src.address, PS)).toBe(PS);
  });
});

/** AnonHugePages (kB) of the VMAs of /proc/self/smaps overlapping [start, end). */
function anonHugeKb(start: number, end: number): number {
  let sum = 0;
  let inRange = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) {
      inRange = parseInt(m[1]!, 16) < end && parseInt(m[2]!, 16) > start;
      continue;
    }
    const h = inRange && /^AnonHugePages:\s+(\d+) kB/.exec(line);
    if (h) sum += Number(h[1]);
  }
  return sum;
}

describe('transparent huge pages', () => {
  itKernel('an aligned 2 MiB THP moves whole, in one call, as one huge page', () => {
    const H = HUGE_PAGE_SIZE;
    const thpOn = probe().thp !== 'never';
    const u = uffdOpen();
    const m = map(2 * H, { alignment: H, advise: ['HUGEPAGE'] });
    expect(m.address % H).toBe(0);
    const srcAddr = m.address;
    const dstAddr = m.address + H;
    const s = new Uint8Array(m.view(0, H));
    fillPages(s, 0, H / PS, 8);
    if (thpOn) expect(anonHugeKb(srcAddr, srcAddr + H)).toBe(2048);
    else console.warn('[movegc] THP disabled (never): checking a 2 MiB move of small pages only');
    u.register(dstAddr, H);

    expect(u.moveOnce(dstAddr, srcAddr, H)).toBe(H);

    if (thpOn) {
      // Moved as one PMD: the destination now holds the huge page, unsplit.
      expect(anonHugeKb(dstAddr, dstAddr + H)).toBe(2048);
      expect(anonHugeKb(srcAddr, srcAddr + H)).toBe(0);
    }
    expect(m.residentPages(H, H)).toBe(H / PS);
    expect(m.residentPages(0, H)).toBe(0);
    const d = new Uint8Array(m.view(H, H));
    expect(mismatch(d, 0, H / PS, 8)).toBe(-1);
    expect(zeroRun(s, 0, H)).toBe(true);
  });
});
