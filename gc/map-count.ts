/**
 * The process's mappings against vm.max_map_count, as a compaction pause needs them.
 *
 * Each segment the pause remaps to from-space (and registers) can split mappings, and mremap
 * refuses any move, the moves back of an undo too, once the count is within a few of the
 * limit. A pause that ran out part-way could then not be undone (PauseUndo): the heap was
 * lost (found by a resource-limit audit: pauseOrder 'register-first', pins, a process near
 * the limit). So a pause that might run out is refused before it changes anything, with
 * ENOMEM. The bound is generous (SPLITS_PER_SEGMENT); the check costs a read of
 * /proc/self/maps, counted natively (native.countLines: 0.12-0.22 ms median at 296 mappings
 * here, called every 5 ms, against 0.48-0.57 ms for the file as a JS string). It is made in the compaction pause
 * (cycle.ts #flip), not where a marker planned: the program may use its mappings up between
 * the plan and the safepoint that flips, and an audit lost a heap with pins that way. That
 * adds about 0.2 ms to a 1 GiB pause (0.90-1.23 against 0.75-0.96 ms, two alternating runs).
 * Without procfs nothing is checked, as before.
 */
import fs from 'node:fs';
import { MoveGcError } from './errors.js';
import { native } from './native.js';

/** Mappings one segment may add: a split at each end of its remapped range, at each end of its place in from-space, and of its registration. */
export const SPLITS_PER_SEGMENT = 8;
/** Mappings left over for what the process maps between the count and the pause, and mremap's own margin (it refuses within 3 of the limit). */
export const MAP_RESERVE = 32;
/** Unknown headroom (no procfs): nothing is checked. */
export const HEADROOM_UNKNOWN = -1;

/** Mappings the process may still make under vm.max_map_count, or HEADROOM_UNKNOWN. */
export function mapHeadroom(maps = '/proc/self/maps', limit = '/proc/sys/vm/max_map_count'): number {
  let max: number;
  try {
    max = Number(fs.readFileSync(limit, 'latin1').trim());
  } catch {
    return HEADROOM_UNKNOWN;
  }
  const n = native.countLines(maps); // no string of the whole file: it is read in the pause
  return n >= 0 && Number.isFinite(max) && max > 0 ? Math.max(0, max - n) : HEADROOM_UNKNOWN;
}

/**
 * Throws ENOMEM unless a pause over `segments` segments fits under vm.max_map_count.
 * `counted`: the headroom as the pause counted it (cycle.ts #flip); counted again if that falls short.
 */
export function checkPauseMappings(segments: number, counted: number, recount: () => number = mapHeadroom): void {
  const need = segments * SPLITS_PER_SEGMENT + MAP_RESERVE;
  if (counted === HEADROOM_UNKNOWN || counted >= need) return;
  const left = recount();
  if (left === HEADROOM_UNKNOWN || left >= need) return;
  throw new MoveGcError(
    'ENOMEM',
    `${left} mappings left under vm.max_map_count, and remapping ${segments} segment(s) may need ${need}: refused before anything changed, since a pause that ran out part-way could not be undone (free mappings, release pins, or raise vm.max_map_count)`,
    { errno: 12, syscall: 'mremap' },
  );
}

/**
 * Mappings one collector Worker adds as it starts (its isolate's heap and code space, its
 * stack): 148 for a move heap of three, measured (Node 20 x64), with a margin.
 */
export const MAPS_PER_WORKER = 64;

/**
 * Throws ENOMEM unless `workers` collector threads can start under vm.max_map_count. V8 does
 * not throw when a new isolate cannot map: it aborts the process ("Fatal JavaScript OOM in
 * MemoryChunk allocation failed during deserialization"; found by a hostile-tester audit, a
 * move heap created with 100 mappings left), as under RLIMIT_AS (address-space.ts).
 */
export function checkCreateMappings(workers: number, headroom: () => number = mapHeadroom): void {
  if (workers === 0) return;
  const left = headroom();
  const need = workers * MAPS_PER_WORKER + MAP_RESERVE;
  if (left === HEADROOM_UNKNOWN || left >= need) return;
  throw new MoveGcError(
    'ENOMEM',
    `${left} mappings left under vm.max_map_count, and ${workers} collector threads need about ${need}: a Worker that cannot map aborts the process (free mappings, or raise vm.max_map_count)`,
    { errno: 12, syscall: 'mmap' },
  );
}
