/**
 * The compaction pause against heap size, with the same roots (issue: < 5 ms at 1 GiB, and
 * within 1.5x of the pause at 64 MiB). Each size gets a heap about 90% full of 32-byte nodes,
 * every other one live, hung off the same number of roots; the pause (mark and plan excluded)
 * is the median over several cycles.
 *
 *   movegc pause [--sizes 64,1024] [--modes move,copy] [--cycles 9] [--roots 64] [--pause-order ...]
 */
import { Heap, median, type ModeName } from '../gc/index.js';
import type { Values } from '../cli/args.js';
import { heapOptionsOf, knobValuesOf, type KnobValues } from './knobs.js';
import { provenanceLine, startProvenance } from './provenance.js';
import { invocation } from '../cli/invocation.js';
import { runWhenMain } from '../cli/main.js';

async function pauseAt(mode: ModeName, mib: number, cycles: number, nroots: number, knobs: KnobValues): Promise<number[]> {
  const heap = await Heap.create({ ...heapOptionsOf(knobs), capacity: mib * 2 ** 20, mode });
  try {
    const Node = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
    const roots = Array.from({ length: nroots }, () => heap.root(null));
    for (let i = 0; heap.usedBytes + 64 < mib * 2 ** 20 * 0.9; i++) {
      const n = heap.alloc(Node);
      if (i & 1) {
        const r = roots[i % nroots];
        heap.setRef(n, 0, r.get());
        r.set(n);
      }
    }
    const pauses: number[] = [];
    for (let c = 0; c < cycles; c++) {
      pauses.push((await heap.collect()).pause.totalMs);
      await heap.idle();
    }
    return pauses;
  } finally {
    await heap.close();
  }
}

export async function main(v: Values): Promise<void> {
  const sizes = v.sizes as number[];
  const modes = v.modes as ModeName[];
  const cycles = v.cycles as number;
  const nroots = v.roots as number;
  const knobs: KnobValues = knobValuesOf(v);
  const prov = startProvenance(invocation(), { capacityMiB: sizes, modes, ...knobs });
  console.log(`pause (ms, median of ${cycles} cycles, ${nroots} roots)`);
  for (const mode of modes) {
    const med = new Map<number, number>();
    for (const mib of sizes) {
      const p = await pauseAt(mode, mib, cycles, nroots, knobs);
      med.set(mib, median(p));
      console.log(`${mode.padEnd(5)} ${String(mib).padStart(5)} MiB  median ${median(p).toFixed(3)}  min ${Math.min(...p).toFixed(3)}  max ${Math.max(...p).toFixed(3)}`);
    }
    const lo = med.get(sizes[0])!;
    const hi = med.get(sizes[sizes.length - 1])!;
    console.log(`${mode.padEnd(5)} ratio ${sizes[sizes.length - 1]} MiB / ${sizes[0]} MiB: ${(hi / lo).toFixed(2)}`);
  }
  console.log(provenanceLine(prov.end()));
}

runWhenMain(import.meta.url, ['pause']);
