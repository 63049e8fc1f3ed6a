/** /proc/self/smaps (the parser is bench/procfs.ts) and /proc/self/pagemap, read for the tests. */
import fs from 'node:fs';
import { heapVmas, vmasIn, type Vma } from '../../dist/bench/procfs.js';

export { smaps, vmasIn, type Vma } from '../../dist/bench/procfs.js';

/**
 * A heap's from-space mappings: the process's only ones with MADV_DONTFORK and
 * MADV_NOHUGEPAGE ('dc', 'nh') besides the heap itself, with one heap open (V8's own DONTFORK
 * mappings are not NOHUGEPAGE). mremap'd pieces keep the flags: there may be several.
 */
export function fromSpaceVmas(heap: { address: number; capacity: number }): Vma[] {
  return heapVmas().filter((v) => (v.end <= heap.address || v.start >= heap.address + heap.capacity));
}

/** Transparent huge pages are off on this machine (`never`): no mapping gets any. */
export const thpNever = (): boolean => fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]');

/** A heap mapping's AnonHugePages (bytes): memory mapped by huge page-table entries. */
export function hugeBytes(heap: { address: number; capacity: number }): number {
  return vmasIn(heap.address, heap.capacity).reduce((t, v) => t + v.hugeBytes, 0);
}

/**
 * Pages of [address, address+length) present in memory, from /proc/self/pagemap (bit 63 of
 * each page's entry): exact per page, unlike smaps, which sums whole (possibly merged) VMAs.
 */
export function presentPages(address: number, length: number): number {
  const pages = Math.ceil(length / 4096);
  const buf = Buffer.alloc(pages * 8);
  const fd = fs.openSync('/proc/self/pagemap', 'r');
  try {
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, (address / 4096) * 8 + done);
      if (n <= 0) break;
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  let present = 0;
  for (let i = 0; i < pages; i++) if (buf.readBigUInt64LE(i * 8) >> 63n) present++;
  return present;
}

/** Present pages of a range as [first, end) page-index runs (for diagnostics). */
export function presentRuns(address: number, length: number): Array<[number, number]> {
  const pages = Math.ceil(length / 4096);
  const buf = Buffer.alloc(pages * 8);
  const fd = fs.openSync('/proc/self/pagemap', 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, (address / 4096) * 8);
  } finally {
    fs.closeSync(fd);
  }
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < pages; i++)
    if (buf.readBigUInt64LE(i * 8) >> 63n) {
      const last = runs[runs.length - 1];
      if (last && last[1] === i) last[1] = i + 1;
      else runs.push([i, i + 1]);
    }
  return runs;
}

/** The child processes of process `pid` (of any of its threads), from /proc/PID/task/TID/children; a thread that exits meanwhile has none. */
export function childPids(pid: number | 'self' = 'self'): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // the process is gone
  }
  for (const t of tasks) {
    let c = '';
    try {
      c = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    } catch {
      continue;
    }
    if (c) out.push(...c.split(/\s+/).map(Number));
  }
  return out;
}
