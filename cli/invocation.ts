/**
 * The command line a run was started with, as `movegc CMD ARGS` whichever way it was started
 * (`movegc`, `node dist/cli/movegc.js`, or a module run as a program: cli/main.ts), each
 * argument quoted for a POSIX shell where it needs it: what provenance records, so that it can
 * be run again as it stands (an audit: `node dist/bench/run.js --heap 4` was recorded as
 * `movegc --heap 4`, and `--out "a b"` unquoted).
 */
let argv: readonly string[] | null = null;

/** Called by the CLI's entry with the argv it dispatches (the command's name first). */
export function setInvocation(args: readonly string[]): void {
  argv = [...args];
}

/** `movegc` and the arguments, shell-quoted; the process's own arguments if the CLI did not start the run. */
export function invocation(): string {
  return ['movegc', ...(argv ?? process.argv.slice(2))].map(shellQuote).join(' ');
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
