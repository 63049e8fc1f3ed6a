/**
 * Issue 8, defect 8: with both collector threads dead, a mutator blocked in a fault would wait
 * in the kernel forever. The heap's native watchdog (native/watchdog.cc, gc/watchdog.ts)
 * turns that into a fatal error naming the cause, in bounded time, and stays silent while a
 * collector thread is alive to serve the fault. Also: the heartbeats it reads (tear-free
 * Int32 words per thread role, gc/heartbeat.ts), and its lifecycle (a native thread per heap,
 * joined at close, never keeping the process alive).
 *
 * Abort paths run in child processes (with core dumps off).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Heap } from '../dist/gc/index.js';
import { native } from '../dist/gc/native.js';
import { DEAD, Heartbeats, IDLE, Role, WatchdogWord, monotonicMs } from '../dist/gc/heartbeat.js';
import { FATAL_FLOOR_MS, watchdogThresholds } from '../dist/gc/watchdog.js';
import { itKernel } from './kernel.js';
import { fixture, runChild } from './helpers/child.js';

const watchdogThreads = (): number =>
  fs.readdirSync('/proc/self/task').filter((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'movegc-watchdog';
    } catch {
      return false; // the thread ended while we looked
    }
  }).length;

const heaps: Heap[] = [];
afterEach(async () => {
  while (heaps.length) await heaps.pop()!.close();
});

// A compactor that dies says so (heartbeat.ts DEAD), and the fault server takes over at once:
// it could build every page before the walk met one. Where a test needs the walk to fault into
// a live fault server with the compactor dead, the server takes nothing over before the fault
// it dies on (faultTakeoverAtFault). A takeover 200 ms late (faultTakeoverDelayMs) was a timing
// window: CI's loaded machine walked later than that once, and the server had built 60 pages.
// Those tests now walk 400 ms late on purpose (walkLateMs).
// The mutator blocks in a kernel fault only on the handler path (faultPath 'handler'); with
// self-service its accessors build what they touch, so the same injection is survived (a test
// below), and so it is where a marker thread exists to stand in (concurrent marking, below).
describe('both collector threads dead while the mutator is blocked in a fault', () => {
  // Move only: the watchdog is the same in copy, and each run waits out its 5 s floor (CI time).
  for (const mode of ['move'] as const) {
    itKernel(`[${mode}] with no marker to stand in, the process dies with a fatal error naming the cause, in bounded time, instead of hanging`, () => {
      // The compactor dies before its first page; the fault server dies on reading the walk's
      // first fault (and wakes it, so it is pending again, unread). stallMs 300: the fatal
      // error comes after 20 x stallMs (6 s) of silence. Marking in the pause: no marker thread.
      const { r, ms, lines } = runChild('watchdog-child.mjs', { mode, marking: 'pause', faultPath: 'handler', stallMs: 300, walkLateMs: 400, inject: { dieAtPage: 1, faultDieAtFault: 1, faultTakeoverAtFault: 1 } }, 40_000);
      const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      expect(r.error, ctx).toBeUndefined(); // not killed by the spawn timeout: no hang
      expect(lines.length, ctx).toBe(1); // the heap's address; the walk never returned
      const heapAddr = (lines[0].heap as number).toString(16);
      expect(r.signal, ctx).toBe('SIGABRT');
      expect(r.stderr, ctx).toContain('movegc watchdog: FATAL');
      expect(r.stderr, ctx).toContain(`heap at 0x${heapAddr}`);
      expect(r.stderr, ctx).toMatch(/blocked on an unread page fault at 0x[0-9a-f]+ \(heap page \d+\)/);
      expect(r.stderr, ctx).toContain('both collector threads are dead or stalled');
      expect(r.stderr, ctx).toContain('compactor: died; fault server: died'); // each said so as it died (heartbeat.ts DEAD)
      expect(ms, ctx).toBeGreaterThanOrEqual(FATAL_FLOOR_MS);
      expect(ms, ctx).toBeLessThan(30_000);
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 45_000);
  }

  // A lifecycle audit: the fault server stalled after READING the walk's fault (and the
  // compactor stalled too, marking in the pause: nobody to stand in). The fault was no longer
  // pending on the userfaultfd, so the watchdog, which looked only for unread faults, stayed
  // silent, and the mutator waited for as long as the stall lasted. The fault server now names
  // the page of a fault it holds (WatchdogWord.HELD_FAULT), and that page still missing counts.
  itKernel('[move] the fault server stalled holding a fault it read, the compactor stalled: the fatal error names the held page', () => {
    const { r, ms, lines } = runChild('watchdog-child.mjs', { mode: 'move', marking: 'pause', faultPath: 'handler', stallMs: 300, inject: { faultHoldBuiltMs: 600_000, delayAtPage: 1, delayMs: 600_000 } }, 40_000);
    const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.error, ctx).toBeUndefined(); // not killed by the spawn timeout: no hang
    expect(lines.length, ctx).toBe(1); // the walk never returned
    expect(r.signal, ctx).toBe('SIGABRT');
    expect(r.stderr, ctx).toMatch(/blocked on a page fault the fault server read and never served \(heap page \d+\)/);
    expect(r.stderr, ctx).toContain('both collector threads are dead or stalled');
    expect(r.stderr, ctx).toMatch(/compactor: last heartbeat \d+ ms ago; fault server: last heartbeat \d+ ms ago/);
    expect(ms, ctx).toBeGreaterThanOrEqual(FATAL_FLOOR_MS);
    expect(ms, ctx).toBeLessThan(30_000);
  }, ['uffd', 'move'], 45_000);

  // A review of the change above: the word outlived its cycle when the cycle ended behind a
  // stalled (not terminated) fault server, and once the next cycle left that page missing the
  // watchdog aborted a process in which nothing was blocked. The cycle's end clears it.
  itKernel('[move] a fault server stalled after serving: its held fault ends with its cycle, no fatal error in the next', () => {
    const { r, ms, lines } = runChild('stale-held.mjs', 9000, 40_000);
    const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.signal, ctx).toBeNull();
    expect(r.stderr, ctx).not.toContain('movegc watchdog: FATAL');
    expect(r.status, ctx).toBe(0);
    expect(lines.map((l) => Object.keys(l)[0]), ctx).toEqual(['cycle1', 'cycle2', 'survived']);
    expect(lines[0].faults, ctx).toBeGreaterThan(0);
  }, ['uffd', 'move'], 45_000);

  for (const mode of ['move', 'copy'] as const) {
    itKernel(`[${mode}] marking concurrently, the marker stands in: it installs what is left, the walk returns; no fatal error`, () => {
      // The same two deaths, with the default concurrent marking: once both threads have been
      // silent for stallMs, the marker (idle while the cycle compacts) builds and installs the
      // cycle's pages in order, each install waking the blocked walk (standin.ts).
      const { r, ms, lines } = runChild('watchdog-child.mjs', { mode, marking: 'concurrent', faultPath: 'handler', stallMs: 300, walkLateMs: 400, inject: { dieAtPage: 1, faultDieAtFault: 1, faultTakeoverAtFault: 1 } }, 40_000);
      const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      expect(r.status, ctx).toBe(0);
      expect(r.stderr, ctx).not.toContain('FATAL');
      const end = lines[1] as { walked: number; faults: number; pages: { builtByMarker: number; builtByFaults: number } };
      expect(end, ctx).toMatchObject({ walked: 20000, same: true, verify: true, sameAfter: true });
      expect(end.faults, ctx).toBeGreaterThanOrEqual(1);
      expect(end.pages.builtByMarker, ctx).toBeGreaterThan(0);
      expect(end.pages.builtByFaults, ctx).toBe(0); // it died on its first fault
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 45_000);
  }

  for (const mode of ['move', 'copy'] as const) {
    itKernel(`[${mode}] a fault server that died is replaced when its cycle ends through safepoints, before the compactor dies in a later one`, () => {
      // Found by the race audit: only an awaited end of a cycle (idle, collect, close) replaced
      // dead threads; a frame loop whose cycles all ended in safepoint() kept a dead fault
      // server, and a compactor death cycles later left a fault nobody served (watchdog abort).
      const { r, ms, lines } = runChild('dead-fault-server.mjs', mode, 60_000);
      const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      expect(r.status, ctx).toBe(0);
      expect(r.stderr, ctx).not.toContain('FATAL');
      expect(lines[0], ctx).toMatchObject({ survived: true, verify: true });
      expect(lines[0].lastByFaults as number, ctx).toBeGreaterThan(0); // a live fault server built them
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 65_000);
  }

  itKernel('only the fault server killed mid-serve: the compactor installs the page and wakes the mutator; no fatal error, the fault server is replaced', () => {
    // The compactor sleeps 500 ms before its first page, so that the walk faults before it
    // could install every page (it did, once, on a quick run: no fault, nothing tested).
    const { r, ms, lines } = runChild('watchdog-child.mjs', { faultPath: 'handler', stallMs: 100, inject: { faultDieAtFault: 1, delayAtPage: 1, delayMs: 500 } }, 40_000);
    const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.status, ctx).toBe(0);
    expect(r.stderr, ctx).not.toContain('FATAL');
    const end = lines[1] as { walked: number; same: boolean; verify: boolean; sameAfter: boolean; faults: number; pages: { total: number; builtByFaults: number } };
    expect(end, ctx).toMatchObject({ walked: 20000, same: true, verify: true, sameAfter: true });
    expect(end.pages.builtByFaults, ctx).toBe(0); // the fault server built nothing: it died on its first fault
    expect(end.faults, ctx).toBeGreaterThanOrEqual(1);
  }, undefined, 45_000);

  for (const mode of ['move', 'copy'] as const) {
    itKernel(`[${mode}] a fault server that dies says so in its heartbeat: a walk that never yields serves its pages itself at once, not through the kernel for stallMs`, () => {
      // The last stop's note: a dead fault server counted as serving until its heartbeat was
      // stallMs old or its Worker's exit reached the event loop, which a walk that never
      // yields never turns. Here another thread's read kills it, stallMs is 5 s and the
      // compactor sleeps 1 s: had the death gone unseen, each unbuilt page the walk met
      // would have gone to the kernel, unread, until the compactor came to it.
      const { r, ms, lines } = runChild('dead-fault-server-reader.mjs', mode, 40_000);
      const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      expect(r.status, ctx).toBe(0);
      expect(r.stderr, ctx).not.toContain('FATAL');
      const end = lines[0] as { walked: number; faults: number; pages: { total: number; builtByFaults: number; builtBySelf: number } };
      expect(end, ctx).toMatchObject({ walked: 20000, same: true, verify: true, faults: 1 }); // the reader's, which it died on
      expect(end.pages.builtByFaults, ctx).toBe(0);
      expect(end.pages.builtBySelf, ctx).toBeGreaterThan(end.pages.total / 2); // the handler path's stand-in for a dead server: the mutator
    }, mode === 'move' ? ['uffd', 'move'] : ['uffd'], 45_000);
  }

  itKernel("both killed, faultPath 'self': the mutator builds what it walks, the rest is built without the dead compactor; no fault, no fatal error", () => {
    // The fault server takes nothing over (faultTakeoverAtFault: no fault comes), so the walk
    // meets unbuilt pages however late it starts: with a takeover 300 ms late instead, a walk
    // 400 ms late met none (the marker had built all 177 pages; builtBySelf 0).
    const { r, ms, lines } = runChild('watchdog-child.mjs', { faultPath: 'self', stallMs: 100, walkLateMs: 400, inject: { dieAtPage: 1, faultDieAtFault: 1, faultTakeoverAtFault: 1 } }, 40_000);
    const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.status, ctx).toBe(0);
    expect(r.stderr, ctx).not.toContain('FATAL');
    const end = lines[1] as { walked: number; faults: number; pages: { total: number; builtByCompactor: number; builtByMutator: number; builtBySelf: number } };
    expect(end, ctx).toMatchObject({ walked: 20000, same: true, verify: true, sameAfter: true });
    expect(end.faults, ctx).toBe(0);
    expect(end.pages.builtBySelf, ctx).toBeGreaterThan(0);
    // No fault reaches the fault server, so it does not die here, and takes nothing over:
    // idle() builds what the walk did not.
    expect(end.pages.builtByCompactor, ctx).toBe(0);
  }, undefined, 45_000);

  itKernel('only the compactor killed: the fault server serves and finishes the cycle; no fatal error', () => {
    const { r, ms, lines } = runChild('watchdog-child.mjs', { faultPath: 'handler', stallMs: 100, inject: { dieAtPage: 1 } }, 40_000);
    const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.status, ctx).toBe(0);
    expect(lines[1], ctx).toMatchObject({ walked: 20000, same: true, verify: true, sameAfter: true });
  }, undefined, 45_000);
});

describe('the watchdog decision, on its own (native, small thresholds)', () => {
  itKernel('silent with no pending fault, silent while a role beats, fatal within fatalMs + staleMs once the beats stop', () => {
    const { r, end, lines } = runChild('watchdog-native.mjs', {}, 30_000);
    const ctx = `status ${r.status} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(lines.map((l) => l.phase), ctx).toEqual(['idle', 'beating', 'silent']);
    expect(r.signal, ctx).toBe('SIGABRT');
    expect(r.stderr, ctx).toContain('no collector thread has been alive to serve it');
    expect(r.stderr, ctx).toMatch(/compactor: last heartbeat \d+ ms ago; fault server: last heartbeat \d+ ms ago/);
    // Stale after 100 ms, fatal 400 ms later: well under 3 s after the beats stopped.
    expect(end - (lines[2].t as number), ctx).toBeLessThan(3000);
  }, ['uffd'], 35_000);
});

describe('a process that was only stopped', () => {
  itKernel('is not aborted: a gap in the watchdog\'s own looks (SIGSTOP for longer than fatalMs) restarts its count', async () => {
    // An audit: after a short stall, a stop longer than fatalMs (Ctrl-Z, a debugger) was
    // counted as time nobody served the pending fault, and the first look after SIGCONT
    // aborted the process before its threads could beat again.
    const c = spawn(process.execPath, [fixture('watchdog-stop.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const state = (): string => {
      try {
        const st = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8');
        return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
      } catch {
        return 'gone';
      }
    };
    let stopped = false;
    for (let i = 0; i < 1000 && !stopped; i++) {
      if (state() === 'T') stopped = true;
      else await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 1500));
    c.kill('SIGCONT');
    const [status, signal] = await new Promise<[number | null, string | null]>((r) => c.on('close', (code, sig) => r([code, sig])));
    const ctx = `status ${status} signal ${signal}\nstdout: ${stdout}\nstderr: ${stderr}`;
    expect(stopped, ctx).toBe(true);
    expect(signal, ctx).toBeNull();
    expect(status, ctx).toBe(0);
    expect(stdout, ctx).toContain('survived');
  }, ['uffd'], 30_000);
});

describe('watchdog lifecycle', () => {
  itKernel('one native thread per heap with a userfaultfd, joined at close; none in stw mode', async () => {
    const before = watchdogThreads();
    const a = await Heap.create({ capacity: 4 << 20, mode: 'move' });
    heaps.push(a);
    expect(watchdogThreads()).toBe(before + 1);
    expect(native.watchdog.running()).toBe(1);
    const b = await Heap.create({ capacity: 4 << 20, mode: 'stw' });
    heaps.push(b);
    expect(watchdogThreads()).toBe(before + 1);
    await a.close();
    expect(watchdogThreads()).toBe(before);
    expect(native.watchdog.running()).toBe(0);
    await a.close(); // idempotent
  });

  itKernel('watchdogs never stopped (a heap never closed, in a Worker too) do not keep the process alive', () => {
    const { r, ms } = runChild('watchdog-exit.mjs', {}, 20_000);
    const ctx = `status ${r.status} signal ${r.signal} after ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    expect(r.status, ctx).toBe(0);
    expect(r.stdout, ctx).toContain('exiting');
    expect(r.stdout, ctx).toContain('"threads":1'); // the Worker's watchdog was joined when it ended
  }, ['uffd'], 25_000);

  it('thresholds: generous, from stallMs (a descheduled thread is not a dead one)', () => {
    for (const stallMs of [1, 100, 200, 5000]) {
      const t = watchdogThresholds(stallMs);
      expect(t.staleMs).toBe(stallMs);
      expect(t.fatalMs).toBeGreaterThanOrEqual(Math.max(FATAL_FLOOR_MS, 20 * stallMs));
      expect(t.periodMs).toBeGreaterThanOrEqual(10);
      expect(t.periodMs).toBeLessThanOrEqual(Math.max(10, stallMs));
    }
  });
});

describe('heartbeats: tear-free Int32 words per role', () => {
  it('one Int32 word per role, written and read with Atomics; idle is never stale', () => {
    const { sab, epoch } = Heartbeats.allocate();
    const hb = new Heartbeats(sab, epoch);
    expect(hb.words).toBeInstanceOf(Int32Array);
    expect(hb.words.buffer).toBeInstanceOf(SharedArrayBuffer);
    for (const role of [Role.COMPACTOR, Role.FAULT, Role.MARKER]) {
      expect(hb.ageMs(role)).toBe(-1); // idle until a first beat
      expect(hb.isStale(role, 0)).toBe(false);
      hb.beat(role);
      expect(Atomics.load(hb.words, role)).not.toBe(IDLE);
      expect(hb.ageMs(role)).toBeLessThan(50);
      hb.idle(role);
      expect(hb.isStale(role, 0)).toBe(false);
    }
  });

  it('a thread that died says so: stale at once to every reader, even just after a stop of the process; a beat for it on its behalf keeps that, its successor\'s clears it', () => {
    const { sab, epoch } = Heartbeats.allocate();
    const hb = new Heartbeats(sab, epoch);
    hb.beat(Role.FAULT);
    expect(hb.isStale(Role.FAULT, 5000)).toBe(false);
    hb.died(Role.FAULT);
    expect(Atomics.load(hb.words, Role.FAULT)).toBe(DEAD);
    expect(hb.isDead(Role.FAULT)).toBe(true);
    expect(hb.ageMs(Role.FAULT)).toBe(Infinity);
    expect(hb.isStale(Role.FAULT, 5000)).toBe(true);
    // A watchdog that just saw the process stand still excuses old beats, not a death.
    hb.beat(WatchdogWord.LOOK as never);
    hb.beat(WatchdogWord.RESUMED as never);
    expect(hb.isStale(Role.FAULT, 5000)).toBe(true);
    hb.beatUnlessDead(Role.FAULT); // the heap, handing it a job (cycle.ts at the flip)
    expect(hb.isDead(Role.FAULT)).toBe(true);
    hb.beat(Role.FAULT); // its successor, ready
    expect(hb.isDead(Role.FAULT)).toBe(false);
    expect(hb.isStale(Role.FAULT, 5000)).toBe(false);
    hb.beatUnlessDead(Role.COMPACTOR); // an idle role: beaten
    expect(hb.ageMs(Role.COMPACTOR)).toBeLessThan(50);
  });

  it('ages stay right across the 2^31 ms wrap of a heap that lives for weeks', async () => {
    // An epoch 2^31 - 20 ms ago: beats written now wrap within 20 ms.
    const { sab } = Heartbeats.allocate();
    const hb = new Heartbeats(sab, monotonicMs() - (2 ** 31 - 20));
    hb.beat(Role.COMPACTOR);
    const before = Atomics.load(hb.words, Role.COMPACTOR);
    await new Promise((r) => setTimeout(r, 60));
    const age = hb.ageMs(Role.COMPACTOR);
    hb.beat(Role.FAULT);
    expect(Atomics.load(hb.words, Role.FAULT)).toBeLessThan(before); // the stamp wrapped
    expect(age).toBeGreaterThanOrEqual(55);
    expect(age).toBeLessThan(1000);
    expect(hb.isStale(Role.COMPACTOR, 30)).toBe(true);
    expect(hb.isStale(Role.COMPACTOR, 10_000)).toBe(false);
  });

  it("each thread's heartbeat clock is the watchdog's CLOCK_MONOTONIC (main thread and a Worker)", async () => {
    const diff = (): number => Math.abs(monotonicMs() - native.watchdog.monotonicMs());
    expect(Math.min(diff(), diff(), diff())).toBeLessThan(2);
    const url = new URL('../dist/gc/', import.meta.url).href;
    const w = new Worker(
      `const { parentPort } = await import('node:worker_threads');
       const { monotonicMs } = await import(${JSON.stringify(url + 'heartbeat.js')});
       const { native } = await import(${JSON.stringify(url + 'native.js')});
       const d = () => Math.abs(monotonicMs() - native.watchdog.monotonicMs());
       parentPort.postMessage(Math.min(d(), d(), d()));`,
      // @ts-expect-error `type` is not a WorkerOptions field in @types/node 20 (the eval'd source uses top-level await either way)
      { eval: true, type: 'module' },
    );
    const d = await new Promise<number>((r, j) => w.once('message', r).once('error', j));
    await w.terminate();
    expect(d).toBeLessThan(2);
  });
});

describe("the benchmark's watchdog (bench/watchdog.ts)", () => {
  it('a mutator stuck past stuckMs: the watchdog names the bench counters it was given (twice) and ends the process', () => {
    // A child whose main thread blocks, as one stuck in an unserved fault would.
    const src = `
      const { Worker } = require('node:worker_threads');
      const beat = new Int32Array(new SharedArrayBuffer(16));
      const ctl = new Int32Array(new SharedArrayBuffer(16));
      ctl[0] = 7; ctl[1] = 3; ctl[2] = 11; ctl[3] = 12;
      const w = new Worker(${JSON.stringify(fileURLToPath(new URL('../dist/bench/watchdog.js', import.meta.url)))}, { workerData: { beat: beat.buffer, stuckMs: 60000 } });
      w.postMessage({ ctl: ctl.buffer, names: ['PAGES_TOTAL', 'PAGES_MAPPED', 'FAULTS', 'STALLS'], label: 'rep 1 stw 8192 MiB', stuckMs: 500 });
      setTimeout(() => { Atomics.store(beat, 0, 1); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000); }, 200);`;
    const r = spawnSync(process.execPath, ['-e', src], { encoding: 'utf8', timeout: 15_000 });
    expect(r.signal, r.stderr).toBe('SIGTERM');
    expect(r.stderr).toContain('WATCHDOG: the mutator made no progress');
    expect(r.stderr).toContain('during rep 1 stw 8192 MiB');
    expect(r.stderr.match(/PAGES_TOTAL=7 PAGES_MAPPED=3 FAULTS=11 STALLS=12/g)?.length, r.stderr).toBe(2);
  });
});
