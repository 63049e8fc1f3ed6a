/**
 * Logging through pino: silent by default in the library; command-line tools get readable
 * lines on stderr (pino-pretty, synchronous so nothing is lost at exit), or JSON lines with
 * MOVEGC_LOG_FORMAT=json. Level from MOVEGC_LOG (default info).
 */
import { pino, destination, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function cliLogger(name: string): Logger {
  const level = process.env.MOVEGC_LOG ?? 'info';
  if (process.env.MOVEGC_LOG_FORMAT === 'json') return pino({ name, level, base: undefined }, destination(2));
  return pino({ name, level, base: undefined }, pretty({ destination: 2, sync: true, singleLine: true, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}
