/**
 * The heap of the held-access tests (a read or a store held inside a compaction,
 * heap.unbuilt-reads and heap.unbuilt-writes): one small object, the target, after an 8 KiB
 * array and ahead of `arrays` live 8000-byte arrays with garbage between them, so that the
 * compactor walks far past the target's sources while the access is held. Collected up to
 * the compaction pause; returns the target's root and the arrays' roots (keep[0]: the first).
 */
import { expect } from 'vitest';
import type { Heap, Ref } from '../../dist/gc/index.js';

export async function targetAheadOfArrays(heap: Heap, arrays: number, init: (target: Ref, keep0: Ref) => void): Promise<{ target: { get(): Ref | null }; keep: Array<{ get(): Ref | null }> }> {
  const T = heap.defineType({ name: 'Target', refs: 1, bytes: 8 });
  const keep = [heap.root(heap.allocBytes(8192))];
  heap.allocBytes(3000);
  const target = heap.root(heap.alloc(T));
  init(target.get()!, keep[0].get()!);
  for (let i = 0; i < arrays; i++) {
    heap.allocBytes(2000);
    keep.push(heap.root(heap.allocBytes(8000)));
  }
  await heap.collect();
  expect(heap.cyclePhase).toBe('compacting');
  return { target, keep };
}
