/**
 * io_uring fixed-buffer reads (native/uring.cc) into a pinned range: IORING_REGISTER_BUFFERS
 * plus IORING_OP_READ_FIXED, for real. The bytes must come from the file, the range must be
 * really pinned (UFFDIO_MOVE refuses it), and through the heap's pin API the read must land in
 * the heap object even across a compaction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Heap, IoUringPin, Mapping, MoveGcError, PAGE_SIZE, Userfaultfd } from '../dist/gc/index.js';
import { native } from '../dist/gc/native.js';
import { itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';
import { fixtureResult } from './helpers/child.js';

const PS = PAGE_SIZE;
const FILE_BYTES = 256 * 1024;
let dir: string;
let file: string;
let fd: number;
let content: Buffer;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-uring-'));
  file = path.join(dir, 'data.bin');
  content = Buffer.alloc(FILE_BYTES);
  let x = 0x12345678;
  for (let i = 0; i < FILE_BYTES; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    content[i] = x >>> 24 || 1; // never zero: a zero byte would pass for "not written"
  }
  fs.writeFileSync(file, content);
  fd = fs.openSync(file, 'r');
});
afterAll(() => {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});


describe('IoUringPin.readFixed', () => {
  it('reads a file into the registered range at the requested offsets, and nowhere else', () => {
    const m = Mapping.anonymous(16 * PS, { advise: ['NOHUGEPAGE'] });
    cleanups.push(() => m.close());
    const u8 = new Uint8Array(m.view());
    const pin = IoUringPin.pin(m.address, 16 * PS, { io: true });
    cleanups.push(() => pin.release());
    expect(pin.io).toBe(true);

    expect(pin.readFixed(fd, 0, 4 * PS, 0)).toBe(4 * PS);
    expect(Buffer.compare(Buffer.from(u8.subarray(0, 4 * PS)), content.subarray(0, 4 * PS))).toBe(0);
    // Unaligned file offset, buffer offset and length.
    expect(pin.readFixed(fd, 12345, 10000, 5 * PS + 100)).toBe(10000);
    expect(Buffer.compare(Buffer.from(u8.subarray(5 * PS + 100, 5 * PS + 10100)), content.subarray(12345, 22345))).toBe(0);
    // Bytes outside the two reads were not touched.
    expect(u8.subarray(4 * PS, 5 * PS + 100).every((b) => b === 0)).toBe(true);
    expect(u8.subarray(5 * PS + 10100).every((b) => b === 0)).toBe(true);
    // A read past the end of the file is short, as read(2) is.
    expect(pin.readFixed(fd, FILE_BYTES - 1000, 4096, 12 * PS)).toBe(1000);
  });

  itKernel('the range is really pinned: UFFDIO_MOVE of it is EBUSY until release', () => {
    const uffd = Userfaultfd.open({ features: ['MOVE'] });
    const src = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    const dst = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    cleanups.push(() => {
      src.close();
      dst.close();
      uffd.close();
    });
    uffd.register(dst.address, PS);
    const pin = IoUringPin.pin(src.address, PS, { io: true });
    expect(pin.readFixed(fd, 0, PS)).toBe(PS);
    expect(thrown(() => uffd.moveOnce(dst.address, src.address, PS)).code).toBe('EBUSY');
    pin.release();
    expect(pin.released).toBe(true);
    expect(uffd.moveOnce(dst.address, src.address, PS)).toBe(PS);
    expect(Buffer.compare(Buffer.from(new Uint8Array(dst.view())), content.subarray(0, PS))).toBe(0);
  });

  // An API audit: a read from a pipe nobody writes to, or from the ring's own descriptor,
  // blocked the calling thread forever. Each read is linked to a timeout now. In a child
  // process: a regression would block this one in the native call.
  it('a read that never completes is cancelled at its timeout (ETIME), and the ring reads again afterwards', async () => {
    const out = await fixtureResult('uring-timeout.mjs', [file], 30_000);
    expect(out).toEqual({ error: { code: 'ETIME', syscall: 'IORING_OP_READ_FIXED' }, fileBytes: PS, fileSame: true, fifoBytes: 5 });
    const m = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    cleanups.push(() => m.close());
    const pin = IoUringPin.pin(m.address, PS, { io: true });
    cleanups.push(() => pin.release());
    for (const t of [0, -1, 1.5, 3_600_001, 'x', null]) expect(thrown(() => pin.readFixed(fd, 0, 16, 0, t as never)).code).toMatch(/^ERR_(OUT_OF_RANGE|INVALID_ARG_TYPE)$/);
  });

  it("one thread's read waiting on its ring does not hold another thread's pins and reads", async () => {
    const out = await fixtureResult('uring-two-threads.mjs', [], 30_000);
    expect(out).toEqual({ mainPinned: true, worker: { bytes: 5 } });
  });

  it('a ring closed while another thread reads it: the pin stays releasable, and a torn-down owner\'s ring closes when the read ends', async () => {
    const out = await fixtureResult('uring-close-busy.mjs', [], 30_000);
    expect(out).toEqual({ midRead: 'EBUSY', releasedMidRead: false, readEnded: 'ETIME', releasedAfter: true, ringClosedAfter: true, mainRead: 'ETIME', ownerGoneRingClosed: true, owned: 0 });
  });

  it('misuse fails with codes before or from the kernel', () => {
    const m = Mapping.anonymous(2 * PS, { advise: ['NOHUGEPAGE'] });
    cleanups.push(() => m.close());
    const plain = IoUringPin.pin(m.address, PS);
    cleanups.push(() => plain.release());
    expect(plain.io).toBe(false);
    expect(thrown(() => plain.readFixed(fd, 0, 16)).code).toBe('ERR_UNSUPPORTED');

    const pin = IoUringPin.pin(m.address + PS, PS, { io: true });
    expect(thrown(() => pin.readFixed(fd, 0, 16, PS - 8)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => pin.readFixed(fd, 0, 0)).code).toBe('ERR_OUT_OF_RANGE');
    // The binding's own range check, under the typed layer's (which refuses such a read first):
    // a read past or before the ring's buffer (a mutation audit: nothing reached it).
    const ring = native.uring.setup(m.address + PS, PS);
    try {
      expect(thrown(() => native.uring.readFixed(ring, fd, 0, 16, m.address + 2 * PS - 8, 1000)).code).toBe('ERR_OUT_OF_RANGE');
      expect(thrown(() => native.uring.readFixed(ring, fd, 0, 16, m.address, 1000)).code).toBe('ERR_OUT_OF_RANGE');
    } finally {
      native.uring.close(ring);
    }
    const bad = thrown(() => pin.readFixed(0x7ffffff0, 0, 16));
    expect(bad.code).toBe('EBADF');
    expect(bad.syscall).toBe('IORING_OP_READ_FIXED');
    pin.release();
    expect(thrown(() => pin.readFixed(fd, 0, 16)).code).toBe('ERR_CLOSED');
  });
});

describe('reads into a heap object pinned with heap.pin', () => {
  itKernel('land in the object before, during and after a compaction that moves its neighbours', async () => {
    // The buffer's placement is laid out by hand below (contents on a page, not its header).
    const heap = await Heap.create({ capacity: 8 << 20, mode: 'move', largeObjectBytes: 0 });
    cleanups.push(() => heap.close());
    const T = heap.defineType({ name: 'Item', refs: 1, bytes: 8 });
    // Garbage below the buffer, so that compaction slides everything above it.
    for (let i = 0; i < 20000; i++) heap.alloc(T);
    const list = heap.root(null);
    for (let i = 0; i < 2000; i++) {
      const it = heap.alloc(T);
      heap.setU32(it, 0, i);
      heap.setRef(it, 0, list.get());
      list.set(it);
      heap.alloc(T); // dead neighbour
    }
    // A 64 KiB byte array whose contents start on a page boundary.
    const gap = (PS - ((heap.usedBytes + 8) % PS)) % PS;
    if (gap) heap.allocBytes(gap - 8);
    const buf = heap.allocBytes(16 * PS);
    expect((heap.addressOf(buf) + 8) % PS).toBe(0);
    const pin = heap.pin(buf);
    const address = pin.address;
    const io = IoUringPin.pin(address + 8, 16 * PS, { io: true });
    cleanups.push(() => io.release());
    for (let i = 0; i < 2000; i++) heap.alloc(T); // garbage above it too

    expect(io.readFixed(fd, 0, 16 * PS)).toBe(16 * PS);
    expect(Buffer.compare(Buffer.from(heap.readBytes(pin.ref, 0, 16 * PS)), content.subarray(0, 16 * PS))).toBe(0);

    const before = heap.usedBytes;
    const stats = await heap.collect();
    expect(stats.pinnedSpans).toBe(1);
    expect(stats.reclaimedBytes).toBeGreaterThan(0);
    // During the concurrent compaction.
    expect(io.readFixed(fd, 16 * PS, 16 * PS)).toBe(16 * PS);
    expect(Buffer.compare(Buffer.from(heap.readBytes(pin.ref, 0, 16 * PS)), content.subarray(16 * PS, 32 * PS))).toBe(0);
    const done = (await heap.idle())!;
    expect(heap.usedBytes).toBeLessThan(before);
    expect(done.ebusy).toBe(0);
    expect(pin.address).toBe(address);
    expect(heap.addressOf(pin.ref)).toBe(address);
    // After it.
    expect(io.readFixed(fd, 32 * PS, 16 * PS)).toBe(16 * PS);
    expect(Buffer.compare(Buffer.from(heap.readBytes(pin.ref, 0, 16 * PS)), content.subarray(32 * PS, 48 * PS))).toBe(0);
    // The live list survived the slide.
    let n = 0;
    for (let it = list.get(); it !== null; it = heap.getRef(it, 0)) expect(heap.getU32(it, 0)).toBe(1999 - n++);
    expect(n).toBe(2000);
    expect(heap.verify().ok).toBe(true);
  });
});
