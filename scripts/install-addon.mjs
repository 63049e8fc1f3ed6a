// npm's install step: builds the native addon with node-gyp. node-gyp's output goes to a log
// file; on failure one line says what is needed (and which of it is missing) instead of a
// Python traceback. Plain JavaScript: it runs before TypeScript is compiled.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = path.join(root, 'addon-build.log');
const has = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = null;
}
const r = gyp ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 }) : null;
if (r && r.status === 0) {
  fs.rmSync(log, { force: true });
  process.exit(0);
}
fs.writeFileSync(log, r ? `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` : 'node-gyp not found\n');
const missing = ['python3', 'make', 'g++'].filter((c) => !has(c));
// With the tools all there, the cause is elsewhere (no network for Node's headers, a compiler
// error): the log says which, so point there rather than at tools that are installed.
process.stderr.write(
  missing.length
    ? `movegc: could not build the native addon (missing: ${missing.join(', ')}): it needs python3, make and g++; install them, then run \`npm rebuild movegc\`. node-gyp's output: ${log}\n`
    : `movegc: could not build the native addon (python3, make and g++ are there): the cause is in node-gyp's output, ${log}; then run \`npm rebuild movegc\`\n`,
);
process.exit(1);
