/**
 * Running a module as a program: `node dist/cli/movegc.js bench ...`, and the shorter forms the
 * issues and older notes quote, `node dist/bench/run.js ...` and `node dist/examples/art-app.js ...`,
 * which are the same command with its name put in front.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** When the module at `metaUrl` is the program node was started with, runs `movegc ...prefix argv`. */
export function runWhenMain(metaUrl: string, prefix: string[]): void {
  const entry = process.argv[1];
  if (!entry || fs.realpathSync(entry) !== fileURLToPath(metaUrl)) return;
  // A failed command may leave a heap open (its Workers keep the process alive): exit outright.
  import('./movegc.js')
    .then((m) => m.run([...prefix, ...process.argv.slice(2)]))
    .then(
      (code) => {
        if (code !== 0) process.exit(code);
      },
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
}
