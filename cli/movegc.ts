#!/usr/bin/env node
/**
 * The `movegc` command: benchmarks, the soak, the capability probe and the examples, one
 * subcommand each. A mistake on the command line prints the reason and a usage line (exit 2),
 * never a stack; a missing addon prints its one-line hint (exit 1).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closest, help, parse, usageLine, UsageError } from './args.js';
import { COMMANDS, EXAMPLES, type Command } from './commands.js';
import { runWhenMain } from './main.js';
import { MoveGcError } from '../gc/errors.js';
import { cliLogEnv } from '../gc/log.js';
import { setInvocation } from './invocation.js';

function version(): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  return (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

function topHelp(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 4;
  return [
    `movegc ${version()}: a compacting GC heap that relocates pages with UFFDIO_MOVE, and its workbench`,
    '',
    'usage: movegc <command> [options]      movegc <command> --help',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(w)}${COMMANDS[n].spec.summary}`),
    '',
    'Output files go under the current directory. MOVEGC_TRACE=1 prints one line per GC cycle;',
    'MOVEGC_LOG=debug|info|warn sets the log level, MOVEGC_LOG_FORMAT=json for JSON lines.',
  ].join('\n');
}

/**
 * `--out`: a directory made now (component by component, so a path under /proc or a file in
 * the way fails at once), or a file whose directory is made now and that is not a directory.
 * Anything else is a UsageError naming the path and the reason.
 */
function checkOutput(given: string, kind: 'dir' | 'file', outFiles: readonly string[] = []): void {
  if (given.trim() === '') throw new UsageError(`--out needs a path, got '${given}'`);
  const target = path.resolve(process.cwd(), given);
  const dir = kind === 'dir' ? target : path.dirname(target);
  const fail = (why: string): never => {
    throw new UsageError(`--out ${given}: ${why}`);
  };
  let at = path.parse(dir).root;
  for (const part of dir.slice(at.length).split(path.sep).filter(Boolean)) {
    at = path.join(at, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(at);
    } catch {
      try {
        fs.mkdirSync(at);
        continue;
      } catch (e) {
        fail(`cannot create ${at} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (!st!.isDirectory()) fail(`${at} is not a directory`);
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    fail(`${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const st = kind === 'file' && fs.existsSync(target) ? fs.statSync(target) : null;
  if (st?.isDirectory()) fail(`${target} is a directory (a file name is expected)`);
  // Root may open files under /proc and /sys for appending, and then the write fails after the
  // run. What a /dev/fd name stands for is judged, not /proc/self/fd itself: a file it names
  // by its own path, and a pipe (bash's >(...)), which has none, is fine (a review).
  if (!st || st.isFile()) {
    const real = fs.realpathSync(st ? target : dir);
    if (/^\/(proc|sys)(\/|$)/.test(real)) fail(`${real} is on a kernel file system, not a place for results`);
  }
  // Directory permissions do not say whether the file itself can be written (a read-only
  // file, a root under /proc): open what will be written, for appending, and leave no trace.
  // (latest.html too: a directory in its way failed only after the run, an audit found.)
  // (and a sweep's or Splay's own latest files: the same, an audit found.)
  for (const f of kind === 'file' ? [target] : ['latest.json', 'latest.html', ...outFiles, `.movegc-write-test-${process.pid}`].map((n) => path.join(target, n))) {
    const existed = fs.existsSync(f);
    try {
      fs.closeSync(fs.openSync(f, 'a'));
      if (!existed) fs.unlinkSync(f);
    } catch (e) {
      fail(`${f} cannot be written (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

/**
 * A reader that closed our stdout early (`movegc bench | head -1`): the rest of the output has
 * nowhere to go, so the run ends quietly (an unhandled EPIPE printed a stack: an audit).
 */
let stdoutGuarded = false;
function guardStdout(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

/** Runs the command line; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  let name = '';
  setInvocation(argv);
  guardStdout();
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      process.stderr.write(topHelp() + '\n');
      return 2;
    }
    if (first === '--help' || first === '-h' || first === 'help') {
      // `movegc help bench` is `movegc bench --help` (and `help example art`, the example's).
      if (first === 'help' && rest.length === 1 && ['help', '--help', '-h'].includes(rest[0])) rest.length = 0; // `movegc help help`
      if (first === 'help' && rest.length > 0) return run([...rest, '--help']);
      if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' after ${first}`);
      console.log(topHelp());
      return 0;
    }
    if (first === '--version' || first === '-v') {
      if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' after ${first}`);
      console.log(version());
      return 0;
    }
    let args = rest;
    name = first;
    if (first === 'example') {
      const sub = rest[0];
      if (sub === undefined || sub.startsWith('-')) {
        const list = `examples: ${EXAMPLES.join(', ')} (movegc example <name> --help)`;
        if (sub === '--help' || sub === '-h') {
          console.log(`usage: movegc example <name> [options]\n${list}`);
          return 0;
        }
        throw new UsageError(`which example? ${list}`);
      }
      name = `example ${sub}`;
      args = rest.slice(1);
    }
    const cmd: Command | undefined = COMMANDS[name];
    if (!cmd) {
      const near = closest(name, Object.keys(COMMANDS));
      throw new UsageError(`unknown command '${name}'${near ? ` (did you mean '${near}'?)` : ''}; movegc --help lists them`);
    }
    const values = parse(cmd.spec, args);
    if (values.help) {
      console.log(help(cmd.spec));
      return 0;
    }
    cliLogEnv(); // a bad MOVEGC_LOG or MOVEGC_LOG_FORMAT is refused by every command, before its run
    // Where the results go is checked before the run, not after it (a run of minutes lost to
    // a mistyped path; and Node's recursive mkdir never returns under /proc).
    const out = cmd.spec.options.out;
    if (out && typeof values.out === 'string') checkOutput(values.out, out.metavar === 'DIR' ? 'dir' : 'file', cmd.outFiles);
    const mod = await cmd.load();
    await mod.main(values);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError) {
      const spec = COMMANDS[name]?.spec;
      process.stderr.write(`movegc${name ? ` ${name}` : ''}: ${err.message}\n${spec ? usageLine(spec) : 'usage: movegc <command> [options]   (movegc --help for the commands)'}\n`);
      return 2;
    }
    if (err?.code === 'ERR_ADDON_UNAVAILABLE') {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    // The heap refused what the options asked of it (ERR_HEAP_FULL for a workload larger than
    // --heap, a kernel errno): one line with its code, no stack (MOVEGC_LOG=debug: the stack too).
    if (err instanceof MoveGcError) {
      process.stderr.write(`movegc ${name}: ${err.message} [${err.code}]\n`);
      if (process.env.MOVEGC_LOG === 'debug') process.stderr.write(`${err.stack}\n`);
      return 1;
    }
    // A file the user named (ENOENT, EACCES, EISDIR...), a module path, or a child run that
    // failed and said why on its own stderr: one line too. Anything else is a bug: its stack.
    if (err instanceof Error && typeof err.code === 'string' && /^(E[A-Z]+|ERR_MODULE_NOT_FOUND|ERR_CHILD_FAILED)$/.test(err.code)) {
      process.stderr.write(`movegc ${name}: ${err.message}\n`);
      if (process.env.MOVEGC_LOG === 'debug') process.stderr.write(`${err.stack}\n`);
      return 1;
    }
    throw e;
  }
}

// Entry point when run as a program (`movegc`, `node dist/cli/movegc.js`).
runWhenMain(import.meta.url, []);
