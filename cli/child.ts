/**
 * Child runs of the CLI (an example's --compare columns, Splay's variants): a child dies with
 * its parent. The signals that end a run (SIGINT, SIGTERM, SIGHUP) are passed on to the child
 * while it runs, and the parent, once the child has exited, ends by the same signal. Without
 * this a `kill` of the parent left the column running on as an orphan until its --seconds
 * were up (an audit); a terminal's Ctrl-C reaches the whole process group either way.
 */
import { spawn, type ChildProcessByStdio, type SpawnOptions } from 'node:child_process';
import type { Readable } from 'node:stream';

const ENDING = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** spawn() with stdin ignored, stdout piped and stderr inherited, tied to this process's life. */
export function spawnTied(cmd: string, args: string[], options: Omit<SpawnOptions, 'stdio'> = {}): ChildProcessByStdio<null, Readable, null> {
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'inherit'] });
  let ending: NodeJS.Signals | null = null;
  const pass = (sig: NodeJS.Signals): void => {
    ending = sig;
    child.kill(sig);
  };
  for (const s of ENDING) process.on(s, pass);
  child.once('exit', () => {
    for (const s of ENDING) process.off(s, pass);
    // With no listener left, the signal's default action ends this process as it would have.
    if (ending) process.kill(process.pid, ending);
  });
  return child;
}
