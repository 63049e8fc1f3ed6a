/**
 * The capability probe against the real kernel: what it claims must be true (checked by
 * doing it), and every "no" must say why.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  IoUringPin, Mapping, PAGE_SIZE, Userfaultfd, chooseMode, moveFixesIn, parseKernelRelease, probe,
  type Capabilities, type Capability,
} from '../dist/gc/index.js';
import { CI, itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';

/** Every Capability in the report, by path. */
function capabilities(c: Capabilities): Array<[string, Capability]> {
  const list: Array<[string, Capability]> = [
    ['uffd', c.uffd], ['move', c.move], ['copy', c.copy], ['zeropage', c.zeropage],
    ['writeProtect', c.writeProtect], ['mremapDontUnmap', c.mremapDontUnmap],
    ['crossMm', c.crossMm], ['pinsRefused', c.pinsRefused], ['moveFixes', c.moveFixes],
  ];
  for (const [k, v] of Object.entries(c.uffd.ways)) list.push([`uffd.ways.${k}`, v]);
  return list;
}

function expectReasons(c: Capabilities): void {
  for (const [name, cap] of capabilities(c)) {
    expect(typeof cap.ok, name).toBe('boolean');
    if (!cap.ok) {
      expect(typeof cap.reason, `${name} is not ok and must say why`).toBe('string');
      expect(cap.reason!.length, name).toBeGreaterThan(0);
    }
  }
}

describe('probe', () => {
  itKernel('reports MOVE: feature, ioctl and a real test move; mremap(DONTUNMAP) works; thp is reported', () => {
    const c = probe({ refresh: true });
    expect(c.pageSize).toBe(PAGE_SIZE);
    expect(c.uffd.ok).toBe(true);
    expect(c.uffd.how).not.toBeNull();
    expect(c.move).toEqual({ ok: true });
    expect(c.features).toContain('MOVE');
    expect(c.ioctls).toContain('MOVE');
    expect(c.ioctls).toEqual(expect.arrayContaining(['COPY', 'ZEROPAGE', 'WAKE']));
    expect(c.copy.ok).toBe(true);
    expect(c.zeropage.ok).toBe(true);
    expect(c.mremapDontUnmap).toEqual({ ok: true });
    expect(typeof c.thp).toBe('string');
    expect(['always', 'madvise', 'never', 'unavailable']).toContain(c.thp);
    expectReasons(c);
  });

  it('matches what the kernel does when asked directly', () => {
    const c = probe();
    const sysThp = (() => {
      try {
        return /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))![1];
      } catch {
        return 'unavailable';
      }
    })();
    expect(c.thp).toBe(sysThp);
    if (!c.uffd.ok) return;
    // The same handshake and registration through the typed layer agree with the report.
    const u = Userfaultfd.open({ how: c.uffd.how! });
    const m = Mapping.anonymous(PAGE_SIZE);
    try {
      expect(c.features.every((f) => u.has(f))).toBe(true);
      const offered = u.register(m.address, m.length);
      expect(c.ioctls.every((i) => offered.includes(i))).toBe(true);
      expect(offered.includes('MOVE')).toBe(c.move.ok);
    } finally {
      m.close();
      u.close();
    }
  });

  it('what probe() returns is the caller\'s: editing it changes no later probe() (the raw probe is cached)', () => {
    // Found by an audit: mremapDontUnmap and uffd.ways.* were the cache's own objects. A caller
    // that edited them (mremapDontUnmap.ok = false) made every later Heap.create in the
    // thread fail with ERR_UNSUPPORTED 'mremap(MREMAP_DONTUNMAP) unavailable (edited ...)'.
    const before = JSON.stringify(probe());
    const c = probe();
    const edit = (o: object): void => void Object.assign(o, { ok: !(o as { ok: boolean }).ok, reason: 'edited by the caller' });
    for (const o of [c.mremapDontUnmap, c.uffd.ways.syscall, c.uffd.ways.userModeOnly, c.uffd.ways.device, c.uffd, c.move, c.copy, c.moveFixes, c.pinsRefused, c.crossMm]) edit(o);
    c.features.length = 0;
    c.ioctls.length = 0;
    expect(JSON.stringify(probe())).toBe(before);
  });

  it('every capability that is not ok has a reason, including hidden ones', () => {
    expectReasons(probe());
    const noMove = probe({ hide: ['move'] });
    expect(noMove.move).toEqual({ ok: false, reason: 'HIDDEN' });
    expect(noMove.features).not.toContain('MOVE');
    expect(noMove.ioctls).not.toContain('MOVE');
    expectReasons(noMove);
    const noUffd = probe({ hide: ['uffd'] });
    expect(noUffd.uffd.ok).toBe(false);
    expect(noUffd.uffd.reason).toBe('HIDDEN');
    expect(noUffd.uffd.how).toBeNull();
    for (const name of ['move', 'copy', 'zeropage', 'writeProtect', 'crossMm', 'pinsRefused'] as const) {
      expect(noUffd[name].ok).toBe(false);
      expect(noUffd[name].reason).toBe('HIDDEN');
    }
    expectReasons(noUffd);
    for (const name of ['crossMm', 'pinsRefused'] as const) expect(noMove[name]).toMatchObject({ ok: false, reason: 'HIDDEN' });
    expect(probe({ hide: ['moveFixes'] }).moveFixes).toEqual({ ok: false, reason: 'HIDDEN', kernel: os.release() });
    // Hiding does not stick: the next plain probe reports the kernel again.
    expect(probe().uffd.ok).toBe(probe({ refresh: true }).uffd.ok);
  });
});

describe('what the kernel supports beyond MOVE (crossMm, pinsRefused, moveFixes)', () => {
  itKernel('on this kernel: crossMm refused with EINVAL, pinned pages refused, MOVE fixes present', () => {
    const c = probe({ refresh: true });
    expect(c.crossMm).toEqual({
      ok: false, reason: 'EINVAL', detail: "UFFDIO_MOVE from a child process holding this process's userfaultfd", unknownFeatureBits: [],
    });
    expect(c.pinsRefused).toEqual({ ok: true });
    expect(c.moveFixes).toEqual({ ok: true, kernel: os.release() });
  });

  itKernel('with one descriptor free: crossMm and pinsRefused say EMFILE, and are not kept for the process\'s life', () => {
    // A probe audit: both were made once per process and kept, EMFILE and NO_IO_URING (for
    // io_uring's own EMFILE) included, refresh or not.
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/probe-one-fd.mjs', import.meta.url))], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      starved: { uffd: true, crossMm: 'EMFILE', pinsRefused: 'EMFILE' },
      after: { uffd: true, crossMm: 'EINVAL', pinsRefused: 'ok' },
    });
  });

  itKernel('UFFDIO_REGISTER refused (seccomp, EPERM): MOVE and what rests on it say EPERM, as COPY does, not NO_IOCTL', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/probe-register-denied.mjs', import.meta.url))], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ move: 'EPERM', copy: 'EPERM', pinsRefused: 'EPERM', crossMm: 'EPERM' });
  });

  itKernel('UFFDIO_COPY refused (seccomp, EPERM) though its ioctl is offered: the probe tries one, and a heap asked for move or copy runs stw and collects', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/probe-copy-denied.mjs', import.meta.url))], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const heap = (m: string) => ({ ran: 'stw', fallbacks: [`${m} -> stw: userfaultfd COPY unavailable (EPERM)`], verified: true, kept: 3334 });
    expect(JSON.parse(r.stdout)).toEqual({ copy: 'EPERM', move: 'ok', ioctlOffered: true, heaps: { move: heap('move'), copy: heap('copy') } });
  });

  itKernel('features a process cannot turn on are listed apart: EVENT_FORK without CAP_SYS_PTRACE', () => {
    // A probe audit: the handshake asking for nothing lists every feature the kernel has, and
    // EVENT_FORK was reported to a process refused it (EPERM). Root with the capability dropped.
    if (process.getuid?.() === 0) expect(probe({ refresh: true }).featuresRefused).toEqual([]); // root holds CAP_SYS_PTRACE
    const code = "const { probe } = await import(process.argv[1]); const c = probe(); console.log(JSON.stringify({ refused: c.featuresRefused, fork: c.features.includes('EVENT_FORK') }));";
    const r = spawnSync('setpriv', ['--bounding-set=-sys_ptrace', '--inh-caps=-sys_ptrace', process.execPath, '--input-type=module', '-e', code, new URL('../dist/gc/index.js', import.meta.url).href], { encoding: 'utf8', timeout: 30_000 });
    if (r.error && !CI) return void console.warn(`[movegc] skipping: setpriv not runnable here (${r.error.message})`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ refused: ['EVENT_FORK'], fork: false });
  });

  itKernel('crossMm agrees with a MOVE tried by another child process holding our userfaultfd', () => {
    const u = Userfaultfd.open({ features: ['MOVE'] });
    const dst = Mapping.anonymous(PAGE_SIZE);
    try {
      u.register(dst.address, dst.length);
      const fixture = fileURLToPath(new URL('./fixtures/cross-mm-move.mjs', import.meta.url));
      const r = spawnSync(process.execPath, [fixture, String(dst.address)], {
        stdio: ['ignore', 'pipe', 'pipe', u.fd], encoding: 'utf8', timeout: 20_000,
      });
      expect(r.stderr).toBe('');
      const c = probe();
      if (c.crossMm.ok) {
        expect(r.stdout).toBe('moved');
        expect(new Uint8Array(dst.view())[0]).toBe(0x5a);
      } else {
        expect(r.stdout).toBe(c.crossMm.reason);
        expect(dst.residentPages()).toBe(0);
      }
    } finally {
      dst.close();
      u.close();
    }
  });

  itKernel('pinsRefused agrees with a MOVE of a page pinned through the binding', () => {
    const c = probe();
    if (c.pinsRefused.reason === 'NO_IO_URING') {
      if (CI) throw new Error(`CI=true requires io_uring: ${c.pinsRefused.detail}`);
      return;
    }
    const u = Userfaultfd.open({ features: ['MOVE'] });
    const src = Mapping.anonymous(PAGE_SIZE, { advise: ['NOHUGEPAGE'] });
    const dst = Mapping.anonymous(PAGE_SIZE, { advise: ['NOHUGEPAGE'] });
    try {
      new Uint8Array(src.view()).fill(1);
      u.register(dst.address, dst.length);
      const pin = IoUringPin.pin(src.address, PAGE_SIZE);
      let code: string | undefined;
      try {
        u.move(dst.address, src.address, PAGE_SIZE);
      } catch (e) {
        code = (e as { code: string }).code;
      } finally {
        pin.release();
      }
      expect(code === 'EBUSY').toBe(c.pinsRefused.ok);
    } finally {
      src.close();
      dst.close();
      u.close();
    }
  });

  it('moveFixes is the version gate applied to this kernel\'s release', () => {
    const c = probe();
    expect(c.moveFixes.kernel).toBe(os.release());
    const { kernel, ...cap } = c.moveFixes;
    expect(cap).toEqual(moveFixesIn(kernel));
  });

  it('the version gate on a table of releases (6.12.20+, 6.13.8+, 6.14+)', () => {
    const table: Array<[string, boolean | null]> = [
      ['6.18.44-fc-v782', true],
      ['6.12.19', false],
      ['6.12.20', true],
      ['6.12.20-android16-5-g1234abcd', true],
      ['6.12.57+deb13-amd64', true],
      ['6.12', false],
      ['6.13.7-arch1-1', false],
      ['6.13.8', true],
      ['6.13.12-200.fc41.x86_64', true],
      ['6.14', true],
      ['6.14.0-rc1', true],
      ['6.8.0-49-generic', false],
      ['6.6.87.2-microsoft-standard-WSL2', false],
      ['6.11.99', false],
      ['5.15.0-126-generic', false],
      ['7.0.0', true],
      ['10.1', true],
      ['', null],
      ['linux', null],
      ['v6.14', null],
    ];
    for (const [release, fixed] of table) {
      const cap = moveFixesIn(release);
      if (fixed === null) {
        expect(parseKernelRelease(release), release).toBeNull();
        expect(cap, release).toMatchObject({ ok: false, reason: 'UNKNOWN_VERSION' });
      } else {
        expect(cap.ok, release).toBe(fixed);
        if (!fixed) expect(cap.reason, release).toBe('UNFIXED_KERNEL');
      }
    }
    // Not a string: ERR_INVALID_ARG_TYPE (found by an audit: a Symbol gave moveFixesIn a
    // TypeError, an object whose toString throws its own error; both untyped).
    for (const v of [undefined, null, 6.14, Symbol('6.14'), { toString(): never { throw new Error('toString'); } }, new Proxy({}, { get(): never { throw new Error('trap'); } })]) {
      expect(thrown(() => parseKernelRelease(v as never)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => moveFixesIn(v as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    }
    expect(parseKernelRelease('6.12.20-android16')).toEqual({ major: 6, minor: 12, patch: 20 });
    expect(parseKernelRelease('6.14')).toEqual({ major: 6, minor: 14, patch: 0 });
  });
});

describe('chooseMode over synthetic capabilities', () => {
  const ok = { ok: true };
  const caps = (over: Partial<Capabilities> = {}): Capabilities => ({
    pageSize: 4096,
    uffd: { ok: true, how: 'syscall', ways: { syscall: ok, userModeOnly: ok, device: ok } },
    features: ['MOVE'],
    ioctls: ['COPY', 'ZEROPAGE', 'MOVE', 'WAKE'],
    move: ok,
    copy: ok,
    zeropage: ok,
    writeProtect: ok,
    mremapDontUnmap: ok,
    crossMm: { ok: false, reason: 'EINVAL', unknownFeatureBits: [] },
    pinsRefused: ok,
    moveFixes: { ok: true, kernel: '6.18.0' },
    thp: 'madvise',
    featuresRefused: [],
    ...over,
  });
  const unfixed = { ...moveFixesIn('6.12.19'), kernel: '6.12.19' };

  it('everything there: move, whatever crossMm says', () => {
    expect(chooseMode('move', caps())).toEqual({ mode: 'move', fallbacks: [] });
  });

  it('a kernel without the MOVE fixes: move -> copy with the reason, unless the caller insists', () => {
    const c = caps({ moveFixes: unfixed });
    const choice = chooseMode('move', c);
    expect(choice.mode).toBe('copy');
    expect(choice.fallbacks).toHaveLength(1);
    expect(choice.fallbacks[0]).toMatch(/^move -> copy: kernel 6\.12\.19 lacks the UFFDIO_MOVE fixes \(UNFIXED_KERNEL: .*6\.12\.20.*\); allowUnfixedMove insists on move$/);
    expect(chooseMode('move', c, { allowUnfixedMove: true })).toEqual({ mode: 'move', fallbacks: [] });
    expect(chooseMode('move', c, { allowUnfixedMove: false }).mode).toBe('copy');
    expect(chooseMode('copy', c)).toEqual({ mode: 'copy', fallbacks: [] });
    expect(chooseMode('stw', c)).toEqual({ mode: 'stw', fallbacks: [] });
  });

  it('no MOVE at all: one fallback, for MOVE, not also for its fixes; no userfaultfd: on to stw', () => {
    const noMove = caps({ move: { ok: false, reason: 'NO_FEATURE' }, moveFixes: unfixed });
    expect(chooseMode('move', noMove)).toEqual({ mode: 'copy', fallbacks: ['move -> copy: UFFDIO_MOVE unavailable (NO_FEATURE)'] });
    const noUffd = caps({ uffd: { ok: false, reason: 'EPERM', how: null, ways: { syscall: ok, userModeOnly: ok, device: ok } }, move: { ok: false, reason: 'EPERM' }, moveFixes: unfixed });
    const choice = chooseMode('move', noUffd, { allowUnfixedMove: true });
    expect(choice.mode).toBe('stw');
    expect(choice.fallbacks).toEqual(['move -> copy: UFFDIO_MOVE unavailable (EPERM)', 'copy -> stw: userfaultfd unavailable (EPERM)']);
  });

  it('a way of opening a userfaultfd refused for lack of descriptors: that errno, not a lesser way for the heap\'s life', () => {
    // A probe audit: with the plain syscall out of descriptors the probe took user mode only.
    const c = caps({ uffd: { ok: true, how: 'userModeOnly', ways: { syscall: { ok: false, reason: 'EMFILE' }, userModeOnly: ok, device: ok } } });
    const e = thrown(() => chooseMode('move', c));
    expect(e.code, e.message).toBe('EMFILE');
    expect(chooseMode('stw', c)).toEqual({ mode: 'stw', fallbacks: [] });
    // Capabilities of the caller's own with no ways at all are read as before.
    const { ways: _w, ...noWays } = caps().uffd;
    expect(chooseMode('move', caps({ uffd: noWays as never }))).toEqual({ mode: 'move', fallbacks: [] });
  });

  it('a kernel that moved a pinned page: move -> copy; pins merely untested (no io_uring): move', () => {
    const moved = chooseMode('move', caps({ pinsRefused: { ok: false, reason: 'MOVED_PINNED' } }));
    expect(moved.mode).toBe('copy');
    expect(moved.fallbacks[0]).toMatch(/moved a page pinned by io_uring/);
    expect(chooseMode('move', caps({ pinsRefused: { ok: false, reason: 'NO_IO_URING' } })).mode).toBe('move');
  });

  it('capabilities that are not probe()\'s: ERR_INVALID_ARG_TYPE, never a TypeError or the caller\'s own error', () => {
    // Found by an audit: chooseMode validated its mode and options but read `caps` unchecked
    // (null: "Cannot read properties of null"; a Proxy trap's own error; a reason whose
    // toString throws, put into a fallback's message).
    const throwing = { toString(): never { throw new Error('toString'); } };
    const bad: unknown[] = [
      undefined, null, 5, 'caps', {}, caps({ move: undefined as never }), caps({ copy: null as never }), caps({ uffd: { ok: 'yes' } as never }),
      new Proxy(caps(), { get(): never { throw new Error('trap'); } }),
      Object.defineProperty(caps(), 'moveFixes', { get(): never { throw new Error('getter'); } }),
    ];
    for (const c of bad) {
      const e = thrown(() => chooseMode('move', c as never));
      expect(e.code, e.message).toBe('ERR_INVALID_ARG_TYPE');
    }
    // A reason that is not a string is named, not run, in the fallback's message.
    const choice = chooseMode('move', caps({ move: { ok: false, reason: throwing as never } }));
    expect(choice).toEqual({ mode: 'copy', fallbacks: ['move -> copy: UFFDIO_MOVE unavailable (an object)'] });
  });

  it('options: unknown keys and non-boolean values are rejected', () => {
    expect(thrown(() => chooseMode('move', caps(), { allowUnfixedMOVE: true } as never)).code).toBe('ERR_UNKNOWN_OPTION');
    expect(thrown(() => chooseMode('move', caps(), { allowUnfixedMove: 'yes' } as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => chooseMode('move', caps(), null as never)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});
