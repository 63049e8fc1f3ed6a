/**
 * The per-page state word (gc/claim.ts): which thread builds a to-space page, and where a
 * built page waits. Pure shared-memory logic, driven directly: the races it guards are
 * between threads that stall at the wrong moment, which a cycle on a real heap reaches only
 * under load (a fresh-clone CI run once met one: a page rebuilt from recycled sources).
 */
import { describe, expect, it } from 'vitest';
import { bufferOf, claim, markProcessed, ownerOf, phaseOf, reclaim, unclaim } from '../dist/gc/claim.js';
import { Owner, PagePhase, Shared } from '../dist/gc/shared.js';
import { TypeTable } from '../dist/gc/layout.js';

const PAGES = 8;
/** Pages planned for a cycle: all unbuilt (a page no cycle planned reads as installed). */
const shared = (): Shared => {
  const sh = Shared.allocate({ heapAddress: 0, fromAddress: 0, capacity: PAGES * 4096, fromExtraPages: 0, uffdFd: -1, uffdFeatures: 0, statmFd: -1, types: TypeTable.allocate() });
  sh.pageState.fill(PagePhase.UNPROCESSED);
  return sh;
};

describe('page state word', () => {
  it('claim, build, install: one owner at a time, the buffer in the same word', () => {
    const sh = shared();
    expect(claim(sh, 3, Owner.COMPACTOR)).toBe(true);
    expect(claim(sh, 3, Owner.FAULT)).toBe(false);
    expect(markProcessed(sh, 3, Owner.FAULT, 9)).toBe(false); // not its claim
    expect(markProcessed(sh, 3, Owner.COMPACTOR, 4_194_400)).toBe(true); // a scratch page of a 16 GiB heap
    const s = sh.pageState[3];
    expect([phaseOf(s), ownerOf(s), bufferOf(s)]).toEqual([PagePhase.PROCESSED, Owner.COMPACTOR, 4_194_400]);
    expect(s).toBeGreaterThan(0);
  });

  it('a stale owner that was building gives the page back; its late "built" does not land', () => {
    const sh = shared();
    claim(sh, 1, Owner.COMPACTOR);
    expect(phaseOf(reclaim(sh, 1, Owner.COMPACTOR, Owner.MUTATOR))).toBe(PagePhase.PROCESSING);
    expect(sh.pageState[1]).toBe(PagePhase.UNPROCESSED);
    // The mutator rebuilds it into its scratch page; the compactor wakes and says it built it too.
    claim(sh, 1, Owner.MUTATOR);
    expect(markProcessed(sh, 1, Owner.MUTATOR, 70)).toBe(true);
    expect(markProcessed(sh, 1, Owner.COMPACTOR, 5)).toBe(false);
    expect(bufferOf(sh.pageState[1])).toBe(70); // a helper installs the mutator's buffer, not the compactor's
  });

  it('a built page is never given back to be rebuilt, however many stale owners it passes through', () => {
    // The compactor built page 2 into buffer 6 and stalled before installing it; it may already
    // have recycled page 2's sources. The fault server takes it over, and stalls before its
    // install; then the mutator takes it from the fault server.
    const sh = shared();
    claim(sh, 2, Owner.COMPACTOR);
    markProcessed(sh, 2, Owner.COMPACTOR, 6);
    const t1 = reclaim(sh, 2, Owner.COMPACTOR, Owner.FAULT);
    expect([phaseOf(t1), bufferOf(t1)]).toEqual([PagePhase.PROCESSED, 6]);
    const t2 = reclaim(sh, 2, Owner.FAULT, Owner.MUTATOR);
    expect([phaseOf(t2), bufferOf(t2)]).toEqual([PagePhase.PROCESSED, 6]); // install buffer 6 again
    const s = sh.pageState[2];
    expect([phaseOf(s), ownerOf(s), bufferOf(s)]).toEqual([PagePhase.PROCESSED, Owner.MUTATOR, 6]);
    expect(claim(sh, 2, Owner.COMPACTOR)).toBe(false);
    unclaim(sh, 2, Owner.MUTATOR); // only a claim not yet built can be given back
    expect(phaseOf(sh.pageState[2])).toBe(PagePhase.PROCESSED);
  });

  it('only the stale owner named loses the page', () => {
    const sh = shared();
    claim(sh, 0, Owner.FAULT);
    expect(reclaim(sh, 0, Owner.COMPACTOR, Owner.MUTATOR)).toBe(-1);
    expect(ownerOf(sh.pageState[0])).toBe(Owner.FAULT);
  });
});
