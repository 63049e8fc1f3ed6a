/**
 * Logging through pino: silent by default in the library; command-line tools get readable
 * lines on stderr (pino-pretty, synchronous so nothing is lost at exit), or JSON lines with
 * MOVEGC_LOG_FORMAT=json. Level from MOVEGC_LOG (default info).
 */
import { pino, destination, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { invalidArg } from './errors.js';

export type { Logger };

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function cliLogger(name: string): Logger {
  const level = process.env.MOVEGC_LOG ?? 'info';
  if (process.env.MOVEGC_LOG_FORMAT === 'json') return pino({ name, level, base: undefined }, destination(2));
  return pino({ name, level, base: undefined }, pretty({ destination: 2, sync: true, singleLine: true, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/**
 * The caller's logger (HeapOptions.logger), contained: the collector logs inside pauses, at
 * the end of cycles and in close(), so a log call that throws must never reach it (it would
 * leave a cycle half done, or a heap that cannot be closed). Each method is read once, here
 * (a getter or Proxy is asked once, and must give a function: else ERR_INVALID_ARG_TYPE);
 * a call that throws (or returns a promise that rejects) is dropped.
 */
export function containedLogger(logger: object): Logger {
  const out: Record<string, unknown> = {};
  for (const m of LEVELS) {
    let f: unknown;
    try {
      f = (logger as Record<string, unknown>)[m];
    } catch {
      throw invalidArg(`logger.${m} could not be read (a getter or Proxy trap threw)`);
    }
    if (typeof f !== 'function') throw invalidArg(`logger.${m} must be a function`);
    out[m] = (...args: unknown[]): void => {
      try {
        const r = Reflect.apply(f as (...a: unknown[]) => unknown, logger, args);
        // An async logger's failure is a rejected promise: dropped too (never unhandled).
        if (r instanceof Promise) r.catch(() => {});
      } catch {
        /* the caller's logger failed: the collector goes on */
      }
    };
  }
  return out as unknown as Logger;
}
