/** /proc/self/smaps, parsed: the VMAs of a range with their flags and resident sizes. */
import fs from 'node:fs';

export interface Vma {
  start: number;
  end: number;
  flags: string[];
  rssBytes: number;
  /** Memory mapped by huge page-table entries (AnonHugePages). */
  hugeBytes: number;
}

export function smaps(): Vma[] {
  const out: Vma[] = [];
  let cur: Vma | null = null;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) {
      cur = { start: parseInt(m[1], 16), end: parseInt(m[2], 16), flags: [], rssBytes: 0, hugeBytes: 0 };
      out.push(cur);
    } else if (cur && line.startsWith('VmFlags:')) {
      cur.flags = line.slice(8).trim().split(/\s+/);
    } else if (cur && line.startsWith('Rss:')) {
      cur.rssBytes = Number(/(\d+)/.exec(line)![1]) * 1024;
    } else if (cur && line.startsWith('AnonHugePages:')) {
      cur.hugeBytes = Number(/(\d+)/.exec(line)![1]) * 1024;
    }
  }
  return out;
}

/**
 * A heap's from-space mappings: the process's only ones with MADV_DONTFORK and
 * MADV_NOHUGEPAGE ('dc', 'nh') besides the heap itself, with one heap open (V8's own DONTFORK
 * mappings are not NOHUGEPAGE). mremap'd pieces keep the flags: there may be several.
 */
export function fromSpaceVmas(heap: { address: number; capacity: number }): Vma[] {
  return smaps().filter((v) => v.flags.includes('dc') && v.flags.includes('nh') && (v.end <= heap.address || v.start >= heap.address + heap.capacity));
}

/** VMAs overlapping [address, address+length). */
export function vmasIn(address: number, length: number): Vma[] {
  return smaps().filter((v) => v.end > address && v.start < address + length);
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
