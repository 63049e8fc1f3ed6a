/**
 * The benchmark's watchdog (a Worker). The mutator runs on the main thread and may block inside
 * the kernel on a fault that the collector never serves (or re-fault forever on a page the
 * collector believes installed): then no JavaScript on the main thread can run again. This
 * thread watches the mutator's progress counter; if it stops moving for `stuckMs` while a
 * cycle is being measured, it prints the collector's counters (twice, a second apart: a fault
 * count that keeps climbing means a re-fault livelock, a still one means a lost fault) and ends
 * the process with SIGTERM, so that a collector bug fails the benchmark instead of hanging it.
 *
 * Shared words (Int32Array over `beat`): 0 = measuring (1) or not, 1 = mutator progress,
 * 2 = stop, 3 = rep number.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Ctl } from '../gc/shared.js';

export interface WatchdogData {
  beat: SharedArrayBuffer;
  stuckMs: number;
}

const CTL_NAMES: string[] = [];
for (const [name, i] of Object.entries(Ctl)) if (name !== 'SIZE') CTL_NAMES[i] = name;

const d = workerData as WatchdogData;
const beat = new Int32Array(d.beat);
let ctl: Int32Array | null = null;
let label = '';
parentPort!.on('message', (m: { ctl?: SharedArrayBuffer; label?: string }) => {
  ctl = m.ctl ? new Int32Array(m.ctl) : null;
  label = m.label ?? '';
});

const dump = (): string => (ctl ? CTL_NAMES.map((n, i) => (n ? `${n}=${Atomics.load(ctl!, i)}` : '')).filter(Boolean).join(' ') : '(no counters)');

async function watch(): Promise<void> {
  let last = -1;
  let since = Date.now();
  while (Atomics.load(beat, 2) === 0) {
    await new Promise((r) => setTimeout(r, 250));
    const p = Atomics.load(beat, 1);
    if (Atomics.load(beat, 0) === 0 || p !== last) {
      last = p;
      since = Date.now();
      continue;
    }
    if (Date.now() - since > d.stuckMs) {
      const a = dump();
      await new Promise((r) => setTimeout(r, 1000));
      const b = dump();
      // fs.writeSync: a Worker's process.stderr goes through the main thread, which is blocked.
      fs.writeSync(
        2,
        `\nWATCHDOG: the mutator made no progress for ${((Date.now() - since) / 1000).toFixed(0)} s during ${label} ` +
          `(blocked in a fault the collector does not resolve).\n  counters:    ${a}\n  1 s later:   ${b}\nEnding the benchmark (SIGTERM).\n`,
      );
      process.kill(process.pid, 'SIGTERM');
      return;
    }
  }
}
void watch();
