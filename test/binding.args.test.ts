/**
 * Bad arguments get typed errors, never a crash: wrong types -> ERR_INVALID_ARG_TYPE;
 * negative, fractional, non-finite or unsafe numbers -> ERR_OUT_OF_RANGE; both from the
 * typed layer (MoveGcError) and from the raw addon underneath it (which must not trust its
 * caller either). Values that are well-formed but absurd reach the kernel and come back as
 * its errno.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Feature, IoUringPin, Ioctl, Mapping, MoveGcError, PAGE_SIZE, Userfaultfd, featureNames, ioctlNames, madvise, probe, remapDontUnmap, viewOf,
} from '../dist/gc/index.js';
import { native } from '../dist/gc/native.js';
import { itKernel } from './kernel.js';
import { thrown } from './helpers/thrown.js';

const PS = PAGE_SIZE;
type Any = any;


const WRONG_TYPES: unknown[] = ['4096', '0x1000', 4096n, undefined, null, {}, [4096], true];
const OUT_OF_RANGE: unknown[] = [-4096, -1, 4096.5, 0.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64];

function expectCode(fn: () => unknown, code: string, typed = true): void {
  const e = thrown(fn);
  if (typed) expect(e).toBeInstanceOf(MoveGcError);
  expect(e.code, `${e.message}`).toBe(code);
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('typed layer', () => {
  it('Mapping.anonymous / view / advise / residentPages', () => {
    for (const v of WRONG_TYPES) expectCode(() => Mapping.anonymous(v as Any), 'ERR_INVALID_ARG_TYPE');
    for (const v of [...OUT_OF_RANGE, 0]) expectCode(() => Mapping.anonymous(v as Any), 'ERR_OUT_OF_RANGE');
    expectCode(() => Mapping.anonymous(100), 'EINVAL');
    expectCode(() => Mapping.anonymous(PS, { alignment: 3 * PS }), 'ERR_OUT_OF_RANGE');
    expectCode(() => Mapping.anonymous(PS, { alignment: 1024 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => Mapping.anonymous(PS, { alignment: '4096' as Any }), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Mapping.anonymous(PS, { advise: ['BOGUS' as Any] }), 'ERR_INVALID_ARG_TYPE');

    const m = Mapping.anonymous(4 * PS);
    cleanups.push(() => m.close());
    for (const v of WRONG_TYPES.filter((x) => x !== undefined)) {
      expectCode(() => m.view(v as Any), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => m.view(0, v as Any), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => m.residentPages(v as Any), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => m.advise('DONTNEED', v as Any), 'ERR_INVALID_ARG_TYPE');
    }
    for (const v of OUT_OF_RANGE) {
      expectCode(() => m.view(v as Any), 'ERR_OUT_OF_RANGE');
      expectCode(() => m.view(0, v as Any), 'ERR_OUT_OF_RANGE');
      expectCode(() => m.residentPages(v as Any), 'ERR_OUT_OF_RANGE');
      expectCode(() => m.advise('DONTNEED', v as Any), 'ERR_OUT_OF_RANGE');
    }
    // Ranges reaching outside the mapping.
    expectCode(() => m.view(0, 5 * PS), 'ERR_OUT_OF_RANGE');
    expectCode(() => m.view(4 * PS), 'ERR_OUT_OF_RANGE');
    expectCode(() => m.view(0, 0), 'ERR_OUT_OF_RANGE');
    expectCode(() => m.residentPages(0, 5 * PS), 'ERR_OUT_OF_RANGE');
    expectCode(() => m.residentPages(PS, 4 * PS), 'ERR_OUT_OF_RANGE');
    expectCode(() => m.advise('DONTNEED', 0, 8 * PS), 'ERR_OUT_OF_RANGE');
    expectCode(() => m.advise('DONTNEED', 1, PS), 'EINVAL');
    expectCode(() => m.advise('BOGUS' as Any), 'ERR_INVALID_ARG_TYPE');
    // ...and nothing above touched the mapping.
    expect(m.closed).toBe(false);
    expect(m.residentPages()).toBe(0);
  });

  it('free functions: viewOf, madvise, remapDontUnmap, IoUringPin.pin', () => {
    const m = Mapping.anonymous(2 * PS);
    cleanups.push(() => m.close());
    for (const v of WRONG_TYPES) {
      expectCode(() => viewOf(v as Any, PS), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => madvise(v as Any, PS, 'DONTNEED'), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => remapDontUnmap(m.address, PS, v as Any), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => IoUringPin.pin(v as Any, PS), 'ERR_INVALID_ARG_TYPE');
    }
    for (const v of OUT_OF_RANGE) {
      expectCode(() => viewOf(m.address, v as Any), 'ERR_OUT_OF_RANGE');
      expectCode(() => madvise(m.address, v as Any, 'DONTNEED'), 'ERR_OUT_OF_RANGE');
      expectCode(() => remapDontUnmap(v as Any, PS, m.address), 'ERR_OUT_OF_RANGE');
      expectCode(() => IoUringPin.pin(m.address, v as Any), 'ERR_OUT_OF_RANGE');
    }
    expectCode(() => viewOf(0, PS), 'ERR_OUT_OF_RANGE');
    // A range not mapped now: ENOMEM, not a view whose first read is a SIGSEGV (an audit).
    const gone = Mapping.anonymous(2 * PS);
    const goneAt = gone.address;
    gone.close();
    expectCode(() => viewOf(PS, PS), 'ENOMEM');
    expectCode(() => viewOf(goneAt, PS), 'ENOMEM');
    expect(viewOf(m.address + 100, 50).byteLength).toBe(50); // inside it, unaligned: fine
    // Mapped, but not readable and writable: EACCES, not a SIGSEGV at the first read (PROT_NONE:
    // V8 reserves many such mappings) or the first write (read-only). A hostile-caller audit.
    const prot = Mapping.anonymous(3 * PS);
    try {
      native.mprotect(prot.address, PS, native.prot.NONE);
      native.mprotect(prot.address + PS, PS, native.prot.READ);
      expectCode(() => viewOf(prot.address, PS), 'EACCES');
      expectCode(() => viewOf(prot.address + PS, PS), 'EACCES');
      expectCode(() => viewOf(prot.address + PS, 2 * PS), 'EACCES'); // read-only, then read-write
      expect(viewOf(prot.address + 2 * PS, PS).byteLength).toBe(PS);
    } finally {
      native.mprotect(prot.address, 2 * PS, native.prot.READ | native.prot.WRITE);
      prot.close();
    }
    expectCode(() => madvise(m.address, PS, 'BOGUS' as Any), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => IoUringPin.pin(m.address + 1, PS), 'EINVAL');
    expectCode(() => remapDontUnmap(m.address, 0, m.address + PS), 'EINVAL');
  });

  itKernel('Userfaultfd: open, adopt, register, move, copy, zeropage, wake, readFaults', () => {
    expectCode(() => Userfaultfd.open({ how: 'bogus' as Any }), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Userfaultfd.open({ features: ['NOT_A_FEATURE' as Any] }), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Userfaultfd.adopt('3' as Any, 0), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Userfaultfd.adopt(-1, 0), 'ERR_OUT_OF_RANGE');

    const u = Userfaultfd.open({ features: ['MOVE'] });
    cleanups.push(() => u.close());
    const m = Mapping.anonymous(4 * PS);
    cleanups.push(() => m.close());
    new Uint8Array(m.view(0, 2 * PS)).fill(1);
    u.register(m.address + 2 * PS, 2 * PS);
    const dst = m.address + 2 * PS;
    const src = m.address;

    const calls: Array<(bad: unknown) => unknown> = [
      (b) => u.moveOnce(b as Any, src, PS),
      (b) => u.moveOnce(dst, b as Any, PS),
      (b) => u.moveOnce(dst, src, b as Any),
      (b) => u.move(b as Any, src, PS),
      (b) => u.move(dst, src, b as Any),
      (b) => u.copy(dst, b as Any, PS),
      (b) => u.copy(dst, src, b as Any),
      (b) => u.zeropage(b as Any, PS),
      (b) => u.wake(dst, b as Any),
      (b) => u.register(b as Any, PS),
      (b) => u.unregister(dst, b as Any),
      (b) => u.writeProtect(b as Any, PS, true),
      (b) => u.writeProtect(dst, b as Any, false),
      (b) => u.continue(b as Any, PS),
      (b) => u.poison(dst, b as Any),
      (b) => u.readEvents(b ?? ('undefined' as Any)),
      (b) => u.readEvents(0, b ?? ('undefined' as Any)),
    ];
    for (const call of calls) {
      for (const v of WRONG_TYPES) expectCode(() => call(v), 'ERR_INVALID_ARG_TYPE');
      for (const v of OUT_OF_RANGE) expectCode(() => call(v), 'ERR_OUT_OF_RANGE');
    }
    // readFaults' timeout is optional (undefined means 0), anything else must be a number.
    for (const v of WRONG_TYPES.filter((x) => x !== undefined))
      expectCode(() => u.readFaults(new Float64Array(1), v as Any), 'ERR_INVALID_ARG_TYPE');
    for (const v of OUT_OF_RANGE) expectCode(() => u.readFaults(new Float64Array(1), v as Any), 'ERR_OUT_OF_RANGE');
    // A Proxy whose traps throw (an audit: instanceof ran its getPrototypeOf trap, and the
    // trap's own error escaped without a code), one posing as a Float64Array, and a plain
    // object that claims to be one.
    const trap = () => {
      throw new Error('trap');
    };
    const liars = [new Proxy(new Float64Array(4), { getPrototypeOf: trap, get: trap }), new Proxy(new Float64Array(4), {}), Object.setPrototypeOf({ length: 4 }, Float64Array.prototype)];
    for (const out of [[], new Float32Array(4), new Uint8Array(8), null, {}, ...liars])
      expectCode(() => u.readFaults(out as Any, 0), 'ERR_INVALID_ARG_TYPE');
    class Sub extends Float64Array {}
    expect(u.readFaults(new Sub(4), 0)).toBe(0); // a real one, subclassed: nothing pending
    expectCode(() => u.readFaults(new Float64Array(1), 60_001), 'ERR_OUT_OF_RANGE');
    expectCode(() => u.readEvents(0, 0), 'ERR_OUT_OF_RANGE');
    expectCode(() => u.readEvents(0, 4097), 'ERR_OUT_OF_RANGE');
    expectCode(() => u.writeProtect(dst, PS, 1 as Any), 'ERR_INVALID_ARG_TYPE');

    // Well-formed but absurd: the kernel says no, with its errno (no crash, no hang).
    const far = 2 ** 52;
    const e = thrown(() => u.moveOnce(far, src, PS));
    expect(e).toBeInstanceOf(MoveGcError);
    expect(e.code).toBe('EINVAL');
    expect(e.errno).toBe(22);
    expect(thrown(() => u.register(far, PS)).code).toBe('EINVAL');
    expect(thrown(() => Mapping.anonymous(2 ** 50)).code).toBe('ENOMEM');

    // None of it moved anything.
    expect(m.residentPages(0, PS)).toBe(1);
    expect(new Uint8Array(m.view(0, PS))[0]).toBe(1);
  }, ['uffd']);
});

describe('UFFDIO_COPY whose source lies in its own registered, missing destination', () => {
  itKernel('is refused with EINVAL at once (the call waited for ever on a fault only it could serve)', () => {
    // In a child: before the check, the call never returned, and a SIGTERM left it spinning.
    const code = `
      const { Userfaultfd, Mapping, PAGE_SIZE: P } = await import(process.argv[1]);
      const u = Userfaultfd.open(), m = Mapping.anonymous(4 * P);
      u.register(m.address, m.length);
      const codes = [];
      for (const [d, s, n] of [[m.address, m.address + P, 2 * P], [m.address, m.address, P], [m.address + P, m.address, 2 * P]]) {
        try { u.copy(d, s, n); codes.push('none'); } catch (e) { codes.push(e.code); }
      }
      console.log(JSON.stringify(codes));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, new URL('../dist/gc/index.js', import.meta.url).href], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    expect(r.signal, 'the copy hung').toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['EINVAL', 'EINVAL', 'EINVAL']);
  }, ['uffd']);

  // A hostile-caller audit: a source in another registered range (of this or another
  // userfaultfd), its pages missing, hung the same way; the native binding now knows what it
  // registered (registered.cc). Unregistered, or unmapped and mapped again, the range is a
  // source like any.
  itKernel('a source in any range registered through the binding: EINVAL at once; once unregistered, copied', () => {
    const code = `
      const { Userfaultfd, Mapping, PAGE_SIZE: P } = await import(process.argv[1]);
      const u = Userfaultfd.open(), v = Userfaultfd.open();
      const m = Mapping.anonymous(4 * P), other = Mapping.anonymous(2 * P);
      u.register(m.address, m.length);
      v.register(other.address, other.length);
      const codes = [];
      const tryCopy = (d, s, n) => { try { u.copy(d, s, n); codes.push('copied'); } catch (e) { codes.push(e.code); } };
      tryCopy(m.address, m.address + 2 * P, P); // its own registration, apart from the destination
      tryCopy(m.address, other.address + P, P); // another userfaultfd's
      v.unregister(other.address, P); // the first page only: the second is still registered
      tryCopy(m.address, other.address, 2 * P);
      tryCopy(m.address, other.address, P);
      console.log(JSON.stringify(codes));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, new URL('../dist/gc/index.js', import.meta.url).href], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    expect(r.signal, 'the copy hung').toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['EINVAL', 'EINVAL', 'EINVAL', 'copied']);
  }, ['uffd']);
});

describe('the kernel masks named (featureNames, ioctlNames)', () => {
  it('name the bits (bit 63, that of _UFFDIO_API, too); anything but a mask is a typed error (an audit: TypeErrors escaped)', () => {
    expect(featureNames(Feature.MOVE | Feature.EVENT_FORK)).toEqual(['EVENT_FORK', 'MOVE']);
    expect(featureNames(0)).toEqual([]);
    expect(ioctlNames(2 ** Ioctl.MOVE + 2 ** Ioctl.COPY + 2 ** Ioctl.WAKE)).toEqual(['WAKE', 'COPY', 'MOVE']);
    expect(ioctlNames(2 ** Ioctl.API)).toEqual(['API']);
    for (const f of [featureNames, ioctlNames]) {
      for (const bad of [Symbol('x'), 1n, '8', null, undefined, {}, { valueOf: () => 8 }, { valueOf() { throw new Error('trap'); } }]) expectCode(() => f(bad as never), 'ERR_INVALID_ARG_TYPE');
      for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 64]) expectCode(() => f(bad), 'ERR_OUT_OF_RANGE');
    }
  });
});

describe('alike on both paths', () => {
  itKernel('EINVAL said by the typed layer carries errno and syscall, as the kernel\'s does', () => {
    const u = Userfaultfd.open({ features: ['MOVE'] });
    cleanups.push(() => u.close());
    const m = Mapping.anonymous(4 * PS);
    cleanups.push(() => m.close());
    u.register(m.address + 2 * PS, 2 * PS);
    const kernel = thrown(() => u.moveOnce(2 ** 52, m.address, PS)); // reaches the kernel
    expect([kernel.code, kernel.errno, kernel.syscall]).toEqual(['EINVAL', 22, 'UFFDIO_MOVE']);
    const cases: Array<[() => unknown, string]> = [
      [() => u.moveOnce(m.address + 2 * PS + 1, m.address, PS), 'UFFDIO_MOVE'],
      [() => u.move(m.address + 2 * PS, m.address, 0), 'UFFDIO_MOVE'],
      [() => u.copy(m.address + 2 * PS, m.address, PS + 1), 'UFFDIO_COPY'],
      [() => u.zeropage(m.address + 1, PS), 'UFFDIO_ZEROPAGE'],
      [() => u.wake(m.address, 1), 'UFFDIO_WAKE'],
      [() => u.register(m.address + 1, PS), 'UFFDIO_REGISTER'],
      [() => u.writeProtect(m.address + 1, PS, true), 'UFFDIO_WRITEPROTECT'],
      [() => u.continue(m.address, 0), 'UFFDIO_CONTINUE'],
      [() => u.poison(m.address, 100), 'UFFDIO_POISON'],
      [() => m.advise('DONTNEED', 1, PS), 'madvise'],
      [() => remapDontUnmap(m.address, 0, m.address + PS), 'mremap'],
      [() => Mapping.anonymous(100), 'mmap'],
    ];
    for (const [fn, syscall] of cases) {
      const e = thrown(fn);
      expect(e, String(fn)).toBeInstanceOf(MoveGcError);
      expect([e.code, e.errno, e.syscall], String(fn)).toEqual(['EINVAL', 22, syscall]);
    }
  }, ['uffd']);

  itKernel('option objects: unknown keys are rejected (ERR_UNKNOWN_OPTION), flags must be booleans', () => {
    const u = Userfaultfd.open({ features: ['MOVE'] });
    cleanups.push(() => u.close());
    const m = Mapping.anonymous(4 * PS);
    cleanups.push(() => m.close());
    new Uint8Array(m.view(0, 2 * PS)).fill(1);
    u.register(m.address + 2 * PS, 2 * PS);
    const dst = m.address + 2 * PS;
    const src = m.address;
    const withOpts: Array<[string, (o: Any) => unknown]> = [
      ['moveOnce', (o) => u.moveOnce(dst, src, PS, o)],
      ['move', (o) => u.move(dst, src, PS, o)],
      ['copy', (o) => u.copy(dst, src, PS, o)],
      ['zeropage', (o) => u.zeropage(dst, PS, o)],
      ['writeProtect', (o) => u.writeProtect(dst, PS, false, o)],
      ['continue', (o) => u.continue(dst, PS, o)],
      ['poison', (o) => u.poison(dst, PS, o)],
      ['register', (o) => u.register(dst, PS, o)],
      ['open', (o) => Userfaultfd.open(o)],
    ];
    for (const [name, call] of withOpts) {
      expectCode(() => call({ dontwake: true }), 'ERR_UNKNOWN_OPTION');
      expectCode(() => call({ bogus: 1 }), 'ERR_UNKNOWN_OPTION');
      expectCode(() => call(null), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => call('x'), 'ERR_INVALID_ARG_TYPE');
      if (name !== 'open') expectCode(() => call({ [name === 'register' ? 'wp' : 'dontWake']: 1 }), 'ERR_INVALID_ARG_TYPE');
    }
    expectCode(() => u.move(dst, src, PS, { allowSrcHoles: 'yes' as Any }), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => u.copy(dst, src, PS, { allowSrcHoles: true } as Any), 'ERR_UNKNOWN_OPTION');
    // None of it reached the kernel: the destination is still missing, the source still there.
    expect(m.residentPages(2 * PS, 2 * PS)).toBe(0);
    expect(m.residentPages(0, PS)).toBe(1);
    // Lying option objects: a throwing getter or Proxy trap is a typed error, and a getter is
    // asked once (the check and the call see the same value).
    const throwing = { get dontWake(): never { throw new Error('boom'); } };
    const trap = new Proxy({}, { ownKeys: (): never => { throw new Error('boom'); } });
    for (const [, call] of withOpts.filter(([n]) => n !== 'register' && n !== 'open')) {
      expectCode(() => call(throwing), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => call(trap), 'ERR_INVALID_ARG_TYPE');
    }
    let asked = 0;
    const flip = { get allowSrcHoles(): unknown { return asked++ === 0 ? false : 'yes'; } };
    expect(u.moveOnce(dst, src, PS, flip as Any)).toBe(PS);
    expect(asked).toBe(1);
    // Known keys still work.
    expect(u.move(dst + PS, src + PS, PS, { dontWake: false, allowSrcHoles: false })).toBe(PS);
  }, ['uffd', 'move']);

  it('the other option objects: Mapping.anonymous, probe, IoUringPin.pin, Userfaultfd.open', () => {
    const throwing = (k: string): object => Object.defineProperty({}, k, { enumerable: true, get: (): never => { throw new Error('boom'); } });
    const trap = new Proxy({}, { ownKeys: (): never => { throw new Error('boom'); } });
    const m = Mapping.anonymous(PS);
    cleanups.push(() => m.close());
    const calls: Array<[string, (o: Any) => unknown, string]> = [
      ['Mapping.anonymous', (o) => Mapping.anonymous(PS, o), 'alignment'],
      ['probe', (o) => probe(o), 'hide'],
      ['IoUringPin.pin', (o) => IoUringPin.pin(m.address, PS, o), 'io'],
    ];
    for (const [what, call, key] of calls) {
      for (const bad of [null, 'x', 5, trap, throwing(key)]) expectCode(() => call(bad), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => call({ [key + 'x']: 1 }), 'ERR_UNKNOWN_OPTION');
      void what;
    }
    expectCode(() => Mapping.anonymous(PS, { advise: 5 as Any }), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Mapping.anonymous(PS, { advise: ['toString' as Any] }), 'ERR_INVALID_ARG_TYPE');
    const sparse: unknown[] = [];
    sparse.length = 5e7; // refused before it is copied (it took seconds)
    expectCode(() => Mapping.anonymous(PS, { advise: sparse as Any }), 'ERR_OUT_OF_RANGE');
    expectCode(() => IoUringPin.pin(m.address, PS, { io: 'no' as Any }), 'ERR_INVALID_ARG_TYPE');
    for (const hide of ['move', ['bogus'], [Object.create(null)]]) expectCode(() => probe({ hide } as Any), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => probe({ hdie: ['move'] } as Any), 'ERR_UNKNOWN_OPTION');
    expect(probe({ hide: ['move'] }).move.ok).toBe(false);
    // The userfaultfd hints are for userfaultfd calls: madvise's EINVAL carries none.
    const shm = Mapping.anonymous(PS, { shared: true });
    cleanups.push(() => shm.close());
    const e = thrown(() => shm.advise('WIPEONFORK'));
    expect(e.code).toBe('EINVAL');
    expect(e.message).not.toMatch(/\[/);
    // Names from the prototype are not options' values: 'toString' is no feature or method.
    for (const o of [{ features: ['toString', 'constructor'] }, { how: 'toString' }, { features: 5 }]) expectCode(() => Userfaultfd.open(o as Any), 'ERR_INVALID_ARG_TYPE');
  });
});

describe('raw addon', () => {
  it('setThreadPolicy: a policy name or a typed error (the class it sets is read back in heap.policy)', () => {
    for (const v of [5, undefined, null, {}, true]) expectCode(() => native.setThreadPolicy(v as Any), 'ERR_INVALID_ARG_TYPE', false);
    for (const v of ['', 'fifo', 'BATCH', 'IDLE', 'idle ', 'batch ']) expectCode(() => native.setThreadPolicy(v as Any), 'ERR_INVALID_ARG_VALUE', false);
    expect(native.setThreadPolicy('normal')).toBeUndefined(); // what this thread already is
    expect(native.setThreadPolicy('batch')).toBeUndefined(); // entered and left without privilege
    expect(native.setThreadPolicy('normal')).toBeUndefined();
  });

  it('setThreadPolicy of another thread: a thread id of this process, or a typed error (ESRCH for any other)', () => {
    expect(native.threadId()).toBe(process.pid); // the main thread's id is the process id
    for (const v of ['1', {}, true, null, 10n]) expectCode(() => native.setThreadPolicy('normal', v as Any), 'ERR_INVALID_ARG_TYPE', false);
    for (const v of [0, -1, 1.5, NaN, 2 ** 31, Infinity]) expectCode(() => native.setThreadPolicy('normal', v), 'ERR_OUT_OF_RANGE', false);
    // init (pid 1) and a child of ours: threads, but not of this process.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
    try {
      for (const tid of [1, child.pid!]) expectCode(() => native.setThreadPolicy('normal', tid), 'ESRCH', false);
    } finally {
      child.kill('SIGKILL');
    }
    expect(native.setThreadPolicy('normal', native.threadId())).toBeUndefined();
  });

  it('setThreadName: names the calling thread (1-15 bytes), or a typed error', () => {
    const comm = `/proc/self/task/${native.threadId()}/comm`;
    const was = fs.readFileSync(comm, 'utf8').trim();
    try {
      for (const v of [5, undefined, null, {}, true]) expectCode(() => native.setThreadName(v as Any), 'ERR_INVALID_ARG_TYPE', false);
      for (const v of ['', 'x'.repeat(16), 'a\0b']) expectCode(() => native.setThreadName(v), 'ERR_INVALID_ARG_VALUE', false);
      expect(native.setThreadName('movegc-test-15b')).toBeUndefined();
      expect(fs.readFileSync(comm, 'utf8').trim()).toBe('movegc-test-15b');
    } finally {
      native.setThreadName(was);
    }
  });

  itKernel('checks its own arguments: typed TypeErrors, never a crash', () => {
    const fd = native.uffd.open(0);
    cleanups.push(() => native.uffd.close(fd));
    // Its alignment check, under Mapping.anonymous's (a mutation audit: nothing reached it).
    expectCode(() => native.mapAnonymous(PS, 1024), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => native.mapAnonymous(PS, 3 * PS), 'ERR_OUT_OF_RANGE', false);
    const raw: Array<(b: unknown) => unknown> = [
      (b) => native.mapAnonymous(b as Any, PS),
      (b) => native.mapAnonymous(PS, b as Any),
      (b) => native.view(b as Any, PS),
      (b) => native.madvise(b as Any, PS, native.advice.DONTNEED),
      (b) => native.residency(b as Any, PS, new Uint8Array(1)),
      (b) => native.munmap(b as Any, PS),
      (b) => native.uffd.open(b as Any),
      (b) => native.uffd.move(b as Any, 0, 0, PS, 0),
      (b) => native.uffd.move(fd, b as Any, 0, PS, 0),
      (b) => native.uffd.move(fd, 0, b as Any, PS, 0),
      (b) => native.uffd.move(fd, 0, 0, b as Any, 0),
      (b) => native.uffd.move(fd, 0, 0, PS, b as Any),
      (b) => native.uffd.copy(fd, 0, 0, b as Any, 0),
      (b) => native.uffd.register(fd, b as Any, PS, 1),
      (b) => native.uffd.readFaults(fd, b as Any, new Float64Array(1)),
      (b) => native.uffd.readEvents(fd, b as Any, 1),
      (b) => native.uffd.readEvents(fd, 0, b as Any),
      (b) => native.uffd.writeProtect(fd, b as Any, PS, 0),
      (b) => native.uffd.cont(fd, 0, b as Any, 0),
      (b) => native.uffd.poison(fd, 0, PS, b as Any),
      (b) => native.uffd.stashedEvents(b as Any),
      (b) => native.pin.pinRange(b as Any, PS),
    ];
    for (const call of raw) {
      for (const v of WRONG_TYPES) expectCode(() => call(v), 'ERR_INVALID_ARG_TYPE', false);
      for (const v of [4096.5, NaN, Infinity, 2 ** 64]) expectCode(() => call(v), 'ERR_OUT_OF_RANGE', false);
    }
    // residency's vector: a Uint8Array, one byte per page at least.
    expectCode(() => native.residency(0, PS, new Uint16Array(1) as Any), 'ERR_INVALID_ARG_TYPE', false);
    expectCode(() => native.residency(0, 2 * PS, new Uint8Array(1)), 'ERR_OUT_OF_RANGE', false);
    // Negative addresses and lengths, bad descriptors, missing arguments.
    expectCode(() => native.uffd.move(fd, -4096, 0, PS, 0), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => native.uffd.move(-1, 0, 0, PS, 0), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => native.uffd.open(3 as Any), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => native.mapAnonymous(0, PS), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => native.mapAnonymous(PS, 3 * PS), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => native.view(0, PS), 'ERR_OUT_OF_RANGE', false);
    expectCode(() => (native.uffd.move as Any)(), 'ERR_INVALID_ARG_TYPE', false);
    expectCode(() => (native.uffd.readFaults as Any)(fd, 0), 'ERR_INVALID_ARG_TYPE', false);
    expectCode(() => native.uffd.readFaults(fd, 0, new Int32Array(2) as Any), 'ERR_INVALID_ARG_TYPE', false);
    expectCode(() => native.detach({} as Any), 'ERR_INVALID_ARG_TYPE', false);
    const t = thrown(() => native.uffd.move(fd, 0, 0, PS, 'x' as Any));
    expect(t).toBeInstanceOf(TypeError);
    // A closed descriptor number is the kernel's EBADF, not a crash.
    const e = thrown(() => native.uffd.move(0x7ffffff0, 0, 0, PS, 0));
    expect(e.code).toBe('EBADF');
    expect(e.errno).toBe(9);
  }, ['uffd']);
});
