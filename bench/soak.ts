/**
 * Soak: thousands of collection cycles with a concurrent mutator that mutates and reads the
 * graph during every cycle (while compaction runs, faulting pages in), checked against a
 * JavaScript model of the graph, mutating it during marking too (the cycle is driven through
 * safepoints); with faults injected now and then (EAGAIN, stalled and
 * killed compactors, stalled and killed markers, a fault server holding a built page across
 * the cycle's end, forks sharing pages, real io_uring pins, a compaction pause whose mremap or
 * registration fails and is undone). Not
 * part of the test suite (test/reliability.soak.test.ts runs a short one).
 *
 *   movegc soak [options]   (movegc soak --help)
 *
 *   --cycles N     stop after N cycles in all (default 2000; 0: no limit)
 *   --seconds S    stop after S seconds (default 0: no limit); whichever comes first
 *   --heap MiB     capacity of each heap (default 32; a multiple of 2)
 *   --modes LIST   comma-separated heaps to run side by side, one cycle each in turn (default move,copy,stw)
 *   --ops N        mutator operations during each cycle (default 400)
 *   --faults P     probability that a cycle gets an injected fault (default 0.15; 0: none)
 *   --check N      full model comparison and heap.verify() every N cycles of a heap (default 25)
 *   --seed N       PRNG seed (default 1)
 *   --stall-ms MS  the heaps' stallMs (default 50); injected stalls are multiples of it
 *   --json         print the summary as one JSON line on stdout (human-readable lines go to stderr)
 *   and the bench's heap options (--fault-path, --marking, --builder, --huge-pages,
 *   --large-object-bytes, --collector-policy, ...), applied to every heap.
 *
 * The mutator also pins nodes (heap.pin, up to 16 at a time, held across cycles): read through
 * its pin (its pinned address), a pinned node must still hold what the model says; and now and then gives a node a payload of
 * 4-80 KiB, so that large objects (largeObjectBytes) take part.
 *
 * Prints: cycles (per mode), page faults served, fallbacks (EBUSY and the pages copied for it,
 * takeovers of stalled or dead threads, EAGAIN retries, other MOVE errors, mode fallbacks),
 * verifier failures and model mismatches (both must be zero: exit status 1 otherwise), and
 * the process's file descriptors, mappings and threads before and after (all heaps closed).
 */
import fs from 'node:fs';
import type { Values } from '../cli/args.js';
import { Heap, IoUringPin, PAGE_SIZE, isMoveGcError, type CycleStats, type HeapType, type InjectOptions, type ModeName, type Pin, type Ref, type Root } from '../gc/index.js';
import { heapOptionsOf, knobLabel, knobValuesOf, type KnobValues } from './knobs.js';
import { heapVmas } from './procfs.js';
import { rng } from './workload.js';
import { runWhenMain } from '../cli/main.js';

interface Args {
  cycles: number;
  seconds: number;
  heapMiB: number;
  modes: ModeName[];
  ops: number;
  faults: number;
  check: number;
  seed: number;
  stallMs: number;
  knobs: KnobValues;
  json: boolean;
}

function toArgs(v: Values): Args {
  return {
    cycles: v.cycles as number,
    seconds: v.seconds as number,
    heapMiB: v.heap as number,
    modes: v.modes as ModeName[],
    ops: v.ops as number,
    faults: v.faults as number,
    check: v.check as number,
    seed: v.seed as number,
    stallMs: v.stallMs as number,
    knobs: knobValuesOf(v),
    json: v.json === true,
  };
}


export interface Resources {
  fds: number;
  /** Lines of /proc/self/maps: all mappings, V8's and glibc's pools included. */
  maps: number;
  /** The heaps' own mappings: the only ones with MADV_DONTFORK and MADV_NOHUGEPAGE (smaps VmFlags dc, nh). */
  heapMaps: number;
  threads: number;
}
export function resources(): Resources {
  const heapMaps = heapVmas().length;
  return {
    fds: fs.readdirSync('/proc/self/fd').length,
    maps: fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length,
    heapMaps,
    threads: fs.readdirSync('/proc/self/task').length,
  };
}

/** The model of one node: what the heap must hold for it. */
interface MNode {
  id: number;
  ver: number;
  val: number;
  next: MNode | null;
  payload: Uint8Array | null;
}

class Mismatch extends Error {}

/** Pins held at once at most. */
const MAX_PINS = 16;
/** A pinned node and its model. */
interface PinnedNode {
  pin: Pin;
  m: MNode;
}

/** One heap, its graph (a root RefArray of `slots` nodes) and the model of that graph. */
class Subject {
  readonly heap: Heap;
  readonly T: HeapType;
  readonly root: Root;
  readonly slots: Array<MNode | null>;
  readonly pinned: PinnedNode[] = [];
  cycles = 0;
  nextId = 1;
  readonly stats = { faults: 0, selfBuilt: 0, pmdPages: 0, ebusy: 0, ebusyCopies: 0, takeovers: 0, eagain: 0, errors: 0, pagesMoved: 0, pagesCopied: 0, injected: {} as Record<string, number>, heapFull: 0, pins: 0, heapPins: 0, pausesUndone: 0 };
  verifyFailures = 0;
  mismatches = 0;
  readonly firstProblems: string[] = [];

  constructor(heap: Heap, slots: number) {
    this.heap = heap;
    this.T = heap.defineType({ name: 'Node', refs: 2, bytes: 16 });
    this.root = heap.root(heap.allocRefArray(slots));
    this.slots = new Array(slots).fill(null);
  }

  problem(kind: 'verify' | 'model', msg: string): void {
    if (kind === 'verify') this.verifyFailures++;
    else this.mismatches++;
    if (this.firstProblems.length < 10) this.firstProblems.push(`${this.heap.mode} cycle ${this.cycles}: ${kind}: ${msg}`);
  }

  /** The verifier, then a full comparison with the model; failures are recorded, not thrown. */
  verifyAndCompare(): void {
    const v = this.heap.verify();
    if (!v.ok) this.problem('verify', v.errors.slice(0, 3).join('; '));
    try {
      this.checkAll();
    } catch (e) {
      if (e instanceof Mismatch) this.problem('model', e.message);
      else throw e;
    }
  }

  /** Allocates a node for model node m (payload included) and returns its ref. */
  #make(m: MNode): Ref {
    const h = this.heap;
    const r = h.alloc(this.T);
    h.setU32(r, 0, m.id);
    h.setU32(r, 4, m.ver);
    h.setF64(r, 8, m.val);
    if (m.payload) {
      const b = h.allocBytes(m.payload.length);
      h.writeBytes(b, 0, m.payload);
      h.setRef(r, 1, b);
    }
    return r;
  }

  /** Compares one node (and its payload, and its next's id) with the model. */
  #check(r: Ref | null, m: MNode | null, where: string): void {
    const h = this.heap;
    if ((r === null) !== (m === null)) throw new Mismatch(`${where}: null mismatch`);
    if (r === null || m === null) return;
    if (h.getU32(r, 0) !== m.id) throw new Mismatch(`${where}: id ${h.getU32(r, 0)} != ${m.id}`);
    if (h.getU32(r, 4) !== m.ver) throw new Mismatch(`${where}: version of ${m.id}`);
    if (!Object.is(h.getF64(r, 8), m.val)) throw new Mismatch(`${where}: value of ${m.id}`);
    const p = h.getRef(r, 1);
    if ((p === null) !== (m.payload === null)) throw new Mismatch(`${where}: payload presence of ${m.id}`);
    if (p !== null && m.payload) {
      if (h.length(p) !== m.payload.length) throw new Mismatch(`${where}: payload length of ${m.id}`);
      const b = h.readBytes(p, 0, m.payload.length);
      for (let i = 0; i < b.length; i++) if (b[i] !== m.payload[i]) throw new Mismatch(`${where}: payload byte ${i} of ${m.id}`);
    }
    const n = h.getRef(r, 0);
    if ((n === null) !== (m.next === null)) throw new Mismatch(`${where}: next presence of ${m.id}`);
    if (n !== null && h.getU32(n, 0) !== m.next!.id) throw new Mismatch(`${where}: next of ${m.id}`);
  }

  /** Every slot and every pinned node against the model. */
  checkAll(): void {
    const a = this.root.get()!;
    for (let i = 0; i < this.slots.length; i++) this.#check(this.heap.getRef(a, i), this.slots[i], `slot ${i}`);
    for (const p of this.pinned) this.#checkPinned(p);
  }

  /**
   * A pinned node read at its pinned address (a Pin keeps the word it was made with): a node
   * that moved, or whose page was lost, reads as something else there.
   */
  #checkPinned(p: PinnedNode): void {
    this.#check(p.pin.ref, p.m, `pinned node ${p.m.id}`);
  }

  /** Pins slot i's node, or releases a pin (about half each, at most MAX_PINS held). */
  #pinOrRelease(i: number, rnd: () => number): void {
    const m = this.slots[i];
    if (m && this.pinned.length < MAX_PINS && rnd() < 0.5) {
      const pin = this.heap.pin(this.heap.getRef(this.root.get()!, i)!);
      this.pinned.push({ pin, m });
      this.stats.heapPins++;
    } else if (this.pinned.length) {
      const k = Math.floor(rnd() * this.pinned.length);
      this.#checkPinned(this.pinned[k]);
      this.pinned.splice(k, 1)[0].pin.release();
    }
  }

  releasePins(): void {
    for (const p of this.pinned.splice(0)) p.pin.release();
  }

  /** One mutator operation: mutate or read, checking what it reads. Throws Mismatch. */
  step(rnd: () => number): void {
    const h = this.heap;
    const a = this.root.get()!;
    const n = this.slots.length;
    const i = Math.floor(rnd() * n);
    const x = rnd();
    if (x < 0.25) {
      // A new node in slot i (the old one becomes garbage unless another node points at it).
      // Now and then a payload of 4-80 KiB: a large object (largeObjectBytes) when the heap's threshold is low enough.
      const len = rnd() < 0.002 ? 4096 + Math.floor(rnd() * 77824) : 1 + Math.floor(rnd() * 300);
      const payload = rnd() < 0.5 ? Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256)) : null;
      const m: MNode = { id: this.nextId++, ver: 0, val: rnd() * 1e9, next: null, payload };
      const r = this.#make(m);
      const j = Math.floor(rnd() * n);
      const nj = this.slots[j];
      if (nj) {
        h.setRef(r, 0, h.getRef(a, j));
        m.next = nj;
      }
      h.setRef(a, i, r);
      this.slots[i] = m;
    } else if (x < 0.4) {
      const m = this.slots[i];
      if (!m) return;
      const r = h.getRef(a, i)!;
      m.ver = (m.ver + 1) >>> 0;
      m.val = rnd() * 1e9 - 5e8;
      h.setU32(r, 4, m.ver);
      h.setF64(r, 8, m.val);
    } else if (x < 0.5) {
      const m = this.slots[i];
      const j = Math.floor(rnd() * n);
      if (!m) return;
      h.setRef(h.getRef(a, i)!, 0, h.getRef(a, j));
      m.next = this.slots[j];
    } else if (x < 0.55) {
      h.setRef(a, i, null);
      this.slots[i] = null;
    } else if (x < 0.62) {
      // Garbage.
      if (rnd() < 0.5) h.allocBytes(Math.floor(rnd() * 2000));
      else for (let k = 0; k < 8; k++) h.alloc(this.T);
    } else if (x < 0.64) {
      this.#pinOrRelease(i, rnd);
    } else {
      const r = h.getRef(a, i);
      this.#check(r, this.slots[i], `slot ${i}`);
      // Follow the chain a little: reads pages anywhere in the heap.
      let cur = r;
      let m = this.slots[i];
      for (let k = 0; k < 4 && cur !== null && m !== null; k++) {
        const nx = h.getRef(cur, 0);
        if ((nx === null) !== (m.next === null)) throw new Mismatch(`chain from slot ${i}`);
        cur = nx;
        m = m.next;
        if (cur !== null && h.getU32(cur, 0) !== m!.id) throw new Mismatch(`chain from slot ${i}: id`);
      }
    }
  }

  record(st: CycleStats): void {
    const s = this.stats;
    s.faults += st.faults;
    s.selfBuilt += st.pages.builtBySelf;
    s.pmdPages += st.pages.pmdBuilt;
    s.ebusy += st.ebusy;
    s.ebusyCopies += st.ebusyCopies;
    s.takeovers += st.takeovers;
    s.eagain += st.eagain;
    s.errors += st.errors;
    s.pagesMoved += st.pages.moved;
    s.pagesCopied += st.pages.copied;
  }
}

/** A fault for the next cycle of a heap, or none. */
function chooseFault(rnd: () => number, p: number, mode: ModeName, stallMs: number): { name: string; inject: InjectOptions; pin?: boolean } | null {
  if (mode === 'stw' || rnd() >= p) return null;
  const k = rnd();
  const page = 1 + Math.floor(rnd() * 40);
  if (k < 0.2 && mode === 'move') return { name: 'eagain', inject: { eagainEvery: 2 + Math.floor(rnd() * 4) } };
  if (k < 0.4) return { name: 'stall', inject: { delayAtPage: page, delayMs: stallMs * 3 } };
  if (k < 0.55) return { name: 'shortStall', inject: { delayAtPage: page, delayMs: Math.floor(stallMs / 3) } };
  if (k < 0.7) return { name: 'die', inject: { dieAtPage: page } };
  if (k < 0.78) return { name: 'markStall', inject: { markDelayAtObject: 1 + Math.floor(rnd() * 2000), markDelayMs: stallMs * 3 } };
  if (k < 0.82) return { name: 'markDie', inject: { markDieAtObject: 1 + Math.floor(rnd() * 2000) } };
  if (k < 0.85 && mode === 'move') return { name: 'fork', inject: { forkAtPage: page } };
  // One of the compaction pause's first kernel calls (mremap, UFFDIO_REGISTER) fails: the
  // pause undoes itself and the cycle ends with the error; the model must still match.
  if (k < 0.87) return { name: 'pauseFail', inject: { pauseFailAtCall: 1 + Math.floor(rnd() * 3) } };
  // The fault server holds a page it built (before / inside its install) past stallMs, with
  // the compactor held up a little so that a touch finds pages unbuilt.
  if (k < 0.9) return { name: 'faultHold', inject: { delayAtPage: page, delayMs: Math.floor(stallMs / 2), [rnd() < 0.5 ? 'faultHoldBuiltMs' : 'faultHoldInstallMs']: stallMs * 4 } };
  if (mode === 'move') return { name: 'ioUringPin', inject: {}, pin: true };
  return { name: 'die', inject: { dieAtPage: page } };
}

export interface SoakResult {
  args: Args;
  seconds: number;
  cycles: number;
  perMode: Record<string, { mode: string; fallbacks: readonly string[]; cycles: number } & Subject['stats'] & { verifyFailures: number; mismatches: number }>;
  faults: number;
  /** Pages the mutator's accessors built or installed themselves (self-service). */
  selfBuilt: number;
  /** Pages moved in as whole 2 MiB spans (hugePages, move mode). */
  pmdPages: number;
  fallbacks: { ebusy: number; ebusyCopies: number; takeovers: number; eagain: number; errors: number; modes: string[] };
  injected: Record<string, number>;
  verifyFailures: number;
  mismatches: number;
  problems: string[];
  resources: { before: Resources; during: Resources; after: Resources };
}

export async function soak(args: Args, log: (s: string) => void): Promise<SoakResult> {
  const rnd = rng(args.seed);
  const stallMs = args.stallMs;
  const before = resources();
  const t0 = performance.now();
  const capacity = args.heapMiB * 2 ** 20;
  // Live data: about a third of the heap (nodes ~48 bytes, payloads ~75 bytes on average).
  const slots = Math.max(64, Math.floor(capacity / 3 / 130));
  const subjects: Subject[] = [];
  for (const mode of args.modes) {
    const heap = await Heap.create({ ...heapOptionsOf(args.knobs), capacity, mode, stallMs, dontFork: mode !== 'move' });
    subjects.push(new Subject(heap, slots));
    const knobs = knobLabel(args.knobs);
    log(`heap ${mode}: mode ${heap.mode}${heap.fallbacks.length ? ` (${heap.fallbacks.join('; ')})` : ''}, uffd ${heap.mode === 'stw' ? 'unused' : heap.capabilities.uffd.how}, ${args.heapMiB} MiB, ${slots} slots${knobs ? `, ${knobs}` : ''}`);
  }
  // Fill the graphs.
  for (const s of subjects) for (let k = 0; k < slots * 2; k++) s.step(() => (k < slots ? (k / slots) * 0.25 : rnd()));
  let during = resources();
  // --seconds of cycles, counted from here: heap creation and the fill took the whole of a
  // short run, which then checked nothing and passed (an audit: 0 cycles in 3.9 s, exit 0).
  // At least one cycle runs, whatever the deadline.
  const deadline = args.seconds > 0 ? performance.now() + args.seconds * 1000 : Infinity;
  let cycles = 0;
  let lastReport = t0;
  const pins: IoUringPin[] = [];
  while ((args.cycles === 0 || cycles < args.cycles) && (cycles === 0 || performance.now() < deadline)) {
    const s = subjects[cycles % subjects.length];
    const h = s.heap;
    const fault = chooseFault(rnd, args.faults, h.mode, stallMs);
    if (fault) {
      s.stats.injected[fault.name] = (s.stats.injected[fault.name] ?? 0) + 1;
      h.inject(fault.inject);
      if (fault.pin) {
        // Real pins on a few pages below the top: MOVE of those pages says EBUSY.
        const pages = Math.floor(h.usedBytes / PAGE_SIZE);
        for (let k = 0; k < 3 && pages > 2; k++) {
          const p = 1 + Math.floor(rnd() * (pages - 1));
          pins.push(IoUringPin.pin(h.address + p * PAGE_SIZE, PAGE_SIZE));
          s.stats.pins++;
        }
      }
    } else h.inject({});
    // An injected pause failure ends the cycle with ERR_INJECTED, the heap as it was.
    let aborted = false;
    const undone = (e: unknown): boolean => (e as { code?: string }).code === 'ERR_INJECTED' && fault?.name === 'pauseFail';
    try {
      // The cycle is requested and driven through safepoints while the mutator keeps
      // mutating: during marking and planning (the write barrier's case), then during
      // compaction (faults). stw: the first safepoint is the whole collection.
      h.requestCollection();
      // Past 2 x ops steps the mutator only waits: a marker starved on busy CPUs (an 'idle'
      // collector thread) had it allocate until the heap was full, and ERR_HEAP_FULL then
      // skipped the steps during compaction in every cycle (a full suite at load 3.5: no fault).
      const until = performance.now() + 10_000;
      for (let k = 0; performance.now() < until; k++) {
        if (k < 2 * args.ops) s.step(rnd);
        else await new Promise((r) => setTimeout(r, 1));
        if (k % 8 === 7 && h.safepoint() && (!h.cycleActive || h.cyclePhase === 'compacting')) break;
      }
      if (h.cycleActive && h.cyclePhase !== 'compacting') await h.idle(); // a marker too slow for the budget
      // The mutator runs during compaction: every operation may fault a page in.
      for (let k = 0; k < args.ops; k++) s.step(rnd);
    } catch (e) {
      if (e instanceof Mismatch) s.problem('model', e.message);
      else if ((e as { code?: string }).code === 'ERR_HEAP_FULL') s.stats.heapFull++;
      else if (undone(e)) aborted = true;
      else throw e;
    }
    // The pause may run here too (idle() drives the cycle to its end).
    const st = await h.idle().catch((e: unknown) => {
      if (!undone(e)) throw e;
      aborted = true;
      return undefined;
    });
    while (pins.length) pins.pop()!.release();
    if (aborted) s.stats.pausesUndone++;
    else s.record(st!); // (an aborted cycle has no statistics of its own)
    s.cycles++;
    cycles++;
    if (cycles === subjects.length * 3) during = resources(); // workers up, steady state
    if (s.cycles % args.check === 0) s.verifyAndCompare();
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const sec = (lastReport - t0) / 1000;
      log(`${sec.toFixed(0)} s: ${cycles} cycles, ${subjects.map((x) => `${x.heap.mode} ${x.cycles}`).join(', ')}; problems ${subjects.reduce((n, x) => n + x.verifyFailures + x.mismatches, 0)}`);
    }
  }
  // Final full check, then close everything and let the Worker threads exit.
  for (const s of subjects) {
    await s.heap.idle();
    s.verifyAndCompare();
  }
  const perMode: SoakResult['perMode'] = {};
  for (const s of subjects) {
    perMode[s.heap.requestedMode] = { mode: s.heap.mode, fallbacks: s.heap.fallbacks, cycles: s.cycles, ...s.stats, verifyFailures: s.verifyFailures, mismatches: s.mismatches };
    s.releasePins();
    await s.heap.close();
  }
  let after = resources();
  for (let i = 0; i < 40 && after.threads > before.threads; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = resources();
  }
  const sum = (f: (s: Subject) => number): number => subjects.reduce((n, s) => n + f(s), 0);
  const injected: Record<string, number> = {};
  for (const s of subjects) for (const [k, v] of Object.entries(s.stats.injected)) injected[k] = (injected[k] ?? 0) + v;
  return {
    args,
    seconds: (performance.now() - t0) / 1000,
    cycles,
    perMode,
    faults: sum((s) => s.stats.faults),
    selfBuilt: sum((s) => s.stats.selfBuilt),
    pmdPages: sum((s) => s.stats.pmdPages),
    fallbacks: {
      ebusy: sum((s) => s.stats.ebusy),
      ebusyCopies: sum((s) => s.stats.ebusyCopies),
      takeovers: sum((s) => s.stats.takeovers),
      eagain: sum((s) => s.stats.eagain),
      errors: sum((s) => s.stats.errors),
      modes: subjects.flatMap((s) => s.heap.fallbacks),
    },
    injected,
    verifyFailures: sum((s) => s.verifyFailures),
    mismatches: sum((s) => s.mismatches),
    problems: subjects.flatMap((s) => s.firstProblems),
    resources: { before, during, after },
  };
}

export async function main(v: Values): Promise<void> {
  const args = toArgs(v);
  const log = (s: string): void => void process.stderr.write(`[soak] ${s}\n`);
  let r: SoakResult;
  try {
    r = await soak(args, log);
  } catch (e) {
    // The heap refused the options (stallMs out of range, largeObjectBytes over the heap, a
    // kernel errno): the CLI says so in one line with its code, as every command does.
    if (isMoveGcError(e)) throw e;
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 2;
    return;
  }
  const f = r.fallbacks;
  const lines = [
    `${r.cycles} cycles in ${r.seconds.toFixed(1)} s (${Object.values(r.perMode).map((m) => `${m.mode} ${m.cycles}`).join(', ')})`,
    `page faults served: ${r.faults}; pages built by the mutator's accessors: ${r.selfBuilt}; pages moved ${Object.values(r.perMode).reduce((n, m) => n + m.pagesMoved, 0)} (in 2 MiB spans: ${r.pmdPages}), copied ${Object.values(r.perMode).reduce((n, m) => n + m.pagesCopied, 0)}`,
    `fallbacks: EBUSY ${f.ebusy} (pages copied for it ${f.ebusyCopies}), takeovers ${f.takeovers}, EAGAIN ${f.eagain}, other MOVE errors ${f.errors}, mode fallbacks ${f.modes.length ? f.modes.join('; ') : 'none'}`,
    `objects pinned with heap.pin: ${Object.values(r.perMode).reduce((n, m) => n + m.heapPins, 0)}; io_uring pins behind the heap's back: ${Object.values(r.perMode).reduce((n, m) => n + m.pins, 0)}`,
    `injected: ${Object.entries(r.injected).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `verifier failures: ${r.verifyFailures}; model mismatches: ${r.mismatches}`,
    `fds ${r.resources.before.fds} -> ${r.resources.after.fds} (running: ${r.resources.during.fds}); heap mappings ${r.resources.before.heapMaps} -> ${r.resources.after.heapMaps} (running: ${r.resources.during.heapMaps}); all mappings ${r.resources.before.maps} -> ${r.resources.after.maps} (running: ${r.resources.during.maps}; V8 and malloc pools included); threads ${r.resources.before.threads} -> ${r.resources.after.threads} (running: ${r.resources.during.threads})`,
    ...r.problems.map((p) => `PROBLEM ${p}`),
  ];
  for (const l of lines) log(l);
  if (args.json) process.stdout.write(JSON.stringify(r) + '\n');
  process.exitCode = r.verifyFailures + r.mismatches > 0 ? 1 : 0;
}

runWhenMain(import.meta.url, ['soak']);
