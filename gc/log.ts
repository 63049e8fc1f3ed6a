/** Logging through pino: silent by default in the library; the CLI passes a readable logger. */
import { pino, destination, type Logger } from 'pino';

export type { Logger };

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger for command-line tools: readable lines on stderr, level from MOVEGC_LOG (default info). */
export function cliLogger(name: string): Logger {
  return pino({ name, level: process.env.MOVEGC_LOG ?? 'info', base: undefined }, destination(2));
}
