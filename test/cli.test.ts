/**
 * The `movegc` command as a user meets it (dist/cli/movegc.js, run as a process): --help for
 * the command and every subcommand, usage errors with a usage line and no stack, output
 * under the current directory, and the provenance every results file carries.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { itKernel } from './kernel.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'dist', 'cli', 'movegc.js');
const COMMANDS = ['bench', 'sweep', 'pause', 'soak', 'binding', 'probe', 'splay', 'example art', 'example gcbench', 'example pinned-io'];

function movegc(args: string[], cwd = root, timeout = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const STACK = /^\s+at /m;

describe('movegc --help', () => {
  it('lists every command', () => {
    const r = movegc(['--help']);
    expect(r.status).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c} `);
  });

  it.each(COMMANDS)('%s --help prints its options and runs nothing', (c) => {
    const t = Date.now();
    const r = movegc([...c.split(' '), '--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`usage: movegc ${c} [options]`);
    expect(r.stdout).toContain('  -h, --help');
    expect(Date.now() - t).toBeLessThan(10_000);
  });
});

describe('usage errors: the reason and a usage line, exit 2, no stack', () => {
  const cases: Array<[string[], RegExp]> = [
    [['bench', '--heapp', '64'], /movegc bench: unknown option --heapp \(did you mean --heap\?\)/],
    [['bench', '--heap', 'abc'], /--heap must be a number, got 'abc'/],
    [['bench', '--heap', '63'], /--heap must be an even number of MiB/],
    [['bench', '--pause-order', 'sideways'], /--pause-order must be one of remap-first, register-first/],
    [['sweep', '--fault-install', 'copy,teleport'], /--fault-install: unknown value 'teleport'/],
    [['binding', '--pages', '1000'], /--pages must be a multiple of 512/],
    [['pause', '--modes', 'move,fast'], /--modes: unknown value 'fast'/],
    [['soak', '--cycles'], /--cycles needs a value/],
    [['example', 'art', '--seconds=-3'], /--seconds must be in \[0.1, 3600\]/],
    [['example', 'art', '--seconds', '-3'], /--seconds needs a value/],
    [['example', 'gcbench', 'extra'], /unexpected argument 'extra'/],
    [['example'], /which example\? examples: art, gcbench, pinned-io/],
    [['benhc'], /unknown command 'benhc' \(did you mean 'bench'\?\)/],
  ];
  it.each(cases)('%j', (args, msg) => {
    const r = movegc(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).toMatch(/^usage: movegc /m);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stdout).toBe('');
  });
});

describe('results', () => {
  it('probe --json reports the capabilities', () => {
    const r = movegc(['probe', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const caps = JSON.parse(r.stdout);
    expect(caps).toHaveProperty('move.ok');
    expect(['move', 'copy', 'stw']).toContain(caps.defaultMode);
  });

  itKernel('bench writes under the current directory, with provenance and every heap option', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['bench', '--heap', '4', '--reps', '1', '--modes', 'stw,move', '--no-floor', '--mutator-ms', '0', '--pause-order', 'register-first'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const file = path.join(cwd, 'bench', 'results', 'latest.json');
      expect(fs.existsSync(file)).toBe(true);
      expect(fs.existsSync(path.join(cwd, 'bench', 'results', 'latest.html'))).toBe(true);
      const res = JSON.parse(fs.readFileSync(file, 'utf8'));
      const p = res.provenance;
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
      expect(p.package).toEqual({ name: 'movegc', version: pkg.version });
      expect(p.gitCommit).toMatch(/^[0-9a-f]{40}$/); // this checkout is a git work tree
      expect(p.load.start).toHaveLength(3);
      expect(p.load.end).toHaveLength(3);
      expect(p.cores).toBe(os.cpus().length);
      expect(typeof p.thp).toBe('string');
      expect(p.busy).toBe(p.load.start[0] > p.cores || p.load.end[0] > p.cores);
      if (p.busy) expect(r.stderr).toMatch(/WARNING: load average [\d.]+ at the (start|end) of the run on \d+ cores/);
      expect(p.heapOptions).toMatchObject({ capacityMiB: [4], modes: ['stw', 'move'], pauseOrder: 'register-first', faultInstall: 'copy', denseThreshold: 0.95 });
      expect(res.main.heapOptions.pauseOrder).toBe('register-first');
      expect(r.stdout).not.toMatch(/goals/); // the targets are in the report's appendix, not the terminal
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  it('an example\'s --out file carries provenance', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['example', 'gcbench', '--mode', 'stw', '--heap', '16', '--stretch', '8', '--long-lived', '6', '--max-depth', '6', '--out', 'r/gc.json'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const out = JSON.parse(fs.readFileSync(path.join(cwd, 'r', 'gc.json'), 'utf8'));
      expect(out.provenance.package.name).toBe('movegc');
      expect(out.provenance.heapOptions).toEqual({ capacityMiB: 16, modes: ['stw'] });
      expect(out.results[0].longLivedOk).toBe(true);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, 150_000);
});
