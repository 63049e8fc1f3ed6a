// A second thread for test/binding.events.test.ts: it does what makes the kernel write to a
// userfaultfd (a write to a protected page, a touch of a missing page, madvise, munmap,
// mremap, fork) while the test's thread reads the records. Each of those blocks this thread
// in the kernel until the test resolves the fault or reads the event; the test's thread
// never blocks on its own, and closing the userfaultfd frees this one if a test fails.
//
// Messages in: { id, op, ...args }. Out: { id, result } or { id, error: { code, message } }.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { Mapping, ForkedChild, madvise, remapDontUnmap, viewOf } = await import(workerData.distUrl);

const mappings = new Map();
const children = new Map();

const ops = {
  tid: () => Number(fs.readlinkSync('/proc/thread-self').split('/').pop()),
  write: ({ address, value }) => {
    new Uint8Array(viewOf(address, 1))[0] = value;
    return value;
  },
  read: ({ address }) => new Uint8Array(viewOf(address, 1))[0],
  map: ({ length }) => {
    const m = Mapping.anonymous(length, { advise: ['NOHUGEPAGE'] });
    new Uint8Array(m.view()).fill(7);
    mappings.set(m.address, m);
    return m.address;
  },
  unmap: ({ address }) => {
    mappings.get(address).close();
    mappings.delete(address);
    return address;
  },
  madvise: ({ address, length, advice }) => madvise(address, length, advice),
  remap: ({ from, length, to }) => remapDontUnmap(from, length, to),
  fork: () => {
    const c = ForkedChild.spawn();
    children.set(c.pid, c);
    return c.pid;
  },
  release: ({ pid }) => {
    children.get(pid).release();
    children.delete(pid);
    return pid;
  },
};

parentPort.on('message', (m) => {
  try {
    parentPort.postMessage({ id: m.id, result: ops[m.op](m) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: { code: e.code, message: e.message } });
  }
});
parentPort.postMessage({ ready: true });
