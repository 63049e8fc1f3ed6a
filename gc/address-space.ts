/**
 * The address-space limit (RLIMIT_AS, `ulimit -v`), checked before a heap maps anything.
 *
 * A heap maps twice its capacity (the heap and from-space), and each collector thread is a
 * Worker whose isolate reserves a large range up front (V8's code range, its heap, a stack).
 * When that reservation fails V8 does not throw: it aborts the whole process ("Fatal process
 * OOM in Failed to reserve virtual memory for CodeRange"). The mappings come first (the
 * threads need the shared memory), so a heap that fits under the limit but leaves too little
 * room for its threads would take the process down. It is refused here instead, with ENOMEM.
 * With no limit (the usual case: containers limit memory, not address space) this costs one
 * read of /proc/self/limits.
 */
import fs from 'node:fs';
import { MoveGcError } from './errors.js';

/**
 * Address space one collector Worker needs: under `prlimit --as`, a 1 GiB move heap (three
 * Workers, 1006 MiB in use before) aborted at 4.5 GiB and started at 5 GiB, so between 517
 * and 688 MiB each (Node 20 x64; unlimited, a Worker's VmSize grows 590-850 MiB). A best
 * effort: a limit within a few hundred MiB of the need may still abort.
 */
export const WORKER_ADDRESS_SPACE = 640 * 2 ** 20;

/** The soft RLIMIT_AS in bytes, or Infinity. */
export function addressSpaceLimit(limits = '/proc/self/limits'): number {
  try {
    const line = fs.readFileSync(limits, 'utf8').split('\n').find((l) => l.startsWith('Max address space'));
    const soft = line?.slice('Max address space'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return Infinity; // no procfs: nothing to check against
  }
}

/** The process's address space in use now (VmSize), in bytes. */
export function addressSpaceUsed(): number {
  const m = /VmSize:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Address space promised to collector threads that have not started yet: heaps being created
 * in this thread at once (Promise.all of two creates). VmSize does not show a Worker until
 * it has reserved its range, so each create's check would count the other's threads as free
 * room, and both went ahead (an audit saw V8 abort the process). Creates in other Workers are
 * not counted (module state is per thread).
 */
let promised = 0;

/**
 * Throws ENOMEM unless `mapBytes` of mappings (`overMap` more while the last is made: it is
 * over-mapped for alignment, then trimmed) and then `workers` collector threads fit under
 * RLIMIT_AS, with the threads other creates have been promised. Returns the call that gives
 * this create's threads' promise back, once they have started or failed to (idempotent).
 */
export function checkAddressSpace(mapBytes: number, overMap: number, workers: number, limit = addressSpaceLimit()): () => void {
  if (limit === Infinity) return () => {};
  const used = addressSpaceUsed() + promised;
  const threads = workers * WORKER_ADDRESS_SPACE;
  const need = mapBytes + Math.max(overMap, threads);
  if (used + need > limit) {
    const MiB = (b: number): string => `${Math.round(b / 2 ** 20)} MiB`;
    throw new MoveGcError(
      'ENOMEM',
      `the address-space limit (RLIMIT_AS ${MiB(limit)}, ${MiB(used)} in use${promised > 0 ? `, ${MiB(promised)} of it promised to heaps being created` : ''}) leaves no room for this heap: ${MiB(mapBytes)} of mappings and ${workers} collector threads (about ${MiB(WORKER_ADDRESS_SPACE)} each) need ${MiB(need)}; a Worker that cannot reserve its range aborts the process`,
      { errno: 12 },
    );
  }
  promised += threads;
  let kept = true;
  return () => {
    if (kept) promised -= threads;
    kept = false;
  };
}
