/** Shared by the hostile-input suites (reliability.hostile, reliability.fuzz). */
import type { ModeName } from '../../dist/gc/index.js';
import { caps, CI } from '../kernel.js';

/** Values of the wrong type for a number argument. */
export const WRONG_TYPES: unknown[] = ['8', '0x10', 8n, undefined, null, {}, [8], true, () => 8, Symbol('x')];
/** Numbers no size, index or offset may be. */
export const BAD_NUMBERS: unknown[] = [-1, -4096, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, -0.5];

/** The mode the suites can run here: move where the kernel has it (CI: required). */
export const MODE: ModeName = caps.move.ok || CI ? 'move' : caps.uffd.ok ? 'copy' : 'stw';
