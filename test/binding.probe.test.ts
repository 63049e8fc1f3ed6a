/**
 * The capability probe against the real kernel: what it claims must be true (checked by
 * doing it), and every "no" must say why.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Mapping, PAGE_SIZE, Userfaultfd, probe, type Capabilities, type Capability } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';

/** Every Capability in the report, by path. */
function capabilities(c: Capabilities): Array<[string, Capability]> {
  const list: Array<[string, Capability]> = [
    ['uffd', c.uffd], ['move', c.move], ['copy', c.copy], ['zeropage', c.zeropage],
    ['writeProtect', c.writeProtect], ['mremapDontUnmap', c.mremapDontUnmap],
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
    for (const name of ['move', 'copy', 'zeropage', 'writeProtect'] as const) {
      expect(noUffd[name].ok).toBe(false);
      expect(noUffd[name].reason).toBe('HIDDEN');
    }
    expectReasons(noUffd);
    // Hiding does not stick: the next plain probe reports the kernel again.
    expect(probe().uffd.ok).toBe(probe({ refresh: true }).uffd.ok);
  });
});
