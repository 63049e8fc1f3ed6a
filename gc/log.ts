/**
 * Logging through pino: silent by default in the library; command-line tools get readable
 * lines on stderr (pino-pretty, synchronous so nothing is lost at exit), or JSON lines with
 * MOVEGC_LOG_FORMAT=json. Level from MOVEGC_LOG (default info).
 */
import { createRequire } from 'node:module';
import { pino, destination, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import { ErrorCode, MoveGcError, invalidArg } from './errors.js';

export type { Logger };
/** What the heap logs through (heap.log, the collector's): the four levels it uses, no more. */
export type HeapLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const CLI_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The command-line tools' MOVEGC_LOG and MOVEGC_LOG_FORMAT, checked: a bad value throws ERR_OUT_OF_RANGE. */
export function cliLogEnv(): { level: string; format: 'json' | 'pretty' } {
  const level = process.env.MOVEGC_LOG ?? 'info';
  if (!CLI_LEVELS.includes(level)) throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `MOVEGC_LOG must be one of ${CLI_LEVELS.join(', ')}, got '${level.slice(0, 40)}'`);
  const format = process.env.MOVEGC_LOG_FORMAT ?? 'pretty';
  if (format !== 'json' && format !== 'pretty') throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `MOVEGC_LOG_FORMAT must be json or pretty, got '${format.slice(0, 40)}'`);
  return { level, format };
}

export function cliLogger(name: string): Logger {
  const { level, format } = cliLogEnv();
  if (format === 'json') return pino({ name, level, base: undefined }, destination(2));
  // Loaded here, not at the top: it costs every collector Worker ~35 ms to load, and only the CLIs use it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino({ name, level, base: undefined }, pretty({ destination: 2, sync: true, singleLine: true, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/**
 * The caller's logger (HeapOptions.logger), contained. The collector logs inside its pauses,
 * at the end of cycles and in close(), so:
 *  - the caller's logger runs from a microtask, in order, never inside a heap call: a logger
 *    that called back into the heap from inside a pause (safepoint, an accessor, alloc, pin)
 *    found it half flipped (nested flips, a pin the plan never saw, an access to a page no
 *    thread would serve: a hostile-caller audit). From a microtask, such a call is the
 *    mutator's, made between its own calls, like any other;
 *  - a call that throws (or returns a promise that rejects) is dropped: it would otherwise
 *    leave a cycle half done, or a heap that cannot be closed.
 * Each method is read once, here (a getter or Proxy is asked once, and must give a function:
 * else ERR_INVALID_ARG_TYPE).
 */
export function containedLogger(logger: object): HeapLogger {
  const out: Record<string, unknown> = {};
  const queue: Array<[(...a: unknown[]) => unknown, unknown[]]> = [];
  const flush = (): void => {
    for (const [f, args] of queue.splice(0)) {
      try {
        const r = Reflect.apply(f, logger, args);
        // An async logger's failure is a rejected promise: dropped too (never unhandled).
        if (r instanceof Promise) r.catch(() => {});
      } catch {
        /* the caller's logger failed: the collector goes on */
      }
    }
  };
  for (const m of LEVELS) {
    let f: unknown;
    try {
      f = (logger as Record<string, unknown>)[m];
    } catch {
      throw invalidArg(`logger.${m} could not be read (a getter or Proxy trap threw)`);
    }
    if (typeof f !== 'function') throw invalidArg(`logger.${m} must be a function`);
    out[m] = (...args: unknown[]): void => {
      if (queue.push([f as (...a: unknown[]) => unknown, args]) === 1) queueMicrotask(flush);
    };
  }
  // Frozen: it is the heap's own (heap.log), and the collector calls it inside its pauses.
  return Object.freeze(out) as unknown as HeapLogger;
}
