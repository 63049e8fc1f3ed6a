/**
 * The raw addon (gc/native.js, under the typed layer) against an audit of its memory safety
 * and argument conversion (a helper given only the code): each of these crashed, hung, or
 * acted on something the caller did not name, before its fix. Where a crash is possible the
 * case runs in a child process (a crash ends the child with a signal: the failure). The
 * contract: bad input is a typed error.
 *  - tables a native object keeps (the page builder's, the watchdog's heartbeats) must be
 *    SharedArrayBuffer views: a plain buffer detached after construction was read after free;
 *  - the builder's segment count and bounds are checked against its tables (an empty table
 *    was read out of bounds; a corrupt END spun the bitmap walk for hours);
 *  - a Worker's teardown unmaps what it still owns, not the whole of a range it gave back in
 *    part (it unmapped another thread's mapping made in the hole);
 *  - integers are range-checked before a narrower C type could truncate them (2^32 + k was k);
 *  - a C++ allocation that fails is an ENOMEM error (std::bad_alloc aborted the process).
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { native } from '../dist/gc/native.js';
import { CI, itKernel } from './kernel.js';

const DIST = new URL('../dist/gc/', import.meta.url).href;

function child(code: string, timeoutMs = 20_000): { status: number | null; signal: string | null; out: string } {
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}`.trim() };
}

// A PageBuilder over tables of a 4-page heap; `over` replaces some of them.
const TABLES = `
const { native } = await import('${DIST}native.js');
const { BUILD_LAYOUT } = await import('${DIST}build-native.js');
const { PageBuilder } = await import('${DIST}build.js');
const { Ctl } = await import('${DIST}control.js');
const PAGES = 4, WORDS = PAGES * 512;
const sab = (C, n) => new C(new SharedArrayBuffer(n * C.BYTES_PER_ELEMENT));
const tables = (over = {}) => ({
  live: sab(Uint32Array, WORDS / 32), starts: sab(Uint32Array, WORDS / 32),
  chunkNew: sab(Uint32Array, WORDS / 64), pageFirst: sab(Uint32Array, PAGES).fill(0xffffffff),
  pageKind: sab(Uint8Array, PAGES).fill(1 /* SLIDE */), segments: sab(Float64Array, 8), types: sab(Int32Array, 8),
  ctl: sab(Int32Array, Ctl.SIZE), ctlSegments: Ctl.SEGMENTS, layout: BUILD_LAYOUT, ...over,
});
const from = new Uint32Array(WORDS * 2), dst = new Uint32Array(1024);
const code = (f) => { try { f(); return 'none'; } catch (e) { return e.code; } };
`;

describe('native/build.cc', () => {
  it('a segment table shorter than the segment count in ctl is a typed error, not a wild read', () => {
    for (const [count, kind] of [[1, 1], [0, 1], [1, 2]]) {
      const r = child(`${TABLES}
        const t = tables({ segments: sab(Float64Array, 0) });
        t.ctl[Ctl.SEGMENTS] = ${count}; t.pageKind[0] = ${kind};
        const b = new native.PageBuilder(t);
        console.log(code(() => b.build(0, 1, from, dst, 0)));`);
      expect({ count, kind, signal: r.signal, out: r.out }).toEqual({ count, kind, signal: null, out: 'ERR_OUT_OF_RANGE' });
    }
  });

  it('tables detached after construction: refused (or copied), not read after free', () => {
    const r = child(`${TABLES}
      const live = new Uint32Array(1 << 24); // 64 MiB, an ordinary ArrayBuffer (not shared)
      const t = tables({ live });
      t.ctl[Ctl.SEGMENTS] = 1; t.pageFirst[0] = 1; from[3] = 8; t.segments[1] = t.segments[7] = WORDS;
      let b;
      const made = code(() => { b = new native.PageBuilder(t); });
      if (made !== 'none') { console.log('refused at construction', made); process.exit(0); }
      native.detach(live.buffer); // frees the 64 MiB
      console.log('build after detach:', code(() => b.build(0, 1, from, dst, 0)));`);
    expect({ signal: r.signal, out: r.out }).toEqual({ signal: null, out: 'refused at construction ERR_INVALID_ARG_TYPE' });
  });

  it('a corrupt segment end: the native builder refuses it (a typed error) in bounded time; build.ts ends too', () => {
    const setup = `${TABLES}
      const t = tables();
      t.ctl[Ctl.SEGMENTS] = 1; t.pageFirst[0] = 1; t.live[0] = 0x1fe; t.starts[0] = 2;
      t.types.set([1 /* FIXED */, 0, 0, 8], 4); from[2] = 1; // word 1: an object of type 1, 8 words
      t.segments[1] = 1e15; /* END, corrupt */ t.segments[3] = t.segments[4] = t.segments[7] = WORDS;`;
    const js = child(`${setup} console.log(code(() => new PageBuilder(t, from).buildRun(0, 1, dst, 0)));`, 10_000);
    expect({ signal: js.signal, out: js.out }).toEqual({ signal: null, out: expect.stringMatching(/^(none|ERR_\w+)$/) });
    const t0 = Date.now();
    const nat = child(`${setup} console.log(code(() => new native.PageBuilder(t).build(0, 1, from, dst, 0)));`, 10_000);
    expect({ signal: nat.signal, out: nat.out, slow: Date.now() - t0 > 9000 }).toEqual({ signal: null, out: expect.stringMatching(/^ERR_/), slow: false });
  });
});

describe('native/watchdog.cc', () => {
  itKernel('a heartbeat table detached while the watchdog runs: refused, not read after free by the thread', () => {
    const r = child(`
      const { native } = await import('${DIST}native.js');
      const fd = native.uffd.open(0); native.uffd.api(fd, 0);
      const beats = new Int32Array(1 << 24); // 64 MiB, ordinary (detachable) ArrayBuffer
      let id;
      try { id = native.watchdog.start(fd, beats, 0, [(1 << 24) - 1], ['x'], 0, 0, 10, 1000, 100000); }
      catch (e) { console.log('refused', e.code); process.exit(0); }
      native.detach(beats.buffer);
      await new Promise((r) => setTimeout(r, 300));
      native.watchdog.stop(id);
      console.log('survived');`);
    expect({ signal: r.signal, out: r.out }).toEqual({ signal: null, out: 'refused ERR_INVALID_ARG_TYPE' });
  }, ['uffd']);
});

describe('native/owned.cc', () => {
  it("a Worker's teardown unmaps only what it still owns, not another thread's mapping in a range it gave back", async () => {
    const r = child(`
      import('node:worker_threads').then(async ({ Worker }) => {
      const { native } = await import('${DIST}native.js');
      const PS = 4096;
      const w = new Worker(\`
        const { native } = await import('${DIST}native.js');
        const { parentPort } = await import('node:worker_threads');
        const a = native.mapAnonymous(64 * \${PS}, \${PS});
        native.munmap(a + 32 * \${PS}, 32 * \${PS}); // gives the upper half back
        parentPort.postMessage(a);
        await new Promise((r) => parentPort.once('message', r));\`, { eval: true, type: 'module' });
      const a = await new Promise((r) => w.once('message', r));
      let b = 0;
      for (let i = 0; i < 50 && !b; i++) { const m = native.mapAnonymous(16 * PS, PS); if (m >= a + 32 * PS && m < a + 64 * PS) b = m; }
      if (!b) { console.log('not placed in the hole: inconclusive'); process.exit(3); }
      const v = new Uint8Array(native.view(b, 16 * PS)); v.fill(1);
      w.postMessage('exit');
      await new Promise((r) => w.once('exit', r));
      console.log('sum', v.reduce((s, x) => s + x, 0));
      });`);
    expect(r.status, r.out).not.toBe(3);
    expect({ signal: r.signal, out: r.out }).toEqual({ signal: null, out: `sum ${16 * 4096}` });
  });
});

describe('argument conversion: integers that do not fit the C type', () => {
  itKernel('uffd.open(how): 2^32 + k is out of range, not how = k', () => {
    for (const how of [2 ** 32, 2 ** 32 + 2, -(2 ** 32)]) {
      let code: string | undefined;
      try {
        // @ts-expect-error how is deliberately outside 0 | 1 | 2: the test checks the runtime refusal
        native.uffd.close(native.uffd.open(how));
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect(code, `open(${how})`).toBe('ERR_OUT_OF_RANGE');
    }
  }, ['uffd']);

  it('madvise(advice): 2^32 + MADV_DONTNEED is out of range, not DONTNEED (which drops the pages)', () => {
    const PS = native.pageSize;
    const a = native.mapAnonymous(PS, PS);
    const v = new Uint8Array(native.view(a, PS));
    v[0] = 42;
    let code: string | undefined;
    try {
      native.madvise(a, PS, 2 ** 32 + native.advice.DONTNEED);
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    const kept = v[0];
    native.munmap(a, PS);
    expect({ code, kept }).toEqual({ code: 'ERR_OUT_OF_RANGE', kept: 42 });
  });

  itKernel('watchdog.stop(id): 2^32 + id is not id', () => {
    const fd = native.uffd.open(0);
    const beats = new Int32Array(new SharedArrayBuffer(8));
    const id = native.watchdog.start(fd, beats, 0, [0], ['x'], 0, 0, 10, 10, 100_000);
    try {
      let code: string | undefined;
      try {
        native.watchdog.stop(2 ** 32 + id);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect({ code, running: native.watchdog.running() }).toEqual({ code: 'ERR_OUT_OF_RANGE', running: 1 });
    } finally {
      native.watchdog.stop(id);
      native.uffd.close(fd);
    }
  }, ['uffd']);

  itKernel('watchdog.start: a slot or an epoch that is not a finite integer is refused, not cast (NaN was slot 0)', () => {
    const fd = native.uffd.open(0);
    const beats = new Int32Array(new SharedArrayBuffer(8));
    const start = (epoch: number, slot: number): string | undefined => {
      try {
        native.watchdog.stop(native.watchdog.start(fd, beats, epoch, [slot], ['x'], 0, 0, 10, 10, 100_000));
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return undefined;
    };
    try {
      expect([start(0, NaN), start(0, 1.5), start(NaN, 0), start(Infinity, 0), start(0, 1)]).toEqual(['ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', undefined]);
    } finally {
      native.uffd.close(fd);
    }
  }, ['uffd']);

  itKernel("watchdog.start: the look, resumed and held words must lie in the table, apart from each other and from the roles' slots", () => {
    const fd = native.uffd.open(0);
    const beats = new Int32Array(new SharedArrayBuffer(16)); // 4 words
    const start = (look: number, resumed: number, still = 5, held?: number): string | undefined => {
      try {
        native.watchdog.stop(native.watchdog.start(fd, beats, 0, [0], ['x'], 0, 0, 10, 10, 100_000, look, resumed, still, held));
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return undefined;
    };
    try {
      expect([start(2, 3), start(4, 3), start(2, -1), start(0, 3), start(2, 0), start(2, 2), start(2, 3, 0), start(2.5, 3)])
        .toEqual([undefined, ...Array(7).fill('ERR_OUT_OF_RANGE')]);
      // The held-fault word (gc/fault.ts): in the table, and apart from every other word.
      expect([start(2, 3, 5, 1), start(2, 3, 5, 2), start(2, 3, 5, 3), start(2, 3, 5, 0), start(2, 3, 5, 4), start(2, 3, 5, -1)])
        .toEqual([undefined, ...Array(5).fill('ERR_OUT_OF_RANGE')]);
    } finally {
      native.uffd.close(fd);
    }
  }, ['uffd']);

  itKernel('readEvents(timeoutMs): 2^32 + 1 waits (or is refused), it is not a 1 ms wait', () => {
    const fd = native.uffd.open(0);
    native.uffd.api(fd, 0);
    try {
      const t0 = Date.now();
      let code: string | undefined;
      try {
        native.uffd.readEvents(fd, 2 ** 32 + 1, 1);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect(code ?? `returned after ${Date.now() - t0} ms`).toBe('ERR_OUT_OF_RANGE');
    } finally {
      native.uffd.close(fd);
    }
  }, ['uffd']);

  it("pin.release(pid): 2^32 - 1 is refused, it does not waitpid(-1) and reap child_process's child", () => {
    const r = child(`
      const { native } = await import('${DIST}native.js');
      const { spawn } = await import('node:child_process');
      const fs = await import('node:fs');
      const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300)'], { stdio: 'ignore' });
      let exitSeen = false;
      c.on('exit', () => { exitSeen = true; });
      let code = 'none';
      try { native.pin.release(2 ** 32 - 1, fs.openSync('/dev/null', 'r')); } catch (e) { code = e.code; }
      setTimeout(() => { console.log(JSON.stringify({ code, exitSeen })); process.exit(0); }, 2000);`);
    expect(r.out).toBe(JSON.stringify({ code: 'ERR_OUT_OF_RANGE', exitSeen: true }));
  });
});

describe('a native allocation that fails (native/errors.h, Guarded)', () => {
  const prlimit = spawnSync('prlimit', ['--version']).status === 0;
  it('is an ENOMEM error from the call, not an abort: a real one, under a lowered RLIMIT_DATA', async () => {
    if (!prlimit) {
      if (CI) throw new Error('CI=true requires util-linux prlimit');
      console.warn('[movegc] skipping: prlimit (util-linux) not found');
      return;
    }
    const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/native-nomem.mjs');
    const c = spawn(process.execPath, [fixture], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((done) => c.on('exit', (code, signal) => done({ code, signal })));
    await new Promise<void>((ready) => c.stdout.on('data', (d) => {
      out += d;
      if (out === 'ready\n') ready();
    }));
    // The data segment may not grow, nor may any private writable mapping be made.
    expect(spawnSync('prlimit', ['--pid', String(c.pid), '--data=1048576:']).status).toBe(0);
    c.stdin.write('go\n');
    const { code, signal } = await exited;
    expect(signal, err.slice(-500)).toBeNull();
    expect(code, err.slice(-500)).toBe(0);
    const { threw } = JSON.parse(out.split('\n')[1]);
    expect(threw).toMatchObject({ code: 'ENOMEM', errno: 12, syscall: 'operator new' });
  }, 60_000);
});
