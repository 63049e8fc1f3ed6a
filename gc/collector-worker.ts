/**
 * Entry of the collector's Worker threads, one per role (see threads.ts):
 *  - compactor: waits for a cycle, runs it, reports done (compact.ts);
 *  - fault: serves userfaultfd faults for the heap's whole life, and stands by for the
 *    compactor (fault.ts);
 *  - marker: marks concurrently and plans (marker.ts).
 * Both share the heap's plan and page states through SharedArrayBuffers and reach the heap
 * and from-space through their own views over the same mappings.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { runMarker } from './marker.js';
import { ROLES, type RoleName } from './threads.js';
import type { CollectorPolicyName } from './options.js';
import { Builders } from './builders.js';
import { compactCycle } from './compact.js';
import { serveFaults } from './fault.js';
import { Installer } from './install.js';
import { mappedView } from './memory.js';
import { native, PAGE_SIZE } from './native.js';
import { Ctl, Phase, Shared, releaseForkedChild, sleepSync, type SharedDescriptor } from './shared.js';
import { Userfaultfd } from './uffd.js';

export interface WorkerInit {
  role: RoleName;
  shared: SharedDescriptor;
  stallMs: number;
  /** This thread's scheduling class (options.collectorPolicy; threads.ts decides per role). */
  policy: CollectorPolicyName;
  /** The marker's job port (marker.ts). */
  port?: MessagePort;
}

/** Thread names (15 bytes at most: the kernel's limit). */
const THREAD_NAMES: Record<RoleName, string> = { compactor: 'movegc-compact', fault: 'movegc-fault', marker: 'movegc-marker' };

const init = workerData as WorkerInit;
const sh = new Shared(init.shared);
const port = parentPort!;
const warn = (msg: string, data: Record<string, unknown>): void => port.postMessage({ type: 'warn', role: init.role, msg, data });
const uffd = Userfaultfd.adopt(sh.d.uffdFd, sh.d.uffdFeatures);
const from = new Uint32Array(mappedView(sh.d.fromAddress, sh.d.capacity + sh.d.fromExtraPages * PAGE_SIZE));
const b = new Builders(sh, from, new Installer(sh, uffd, warn), init.role);

// Set before the first job, for the thread's whole life (its replacement sets it again). The
// name tells the collector's threads from V8's and libuv's (all "node") in top -H, ps -L, perf.
native.setThreadName(THREAD_NAMES[init.role]);
if (init.policy !== 'normal') native.setThreadPolicy(init.policy);

// Initialized (modules loaded, views made): the heap's start waits for this, so a thread
// slow to load on a busy machine is not taken for a stalled one. Its thread id lets the heap
// make it normal again to terminate it (threads.ts).
if (Atomics.load(sh.ctl, Ctl.INJECT_START_EXIT) !== 0) process.exit(0);
port.postMessage({ type: 'ready', tid: native.threadId() });

// A thread that dies of an exception says so in its heartbeat at once: its Worker's 'error'
// event waits for the heap thread's event loop (heartbeat.ts DEAD).
try {
  if (init.role === 'fault') {
    serveFaults(b, uffd, init.stallMs, {
      onDie: (): never => {
        throw new Error('injected: fault server killed mid-serve');
      },
      onDelay: (ms: number) => sleepSync(ms),
    });
  } else if (init.role === 'marker') {
    const heap = new Uint32Array(mappedView(sh.d.heapAddress, sh.d.capacity));
    runMarker(b, heap, init.port!, {
      onDelay: (ms: number) => sleepSync(ms),
      onDie: (): never => {
        throw new Error('injected: marker killed mid-marking');
      },
      onStandIn: () => warn('the compactor and the fault server are both gone: the marker installs what is left of the cycle', { cycle: Atomics.load(sh.ctl, Ctl.CYCLE) }),
    }, init.stallMs);
  } else {
    const hooks = {
      onDelay: (ms: number) => sleepSync(ms),
      onDie: (): never => {
        throw new Error('injected: compactor killed mid-cycle');
      },
      onFork: () => {
        // Published in shared memory by the call itself: if this thread is terminated (stalled,
        // even while it forks), the heap reaps the child.
        native.pin.forkHold(sh.ctl, Ctl.FORK_PID, Ctl.FORK_FD);
      },
    };
    let seen = 0;
    while (!Atomics.load(sh.ctl, Ctl.STOP)) {
      Atomics.wait(sh.ctl, Ctl.CYCLE, seen, 200);
      const c = Atomics.load(sh.ctl, Ctl.CYCLE);
      if (c === seen) continue;
      seen = c;
      if (Atomics.load(sh.ctl, Ctl.PHASE) !== Phase.COMPACTING) continue;
      Atomics.store(sh.ctl, Ctl.COMPACTOR_IN, c);
      if (Atomics.load(sh.ctl, Ctl.CLOSING_CYCLE) === c || Atomics.load(sh.ctl, Ctl.CYCLE) !== c) {
        // Every page was installed without us and the heap is finishing the cycle: walking it
        // now could overlap the next cycle's plan with this one's recycling state. Or cycle c
        // ended before we said we were in, and others began (descheduled between the two
        // loads above): a cycle with no page overwrites CLOSING_CYCLE with its own number, and
        // a walk that started on its empty plan would release from-space under the next one.
        Atomics.store(sh.ctl, Ctl.COMPACTOR_IN, 0);
        continue;
      }
      try {
        compactCycle(b, hooks);
        Atomics.store(sh.ctl, Ctl.COMPACTOR_DONE, c);
      } finally {
        Atomics.store(sh.ctl, Ctl.COMPACTOR_IN, 0);
        releaseForkedChild(sh);
      }
      port.postMessage({ type: 'done', cycle: c });
    }
  }
} catch (e) {
  sh.hb.died(ROLES[init.role].heartbeat);
  throw e;
}
