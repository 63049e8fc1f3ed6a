/**
 * I/O into a heap object while the heap compacts: a 64 KiB byte array (its contents page
 * aligned) registered with io_uring (IORING_REGISTER_BUFFERS, a long-term pin of its pages)
 * and filled from a file by IORING_OP_READ_FIXED before, during and after compactions.
 *
 *  Run 1, with the pin API: heap.pin(buffer) tells the collector. Its pages are never
 *  remapped, compaction flows around them, and every read lands in the heap object.
 *
 *  Run 2, without it: the same io_uring registration, but the buffer is only rooted. The
 *  collector moves the object; the kernel refuses to MOVE the pinned pages (EBUSY) and the
 *  installer copies them instead. The heap object now lives in other pages, and a read issued
 *  after the compaction goes into the old pinned pages: the kernel reports success, the heap
 *  object never sees the bytes.
 *
 *   movegc example pinned-io [--file PATH] [--heap 32] [--mode move]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Heap, IoUringPin, PAGE_SIZE, type CycleStats, type ModeName, type Ref } from '../gc/index.js';
import { exampleLogger, exampleProvenance, modeArg, num, sideBySide, writeOut, type Args } from './common.js';
import { runWhenMain } from '../cli/main.js';

const BUF = 64 * 1024;
const log = exampleLogger('pinned-io');

interface ReadRecord {
  when: string;
  chunk: number;
  bytes: number;
  /** The file chunk the heap object holds right after the read (-1: none of those read). */
  holds: number;
  compacting: boolean;
}

interface RunResult {
  withPin: boolean;
  mode: ModeName;
  reads: ReadRecord[];
  addressBefore: number;
  addressAfter: number;
  cycles: CycleStats[];
  verifyOk: boolean;
}

async function run(withPin: boolean, fd: number, file: Buffer, mode: ModeName, capacity: number): Promise<RunResult> {
  const name = withPin ? 'with heap.pin' : 'without heap.pin';
  // largeObjectBytes 0: a 64 KiB array would otherwise be a large object, its header put on a
  // page boundary, and its contents 8 bytes past one (io_uring pins whole pages only).
  const heap = await Heap.create({ capacity, mode, largeObjectBytes: 0, logger: log.child({ run: name }, { level: process.env.MOVEGC_LOG ?? 'error' }) });
  const Item = heap.defineType({ name: 'Item', refs: 1, bytes: 8 });
  const list = heap.root(null);
  /** n live items in a list, each followed by a dead one: work for the compactor. */
  const layer = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const it = heap.alloc(Item);
      heap.setU32(it, 0, i);
      heap.setRef(it, 0, list.get());
      list.set(it);
      heap.alloc(Item);
    }
  };
  for (let i = 0; i < 10000; i++) heap.alloc(Item); // garbage below: the buffer slides down
  layer(20000);
  // The buffer's contents start on a page boundary (io_uring pins whole pages).
  const gap = (PAGE_SIZE - ((heap.usedBytes + 8) % PAGE_SIZE)) % PAGE_SIZE;
  if (gap) heap.allocBytes(gap - 8);
  const buf = heap.allocBytes(BUF);
  const pin = withPin ? heap.pin(buf) : null;
  const root = withPin ? null : heap.root(buf);
  const obj = (): Ref => (pin ? pin.ref : root!.get()!);
  const addressBefore = heap.addressOf(buf);
  const io = IoUringPin.pin(addressBefore + 8, BUF, { io: true });
  layer(50000); // live data above: the compactor recycles the buffer's old pages as its own buffers

  const chunks = Math.floor(file.length / BUF);
  const chunkOf = (k: number): Buffer => file.subarray((k % chunks) * BUF, (k % chunks) * BUF + BUF);
  const reads: ReadRecord[] = [];
  let next = 0;
  /** A read into the registered buffer, issued now; `look` then says where it landed. */
  const issue = (when: string): { when: string; k: number; bytes: number; compacting: boolean } => {
    const k = next++;
    return { when, k, bytes: io.readFixed(fd, (k % chunks) * BUF, BUF, 0), compacting: heap.cycleActive };
  };
  const look = ({ when, k, bytes, compacting }: ReturnType<typeof issue>): void => {
    const now = Buffer.from(heap.readBytes(obj(), 0, BUF));
    let holds = -1;
    for (let j = k; j >= 0 && holds < 0; j--) if (now.equals(chunkOf(j))) holds = j;
    reads.push({ when, chunk: k, bytes, holds, compacting });
    const lands = holds === k;
    log[lands ? 'info' : 'warn']({ run: name, when, chunk: k, bytes, landed: lands, heapHolds: holds < 0 ? 'none' : `chunk ${holds}`, address: `0x${heap.addressOf(obj()).toString(16)}` }, lands ? 'read landed in the heap object' : 'read did NOT reach the heap object');
  };

  const read = (when: string): void => look(issue(when));

  read('before any collection');
  for (let c = 1; c <= 2; c++) {
    await heap.collect();
    // Issued while the object is being moved, looked at once it has been: a look now would
    // build its pages on this thread (self-service) and race the compactor for them, and the
    // compactor's MOVE is where the kernel says EBUSY for the pinned pages.
    const during = issue(`during compaction ${c}`);
    const st = (await heap.idle())!;
    look(during);
    log.info({ run: name, cycle: c, pagesMoved: st.pages.moved, pagesCopied: st.pages.copied, ebusy: st.ebusy, ebusyCopies: st.ebusyCopies, pinnedSpans: st.pinnedSpans }, 'compaction done');
    read(`after compaction ${c}`);
    layer(20000);
    for (let i = 0; i < 20000; i++) heap.alloc(Item);
  }
  const result: RunResult = {
    withPin,
    mode: heap.mode,
    reads,
    addressBefore,
    addressAfter: heap.addressOf(obj()),
    cycles: [...heap.history],
    verifyOk: heap.verify().ok,
  };
  io.release();
  await heap.close();
  return result;
}

export async function main(args: Args): Promise<void> {
  const mode = modeArg(args);
  const capacity = num(args, 'heap') * (1 << 20);
  let file: string;
  let tmp: string | null = null;
  if (typeof args.file === 'string') file = args.file;
  else {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-pinned-io-'));
    file = path.join(tmp, 'data.bin');
    fs.writeFileSync(file, crypto.randomBytes(16 * BUF));
  }
  const prov = exampleProvenance({ capacityMiB: args.heap, modes: [mode] });
  const data = fs.readFileSync(file);
  if (data.length < 2 * BUF) throw new Error(`${file}: need at least ${2 * BUF} bytes`);
  const fd = fs.openSync(file, 'r');
  // The reads go through fd: the temporary file goes now, not in a finally that a signal
  // (Ctrl-C) would skip (an audit found the directory left behind).
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  try {
    log.info({ file, bytes: data.length, mode }, 'reading the file into a pinned heap buffer with io_uring READ_FIXED');
    const a = await run(true, fd, data, mode, capacity);
    const b = await run(false, fd, data, mode, capacity);
    const rs = [a, b];
    const sum = (r: RunResult, f: (c: CycleStats) => number): number => r.cycles.reduce((s, c) => s + f(c), 0);
    const cell = (r: ReadRecord): string =>
      r.holds === r.chunk ? `ok (${r.bytes} B)` : `LOST: kernel read ${r.bytes} B, heap holds ${r.holds < 0 ? 'other data' : `chunk ${r.holds}`}`;
    const rows: Array<[string, ...string[]]> = [
      ...a.reads.map((r, i): [string, ...string[]] => [`read chunk ${r.chunk}, ${r.when}`, ...rs.map((x) => cell(x.reads[i]))]),
      ['object moved by compaction', ...rs.map((r) => (r.addressAfter === r.addressBefore ? 'no' : `yes, by ${((r.addressBefore - r.addressAfter) / 1024).toFixed(0)} KiB`))],
      ['pinned spans (planned around)', ...rs.map((r) => String(Math.max(0, ...r.cycles.map((c) => c.pinnedSpans))))],
      ['MOVE refused: EBUSY', ...rs.map((r) => String(sum(r, (c) => c.ebusy)))],
      ['pages copied instead (EBUSY fallback)', ...rs.map((r) => String(sum(r, (c) => c.ebusyCopies)))],
      ['pages moved / copied in all', ...rs.map((r) => `${sum(r, (c) => c.pages.moved)} / ${sum(r, (c) => c.pages.copied)}`)],
      ['heap verifies', ...rs.map((r) => (r.verifyOk ? 'yes' : 'NO'))],
    ];
    console.log('\n' + sideBySide(`pinned-io: io_uring READ_FIXED into a 64 KiB heap buffer across 2 compactions (${a.mode} mode)`, ['with heap.pin', 'without (collector not told)'], rows) + '\n');
    const lostB = b.reads.filter((r) => r.holds !== r.chunk).length;
    const lostA = a.reads.filter((r) => r.holds !== r.chunk).length;
    console.log(
      `Summary: with heap.pin the buffer never moved and ${a.reads.length - lostA} of ${a.reads.length} reads landed in the heap object, during compaction too (EBUSY ${sum(a, (c) => c.ebusy)}).\n` +
        (b.mode === 'move'
          ? `Without it the collector moved the object: the kernel refused to MOVE its ${sum(b, (c) => c.ebusy)} pinned pages (EBUSY) and they were copied instead (${sum(b, (c) => c.ebusyCopies)} pages), `
          : `Without it the collector moved the object (${b.mode} mode installs every page by copying it, so the kernel had no MOVE to refuse), `) +
        `so the heap object now lives elsewhere and ${lostB} of ${b.reads.length} reads went into the old pinned pages, which are no longer part of the heap.\n` +
        (b.reads.some((r) => r.compacting && r.holds === r.chunk)
          ? 'A read during a compaction can still reach the moving object if the compactor has not yet copied from the old pages: luck of timing, not safety. '
          : '') +
        'Hand memory to the kernel for I/O only through heap.pin, and keep it pinned while the I/O is registered.',
    );
    writeOut(args, 'pinned-io', { withPin: a, withoutPin: b }, prov);
    // Failed: a read lost with the pin, or (move mode) no EBUSY where the kernel must refuse.
    if (lostA > 0 || (b.mode === 'move' && sum(b, (c) => c.ebusy) === 0)) process.exitCode = 1;
  } finally {
    fs.closeSync(fd);
  }
}

// `node dist/examples/pinned-io.js ARGS` is `movegc example pinned-io ARGS`.
runWhenMain(import.meta.url, ['example', 'pinned-io']);
