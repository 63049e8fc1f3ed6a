/**
 * The kernel floor, measured through the binding in the benchmark's own process, so that every
 * collector figure has its limit beside it (same machine, same moment):
 *  - UFFDIO_MOVE per page at 1, 16, 32, 34, 64 (the collector's largest run) and 512 pages per
 *    call (32 and 34 straddle x86's single-page TLB flush ceiling, 33 by default: up to it the
 *    kernel invalidates the moved range page by page, above it it flushes the whole TLB),
 *    UFFDIO_COPY per page at 1, 64 and 512 pages per call (and at 1 and 64 from one reused
 *    scratch buffer, as the collector installs), memcpy per page (the method of bench/binding.ts and kernel-floor.c:
 *    fresh userfaultfd and MADV_NOHUGEPAGE mappings per pass, every source page written first,
 *    DONTWAKE, consecutive batches; median of `reps` passes); MOVE and COPY at 1 and 64 pages
 *    per call again while a sibling thread spins on the other CPU (TLB shootdowns), and what
 *    those calls cost the sibling: its work rate while this thread makes them, against its
 *    rate while this thread only spins too (a MOVE call interrupts it to flush its TLB);
 *  - the first read of a page after mremap(MREMAP_DONTUNMAP) moved it to a new address (what the
 *    compaction pause does to the whole heap), against the first read of a page just written:
 *    on a virtual machine that shadows page tables, each moved page costs a trap to the host
 *    on its first access, whichever thread makes it;
 *  - the fault round trip: the main thread reads a registered, missing page and blocks in the
 *    kernel while a Worker (floor-worker.ts) serves it with poll + read + MOVE; p50/p99 over
 *    `faults` faults (after a warm-up), timed with process.hrtime.bigint around the access.
 */
import { Worker } from 'node:worker_threads';
import { HUGE_PAGE_SIZE, Mapping, PAGE_SIZE, Userfaultfd, remapDontUnmap } from '../gc/index.js';
import { vmasIn } from './procfs.js';
import { median, quantiles, type Quantiles } from './stats.js';
import type { FloorWorkerData } from './floor-worker.js';

const PS = PAGE_SIZE;

export interface Floor {
  pagesPerPass: number;
  reps: number;
  /** ns per page, medians over reps. */
  movePerPageNs: { '1': number; '16': number; '32': number; '34': number; '64': number; '512': number };
  copyPerPageNs: { '1': number; '64': number; '512': number };
  /**
   * UFFDIO_COPY from one private buffer of the call's size, reused by every call: how the
   * compactor and the fault server install (they build into scratch pages). copyPerPageNs
   * copies from a fresh source as large as the destination, which on a guest whose page tables
   * the host shadows costs the kernel a trap on its first read of each source page (seen on the
   * PVM guest: 5.5 us a page against 0.6-0.9 from a reused buffer).
   */
  copyFromScratchPerPageNs: { '1': number; '64': number };
  /**
   * The same while another thread of this process spins on the other CPU (as the mutator or
   * a collector thread does during a concurrent cycle): MOVE must then shoot down that CPU's
   * TLB (an IPI, costly on a virtual machine); COPY into an empty entry needs no flush.
   */
  busySibling: {
    movePerPageNs: { '1': number; '64': number };
    copyPerPageNs: { '1': number; '64': number };
    /**
     * The sibling's time lost per call (us): 1 - (its work rate during the calls / its rate
     * while this thread spins), times the calls' wall time, over the number of calls.
     */
    siblingLossUsPerCall: { move: { '1': number; '64': number }; copy: { '1': number; '64': number } };
    faultRoundTripUs: Quantiles;
    faultRoundTripSamplesUs: number[];
  };
  memcpyPerPageNs: number;
  /**
   * First read per page (ns): of pages this thread just wrote, of the same pages moved by
   * mremap(DONTUNMAP), and of pages just installed by UFFDIO_MOVE and UFFDIO_COPY (runs of
   * 512). Whoever touches an installed page first pays its `installed` cost: the mutator, or
   * the next cycle's builders if the mutator never did (its from-space sources). `pmd`: of
   * pages moved in 2 MiB at a time from huge pages (one PMD per call when the kernel gave the
   * source huge pages: `pmd.hugeSource`), as the heap's spans are (hugePages).
   */
  firstReadPerPageNs: { written: number; remapped: number; installed: { move: number; copy: number; pmd: number } };
  /** UFFDIO_MOVE of aligned 2 MiB huge pages, one call each: ns per page, and the share of the source the kernel backed with huge pages (0-1). */
  pmd: { movePerPageNs: number; hugeSource: number };
  /**
   * Fault round trip (access to return, main thread), microseconds. Beware: on a virtual
   * machine an idle vCPU must be woken by the hypervisor, so this is far lower when the
   * machine is busy (both vCPUs awake) than when it is idle; see busySibling for the round
   * trip while another thread of the process keeps a CPU busy, as the compactor does.
   */
  faultRoundTripUs: Quantiles;
  /** Every round-trip sample (us), for the report's distribution plot. */
  faultRoundTripSamplesUs: number[];
  faultRoundTripNote?: string;
  ms: number;
}

const hr = (): number => Number(process.hrtime.bigint());

function map(len: number): Mapping {
  return Mapping.anonymous(len, { alignment: HUGE_PAGE_SIZE, advise: ['NOHUGEPAGE', 'DONTFORK'] });
}

function touch(u8: Uint8Array): void {
  for (let i = 0; i < u8.length; i += PS) u8[i] = 1;
}

/**
 * A sibling thread's progress (a counter it bumps as it spins, in a shared word): rate() is
 * its iterations per ns over `work`; lossUs() what `calls` calls made in `ns` cost it.
 */
class Sibling {
  constructor(readonly counter: Float64Array) {}
  #base = 0;
  /** Its rate while this thread spins too (both CPUs busy, no system calls): over `ms`, longer (up to 1 s) until it has moved. */
  baseline(ms = 30): void {
    const t0 = hr();
    const c0 = this.counter[0];
    let x = 0;
    while (hr() - t0 < ms * 1e6 || (this.counter[0] === c0 && hr() - t0 < 1e9)) x++;
    this.#base = (this.counter[0] - c0) / (hr() - t0 + (x & 0));
  }
  lossUs(c0: number, ns: number, calls: number): number {
    const rate = (this.counter[0] - c0) / ns;
    return this.#base > 0 ? (Math.max(0, 1 - rate / this.#base) * ns) / 1000 / calls : NaN;
  }
}

interface Batch {
  move: number;
  copy?: number;
  moveLossUs?: number;
  copyLossUs?: number;
  /** The first read of each installed page, ns per page (`readInstalled`). */
  movedRead?: number;
  copiedRead?: number;
}

function measureBatch(pages: number, batch: number, withCopy: boolean, sib?: Sibling, readInstalled = false): Batch {
  const len = pages * PS;
  const bytes = batch * PS;
  const u = Userfaultfd.open({ features: ['MOVE'] });
  const src = map(len);
  const dst = map(len);
  try {
    u.register(dst.address, len);
    const s = new Uint8Array(src.view());
    touch(s);
    const calls = Math.ceil(len / bytes);
    sib?.baseline();
    let c0 = sib?.counter[0] ?? 0;
    let t = hr();
    for (let off = 0; off < len; off += bytes) if (u.moveOnce(dst.address + off, src.address + off, bytes, { dontWake: true }) !== bytes) throw new Error('short MOVE');
    const moveNs = hr() - t;
    const moveLossUs = sib?.lossUs(c0, moveNs, calls);
    const movedRead = readInstalled ? firstRead(new Uint8Array(dst.view())) : undefined;
    let copy: number | undefined;
    let copyLossUs: number | undefined;
    let copiedRead: number | undefined;
    if (withCopy) {
      dst.advise('DONTNEED');
      touch(s);
      sib?.baseline();
      c0 = sib?.counter[0] ?? 0;
      t = hr();
      for (let off = 0; off < len; off += bytes) u.copy(dst.address + off, src.address + off, bytes, { dontWake: true });
      const copyNs = hr() - t;
      copy = copyNs / pages;
      copyLossUs = sib?.lossUs(c0, copyNs, calls);
      if (readInstalled) copiedRead = firstRead(new Uint8Array(dst.view()));
    }
    return { move: moveNs / pages, copy, moveLossUs, copyLossUs, movedRead, copiedRead };
  } finally {
    src.close();
    dst.close();
    u.close();
  }
}

function measureCopyFromScratch(pages: number, batch: number): number {
  const len = pages * PS;
  const bytes = batch * PS;
  const u = Userfaultfd.open();
  const src = map(bytes);
  const dst = map(len);
  try {
    u.register(dst.address, len);
    touch(new Uint8Array(src.view()));
    const t = hr();
    for (let off = 0; off < len; off += bytes) u.copy(dst.address + off, src.address, bytes, { dontWake: true });
    return (hr() - t) / pages;
  } finally {
    src.close();
    dst.close();
    u.close();
  }
}

function measureMemcpy(pages: number): number {
  const a = map(pages * PS);
  const b = map(pages * PS);
  try {
    const x = new Uint8Array(a.view());
    const y = new Uint8Array(b.view());
    x.fill(1);
    y.fill(2);
    const t = hr();
    y.set(x);
    return (hr() - t) / pages;
  } finally {
    a.close();
    b.close();
  }
}

function firstRead(u8: Uint8Array): number {
  let s = 0;
  const t = hr();
  for (let i = 0; i < u8.length; i += PS) s += u8[i];
  return (hr() - t + (s & 0)) / (u8.length / PS);
}

/** The share of [address, address+len) mapped by huge page-table entries (smaps' AnonHugePages; 0-1). */
function hugeShare(address: number, len: number): number {
  return vmasIn(address, len).reduce((t, v) => t + v.hugeBytes, 0) / len;
}

/** MOVE of 2 MiB huge pages (MADV_HUGEPAGE source, faulted in by a write), one aligned call each, then the first read of each page. */
function measurePmd(pages: number): { move: number; read: number; huge: number } {
  const spans = Math.max(1, Math.floor(pages / 512));
  const len = spans * HUGE_PAGE_SIZE;
  const u = Userfaultfd.open({ features: ['MOVE'] });
  const src = Mapping.anonymous(len, { alignment: HUGE_PAGE_SIZE, advise: ['HUGEPAGE', 'DONTFORK'] });
  const dst = map(len);
  try {
    u.register(dst.address, len);
    touch(new Uint8Array(src.view()));
    const huge = hugeShare(src.address, len);
    const t = hr();
    for (let off = 0; off < len; off += HUGE_PAGE_SIZE) if (u.moveOnce(dst.address + off, src.address + off, HUGE_PAGE_SIZE, { dontWake: true }) !== HUGE_PAGE_SIZE) throw new Error('short MOVE');
    const move = (hr() - t) / (len / PS);
    return { move, read: firstRead(new Uint8Array(dst.view())), huge };
  } finally {
    src.close();
    dst.close();
    u.close();
  }
}

function measureFirstRead(pages: number): { written: number; remapped: number } {
  const a = map(pages * PS);
  const b = map(pages * PS);
  const c = map(pages * PS);
  try {
    touch(new Uint8Array(a.view()));
    touch(new Uint8Array(c.view()));
    const written = firstRead(new Uint8Array(c.view()));
    remapDontUnmap(a.address, pages * PS, b.address);
    return { written, remapped: firstRead(new Uint8Array(b.view())) };
  } finally {
    a.close();
    b.close();
    c.close();
  }
}

/** The fault round trip: main thread faults, a Worker serves with poll + read + MOVE. */
export async function measureFaultRoundTrip(faults: number, warmup = 50): Promise<{ samples: number[]; note?: string }> {
  const pages = faults + warmup;
  const len = pages * PS;
  const u = Userfaultfd.open({ features: ['MOVE'] });
  const src = map(len);
  const dst = map(len);
  let worker: Worker | undefined;
  try {
    u.register(dst.address, len);
    const s = new Uint8Array(src.view());
    for (let p = 0; p < pages; p++) s[p * PS] = (p % 251) + 1;
    const data: FloorWorkerData = { fd: u.fd, features: u.features, dst: dst.address, src: src.address, length: len, faults: pages, timeoutMs: 30_000 };
    worker = new Worker(new URL('./floor-worker.js', import.meta.url), { workerData: data });
    const w = worker;
    const done = new Promise<{ served: number; error?: string }>((resolve, reject) => {
      w.on('message', (m: { type: string; served: number; error?: string }) => {
        if (m.type === 'done') resolve(m);
      });
      w.once('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      w.on('message', (m: { type: string }) => m.type === 'ready' && resolve());
      w.once('error', reject);
    });
    // Let the worker reach its poll() before the first timed fault.
    await new Promise((r) => setTimeout(r, 20));
    const d = new Uint8Array(dst.view());
    const samples: number[] = [];
    let wrong = 0;
    for (let p = 0; p < pages; p++) {
      const t0 = process.hrtime.bigint();
      const v = d[p * PS];
      const t1 = process.hrtime.bigint();
      if (v !== (p % 251) + 1) wrong++;
      if (p >= warmup) samples.push(Number(t1 - t0) / 1000);
    }
    const r = await done;
    const note = wrong ? `${wrong} pages read wrong contents (worker served ${r.served}${r.error ? `, error ${r.error}` : ''})` : undefined;
    return { samples, note };
  } finally {
    if (worker) await worker.terminate();
    src.close();
    dst.close();
    u.close();
  }
}

export async function measureFloor(opts: { pages?: number; reps?: number; faults?: number } = {}): Promise<Floor> {
  const t0 = performance.now();
  const pages = opts.pages ?? 16384;
  const reps = opts.reps ?? 3;
  measureBatch(2048, 1, true); // warm-up: JIT the call paths
  measureBatch(2048, 512, true);
  const m1: number[] = [], m16: number[] = [], m32: number[] = [], m34: number[] = [], m64: number[] = [], m512: number[] = [], c1: number[] = [], c64: number[] = [], c512: number[] = [], s1: number[] = [], s64: number[] = [], mc: number[] = [];
  const frW: number[] = [], frR: number[] = [], frM: number[] = [], frC: number[] = [], frP: number[] = [], mP: number[] = [], hP: number[] = [];
  for (let r = 0; r < reps; r++) {
    const a = measureBatch(pages, 1, true);
    m1.push(a.move);
    c1.push(a.copy!);
    m16.push(measureBatch(pages, 16, false).move);
    m32.push(measureBatch(pages, 32, false).move);
    m34.push(measureBatch(34 * Math.floor(pages / 34), 34, false).move);
    const b64 = measureBatch(pages, 64, true);
    m64.push(b64.move);
    c64.push(b64.copy!);
    const b = measureBatch(pages, 512, true, undefined, true);
    m512.push(b.move);
    c512.push(b.copy!);
    frM.push(b.movedRead!);
    frC.push(b.copiedRead!);
    s1.push(measureCopyFromScratch(pages, 1));
    s64.push(measureCopyFromScratch(pages, 64));
    mc.push(measureMemcpy(pages));
    const p = measurePmd(pages);
    mP.push(p.move);
    frP.push(p.read);
    hP.push(p.huge);
    const fr = measureFirstRead(pages);
    frW.push(fr.written);
    frR.push(fr.remapped);
  }
  const rt = await measureFaultRoundTrip(opts.faults ?? 2000);
  // With a sibling thread spinning on the other CPU.
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const counter = new Float64Array(new SharedArrayBuffer(8));
  const spinner = new Worker(
    `const { workerData } = require('node:worker_threads'); const f = new Int32Array(workerData.flag); const c = new Float64Array(workerData.counter);
     let x = 0; while (Atomics.load(f, 0) === 0) { if ((++x & 1023) === 0) c[0] = x; }`,
    { eval: true, workerData: { flag: flag.buffer, counter: counter.buffer } },
  );
  await new Promise((r) => setTimeout(r, 100));
  const sib = new Sibling(counter);
  const bm1: number[] = [], bm64: number[] = [], bc1: number[] = [], bc64: number[] = [];
  const lm1: number[] = [], lm64: number[] = [], lc1: number[] = [], lc64: number[] = [];
  let rtBusy: { samples: number[]; note?: string } = { samples: [] };
  try {
    for (let r = 0; r < reps; r++) {
      const a = measureBatch(pages / 2, 1, true, sib);
      bm1.push(a.move);
      bc1.push(a.copy!);
      lm1.push(a.moveLossUs!);
      lc1.push(a.copyLossUs!);
      const b = measureBatch(pages / 2, 64, true, sib);
      bm64.push(b.move);
      bc64.push(b.copy!);
      lm64.push(b.moveLossUs!);
      lc64.push(b.copyLossUs!);
    }
    rtBusy = await measureFaultRoundTrip(Math.ceil((opts.faults ?? 2000) / 2));
  } finally {
    Atomics.store(flag, 0, 1);
    await spinner.terminate();
  }
  return {
    pagesPerPass: pages,
    reps,
    movePerPageNs: { '1': median(m1), '16': median(m16), '32': median(m32), '34': median(m34), '64': median(m64), '512': median(m512) },
    copyPerPageNs: { '1': median(c1), '64': median(c64), '512': median(c512) },
    copyFromScratchPerPageNs: { '1': median(s1), '64': median(s64) },
    busySibling: {
      movePerPageNs: { '1': median(bm1), '64': median(bm64) },
      copyPerPageNs: { '1': median(bc1), '64': median(bc64) },
      siblingLossUsPerCall: { move: { '1': median(lm1), '64': median(lm64) }, copy: { '1': median(lc1), '64': median(lc64) } },
      faultRoundTripUs: quantiles(rtBusy.samples),
      faultRoundTripSamplesUs: rtBusy.samples,
    },
    memcpyPerPageNs: median(mc),
    firstReadPerPageNs: { written: median(frW), remapped: median(frR), installed: { move: median(frM), copy: median(frC), pmd: median(frP) } },
    pmd: { movePerPageNs: median(mP), hugeSource: median(hP) },
    faultRoundTripUs: quantiles(rt.samples),
    faultRoundTripSamplesUs: rt.samples,
    faultRoundTripNote: rt.note,
    ms: performance.now() - t0,
  };
}
