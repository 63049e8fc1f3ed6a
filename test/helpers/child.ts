/** Runs a test fixture (test/fixtures) in a child process, for what must not run in the test's own. */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

/**
 * Runs fixture `name` with `arg` as JSON in its first argument, core dumps off (some abort on
 * purpose); returns the result, its wall time and the JSON lines it printed on stdout.
 */
export function runChild(name: string, arg: unknown, timeoutMs: number): { r: SpawnSyncReturns<string>; ms: number; end: number; lines: Array<Record<string, unknown>> } {
  const t0 = Date.now();
  const r = spawnSync('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, fixture(name), JSON.stringify(arg)], { encoding: 'utf8', timeout: timeoutMs });
  const end = Date.now();
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { r, ms: end - t0, end, lines };
}

/**
 * A child process awaited without blocking the event loop (vitest's fork pool times its
 * messages out when a test blocks it for a minute); killed after `timeoutMs` (signal set).
 */
export function spawnAsync(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/**
 * Runs fixture `name` with `args` in a child (awaited as spawnAsync does), killed after
 * `timeoutMs`: for what must not take the runner down if it hangs or crashes. Expects it was
 * not killed and exited 0; returns its last line of stdout, parsed as JSON.
 */
export async function fixtureResult(name: string, args: string[], timeoutMs: number): Promise<any> {
  const r = await spawnAsync(process.execPath, [fixture(name), ...args], timeoutMs);
  expect(r.signal, `killed by ${r.signal} (a hang, or a crash)\n${r.stderr}`).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
