/**
 * The address-space and data limits (RLIMIT_AS, `ulimit -v`; RLIMIT_DATA, `ulimit -d`),
 * checked before a heap maps anything (checkAddressSpace) and before each compaction pause
 * remaps it (checkPauseLimits).
 *
 * A heap maps twice its capacity (the heap and from-space), private and writable, so both
 * limits count it, and each collector thread is a Worker whose isolate reserves a large range
 * up front (V8's code range, its heap, a stack) and commits its first heap pages. When either
 * fails V8 does not throw: it aborts the whole process ("Fatal process OOM in Failed to
 * reserve virtual memory for CodeRange" under RLIMIT_AS, "Committing semi space failed" under
 * RLIMIT_DATA, both seen by audits). The mappings come first (the threads need the shared
 * memory), so a heap that fits under a limit but leaves too little room for its threads would
 * take the process down. It is refused here instead, with ENOMEM. With no limit (the usual
 * case: containers limit memory, not address space) this costs one read of /proc/self/limits.
 */
import fs from 'node:fs';
import { MoveGcError } from './errors.js';
import { native } from './native.js';

/** The two limits checked, each with its field in Limits and in inUse(). */
const LIMITS = [['addressSpace', 'RLIMIT_AS'], ['data', 'RLIMIT_DATA']] as const;
const MiB = (b: number): string => `${Math.round(b / 2 ** 20)} MiB`;

/**
 * Address space one collector Worker needs: under `prlimit --as`, a 1 GiB move heap (three
 * Workers, 1006 MiB in use before) aborted at 4.5 GiB and started at 5 GiB, so between 517
 * and 688 MiB each (Node 20 x64; unlimited, a Worker's VmSize grows 590-850 MiB). A best
 * effort: a limit within a few hundred MiB of the need may still abort.
 */
export const WORKER_ADDRESS_SPACE = 640 * 2 ** 20;
/**
 * Data (VmData) one collector Worker adds, and the heap's shared tables (bitmaps, forwarding
 * tables, page states) per byte of capacity. Measured (Node 20 x64): VmData grew by 2 x
 * capacity plus 65 MiB for a 64 MiB move heap (three Workers), plus 137 MiB at 1 GiB, and plus
 * 7 MiB for a 64 MiB stw heap (no Worker).
 */
export const WORKER_DATA = 24 * 2 ** 20;
export const TABLES_PER_BYTE = 1 / 16;

/** The soft limits, in bytes (Infinity: none, or no procfs to ask). */
export interface Limits {
  addressSpace: number;
  data: number;
}

export function readLimits(limits = '/proc/self/limits'): Limits {
  try {
    const lines = fs.readFileSync(limits, 'utf8').split('\n');
    const soft = (name: string): number => {
      const v = lines.find((l) => l.startsWith(name))?.slice(name.length).trim().split(/\s+/)[0];
      return v === undefined || v === 'unlimited' ? Infinity : Number(v);
    };
    return { addressSpace: soft('Max address space'), data: soft('Max data size') };
  } catch {
    return { addressSpace: Infinity, data: Infinity }; // no procfs: nothing to check against
  }
}

/** The process's address space (VmSize) and data (VmData) in use now, in bytes. */
export function inUse(): { addressSpace: number; data: number } {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kB = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) * 1024;
  return { addressSpace: kB('VmSize'), data: kB('VmData') };
}

/*
 * Room promised to collector threads that have not started yet: heaps being created at once
 * (Promise.all of two creates, or creates in two Workers). VmSize does not show a Worker until
 * it has reserved its range, so each create's check would count the other's threads as free
 * room, and both went ahead (audits saw V8 abort the process, in one thread and then across
 * two Workers). The promises are kept in the addon (native.promise), which every isolate of
 * the process shares, and the check and the promise are one step there.
 */

/**
 * Throws ENOMEM unless `mapBytes` of mappings (`overMap` more while the last is made: it is
 * over-mapped for alignment, then trimmed), the heap's tables for `capacity` and then
 * `workers` collector threads fit under RLIMIT_AS and RLIMIT_DATA, with the threads other
 * creates have been promised. Returns the call that gives this create's threads' promise
 * back, once they have started or failed to (idempotent).
 */
export function checkAddressSpace(mapBytes: number, overMap: number, workers: number, capacity = 0, limits = readLimits()): () => void {
  if (limits.addressSpace === Infinity && limits.data === Infinity) return () => {};
  const used = inUse();
  const threads = { addressSpace: workers * WORKER_ADDRESS_SPACE, data: workers * WORKER_DATA };
  const need = {
    addressSpace: mapBytes + Math.max(overMap, threads.addressSpace),
    data: mapBytes + Math.max(overMap, capacity * TABLES_PER_BYTE + threads.data),
  };
  const [ok, promisedAs, promisedData] = native.promise(need.addressSpace, need.data, limits.addressSpace - used.addressSpace, limits.data - used.data, threads.addressSpace, threads.data);
  const promised = { addressSpace: promisedAs, data: promisedData };
  for (const [k, rlimit] of LIMITS) {
    if (ok) break;
    const what = k === 'data' ? 'cannot commit its heap' : 'cannot reserve its range';
    const total = used[k] + promised[k];
    if (promised[k] + need[k] <= limits[k] - used[k]) continue; // the addon's test, term for term
    throw new MoveGcError(
      'ENOMEM',
      `the ${k === 'data' ? 'data' : 'address-space'} limit (${rlimit} ${MiB(limits[k])}, ${MiB(total)} in use${promised[k] > 0 ? `, ${MiB(promised[k])} of it promised to heaps being created` : ''}) leaves no room for this heap: ${MiB(mapBytes)} of mappings and ${workers} collector threads need ${MiB(need[k])}; a Worker that ${what} aborts the process`,
      { errno: 12 },
    );
  }
  let kept = true;
  return () => {
    if (kept) native.unpromise(threads.addressSpace, threads.data);
    kept = false;
  };
}

/**
 * Address space (and data) a pause keeps free under RLIMIT_AS and RLIMIT_DATA for what other
 * threads map between the check and its mremap calls (microseconds: V8's threads grow its heap
 * by a few hundred KiB at a time). A stw heap of 64 MiB under a 240 MiB data limit has 16 MiB.
 */
export const PAUSE_LIMIT_RESERVE = 4 * 2 ** 20;

/**
 * Refuses (ENOMEM, nothing changed) a pause the address-space or data limit would stop part
 * way. mremap(MREMAP_FIXED | MREMAP_DONTUNMAP) unmaps its destination (from-space) first and
 * only then checks the limit for the range it moves, which keeps its old mapping: over the
 * limit it fails after from-space is gone (found by a kernel-edge audit: a program that lowered
 * `prlimit --as` below its use got ENOMEM, "undone", and from-space was a hole its next
 * mappings landed in, for the next pause's mremap to overwrite). The kernel wants the process's
 * use, once the destination is unmapped and the range added back, within the limit. Costs one
 * read of /proc/self/limits when there is none (the usual case).
 */
export function checkPauseLimits(limits: Limits = readLimits(), used: () => { addressSpace: number; data: number } = inUse): void {
  if (limits.addressSpace === Infinity && limits.data === Infinity) return;
  const u = used();
  for (const [k, rlimit] of LIMITS) {
    if (u[k] + PAUSE_LIMIT_RESERVE <= limits[k]) continue;
    throw new MoveGcError(
      'ENOMEM',
      `${MiB(u[k])} in use against ${rlimit} ${MiB(limits[k])}: mremap would unmap from-space and then refuse; refused before anything changed (raise the limit)`,
      { errno: 12, syscall: 'mremap' },
    );
  }
}
