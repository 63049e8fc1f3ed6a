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

export interface WatchdogData {
  beat: SharedArrayBuffer;
  stuckMs: number;
}

const d = workerData as WatchdogData;
const beat = new Int32Array(d.beat);
let ctl: Int32Array | null = null;
let names: string[] = [];
let label = '';
let stuckMs = d.stuckMs;
/** The bench's counters (a SharedArrayBuffer it refreshes from heap.progress()) and their names. */
parentPort!.on('message', (m: { ctl?: SharedArrayBuffer; names?: string[]; label?: string; stuckMs?: number }) => {
  ctl = m.ctl ? new Int32Array(m.ctl) : null;
  names = m.names ?? [];
  label = m.label ?? '';
  stuckMs = m.stuckMs ?? d.stuckMs;
});

const dump = (): string => (ctl ? names.map((n, i) => (i < ctl!.length ? `${n}=${Atomics.load(ctl!, i)}` : '')).filter(Boolean).join(' ') : '(no counters)');

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
    if (Date.now() - since > stuckMs) {
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
