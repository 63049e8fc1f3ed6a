/**
 * What a result needs to be reproduced and judged: the package version and git commit, the
 * command, the machine (kernel, cores, THP, Node), the load average when the run started and
 * ended (these machines are shared: a busy one makes every figure slower and noisier), and the
 * heap options used. Every JSON the bench, the sweep, Splay and the examples write carries one.
 * Reads sysfs and package.json only: no addon needed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Provenance {
  package: { name: string; version: string };
  /** HEAD of the package's own git checkout; null when installed from a tarball. */
  gitCommit: string | null;
  /** Uncommitted changes to tracked files (null without git). */
  gitDirty: boolean | null;
  command: string;
  cwd: string;
  node: string;
  kernel: string;
  cores: number;
  /** /sys/kernel/mm/transparent_hugepage/enabled: the bracketed choice. */
  thp: string;
  /** os.loadavg() (1, 5, 15 min) when the run started and when it ended. */
  load: { start: number[]; end: number[] | null };
  /** Whether the 1-minute load exceeded the cores at the start or the end. */
  busy: boolean;
  /** Every heap option the run passed (per variant where they differ). */
  heapOptions: Record<string, unknown>;
}

/** The package root: the directory with movegc's package.json above this file. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p) && (JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string }).name === 'movegc') return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    dir = up;
  }
}

function git(root: string, args: string[]): string | null {
  try {
    return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

export function thpSetting(): string {
  try {
    const s = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    return /\[(\w+)\]/.exec(s)?.[1] ?? s.trim();
  } catch {
    return 'unknown';
  }
}

const r2 = (xs: number[]): number[] => xs.map((x) => Math.round(x * 100) / 100);

function warnIfBusy(when: string, load: number[], cores: number): boolean {
  if (load[0] <= cores) return false;
  process.stderr.write(
    `WARNING: load average ${load[0].toFixed(2)} at the ${when} of the run on ${cores} cores: other work competes for the CPUs; ` +
      'timings are slower and noisier than on an idle machine (compare ratios, repeat before trusting small differences)\n',
  );
  return true;
}

/** Starts a record (warns now if the machine is busy); call end() when the run is done. */
export function startProvenance(command: string, heapOptions: Record<string, unknown>): { record: Provenance; end: () => Provenance } {
  const root = packageRoot();
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  // Only the package's own checkout: an installed copy inside someone's repository has none.
  const top = git(root, ['rev-parse', '--show-toplevel']);
  const own = top !== null && fs.realpathSync(top) === fs.realpathSync(root);
  const commit = own ? git(root, ['rev-parse', 'HEAD']) : null;
  const dirty = own && commit ? (git(root, ['status', '--porcelain', '--untracked-files=no']) ?? '') !== '' : null;
  const cores = os.cpus().length;
  const start = r2(os.loadavg());
  const record: Provenance = {
    package: { name: pkg.name, version: pkg.version },
    gitCommit: commit,
    gitDirty: dirty,
    command,
    cwd: process.cwd(),
    node: process.version,
    kernel: os.release(),
    cores,
    thp: thpSetting(),
    load: { start, end: null },
    busy: warnIfBusy('start', start, cores),
    heapOptions,
  };
  return {
    record,
    end: () => {
      record.load.end = r2(os.loadavg());
      record.busy = warnIfBusy('end', record.load.end, cores) || record.busy;
      return record;
    },
  };
}

/** One line for a terminal summary. */
export function provenanceLine(p: Provenance): string {
  const l = (xs: number[] | null): string => (xs ? xs[0].toFixed(2) : '-');
  return `movegc ${p.package.version}${p.gitCommit ? ` @ ${p.gitCommit.slice(0, 12)}${p.gitDirty ? ' (modified)' : ''}` : ''}, Linux ${p.kernel}, ${p.cores} cores, THP ${p.thp}, node ${p.node}; load ${l(p.load.start)} at start, ${l(p.load.end)} at end${p.busy ? ' (BUSY machine)' : ''}`;
}
