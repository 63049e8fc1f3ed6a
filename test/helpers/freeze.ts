/**
 * Holding one of this process's threads stopped, as a debugger would (ptrace), with
 * test/fixtures/freeze-thread.py: what the tests that hold a collector thread share.
 */
import { spawnSync } from 'node:child_process';
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
