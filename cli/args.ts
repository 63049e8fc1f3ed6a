/**
 * Declarative command-line options on top of node:util parseArgs (strict): each option has a
 * type, a default, bounds or choices and one line of help. parse() returns typed values keyed
 * by camelCase name, or throws a UsageError whose message names the flag; help() renders the
 * --help text from the same table, so the two never disagree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export type OptType = 'string' | 'boolean' | 'number' | 'int' | 'list' | 'numbers';

export interface OptSpec {
  type: OptType;
  help: string;
  default?: string | number | boolean | readonly string[] | readonly number[] | null;
  /** Allowed values (string, list). */
  choices?: readonly string[];
  /** Bounds (number, int, numbers). */
  min?: number;
  max?: number;
  /** Shown after the flag in --help (default VALUE, N, LIST ...). */
  metavar?: string;
  /** Checked after parsing: a message if the value is wrong. */
  check?: (v: never) => string | undefined;
  /** A flag it applies only with: given without it, a usage error (it was silently ignored). */
  needs?: string;
  /** Flags it cannot be given with. */
  conflicts?: readonly string[];
}

export interface CommandSpec {
  /** As typed: `bench`, `example art`. */
  name: string;
  summary: string;
  /** Paragraphs after the option table. */
  notes?: string;
  options: Record<string, OptSpec>;
  /** How it is run, when not as `movegc NAME` (a script: `npm run bench:barrier --`). */
  run?: string;
}

/** An OptSpec check for heap sizes in MiB: heaps come in 2 MiB units. */
export const evenMiB = (v: number): string | undefined => (v % 2 === 0 ? undefined : `must be an even number of MiB, got ${v}`);

/** A mistake on the command line: printed with a usage line, never with a stack. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Values = Record<string, unknown>;

const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1); // a swap is one typo
    }
  return d[a.length][b.length];
}

/** The closest known flag, if it is close: for "did you mean". */
export function closest(word: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bd = Infinity;
  // On a tie the first wins, and 'help' comes last: --heep is --heap, not --help.
  for (const k of [...known.filter((x) => x !== 'help'), ...known.filter((x) => x === 'help')]) {
    const dd = distance(word, k);
    if (dd < bd) [best, bd] = [k, dd];
  }
  return bd <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * A number written in decimal (an exponent allowed): Number() also takes hex, binary, blanks
 * around it, and a literal too small for a double as 0 (an audit: --heap 0x10 ran 16 MiB,
 * --touch-us 1e-400 ran 0), which a command line should say it did not mean.
 */
function decimal(flag: string, s: string): number {
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : NaN;
  if (n === 0 && /[1-9]/.test(s.split(/e/i)[0])) throw new UsageError(`--${flag}: ${s} is too small to be told from 0`);
  if (Number.isNaN(n)) throw new UsageError(`--${flag} must be a decimal number, got '${s}'`);
  return n;
}

/** The values of a list, each once (an audit: --modes stw,stw ran stw twice under one name, its reps pooled). */
function once<T>(flag: string, xs: T[]): T[] {
  const seen = new Set<T>();
  for (const x of xs) {
    if (seen.has(x)) throw new UsageError(`--${flag}: '${x}' is given twice`);
    seen.add(x);
  }
  return xs;
}

function convert(flag: string, o: OptSpec, raw: string | boolean): unknown {
  if (o.type === 'boolean') return raw;
  const s = String(raw);
  const bounded = (n: number): number => {
    if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got '${s}'`);
    if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max))
      throw new UsageError(`--${flag} must be in [${o.min ?? '-inf'}, ${o.max ?? 'inf'}], got ${n}`);
    return n;
  };
  switch (o.type) {
    case 'string':
      if (o.choices && !o.choices.includes(s)) throw new UsageError(`--${flag} must be one of ${o.choices.join(', ')}, got '${s}'`);
      return s;
    case 'number':
      return bounded(decimal(flag, s));
    case 'int': {
      const n = bounded(decimal(flag, s));
      if (!Number.isInteger(n)) throw new UsageError(`--${flag} must be an integer, got ${s}`);
      return n;
    }
    case 'list': {
      const xs = once(flag, s.split(',').map((x) => x.trim()).filter(Boolean));
      if (xs.length === 0) throw new UsageError(`--${flag} needs at least one value`);
      for (const x of xs) if (o.choices && !o.choices.includes(x)) throw new UsageError(`--${flag}: unknown value '${x}' (expected ${o.choices.join(', ')})`);
      return xs;
    }
    case 'numbers': {
      const xs = s.split(',').map((x) => x.trim()).filter(Boolean);
      if (xs.length === 0) throw new UsageError(`--${flag} needs at least one number`);
      return once(flag, xs.map((x) => bounded(decimal(flag, x))));
    }
  }
}

/** Parses argv against the spec; `--help` is always accepted (values.help). */
export function parse(spec: CommandSpec, argv: string[]): Values {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [k, o] of Object.entries(spec.options)) options[k] = { type: o.type === 'boolean' ? 'boolean' : 'string' };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[]; tokens: Array<{ kind: string; name?: string }> };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true, tokens: true }) as typeof parsed;
  } catch (e) {
    const err = e as { code?: string; message: string };
    const known = Object.keys(options);
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'(-[^']*)'/.exec(err.message)?.[1] ?? '';
      const name = flag.replace(/^-+/, '').split('=')[0];
      const near = closest(name, known);
      throw new UsageError(`unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}`, spec.name);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /(--[\w-]+)/.exec(err.message)?.[1] ?? /'(-[\w-]+)/.exec(err.message)?.[1] ?? 'an option'; // the long form: '-h, --help'
      const why = /argument missing/.test(err.message)
        ? `${flag} needs a value`
        : /ambiguous/.test(err.message)
          ? `${flag} needs a value (a value starting with '-' is written ${flag}=-...)`
          : `${flag} takes no value`;
      throw new UsageError(why, spec.name);
    }
    throw new UsageError(err.message, spec.name);
  }
  if (parsed.positionals.length) throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`, spec.name);
  // A flag given twice: parseArgs keeps the last one, silently (an audit: --heap 16 --heap 64
  // ran 64; --modes move --modes stw ran stw alone). Refused, as --modes stw,stw is.
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || !t.name || t.name === 'help') continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given twice`, spec.name);
    seen.add(t.name);
  }
  const out: Values = { help: parsed.values.help === true };
  for (const [k, o] of Object.entries(spec.options)) {
    const raw = parsed.values[k];
    let v: unknown;
    try {
      v = raw === undefined ? (o.type === 'boolean' ? (o.default ?? false) : o.default) : convert(k, o, raw);
      const msg = raw !== undefined && o.check ? o.check(v as never) : undefined;
      if (msg) throw new UsageError(`--${k} ${msg}`);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(e.message, spec.name);
      throw e;
    }
    out[camel(k)] = v;
  }
  // An option that does nothing without another, or that another overrides (an audit: art
  // --modes copy without --compare ran move; splay --variant v8 --variants move ran v8).
  for (const [k, o] of Object.entries(spec.options)) {
    if (!seen.has(k)) continue;
    if (o.needs && !seen.has(o.needs)) throw new UsageError(`--${k} applies only with --${o.needs}`, spec.name);
    const other = o.conflicts?.find((c) => seen.has(c));
    if (other) throw new UsageError(`--${k} cannot be given with --${other}`, spec.name);
  }
  return out;
}

const defaultText = (o: OptSpec): string => {
  const d = o.default;
  if (d === undefined || d === null || d === false) return '';
  return ` (default ${Array.isArray(d) ? d.join(',') : String(d)})`;
};

/** The usage line: `usage: movegc bench [options]`. */
export function usageLine(spec: CommandSpec): string {
  const run = spec.run ?? `movegc ${spec.name}`;
  return `usage: ${run} [options]   (${run} --help for the options)`;
}

/** The flags of a micro-benchmark run on its own (npm run bench:NAME --): ops, reps, a baseline build. */
export function microBenchArgs(name: string, summary: string, opsHelp: string): { ops: number; reps: number; baseline?: string } {
  return scriptArgs({
    name: `bench:${name}`,
    run: `npm run bench:${name} --`,
    summary,
    options: {
      ops: { type: 'int', min: 1, max: 1_000_000_000, default: 2_000_000, help: opsHelp },
      reps: { type: 'int', min: 1, max: 1000, default: 7, help: 'interleaved reps' },
      baseline: { type: 'string', metavar: 'PATH', help: "another build's gc/index.js, run side by side", check: (p: string) => (!fs.existsSync(path.resolve(p)) ? `${p}: no such file` : fs.statSync(path.resolve(p)).isDirectory() ? `${p} is a directory (another build's dist/gc/index.js is expected)` : undefined) },
    },
  }) as { ops: number; reps: number; baseline?: string };
}

/**
 * Loads a --baseline build: a path from the current directory (import() alone resolves it from
 * this file). One that does not load as a module exporting Heap is said in one line, exit 2
 * (an audit: a directory or a text file ended in a stack).
 */
export async function importBaseline(p: string, run: string): Promise<unknown> {
  let why: string;
  try {
    const mod = (await import(pathToFileURL(path.resolve(p)).href)) as { Heap?: unknown };
    if (typeof mod.Heap === 'function') return mod;
    why = 'it exports no Heap';
  } catch (e) {
    why = String((e as Error)?.message ?? e).split('\n')[0];
  }
  process.stderr.write(`${run}: --baseline ${p}: not a movegc build's gc/index.js (${why})\n`);
  process.exit(2);
}

/**
 * parse() for a script run on its own (bench/barrier.ts and the like): --help prints the help
 * and exits 0, a usage error prints one line and the usage line and exits 2.
 */
export function scriptArgs(spec: CommandSpec, argv = process.argv.slice(2)): Values {
  try {
    const v = parse(spec, argv);
    if (v.help) {
      process.stdout.write(`${help(spec)}\n`);
      process.exit(0);
    }
    return v;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${spec.run ?? spec.name}: ${e.message}\n${usageLine(spec)}\n`);
    process.exit(2);
  }
}

/** The --help text. */
export function help(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([k, o]) => {
    const meta = o.type === 'boolean' ? '' : ` ${o.metavar ?? (o.choices ? (o.type === 'list' ? `${o.choices.join(',')}` : o.choices.join('|')) : o.type === 'int' ? 'N' : o.type === 'number' ? 'X' : o.type === 'numbers' || o.type === 'list' ? 'LIST' : 'VALUE')}`;
    return [`  --${k}${meta}`, o.help + defaultText(o)];
  });
  rows.push(['  -h, --help', 'this text']);
  const w = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  const lines = rows.map(([a, b]) => (a.length + 1 >= w ? `${a}\n${' '.repeat(w)}${b}` : a.padEnd(w) + b));
  const run = spec.run ?? `movegc ${spec.name}`;
  return [`${run}: ${spec.summary}`, '', `usage: ${run} [options]`, '', 'options:', ...lines, ...(spec.notes ? ['', spec.notes.trim()] : [])].join('\n');
}
