/**
 * Compaction modes, chosen per heap. When the kernel lacks what a mode needs, the heap falls
 * back along move -> copy -> stw and records why (ART: no userfaultfd -> stop-the-world;
 * MOVE refused by its test move, or a kernel without the MOVE fixes -> COPY).
 */
import os from 'node:os';
import { ErrorCode, MoveGcError, invalidArg, isMoveGcError, shown } from './errors.js';
import { RESOURCE_ERRNOS, type Capabilities, type Capability } from './probe.js';
import { readOptions } from './validate.js';

export const Mode = Object.freeze({
  /** Concurrent; pages installed with UFFDIO_MOVE (zero-copy). The default. */
  MOVE: 'move',
  /** Concurrent; pages installed with UFFDIO_COPY: the ART-before-MOVE baseline. */
  COPY: 'copy',
  /** Stop-the-world sliding compaction; no userfaultfd. */
  STW: 'stw',
} as const);
export type ModeName = (typeof Mode)[keyof typeof Mode];
export const MODES: readonly ModeName[] = Object.freeze([Mode.MOVE, Mode.COPY, Mode.STW]);

export interface ModeChoice {
  mode: ModeName;
  /** One line per fallback taken, with the capability and the kernel's reason. */
  fallbacks: string[];
}

export interface ModeChoiceOptions {
  /**
   * Use move mode on a kernel without the MOVE fixes ART gates on (caps.moveFixes), e.g. a
   * distribution kernel that backported them under an older version number.
   */
  allowUnfixedMove?: boolean;
}

/** The capabilities chooseMode reads. */
const CAPS_READ = ['mremapDontUnmap', 'uffd', 'move', 'copy', 'moveFixes', 'pinsRefused'] as const;
type CapsRead = Pick<Capabilities, (typeof CAPS_READ)[number]> & {
  /** caps.uffd.ways, where given (a caller's own capabilities may have none). */
  ways: Capability[];
};

/**
 * The capabilities chooseMode reads, read once into plain objects: each must be an object
 * with a boolean `ok`, and its reason, detail and kernel are kept as strings (shown() for
 * anything else: a message never runs a caller's toString). A getter or Proxy trap that
 * throws is ERR_INVALID_ARG_TYPE, as for any other argument.
 */
function readCaps(caps: unknown): CapsRead {
  if (typeof caps !== 'object' || caps === null) throw invalidArg(`caps must be probe()'s capabilities, got ${shown(caps)}`);
  const out: Record<string, unknown> = {};
  const str = (v: unknown): string | undefined => (v === undefined || typeof v === 'string' ? v : shown(v));
  const cap = (name: string, c: unknown): Capability & { kernel?: string } => {
    if (typeof c !== 'object' || c === null) throw invalidArg(`caps.${name} must be a capability object, got ${shown(c)}`);
    const { ok, reason, detail, kernel } = c as Record<string, unknown>;
    if (typeof ok !== 'boolean') throw invalidArg(`caps.${name}.ok must be a boolean, got ${shown(ok)}`);
    return { ok, reason: str(reason), detail: str(detail), kernel: str(kernel) };
  };
  try {
    for (const k of CAPS_READ) out[k] = cap(k, (caps as Record<string, unknown>)[k]);
    const ways = ((caps as Record<string, unknown>).uffd as Record<string, unknown>).ways;
    const read: Capability[] = [];
    if (ways !== undefined) {
      if (typeof ways !== 'object' || ways === null) throw invalidArg(`caps.uffd.ways must be an object, got ${shown(ways)}`);
      for (const w of ['syscall', 'userModeOnly', 'device']) {
        const c = (ways as Record<string, unknown>)[w]; // read once: a getter may answer differently twice
        if (c !== undefined) read.push(cap(`uffd.ways.${w}`, c));
      }
    }
    out.ways = read;
  } catch (e) {
    if (isMoveGcError(e)) throw e;
    throw invalidArg('caps could not be read (a getter or Proxy trap threw)');
  }
  return out as unknown as CapsRead;
}

export function chooseMode(requested: ModeName, capabilities: Capabilities, opts: ModeChoiceOptions = {}): ModeChoice {
  if (!MODES.includes(requested)) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, `unknown mode ${shown(requested)} (expected ${MODES.join(', ')})`);
  const o = readOptions('chooseMode options', opts, ['allowUnfixedMove']);
  if (o.allowUnfixedMove !== undefined && typeof o.allowUnfixedMove !== 'boolean')
    throw invalidArg(`allowUnfixedMove must be a boolean, got ${typeof o.allowUnfixedMove}`);
  const allowUnfixedMove = o.allowUnfixedMove === true;
  const caps = readCaps(capabilities);
  if (!caps.mremapDontUnmap.ok)
    throw new MoveGcError(ErrorCode.UNSUPPORTED, `mremap(MREMAP_DONTUNMAP) unavailable (${caps.mremapDontUnmap.reason}): Linux >= 5.13 is required for every mode`);
  // Out of descriptors or memory while probing: the kernel may have everything; say so rather
  // than fall back for the heap's whole life.
  // Every way of opening one too: a way refused for lack of descriptors would otherwise leave
  // the heap on a lesser one (user mode only) for its life (a probe audit).
  if (requested !== Mode.STW)
    for (const c of [caps.uffd, caps.move, caps.copy, ...caps.ways])
      if (!c.ok && c.reason !== undefined && RESOURCE_ERRNOS.includes(c.reason))
        throw new MoveGcError(c.reason, `the capability probe ran out of resources (${c.reason}): the process is out of descriptors or memory, which says nothing of the kernel; free some and create the heap again`, { errno: os.constants.errno[c.reason as keyof typeof os.constants.errno], syscall: 'probe' });
  const fallbacks: string[] = [];
  let mode = requested;
  if (mode === Mode.MOVE && !caps.move.ok) {
    fallbacks.push(`move -> copy: UFFDIO_MOVE unavailable (${caps.move.reason})`);
    mode = Mode.COPY;
  } else if (mode === Mode.MOVE && !caps.moveFixes.ok && !allowUnfixedMove) {
    fallbacks.push(
      caps.moveFixes.reason === 'HIDDEN'
        ? 'move -> copy: the UFFDIO_MOVE fixes were hidden (hide: moveFixes); allowUnfixedMove insists on move'
        : `move -> copy: kernel ${caps.moveFixes.kernel} lacks the UFFDIO_MOVE fixes (${caps.moveFixes.reason}${caps.moveFixes.detail ? `: ${caps.moveFixes.detail}` : ''}); allowUnfixedMove insists on move`,
    );
    mode = Mode.COPY;
  } else if (mode === Mode.MOVE && caps.pinsRefused.reason === 'MOVED_PINNED') {
    // I/O into a pinned buffer page would land in whatever heap page MOVE put it at.
    fallbacks.push('move -> copy: this kernel moved a page pinned by io_uring instead of refusing it (EBUSY)');
    mode = Mode.COPY;
  }
  // Move mode installs with COPY too (a page built for a fault, short runs, a page MOVE refused).
  if (mode !== Mode.STW && !(caps.uffd.ok && caps.copy.ok)) {
    const reason = caps.uffd.ok ? caps.copy.reason : caps.uffd.reason;
    fallbacks.push(`${mode} -> stw: userfaultfd ${caps.uffd.ok ? 'COPY' : ''} unavailable (${reason})`.replace('  ', ' '));
    mode = Mode.STW;
  }
  return { mode, fallbacks };
}
