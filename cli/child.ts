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
  // Listening before the child exists: a signal between its fork and our listening would end
  // this process alone.
  let child: ChildProcessByStdio<null, Readable, null> | null = null;
  let ending: NodeJS.Signals | null = null;
  const pass = (sig: NodeJS.Signals): void => {
    ending = sig;
    child?.kill(sig);
  };
  // process.exit() (an EPIPE on stdout, a failed run) ends this process without a signal: the
  // child is ended with it rather than left to run out (a review).
  const orphaned = (): void => void child?.kill('SIGTERM');
  const stop = (): void => {
    for (const s of ENDING) process.off(s, pass);
    process.off('exit', orphaned);
  };
  for (const s of ENDING) process.on(s, pass);
  process.on('exit', orphaned);
  try {
    child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    stop();
    throw e;
  }
  if (ending) child.kill(ending);
  child.once('error', stop); // it never ran
  child.once('exit', () => {
    stop();
    // With no listener left, the signal's default action ends this process as it would have.
    if (ending) process.kill(process.pid, ending);
  });
  return child;
}

/**
 * Runs a program to its end, tied to this process's life as spawnTied ties it: resolves to its
 * stdout, rejects naming its exit status or signal. (execFileSync left kernel-floor running
 * for seconds after a SIGINT or SIGTERM of `movegc binding` had ended it: an audit.)
 */
export function runTied(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnTied(cmd, args, { timeout: timeoutMs });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${cmd} ${signal ? `was ended by ${signal}` : `exited with status ${code}`}`));
    });
  });
}
