/**
 * A Worker (test/workers/uffd-actor.mjs) that does an access or an mm operation on request and
 * may block in the kernel doing it (a missing page of a registered range): the thread a
 * userfaultfd test wakes, or must not wake. Ended by the cleanup it pushes.
 */
import { Worker } from 'node:worker_threads';
import { afterEach } from 'vitest';

const DIST_URL = new URL('../../dist/gc/index.js', import.meta.url).href;
const ACTOR_URL = new URL('../workers/uffd-actor.mjs', import.meta.url);

export interface Actor {
  call<T = number>(op: string, args?: Record<string, unknown>): Promise<T>;
}

export async function startActor(cleanups: Array<() => void | Promise<void>>): Promise<Actor> {
  const worker = new Worker(ACTOR_URL, { workerData: { distUrl: DIST_URL } });
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  cleanups.push(async () => {
    await worker.terminate();
    await exited;
  });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (m: { ready?: boolean; id?: number; result?: unknown; error?: { code: string; message: string } }) => {
      if (m.ready) return resolve();
      const w = waiting.get(m.id!)!;
      waiting.delete(m.id!);
      if (m.error) w.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else w.resolve(m.result);
    });
    worker.once('error', reject);
  });
  let next = 0;
  return {
    call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
      const id = next++;
      const p = new Promise<T>((resolve, reject) => waiting.set(id, { resolve: resolve as (v: unknown) => void, reject }));
      worker.postMessage({ id, op, ...args });
      return p;
    },
  };
}

/** An actor that only reads: read(address) resolves with the byte read once the access returns. */
export async function startReader(cleanups: Array<() => void | Promise<void>>): Promise<(address: number) => Promise<number>> {
  const a = await startActor(cleanups);
  return (address) => a.call<number>('read', { address });
}

/**
 * For a describe block of userfaultfd tests: a cleanup list run (last in, first out) after each
 * test, and startActor(), a reader whose Worker ends with it. Call inside `describe`.
 */
export function readersPerTest(): { cleanups: Array<() => void | Promise<void>>; startActor(): Promise<(address: number) => Promise<number>> } {
  const cleanups: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });
  return { cleanups, startActor: () => startReader(cleanups) };
}

/** p's value if it settles within ms, else 'pending' (a thread left asleep stays so). */
export function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);
}
