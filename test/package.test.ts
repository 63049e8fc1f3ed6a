/**
 * Packaging: what the tarball holds (no tests, CI or test config; the CLI, the library, the
 * addon's sources and its install step), and the one-line hint a user gets when the addon is
 * not built: from the library (ERR_ADDON_UNAVAILABLE), from the CLI, and from the install
 * step when the build tools are missing (instead of node-gyp's Python traceback).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** A scratch copy of parts of the package, with the project's node_modules linked in. */
function scratch(parts: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-pkg-'));
  for (const p of parts) fs.cpSync(path.join(root, p), path.join(dir, p), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

describe('the tarball', () => {
  it('ships the library, the CLI and the addon sources, and no tests', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
    for (const f of files) expect(f).not.toMatch(/^(test|\.ci)\/|vitest|\.test\.|\.map$|^bench\/.*\.ts$|^gc\/.*\.ts$/);
    for (const f of ['package.json', 'README.md', 'binding.gyp', 'native/addon.cc', 'scripts/install-addon.mjs', 'dist/gc/index.js', 'dist/gc/index.d.ts', 'dist/bench/run.js', 'dist/examples/art-app.js'])
      expect(files).toContain(f);
    expect(files).toContain(pkg.bin.movegc);
    expect(files).toContain(pkg.exports['.'].import.replace(/^\.\//, ''));
    expect(files).toContain(pkg.exports['.'].types.replace(/^\.\//, ''));
    expect(pkg.scripts.install).toBe('node scripts/install-addon.mjs');
  });
});

describe('a missing addon', () => {
  it('the library throws ERR_ADDON_UNAVAILABLE with the hint; the CLI prints one line; --help still works', () => {
    const dir = scratch(['package.json', 'binding.gyp', 'dist/gc', 'dist/cli', 'dist/bench', 'dist/examples']); // no build/
    try {
      const lib = spawnSync(process.execPath, ['--input-type=module', '-e', "import('./dist/gc/index.js').catch((e) => { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })); })"], { cwd: dir, encoding: 'utf8' });
      const e = JSON.parse(lib.stdout);
      expect(e.name).toBe('MoveGcError');
      expect(e.code).toBe('ERR_ADDON_UNAVAILABLE');
      expect(e.message).toMatch(/native addon not built .*python3, make and g\+\+.*npm rebuild movegc/);
      const cli = spawnSync(process.execPath, ['dist/cli/movegc.js', 'probe'], { cwd: dir, encoding: 'utf8' });
      expect(cli.status).toBe(1);
      expect(cli.stderr.trim().split('\n')).toHaveLength(1);
      expect(cli.stderr).toMatch(/npm rebuild movegc/);
      const help = spawnSync(process.execPath, ['dist/cli/movegc.js', 'bench', '--help'], { cwd: dir, encoding: 'utf8' });
      expect(help.status).toBe(0);
      expect(help.stdout).toContain('usage: movegc bench');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the install step without build tools prints one line naming them, not a traceback', () => {
    const dir = scratch(['package.json', 'binding.gyp', 'native', 'scripts']);
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node')); // node only: no python3, make, g++
    try {
      const r = spawnSync(process.execPath, ['scripts/install-addon.mjs'], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: bin }, timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^movegc: could not build the native addon \(missing: python3, make, g\+\+\): .*npm rebuild movegc/);
      expect(r.stderr).not.toMatch(/Traceback|gyp ERR/);
      expect(fs.readFileSync(path.join(dir, 'addon-build.log'), 'utf8').length).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
