import os from 'node:os';

/**
 * Typed errors. Every error movegc throws is a {@link MoveGcError} with a `code`: the errno
 * name where the kernel refused (EBUSY, EEXIST, EPERM, ...), or an ERR_* code for misuse.
 */

/** Codes for misuse that never reached the kernel. */
export const ErrorCode = Object.freeze({
  INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  /** An options object with a key the call does not know (a typo would otherwise be ignored). */
  UNKNOWN_OPTION: 'ERR_UNKNOWN_OPTION',
  OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  /** Unaligned address or zero length: the kernel would say EINVAL, we say why first. */
  EINVAL: 'EINVAL',
  CLOSED: 'ERR_CLOSED',
  HEAP_FULL: 'ERR_HEAP_FULL',
  STALE_REFERENCE: 'ERR_STALE_REFERENCE',
  FOREIGN_REFERENCE: 'ERR_FOREIGN_REFERENCE',
  INVALID_REFERENCE: 'ERR_INVALID_REFERENCE',
  UNKNOWN_TYPE: 'ERR_UNKNOWN_TYPE',
  FIELD_RANGE: 'ERR_FIELD_RANGE',
  CYCLE_ACTIVE: 'ERR_CYCLE_ACTIVE',
  COLLECTOR_FAILED: 'ERR_COLLECTOR_FAILED',
  UNSUPPORTED: 'ERR_UNSUPPORTED',
  VERIFY_FAILED: 'ERR_VERIFY_FAILED',
  /** An object header that cannot be parsed: the walk stops instead of looping. */
  HEAP_CORRUPT: 'ERR_HEAP_CORRUPT',
  /** More pinned spans than the collector can plan around. */
  PIN_LIMIT: 'ERR_PIN_LIMIT',
  /** A bug in movegc: an error without a code of its own, wrapped so that callers still get one. */
  INTERNAL: 'ERR_INTERNAL',
  /** A failure the caller asked for (HeapOptions.inject), never seen in normal use. */
  INJECTED: 'ERR_INJECTED',
  /** The native addon is not built or does not load (see native.ts for the hint). */
  ADDON_UNAVAILABLE: 'ERR_ADDON_UNAVAILABLE',
} as const);

export class MoveGcError extends Error {
  readonly code: string;
  /** The kernel's errno, where the kernel said no. */
  readonly errno?: number;
  /** The system call or ioctl that failed. */
  readonly syscall?: string;
  /** Bytes a MOVE/COPY/ZEROPAGE handled before it failed. */
  readonly bytesDone?: number;

  constructor(code: string, message: string, extra: { errno?: number; syscall?: string; bytesDone?: number; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'MoveGcError';
    this.code = code;
    if (extra.errno !== undefined) this.errno = extra.errno;
    if (extra.syscall !== undefined) this.syscall = extra.syscall;
    if (extra.bytesDone !== undefined) this.bytesDone = extra.bytesDone;
  }
}

/** Why the kernel says each errno for userfaultfd work: appended to messages. */
const HINTS: Record<string, string> = {
  EBUSY: 'source page pinned (io_uring/DMA) or not exclusive to this process (shared after fork, KSM)',
  EEXIST: 'destination page already populated (another thread installed it)',
  ENOENT: 'source range has a hole (use allowSrcHoles)',
  EINVAL: 'bad range: unaligned, not private anonymous, destination not registered with this userfaultfd, or ranges in different VMAs',
  EPERM: 'not permitted: unprivileged userfaultfd disabled (vm.unprivileged_userfaultfd=0) or a seccomp filter',
  ENOSYS: 'userfaultfd not available in this kernel or blocked by seccomp',
  EAGAIN: 'the mapping changed during the operation: retry',
  ESRCH: 'the target process has exited',
};

/** Turns an error from the addon into a MoveGcError, keeping errno, syscall and progress. */
export function fromNative(e: unknown, context?: string): MoveGcError {
  if (isMoveGcError(e)) return e;
  const err = e as { code?: string; errno?: number; syscall?: string; bytesDone?: number; message?: string };
  // The addon's errors carry a code; anything else is a bug on the way there (ERR_INTERNAL).
  const code = typeof err?.code === 'string' ? err.code : ErrorCode.INTERNAL;
  // The hints are about userfaultfd's ioctls (ENOENT and EBUSY: about MOVE's source); other
  // calls (madvise, mremap) say the errno only.
  const sc = err?.syscall ?? '';
  const hint = /^(UFFDIO_|userfaultfd)/.test(sc) && ((code !== 'ENOENT' && code !== 'EBUSY') || sc === 'UFFDIO_MOVE') ? HINTS[code] : undefined;
  let msg = messageOf(e);
  if (hint && err?.errno !== undefined) msg += ` [${hint}]`;
  if (context) msg = `${context}: ${msg}`;
  return new MoveGcError(code, msg, { errno: err?.errno, syscall: err?.syscall, bytesDone: err?.bytesDone, cause: e });
}

/** Errors leaving the public API always carry a code: one without is a bug, wrapped as ERR_INTERNAL. */
export function internal(e: unknown, context: string): MoveGcError {
  if (isMoveGcError(e)) return e;
  return new MoveGcError(ErrorCode.INTERNAL, `${context}: ${messageOf(e)}`, { cause: e });
}

/** EINVAL said by the typed layer before the kernel would: with its errno, as the kernel's. */
export function einval(message: string, syscall?: string): MoveGcError {
  return new MoveGcError(ErrorCode.EINVAL, message, { errno: os.constants.errno.EINVAL, syscall });
}

export function invalidArg(message: string): MoveGcError {
  return new MoveGcError(ErrorCode.INVALID_ARG_TYPE, message);
}
/**
 * fn's result; anything it throws that is not a MoveGcError (a caller's argument that lied: a
 * Proxy's trap, a getter, a value of the wrong shape) comes out as ERR_INVALID_ARG_TYPE,
 * saying `what` was expected, with the original as its cause. For the package's pure helpers.
 */
export function asArgument<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isMoveGcError(e)) throw e;
    throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `${what} (${messageOf(e)})`, { cause: e });
  }
}
export function outOfRange(message: string): MoveGcError {
  return new MoveGcError(ErrorCode.OUT_OF_RANGE, message);
}

/**
 * A caller's value as an error message shows it. Never throws and never runs the caller's
 * code: objects (a Proxy, a throwing toString or Symbol.toPrimitive, a null prototype) are
 * named by their type only; primitives (String() of a Symbol too) by their value, shortened.
 */
export function shown(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  const s = String(v);
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}

/** A thrown value's message: its string `message`, else the value as shown(); never throws. */
export function messageOf(e: unknown): string {
  try {
    const m = (e as Error)?.message;
    if (typeof m === 'string') return m;
  } catch {
    /* a getter or Proxy trap threw */
  }
  return shown(e);
}

/** One of ours, asked without running a thrown Proxy's traps (instanceof would). */
export function isMoveGcError(e: unknown): e is MoveGcError {
  try {
    return e instanceof MoveGcError;
  } catch {
    return false;
  }
}
