/**
 * Heap.create in a process close to vm.max_map_count (found by a hostile-tester audit: with 100
 * mappings left, a move or copy heap's collector Workers could not map their isolates and V8
 * aborted the process, exit 134). Now the create is refused with ENOMEM before anything is
 * mapped; an stw heap (no Worker) is still made.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { itKernel } from './kernel.js';
import { spawnAsync } from './helpers/child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MALLOC_WITHOUT_MAPPINGS = ['arena_max=1', 'top_pad=268435456', 'mmap_threshold=1073741824', 'trim_threshold=1073741824'].map((t) => `glibc.malloc.${t}`).join(':');

for (const mode of ['move', 'copy', 'stw']) {
  itKernel(`${mode}: created with 100 mappings left: ${mode === 'stw' ? 'made' : 'ENOMEM'}, no abort`, async () => {
    const r = await spawnAsync(process.execPath, ['--expose-gc', path.join(here, 'fixtures/map-count-create.mjs'), '100', mode], 90_000, { ...process.env, GLIBC_TUNABLES: MALLOC_WITHOUT_MAPPINGS });
    expect(r.status, `${r.stdout}\n${r.stderr}`.slice(-1500)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    if (mode === 'stw') expect(out.out).toMatch(/^created stw/);
    else expect(out.out).toMatch(/^create refused: ENOMEM .*vm\.max_map_count/);
  }, ['uffd', 'move'], 120_000);
}
