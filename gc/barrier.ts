/**
 * The write barrier of concurrent marking: an insertion (Dijkstra) barrier with a log, the
 * incremental-update design ART's card table implements. While the marker runs, every
 * reference the mutator stores into a heap slot that is not yet marked (and not black:
 * allocated since marking began) is appended to a log the marker consumes concurrently; the
 * marking pause drains what is left and re-scans the roots.
 *
 * Why insertion and not snapshot-at-the-beginning (G1, ZGC): a SATB barrier logs the value a
 * store overwrites and relies on every root being in the snapshot. Here JavaScript locals
 * are roots the collector cannot see: a Ref held in a local since before marking, stored into
 * the heap during marking, was never in the snapshot and would be lost. The insertion barrier
 * shades exactly that value. Root stores need no barrier: the marking pause re-scans roots.
 * A log instead of cards: the pause then costs the entries left in the log, not a scan of
 * every object on a dirty card.
 *
 * The log is a single-producer single-consumer ring in shared memory (head and tail in the
 * control block); when it is full the mutator spills to a local array that the marking pause
 * drains, so the mutator never waits for the marker. With no cycle marking, the barrier is
 * one load and a branch in the accessor (see Heap.setRef).
 */
import { Ctl } from './control.js';

export const LOG_CAPACITY = 1 << 16;
const MASK = LOG_CAPACITY - 1;

/** The mutator's end of the log. */
export class BarrierLog {
  readonly #ring: Uint32Array;
  readonly #ctl: Int32Array;
  #tail = 0;
  /** Entries that did not fit while the ring was full: drained by the marking pause. */
  readonly spill: number[] = [];
  /** Entries appended this cycle (ring and spill). */
  entries = 0;

  constructor(ring: Uint32Array, ctl: Int32Array) {
    this.#ring = ring;
    this.#ctl = ctl;
  }

  /** Empties the log for a new marking (the marker is idle: nobody consumes). */
  reset(): void {
    this.#tail = 0;
    this.spill.length = 0;
    this.entries = 0;
    Atomics.store(this.#ctl, Ctl.LOG_HEAD, 0);
    Atomics.store(this.#ctl, Ctl.LOG_TAIL, 0);
  }

  append(w: number): void {
    this.entries++;
    const t = this.#tail;
    if (((t - Atomics.load(this.#ctl, Ctl.LOG_HEAD)) | 0) >= LOG_CAPACITY) {
      this.spill.push(w);
      return;
    }
    this.#ring[t & MASK] = w;
    this.#tail = (t + 1) | 0;
    Atomics.store(this.#ctl, Ctl.LOG_TAIL, this.#tail);
  }
}

/**
 * The consumer's end: hands every entry in [head, tail) to `visit` and advances head. The
 * marker calls it while marking; the marking pause calls it once the marker is parked.
 */
export function drainLog(ring: Uint32Array, ctl: Int32Array, visit: (w: number) => void): number {
  const h = Atomics.load(ctl, Ctl.LOG_HEAD);
  const t = Atomics.load(ctl, Ctl.LOG_TAIL);
  const n = (t - h) | 0;
  for (let i = 0; i < n; i++) visit(ring[(h + i) & MASK]);
  if (n > 0) Atomics.store(ctl, Ctl.LOG_HEAD, t);
  return n;
}
