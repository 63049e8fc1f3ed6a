/**
 * The benchmark's kernel floor (bench/floor.ts) runs through the binding and yields a figure
 * for everything it claims to measure: finite, and non-negative where it is a cost. No timing
 * is asserted (these machines are shared): the figures themselves are the benchmark's.
 */
import { describe, expect } from 'vitest';
import { measureFloor } from '../dist/bench/floor.js';
import { itKernel } from './kernel.js';

describe('kernel floor', () => {
  itKernel('every figure is measured: MOVE/COPY per page, MOVE of huge pages, first reads, round trips, and what calls cost a busy sibling', async () => {
    const fl = await measureFloor({ pages: 512, reps: 1, faults: 40 });
    const costs = [
      ...Object.values(fl.movePerPageNs),
      ...Object.values(fl.copyPerPageNs),
      ...Object.values(fl.copyFromScratchPerPageNs),
      fl.memcpyPerPageNs,
      fl.firstReadPerPageNs.written,
      fl.firstReadPerPageNs.remapped,
      fl.firstReadPerPageNs.installed.move,
      fl.firstReadPerPageNs.installed.copy,
      fl.firstReadPerPageNs.installed.pmd,
      fl.pmd.movePerPageNs,
      ...Object.values(fl.busySibling.movePerPageNs),
      ...Object.values(fl.busySibling.copyPerPageNs),
      ...Object.values(fl.busySibling.siblingLossUsPerCall.move),
      ...Object.values(fl.busySibling.siblingLossUsPerCall.copy),
      fl.faultRoundTripUs.p50,
      fl.busySibling.faultRoundTripUs.p50,
    ];
    expect(costs.length).toBe(28);
    expect(fl.pmd.hugeSource).toBeGreaterThanOrEqual(0);
    expect(fl.pmd.hugeSource).toBeLessThanOrEqual(1);
    for (const c of costs) {
      expect(Number.isFinite(c), JSON.stringify(fl.busySibling)).toBe(true);
      expect(c).toBeGreaterThanOrEqual(0);
    }
    expect(fl.faultRoundTripUs.count).toBe(40);
    expect(fl.faultRoundTripNote).toBeUndefined(); // every faulted page read what the worker moved in
  }, undefined, 60_000);
});
