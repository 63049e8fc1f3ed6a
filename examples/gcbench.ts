/**
 * GCBench (Boehm, Demers et al.; the binary-trees benchmark it grew into) on the movegc heap.
 *
 * A long-lived binary tree and a long-lived array of doubles stay reachable throughout; then,
 * for depths 4, 6, ..., 16, many short-lived trees are built top down (populate an empty node)
 * and bottom up (make the children first), and dropped. Collections are triggered when heap
 * use passes a fraction of the capacity, between trees (the safe points: no reference is held
 * on the JavaScript side there), or when an allocation fails with ERR_HEAP_FULL: then the
 * partial tree is dropped, the heap collected, and the tree rebuilt. Compaction runs
 * concurrently with the next trees in move/copy mode. At the end the long-lived tree and
 * array are walked and checked.
 *
 *   movegc example gcbench [--mode move|copy|stw] [--heap 64] [--trigger 0.75]
 *                          [--stretch 18] [--long-lived 16] [--max-depth 16] [--scale 1]
 *   movegc example gcbench --compare [--modes move,copy,stw]
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, Heap, MoveGcError, type CycleStats, type HeapType, type ModeName, type Ref } from '../gc/index.js';
import { compareModes, exampleProvenance, emitResult, exampleLogger, mib, modeArg, ms, num, runModes, sideBySide, writeOut, type Args } from './common.js';
import { runWhenMain } from '../cli/main.js';

const ARRAY_SIZE = 500_000;
const MIN_DEPTH = 4;

export interface BenchResult {
  mode: ModeName;
  fallbacks: string[];
  totalMs: number;
  phases: Array<{ depth: number; iterations: number; ms: number }>;
  cycles: number;
  heapFullRetries: number;
  pauseTotalMs: number;
  pauseMaxMs: number;
  markPlanMs: number;
  compactionMs: number;
  compactorBusyMs: number;
  reclaimedBytes: number;
  pagesMoved: number;
  pagesCopied: number;
  faults: number;
  allocatedNodes: number;
  longLivedOk: boolean;
  arrayOk: boolean;
  verifyOk: boolean;
}

const treeSize = (depth: number): number => (1 << (depth + 1)) - 1;

class Bench {
  readonly heap: Heap;
  readonly Node: HeapType;
  nodes = 0;

  constructor(heap: Heap) {
    this.heap = heap;
    // Node: left, right; i, j (int32 each), as in GCBench's Node class.
    this.Node = heap.defineType({ name: 'Node', refs: 2, bytes: 8 });
  }

  node(l: Ref | null, r: Ref | null): Ref {
    const n = this.heap.alloc(this.Node);
    this.nodes++;
    if (l !== null) this.heap.setRef(n, 0, l);
    if (r !== null) this.heap.setRef(n, 1, r);
    return n;
  }

  /** Top down: give an existing node children, recursively. */
  populate(depth: number, n: Ref): void {
    if (depth <= 0) return;
    const l = this.node(null, null);
    const r = this.node(null, null);
    this.heap.setRef(n, 0, l);
    this.heap.setRef(n, 1, r);
    this.populate(depth - 1, l);
    this.populate(depth - 1, r);
  }

  /** Bottom up: children first. */
  make(depth: number): Ref {
    return depth <= 0 ? this.node(null, null) : this.node(this.make(depth - 1), this.make(depth - 1));
  }

  /** Numbers every node (i = preorder index, j = depth) so the check can tell a moved tree from a broken one. */
  stamp(n: Ref, depth: number, next: { i: number }): void {
    this.heap.setU32(n, 0, next.i++);
    this.heap.setU32(n, 4, depth);
    const l = this.heap.getRef(n, 0);
    const r = this.heap.getRef(n, 1);
    if (l !== null) this.stamp(l, depth + 1, next);
    if (r !== null) this.stamp(r, depth + 1, next);
  }

  /** Nodes that have the shape and the stamps they were given, and how many nodes there are. */
  check(n: Ref, depth: number, maxDepth: number, next: { i: number; bad: number }): number {
    const h = this.heap;
    if (h.getU32(n, 0) !== next.i++ || h.getU32(n, 4) !== depth) next.bad++;
    const l = h.getRef(n, 0);
    const r = h.getRef(n, 1);
    if (depth < maxDepth && (l === null || r === null)) next.bad++;
    if (depth === maxDepth && (l !== null || r !== null)) next.bad++;
    return 1 + (l === null ? 0 : this.check(l, depth + 1, maxDepth, next)) + (r === null ? 0 : this.check(r, depth + 1, maxDepth, next));
  }
}

async function runOne(args: Args, mode: ModeName): Promise<BenchResult> {
  const log = exampleLogger(`gcbench:${mode}`);
  const capacity = num(args, 'heap') * (1 << 20);
  const trigger = num(args, 'trigger');
  const stretchDepth = num(args, 'stretch');
  const longLivedDepth = num(args, 'longLived');
  const maxDepth = num(args, 'maxDepth');
  const scale = num(args, 'scale');
  const heap = await Heap.create({ capacity, mode, logger: log.child({ heap: mode }, { level: process.env.MOVEGC_LOG ?? 'warn' }) });
  const b = new Bench(heap);
  const pauses: number[] = [];
  let retries = 0;

  const collect = async (why: string): Promise<void> => {
    const t = performance.now();
    const used = heap.usedBytes;
    await heap.collect();
    pauses.push(performance.now() - t);
    log.debug({ why, usedMiB: +mib(used), afterMiB: +mib(heap.usedBytes), pauseMs: +ms(performance.now() - t, 2) }, 'collect');
  };
  /** Runs fn at a safe point; on ERR_HEAP_FULL drops its work, collects and runs it again. */
  const safely = async <T>(fn: () => T): Promise<T> => {
    if (heap.usedBytes > trigger * capacity) await collect('threshold');
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (e) {
        if (!(e instanceof MoveGcError) || e.code !== ErrorCode.HEAP_FULL || attempt > 2) throw e;
        retries++;
        await collect('heap full');
      }
    }
  };

  const t0 = performance.now();
  log.info({ mode: heap.mode, heapMiB: capacity >> 20, stretchDepth, longLivedDepth, maxDepth, scale }, 'GCBench starting');
  // Stretch the heap with a big temporary tree.
  await safely(() => b.make(stretchDepth));
  // The long-lived tree and array.
  const longLived = heap.root(null);
  await safely(() => {
    const n = b.node(null, null);
    b.populate(longLivedDepth, n);
    b.stamp(n, 0, { i: 0 });
    longLived.set(n);
  });
  const array = heap.root(null);
  await safely(() => {
    const a = heap.allocBytes(ARRAY_SIZE * 8);
    for (let i = 0; i < ARRAY_SIZE / 2; i++) heap.setF64(a, i * 8, 1 / (i + 1));
    array.set(a);
  });
  log.info({ usedMiB: +mib(heap.usedBytes) }, 'long-lived data ready');

  const phases: BenchResult['phases'] = [];
  for (let depth = MIN_DEPTH; depth <= maxDepth; depth += 2) {
    const iterations = Math.max(1, Math.round(((2 * treeSize(stretchDepth)) / treeSize(depth)) * scale));
    const tp = performance.now();
    for (let i = 0; i < iterations; i++) {
      await safely(() => {
        const n = b.node(null, null);
        b.populate(depth, n);
      });
      await safely(() => b.make(depth));
    }
    const took = performance.now() - tp;
    phases.push({ depth, iterations, ms: took });
    log.info({ depth, iterations, ms: Math.round(took), cycles: heap.history.length + (heap.cycleActive ? 1 : 0), usedMiB: +mib(heap.usedBytes) }, 'trees built top down and bottom up');
  }
  // GCBench keeps the long-lived objects alive to the end and checks one array element.
  const a = array.get()!;
  const arrayOk = heap.getF64(a, 1000 * 8) === 1 / 1001 && heap.length(a) === ARRAY_SIZE * 8;
  const totalMs = performance.now() - t0;
  await heap.idle();
  const next = { i: 0, bad: 0 };
  const count = b.check(longLived.get()!, 0, longLivedDepth, next);
  const longLivedOk = count === treeSize(longLivedDepth) && next.bad === 0;
  const verify = heap.verify();
  const cycles: CycleStats[] = [...heap.history];
  const sum = (g: (c: CycleStats) => number): number => cycles.reduce((s, c) => s + g(c), 0);
  const r: BenchResult = {
    mode: heap.mode,
    fallbacks: [...heap.fallbacks],
    totalMs,
    phases,
    cycles: cycles.length,
    heapFullRetries: retries,
    pauseTotalMs: pauses.reduce((s, p) => s + p, 0),
    pauseMaxMs: Math.max(0, ...pauses),
    markPlanMs: sum((c) => c.markMs + c.planMs),
    compactionMs: sum((c) => c.compactionMs),
    compactorBusyMs: sum((c) => c.compactorBusyMs),
    reclaimedBytes: sum((c) => c.reclaimedBytes),
    pagesMoved: sum((c) => c.pages.moved),
    pagesCopied: sum((c) => c.pages.copied),
    faults: sum((c) => c.faults),
    allocatedNodes: b.nodes,
    longLivedOk,
    arrayOk,
    verifyOk: verify.ok,
  };
  if (!longLivedOk) log.error({ count, expected: treeSize(longLivedDepth), bad: next.bad }, 'long-lived tree damaged');
  if (!verify.ok) log.error({ errors: verify.errors.slice(0, 5) }, 'heap verification failed');
  log.info({ ms: Math.round(totalMs), cycles: r.cycles, longLivedOk, arrayOk }, 'done');
  await heap.close();
  return r;
}

function table(rs: BenchResult[]): string {
  const col = (f: (r: BenchResult) => string | number) => rs.map(f);
  const rows: Array<[string, ...Array<string | number>]> = [
    ['total time ms', ...col((r) => ms(r.totalMs, 0))],
    ...rs[0].phases.map((p, i): [string, ...Array<string | number>] => [`  depth ${p.depth} (${p.iterations} x2 trees) ms`, ...col((r) => ms(r.phases[i]?.ms ?? 0, 0))]),
    ['nodes allocated (M)', ...col((r) => (r.allocatedNodes / 1e6).toFixed(2))],
    ['GC cycles', ...col((r) => r.cycles)],
    ['  retries after ERR_HEAP_FULL', ...col((r) => r.heapFullRetries)],
    ['collect() pause total ms', ...col((r) => ms(r.pauseTotalMs))],
    ['collect() pause max ms', ...col((r) => ms(r.pauseMaxMs))],
    ['  of which mark+plan ms', ...col((r) => ms(r.markPlanMs))],
    ['compaction ms (pause end to last install)', ...col((r) => (r.mode === 'stw' ? '-' : ms(r.compactionMs)))], // stw compacts inside its pause
    ['  compactor busy ms', ...col((r) => (r.mode === 'stw' ? '-' : ms(r.compactorBusyMs)))],
    ['pages moved / copied', ...col((r) => `${r.pagesMoved} / ${r.pagesCopied}`)],
    ['mutator faults', ...col((r) => r.faults)],
    ['reclaimed MiB', ...col((r) => mib(r.reclaimedBytes))],
    ['long-lived tree intact', ...col((r) => (r.longLivedOk ? 'yes' : 'NO'))],
    ['long-lived array intact', ...col((r) => (r.arrayOk ? 'yes' : 'NO'))],
    ['heap verifies', ...col((r) => (r.verifyOk ? 'yes' : 'NO'))],
  ];
  return sideBySide('GCBench on movegc, per mode', rs.map((r) => r.mode + (r.fallbacks.length ? '*' : '')), rows);
}

function summary(rs: BenchResult[]): string {
  const ok = rs.every((r) => r.longLivedOk && r.arrayOk && r.verifyOk);
  const lines = [
    `Summary: ${rs.map((r) => `${r.mode} ran GCBench in ${ms(r.totalMs / 1000, 2)} s with ${r.cycles} cycles (compaction ${ms(r.compactionMs, 0)} ms, ${mib(r.reclaimedBytes)} MiB reclaimed)`).join('; ')}.`,
    ok ? 'The long-lived tree (every node stamped and re-checked) and array survived every compaction intact; the heap verifies.' : 'DAMAGE: the long-lived data or the heap did not check out (see the table).',
  ];
  const mv = rs.find((r) => r.mode === 'move');
  const cp = rs.find((r) => r.mode === 'copy');
  if (mv && cp) lines.push(`move vs copy: compaction ${ms(mv.compactionMs, 0)} vs ${ms(cp.compactionMs, 0)} ms over ${mv.pagesMoved} moved vs ${cp.pagesCopied} copied pages.`);
  return lines.join('\n');
}

export async function main(args: Args): Promise<void> {
  // Provenance only for a file to write (--out, which a --compare child is never handed).
  const prov = typeof args.out !== 'string' ? null : exampleProvenance({ capacityMiB: args.heap, modes: args.compare ? args.modes : [args.mode] });
  if (args.compare) {
    const modes = compareModes(args);
    const rs = await runModes<BenchResult>('gcbench', modes, args);
    if (args.json) emitResult(rs); // one RESULT line, as --json says (an audit: the table, and no --out)
    else {
      console.log('\n' + table(rs) + '\n');
      console.log(summary(rs));
    }
    writeOut(args, 'gcbench', rs, prov);
    if (!rs.every((r) => r.longLivedOk && r.arrayOk && r.verifyOk)) process.exitCode = 1;
    return;
  }
  const r = await runOne(args, modeArg(args));
  if (args.json) emitResult(r);
  else {
    console.log('\n' + table([r]) + '\n');
    console.log(summary([r]));
  }
  writeOut(args, 'gcbench', [r], prov);
  if (!(r.longLivedOk && r.arrayOk && r.verifyOk)) process.exitCode = 1;
}

// `node dist/examples/gcbench.js ARGS` is `movegc example gcbench ARGS`.
runWhenMain(import.meta.url, ['example', 'gcbench']);
