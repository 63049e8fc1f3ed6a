/**
 * The kernel capability probe, isolated here (as ART isolates its own). It opens a
 * userfaultfd every way there is, records the features and ioctls the kernel reports, and
 * performs a real MOVE and a real mremap(MREMAP_DONTUNMAP) on scratch pages. It also answers
 * what the UFFDIO_MOVE review left to "how an user app knows what the kernel supports":
 * whether MOVE works across processes (crossMm), whether pinned pages are refused
 * (pinsRefused), and whether the kernel has the MOVE fixes ART gates on (moveFixes).
 * Every "no" carries a reason: the errno name that said no, or HIDDEN when an option hid it.
 */
import os from 'node:os';
import { native, type RawProbe } from './native.js';
import { Feature, featureNames, ioctlNames, type FeatureName, type IoctlName, type OpenHowName } from './uffd.js';
import { invalidArg, shown } from './errors.js';
import { checkFlags, readList, readOptions } from './validate.js';

export interface Capability {
  ok: boolean;
  /**
   * The errno name (or CONTENT_MISMATCH, HIDDEN, NO_FEATURE, NO_IOCTL, NO_MOVE, NO_IO_URING,
   * MOVED_PINNED, UNFIXED_KERNEL, UNKNOWN_VERSION, ...) when not ok.
   */
  reason?: string;
  /** What was tried, where the reason alone would be ambiguous. */
  detail?: string;
}

export interface KernelVersion {
  major: number;
  minor: number;
  patch: number;
}

/** "6.12.20-android16-5-g..." -> { 6, 12, 20 }; a missing patch level is 0; null if unparseable. */
export function parseKernelRelease(release: string): KernelVersion | null {
  // A string only: String() of an object runs its toString (which may throw), of a Symbol is no release.
  if (typeof release !== 'string') throw invalidArg(`a kernel release must be a string (os.release()), got ${shown(release)}`);
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? 0 : Number(m[3]) };
}

/**
 * Whether a kernel release carries the UFFDIO_MOVE fixes ART gates on (6.12.20+, 6.13.8+,
 * 6.14+): a large-folio deadlock (now EAGAIN), a BUG on swap-cache pages, and HIGHPTE.
 * A version gate, as ART's: the bugs cannot be tested without risking them.
 */
export function moveFixesIn(release: string): Capability {
  const v = parseKernelRelease(release);
  if (!v) return { ok: false, reason: 'UNKNOWN_VERSION', detail: `cannot parse the kernel release "${release}"` };
  const { major, minor, patch } = v;
  const fixed = major > 6 || (major === 6 && (minor >= 14 || (minor === 13 && patch >= 8) || (minor === 12 && patch >= 20)));
  return fixed
    ? { ok: true }
    : {
        ok: false,
        reason: 'UNFIXED_KERNEL',
        detail: `Linux ${major}.${minor}.${patch} predates the UFFDIO_MOVE fixes of 6.12.20, 6.13.8 and 6.14 (large-folio deadlock, swap-cache BUG, HIGHPTE)`,
      };
}

/** Feature bits the kernel reported that movegc has no name for (where a cross-mm bit would appear). */
function unknownFeatureBits(bits: number): number[] {
  const known = Object.values(Feature).reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let b = 0; b < 53; b++) if (Math.floor(bits / 2 ** b) % 2 === 1 && Math.floor(known / 2 ** b) % 2 === 0) out.push(b);
  return out;
}

export interface Capabilities {
  pageSize: number;
  /** Whether and how a userfaultfd can be opened: the first of these that works is used. */
  uffd: Capability & { how: OpenHowName | null; ways: Record<OpenHowName, Capability> };
  /** The features this process can turn on: those the kernel reports, less `featuresRefused`. */
  features: FeatureName[];
  /** Features the kernel reports that a handshake asking for them alone refused (EVENT_FORK needs CAP_SYS_PTRACE unless vm.unprivileged_userfaultfd). */
  featuresRefused: FeatureName[];
  ioctls: IoctlName[];
  /** MOVE: feature reported, ioctl offered on anonymous memory, and a real test move worked. */
  move: Capability;
  copy: Capability;
  zeropage: Capability;
  writeProtect: Capability;
  mremapDontUnmap: Capability;
  /**
   * MOVE from a child process that holds this process's userfaultfd. No kernel so far allows
   * it (EINVAL: no feature bit was ever added); `unknownFeatureBits` lists reported feature
   * bits movegc has no name for, where a future cross-mm bit would show.
   */
  crossMm: Capability & { unknownFeatureBits: number[] };
  /** MOVE of a page pinned by io_uring is refused with EBUSY (and the page moves once unpinned). */
  pinsRefused: Capability;
  /** The running kernel has the MOVE fixes ART gates on (6.12.20+, 6.13.8+ or 6.14+). */
  moveFixes: Capability & { kernel: string };
  /** /sys/kernel/mm/transparent_hugepage/enabled: always, madvise or never. */
  thp: string;
}

/** What a caller may hide, to exercise fallbacks on a kernel that has everything. */
export type Hideable = 'uffd' | 'move' | 'moveFixes';
export const HIDEABLE: readonly Hideable[] = Object.freeze(['uffd', 'move', 'moveFixes']);

/** A list of capabilities to hide (HeapOptions.hide, probe's hide): read once, each one known. */
export function readHidden(what: string, v: unknown, max?: number): Hideable[] {
  const list = readList(what, v, max);
  for (const h of list)
    if (!(HIDEABLE as readonly unknown[]).includes(h)) throw invalidArg(`${what}: unknown capability ${shown(h)} (expected ${HIDEABLE.join(', ')})`);
  return list as Hideable[];
}

let raw: RawProbe | undefined;

/** Errnos that say the process ran out of something (descriptors, memory), not that the kernel lacks a feature. */
export const RESOURCE_ERRNOS: readonly string[] = ['EMFILE', 'ENFILE', 'ENOMEM'];

/**
 * Probes once per thread (cached; crossMm and pinsRefused once per process, except a "no" the
 * process's own state gave: native/probe.cc); `hide` masks capabilities without re-probing. A
 * probe that ran out of descriptors or memory is not cached: its "no" is the process's state,
 * not the kernel's (a resource-edge audit found one EMFILE turning every later heap of the
 * process into stw).
 */
export function probe(opts: { hide?: Hideable[]; refresh?: boolean } = {}): Capabilities {
  const o = readOptions('probe options', opts, ['hide', 'refresh']);
  checkFlags('probe options', o, ['refresh']);
  const hide = new Set(readHidden('probe options.hide', o.hide));
  let r = raw;
  if (!r || o.refresh === true) {
    r = native.probe();
    const said = JSON.stringify(r);
    raw = RESOURCE_ERRNOS.some((e) => said.includes(`"${e}"`)) ? undefined : r;
  }
  const no = (reason: string): Capability => ({ ok: false, reason });
  const refused = r.featuresRefused !== undefined ? featureNames(r.featuresRefused) : [];
  const features = r.features !== undefined ? featureNames(r.features).filter((f) => !refused.includes(f)) : [];
  const ioctls = r.ioctls !== undefined ? ioctlNames(r.ioctls) : [];
  const uffdOk = r.openHow !== null && r.api.ok && !hide.has('uffd');
  const uffd = {
    ok: uffdOk,
    ...(uffdOk ? {} : { reason: hide.has('uffd') ? 'HIDDEN' : (r.open.syscall.reason ?? r.api.reason) }),
    how: uffdOk ? r.openHow : null,
    // Copies, as every capability here: the raw probe is cached, and an object handed to the
    // caller that is the cache's own would carry the caller's edits into every later probe().
    ways: { syscall: { ...r.open.syscall }, userModeOnly: { ...r.open.userModeOnly }, device: { ...r.open.device } },
  };
  const ioctlCap = (name: IoctlName): Capability =>
    !uffdOk ? no(uffd.reason ?? 'ENOUFFD') : !r.register.ok ? no(r.register.reason ?? 'EINVAL') : ioctls.includes(name) ? { ok: true } : no('NO_IOCTL');
  let move: Capability;
  if (hide.has('move')) move = no('HIDDEN');
  else if (!uffdOk) move = no(uffd.reason ?? 'ENOUFFD');
  else if (!features.includes('MOVE')) move = no('NO_FEATURE');
  // A refused registration is the reason, not the ioctl bit it could not report (an audit:
  // NO_IOCTL under a seccomp filter that refused the registration with EPERM).
  else if (!r.register.ok) move = no(r.register.reason ?? 'EINVAL');
  else if (!ioctls.includes('MOVE')) move = no('NO_IOCTL');
  else move = r.testMove.ok ? { ok: true } : no(r.testMove.reason ?? 'EINVAL');
  const afterMove = (c: { ok: boolean; reason?: string; detail?: string }): Capability =>
    !move.ok ? no(move.reason ?? 'NO_MOVE') : c.ok ? { ok: true } : { ok: false, reason: c.reason ?? 'EINVAL', ...(c.detail ? { detail: c.detail } : {}) };
  const kernel = os.release();
  return {
    pageSize: r.pageSize,
    uffd,
    features: hide.has('move') ? features.filter((f) => f !== 'MOVE') : features,
    featuresRefused: refused,
    ioctls: hide.has('move') ? ioctls.filter((i) => i !== 'MOVE') : ioctls,
    move,
    // The ioctl bit, then a real COPY (a filter may refuse what the registration offers).
    copy: ((c) => (c.ok && !r.testCopy.ok ? no(r.testCopy.reason ?? 'EINVAL') : c))(ioctlCap('COPY')),
    zeropage: ioctlCap('ZEROPAGE'),
    writeProtect: !uffdOk ? no(uffd.reason ?? 'ENOUFFD') : r.registerWp.ok ? { ok: true } : no(r.registerWp.reason ?? 'EINVAL'),
    mremapDontUnmap: { ...r.mremapDontUnmap },
    crossMm: { ...afterMove(r.crossMm), unknownFeatureBits: r.features !== undefined ? unknownFeatureBits(r.features) : [] },
    pinsRefused: afterMove(r.pinsRefused),
    moveFixes: { ...(hide.has('moveFixes') ? no('HIDDEN') : moveFixesIn(kernel)), kernel },
    thp: r.thp,
  };
}
