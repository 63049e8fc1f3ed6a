/**
 * What TypeScript calls readonly or private is so from JavaScript too (found by a hostile-caller
 * audit, each against the real kernel):
 *  - heap.log is the collector's own logger, called inside its pauses: its info replaced by a
 *    function that throws left a cycle flipped and never compacted, and the next access to the
 *    heap waited for ever; heap.log = null made close() throw a plain TypeError;
 *  - new IoUringPin(address, length, fd) and new ForkedChild(pid, fd) were accepted (their
 *    constructors are private in TypeScript only), and release() closed the descriptor: the
 *    heap's own userfaultfd, then EBADF from every gc() and from close();
 *  - Mapping.address / length and Userfaultfd.fd were writable: view() over 1 GiB of a 4 KiB
 *    mapping (a SIGSEGV at the first read), close() of another mapping or descriptor;
 *  - the exported tables were not frozen: after MODES.push('bogus'), Heap.create({ mode:
 *    'bogus' }) ran.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, ForkedChild, Heap, IoUringPin, Mapping, Marking, Mode, MODES, PAGE_SIZE, Userfaultfd } from '../dist/gc/index.js';
import { native } from '../dist/gc/native.js';
import { itKernel } from './kernel.js';
import { closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';
import { thrown } from './helpers/thrown.js';

closeHeapsAfterEach();

/** A strict-mode assignment that must be refused (TypeError) and change nothing. */
function refusedWrite(obj: object, key: string, value: unknown): void {
  const before = (obj as Record<string, unknown>)[key];
  expect(() => {
    (obj as Record<string, unknown>)[key] = value;
  }, `${key} written`).toThrow(TypeError);
  expect((obj as Record<string, unknown>)[key]).toBe(before);
}

const openFds = (): string[] => fs.readdirSync('/proc/self/fd');

describe('the heap and its logger', () => {
  for (const mode of ['move', 'copy', 'stw'] as const)
    itMode(mode, `${mode}: heap.log and the heap's fields cannot be replaced; the heap collects on`, async () => {
      const h = await openHeap({ capacity: 8 << 20, mode });
      const T = h.defineType({ name: 'T', refs: 1, bytes: 8 });
      const r = h.root(h.alloc(T));
      h.setU32(r.get()!, 0, 42);
      for (const m of ['debug', 'info', 'warn', 'error']) refusedWrite(h.log, m, () => {
        throw new Error('boom');
      });
      expect(() => delete (h.log as unknown as Record<string, unknown>).info).toThrow(TypeError);
      refusedWrite(h, 'log', null);
      refusedWrite(h, 'mode', 'stw');
      refusedWrite(h, 'capacity', 1 << 40);
      refusedWrite(h, 'marking', Marking.PAUSE);
      for (let i = 0; i < 2; i++) await h.gc();
      expect(h.cycleActive).toBe(false);
      expect(h.getU32(r.get()!, 0)).toBe(42);
      expect(h.verify().ok).toBe(true);
      await h.close();
      expect(h.closed).toBe(true);
    });
});

describe('objects made only by their factories', () => {
  it('new IoUringPin(...) and new ForkedChild(...) from JavaScript are refused, and close nothing', () => {
    const fds = openFds();
    const m = Mapping.anonymous(PAGE_SIZE);
    try {
      const any = (c: unknown) => c as new (...a: unknown[]) => { release(): void };
      // A descriptor this process has open (stdin's, or any): release() would have closed it.
      const fd = Number(fds[0]);
      expect(thrown(() => new (any(IoUringPin))(m.address, PAGE_SIZE, fd)).code).toBe(ErrorCode.INVALID_ARG_TYPE);
      expect(thrown(() => new (any(IoUringPin))(Symbol('IoUringPin'), m.address, PAGE_SIZE, fd, false)).code).toBe(ErrorCode.INVALID_ARG_TYPE);
      expect(thrown(() => new (any(ForkedChild))(process.pid, fd)).code).toBe(ErrorCode.INVALID_ARG_TYPE);
      expect(openFds()).toEqual(expect.arrayContaining(fds));
    } finally {
      m.close();
    }
  });

  it('native pin.unpin of a descriptor that is no pinned ring: EBADF, and the descriptor stays open', () => {
    const fd = fs.openSync('/dev/null', 'r');
    try {
      expect(thrown(() => native.pin.unpin(fd)).code).toBe('EBADF');
      expect(fs.fstatSync(fd).isCharacterDevice()).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("a Mapping's address and length cannot be changed: view() and close() act on its own pages", () => {
    const a = Mapping.anonymous(PAGE_SIZE);
    const b = Mapping.anonymous(PAGE_SIZE);
    try {
      refusedWrite(a, 'address', b.address);
      refusedWrite(a, 'length', 1 << 30);
      expect(a.view().byteLength).toBe(PAGE_SIZE);
      a.close();
      new Uint8Array(b.view())[0] = 7; // b is still mapped
      expect(new Uint8Array(b.view())[0]).toBe(7);
    } finally {
      b.close();
    }
  });

  itKernel("a Userfaultfd's fd cannot be changed: close() closes its own descriptor", () => {
    const a = Userfaultfd.open();
    const b = Userfaultfd.open();
    try {
      refusedWrite(a, 'fd', b.fd);
      refusedWrite(a, 'features', 0);
      a.close();
      expect(native.uffd.describe(b.fd).open).toBe(true);
    } finally {
      b.close();
    }
  }, ['uffd']);
});

describe('the exported tables', () => {
  it('are frozen: a mode pushed or renamed from outside changes nothing the heap accepts', async () => {
    expect(() => (MODES as string[]).push('bogus')).toThrow(TypeError);
    refusedWrite(Mode, 'MOVE', 'bogus');
    refusedWrite(ErrorCode, 'CLOSED', 'ERR_OTHER');
    expect(MODES).toEqual(['move', 'copy', 'stw']);
    const e = await Heap.create({ capacity: 8 << 20, mode: 'bogus' as never }).then(
      async (h) => {
        await h.close();
        return null;
      },
      (err: { code?: string }) => err,
    );
    expect(e?.code).toBe(ErrorCode.INVALID_ARG_TYPE);
  });
});

// A lifecycle audit: the heap's /proc/self/statm descriptor closed behind its back made close()
// throw EBADF before it closed the userfaultfd and unmapped both mappings (kept for the
// process's life, close() not retryable); with that number reused by a file of the program's,
// close() closed the program's file. Every step of close() is taken now, and only a
// descriptor that still is the heap's statm is closed.
describe("close() when the program closed one of the heap's descriptors", () => {
  const statmFds = (): number[] =>
    fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('/statm');
      } catch {
        return false;
      }
    }).map(Number);
  const userfaultfds = (): number =>
    fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).includes('userfaultfd');
      } catch {
        return false;
      }
    }).length;
  for (const reuse of [false, true])
    itMode('move', `its statm descriptor closed${reuse ? ', its number reused by a file of the program' : ''}: close() releases the rest and leaves the program's file open`, async () => {
      const before = { statm: statmFds(), uffds: userfaultfds(), owned: native.ownedCount() };
      const h = await Heap.create({ capacity: 8 << 20, mode: 'move' });
      const mine = statmFds().filter((fd) => !before.statm.includes(fd));
      expect(mine.length).toBe(1);
      fs.closeSync(mine[0]);
      const file = reuse ? fs.openSync('/dev/null', 'r') : -1;
      try {
        if (reuse) expect(file).toBe(mine[0]);
        await h.close();
        expect(h.closed).toBe(true);
        expect(userfaultfds()).toBe(before.uffds);
        expect(native.ownedCount()).toBe(before.owned); // the mappings and the userfaultfd
        if (reuse) expect(fs.fstatSync(file).isCharacterDevice()).toBe(true);
      } finally {
        if (file >= 0) fs.closeSync(file);
      }
    });
});
