/**
 * Roots and pins: what keeps objects alive across collections. A Root is a slot in the root
 * table, forwarded by the compaction pause; a Pin keeps its object alive and at its address
 * (its pages are never remapped: compaction flows around them, see plan.ts).
 */
import { ErrorCode, MoveGcError } from './errors.js';
import type { Ref } from './refs.js';

/**
 * What Root and Pin call back into: an object the heap keeps private (MutatorHeap #owner), not
 * the heap itself, so that no caller can release, read or overwrite a slot or a pin count that
 * is not its own.
 */
export interface RootOwner {
  get(slot: number): Ref | null;
  set(slot: number, ref: Ref | null): void;
  release(slot: number): void;
  encode(w: number): Ref;
  pinAddress(w: number): number;
  unpin(w: number): void;
}

/** The heap's side of its roots and pins, as rootOwnerOf needs it (MutatorHeap). */
export interface RootHeap {
  /** Throws if the heap refuses calls (closed, or lost). */
  check(): void;
  /** A word index as this epoch's Ref; and a Ref (or null) as a checked word index (0: null). */
  encode(w: number): Ref;
  word(ref: Ref | null): number;
  readonly address: number;
}

/** The RootOwner of a heap's root table: reads, writes and pin addresses check the heap first; a release or unpin after close is harmless, and allowed. */
export function rootOwnerOf(roots: RootTable, heap: RootHeap): RootOwner {
  return {
    get: (slot) => {
      heap.check();
      const w = roots.words[slot];
      return w === 0 ? null : heap.encode(w);
    },
    set: (slot, ref) => {
      heap.check();
      roots.words[slot] = heap.word(ref);
    },
    release: (slot) => roots.release(slot),
    encode: (w) => {
      heap.check();
      return heap.encode(w);
    },
    pinAddress: (w) => {
      heap.check();
      return heap.address + w * 8;
    },
    unpin: (w) => roots.unpin(w),
  };
}

/**
 * Roots and pins are made by the heap only (heap.root, heap.pin): the class is exported for
 * instanceof, but one built on a slot or word of a caller's choosing would release another's
 * root, unpin another's pin, or root nothing at all.
 */
const MAKE = Symbol('Root or Pin');

/** @internal The heap's way to make a Root (MutatorHeap.root). */
export function makeRoot(owner: RootOwner, slot: number): Root {
  return new Root(MAKE, owner, slot);
}

/** @internal The heap's way to make a Pin (MutatorHeap.pin). */
export function makePin(owner: RootOwner, word: number): Pin {
  return new Pin(MAKE, owner, word);
}

/** A root: keeps an object alive and tracks it across collections. */
export class Root {
  readonly #owner: RootOwner;
  readonly #slot: number;
  #released = false;
  /** @internal Made by heap.root(); anything else is refused. */
  constructor(make: symbol, owner: RootOwner, slot: number) {
    if (make !== MAKE) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a Root is made by heap.root()');
    this.#owner = owner;
    this.#slot = slot;
  }
  get(): Ref | null {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'root released');
    return this.#owner.get(this.#slot);
  }
  set(ref: Ref | null): void {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'root released');
    this.#owner.set(this.#slot, ref);
  }
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#owner.release(this.#slot);
  }
}

/** A pin: the object stays alive and at its address until released; compaction flows around it. */
export class Pin {
  readonly #owner: RootOwner;
  readonly #word: number;
  #released = false;
  /** @internal Made by heap.pin(); anything else is refused. */
  constructor(make: symbol, owner: RootOwner, word: number) {
    if (make !== MAKE) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a Pin is made by heap.pin()');
    this.#owner = owner;
    this.#word = word;
  }
  /** The pinned object's current reference. */
  get ref(): Ref {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'pin released');
    return this.#owner.encode(this.#word);
  }
  /** Its virtual address: fixed while pinned (hand it to I/O). */
  get address(): number {
    if (this.#released) throw new MoveGcError(ErrorCode.CLOSED, 'pin released');
    return this.#owner.pinAddress(this.#word);
  }
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#owner.unpin(this.#word);
  }
}

/** The root table (word per slot, 0 = null) and the pin counts. */
export class RootTable {
  words = new Uint32Array(1024);
  count = 0;
  readonly #free: number[] = [];
  readonly pins = new Map<number, number>(); // word -> pin count
  /** Bumped whenever a pin is added (a plan made before does not know its span). */
  pinsAdded = 0;

  add(w: number): number {
    let slot = this.#free.pop();
    if (slot === undefined) {
      if (this.count === this.words.length) {
        const r = new Uint32Array(this.words.length * 2);
        r.set(this.words);
        this.words = r;
      }
      slot = this.count++;
    }
    this.words[slot] = w;
    return slot;
  }

  release(slot: number): void {
    this.words[slot] = 0;
    this.#free.push(slot);
  }

  pin(w: number): void {
    this.pins.set(w, (this.pins.get(w) ?? 0) + 1);
    this.pinsAdded++;
  }

  unpin(w: number): void {
    const n = (this.pins.get(w) ?? 0) - 1;
    if (n > 0) this.pins.set(w, n);
    else this.pins.delete(w);
  }

  /** Every non-null root word, then every pinned word. */
  rootWords(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.words[i] !== 0) out.push(this.words[i]);
    for (const w of this.pins.keys()) out.push(w);
    return out;
  }
}
