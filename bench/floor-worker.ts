/**
 * The fault-serving side of the kernel floor's fault round trip (see floor.ts): a Worker that
 * adopts the floor's userfaultfd and serves each missing-page fault in [dst, dst+length) with
 * poll + read + one UFFDIO_MOVE of the matching source page (which wakes the faulting thread).
 * This is the least a handler thread can do per fault, so the collector's fault-to-wake latency
 * is compared against it.
 *
 * Bounded: after `faults` served, or at the deadline, it exits; if it served fewer, it maps
 * zero pages over everything still missing and wakes the range, so the faulting main thread
 * can never stay blocked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PAGE_SIZE, Userfaultfd } from '../gc/index.js';

export interface FloorWorkerData {
  fd: number;
  features: number;
  dst: number;
  src: number;
  length: number;
  faults: number;
  timeoutMs: number;
}

const d = workerData as FloorWorkerData;
const uffd = Userfaultfd.adopt(d.fd, d.features);
const out = new Float64Array(16);
const deadline = Date.now() + d.timeoutMs;
let served = 0;
let error: string | undefined;
parentPort!.postMessage({ type: 'ready' });
try {
  while (served < d.faults && Date.now() < deadline) {
    const n = uffd.readFaults(out, 50);
    for (let i = 0; i < n; i++) {
      const page = out[i] - (out[i] % PAGE_SIZE);
      if (page < d.dst || page >= d.dst + d.length) continue;
      try {
        uffd.moveOnce(page, d.src + (page - d.dst), PAGE_SIZE);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw e;
      }
      served++;
    }
  }
} catch (e) {
  error = String(e);
}
if (served < d.faults) {
  for (let off = 0; off < d.length; off += PAGE_SIZE) {
    try {
      uffd.zeropage(d.dst + off, PAGE_SIZE);
    } catch {
      /* already mapped */
    }
  }
  try {
    uffd.wake(d.dst, d.length);
  } catch {
    /* nothing to wake */
  }
}
parentPort!.postMessage({ type: 'done', served, error });
