/**
 * The command-line tools against a careless or hostile user (found by a CLI audit): a reader
 * that closes stdout early, environment variables the benches must honour or refuse, values
 * past what a run can take, result files in the way, and a child left running after a signal.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { itKernel } from './kernel.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'dist', 'cli', 'movegc.js');
const STACK = /^\s+at /m;

function run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: opts.timeout ?? 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-tools-'));
}

describe('values past what a run can take: a usage error before the run', () => {
  it('micro-bench --ops, the builder bench --heap, a seed past 32 bits', () => {
    for (const args of [
      [path.join(root, 'dist', 'bench', 'accessors.js'), '--ops', '1e15'], // ran for ever
      [path.join(root, 'dist', 'bench', 'builder.js'), '--heap', '16384'], // a RangeError after a minute
      [path.join(root, 'dist', 'bench', 'builder.js'), '--heap', '255'],
      [CLI, 'soak', '--seed', String(2 ** 32)], // aliased seed 0
      [CLI, 'splay', '--seed', '1e300'],
      [CLI, 'example', 'art', '--seed', String(2 ** 32 + 1)],
      [CLI, 'example', 'art', '--visit', '1e15'], // failed after building the tree, naming an internal parameter
      [CLI, 'binding', '--pages', String(2 ** 40)],
    ]) {
      const r = run(args);
      expect(r.status, `${args.slice(1).join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(STACK);
    }
  });
});

describe('options that do nothing without another, or that another overrides: a usage error', () => {
  it('art --modes or --reps without --compare, --mode with --compare, splay --variant with --variants or --reps', () => {
    for (const [args, what] of [
      [['example', 'art', '--modes', 'copy'], /--modes applies only with --compare/], // ran move
      [['example', 'art', '--reps', '5'], /--reps applies only with --compare/], // ran one round
      [['example', 'gcbench', '--mode', 'stw', '--modes', 'move'], /--modes applies only with --compare/], // ran stw
      [['example', 'gcbench', '--mode', 'stw', '--compare'], /--mode cannot be given with --compare/],
      [['splay', '--variant', 'v8', '--reps', '7'], /--variant cannot be given with --reps/], // ran one v8 rep
      [['splay', '--variant', 'v8', '--variants', 'move'], /--variant cannot be given with --variants/],
    ] as Array<[string[], RegExp]>) {
      const r = run([CLI, ...args], { timeout: 30_000 });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(what);
      expect(r.stderr).not.toMatch(STACK);
    }
  });
});

describe('a sweep whose options one of its heap sizes refuses', () => {
  it('fails before its first point (it ran the sizes before, then lost them)', () => {
    const cwd = tmp();
    try {
      const r = run([CLI, 'sweep', '--heaps', '16,4', '--large-object-bytes', String(8 << 20), '--reps', '1', '--no-floor', '--modes', 'stw', '--out', 'o'], { cwd, timeout: 60_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/largeObjectBytes must be an integer in \[0, capacity\].*\[ERR_OUT_OF_RANGE\]/);
      expect(r.stderr).not.toMatch(/rep 1\//); // no point ran (progress goes to stderr)
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('result files in the way: refused before the run', () => {
  it("a sweep's or Splay's own latest file that is a directory, and --out under /proc or /sys", () => {
    const cwd = tmp();
    try {
      fs.mkdirSync(path.join(cwd, 'sw', 'sweep-latest.json'), { recursive: true });
      fs.mkdirSync(path.join(cwd, 'sp', 'splay-latest.html'), { recursive: true });
      for (const [args, what] of [
        [['sweep', '--heaps', '4', '--reps', '1', '--no-floor', '--modes', 'stw', '--out', 'sw'], /sweep-latest\.json cannot be written \(EISDIR\)/],
        [['splay', '--variants', 'v8', '--reps', '1', '--seconds', '0.1', '--out', 'sp'], /splay-latest\.html cannot be written \(EISDIR\)/],
        [['example', 'gcbench', '--out', '/proc/version'], /kernel file system/],
        [['bench', '--out', '/sys/kernel'], /kernel file system/],
      ] as Array<[string[], RegExp]>) {
        const r = run([CLI, ...args], { cwd, timeout: 30_000 });
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr).toMatch(what);
        expect(r.stdout).toBe(''); // nothing ran
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('--out through /dev/fd (a pipe, as bash >(...) gives)', () => {
  itKernel('is taken: what the name stands for is judged, not /proc/self/fd (refused for a while, a review)', () => {
    // Through a shell's pipe: Node's own stdio pipes are sockets, which /dev/fd cannot reopen.
    const cmd = `"${process.execPath}" "${CLI}" example gcbench --heap 32 --scale 0.01 --stretch 10 --long-lived 8 --max-depth 8 --out /dev/fd/1 | cat`;
    const r0 = spawnSync('/bin/bash', ['-o', 'pipefail', '-c', cmd], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const r = { status: r0.status, stdout: r0.stdout, stderr: r0.stderr };
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/"provenance"/); // the results, written to the pipe that is stdout
  }, ['uffd']);
});

describe('environment variables', () => {
  it('a bad MOVEGC_LOG or MOVEGC_LOG_FORMAT is refused by every command, not only the examples', () => {
    for (const [cmd, env] of [
      [['bench', '--heap', '4'], { MOVEGC_LOG: 'bogus' }],
      [['soak', '--heap', '4'], { MOVEGC_LOG: 'DEBUG' }],
      [['probe'], { MOVEGC_LOG_FORMAT: 'xml' }],
    ] as Array<[string[], NodeJS.ProcessEnv]>) {
      const r = run([CLI, ...cmd], { env, timeout: 30_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/MOVEGC_LOG(_FORMAT)? must be/);
      expect(r.stderr).not.toMatch(STACK);
      expect(r.stdout).toBe('');
    }
  });

  itKernel('MOVEGC_MARKING and MOVEGC_UNBUILT_READS set the bench\'s defaults (it passed the heap\'s own, explicitly), and the results say so', () => {
    const cwd = tmp();
    try {
      const r = run([CLI, 'bench', '--heap', '4', '--reps', '1', '--modes', 'move', '--no-floor', '--mutator-ms', '0', '--out', 'o'], { cwd, env: { MOVEGC_MARKING: 'pause', MOVEGC_UNBUILT_READS: 'build' }, timeout: 120_000 });
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(cwd, 'o', 'latest.json'), 'utf8'));
      expect(res.main.heapOptions).toMatchObject({ marking: 'pause', unbuiltReads: 'build' });
      expect(res.main.modes.move.raw[0].marking).toBe('pause');
      // A flag still wins over the variable.
      const r2 = run([CLI, 'bench', '--heap', '4', '--reps', '1', '--modes', 'move', '--no-floor', '--mutator-ms', '0', '--marking', 'concurrent', '--out', 'o'], { cwd, env: { MOVEGC_MARKING: 'pause' }, timeout: 120_000 });
      expect(r2.status, r2.stderr.slice(-2000)).toBe(0);
      expect(JSON.parse(fs.readFileSync(path.join(cwd, 'o', 'latest.json'), 'utf8')).main.modes.move.raw[0].marking).toBe('concurrent');
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);
});

describe('a reader that closes stdout early (movegc ... | head -1)', () => {
  itKernel('the run ends quietly, exit 0, no EPIPE stack', async () => {
    const child = spawn(process.execPath, [CLI, 'pause', '--sizes', '4,8', '--cycles', '1'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.once('data', () => child.stdout.destroy()); // the reader goes away after its first line
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE|Unhandled 'error'/);
    expect(stderr).not.toMatch(STACK);
    expect(code).toBe(0);
  }, ['uffd'], 60_000);
});

/** Pids of processes whose command line starts with `exe`. */
function pidsOf(exe: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0] === exe) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe('process.exit() in a parent with a tied child (the EPIPE guard exits so)', () => {
  it('ends the child with it', async () => {
    // stderr not piped: the child inherits it, and spawnSync would wait for the child to close it.
    const r = spawnSync(process.execPath, [path.join(root, 'test', 'fixtures', 'tied-exit.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 });
    expect(r.status).toBe(0);
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    // Ended (gone, or a zombie its new parent has not reaped yet), not sleeping out its 30 s.
    const state = (): string => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      } catch {
        return 'gone';
      }
    };
    try {
      const t0 = Date.now();
      while (!['gone', 'Z', 'X'].includes(state()) && Date.now() - t0 < 3000) await new Promise((res) => setTimeout(res, 20));
      expect(['gone', 'Z', 'X']).toContain(state());
    } finally {
      if (!['gone', 'Z', 'X'].includes(state())) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('a signal to movegc binding while kernel-floor runs', () => {
  itKernel('ends kernel-floor too (it ran on for seconds as an orphan)', async () => {
    const dir = tmp();
    const bin = path.join(dir, 'kf');
    // A stand-in for the team's kernel-floor.c (outside the repository) that runs long enough.
    const src = path.join(dir, 'floor.c');
    fs.writeFileSync(src, '#include <unistd.h>\nint main(void) { sleep(30); return 0; }\n');
    try {
      const child = spawn(process.execPath, [CLI, 'binding', '--reps', '1', '--pages', '4096', '--floor', bin], { cwd: dir, stdio: 'ignore', env: { ...process.env, MOVEGC_KERNEL_FLOOR: src } });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
      // Wait for the compiled floor to be running (compiling it takes a second or two).
      const t0 = Date.now();
      while (pidsOf(bin).length === 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
      expect(pidsOf(bin).length).toBe(1);
      child.kill('SIGTERM');
      expect(await exited).toBe('SIGTERM');
      const t1 = Date.now();
      while (pidsOf(bin).length > 0 && Date.now() - t1 < 2000) await new Promise((r) => setTimeout(r, 20));
      expect(pidsOf(bin)).toEqual([]);
    } finally {
      for (const p of pidsOf(bin)) process.kill(p, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, ['uffd', 'move'], 60_000);
});
