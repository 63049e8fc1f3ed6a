/**
 * Holding one of this process's threads stopped, as a debugger would (ptrace), with
 * test/fixtures/freeze-thread.py: what the tests that hold a collector thread share.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The holder: `python3 FREEZER TID SECONDS` prints 'frozen', then 'detached' once its stdin closes. */
export const FREEZER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/freeze-thread.py');

/** Why no thread can be held here (no python3 with ctypes, or ptrace not allowed), or undefined. */
export function freezeUnavailable(): string | undefined {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import ctypes'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `no /usr/bin/python3 with ctypes, which holds the thread (${r.error?.message ?? r.stderr})`;
  const scope = fs.existsSync('/proc/sys/kernel/yama/ptrace_scope') ? fs.readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim() : '0';
  if (scope !== '0' && process.getuid?.() !== 0) return `ptrace of this process is not allowed (yama ptrace_scope ${scope}, not root)`;
  return undefined;
}

/** The id of this process's thread named `comm` (e.g. 'movegc-marker'). */
export function tidOf(comm: string): number {
  const t = fs.readdirSync('/proc/self/task').find((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
  expect(t, `a thread named ${comm}`).toBeDefined();
  return Number(t);
}

/** Polls `ok` every 10 ms until it holds; throws naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A thread held by the holder (holdThread). */
export interface Held {
  /** Lets the thread go (closes the holder's stdin); may be called again. */
  release(): void;
  /** True once the holder says it let go. */
  readonly released: boolean;
  /** Resolves once the holder has let go (call release() first). */
  gone(): Promise<void>;
}

/** Holds thread `tid` stopped (for at most `seconds`); resolves once it is. */
export async function holdThread(tid: number, seconds = 60): Promise<Held> {
  const holder = spawn('/usr/bin/python3', [FREEZER, String(tid), String(seconds)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const held: Held = {
    release: () => void holder.stdin.end(),
    get released() {
      return out.includes('detached');
    },
    gone: () => until('the holder to let go', () => held.released),
  };
  await until('the thread to be held', () => out.includes('frozen') || holder.exitCode !== null);
  expect(out, 'the holder').toContain('frozen');
  return held;
}
