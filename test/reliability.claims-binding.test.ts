/**
 * Claims of the thin typed layer over the binding (gc/validate.ts, gc/values.ts, gc/uffd.ts,
 * gc/memory.ts, gc/pin.ts, gc/watchdog.ts) that no other test could fail on: each test here
 * fails with one guard of that layer removed (a one-line mutant), on the real kernel.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { IoUringPin, Mapping, PAGE_SIZE, Userfaultfd, probe, type UffdEvent } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';
import { startActor } from './helpers/actor.js';
import { fixtureResult } from './helpers/child.js';

const PS = PAGE_SIZE;
type Any = any;

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** This process's open userfaultfd descriptors. */
function uffdFds(): number[] {
  return fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).includes('userfaultfd');
    } catch {
      return false;
    }
  });
}

describe('Userfaultfd', () => {
  itKernel('open(): a refused UFFDIO_API handshake closes the descriptor it opened (EPERM for EVENT_FORK without CAP_SYS_PTRACE)', () => {
    // The handshake fails only for a caller without CAP_SYS_PTRACE asking for EVENT_FORK: run
    // it in a child without that capability (dropped with setpriv when we are root).
    const index = fileURLToPath(new URL('../dist/gc/index.js', import.meta.url));
    const script = `
      const fs = require('node:fs');
      const count = () => fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f).includes('userfaultfd'); } catch { return false; } }).length;
      import(${JSON.stringify(index)}).then((g) => {
        const before = count();
        let code = 'none';
        try { g.Userfaultfd.open({ how: 'userModeOnly', features: ['EVENT_FORK'] }).close(); } catch (e) { code = e.code; }
        console.log(JSON.stringify({ code, before, after: count() }));
      });`;
    const root = process.getuid!() === 0;
    const argv = root ? ['setpriv', '--inh-caps=-sys_ptrace', '--bounding-set=-sys_ptrace', process.execPath] : [process.execPath];
    const r = spawnSync(argv[0], [...argv.slice(1), '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ code: 'EPERM', before: 0, after: 0 });
  }, ['uffd']);

  itKernel('the userfaultfd a FORK event hands over is the caller\'s: its close() closes the descriptor', async () => {
    const actor = await startActor(cleanups);
    const u = Userfaultfd.open({ features: ['EVENT_FORK'] });
    cleanups.push(() => u.close()); // first in cleanup: frees the worker if it is still blocked
    const m = Mapping.anonymous(PS, { advise: ['NOHUGEPAGE'] });
    cleanups.unshift(() => m.close());
    u.register(m.address, PS);
    const forked = actor.call('fork');
    const events: UffdEvent[] = [];
    for (let i = 0; i < 100 && events.length === 0; i++) events.push(...u.readEvents(50));
    expect(events.map((e) => e.type)).toEqual(['fork']);
    const child = (events[0] as Extract<UffdEvent, { type: 'fork' }>).uffd;
    const pid = await forked;
    cleanups.push(() => actor.call('release', { pid }));
    expect(uffdFds()).toContain(child.fd);
    child.close();
    expect(child.closed).toBe(true);
    expect(uffdFds()).not.toContain(child.fd);
    expect(uffdFds()).toContain(u.fd);
  }, ['uffd']);

  itKernel('a Worker forks while the EVENT_FORK reader allocates: no deadlock (forkHold is a raw clone)', async () => {
    // glibc's fork() held malloc's locks while the kernel held the fork for its event: the
    // reader, allocating, never read it (7 runs of 7 hung, one within 5 forks). In a child: a hang
    // must not take the runner down.
    expect(await fixtureResult('fork-event-reader.mjs', ['50'], 30_000)).toEqual({ forks: 50, events: 50 });
  }, ['uffd'], 60_000);

  itKernel('an option getter that closes the Userfaultfd: ERR_CLOSED, and the reused descriptor number reaches nothing', () => {
    const src = Mapping.anonymous(PS);
    cleanups.push(() => src.close());
    const dst = Mapping.anonymous(PS);
    cleanups.push(() => dst.close());
    new Uint8Array(src.view())[0] = 42;
    const u = Userfaultfd.open({ features: ['MOVE'] });
    cleanups.push(() => u.close());
    u.register(dst.address, PS);
    let other: Userfaultfd | undefined;
    const opts = {
      get dontWake(): boolean {
        u.close();
        other = Userfaultfd.open({ features: ['MOVE'] }); // takes the lowest free number: u's
        other.register(dst.address, PS);
        return false;
      },
    };
    const e = thrown(() => u.moveOnce(dst.address, src.address, PS, opts as Any));
    cleanups.push(() => other?.close());
    expect(other!.fd).toBe(u.fd); // the hazard is real: the number now names another userfaultfd
    expect(e.code).toBe('ERR_CLOSED');
    // Nothing moved through the other userfaultfd.
    expect(new Uint8Array(src.view())[0]).toBe(42);
    expect(dst.residentPages()).toBe(0);
  }, ['uffd', 'move']);
});

describe('option objects', () => {
  itKernel('list options hold at most 64 entries: 65 is ERR_OUT_OF_RANGE before anything is opened or mapped', () => {
    const fds = uffdFds().length;
    Userfaultfd.open({ features: Array(64).fill('MOVE') }).close();
    expect(thrown(() => Userfaultfd.open({ features: Array(65).fill('MOVE') })).code).toBe('ERR_OUT_OF_RANGE');
    expect(uffdFds().length).toBe(fds);
    Mapping.anonymous(PS, { advise: Array(64).fill('NOHUGEPAGE') }).close();
    expect(thrown(() => Mapping.anonymous(PS, { advise: Array(65).fill('NOHUGEPAGE') })).code).toBe('ERR_OUT_OF_RANGE');
  }, ['uffd']);


  itKernel('a revoked Proxy as options or as a list, and a list whose iterator never ends: typed errors or a bounded read, at every entry', () => {
    const revoked = (): object => {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    };
    const endless = (v: string): unknown[] => Object.assign([], { *[Symbol.iterator]() { for (;;) yield v; } });
    const fds = uffdFds().length;
    const calls: Array<[string, () => unknown]> = [
      ['probe(revoked)', () => probe(revoked() as Any)],
      ['probe({ hide: revoked })', () => probe({ hide: revoked() as Any })],
      ['Mapping.anonymous(PS, revoked)', () => Mapping.anonymous(PS, revoked() as Any).close()],
      ['Mapping.anonymous(PS, { advise: revoked })', () => Mapping.anonymous(PS, { advise: revoked() as Any }).close()],
      ['Userfaultfd.open(revoked)', () => Userfaultfd.open(revoked() as Any).close()],
      ['Userfaultfd.open({ features: revoked })', () => Userfaultfd.open({ features: revoked() as Any }).close()],
    ];
    for (const [name, f] of calls) expect(thrown(f).code, name).toBe('ERR_INVALID_ARG_TYPE');
    // Read by index up to the length (0 here): the iterator is never asked, so these return.
    expect(probe({ hide: endless('uffd') as Any }).uffd.ok).toBe(probe().uffd.ok);
    Mapping.anonymous(PS, { advise: endless('NOHUGEPAGE') as Any }).close();
    Userfaultfd.open({ features: endless('MOVE') as Any }).close();
    expect(uffdFds().length).toBe(fds);
  }, ['uffd']);

  itKernel('an array is not an options object, even an empty one (it would read as "no options")', () => {
    const m = Mapping.anonymous(2 * PS);
    cleanups.push(() => m.close());
    const u = Userfaultfd.open({ features: ['MOVE'] });
    cleanups.push(() => u.close());
    u.register(m.address + PS, PS);
    new Uint8Array(m.view(0, PS))[0] = 7;
    const withArray = Object.assign([], { dontWake: false }); // an array whose own keys are all known
    const calls: Array<[string, (o: Any) => unknown]> = [
      ['Userfaultfd.open', (o) => Userfaultfd.open(o).close()],
      ['Mapping.anonymous', (o) => Mapping.anonymous(PS, o).close()],
      ['IoUringPin.pin', (o) => IoUringPin.pin(m.address, PS, o).release()],
      ['probe', (o) => probe(o)],
      ['register', (o) => u.register(m.address + PS, PS, o)],
      ['moveOnce', (o) => u.moveOnce(m.address + PS, m.address, PS, o)],
    ];
    for (const [name, call] of calls) {
      expect(thrown(() => call([])).code, name).toBe('ERR_INVALID_ARG_TYPE');
      if (name === 'moveOnce') expect(thrown(() => call(withArray)).code, name).toBe('ERR_INVALID_ARG_TYPE');
    }
    // Nothing moved.
    expect(new Uint8Array(m.view(0, PS))[0]).toBe(7);
    expect(m.residentPages(PS, PS)).toBe(0);
  }, ['uffd', 'move']);
});

describe('Mapping', () => {
  it('anonymous(): advice the kernel refuses after the mmap unmaps the new range (no leaked mapping)', () => {
    // MADV_WIPEONFORK is known advice, but the kernel refuses it on a shared mapping (EINVAL):
    // a failure after the mapping exists. A shared anonymous mapping reads as /dev/zero in maps.
    const length = 13 * PS; // a size no other shared mapping of this process has
    const shared = (): number => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) .*\/dev\/zero/.exec(l);
      return m !== null && parseInt(m[2], 16) - parseInt(m[1], 16) === length;
    }).length;
    const before = shared();
    const ok = Mapping.anonymous(length, { shared: true });
    expect(shared()).toBe(before + 1); // the count sees such a mapping
    ok.close();
    expect(shared()).toBe(before);
    for (let i = 0; i < 3; i++) expect(thrown(() => Mapping.anonymous(length, { shared: true, advise: ['NOHUGEPAGE', 'WIPEONFORK'] })).code).toBe('EINVAL');
    expect(shared()).toBe(before);
  });


  it('view(): one byte past the end is ERR_OUT_OF_RANGE (a view never reaches past the mapping); the exact fit works', () => {
    const m = Mapping.anonymous(4 * PS);
    cleanups.push(() => m.close());
    for (const [off, len] of [[0, 4 * PS + 1], [PS, 3 * PS + 1], [4 * PS - 1, 2], [4 * PS, 1]])
      expect(thrown(() => m.view(off, len)).code, `view ${off}+${len}`).toBe('ERR_OUT_OF_RANGE');
    expect(m.view(0, 4 * PS).byteLength).toBe(4 * PS);
    expect(m.view(4 * PS - 1, 1).byteLength).toBe(1);
    expect(m.view(PS).byteLength).toBe(3 * PS);
  });

  it('advise() and residentPages(): a range one page past the end is ERR_OUT_OF_RANGE, never reaching the kernel; the exact fit works', () => {
    const m = Mapping.anonymous(4 * PS);
    cleanups.push(() => m.close());
    new Uint8Array(m.view()).fill(3);
    for (const [off, len] of [[0, 5 * PS], [PS, 4 * PS], [3 * PS, 2 * PS], [4 * PS, PS]]) {
      expect(thrown(() => m.advise('DONTNEED', off, len)).code, `advise ${off}+${len}`).toBe('ERR_OUT_OF_RANGE');
      expect(thrown(() => m.residentPages(off, len)).code, `mincore ${off}+${len}`).toBe('ERR_OUT_OF_RANGE');
    }
    expect(m.residentPages(0, 4 * PS)).toBe(4); // nothing was dropped
    expect(m.residentPages(3 * PS, PS)).toBe(1);
    m.advise('DONTNEED', 3 * PS, PS);
    expect(m.residentPages(0, 4 * PS)).toBe(3);
    expect(new Uint8Array(m.view())[3 * PS]).toBe(0);
  });
});
