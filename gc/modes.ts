/**
 * Compaction modes, chosen per heap. When the kernel lacks what a mode needs, the heap falls
 * back along move -> copy -> stw and records why (ART: no userfaultfd -> stop-the-world;
 * MOVE refused by its test move -> COPY).
 */
import { ErrorCode, MoveGcError } from './errors.js';
import type { Capabilities } from './probe.js';

export const Mode = {
  /** Concurrent; pages installed with UFFDIO_MOVE (zero-copy). The default. */
  MOVE: 'move',
  /** Concurrent; pages installed with UFFDIO_COPY: the ART-before-MOVE baseline. */
  COPY: 'copy',
  /** Stop-the-world sliding compaction; no userfaultfd. */
  STW: 'stw',
} as const;
export type ModeName = (typeof Mode)[keyof typeof Mode];
export const MODES: readonly ModeName[] = [Mode.MOVE, Mode.COPY, Mode.STW];

export interface ModeChoice {
  mode: ModeName;
  /** One line per fallback taken, with the capability and the kernel's reason. */
  fallbacks: string[];
}

export function chooseMode(requested: ModeName, caps: Capabilities): ModeChoice {
  if (!MODES.includes(requested)) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `unknown mode ${String(requested)} (expected ${MODES.join(', ')})`);
  if (!caps.mremapDontUnmap.ok)
    throw new MoveGcError(ErrorCode.UNSUPPORTED, `mremap(MREMAP_DONTUNMAP) unavailable (${caps.mremapDontUnmap.reason}): Linux >= 5.13 is required for every mode`);
  const fallbacks: string[] = [];
  let mode = requested;
  if (mode === Mode.MOVE && !caps.move.ok) {
    fallbacks.push(`move -> copy: UFFDIO_MOVE unavailable (${caps.move.reason})`);
    mode = Mode.COPY;
  }
  if (mode === Mode.COPY && !(caps.uffd.ok && caps.copy.ok)) {
    const reason = caps.uffd.ok ? caps.copy.reason : caps.uffd.reason;
    fallbacks.push(`copy -> stw: userfaultfd ${caps.uffd.ok ? 'COPY' : ''} unavailable (${reason})`.replace('  ', ' '));
    mode = Mode.STW;
  }
  return { mode, fallbacks };
}
