/** Argument checks shared by the typed layer: fail with a code before reaching the kernel. */
import { ErrorCode, MoveGcError, invalidArg, outOfRange } from './errors.js';
import { PAGE_SIZE } from './native.js';

export function checkInt(name: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw invalidArg(`${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v)) throw outOfRange(`${name} must be a safe integer, got ${v}`);
  if (v < min || v > max) throw outOfRange(`${name} must be in [${min}, ${max}], got ${v}`);
  return v;
}

/** A page-aligned address/length pair with non-zero length. */
export function checkRange(what: string, address: unknown, length: unknown): void {
  checkInt(`${what} address`, address);
  checkInt(`${what} length`, length);
  if ((length as number) === 0) throw new MoveGcError(ErrorCode.EINVAL, `${what}: length must not be zero`);
  if ((address as number) % PAGE_SIZE !== 0)
    throw new MoveGcError(ErrorCode.EINVAL, `${what}: address 0x${(address as number).toString(16)} is not page aligned (${PAGE_SIZE})`);
  if ((length as number) % PAGE_SIZE !== 0)
    throw new MoveGcError(ErrorCode.EINVAL, `${what}: length ${length} is not a multiple of the page size (${PAGE_SIZE})`);
}
