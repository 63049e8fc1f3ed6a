// A second thread for test/heap.selfservice.test.ts: reads heap words through the heap's raw
// address (a view of its own, or the kernel: write(2) from the address into a file), which
// bypasses the heap's accessors, so an unbuilt page takes the userfaultfd path. In lockstep
// with the test's thread, which touches the same page through an accessor at the same moment:
// on even reads this thread goes first (it announces the read in sync[1] and makes it at once),
// on odd ones it waits for the test's thread to announce its touch (sync[2]) and follows at once.
//
// workerData: { distUrl, heapAddress, capacity, kernelEvery, fd, sync, lockstep (default true;
// false: read at once, in order) }; then one message:
//   { words }: u32 indices into the heap to read, in order; every kernelEvery-th read (0: none)
//   is a write(2) of the 8 bytes at that word into fd (at offset 8 * i) instead of a load.
//   sync: Int32Array over a SharedArrayBuffer: [0] go (set by the test), [1] reads announced,
//   [2] the test's touches announced.
// Posts { ready } once loaded, then { values, kernelErrors } (values[i] is undefined for
// kernel reads; errors by index).
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { distUrl, heapAddress, capacity, kernelEvery, fd, sync, lockstep = true } = workerData;
const { viewOf } = await import(distUrl);
const heap = new Uint32Array(viewOf(heapAddress, capacity));
const bytes = new Uint8Array(heap.buffer);

const words = await new Promise((resolve) => {
  parentPort.once('message', (m) => resolve(m.words));
  parentPort.postMessage({ ready: true });
});
while (Atomics.load(sync, 0) === 0) Atomics.wait(sync, 0, 0, 100);
const values = [];
const kernelErrors = {};
const deadline = Date.now() + 20_000;
for (let i = 0; i < words.length; i++) {
  if (lockstep && i % 2 === 1) {
    while (Atomics.load(sync, 2) <= i) if (Date.now() > deadline) throw new Error(`the test's thread stalled before touch ${i}`);
  }
  Atomics.store(sync, 1, i + 1);
  if (kernelEvery > 0 && i % kernelEvery === kernelEvery - 1) {
    try {
      fs.writeSync(fd, bytes.subarray(words[i] * 4, words[i] * 4 + 8), 0, 8, 8 * i);
    } catch (e) {
      kernelErrors[i] = e.code ?? String(e);
    }
    values.push(undefined);
  } else values.push(heap[words[i]]);
}
parentPort.postMessage({ values, kernelErrors });
