import type { MoveGcError } from '../../dist/gc/index.js';

/** What fn throws, for assertions on its code (fails, naming fn and its result, if fn returns). */
export function thrown(fn: () => unknown): MoveGcError {
  let r: unknown;
  try {
    r = fn();
  } catch (e) {
    return e as MoveGcError;
  }
  throw new Error(`expected a throw from ${String(fn)}, got ${String(r)}`);
}

/** What p's promise rejects with (fails if it resolves). */
export async function rejected(p: () => Promise<unknown>): Promise<MoveGcError> {
  try {
    await p();
  } catch (e) {
    return e as MoveGcError;
  }
  throw new Error('expected a rejection');
}
