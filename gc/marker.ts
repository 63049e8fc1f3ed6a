/**
 * The marker thread (ART CMC's concurrent MarkingPhase and PrepareForCompaction): a collector
 * Worker that traces the heap while the mutator runs, then computes the plan, so that the
 * mutator stops only for the marking pause (remark.ts) and the compaction pause (pause.ts).
 *
 * It takes jobs from the heap (MarkJob, payload through a MessagePort read synchronously):
 *  - MARK: clear the bitmaps (then say so: until then the barrier logs every store), trace
 *    from the roots snapshot, below the black-allocation boundary, consuming the
 *    write barrier's log (barrier.ts) as it goes; when nothing is left it says so (MARK_IDLE)
 *    and keeps consuming the log until the heap parks it (MARK_STOP -> MARK_PARKED) for the
 *    marking pause;
 *  - PLAN: plan.ts over the marked heap below the plan's top, and the next layout's object
 *    starts; the result goes back through the port.
 * It reads the heap through its own view: below the black boundary the mutator only writes
 * reference slots (the barrier covers those) and raw bytes; it never writes headers there.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { drainLog } from './barrier.js';
import { Clk, Ctl, MarkJob } from './control.js';
import { MoveGcError } from './errors.js';
import { fillBeating } from './bits.js';
import { Tracer, clearMarks } from './mark.js';
import { forwardObjectStarts, plan, type Plan } from './plan.js';
import { now, type Shared } from './shared.js';
import { Role } from './heartbeat.js';
import { injectedHold, type Builders } from './builders.js';
import { noInstaller, standIn } from './standin.js';

/**
 * Work (Tracer.drain: objects and slots scanned) between two looks at the stop word, the log
 * and the heartbeat: some 50-100 us, whatever the objects' sizes.
 */
const STEP = 8192;
/** How long an idle marker sleeps between looks at the log (the heap wakes it to stop). */
const IDLE_POLL_MS = 1;

export interface MarkPayload {
  job: typeof MarkJob.MARK;
  roots: Uint32Array;
  blackStart: number;
  typeCount: number;
  /** Which of shared.objects is the allocator's object-start bitmap (Tracer.allocStarts). */
  epoch: number;
}
export interface PlanPayload {
  job: typeof MarkJob.PLAN;
  topWord: number;
  pins: number[];
  denseThreshold: number;
  alignWords: number;
  /** Which of sh.objects receives the next layout's starts, and how much of it to clear first. */
  next: number;
  nextExtent: number;
}
export type MarkerJob = MarkPayload | PlanPayload;
/** A job as posted: its request number travels with it (see runMarker). */
export type MarkerMessage = MarkerJob & { req: number };
/** The marker's answer to request `req`. */
/** A plan's reply carries the mappings left under vm.max_map_count when it was made (map-count.ts). */
export type MarkerReply = { req: number } & ({ ok: true; plan?: Plan } | { ok: false; code: string; message: string });

export interface MarkerHooks {
  onDelay(ms: number): void;
  onDie(): never;
  /** It begins to stand in for compaction (standin.ts). */
  onStandIn(): void;
}

export function runMarker(b: Builders, heap: Uint32Array, port: MessagePort, hooks: MarkerHooks, stallMs: number): void {
  const sh = b.sh;
  // Injected (markHoldBuiltMs): standing in, a page held before its install.
  const hold = injectedHold(b, { built: Ctl.INJECT_MARK_HOLD_BUILT_MS }, (ms) => hooks.onDelay(ms));
  const idleWait = Math.max(1, Math.min(200, stallMs / 4)); // heartbeats well within stallMs
  const ctl = sh.ctl;
  // MARK_REQUEST only wakes this thread: each job carries its own number. The heap posts a job
  // before it bumps the word, so a thread that reads the word just before a bump can already
  // find the next job in its port; answering that job under the word's number answered the
  // wrong request (the heap then waited for its own forever: a hang the race fuzzer found
  // with a freshly replaced marker). A replacement finds only jobs posted to its own new port.
  let seen = 0;
  let standingIn = 0; // the cycle it last stood in for (said once per cycle)
  while (!Atomics.load(ctl, Ctl.STOP)) {
    sh.hb.beat(Role.MARKER);
    Atomics.wait(ctl, Ctl.MARK_REQUEST, seen, idleWait);
    seen = Atomics.load(ctl, Ctl.MARK_REQUEST);
    for (let m = receiveMessageOnPort(port); m && !Atomics.load(ctl, Ctl.STOP); m = receiveMessageOnPort(port)) answer(sh, heap, port, m.message as MarkerMessage, hooks);
    // Between jobs (none comes while a cycle compacts): the last stand-in of compaction.
    if (noInstaller(b, stallMs)) {
      const c = Atomics.load(ctl, Ctl.CYCLE);
      if (standingIn !== c) hooks.onStandIn();
      standingIn = c;
      standIn(b, stallMs, () => sh.hb.beat(Role.MARKER), hold);
    }
  }
}

function answer(sh: Shared, heap: Uint32Array, port: MessagePort, msg: MarkerMessage, hooks: MarkerHooks): void {
  const ctl = sh.ctl;
  const req = msg.req;
  let reply: MarkerReply = { req, ok: true };
  try {
    if (msg.job === MarkJob.MARK) markConcurrently(sh, heap, msg, hooks);
    else reply = { req, ok: true, plan: planConcurrently(sh, heap, msg) };
  } catch (e) {
    if ((e as Error)?.message?.startsWith('injected')) throw e; // the marker dies: the heap takes over
    reply = { req, ok: false, code: (e as MoveGcError)?.code ?? 'ERR_INTERNAL', message: (e as Error)?.message ?? String(e) };
  }
  port.postMessage(reply);
  Atomics.store(ctl, reply.ok ? Ctl.MARK_DONE : Ctl.MARK_FAILED, req);
  Atomics.notify(ctl, Ctl.MARK_DONE);
  Atomics.notify(ctl, Ctl.MARK_FAILED);
}

function markConcurrently(sh: Shared, heap: Uint32Array, job: MarkPayload, hooks: MarkerHooks): void {
  const ctl = sh.ctl;
  clearMarks(sh.starts, sh.live, undefined, () => sh.hb.beat(Role.MARKER));
  sh.hb.beat(Role.MARKER);
  Atomics.store(ctl, Ctl.MARK_CLEARED, 1);
  const t = new Tracer(heap, sh.types, job.typeCount, sh.starts, sh.live, job.blackStart, sh.objects[job.epoch]);
  const visit = (w: number): void => t.visit(w);
  let delayAt = Atomics.load(ctl, Ctl.INJECT_MARK_DELAY_AT);
  const dieAt = Atomics.load(ctl, Ctl.INJECT_MARK_DIE_AT);
  let logDelay = Atomics.load(ctl, Ctl.INJECT_MARK_LOG_DELAY_MS);
  let logged = 0;
  let busySince = now();
  let busy = 0;
  sh.clk[Clk.MARK_START] = busySince;
  for (const r of job.roots) t.visit(r);
  for (;;) {
    sh.hb.beat(Role.MARKER);
    if (Atomics.load(ctl, Ctl.MARK_STOP)) {
      // The heap asks us to stop once it has seen us idle, but we may have taken entries out of
      // the log since: they are grey on our stack now, where the remark (which drains only the
      // log) cannot find them. Trace them before parking; it is what the remark would trace.
      while (!t.drain(STEP)) sh.hb.beat(Role.MARKER);
      break;
    }
    if (delayAt > 0 && t.objects >= delayAt) {
      delayAt = 0;
      busy += now() - busySince;
      hooks.onDelay(Atomics.load(ctl, Ctl.INJECT_MARK_DELAY_MS));
      busySince = now();
    }
    if (dieAt > 0 && t.objects >= dieAt) hooks.onDie();
    if (!t.drain(STEP)) continue;
    const n = drainLog(sh.logRing, ctl, visit);
    logged += n;
    if (n > 0 && logDelay > 0) {
      // Widens the window in which the heap still reads MARK_IDLE as 1 (see the stop above).
      busy += now() - busySince;
      hooks.onDelay(logDelay);
      busySince = now();
      logDelay = 0;
    }
    if (n > 0) {
      Atomics.store(ctl, Ctl.MARK_IDLE, 0);
      continue;
    }
    // Nothing grey, nothing logged: the concurrent part is done until the mutator stores more.
    if (Atomics.load(ctl, Ctl.MARK_IDLE) === 0) {
      sh.clk[Clk.MARK_END] = now();
      Atomics.store(ctl, Ctl.MARK_IDLE, 1);
      Atomics.notify(ctl, Ctl.MARK_IDLE);
    }
    busy += now() - busySince;
    Atomics.wait(ctl, Ctl.LOG_TAIL, Atomics.load(ctl, Ctl.LOG_TAIL), IDLE_POLL_MS);
    busySince = now();
  }
  busy += now() - busySince;
  sh.clk[Clk.MARK_CPU] = busy;
  if (sh.clk[Clk.MARK_END] === 0) sh.clk[Clk.MARK_END] = now();
  sh.count(Ctl.MARK_OBJECTS, t.objects);
  sh.count(Ctl.MARK_WORDS, t.words);
  sh.count(Ctl.MARK_LOG_ENTRIES, logged);
  // Parked: the heap may now read and write the bitmaps itself (the marking pause).
  Atomics.store(ctl, Ctl.MARK_PARKED, 1);
  Atomics.notify(ctl, Ctl.MARK_PARKED);
}

function planConcurrently(sh: Shared, heap: Uint32Array, job: PlanPayload): Plan {
  const t0 = now();
  sh.clk[Clk.PLAN_START] = t0;
  const beat = (): void => sh.hb.beat(Role.MARKER);
  const p = plan(heap, sh.types, sh, { topWord: job.topWord, pinned: job.pins, denseThreshold: job.denseThreshold, alignWords: job.alignWords, beat });
  fillBeating(sh.objects[job.next], 0, 0, job.nextExtent, beat);
  forwardObjectStarts(sh, sh.starts, sh.objects[job.next], 0, p.oldTopAligned, beat);
  const t1 = now();
  sh.clk[Clk.PLAN_END] = t1;
  sh.clk[Clk.PLAN_CPU] = t1 - t0;
  return p;
}
