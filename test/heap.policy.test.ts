/**
 * The collector threads' scheduling class (options.collectorPolicy, gc/threads.ts): with
 * 'batch' (the default) or 'idle', the compactor and the marker run as SCHED_BATCH or
 * SCHED_IDLE and the fault server stays normal (a thread blocked in a fault waits for it).
 * Read back from the kernel: the policy field of /proc/self/task/<tid>/stat.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { closeHeapsAfterEach, checkStats, itMode, openHeap } from './helpers/heap.js';
import { fixture, spawnAsync } from './helpers/child.js';
import { CI } from './kernel.js';

closeHeapsAfterEach();

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;
const SCHED_IDLE = 5;

/** Threads of this process whose scheduling policy is SCHED_IDLE. */
function idleThreads(): number {
  let n = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const s = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[38]) === SCHED_IDLE) n++; // field 41: policy
    } catch {
      // the thread exited meanwhile
    }
  }
  return n;
}

/** Names of this process's threads (the collector names its own: collector-worker.ts), with their policy. */
function threadNames(): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const s = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      if (name.startsWith('movegc-')) out.push([name, Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[38])]);
    } catch {
      // the thread exited meanwhile
    }
  }
  return out.sort();
}

async function settle(want: number): Promise<number> {
  for (let i = 0; i < 200 && idleThreads() !== want; i++) await new Promise((r) => setTimeout(r, 10));
  return idleThreads();
}

describe('collector threads\' scheduling class', () => {
  itMode('move', "'batch' (default): the compactor and the marker run as SCHED_BATCH, the fault server does not; 'normal': none", async () => {
    expect(threadNames()).toEqual([]); // the file's first heaps
    const d = await openHeap({ capacity: 8 << 20, mode: 'move', marking: 'concurrent' });
    const byPolicy = (p: number): string[] => threadNames().filter(([, q]) => q === p).map(([name]) => name);
    expect(byPolicy(SCHED_BATCH)).toEqual(['movegc-compact', 'movegc-marker']);
    expect(byPolicy(SCHED_OTHER)).toEqual(['movegc-fault', 'movegc-watchdog']);
    const root = d.root(d.allocRefArray(100));
    for (let i = 0; i < 100; i++) {
      d.allocBytes(3000); // garbage
      d.setRef(root.get()!, i, d.allocBytes(5000));
    }
    const st = await d.gc();
    checkStats(st, 'move');
    expect(st.pages.builtByCompactor).toBeGreaterThan(0);
    expect(d.verify().ok).toBe(true);
    await d.close();
    expect(threadNames()).toEqual([]);
    const n = await openHeap({ capacity: 8 << 20, mode: 'move', collectorPolicy: 'normal' });
    expect(threadNames().filter(([, p]) => p !== SCHED_OTHER)).toEqual([]);
    await n.close();
  });

  itMode('move', "'idle': the compactor and the marker run as SCHED_IDLE, the fault server does not", async () => {
    const base = idleThreads();
    const n = await openHeap({ capacity: 8 << 20, mode: 'move', collectorPolicy: 'normal' });
    expect(idleThreads() - base).toBe(0);
    const h = await openHeap({ capacity: 8 << 20, mode: 'move', collectorPolicy: 'idle' });
    expect(h.marking).toBe('concurrent');
    expect(idleThreads() - base).toBe(2);
    // Each collector thread carries its role's name (top -H, ps -L, perf): the SCHED_IDLE ones
    // are the compactor and the marker; the watchdog names itself too.
    expect(base).toBe(0); // the file's first heaps
    const mine = threadNames();
    expect(mine.filter(([, p]) => p === SCHED_IDLE).map(([name]) => name)).toEqual(['movegc-compact', 'movegc-marker']);
    for (const role of ['movegc-compact', 'movegc-fault', 'movegc-marker']) expect(mine.filter(([name]) => name === role).length).toBe(2); // one per heap
    const keep = h.allocRefArray(100);
    const root = h.root(keep);
    for (let i = 0; i < 100; i++) {
      h.allocBytes(3000); // garbage
      const r = h.allocBytes(5000);
      h.setU32(r, 0, i + 1);
      h.setRef(root.get()!, i, r);
    }
    const st = await h.gc();
    checkStats(st, 'move');
    expect(st.pages.builtByCompactor).toBeGreaterThan(0);
    for (let i = 0; i < 100; i++) expect(h.getU32(h.getRef(root.get()!, i)!, 0)).toBe(i + 1);
    expect(h.verify().ok).toBe(true);
    await n.close();
    expect(idleThreads() - base).toBe(2);
  });

  itMode('move', 'a compactor that died is replaced in the same class', async () => {
    const base = idleThreads();
    const h = await openHeap({ capacity: 8 << 20, mode: 'move', collectorPolicy: 'idle', stallMs: 200, inject: { dieAtPage: 3 } });
    const keep = h.allocRefArray(200);
    const root = h.root(keep);
    for (let i = 0; i < 200; i++) {
      h.allocBytes(2000);
      h.setRef(root.get()!, i, h.allocBytes(6000));
    }
    const st = await h.gc();
    expect(st.cycle).toBe(1);
    expect(st.pages.builtByCompactor, JSON.stringify(st.pages)).toBeLessThan(st.pages.total); // it died part way
    expect(h.verify().ok).toBe(true);
    expect(await settle(base + 2)).toBe(base + 2); // the replacement is SCHED_IDLE too
    await h.close();
    expect(await settle(base)).toBe(base);
  });

  itMode('move', "'idle' with every CPU it may use kept busy: the stalled idle threads are made normal to be replaced, and collections complete", async () => {
    // This process's fixture and two busy loops share one CPU (taskset; without it, loops on every CPU).
    const cpus = os.availableParallelism();
    const pinned = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
    const on = (argv: string[]): [string, string[]] => (pinned ? ['taskset', ['-c', String(cpus - 1), ...argv]] : [argv[0], argv.slice(1)]);
    const hogs: ChildProcess[] = [];
    try {
      for (let i = 0; i < (pinned ? 2 : 2 * cpus); i++) hogs.push(spawn(...on([process.execPath, '-e', 'for(;;){}']), { stdio: 'ignore' }));
      const fixture = fileURLToPath(new URL('./fixtures/idle-saturated.mjs', import.meta.url));
      const r = spawnSync(...on([process.execPath, fixture]), { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, `${r.signal ?? ''} ${r.stderr.slice(-1500)}`).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number[]; closeMs: number; ok: boolean };
      expect(out.ok).toBe(true);
      expect(out.ms).toHaveLength(3);
      // A hang bound, not a speed target: 0.3 s measured, 10.7 s when close waited for the
      // idle threads to get a CPU.
      expect(out.closeMs).toBeLessThan(5000);
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
    }
  }, 90_000);

  // Found by an audit (3 of 3 runs): the safepoints started the stalled marker's replacement,
  // which ends only on the event loop, and waited for it; the loop stayed in 'marking' with no
  // pause for 15 s (of 15). Now they see its thread gone and mark in its place, 60-80 ms in.
  const taskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const frameLoop = "'idle', a frame loop on one CPU that never yields: its safepoints mark in the stalled marker's place and the cycle ends";
  if (!taskset && !CI) {
    console.warn(`[movegc] skipping "${frameLoop}": taskset is missing (it pins the loop to one CPU)`);
    it.skip(frameLoop, () => {});
  } else itMode('move', frameLoop, async () => {
    if (!taskset) throw new Error('CI=true requires taskset, to pin the frame loop to one CPU');
    const cpu = String(os.availableParallelism() - 1);
    const r = await spawnAsync('taskset', ['-c', cpu, process.execPath, fixture('idle-frame-loop.mjs'), JSON.stringify({ limitMs: 15_000 })], 60_000);
    expect(r.status, `${r.signal ?? ''} ${r.stderr.slice(-1500)}`).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; markedMs: number; pauses: number; phase: string; ok: boolean };
    const said = JSON.stringify(out);
    expect(out.phase, said).toBe('idle');
    expect(out.pauses, said).toBeGreaterThanOrEqual(2); // the marking pause and the compaction pause
    // Hang bounds. Marking: stallMs (200) and the pause's own marking, 60-80 ms measured. The
    // end: the stalled idle compactor's pages are built by its stand-ins, 0.3-4 s measured.
    expect(out.markedMs, said).toBeGreaterThanOrEqual(0);
    expect(out.markedMs, said).toBeLessThan(3000);
    expect(out.ms, said).toBeLessThan(12_000);
    expect(out.ok).toBe(true);
  }, 90_000);
});

describe("'idle' where an idle thread cannot be made normal again", () => {
  // A kernel-edge audit: unprivileged, the stalled idle threads could not be made normal
  // (EPERM: leaving SCHED_IDLE takes CAP_SYS_NICE or RLIMIT_NICE 20) and collections beside
  // busy loops starved past 20 s. Such a process now runs its threads 'normal', and says so.
  const name = "falls back to 'normal', said in heap.fallbacks; with the capability, stays 'idle'";
  const setpriv = spawnSync('setpriv', ['--bounding-set=-sys_nice', 'true']).status === 0;
  const script = `import { Heap } from ${JSON.stringify(new URL('../dist/gc/index.js', import.meta.url).href)};
    const h = await Heap.create({ capacity: 8 << 20, mode: 'move', collectorPolicy: 'idle' });
    await h.gc();
    console.log(JSON.stringify({ mode: h.mode, fallbacks: h.fallbacks, ok: h.verify().ok }));
    await h.close();`;
  if (!setpriv && !CI) {
    console.warn(`[movegc] skipping "${name}": setpriv cannot drop CAP_SYS_NICE here (not root, or no setpriv)`);
    it.skip(name, () => {});
  } else itMode('move', name, () => {
    if (!setpriv) throw new Error('CI=true requires setpriv and root, to drop CAP_SYS_NICE from a child');
    const run = (argv: string[]): { mode: string; fallbacks: string[]; ok: boolean } => {
      const r = spawnSync(argv[0], [...argv.slice(1), process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr.slice(-1500)).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    const without = run(['setpriv', '--bounding-set=-sys_nice', 'prlimit', '--nice=0']);
    expect(without.mode).toBe('move');
    expect(without.fallbacks).toEqual([expect.stringMatching(/^collectorPolicy idle -> normal: .*\(EPERM: /)]);
    expect(without.ok).toBe(true);
    const withIt = run(['env']);
    expect(withIt.fallbacks).toEqual([]);
    // 'batch' (the default) needs no privilege: entering and leaving SCHED_BATCH is free.
    const batch = spawnSync('setpriv', ['--bounding-set=-sys_nice', 'prlimit', '--nice=0', process.execPath, '--input-type=module', '-e', script.replace("collectorPolicy: 'idle'", "collectorPolicy: 'batch'")], { encoding: 'utf8', timeout: 60_000 });
    expect(batch.status, batch.stderr.slice(-1500)).toBe(0);
    expect(JSON.parse(batch.stdout.trim().split('\n').pop()!).fallbacks).toEqual([]);
  }, 90_000);
});
