/** What the heap's API hands out and takes besides references: type descriptors, progress. */
export interface TypeSpec {
  name: string;
  /** Reference slots. */
  refs: number;
  /** Raw bytes after the references (their area starts 8-aligned). */
  bytes: number;
}

/** See Heap.progress(). */
export interface Progress {
  cycle: number;
  phase: string;
  pagesTotal: number;
  pagesMapped: number;
  faults: number;
  markedObjects: number;
  barrierEntries: number;
  /** Concurrent marking has caught up (nothing grey, the log empty): a marking pause now is short. */
  markerIdle: boolean;
  /** Unbuilt pages the mutator's accessors met this cycle, on either fault path (selfservice.ts). */
  unbuiltTouches: number;
}

/** A type defined by Heap.defineType (or a built-in array type): its id indexes the type table. */
export class HeapType {
  constructor(readonly id: number, readonly name: string, readonly refs: number, readonly bytes: number, readonly kind: number) {}
}
