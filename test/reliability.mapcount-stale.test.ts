/**
 * The mapping count a compaction pause relies on is taken in the pause, not when the marker
 * planned: a program may map a lot between the plan and the safepoint that flips (found by a
 * hostile-tester audit: with 50 pins, a process that ran out of mappings in between lost its
 * heap, ERR_HEAP_CORRUPT, instead of getting ENOMEM with the heap intact).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { itKernel } from './kernel.js';
import { spawnAsync } from './helpers/child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MALLOC_WITHOUT_MAPPINGS = ['arena_max=1', 'top_pad=268435456', 'mmap_threshold=1073741824', 'trim_threshold=1073741824'].map((t) => `glibc.malloc.${t}`).join(':');

for (const args of [['move', 'register-first', '14', '50'], ['copy', 'remap-first', '30', '50']]) {
  itKernel(`mappings used up between the marker's plan and the flip: ENOMEM, the heap intact (${args.join(' ')})`, async () => {
    const r = await spawnAsync(process.execPath, ['--expose-gc', path.join(here, 'fixtures/map-count-stale.mjs'), ...args], 90_000, { ...process.env, GLIBC_TUNABLES: MALLOC_WITHOUT_MAPPINGS });
    expect(r.status, `${r.stdout}\n${r.stderr}`.slice(-1500)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.phaseBefore).toBe('planning');
    expect(out.error?.code, JSON.stringify(out)).toBe('ENOMEM');
    expect(out).toMatchObject({ phaseAfter: 'idle', verifyAfter: true, listAfter: 20000, gcAfterFree: true, listAfterGc: 20000 });
  }, ['uffd', 'move'], 120_000);
}
