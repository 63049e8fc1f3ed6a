/**
 * /proc/self/smaps, parsed: the process's VMAs with their flags, resident size and the memory
 * huge page-table entries map. One reader for the benchmarks (the kernel floor's huge-page
 * share, the soak's count of heap mappings) and the tests (test/helpers/procfs.ts).
 */
import fs from 'node:fs';

export interface Vma {
  start: number;
  end: number;
  /** VmFlags, two letters each (e.g. 'dc': MADV_DONTFORK, 'nh': MADV_NOHUGEPAGE, 'hg': MADV_HUGEPAGE). */
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

/** VMAs overlapping [address, address+length). */
export function vmasIn(address: number, length: number): Vma[] {
  return smaps().filter((v) => v.end > address && v.start < address + length);
}

/** The heaps' own mappings: the process's only ones with MADV_DONTFORK and MADV_NOHUGEPAGE. */
export function heapVmas(): Vma[] {
  return smaps().filter((v) => v.flags.includes('dc') && v.flags.includes('nh'));
}

/**
 * CPU time (ms, /proc/self/task/<tid>/schedstat) of this process's threads still named "node":
 * V8's platform workers (optimizing compilation, concurrent marking of every isolate) and
 * libuv's pool, not the main thread and not the collector's threads (named movegc-*). On a
 * 2-core machine what they run during a cycle is CPU the mutator and the compactor do not get.
 * A thread that exits between two reads is missed (none of V8's does). Null without procfs.
 */
export function runtimeThreadsCpuMs(): number | null {
  let ids: string[];
  try {
    ids = fs.readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  let ns = 0;
  for (const id of ids) {
    if (Number(id) === process.pid) continue; // the main thread
    try {
      if (fs.readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim() !== 'node') continue;
      ns += Number(fs.readFileSync(`/proc/self/task/${id}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // exited meanwhile
    }
  }
  return ns / 1e6;
}
