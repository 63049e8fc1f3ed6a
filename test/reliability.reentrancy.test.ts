/**
 * Re-entrancy (found by a hostile-caller audit):
 *  - the caller's logger: the collector logs inside its pauses (the flip logs 'plan' before
 *    the compaction pause and 'compaction pause' after the remap, before compaction is armed).
 *    A logger that called back into the heap there (safepoint, an accessor, alloc + root, pin)
 *    got a nested flip (the watchdog aborted the process; in copy mode a hang), a pin the plan
 *    never saw (the pinned object moved), or a mutator blocked forever in a fault no thread
 *    would serve. The logger now runs from a microtask (gc/log.ts): such a call is the
 *    mutator's, between its own calls. Each case runs in a child (a hang or an abort must not
 *    take the runner down): test/fixtures/reentrant-logger.mjs;
 *  - an options getter that closes the Userfaultfd it is passed to, and opens another (which
 *    takes the same descriptor number): the call must not reach the kernel on the new one.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { ErrorCode, Mapping, MoveGcError, PAGE_SIZE, Userfaultfd } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';

const here = path.dirname(fileURLToPath(import.meta.url));

interface ChildRun {
  status: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
  out: Record<string, unknown> | null;
}

/** The fixture in a child, killed after 30 s (async: a hang must not block the runner). */
function run(mode: string, msg: string, action: string): Promise<ChildRun> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(here, 'fixtures/reentrant-logger.mjs'), mode, msg, action]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      c.kill('SIGKILL');
    }, 30_000);
    c.on('close', (status, signal) => {
      clearTimeout(t);
      const last = stdout.trim().split('\n').pop() ?? '';
      resolve({ status, signal: timedOut ? null : signal, timedOut, stderr: stderr.slice(0, 600), out: last.startsWith('{') ? JSON.parse(last) : null });
    });
  });
}

/** The process ends normally, the logger's call ran, and the heap is intact afterwards. */
function expectIntact(r: ChildRun, nested: string | RegExp): void {
  expect(r.timedOut, `hung (30 s): ${r.stderr}`).toBe(false);
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  const o = JSON.stringify(r.out);
  expect(r.out?.nested, o).toMatch(nested);
  expect(r.out?.collect, o).toBe('ok');
  expect(r.out?.verify, o).toEqual([]);
  expect(r.out?.chain, o).toBe(20000);
  expect(r.out?.gc2, o).toBe('ok');
}

describe('a logger that calls back into the heap when the collector logs inside a pause', () => {
  for (const mode of ['move', 'copy'] as const) {
    itKernel(`[${mode}] safepoint() from the flip's 'plan' log`, async () => {
      expectIntact(await run(mode, 'plan', 'safepoint'), /^safepoint (true|false)$/);
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 40_000);
  }
  itKernel(`[move] alloc() and root() from the flip's 'plan' log`, async () => {
    const r = await run('move', 'plan', 'alloc');
    expectIntact(r, 'alloc');
    expect(r.out?.extra).toBe(7);
  }, ['uffd', 'move'], 40_000);
  itKernel(`[move] pin() from the flip's 'plan' log`, async () => {
    expectIntact(await run('move', 'plan', 'pin'), 'pin');
  }, ['uffd', 'move'], 40_000);
  itKernel(`[move] an accessor from the 'compaction pause' log`, async () => {
    expectIntact(await run('move', 'compaction pause', 'read'), /^read \d+$/);
  }, ['uffd', 'move'], 40_000);
});

describe('an options getter that closes the Userfaultfd mid-call', () => {
  itKernel('register(): ERR_CLOSED, and no range registered on the descriptor that took its number', () => {
    const m = Mapping.anonymous(4 * PAGE_SIZE);
    const u1 = Userfaultfd.open();
    let u2: Userfaultfd | undefined;
    const mode = {
      get missing() {
        u1.close();
        u2 = Userfaultfd.open(); // the lowest free descriptor: u1's number
        return true;
      },
    };
    const err = thrown(() => u1.register(m.address, 4 * PAGE_SIZE, mode));
    const u3 = Userfaultfd.open();
    let third: unknown;
    try {
      u3.register(m.address, 4 * PAGE_SIZE); // EBUSY if another userfaultfd holds the range
    } catch (e) {
      third = e;
    }
    const fds = [u1.fd, u2!.fd];
    u2!.close();
    u3.close();
    m.close();
    expect(fds[0]).toBe(fds[1]); // the premise: the number was reused
    expect(third, 'the range went to a descriptor the caller never passed').toBeUndefined();
    expect(err).toBeInstanceOf(MoveGcError);
    expect(err.code).toBe(ErrorCode.CLOSED);
  }, ['uffd']);

  itKernel('moveOnce(): ERR_CLOSED, not an ioctl on the reused descriptor', () => {
    const m = Mapping.anonymous(2 * PAGE_SIZE);
    const u = Userfaultfd.open();
    let other: Userfaultfd | undefined;
    const opts = {
      get dontWake() {
        u.close();
        other = Userfaultfd.open();
        return false;
      },
    };
    const err = thrown(() => u.moveOnce(m.address, m.address + PAGE_SIZE, PAGE_SIZE, opts));
    other?.close();
    m.close();
    expect(err.code, err.message).toBe(ErrorCode.CLOSED);
  }, ['uffd', 'move']);
});
