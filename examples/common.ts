/**
 * Small helpers shared by the examples: typed options, a seeded PRNG, percentiles, an
 * aligned text table, and running one child process per mode (so that every mode starts from
 * the same cold JIT and process state, and a mode's leftovers cannot slow the next one).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliLogger, type Logger, type ModeName } from '../gc/index.js';
import type { Values } from '../cli/args.js';
import { COMMANDS } from '../cli/commands.js';
import { spawnTied } from '../cli/child.js';
import { startProvenance } from '../bench/provenance.js';
import { invocation } from '../cli/invocation.js';

/** The examples' progress logger: the library's CLI logger (readable lines on stderr). */
export function exampleLogger(name: string): Logger {
  return cliLogger(name);
}

/** The parsed command line (cli/commands.ts: `movegc example NAME --help`). */
export type Args = Values;

export const num = (args: Args, key: string): number => args[key] as number;

export function modeArg(args: Args): ModeName {
  return args.mode as ModeName;
}

/** Modes for --compare. */
export function compareModes(args: Args): ModeName[] {
  return args.modes as ModeName[];
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

/** One column of a --compare run: the heap's mode, and options of that child alone (`--fault-path handler`). */
export interface CompareRun {
  mode: ModeName;
  /** Flags and values, e.g. ['--fault-path', 'handler']; these flags are not handed on from the parent. */
  extra?: string[];
}

/**
 * Runs the example once per mode (or per CompareRun) in a child process (`movegc example NAME
 * --mode M --json`, the run's own options and the other options given); each child prints one
 * JSON line (prefixed RESULT) on stdout; its stderr (the progress log) passes through.
 */
export async function runModes<T>(name: string, runs: ReadonlyArray<ModeName | CompareRun>, args: Args): Promise<Array<T & { mode: ModeName }>> {
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/movegc.js');
  const results: Array<T & { mode: ModeName }> = [];
  for (const run of runs) {
    const { mode, extra = [] } = typeof run === 'string' ? { mode: run } : run;
    const own = extra.filter((x) => x.startsWith('--')).map((x) => x.slice(2));
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawnTied(process.execPath, [cli, 'example', name, '--mode', mode, '--json', ...extra, ...childArgs(name, args, own)]);
      let buf = '';
      child.stdout.on('data', (d: Buffer) => (buf += d.toString()));
      child.on('error', reject);
      child.on('exit', (code, sig) => (code === 0 ? resolve(buf) : reject(Object.assign(new Error(`${[mode, ...extra].join(' ')} run failed (exit ${code ?? sig}; its error is above)`), { code: 'ERR_CHILD_FAILED' }))));
    });
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${[mode, ...extra].join(' ')} run printed no result`);
    results.push(JSON.parse(line.slice(7)));
  }
  return results;
}

/** The options a --compare run hands on to its per-mode children (all but mode, modes, compare, json, out, reps, and `skip`). */
export function childArgs(name: string, args: Args, skip: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const [flag, o] of Object.entries(COMMANDS[`example ${name}`].spec.options)) {
    if (['compare', 'json', 'modes', 'mode', 'out', 'reps', ...skip].includes(flag)) continue;
    const v = args[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
    if (v === undefined || v === null || v === false) continue;
    if (o.type === 'boolean') out.push(`--${flag}`);
    else out.push(`--${flag}`, Array.isArray(v) ? v.join(',') : String(v));
  }
  return out;
}

/** For a child run by runModes: print the result where the parent looks for it. */
export function emitResult(r: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

/** Starts the provenance record of an example run (see bench/provenance.ts). */
export function exampleProvenance(heapOptions: Record<string, unknown>): ReturnType<typeof startProvenance> {
  return startProvenance(invocation(), heapOptions);
}

/** --out FILE: the results as JSON (with provenance), for later comparison. */
export function writeOut(args: Args, name: string, results: unknown, prov: ReturnType<typeof startProvenance> | null): void {
  if (typeof args.out !== 'string' || !prov) return;
  const file = path.resolve(process.cwd(), args.out);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ schema: 'movegc-example/1', example: name, provenance: prov.end(), at: new Date().toISOString(), results }, null, 1));
  (args.json ? console.error : console.log)(`Results written to ${path.relative(process.cwd(), file)}`); // stdout's one line is RESULT's
}

/** Where the benchmark writes its report by default (under the current directory), and a line pointing at it. */
export function benchReportLine(): string {
  const html = path.resolve(process.cwd(), 'bench', 'results', 'latest.html');
  return fs.existsSync(html)
    ? `Benchmark report (compaction throughput, pause and fault-latency distributions, MMU per mode): ${path.relative(process.cwd(), html)}`
    : 'For compaction throughput, fault-latency distributions and MMU per mode, run the benchmark: movegc bench --quick (writes bench/results/latest.html).';
}
