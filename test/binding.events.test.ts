/**
 * What a userfaultfd says, as the kernel says it: full fault records (address, write / wp /
 * minor flags, thread id) and the non-fault events (REMOVE, UNMAP, REMAP, FORK), and the
 * ioctls that resolve the other kinds of fault (WRITEPROTECT, CONTINUE, POISON). A Worker
 * (test/workers/uffd-actor.mjs) does the access or the mm operation and blocks in the kernel;
 * this thread reads the record and resolves it. Closing the userfaultfd in cleanup frees
 * the worker if a test fails half-way.
 */
import { afterEach, describe, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Mapping, PAGE_SIZE, Userfaultfd, type FeatureName, type UffdEvent } from '../dist/gc/index.js';
import { itKernel } from './kernel.js';
import { startActor as startActorIn, type Actor } from './helpers/actor.js';

const PS = PAGE_SIZE;

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const startActor = (): Promise<Actor> => startActorIn(cleanups);

/** A userfaultfd closed first in cleanup (it frees a worker blocked on it), before the worker ends. */
function openUffd(features: FeatureName[]): Userfaultfd {
  const u = Userfaultfd.open({ features });
  cleanups.push(() => u.close());
  return u;
}

function mapping(pages: number, opts: { shared?: boolean } = {}): Mapping {
  const m = Mapping.anonymous(pages * PS, { advise: ['NOHUGEPAGE'], ...opts });
  cleanups.unshift(() => m.close()); // after the worker has let go of it
  return m;
}

/** Reads records until `n` arrived (bounded: 5 s). The worker is blocked meanwhile, not us. */
function readN(u: Userfaultfd, n: number): UffdEvent[] {
  const got: UffdEvent[] = [];
  const deadline = Date.now() + 5000;
  while (got.length < n && Date.now() < deadline) got.push(...u.readEvents(50));
  return got;
}

/** `p`, or a failure naming the worker still blocked in the kernel after 5 s. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the worker is still blocked in the kernel after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Whether `p` is still pending after `ms` (the worker still blocked in the kernel). */
async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol('pending');
  return (await Promise.race([p, new Promise((r) => setTimeout(() => r(pending), ms))])) === pending;
}

const uffdFds = (): Set<string> =>
  new Set(fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[userfaultfd]';
    } catch {
      return false;
    }
  }));

describe('page-fault records', () => {
  itKernel('a write to a missing page from another thread: address, write flag and, with THREAD_ID, its thread id', async () => {
    const actor = await startActor();
    const tid = await actor.call('tid');
    const u = openUffd(['THREAD_ID']);
    const m = mapping(1);
    const src = mapping(1);
    new Uint8Array(src.view()).fill(9);
    u.register(m.address, m.length);

    const wrote = actor.call('write', { address: m.address + 100, value: 42 });
    const [ev, ...rest] = readN(u, 1);
    expect(rest).toEqual([]);
    expect(ev).toEqual({ type: 'pagefault', address: m.address, flags: 1, write: true, wp: false, minor: false, tid });
    expect(tid).not.toBe(process.pid); // the worker's thread, not the main one
    u.copy(m.address, src.address, PS);
    expect(await within(wrote)).toBe(42);
    const u8 = new Uint8Array(m.view());
    expect([u8[99], u8[100], u8[101]]).toEqual([9, 42, 9]);
  });

  itKernel('a read fault without THREAD_ID: no write flag and no tid', async () => {
    const actor = await startActor();
    const u = openUffd([]);
    const m = mapping(1);
    u.register(m.address, m.length);
    const read = actor.call('read', { address: m.address + 5 * 8 });
    const [ev] = readN(u, 1);
    expect(ev).toEqual({ type: 'pagefault', address: m.address, flags: 0, write: false, wp: false, minor: false });
    u.zeropage(m.address, PS);
    expect(await within(read)).toBe(0);
  });
});

describe('write-protect', () => {
  itKernel('a write to a write-protected page waits for writeProtect(off), which resolves it', async () => {
    const actor = await startActor();
    const u = openUffd([]);
    const m = mapping(1);
    const u8 = new Uint8Array(m.view());
    u8.fill(1); // populated: write protection applies to present pages
    expect(u.register(m.address, m.length, { missing: false, wp: true })).toContain('WRITEPROTECT');
    u.writeProtect(m.address, PS, true);
    expect(u8[5]).toBe(1); // reads are not faults

    const wrote = actor.call('write', { address: m.address + 5, value: 42 });
    const [ev] = readN(u, 1);
    expect(ev).toEqual({ type: 'pagefault', address: m.address, flags: 3, write: true, wp: true, minor: false });
    expect(await stillPending(wrote, 100)).toBe(true);
    expect(u8[5]).toBe(1); // the write has not happened
    u.writeProtect(m.address, PS, false);
    expect(await within(wrote)).toBe(42);
    expect(u8[5]).toBe(42);
  });

  itKernel('writeProtect(off, dontWake) leaves the writer asleep until wake()', async () => {
    const actor = await startActor();
    const u = openUffd([]);
    const m = mapping(1);
    new Uint8Array(m.view()).fill(1);
    u.register(m.address, m.length, { missing: false, wp: true });
    u.writeProtect(m.address, PS, true);
    const wrote = actor.call('write', { address: m.address, value: 7 });
    expect(readN(u, 1)).toHaveLength(1);
    u.writeProtect(m.address, PS, false, { dontWake: true });
    expect(await stillPending(wrote, 200)).toBe(true);
    u.wake(m.address, PS);
    expect(await within(wrote)).toBe(7);
  });
});

describe('minor faults and CONTINUE (shmem)', () => {
  itKernel('a page in the page cache but not mapped faults as minor; continue() maps that page, not a zero page', async () => {
    const actor = await startActor();
    const u = openUffd(['MINOR_SHMEM']);
    const m = mapping(1, { shared: true });
    new Uint8Array(m.view()).fill(0x33); // into the shmem page cache
    m.advise('DONTNEED'); // unmapped here, still cached
    expect(u.register(m.address, m.length, { missing: false, minor: true })).toContain('CONTINUE');
    const read = actor.call('read', { address: m.address + 9 });
    const [ev] = readN(u, 1);
    expect(ev).toEqual({ type: 'pagefault', address: m.address, flags: 4, write: false, wp: false, minor: true });
    expect(u.continue(m.address, PS)).toBe(PS);
    expect(await within(read)).toBe(0x33);
  });
});

describe('non-fault events', () => {
  itKernel('REMOVE: madvise(DONTNEED) of a registered range is reported with its bounds', async () => {
    const actor = await startActor();
    const u = openUffd(['EVENT_REMOVE']);
    const m = mapping(4);
    new Uint8Array(m.view()).fill(1);
    u.register(m.address, m.length);
    const done = actor.call('madvise', { address: m.address + PS, length: 2 * PS, advice: 'DONTNEED' });
    expect(readN(u, 1)).toEqual([{ type: 'remove', start: m.address + PS, end: m.address + 3 * PS }]);
    await within(done);
  });

  itKernel('the fast path (readFaults) keeps a non-fault event for readEvents instead of losing it', async () => {
    const actor = await startActor();
    const u = openUffd(['EVENT_REMOVE']);
    const m = mapping(2);
    new Uint8Array(m.view()).fill(1);
    u.register(m.address, m.length);
    const done = actor.call('madvise', { address: m.address, length: 2 * PS, advice: 'DONTNEED' });
    const out = new Float64Array(8);
    let faults = 0;
    const deadline = Date.now() + 5000;
    while (u.stashedEvents === 0 && Date.now() < deadline) faults += u.readFaults(out, 50);
    await within(done); // the madvise returned: the kernel handed the event over
    expect(faults).toBe(0);
    expect(u.stashedEvents).toBe(1);
    expect(u.readEvents(0)).toEqual([{ type: 'remove', start: m.address, end: m.address + 2 * PS }]);
    expect(u.stashedEvents).toBe(0);
    expect(u.readEvents(0)).toEqual([]);
  });

  itKernel('UNMAP: munmap of a registered range is reported with its bounds', async () => {
    const actor = await startActor();
    const u = openUffd(['EVENT_UNMAP']);
    const address = await actor.call('map', { length: 3 * PS });
    u.register(address, 3 * PS);
    const done = actor.call('unmap', { address });
    expect(readN(u, 1)).toEqual([{ type: 'unmap', start: address, end: address + 3 * PS }]);
    await within(done);
  });

  itKernel('REMAP: mremap of a registered range is reported with from, to and length', async () => {
    const actor = await startActor();
    const u = openUffd(['EVENT_REMAP']);
    const from = await actor.call('map', { length: 2 * PS });
    const to = mapping(2);
    u.register(from, 2 * PS);
    const done = actor.call('remap', { from, length: 2 * PS, to: to.address });
    expect(readN(u, 1)).toEqual([{ type: 'remap', from, to: to.address, length: 2 * PS }]);
    await within(done);
    expect(new Uint8Array(to.view())[0]).toBe(7); // the actor's pages, moved
  });

  itKernel('FORK: a fork with a registered range hands over the child\'s own userfaultfd', async () => {
    const actor = await startActor();
    const u = openUffd(['EVENT_FORK']);
    const m = mapping(1);
    u.register(m.address, m.length);
    const forked = actor.call('fork');
    const [ev, ...rest] = readN(u, 1);
    expect(rest).toEqual([]);
    expect(ev.type).toBe('fork');
    const child = (ev as Extract<UffdEvent, { type: 'fork' }>).uffd;
    cleanups.push(() => child.close());
    expect(child).toBeInstanceOf(Userfaultfd);
    expect(child.fd).not.toBe(u.fd);
    expect(fs.readlinkSync(`/proc/self/fd/${child.fd}`)).toBe('anon_inode:[userfaultfd]');
    const pid = await within(forked);
    await actor.call('release', { pid });
  });

  itKernel('a FORK event kept by the fast path does not leak its descriptor: close() closes it', async () => {
    const actor = await startActor();
    const u = Userfaultfd.open({ features: ['EVENT_FORK'] });
    let closed = false;
    cleanups.push(() => {
      if (!closed) u.close();
    });
    const m = mapping(1);
    u.register(m.address, m.length);
    const before = uffdFds();
    const forked = actor.call('fork');
    const out = new Float64Array(8);
    const deadline = Date.now() + 5000;
    while (u.stashedEvents === 0 && Date.now() < deadline) u.readFaults(out, 50);
    const pid = await within(forked);
    const added = [...uffdFds()].filter((fd) => !before.has(fd));
    expect(added).toHaveLength(1); // the child's userfaultfd, installed by the read
    closed = true;
    u.close();
    expect(uffdFds().has(added[0])).toBe(false);
    expect(uffdFds().has(String(u.fd))).toBe(false);
    await actor.call('release', { pid });
  });
});

describe('POISON', () => {
  itKernel('a poisoned page kills whoever reads it with SIGBUS (a zero page, the control, reads 0)', () => {
    const fixture = fileURLToPath(new URL('./fixtures/poison-touch.mjs', import.meta.url));
    const run = (how: string) => spawnSync(process.execPath, [fixture, how], { encoding: 'utf8', timeout: 20_000 });
    const control = run('zeropage');
    expect(control.stderr).toBe('');
    expect(control.stdout).toBe(`resolved ${PS}\nread 0\n`);
    expect(control.status).toBe(0);
    const poisoned = run('poison');
    expect(poisoned.stdout).toBe(`resolved ${PS}\n`);
    expect(poisoned.signal).toBe('SIGBUS');
  });
});
