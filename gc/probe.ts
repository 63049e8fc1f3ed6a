/**
 * The kernel capability probe, isolated here (as ART isolates its own). It opens a
 * userfaultfd every way there is, records the features and ioctls the kernel reports, and
 * performs a real MOVE and a real mremap(MREMAP_DONTUNMAP) on scratch pages. Every "no"
 * carries a reason: the errno name that said no, or HIDDEN when an option hid it.
 */
import { native, type RawProbe } from './native.js';
import { featureNames, ioctlNames, type FeatureName, type IoctlName, type OpenHowName } from './uffd.js';

export interface Capability {
  ok: boolean;
  /** The errno name (or CONTENT_MISMATCH, HIDDEN, NO_FEATURE, NO_IOCTL) when not ok. */
  reason?: string;
}

export interface Capabilities {
  pageSize: number;
  /** Whether and how a userfaultfd can be opened: the first of these that works is used. */
  uffd: Capability & { how: OpenHowName | null; ways: Record<OpenHowName, Capability> };
  features: FeatureName[];
  ioctls: IoctlName[];
  /** MOVE: feature reported, ioctl offered on anonymous memory, and a real test move worked. */
  move: Capability;
  copy: Capability;
  zeropage: Capability;
  writeProtect: Capability;
  mremapDontUnmap: Capability;
  /** /sys/kernel/mm/transparent_hugepage/enabled: always, madvise or never. */
  thp: string;
}

/** What a caller may hide, to exercise fallbacks on a kernel that has everything. */
export type Hideable = 'uffd' | 'move';

let raw: RawProbe | undefined;

/** Probes once per thread (cached); `hide` masks capabilities without re-probing. */
export function probe(opts: { hide?: Hideable[]; refresh?: boolean } = {}): Capabilities {
  if (!raw || opts.refresh) raw = native.probe();
  const hide = new Set(opts.hide ?? []);
  const no = (reason: string): Capability => ({ ok: false, reason });
  const r = raw;
  const features = r.features !== undefined ? featureNames(r.features) : [];
  const ioctls = r.ioctls !== undefined ? ioctlNames(r.ioctls) : [];
  const uffdOk = r.openHow !== null && r.api.ok && !hide.has('uffd');
  const uffd = {
    ok: uffdOk,
    ...(uffdOk ? {} : { reason: hide.has('uffd') ? 'HIDDEN' : (r.open.syscall.reason ?? r.api.reason) }),
    how: uffdOk ? r.openHow : null,
    ways: { syscall: r.open.syscall, userModeOnly: r.open.userModeOnly, device: r.open.device },
  };
  const ioctlCap = (name: IoctlName): Capability =>
    !uffdOk ? no(uffd.reason ?? 'ENOUFFD') : !r.register.ok ? no(r.register.reason ?? 'EINVAL') : ioctls.includes(name) ? { ok: true } : no('NO_IOCTL');
  let move: Capability;
  if (hide.has('move')) move = no('HIDDEN');
  else if (!uffdOk) move = no(uffd.reason ?? 'ENOUFFD');
  else if (!features.includes('MOVE')) move = no('NO_FEATURE');
  else if (!ioctls.includes('MOVE')) move = no('NO_IOCTL');
  else move = r.testMove.ok ? { ok: true } : no(r.testMove.reason ?? 'EINVAL');
  return {
    pageSize: r.pageSize,
    uffd,
    features: hide.has('move') ? features.filter((f) => f !== 'MOVE') : features,
    ioctls: hide.has('move') ? ioctls.filter((i) => i !== 'MOVE') : ioctls,
    move,
    copy: ioctlCap('COPY'),
    zeropage: ioctlCap('ZEROPAGE'),
    writeProtect: !uffdOk ? no(uffd.reason ?? 'ENOUFFD') : r.registerWp.ok ? { ok: true } : no(r.registerWp.reason ?? 'EINVAL'),
    mremapDontUnmap: r.mremapDontUnmap,
    thp: r.thp,
  };
}
