// A fault-serving thread for test/binding.fault.test.ts: a worker_threads Worker that adopts the
// test's userfaultfd, reads missing-page faults in [dst, dst+length) and serves each one by
// UFFDIO_MOVE of the matching page of [src, src+length).
//
// workerData: { distUrl, fd, features, dst, src, length, faults, dontWake, wakeDelayMs, timeoutMs, shared }
//  - faults: how many faults to serve before exiting.
//  - dontWake: serve with UFFDIO_MOVE_MODE_DONTWAKE, sleep wakeDelayMs, then UFFDIO_WAKE.
//  - timeoutMs: bound on the whole loop. The faulting thread is blocked in the kernel and
//    nothing else can free it, so if this worker fails or times out it maps zero pages over
//    whatever is still missing (and wakes the range): the test then fails on contents instead
//    of hanging forever.
//  - shared: SharedArrayBuffer viewed as BigInt64Array, see SLOT below (readable by the test
//    once its faulting access has returned).
import { parentPort, workerData } from 'node:worker_threads';

const SLOT = { state: 0, served: 1, lastFault: 2, moveDoneAt: 3, wakeAt: 4, bytesMoved: 5 };
const STATE = { starting: 0n, ready: 1n, done: 2n, timedOut: 3n, failed: 4n };

const { distUrl, fd, features, dst, src, length, faults, dontWake, wakeDelayMs, timeoutMs, shared } = workerData;
const slots = new BigInt64Array(shared);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);

const { Userfaultfd, PAGE_SIZE } = await import(distUrl);
const uffd = Userfaultfd.adopt(fd, features);
const out = new Float64Array(16);
const deadline = Date.now() + timeoutMs;
let served = 0;
let error;

Atomics.store(slots, SLOT.state, STATE.ready);
parentPort.postMessage({ type: 'ready' });

try {
  while (served < faults && Date.now() < deadline) {
    const n = uffd.readFaults(out, 50);
    for (let i = 0; i < n; i++) {
      const page = out[i] - (out[i] % PAGE_SIZE);
      if (page < dst || page >= dst + length) continue;
      Atomics.store(slots, SLOT.lastFault, BigInt(out[i]));
      let moved;
      try {
        moved = uffd.moveOnce(page, src + (page - dst), PAGE_SIZE, { dontWake });
      } catch (e) {
        // The same page reported twice (a re-fault before the first wake): already served.
        if (e.code !== 'EEXIST') throw e;
        continue;
      }
      Atomics.store(slots, SLOT.moveDoneAt, process.hrtime.bigint());
      Atomics.add(slots, SLOT.bytesMoved, BigInt(moved));
      if (dontWake) {
        sleep(wakeDelayMs);
        Atomics.store(slots, SLOT.wakeAt, process.hrtime.bigint());
        uffd.wake(page, PAGE_SIZE);
      }
      served++;
      Atomics.store(slots, SLOT.served, BigInt(served));
    }
  }
} catch (e) {
  error = e;
}

if (served < faults) {
  // Free the faulting thread whatever went wrong: zero pages over every still-missing page.
  for (let off = 0; off < length; off += PAGE_SIZE) {
    try {
      uffd.zeropage(dst + off, PAGE_SIZE);
    } catch {
      /* EEXIST: that page was served */
    }
  }
  try {
    uffd.wake(dst, length);
  } catch {
    /* nothing left to wake */
  }
}

Atomics.store(slots, SLOT.state, served >= faults ? STATE.done : error ? STATE.failed : STATE.timedOut);
parentPort.postMessage({
  type: 'done',
  served,
  error: error ? { code: error.code, message: error.message } : undefined,
});
