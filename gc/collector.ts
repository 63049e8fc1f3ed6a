/**
 * The heap's collector as the mutator's calls reach it: its threads (threads.ts), the phase
 * driver (cycle.ts) and the watchdog; starting and stopping them, and the calls that run or
 * await a cycle, whose errors leave as ours (errors.ts internal). Apart from Heap because none
 * of it is on the accessors' path and none of it reads the mutator's state but through the
 * MutatorState that Heap hands the driver.
 */
import { CycleDriver } from './cycle.js';
import type { CycleContext } from './cycle-state.js';
import { internal } from './errors.js';
import type { MarkingName } from './options.js';
import type { CycleStats } from './stats.js';
import { CollectorThreads, Role, collectorRoles, keepAlive } from './threads.js';
import { Watchdog } from './watchdog.js';

export class Collector {
  readonly #c: Omit<CycleContext, 'threads'>;
  readonly #threads: CollectorThreads;
  readonly #cycles: CycleDriver;
  /** The last resort for a fault nobody can serve (watchdog.ts). */
  #watchdog: Watchdog | null = null;
  /** A collect() call in progress; those made meanwhile, in order (collect). */
  #collecting = false;
  readonly #waiting: Array<() => void> = [];

  constructor(c: Omit<CycleContext, 'threads'>, marking: MarkingName) {
    this.#c = c;
    this.#threads = new CollectorThreads(c.sh, c.opts.stallMs, c.log, collectorRoles(c.mode, marking), c.opts.collectorPolicy);
    this.#cycles = new CycleDriver({ ...c, threads: this.#threads });
    // The mutator's accessors fault into the kernel only while a fault server will serve it (selfservice.ts).
    c.mut.selfService.serverUp = () => this.#threads.serving(Role.FAULT);
  }

  /** The threads, then the watchdog over the userfaultfd (when there is one). */
  async start(): Promise<void> {
    await this.#threads.start();
    const { sh, uffd, opts } = this.#c;
    if (uffd) this.#watchdog = Watchdog.start(sh, uffd.fd, opts.stallMs, this.#threads.has(Role.MARKER));
  }

  get active(): boolean {
    return this.#cycles.active;
  }
  get activeCycle(): number | undefined {
    return this.#cycles.activeCycle;
  }
  get phase(): string {
    return this.#cycles.phase;
  }
  get history(): readonly CycleStats[] {
    return this.#cycles.history;
  }

  /**
   * Heap.collect; `checkOpen` throws once close() was called. Calls run one at a time, in the
   * order they were made: a caller that starts a collection as each cycle ends (a logger hook
   * on 'cycle done' calling collect() or gc()) began its cycle inside the end a waiting call
   * was awaiting, before that call's continuation ran, every time, and the waiting call never
   * got a cycle of its own (an audit: 1000 cycles in 5 s, the program's gc() still waiting).
   * Queued now, it runs after the call already waiting. The first call starts its cycle
   * before it first yields, as before. A queued call that finds the heap closed (or lost)
   * refuses inside the try, so the call queued after it is still woken (an audit: checked
   * before it, the third and later calls never settled).
   */
  async collect(checkOpen: () => void): Promise<CycleStats> {
    const queued = this.#collecting;
    if (queued) await new Promise<void>((r) => this.#waiting.push(r));
    this.#collecting = true;
    try {
      if (queued) checkOpen();
      return await this.#collectNow(checkOpen);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#collecting = false;
    }
  }

  async #collectNow(checkOpen: () => void): Promise<CycleStats> {
    // With no cycle active the new one starts before this call first yields. Otherwise wait:
    // a racing collect() may start another meanwhile (loop), and close() called meanwhile
    // means no cycle starts after it (ERR_CLOSED).
    // A cycle begun since this call (requested meanwhile, e.g. as the last one ended) and not
    // yet flipped is driven to its flip instead of waited for (CycleDriver.adopt).
    const since = this.#cycles.begun;
    let st: CycleStats | null = null;
    while (this.#cycles.active) {
      try {
        st = await keepAlive(this.#cycles.adopt(since));
        if (st) break;
        await this.#cycles.finish();
      } catch (e) {
        throw internal(e, 'collect');
      }
      checkOpen();
    }
    if (!st) {
      try {
        st = await keepAlive(this.#cycles.collect());
      } catch (e) {
        throw internal(e, 'collect');
      }
    }
    // A copy: the end of the cycle goes on writing the driver's record (compaction, RSS, who
    // released from-space); one the caller froze or edited broke that end halfway.
    return structuredClone(st);
  }

  request(): boolean {
    try {
      return this.#cycles.request();
    } catch (e) {
      throw internal(e, 'requestCollection');
    }
  }

  safepoint(): boolean {
    try {
      return this.#cycles.safepoint();
    } catch (e) {
      throw internal(e, 'safepoint');
    }
  }

  /** Heap.idle: the active (or requested) cycle's end; the last cycle's statistics. */
  async idle(): Promise<CycleStats | undefined> {
    try {
      await this.#cycles.finish();
    } catch (e) {
      throw internal(e, 'idle');
    }
    const last = this.history[this.history.length - 1];
    return last === undefined ? undefined : structuredClone(last); // a copy: see Heap.history
  }

  /** Waits for the end of cycle `cycle` (not of one a racing call started); its statistics, if it finished. */
  async finished(cycle: number): Promise<CycleStats | undefined> {
    try {
      while ((this.#cycles.activeCycle ?? Infinity) <= cycle) await this.#cycles.finish();
      this.#cycles.throwEndError(); // it ended on the event loop, and failed there
    } catch (e) {
      throw internal(e, 'gc');
    }
    const st = this.#cycles.recordOf(cycle);
    return st === undefined ? undefined : structuredClone(st); // a copy: see Heap.history
  }

  /** Heap.close, first: the active cycle finished (a failure logged: closing goes on); one only requested is dropped. */
  async finishForClose(): Promise<void> {
    this.#cycles.dropRequest(); // requested, not begun (marking in the pause): not run for a heap being closed
    try {
      await this.#cycles.finish();
    } catch (e) {
      this.#c.log.error({ err: e }, 'finishing the active cycle on close failed');
    }
  }
  /** Heap.close, then: the threads and the watchdog stopped. Threads that did not exit come back in `stuck` (threads.ts close): the caller keeps the mappings until `gone`. */
  async stop(): ReturnType<CollectorThreads['close']> {
    const exited = await this.#threads.close();
    this.#watchdog?.stop(); // joined before the userfaultfd it polls is closed
    return exited;
  }
}
