/**
 * A guard for tests whose failure can be a thread blocked in the kernel for good (a heap page
 * nobody will install: the accessor's fault waits forever while the fault server stays alive,
 * so the heap's watchdog stays silent). vitest's timeouts run on that blocked thread and never
 * fire, and the run would hang. A Worker watches a heartbeat the test beats; after `seconds`
 * without one it names what the test was doing on stderr and kills the process, so the file
 * fails instead of hanging the run.
 */
import { Worker } from 'node:worker_threads';

const WATCHER = `
const fs = require('node:fs');
const { workerData } = require('node:worker_threads');
const hb = new Int32Array(workerData.sab, 0, 2);
const label = new Uint8Array(workerData.sab, 8);
setInterval(() => {
  const last = Atomics.load(hb, 0);
  if (last === 0 || Atomics.load(hb, 1) === 1) return;
  if (Math.floor(Date.now() / 1000) - last > workerData.seconds) {
    const what = Buffer.from(label).toString('utf8').replace(/\\0[^]*$/, '');
    fs.writeSync(2, 'hang guard: no progress for ' + workerData.seconds + ' s in ' + what + ': killing the test process\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, 1000);
`;

export interface HangGuard {
  /** The test made progress; `what` names where it is (for the message). */
  beat(what: string): void;
  /** Not watching until the next beat (e.g. between tests). */
  pause(): void;
}

export function hangGuard(seconds: number): HangGuard {
  const sab = new SharedArrayBuffer(8 + 256);
  const hb = new Int32Array(sab, 0, 2);
  const label = new Uint8Array(sab, 8);
  const enc = new TextEncoder();
  let lastWhat = '';
  new Worker(WATCHER, { eval: true, workerData: { sab, seconds } }).unref();
  return {
    beat(what: string): void {
      if (what !== lastWhat) {
        label.fill(0);
        label.set(enc.encode(what).subarray(0, label.length - 1));
        lastWhat = what;
      }
      Atomics.store(hb, 1, 0);
      Atomics.store(hb, 0, Math.floor(Date.now() / 1000));
    },
    pause(): void {
      Atomics.store(hb, 1, 1);
    },
  };
}
