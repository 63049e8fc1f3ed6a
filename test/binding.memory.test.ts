/**
 * Mappings and descriptors: what they are while open (views over the same memory, entries in
 * /proc/self/maps and /proc/self/fd) and that closing really releases them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import {
  HUGE_PAGE_SIZE, Mapping, MoveGcError, PAGE_SIZE, Userfaultfd, madvise, remapDontUnmap, viewOf,
} from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { native } from '../dist/gc/native.js';
import { thrown } from './helpers/thrown.js';

const PS = PAGE_SIZE;


/** [start, end) of every line of /proc/self/maps. */
function maps(): Array<[number, number]> {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [a, b] = l.split(' ')[0]!.split('-');
      return [parseInt(a!, 16), parseInt(b!, 16)] as [number, number];
    });
}
const covered = (addr: number, len: number): boolean => maps().some(([s, e]) => s <= addr && e >= addr + len);
const overlapping = (addr: number, len: number): boolean => maps().some(([s, e]) => s < addr + len && e > addr);

const UFFD_LINK = 'anon_inode:[userfaultfd]';
function fdLink(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
function countUffds(): number {
  let n = 0;
  for (const name of fs.readdirSync('/proc/self/fd')) if (fdLink(Number(name)) === UFFD_LINK) n++;
  return n;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function map(len: number, opts?: Parameters<typeof Mapping.anonymous>[1]): Mapping {
  const m = Mapping.anonymous(len, opts);
  cleanups.push(() => m.close());
  return m;
}

describe('mappings', () => {
  it('are private anonymous memory at the requested alignment, seen through views that share it', () => {
    const m = map(3 * PS, { alignment: HUGE_PAGE_SIZE });
    expect(m.address % HUGE_PAGE_SIZE).toBe(0);
    expect(m.length).toBe(3 * PS);
    expect(covered(m.address, m.length)).toBe(true);
    expect(m.residentPages()).toBe(0);

    const whole = new Uint8Array(m.view());
    const tail = new Uint8Array(m.view(2 * PS, PS));
    expect(whole.length).toBe(3 * PS);
    expect(tail.length).toBe(PS);
    whole[2 * PS + 5] = 77;
    expect(tail[5]).toBe(77);
    tail[PS - 1] = 99;
    expect(whole[3 * PS - 1]).toBe(99);
    // Writes fault pages in: only the third page so far.
    expect(m.residentPages()).toBe(1);
    expect(m.residentPages(2 * PS, PS)).toBe(1);
    // viewOf (for Workers) reaches the same memory by address.
    const other = new Uint8Array(viewOf(m.address + 2 * PS, PS));
    expect(other[5]).toBe(77);
    other[6] = 55;
    expect(whole[2 * PS + 6]).toBe(55);
  });

  it('MADV_DONTNEED drops pages: they read as zeros again', () => {
    const m = map(4 * PS);
    const u8 = new Uint8Array(m.view());
    u8.fill(0xee);
    expect(m.residentPages()).toBe(4);
    m.advise('DONTNEED', PS, 2 * PS);
    expect(m.residentPages()).toBe(2);
    expect(u8[PS]).toBe(0);
    expect(u8[3 * PS - 1]).toBe(0);
    expect(u8[PS - 1]).toBe(0xee);
    expect(u8[3 * PS]).toBe(0xee);
    madvise(m.address, PS, 'DONTNEED');
    expect(u8[0]).toBe(0);
  });

  it('remapDontUnmap moves the pages to the target and leaves the old range mapped and empty', () => {
    const from = map(2 * PS);
    const to = map(2 * PS);
    const f = new Uint8Array(from.view());
    const t = new Uint8Array(to.view());
    f.fill(0x42);
    t.fill(0x17);
    remapDontUnmap(from.address, 2 * PS, to.address);
    expect(covered(from.address, from.length)).toBe(true);
    expect(from.residentPages()).toBe(0);
    expect(to.residentPages()).toBe(2);
    // The old views still point at the same addresses: the target now holds the old contents.
    expect(t[0]).toBe(0x42);
    expect(t[2 * PS - 1]).toBe(0x42);
    expect(f[0]).toBe(0);
  });

  it('close() unmaps the range, detaches every view, and later use is ERR_CLOSED; double close is harmless', () => {
    const len = 13 * PS; // an odd size, unlikely to be re-mapped at the same place by chance
    const m = Mapping.anonymous(len, { advise: ['NOHUGEPAGE'] });
    const views = [m.view(), m.view(PS, 2 * PS), m.view(12 * PS)];
    const bytes = new Uint8Array(views[0]!);
    bytes.fill(1);
    expect(covered(m.address, len)).toBe(true);
    expect(views.map((v) => v.byteLength)).toEqual([len, 2 * PS, PS]);

    m.close();

    expect(m.closed).toBe(true);
    expect(overlapping(m.address, len)).toBe(false);
    expect(views.map((v) => v.byteLength)).toEqual([0, 0, 0]);
    // Nothing left to read or write through a stale view (no access to unmapped memory).
    expect(bytes.length).toBe(0);
    expect(bytes[0]).toBeUndefined();
    expect(() => new Uint8Array(views[1]!)).toThrow(TypeError);
    for (const op of [() => m.view(), () => m.advise('DONTNEED'), () => m.residentPages()]) {
      const e = thrown(op);
      expect(e).toBeInstanceOf(MoveGcError);
      expect(e.code).toBe('ERR_CLOSED');
    }
    expect(() => m.close()).not.toThrow();
    expect(overlapping(m.address, len)).toBe(false);
  });

  it('views cannot be transferred (postMessage, structuredClone copy them), so close() reaches every view over the range', () => {
    const m = map(4 * PS);
    const ab = m.view();
    new Uint8Array(ab)[0] = 7;
    const copy = structuredClone(ab, { transfer: [ab] });
    expect(ab.byteLength).toBe(4 * PS); // still ours: it was copied, not moved
    new Uint8Array(ab)[0] = 8;
    expect(new Uint8Array(copy)[0]).toBe(7); // a copy: not the mapping's memory
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(ab, [ab]);
    port1.close();
    port2.close();
    expect(ab.byteLength).toBe(4 * PS);
    const other = viewOf(m.address, PS);
    structuredClone(other, { transfer: [other] });
    expect(other.byteLength).toBe(PS);
    m.close();
    expect(ab.byteLength).toBe(0);
    expect(new Uint8Array(copy)[0]).toBe(7); // the copy lives on, over its own memory
  });

  it('a Mapping is made by Mapping.anonymous() only; advice is known by its own names only', () => {
    const m = map(PS);
    const Ctor = Mapping as unknown as new (...a: unknown[]) => Mapping;
    expect(thrown(() => new Ctor(m.address, 64 * PS)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => new Ctor('x', PS)).code).toBe('ERR_INVALID_ARG_TYPE');
    for (const bad of ['toString', 'hasOwnProperty', '__proto__', 5, null]) {
      expect(thrown(() => m.advise(bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => madvise(m.address, PS, bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    }
  });
});

describe('countLines (the pause counts /proc/self/maps with it: map-count.ts)', () => {
  it('counts the newlines of a file read to its end, past one read buffer; -1 where it cannot be read; a typed error for a non-string', () => {
    const dir = fs.mkdtempSync('/tmp/movegc-lines-');
    try {
      const f = `${dir}/lines`;
      fs.writeFileSync(f, 'x\n'.repeat(50_000) + 'no newline at the end'); // 100 KB: more than one 64 KiB read
      expect(native.countLines(f)).toBe(50_000);
      fs.writeFileSync(f, '');
      expect(native.countLines(f)).toBe(0);
      expect(native.countLines(`${dir}/none`)).toBe(-1);
      expect(native.countLines(dir)).toBe(-1); // a directory opens, and its read fails (EISDIR)
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
    const maps = fs.readFileSync('/proc/self/maps', 'latin1').split('\n').length - 1;
    expect(Math.abs(native.countLines('/proc/self/maps') - maps)).toBeLessThan(8); // (mappings may come and go between the two reads)
    for (const bad of [5, null, undefined, { toString: () => '/proc/self/maps' }]) expect(thrown(() => native.countLines(bad as never)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe("the addon's record of the mappings it made (native/owned.cc)", () => {
  // A Worker that ends without close() has the addon unmap what it still owns: a range given
  // back in part must keep exactly its other parts, on either side (found by a mutation audit:
  // dropping the tail went unnoticed).
  it('munmap of a head, a middle and a tail keeps exactly the parts left', () => {
    const P = 4096;
    const n0 = native.ownedCount();
    const m = native.mapAnonymous(8 * P, P);
    expect(native.ownedCount()).toBe(n0 + 1);
    native.munmap(m, P); // the head: [1, 8) left
    expect(native.ownedCount()).toBe(n0 + 1);
    native.munmap(m + 3 * P, 2 * P); // the middle: [1, 3) and [5, 8)
    expect(native.ownedCount()).toBe(n0 + 2);
    native.munmap(m + 7 * P, P); // a tail: [1, 3) and [5, 7)
    expect(native.ownedCount()).toBe(n0 + 2);
    native.munmap(m + 5 * P, 2 * P);
    native.munmap(m + P, 2 * P);
    expect(native.ownedCount()).toBe(n0);
  });
});

describe('userfaultfd descriptors', () => {
  itKernel('close() releases the descriptor: it leaves /proc/self/fd; later use is ERR_CLOSED; double close is harmless', () => {
    const before = countUffds();
    const u = Userfaultfd.open({ features: ['MOVE'] });
    expect(u.has('MOVE')).toBe(true);
    expect(fdLink(u.fd)).toBe(UFFD_LINK);
    expect(countUffds()).toBe(before + 1);
    const m = map(2 * PS);
    u.register(m.address, PS);

    u.close();

    expect(u.closed).toBe(true);
    expect(fdLink(u.fd)).not.toBe(UFFD_LINK); // gone (or, at worst, reused by something else)
    expect(countUffds()).toBe(before);
    const out = new Float64Array(4);
    const ops = [
      () => u.register(m.address, PS),
      () => u.unregister(m.address, PS),
      () => u.moveOnce(m.address, m.address + PS, PS),
      () => u.move(m.address, m.address + PS, PS),
      () => u.copy(m.address, m.address + PS, PS),
      () => u.zeropage(m.address, PS),
      () => u.wake(m.address, PS),
      () => u.readFaults(out, 0),
    ];
    for (const op of ops) {
      const e = thrown(op);
      expect(e).toBeInstanceOf(MoveGcError);
      expect(e.code).toBe('ERR_CLOSED');
    }
    expect(() => u.close()).not.toThrow();
    expect(countUffds()).toBe(before);
    // The registration died with the descriptor: the page no longer faults, it reads zeros.
    expect(new Uint8Array(m.view(0, PS))[0]).toBe(0);
  }, ['uffd']);

  itKernel('an adopted handle does not own the descriptor: closing it leaves the fd open', () => {
    const u = Userfaultfd.open({ features: ['MOVE'] });
    const a = Userfaultfd.adopt(u.fd, u.features);
    expect(a.has('MOVE')).toBe(true);
    a.close();
    expect(a.closed).toBe(true);
    expect(thrown(() => a.readFaults(new Float64Array(1))).code).toBe('ERR_CLOSED');
    expect(fdLink(u.fd)).toBe(UFFD_LINK);
    expect(u.readFaults(new Float64Array(1), 0)).toBe(0); // still usable through its owner
    u.close();
    expect(fdLink(u.fd)).not.toBe(UFFD_LINK);
  }, ['uffd']);
  itKernel('adopt() takes a non-blocking userfaultfd only; the constructor is not for callers', () => {
    // A blocking descriptor (readFaults(out, 0) would block on it) and a non-blocking regular
    // file (its bytes would be read as fault messages).
    const [r, w] = [fs.openSync('/dev/null', 'r'), fs.openSync(process.execPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)];
    try {
      for (const fd of [r, w]) expect(thrown(() => Userfaultfd.adopt(fd, 0)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => Userfaultfd.adopt(0x7ffffff0, 0)).code).toBe('ERR_INVALID_ARG_TYPE'); // not open
      const u = Userfaultfd.open();
      const Ctor = Userfaultfd as unknown as new (...a: unknown[]) => Userfaultfd;
      expect(thrown(() => new Ctor(r, 0, true)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(fs.fstatSync(r).isCharacterDevice()).toBe(true); // and r was not closed by it
      u.close();
    } finally {
      fs.closeSync(r);
      fs.closeSync(w);
    }
  }, ['uffd']);
});
