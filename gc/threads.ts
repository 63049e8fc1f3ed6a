/**
 * The collector's threads, one table of roles. Each role is a Worker running
 * collector-worker.ts; each publishes a heartbeat in the clock block, and each has a stand-in
 * when it is stalled or dead (a heartbeat older than stallMs, or its Worker gone):
 *
 *  - compactor: builds and installs every page of a cycle; stand-ins: the fault server, then
 *    the mutator finishing the cycle (cycle.ts);
 *  - fault: serves userfaultfd faults; stand-in: none can serve a fault for a blocked thread,
 *    so it is replaced once found dead, which the mutator's thread does between its calls and
 *    cannot do while it is blocked in a fault. That fault is woken by the install of its page:
 *    the compactor's walk, or the marker standing in for both (marker.ts); with neither (both
 *    dead, marking in the pause), the watchdog ends the process rather than hang (watchdog.ts);
 *  - marker: concurrent marking and planning; stand-in: the mutator, which marks or plans in
 *    the pause instead.
 * Workers are unref'd: a heap the program forgot to close does not keep the process alive.
 */
import fs from 'node:fs';
import os from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { Ctl } from './control.js';
import { Role as Hb, WatchdogWord, type RoleId } from './heartbeat.js';
import type { HeapLogger as Logger } from './log.js';
import { CollectorPolicy, Marking, type CollectorPolicyName, type MarkingName } from './options.js';
import { Mode, type ModeName } from './modes.js';
import { releaseForkedChild, type Shared } from './shared.js';
import { ErrorCode, MoveGcError, fromNative, isMoveGcError, messageOf } from './errors.js';
import { native } from './native.js';
import type { WorkerInit } from './collector-worker.js';

export const Role = { COMPACTOR: 'compactor', FAULT: 'fault', MARKER: 'marker' } as const;
export type RoleName = (typeof Role)[keyof typeof Role];

interface RoleSpec {
  /** Its heartbeat word (heartbeat.ts). */
  heartbeat: RoleId;
  /** Runs in the collectorPolicy's scheduling class (options.ts); if not, always normal. */
  background: boolean;
  /** Cleans up what a terminated thread of this role leaves in shared memory. */
  afterTerminate(sh: Shared): void;
}

/** The collector's threads for a heap: none in stw (its pauses do everything), the marker only with concurrent marking. */
export function collectorRoles(mode: ModeName, marking: MarkingName): RoleName[] {
  if (mode === Mode.STW) return [];
  return marking === Marking.CONCURRENT ? [Role.FAULT, Role.COMPACTOR, Role.MARKER] : [Role.FAULT, Role.COMPACTOR];
}

export const ROLES: Readonly<Record<RoleName, RoleSpec>> = {
  compactor: {
    heartbeat: Hb.COMPACTOR,
    background: true,
    afterTerminate: (sh) => {
      Atomics.store(sh.ctl, Ctl.COMPACTOR_IN, 0);
      releaseForkedChild(sh); // a terminated thread runs no finally: reap its child here
    },
  },
  fault: {
    heartbeat: Hb.FAULT,
    background: false,
    afterTerminate: (sh) => {
      Atomics.store(sh.ctl, Ctl.FAULTS_IN_FLIGHT, 0); // its faults die with it
      Atomics.store(sh.ctl, Ctl.FAULT_INSTALL_IN, 0); // and so does an install it was about to make
      // Faults it had read are woken, as a dying server wakes its own (fault.ts): their threads
      // fault again, pending for whoever serves next, and seen by the watchdog meanwhile.
      Atomics.store(sh.hb.words, WatchdogWord.HELD_FAULT, 0);
      try {
        if (sh.d.uffdFd >= 0) native.uffd.wake(sh.d.uffdFd, sh.d.heapAddress, sh.d.capacity);
      } catch {
        // the descriptor is closing: nobody is left to wake
      }
    },
  },
  marker: { heartbeat: Hb.MARKER, background: true, afterTerminate: () => {} },
};

export class CollectorThreads {
  readonly #sh: Shared;
  readonly #stallMs: number;
  readonly #policy: CollectorPolicyName;
  readonly #log: Logger;
  readonly #roles: readonly RoleName[];
  readonly #workers = new Map<RoleName, Worker>();
  readonly #dead = new Set<RoleName>();
  readonly #reportedDead = new WeakSet<Worker>();
  readonly #replacing = new Map<RoleName, Promise<void>>();
  /** Each Worker's thread id, from its 'ready' (to make a stalled idle thread normal: #replace). */
  readonly #tids = new WeakMap<Worker, number>();
  /** The thread id of each role's thread under termination, until its successor is spawned (hasLeft). */
  readonly #leaving = new Map<RoleName, number>();
  /** The heap's end of the marker's job port (marker.ts). */
  markerPort: MessagePort | null = null;
  /** Called when the compactor reports a walk done (the cycle may be finalized). */
  onCompactorDone: () => void = () => {};
  closed = false;

  constructor(sh: Shared, stallMs: number, log: Logger, roles: readonly RoleName[], policy: CollectorPolicyName = CollectorPolicy.NORMAL) {
    this.#sh = sh;
    this.#stallMs = stallMs;
    this.#policy = policy;
    this.#log = log;
    this.#roles = roles;
  }

  has(role: RoleName): boolean {
    return this.#roles.includes(role);
  }

  async start(): Promise<void> {
    for (const r of this.#roles) this.#sh.hb.beat(ROLES[r].heartbeat);
    await Promise.all(this.#roles.map((r) => this.#spawn(r)));
  }

  /** Dead: its Worker exited or threw. */
  isDead(role: RoleName): boolean {
    return this.#dead.has(role);
  }

  /** Stale: silent (heartbeat older than stallMs), or dead. */
  isStale(role: RoleName): boolean {
    return this.#dead.has(role) || this.#sh.hb.isStale(ROLES[role].heartbeat, this.#stallMs);
  }

  /**
   * A thread of `role` is there to do its work now: not stale (nor dead). One being replaced
   * was stale or dead to be replaced, and stays so until its successor beats.
   */
  serving(role: RoleName): boolean {
    return this.has(role) && !this.isStale(role);
  }

  /**
   * The thread of `role` under termination (replace) has exited: its successor does not exist
   * yet. The Worker's 'exit' comes through the event loop, which a frame loop that never
   * yields never reaches; the kernel drops an exited thread at once (tgkill then says ESRCH,
   * with or without procfs).
   */
  hasLeft(role: RoleName): boolean {
    const tid = this.#leaving.get(role);
    return tid !== undefined && tid > 0 && !native.threadAlive(tid);
  }

  /**
   * Cleans up what the thread of `role` under termination left in shared memory once it has
   * exited (hasLeft), without the event loop; true if it has. Its replacement cleans up
   * again when the event loop gets to it (harmless: its successor does not exist yet).
   */
  reapLeft(role: RoleName): boolean {
    if (!this.hasLeft(role)) return false;
    ROLES[role].afterTerminate(this.#sh);
    return true;
  }

  /** Records a death found through shared memory before the Worker's 'error' event arrived. */
  reportDead(role: RoleName, data: Record<string, unknown>): void {
    this.#dead.add(role);
    const w = this.#workers.get(role);
    if (w) this.#reportedDead.add(w);
    this.#log.error({ role, ...data }, 'collector thread died');
  }

  #spawn(role: RoleName): Promise<void> {
    let port: MessagePort | undefined;
    if (role === Role.MARKER) {
      const ch = new MessageChannel();
      this.markerPort?.close();
      this.markerPort = ch.port1;
      this.markerPort.unref();
      port = ch.port2;
    }
    const init: WorkerInit = { role, shared: this.#sh.d, stallMs: this.#stallMs, policy: this.#policyOf(role), port };
    let w: Worker;
    try {
      w = new Worker(new URL('./collector-worker.js', import.meta.url), { workerData: init, transferList: port ? [port] : [], execArgv: workerExecArgv() });
    } catch (e) {
      port?.close();
      return Promise.reject(threadStartError(role, e));
    }
    this.#workers.set(role, w);
    this.#dead.delete(role);
    let ready: () => void = () => {};
    w.on('message', (m: { type: string; msg?: string; data?: Record<string, unknown>; role?: string; tid?: number }) => {
      if (m.type === 'warn') this.#log.warn({ ...m.data, thread: m.role }, m.msg ?? '');
      else if (m.type === 'done') this.onCompactorDone();
      else if (m.type === 'ready') {
        this.#tids.set(w, m.tid ?? 0);
        ready();
      }
    });
    w.on('error', (e) => {
      if (this.#workers.get(role) === w) this.#dead.add(role);
      if (this.#reportedDead.has(w)) return; // found dead through shared memory first
      this.#reportedDead.add(w);
      this.#log.error({ role, err: e }, 'collector thread died');
    });
    w.on('exit', () => {
      if (this.#workers.get(role) !== w) return; // a replaced thread: its successor runs
      this.#dead.add(role);
      this.#workers.delete(role);
    });
    // Referenced until it is ready (the caller awaits that), then unref'd, after every
    // listener: adding a 'message' listener refs a Worker again.
    return new Promise((resolve, reject) => {
      let settled = false;
      ready = () => {
        if (settled) return;
        settled = true;
        this.#sh.hb.beat(ROLES[role].heartbeat);
        w.unref();
        resolve();
      };
      const fail = (e: MoveGcError): void => {
        if (settled) return;
        settled = true;
        reject(e);
      };
      w.once('error', (e) => fail(threadStartError(role, e)));
      // A thread that ends before it is ready without an error (a process.exit in it) would
      // otherwise leave the caller waiting forever.
      w.once('exit', (code) => fail(new MoveGcError(ErrorCode.COLLECTOR_FAILED, `the collector's ${role} thread exited (code ${code}) before it was ready`)));
    });
  }

  /**
   * Terminates a stalled or dead thread and starts its successor; a replacement of the role
   * already under way is joined, not repeated (two would race to terminate each other's
   * successor). `onTerminated` runs once the old thread is gone and before its successor
   * exists (nothing handed to the role between the two can reach either: see MarkerLink.lost).
   */
  replace(role: RoleName, onTerminated?: () => void): Promise<void> {
    const under = this.#replacing.get(role);
    if (under) return under;
    const p = this.#replace(role, onTerminated).finally(() => this.#replacing.delete(role));
    this.#replacing.set(role, p);
    return p;
  }

  /**
   * Replaces the compaction threads found dead, at the end of every cycle (whichever way it
   * ends: awaited, a safepoint, the event loop; only the first awaits this), so that the next
   * cycle never starts without them. A thread whose heartbeat says it died counts as dead: its
   * Worker's 'error' event may not have arrived yet. The marker's replacement is MarkerLink's,
   * bound to its jobs. Never rejects.
   */
  replaceDead(): Promise<void> {
    const cycle = Atomics.load(this.#sh.ctl, Ctl.CYCLE);
    const roles = [Role.FAULT, Role.COMPACTOR].filter((r) => this.has(r));
    for (const r of roles) if (!this.isDead(r) && this.#sh.hb.isDead(ROLES[r].heartbeat)) this.reportDead(r, { cycle });
    const dead = roles.filter((r) => !this.closed && this.isDead(r));
    return Promise.all(dead.map((r) => this.replace(r).catch((e) => this.#log.error({ role: r, err: e }, 'replacing a dead collector thread failed')))).then(() => {});
  }

  async #replace(role: RoleName, onTerminated?: () => void): Promise<void> {
    const w = this.#workers.get(role);
    this.#log.warn({ role }, 'replacing a stalled or dead collector thread');
    if (w) {
      // A SCHED_IDLE thread on a saturated machine gets no CPU, not even to be terminated:
      // it is made normal first (its successor is idle again).
      this.#makeNormal(role, w);
      this.#leaving.set(role, this.#tids.get(w) ?? 0);
      try {
        await this.#terminate(role, w);
      } finally {
        this.#leaving.delete(role);
      }
    }
    ROLES[role].afterTerminate(this.#sh);
    onTerminated?.();
    this.#sh.hb.beat(ROLES[role].heartbeat);
    if (this.closed) return;
    try {
      await this.#spawn(role);
    } catch (e) {
      // The successor died before it was ready (its Worker's 'error' can arrive before its
      // 'ready': Node orders neither). It stands as dead, and is replaced in turn where dead
      // threads are looked for (the end of a cycle); the caller's cycle goes on meanwhile.
      this.#log.error({ role, err: e }, 'a replacement collector thread died at once');
    }
  }

  /** The scheduling class a role's thread runs in (only background roles take collectorPolicy). */
  #policyOf(role: RoleName): CollectorPolicyName {
    return ROLES[role].background ? this.#policy : CollectorPolicy.NORMAL;
  }

  /** Puts a thread that runs idle back in the normal class (see #replace and close; a batch thread gets its share of CPU). */
  #makeNormal(role: RoleName, w: Worker): void {
    if (this.#policyOf(role) !== CollectorPolicy.IDLE) return;
    const tid = this.#tids.get(w);
    if (!tid) return; // never ready: still in its normal class
    try {
      native.setThreadPolicy(CollectorPolicy.NORMAL, tid);
    } catch (e) {
      // ESRCH: it has exited already. Anything else: terminate() waits as it would have.
      if ((e as MoveGcError).code !== 'ESRCH') this.#log.warn({ err: e }, 'could not make a stalled idle thread normal');
    }
  }

  /**
   * Stops every thread (they watch Ctl.STOP) and terminates any that has not exited after
   * EXIT_WAIT_MS. Bounded: a thread that has not exited EXIT_WAIT_MS after its termination
   * (stopped by a debugger, or stuck in a system call, where V8 cannot terminate it) is left
   * running and returned in `stuck`. It may still touch the heap's mappings and descriptors
   * when it runs again, so the caller keeps them until `gone` (every such thread exited).
   */
  async close(): Promise<{ stuck: StuckThread[]; gone: Promise<void> }> {
    this.closed = true;
    Atomics.store(this.#sh.ctl, Ctl.STOP, 1);
    for (const i of [Ctl.CYCLE, Ctl.MARK_REQUEST, Ctl.LOG_TAIL]) Atomics.notify(this.#sh.ctl, i);
    const stuck: StuckThread[] = [];
    const left: Promise<void>[] = [];
    await Promise.all(
      [...this.#workers.entries()].map(async ([role, w]) => {
        // An idle thread on a saturated machine would not run to see STOP (measured: 10.7 s
        // to close, 2 busy loops on its CPU): made normal, it exits at once.
        this.#makeNormal(role, w);
        const exited = new Promise<void>((r) => w.once('exit', () => r()));
        if (await settlesWithin(exited, EXIT_WAIT_MS)) return;
        void w.terminate();
        if (await settlesWithin(exited, EXIT_WAIT_MS)) return;
        const tid = this.#tids.get(w) ?? 0;
        stuck.push({ role, tid, state: threadState(tid) });
        left.push(exited);
      }),
    );
    this.markerPort?.close();
    return { stuck, gone: Promise.all(left).then(() => {}) };
  }

  /** Terminates `w`, saying once after EXIT_WAIT_MS what holds it (a thread stopped by a debugger waits for it). */
  async #terminate(role: RoleName, w: Worker): Promise<void> {
    const done = w.terminate();
    if (await settlesWithin(done, EXIT_WAIT_MS)) return;
    const tid = this.#tids.get(w) ?? 0;
    this.#log.warn({ role, tid, state: threadState(tid) }, 'a stalled collector thread does not exit: its work waits for it');
    await done;
  }
}

/**
 * The node options for a collector thread: inherited (undefined), unless the process was
 * started with --input-type, which a Worker started from a file refuses
 * (ERR_INPUT_TYPE_NOT_ALLOWED), so a program run as `node --input-type=module -e ...` could
 * create no heap; then none. Not the process's list less that one: a Worker given a list
 * refuses the process-wide V8 flags in it (--expose-gc), which it accepts inherited.
 */
function workerExecArgv(): string[] | undefined {
  return process.execArgv.some((a) => a === '--input-type' || a.startsWith('--input-type=')) ? [] : undefined;
}

/** How long close() waits for a thread to exit, and then for its termination. */
export const EXIT_WAIT_MS = 2000;

/** A collector thread that close() left running (see CollectorThreads.close). */
export interface StuckThread {
  role: RoleName;
  tid: number;
  /** Its scheduling state from /proc (e.g. 't (tracing stop)': a debugger holds it). */
  state: string;
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

const STATES: Record<string, string> = { R: 'running', S: 'sleeping', D: 'uninterruptible sleep', T: 'stopped', t: 'tracing stop', Z: 'zombie', X: 'dead' };

/** A thread's state as /proc/self/task/<tid>/stat says it ('t (tracing stop)'), or 'unknown'. */
export function threadState(tid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const c = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return `${c} (${STATES[c] ?? 'other'})`;
  } catch {
    return 'unknown';
  }
}

/**
 * Why a collector thread did not start, as a MoveGcError. Node says a thread the system refused
 * (RLIMIT_NPROC, a pids cgroup, no memory for its stack) with its own codes
 * (ERR_WORKER_INIT_FAILED with the errno as the message, or the errno name as the code): the
 * errno name becomes the code, as for any other refusal of the kernel's.
 */
export function threadStartError(role: RoleName, e: unknown): MoveGcError {
  if (isMoveGcError(e)) return e;
  const msg = messageOf(e);
  const code = (e as { code?: unknown })?.code;
  // Node names the errno as the code, the message, or the end of ERR_WORKER_INIT_FAILED's
  // message ('Worker initialization failure: EMFILE', descriptors out as the thread starts).
  const tail = /:\s*(E[A-Z0-9]+)\s*$/.exec(msg)?.[1];
  const errno = [msg, code, tail].find((c): c is string => typeof c === 'string' && /^E[A-Z0-9]+$/.test(c) && typeof os.constants.errno[c as keyof typeof os.constants.errno] === 'number');
  if (!errno) return fromNative(e, `starting the collector's ${role} thread`);
  const hint = errno === 'EAGAIN' ? ' [the process or user is at its thread limit: RLIMIT_NPROC, a pids cgroup, or no memory for a stack]' : '';
  // The thread's creation says EAGAIN; anything else came from the thread once it ran (EMFILE
  // opening a module of its own): named by its own syscall, if it gave one.
  const own = (e as { syscall?: unknown })?.syscall;
  return new MoveGcError(errno, `starting the collector's ${role} thread: ${msg}${hint}`, {
    errno: os.constants.errno[errno as keyof typeof os.constants.errno],
    syscall: errno === 'EAGAIN' ? 'pthread_create' : typeof own === 'string' ? own : undefined,
    cause: e,
  });
}

/**
 * Holds the process open while `p` is pending. The collector threads are unref'd (a heap the
 * program forgot to close must not keep it alive), and a pending Atomics.waitAsync does not
 * hold the event loop either: without this, a program awaiting its heap could exit mid-await.
 */
export function keepAlive<T>(p: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30);
  return p.finally(() => clearInterval(timer));
}
