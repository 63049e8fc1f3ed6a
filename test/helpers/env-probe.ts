/**
 * A probe script run in child processes with an environment variable set, unset or set wrong:
 * for the options whose default an environment variable changes (MOVEGC_UNBUILT_READS, ...).
 * A file, not --input-type=module -e: the heap's Workers inherit the parent's execArgv.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';

export interface EnvProbe {
  /** The probe's last stdout line, parsed, with `name` set to `value` (undefined: unset). */
  run(value: string | undefined): unknown;
  /** The probe's stderr with `name` set to `value`, which must make it fail. */
  refused(value: string): string;
}

export function withEnvProbe(name: string, script: string, body: (p: EnvProbe) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-env-'));
  const file = path.join(dir, 'probe.mjs');
  fs.writeFileSync(file, script);
  const spawn = (value: string | undefined) => {
    const env = { ...process.env };
    if (value === undefined) delete env[name];
    else env[name] = value;
    return spawnSync(process.execPath, [file], { encoding: 'utf8', env, timeout: 60_000 });
  };
  try {
    body({
      run: (value) => {
        const r = spawn(value);
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout.trim().split('\n').pop()!);
      },
      refused: (value) => {
        const r = spawn(value);
        expect(r.status).not.toBe(0);
        return r.stderr;
      },
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
