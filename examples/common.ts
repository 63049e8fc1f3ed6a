/**
 * Small helpers shared by the examples: argument parsing, a seeded PRNG, percentiles, an
 * aligned text table, and running one child process per mode (so that every mode starts from
 * the same cold JIT and process state, and a mode's leftovers cannot slow the next one).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODES, cliLogger, type Logger, type ModeName } from '../gc/index.js';

/** The examples' progress logger: the library's CLI logger (readable lines on stderr). */
export function exampleLogger(name: string): Logger {
  return cliLogger(name);
}

export type Args = Record<string, string | boolean>;

/** `--key value`, `--key=value` and bare `--flag`. */
export function parseArgs(argv: string[], flags: readonly string[] = []): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (flags.includes(a.slice(2)) || i + 1 >= argv.length || argv[i + 1].startsWith('--')) out[a.slice(2)] = true;
    else out[a.slice(2)] = argv[++i];
  }
  return out;
}

export function num(args: Args, key: string, dflt: number): number {
  const v = args[key];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, got ${String(v)}`);
  return n;
}

export function modeArg(args: Args, dflt: ModeName = 'move'): ModeName {
  const m = (args.mode ?? dflt) as ModeName;
  if (!MODES.includes(m)) throw new Error(`--mode must be one of ${MODES.join('|')}, got ${String(m)}`);
  return m;
}

/** Modes for --compare: a list given with --modes a,b, else the default. */
export function compareModes(args: Args, dflt: ModeName[]): ModeName[] {
  if (typeof args.modes !== 'string') return dflt;
  const ms = args.modes.split(',') as ModeName[];
  for (const m of ms) if (!MODES.includes(m)) throw new Error(`--modes: unknown mode ${m}`);
  return ms;
}

/** mulberry32: the same sequence for the same seed in every mode (the benchmark's generator). */
export { rng as prng } from '../bench/workload.js';

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export const ms = (v: number, digits = 1): string => v.toFixed(digits);
export const mib = (bytes: number): string => (bytes / (1 << 20)).toFixed(1);

/** Rows of label + one column per run: an aligned text table for the terminal. */
export function sideBySide(title: string, columns: string[], rows: Array<[string, ...Array<string | number>]>): string {
  const cells = [['', ...columns], ...rows.map((r) => r.map(String))];
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  const out = [title, line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)];
  return out.join('\n');
}

/**
 * Runs `script` once per mode in a child process with `--mode M --json` and the extra
 * arguments; each child prints one JSON line (prefixed RESULT) on stdout; its stderr (the
 * progress log) passes through.
 */
export async function runModes<T>(scriptUrl: string, modes: ModeName[], extra: string[]): Promise<Array<T & { mode: ModeName }>> {
  const script = fileURLToPath(scriptUrl);
  const results: Array<T & { mode: ModeName }> = [];
  for (const mode of modes) {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [script, '--mode', mode, '--json', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      child.stdout.on('data', (d: Buffer) => (buf += d.toString()));
      child.on('error', reject);
      child.on('exit', (code, sig) => (code === 0 ? resolve(buf) : reject(new Error(`${mode} run failed (exit ${code ?? sig})`))));
    });
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${mode} run printed no result`);
    results.push(JSON.parse(line.slice(7)));
  }
  return results;
}

/** The arguments a --compare run hands on to its per-mode children. */
export function childArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const key = a.replace(/^--/, '').split('=')[0];
    if (['compare', 'json'].includes(key)) continue;
    if (['modes', 'mode', 'out'].includes(key)) {
      if (!a.includes('=')) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** For a child run by runModes: print the result where the parent looks for it. */
export function emitResult(r: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

/** --out PATH: the results as JSON, for later comparison. */
export function writeOut(args: Args, name: string, results: unknown): void {
  if (typeof args.out !== 'string') return;
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify({ example: name, argv: process.argv.slice(2), at: new Date().toISOString(), results }, null, 1));
  console.log(`Results written to ${args.out}`);
}

/** Where the benchmark (bench/run.ts) writes its report, and a line pointing at it. */
export function benchReportLine(): string | null {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  if (!fs.existsSync(path.join(root, 'dist', 'bench', 'run.js'))) return null;
  const html = path.join(root, 'bench', 'results', 'latest.html');
  return fs.existsSync(html)
    ? `Benchmark report (compaction throughput, pause and fault-latency distributions, MMU per mode): ${path.relative(process.cwd(), html)}`
    : 'For compaction throughput, fault-latency CDFs and MMU per mode, run the benchmark: node dist/bench/run.js --quick (writes bench/results/latest.html).';
}
