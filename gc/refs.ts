/**
 * References handed to JavaScript: a number, `tag * 2^32 + word`, where the tag belongs to the
 * heap's current epoch. A pause that may invalidate what a Ref names (the marking pause: its
 * object may have been found dead; the compaction pause: it moved) starts a new epoch, so a
 * Ref held across it is refused with ERR_STALE_REFERENCE instead of silently naming another
 * object. Tags (21 bits) are drawn in turn from one sequence per thread (from a random start),
 * never one another open heap holds: a Ref of another heap is told apart too, and a stale Ref
 * never names an object again until the thread has used 2^21 - 2 epochs (random tags, as before,
 * could recur after the KEEP_OLD_TAGS remembered ones: about 1 in 2^21 per epoch, found by an
 * audit). Within the remembered epochs it is refused as stale, older ones as invalid.
 */
import { ErrorCode, MoveGcError } from './errors.js';

/** A reference to a heap object, valid until the collector's next pause (keep it in a Root to survive). */
export type Ref = number;

export const TAG = 2 ** 32;
const KEEP_OLD_TAGS = 64;
/** Tags run 1..MAX_TAG (a Ref stays below 2^53), then wrap. */
const MAX_TAG = 2 ** 21 - 2;
/**
 * The last tag drawn in this thread (refs.ts is loaded once per thread). The sequence starts
 * at random, so that heaps of different threads, which cannot see each other's tags, are as
 * unlikely to share one as random tags made them (a Ref posted to another thread's heap).
 */
let nextTag = Math.floor(Math.random() * MAX_TAG);

/**
 * Tags held by the process's open heaps, current and remembered (with how many hold each): a
 * new tag is never one of them, so no Ref of another open heap, current or stale within its
 * last KEEP_OLD_TAGS epochs, can pass for one of this heap's.
 */
const held = new Map<number, number>();
const hold = (t: number): void => void held.set(t, (held.get(t) ?? 0) + 1);
const drop = (t: number): void => {
  const n = (held.get(t) ?? 1) - 1;
  if (n > 0) held.set(t, n);
  else held.delete(t);
};

export class RefTags {
  tag = 0;
  /** tag * 2^32: a Ref is base + word. */
  base = 0;
  readonly #old: number[] = [];

  /** A new epoch: every Ref handed out before is stale. */
  retag(): void {
    if (this.tag) {
      this.#old.push(this.tag);
      if (this.#old.length > KEEP_OLD_TAGS) drop(this.#old.shift()!);
    }
    let t: number;
    do t = nextTag = nextTag >= MAX_TAG ? 1 : nextTag + 1;
    while (held.has(t));
    hold(t);
    this.tag = t;
    this.base = t * TAG;
  }

  /** @internal Test hook: the next tag drawn follows `t` (a sequence come around onto held tags). */
  static _drawAfter(t: number): void {
    nextTag = t;
  }

  /** The heap is closed: its tags may be drawn again. */
  release(): void {
    if (this.tag) drop(this.tag);
    for (const t of this.#old.splice(0)) drop(t);
  }

  /** Why `ref` is not a reference of this epoch (`others`: the tags of other live heaps). */
  error(ref: unknown, others: Iterable<number>): MoveGcError {
    if (typeof ref !== 'number') return new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `expected a heap reference (number), got ${ref === null ? 'null' : typeof ref}`);
    const tag = Math.floor(ref / TAG);
    if (this.#old.includes(tag))
      return new MoveGcError(ErrorCode.STALE_REFERENCE, `reference ${ref} is from before a collector pause: objects may have moved or died; keep references across collections in a Root`);
    for (const t of others) if (t === tag) return new MoveGcError(ErrorCode.FOREIGN_REFERENCE, `reference ${ref} belongs to another heap`);
    return new MoveGcError(ErrorCode.INVALID_REFERENCE, `${ref} is not a reference of this heap`);
  }
}
