/** Argument checks shared by the typed layer: fail with a code before reaching the kernel. */
import { ErrorCode, MoveGcError, einval, invalidArg, isMoveGcError, outOfRange } from './errors.js';
import { PAGE_SIZE } from './native.js';

export function checkInt(name: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw invalidArg(`${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v)) throw outOfRange(`${name} must be a safe integer, got ${v}`);
  if (v < min || v > max) throw outOfRange(`${name} must be in [${min}, ${max}], got ${v}`);
  return v;
}

/**
 * A page-aligned address/length pair with non-zero length. `what` starts with the system
 * call the range is for (e.g. "UFFDIO_MOVE destination"): the error names it, as the kernel's would.
 */
export function checkRange(what: string, address: unknown, length: unknown): void {
  checkInt(`${what} address`, address);
  checkInt(`${what} length`, length);
  if ((length as number) === 0) throw rangeError(what, 'length must not be zero');
  if ((address as number) % PAGE_SIZE !== 0) throw rangeError(what, `address 0x${(address as number).toString(16)} is not page aligned (${PAGE_SIZE})`);
  if ((length as number) % PAGE_SIZE !== 0) throw rangeError(what, `length ${length} is not a multiple of the page size (${PAGE_SIZE})`);
}

function rangeError(what: string, why: string): MoveGcError {
  return einval(`${what}: ${why}`, what.split(/[ (]/)[0]);
}

/**
 * An options object, read once: undefined (no options), or a plain object whose keys are all
 * in `known` (an unknown key is a typo or an option of another call: rejected, never
 * ignored). Returns a snapshot of its own enumerable keys (a getter or Proxy is asked once
 * each; one that throws is ERR_INVALID_ARG_TYPE, not the caller's error).
 */
export function readOptions(what: string, opts: unknown, known: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  if (opts === undefined) return out;
  if (typeof opts !== 'object' || opts === null || isArray(what, opts)) throw invalidArg(`${what} must be an object, got ${opts === null ? 'null' : typeof opts}`);
  let keys: string[];
  try {
    keys = Object.keys(opts);
  } catch {
    throw invalidArg(`${what} could not be read (a Proxy trap threw)`);
  }
  for (const k of keys) {
    if (!known.includes(k)) throw new MoveGcError(ErrorCode.UNKNOWN_OPTION, `${what}: unknown option ${JSON.stringify(k)} (expected ${known.join(', ')})`);
    try {
      out[k] = (opts as Record<string, unknown>)[k];
    } catch {
      throw invalidArg(`${what}.${k} could not be read (a getter or Proxy trap threw)`);
    }
  }
  return out;
}

/**
 * Array.isArray, which throws on a revoked Proxy (before any trap could): that is a typed
 * error too, not the caller's TypeError.
 */
export function isArray(what: string, v: unknown): boolean {
  try {
    return Array.isArray(v);
  } catch {
    throw invalidArg(`${what} could not be read (a revoked Proxy)`);
  }
}

/**
 * A list option, read once into a plain array: its length once, then each index once (a
 * Proxy, subclass or getter asked once each; never its iterator, which need not end). Every
 * list option is short: a longer, or sparse and huge, one is refused before it is read.
 */
export function readList(what: string, v: unknown, max = 64): unknown[] {
  if (v === undefined) return [];
  if (!isArray(what, v)) throw invalidArg(`${what} must be an array, got ${v === null ? 'null' : typeof v}`);
  try {
    // A number, read once: an object's valueOf, asked again by each comparison, could pass the
    // maximum with one value and run the loop with another (a hostile-tester audit read 3e7
    // entries, 14 s, through a `hide` list so checked against 64).
    const n: unknown = (v as unknown[]).length;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalidArg(`${what} has a length that is not a non-negative integer`);
    if (n > max) throw outOfRange(`${what} has ${n} entries, at most ${max}`);
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push((v as unknown[])[i]);
    return out;
  } catch (e) {
    if (isMoveGcError(e)) throw e;
    throw invalidArg(`${what} could not be read (a getter or Proxy trap threw)`);
  }
}

/** Optional boolean flags of an options object. */
export function checkFlags(what: string, opts: Record<string, unknown>, flags: readonly string[]): void {
  for (const f of flags)
    if (opts[f] !== undefined && typeof opts[f] !== 'boolean') throw invalidArg(`${what}.${f} must be a boolean, got ${typeof opts[f]}`);
}
