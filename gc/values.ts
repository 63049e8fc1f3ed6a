/**
 * Values at the package's edge: what a raw setter cannot store as given, the kind of typed
 * array an argument really is, and the bytes a Uint8Array argument really holds (its kind and
 * length read through the built-in getters, its bytes copied by the built-in set, so a lying
 * object cannot change them).
 */
import { ErrorCode, MoveGcError, invalidArg } from './errors.js';

/** Values setU8 / setU32 store as given (negative ones wrap); any other is refused (badValue). */
export const fitsU8 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= -0x80 && v <= 0xff;
export const fitsU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0xffffffff;

/** A value a raw setter cannot store as given (typed arrays would coerce it silently). */
export function badValue(kind: string, v: unknown): MoveGcError {
  if (typeof v !== 'number') return invalidArg(`${kind} value must be a number, got ${typeof v}`);
  return new MoveGcError(ErrorCode.OUT_OF_RANGE, `${kind} value must be an integer that fits (negative values wrap), got ${v}`);
}

const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = (name: PropertyKey): ((this: unknown) => unknown) => Object.getOwnPropertyDescriptor(typedArrayProto, name)!.get as (this: unknown) => unknown;
const taByteLength = intrinsic('byteLength');
const taTag = intrinsic(Symbol.toStringTag);
/** %TypedArray%.prototype.at: validates the view (throws when detached or out of bounds), reads nothing else. */
const taAt = (typedArrayProto as { at: (this: unknown, i: number) => unknown }).at;
/** %TypedArray%.prototype.set: from a typed array, it copies from the source's internal slots. */
const taSet = (typedArrayProto as { set: (this: unknown, src: unknown, at: number) => void }).set;

/**
 * The kind of typed array `x` really is ('Float64Array', ...), or undefined: read from its
 * internal slot by the built-in getter, so no caller code runs (instanceof would run a
 * Proxy's getPrototypeOf trap, and a lie there escaped untyped).
 */
export function typedArrayKind(x: unknown): string | undefined {
  try {
    return Reflect.apply(taTag, x, []) as string | undefined;
  } catch {
    return undefined;
  }
}

/**
 * The length in bytes of a Uint8Array argument, read through the built-in getters (they read
 * the internal slots: a lying `length`, a subclass or a Proxy cannot change it). Throws for a
 * view that is not a Uint8Array, detached, or out of its resized buffer's bounds.
 */
export function ownByteLength(data: unknown): number {
  if (typedArrayKind(data) !== 'Uint8Array') throw invalidArg('data must be a Uint8Array');
  try {
    // A view over a detached buffer, or a fixed-length view over a resizable buffer shrunk
    // below it (out of bounds), reads as length 0 through the getters: an empty write. `at`
    // validates the view first, and throws for both.
    Reflect.apply(taAt, data, [0]);
    return Reflect.apply(taByteLength, data, []) as number;
  } catch {
    throw invalidArg('data is a Uint8Array over a detached buffer, or out of its resized buffer\'s bounds');
  }
}

/**
 * Copies a Uint8Array argument (checked by ownByteLength) into `target` at byte `at`, by the
 * built-in %TypedArray%.prototype.set, which reads the source's internal slots, not its
 * getters. Not through a view over the argument's `buffer`: for a small array V8 keeps the
 * bytes inside the object, and asking for its buffer moves them out to malloc'ed memory (a
 * backing store and its bookkeeping) for every write. Freed later in small pieces, those
 * filled the allocator's fast bins, which the next large allocation on the mutator's thread
 * merged, 1-2.8 ms at a time, inside the collector's pauses (the art demo at 240 000 views).
 */
export function copyBytes(target: Uint8Array, at: number, data: Uint8Array): void {
  Reflect.apply(taSet, target, [data, at]);
}

/**
 * Freezes a plain data tree (objects and arrays of values) in place and returns it: records a
 * heap hands out once and never reads again (Heap.capabilities, fallbacks), so that an edit
 * fails loudly in strict code instead of making the heap say something it did not see.
 */
export function deepFreeze<T>(x: T): T {
  if (typeof x === 'object' && x !== null && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}
