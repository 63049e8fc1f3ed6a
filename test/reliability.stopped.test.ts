/**
 * A process that is only stopped (SIGSTOP, Ctrl-Z, a debugger, a suspended VM) is not a
 * stalled one. A stop ages every heartbeat at once; judged by age alone, the first look after
 * SIGCONT took healthy collector threads for stalled ones: their claims were taken over and
 * the threads replaced. The native watchdog publishes its own looks and the last one that came
 * late (native/watchdog.cc), and Heartbeats.isStale does not count a stop (gc/heartbeat.ts).
 */
import { describe, expect, it } from 'vitest';
import { Heartbeats, IDLE, Role, WatchdogWord, monotonicMs, stillMs, watchdogPeriodMs } from '../dist/gc/heartbeat.js';
import { watchdogThresholds } from '../dist/gc/watchdog.js';
import { itKernel } from './kernel.js';
import { runChild } from './helpers/child.js';

/** The fixture's one JSON line, and the context to print if an assertion fails. */
function runFixture(name: string, arg: unknown = {}): { line: Record<string, any>; ctx: string } {
  const { r, lines } = runChild(name, arg, 40_000);
  const ctx = `status ${r.status} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  expect(lines.length, ctx).toBeGreaterThan(0);
  return { line: lines[0], ctx };
}

describe('Heartbeats.isStale: the decision, with the watchdog words written by hand', () => {
  const STALL = 100;
  const table = (): { hb: Heartbeats; ago: (i: number, ms: number) => void } => {
    const { sab } = Heartbeats.allocate();
    const hb = new Heartbeats(sab, monotonicMs() - 100_000);
    const ago = (i: number, ms: number): void => {
      Atomics.store(hb.words, i, Math.floor(monotonicMs() - hb.epoch - ms));
    };
    return { hb, ago };
  };

  it('a beat stamped ahead of the reader\'s clock (threads estimate the clock from their own origins) is fresh, not 24 days old', () => {
    const { hb, ago } = table();
    for (const ahead of [1, 2, 50]) {
      ago(Role.COMPACTOR, -ahead);
      expect(hb.ageMs(Role.COMPACTOR)).toBe(0);
      expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(false);
      expect(hb.isStale(Role.COMPACTOR, 5000)).toBe(false);
      ago(WatchdogWord.LOOK, 5); // with a watchdog looking on time too
      expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(false);
      Atomics.store(hb.words, WatchdogWord.LOOK, IDLE);
    }
  });

  it('no watchdog (its words idle): age alone', () => {
    const { hb, ago } = table();
    ago(Role.COMPACTOR, 300);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(true);
    ago(Role.COMPACTOR, 50);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(false);
  });

  it('the watchdog looks on time and saw no stop: an old beat is a stall', () => {
    const { hb, ago } = table();
    ago(WatchdogWord.LOOK, 5);
    ago(Role.COMPACTOR, 300);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(true);
    ago(WatchdogWord.RESUMED, STALL + 20); // a stop seen more than a stall ago
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(true);
  });

  it('the watchdog has not looked for longer than its period and half a stall: the process may just have been continued', () => {
    const { hb, ago } = table();
    ago(Role.COMPACTOR, 300);
    ago(WatchdogWord.LOOK, watchdogPeriodMs(STALL) + stillMs(STALL) + 20);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(false);
    ago(WatchdogWord.LOOK, watchdogPeriodMs(STALL) + stillMs(STALL) - 20);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(true);
  });

  it('the watchdog saw a stop less than a stall ago: the threads get a stall to beat again', () => {
    const { hb, ago } = table();
    ago(Role.COMPACTOR, 300);
    ago(WatchdogWord.LOOK, 1);
    ago(WatchdogWord.RESUMED, STALL - 20);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(false);
    hb.idle(Role.COMPACTOR);
    expect(hb.isStale(Role.COMPACTOR, STALL)).toBe(false); // idle is never stale
  });

  it('thresholds: the watchdog looks every quarter stall (10 ms to 250 ms); a look half a stall late is a stop', () => {
    expect(watchdogThresholds(200)).toMatchObject({ periodMs: 50, stillMs: 100, staleMs: 200 });
    expect(watchdogThresholds(1)).toMatchObject({ periodMs: 10, stillMs: 1 });
    expect(watchdogThresholds(5000)).toMatchObject({ periodMs: 250, stillMs: 2500 });
  });
});

describe('the native watchdog publishes its looks', () => {
  itKernel('each period; the first look after a stop marks it; a stall after that, an old beat is stale again; idle once stopped', () => {
    const { line, ctx } = runFixture('stopped-watchdog.mjs');
    expect(line.running.look, ctx).toBeGreaterThanOrEqual(0); // published (every 10 ms)
    expect(line.running.look, ctx).toBeLessThan(1000);
    expect(line.continued.age, ctx).toBeGreaterThanOrEqual(950);
    expect(line.continued.stale, ctx).toBe(false);
    expect(line.seen.marked, ctx).toBe(true);
    expect(line.seen.resumed, ctx).toBeGreaterThanOrEqual(0);
    expect(line.seen.resumed, ctx).toBeLessThan(100);
    expect(line.seen.stale, ctx).toBe(false);
    expect(line.later.stale, ctx).toBe(true);
    expect(line.later.resumed, ctx).toBeGreaterThan(100); // not before a stall had passed
    expect(line.stopped, ctx).toEqual({ look: -1, stale: true });
  }, ['uffd']);
});

describe('a heap whose process is stopped for a second while it compacts', () => {
  for (const faultPath of ['self', 'handler'] as const) {
    itKernel(`[${faultPath}] replaces no thread and takes over no claim; the graph is intact`, () => {
      const { line, ctx } = runFixture('stopped-heap.mjs', { faultPath });
      expect(line.stoppedMs, ctx).toBeGreaterThanOrEqual(900); // the stop happened
      expect(line.warnings, ctx).toEqual([]);
      expect(line.takeovers, ctx).toBe(0);
      expect(line.pages.builtByMutator, ctx).toBe(0);
      expect(line.walked, ctx).toBe(20000);
      expect(line.same, ctx).toBe(true);
      expect(line.verify, ctx).toBe(true);
    });
  }
});
