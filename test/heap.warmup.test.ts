/**
 * The accessors' compacting paths are warmed up when the first heap of a process is created
 * (warmup.ts, warmUpAccessors): V8 optimizes them while no cycle compacts, and before the warm-up the first
 * compaction of a process deoptimized each of them at its page check ("insufficient type
 * feedback"), in the frame right after the flip (art demo: that frame 42-54 ms against 26-40
 * for the later ones). Checked with V8's natives syntax in a child: a function calling the
 * accessors is compiled by TurboFan, then meets unbuilt pages in the first compaction, and its
 * optimization status is unchanged. And code the warm-up optimized survives the first close of
 * a heap (which detaches buffers: V8's detaching protector).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ModeName } from '../dist/gc/index.js';
import { closeHeapsAfterEach, itMode, openHeap } from './helpers/heap.js';

closeHeapsAfterEach();

const index = fileURLToPath(new URL('../dist/gc/index.js', import.meta.url));

/** The optimization status bit V8 sets for TurboFan code (%GetOptimizationStatus, V8 11). */
const TURBOFANNED = 1 << 6;

/** A child: `walk` (a frame's worth of accessor calls) compiled by TurboFan before the first compaction, run again during it. */
function child(mode: ModeName, unbuiltReads: 'build' | 'from-space' = 'build', body = 's += h.getU32(x, 0) + h.length(x); h.setU32(x, 4, k);'): { before: number; after: number; met: number; writes: number } {
  const src = `
    const { Heap } = await import(${JSON.stringify(index)});
    // The compactor waits 300 ms before its first page: the accessors meet every page unbuilt.
    const h = await Heap.create({ capacity: 16 << 20, mode: ${JSON.stringify(mode)}, unbuiltReads: ${JSON.stringify(unbuiltReads)}, stallMs: 5000, inject: { delayAtPage: 1, delayMs: 300 } });
    const T = h.defineType({ name: 'N', refs: 1, bytes: 8 });
    let head = null;
    for (let i = 0; i < 20000; i++) { h.allocBytes(100); const x = h.alloc(T); h.setRef(x, 0, head); h.setU32(x, 0, i); head = x; }
    const r = h.root(head);
    function walk(k) {
      let s = 0;
      for (let x = r.get(); x !== null; x = h.getRef(x, 0)) { ${body} }
      return s;
    }
    %PrepareFunctionForOptimization(walk);
    walk(0);
    walk(1);
    %OptimizeFunctionOnNextCall(walk);
    walk(2);
    const before = %GetOptimizationStatus(walk);
    await h.collect();
    walk(3);
    const after = %GetOptimizationStatus(walk);
    const st = await h.idle();
    console.log('RESULT ' + JSON.stringify({ before, after, met: st.pages.builtBySelf + st.faults + st.stalls.unbuiltReads + st.stalls.unbuiltWrites, writes: st.stalls.unbuiltWrites }));
    await h.close();`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-warmup-'));
  const file = path.join(dir, 'child.mjs');
  fs.writeFileSync(file, src);
  try {
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', file], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(/RESULT (.*)/.exec(r.stdout)![1]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the warm-up itself', () => {
  itMode('stw', "leaves the process's first heap empty: no object, no start bit, its first object at word 1", async () => {
    // This file runs in a process of its own (vitest forks): the heap below is its first.
    const h = await openHeap({ capacity: 4 << 20, mode: 'stw' });
    expect(h.usedBytes).toBe(8);
    expect(h.census().objects).toBe(0);
    const a = h.allocRefArray(2);
    expect(h.addressOf(a) - h.address).toBe(8);
    expect([h.getRef(a, 0), h.getRef(a, 1)]).toEqual([null, null]);
    expect(h.verify().ok).toBe(true);
  });
});

describe.each(['move', 'copy'] as const)('the accessors on the first compaction of a process (%s)', (mode) => {
  itMode(mode, 'TurboFan code calling the accessors stays optimized when they meet unbuilt pages', () => {
    const r = child(mode);
    expect(r.met, 'the accessors met unbuilt pages').toBeGreaterThan(10);
    expect(r.before & TURBOFANNED, JSON.stringify(r)).toBe(TURBOFANNED);
    expect(r.after, 'deoptimized by the first compaction').toBe(r.before);
  });
  // The reads from from-space are rehearsed by the warm-up (UnbuiltReads.rehearse).
  itMode(mode, 'the same with reads served from from-space (unbuiltReads)', () => {
    const r = child(mode, 'from-space');
    expect(r.met, 'the accessors met unbuilt pages').toBeGreaterThan(10);
    expect(r.before & TURBOFANNED, JSON.stringify(r)).toBe(TURBOFANNED);
    expect(r.after, 'deoptimized by the first compaction').toBe(r.before);
  });
  // And the stores made in from-space (UnbuiltWrites), with no length() to build the page first.
  itMode(mode, 'the same with stores made in from-space too (unbuiltWrites)', () => {
    const r = child(mode, 'from-space', 's += h.getU32(x, 0); h.setF64(x, 0, h.getF64(x, 0)); h.setU32(x, 4, k); h.setU8(x, 5, k); h.setRef(x, 0, h.getRef(x, 0));');
    expect(r.writes, JSON.stringify(r)).toBeGreaterThan(10);
    expect(r.before & TURBOFANNED, JSON.stringify(r)).toBe(TURBOFANNED);
    expect(r.after, 'deoptimized by the first compaction').toBe(r.before);
  });
});

/** V8's "not compiled yet" bit of %GetOptimizationStatus (kIsLazy, V8 11). */
const LAZY = 1 << 18;

/** A child: the optimization status of functions of a module in dist/gc before and after creating a heap (the flip's plan extension by default). */
function flipStatus(mode: ModeName, module = 'plan', names = ['extendPlan', 'forwardObjectStarts'], flags: string[] = []): { before: number[]; after: number[] } {
  const src = `
    const { Heap } = await import(${JSON.stringify(index)});
    const m = await import(${JSON.stringify(fileURLToPath(new URL(`../dist/gc/${module}.js`, import.meta.url)))});
    const st = () => ${JSON.stringify(names)}.map((f) => %GetOptimizationStatus(m[f]));
    const before = st();
    const h = await Heap.create({ capacity: 8 << 20, mode: ${JSON.stringify(mode)} });
    console.log('RESULT ' + JSON.stringify({ before, after: st() }));
    await h.close();`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-warmup-'));
  const file = path.join(dir, 'child.mjs');
  fs.writeFileSync(file, src);
  try {
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', ...flags, file], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(/RESULT (.*)/.exec(r.stdout)![1]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('what the warm-up optimized survives the first close of a heap (memory.ts armDetachChecks)', () => {
  // The first Heap.create closes a rehearsal heap, which detaches its views: V8 then threw away
  // every function it had compiled without detach checks, the warm-up's work with them.
  itMode('move', 'forward, compiled by TurboFan in the warm-up, is still TurboFan code once the first heap exists', () => {
    const r = flipStatus('move', 'forward', ['forward'], ['--no-concurrent-recompilation']);
    expect(r.after[0] & TURBOFANNED, JSON.stringify(r)).toBe(TURBOFANNED);
  });
});

describe('the flip\'s plan extension, warmed up by the first concurrent-marking heap (warmup.ts)', () => {
  // Before it, the first compaction pause of a process ran extendPlan and forwardObjectStarts
  // in the interpreter: art demo, 13 ms for 107K words allocated since the marking pause, 0.5 ms after.
  itMode('move', 'extendPlan and forwardObjectStarts have run (compiled) once a move heap exists', () => {
    const r = flipStatus('move');
    for (const s of r.before) expect(s & LAZY, JSON.stringify(r)).toBe(LAZY);
    for (const s of r.after) expect(s & LAZY, JSON.stringify(r)).toBe(0);
  });
  itMode('stw', 'a stw heap (it marks in its pause, no extension) leaves them alone', () => {
    const r = flipStatus('stw');
    for (const s of r.after) expect(s & LAZY, JSON.stringify(r)).toBe(LAZY);
  });
});

describe('the pause and the end of a cycle, rehearsed by the first move or copy heap (warmup.ts rehearsePause)', () => {
  // Before it, the first compaction pause of a process compiled its own code as it ran: 3.4-5.3
  // ms at 1 GiB against 1.1-1.5 in later reps, 2.4 with the rehearsal.
  const pause = ['compactionPause', 'forwardRoots', 'fixPinnedSpans', 'remapRange'];
  for (const mode of ['move', 'copy'] as const)
    itMode(mode, 'the pause has run (compiled) once a heap exists', () => {
      const r = flipStatus(mode, 'pause', pause);
      for (const s of r.before) expect(s & LAZY, JSON.stringify(r)).toBe(LAZY);
      for (const s of r.after) expect(s & LAZY, JSON.stringify(r)).toBe(0);
      const end = flipStatus(mode, 'cycle-end', ['endCycle']);
      expect(end.after[0] & LAZY, JSON.stringify(end)).toBe(0);
    });
  itMode('stw', 'a stw heap (its first pause is seconds at 1 GiB) rehearses nothing', () => {
    const r = flipStatus('stw', 'pause', pause);
    for (const s of r.after) expect(s & LAZY, JSON.stringify(r)).toBe(LAZY);
  });
  itMode('move', 'the rehearsal leaves nothing behind: one heap, its mappings and threads, no other', async () => {
    const h = await openHeap({ capacity: 4 << 20, mode: 'move' });
    const { native } = await import('../dist/gc/native.js');
    const owned = native.ownedCount();
    await h.close();
    expect(native.ownedCount()).toBe(0);
    const h2 = await openHeap({ capacity: 4 << 20, mode: 'move' }); // no rehearsal: the process had one
    expect(native.ownedCount()).toBe(owned);
    await h2.close();
  });
  it('a rehearsal that fails is logged and leaves the heap being created alone; it is tried once per process', () => {
    const warmup = fileURLToPath(new URL('../dist/gc/warmup.js', import.meta.url));
    const src = `
      const { rehearsePause } = await import(${JSON.stringify(warmup)});
      const warned = [];
      const log = { debug() {}, warn: (o, msg) => warned.push([o.err.code, msg]) };
      let opened = 0;
      const open = async () => { opened++; throw Object.assign(new Error('no room'), { code: 'ERR_NO_MEMORY' }); };
      await rehearsePause(open, log);
      await rehearsePause(open, log);
      console.log('RESULT ' + JSON.stringify({ opened, warned }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(/RESULT (.*)/.exec(r.stdout)![1])).toEqual({ opened: 1, warned: [['ERR_NO_MEMORY', 'the pause rehearsal failed']] });
  });
});
