/**
 * Gate for tests that need the kernel's userfaultfd: they skip with a printed reason only
 * where the kernel or permissions lack it, and with CI=true they must run, so a missing
 * capability fails loudly instead.
 */
import { it } from 'vitest';
import { probe, type Capabilities } from '../dist/gc/index.js';

export const caps: Capabilities = probe();
export const CI = process.env.CI === 'true' || process.env.CI === '1';

function missing(need: Array<'uffd' | 'move'>): string | undefined {
  for (const n of need) {
    const c = n === 'uffd' ? caps.uffd : caps.move;
    if (!c.ok) return `${n} unavailable (${c.reason})`;
  }
  return undefined;
}

/** `it` that needs userfaultfd (and MOVE by default). */
export function itKernel(name: string, fn: () => unknown | Promise<unknown>, need: Array<'uffd' | 'move'> = ['uffd', 'move'], timeout?: number): void {
  const why = missing(need);
  if (why && !CI) {
    console.warn(`[movegc] skipping "${name}": ${why}`);
    it.skip(name, fn);
    return;
  }
  it(name, async () => {
    if (why) throw new Error(`CI=true requires ${need.join('+')}: ${why}`);
    await fn();
  }, timeout);
}
