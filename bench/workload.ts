/**
 * The benchmark's workload: a heap filled with a seeded, deterministic mix of objects of which
 * a chosen fraction stays live, arranged by a fragmentation pattern, and the mutator's access
 * path to the live ones.
 *
 * Layout of what the workload builds (every rep of every mode builds exactly the same heap):
 *  - a directory RefArray (one Root), allocated first; slot c holds chunk c;
 *  - chunk RefArrays of CHUNK slots, allocated when the previous one is full (they sit among
 *    the objects, so they move like everything else); slot i holds live object c*CHUNK+i;
 *  - objects, each live or dead by the pattern. Every object carries a u32 id at raw byte 0
 *    (live: its live index + 1, dead: DEAD_ID), so a mutator touch checks what it reads.
 *    Node objects (2 reference slots) point at the previous live object and at a random one
 *    of the last RING live objects, so the collector has references to rewrite;
 *  - `roots` extra Roots on random live objects (a fixed count, whatever the heap size: the
 *    pause is compared across sizes "with the same roots"), and pins (heap.pin) on a random
 *    `pinned` fraction of the live objects, capped at MAX_PINS (every pinned page splits the
 *    heap into one more compaction segment; the collector allows 4096).
 *
 * Patterns: interleaved (live and dead alternate object by object: every page fragmented),
 * blocks (live and dead runs of BLOCK_BYTES: page-granular fragmentation, long live runs),
 * random (each object live with probability `live`).
 */
import type { Heap, HeapType, Pin, Ref, Root } from '../gc/index.js';

export const PATTERNS = ['interleaved', 'blocks', 'random'] as const;
export type Pattern = (typeof PATTERNS)[number];
export const SIZE_MIXES = ['small', 'mixed', 'large', 'huge', 'giant'] as const;
export type SizeMix = (typeof SIZE_MIXES)[number];

export const SIZE_MIX_DOC: Record<SizeMix, string> = {
  small: 'Node objects of 32-64 B (2 references + 16-48 raw bytes)',
  mixed: 'small Nodes, plus 0.5% (by count, about half the bytes) byte arrays of 1-16 KiB',
  large: 'byte arrays of 4-64 KiB (90% by count) and small Nodes (10%)',
  huge: 'byte arrays of 128 KiB-1 MiB (90% by count) and small Nodes (10%)',
  giant: 'byte arrays of 2-6 MiB (90% by count; what --huge-pages keeps on 2 MiB boundaries) and small Nodes (10%)',
};

/** The largest byte array of a mix (bytes). */
const MAX_ARRAY: Record<SizeMix, number> = { small: 0, mixed: 16 * 1024, large: 64 * 1024, huge: 1024 * 1024, giant: 6 * 1024 * 1024 };

export interface Workload {
  heapBytes: number;
  /** Fraction of the objects (by count, about the same by bytes) that stays live. */
  live: number;
  pattern: Pattern;
  sizes: SizeMix;
  /** Fraction of the live objects pinned with heap.pin (capped at MAX_PINS). */
  pinned: number;
  seed: number;
  /** Fraction of the capacity allocated before the collection. */
  fill: number;
  /** Extra roots on live objects (besides the directory's root). */
  roots: number;
}

export const CHUNK = 4096;
const CHUNK_SHIFT = 12;
const RING = 1 << 16;
export const MAX_PINS = 2000;
export const BLOCK_BYTES = 128 * 1024;
export const DEAD_ID = 0xdeadbeef;

/** Deterministic PRNG (mulberry32): the same seed builds the same heap. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Built {
  dir: Root;
  roots: Root[];
  pins: Pin[];
  /** Live objects reachable through the directory (chunk arrays not counted). */
  liveCount: number;
  objects: number;
  /** Bytes of the objects meant to stay live (directory and chunks included). */
  liveBytesPlanned: number;
  usedBytes: number;
  pinsRequested: number;
  buildMs: number;
}

const NODE_SIZES = [32, 40, 48, 56, 64];

/** Fills `heap` with the workload. Deterministic in the workload's parameters. */
export function buildHeap(heap: Heap, w: Workload): Built {
  const t0 = performance.now();
  const rnd = rng(w.seed);
  const nodeTypes: HeapType[] = NODE_SIZES.map((sz) => heap.defineType({ name: `Node${sz}`, refs: 2, bytes: sz - 16 }));
  const target = Math.floor(w.heapBytes * w.fill);
  const maxObjects = Math.ceil(target / 32);
  const dirRef = heap.allocRefArray(Math.ceil(maxObjects / CHUNK) + 1);
  const dir = heap.root(dirRef);
  const pattern = new Uint8Array(Math.max(MAX_ARRAY[w.sizes], 64 * 1024));
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + 7) & 0xff;

  const ring = new Float64Array(RING);
  let liveCount = 0;
  let objects = 0;
  let liveBytes = heap.usedBytes;
  let chunk: Ref = 0;
  let prev: Ref | null = null;
  const pins: Pin[] = [];
  let pinsRequested = 0;
  const roots: Root[] = [];
  // The largest object, its gap (up to 2 MiB with huge pages) and a chunk's directory array.
  const maxObj = Math.max(MAX_ARRAY[w.sizes], 64 * 1024) + (w.sizes === 'giant' ? 2 * 1024 * 1024 : 4096) + 64 + CHUNK * 4 + 16;
  const liveEvery = w.live;

  while (heap.usedBytes + maxObj < target) {
    // Shape of the next object.
    let len = -1; // byte array length, or -1 for a Node
    let type = nodeTypes[0];
    const r = rnd();
    if (w.sizes === 'small') type = nodeTypes[Math.floor(rnd() * NODE_SIZES.length)];
    else if (w.sizes === 'mixed') {
      if (r < 0.005) len = 1024 + Math.floor(rnd() * (15 * 1024 + 1));
      else type = nodeTypes[Math.floor(rnd() * NODE_SIZES.length)];
    } else {
      if (r < 0.9) {
        if (w.sizes === 'huge') len = 128 * 1024 + Math.floor(rnd() * (896 * 1024 + 1));
        else if (w.sizes === 'giant') len = 2 * 1024 * 1024 + Math.floor(rnd() * (4 * 1024 * 1024 + 1));
        else len = 4096 + Math.floor(rnd() * (60 * 1024 + 1));
      }
      else type = nodeTypes[Math.floor(rnd() * NODE_SIZES.length)];
    }
    // Live or dead, by the pattern.
    let live: boolean;
    if (w.pattern === 'interleaved') live = Math.floor((objects + 1) * liveEvery) > Math.floor(objects * liveEvery);
    else if (w.pattern === 'blocks') live = heap.usedBytes % BLOCK_BYTES < liveEvery * BLOCK_BYTES;
    else live = rnd() < liveEvery;
    objects++;

    if (live && (liveCount & (CHUNK - 1)) === 0) {
      const before = heap.usedBytes;
      chunk = heap.allocRefArray(CHUNK);
      heap.setRef(dirRef, liveCount >>> CHUNK_SHIFT, chunk);
      liveBytes += heap.usedBytes - before;
    }
    const before = heap.usedBytes;
    const o = len >= 0 ? heap.allocBytes(len) : heap.alloc(type);
    if (len >= 0) heap.writeBytes(o, 0, pattern.subarray(0, len));
    if (!live) {
      heap.setU32(o, 0, DEAD_ID);
      continue;
    }
    liveBytes += heap.usedBytes - before;
    heap.setU32(o, 0, liveCount + 1);
    if (len < 0) {
      heap.setRef(o, 0, prev);
      const k = Math.floor(rnd() * Math.min(liveCount, RING));
      heap.setRef(o, 1, liveCount > 0 ? ring[(liveCount - 1 - k) & (RING - 1)] : null);
    }
    heap.setRef(chunk, liveCount & (CHUNK - 1), o);
    ring[liveCount & (RING - 1)] = o;
    prev = o;
    if (w.pinned > 0 && rnd() < w.pinned) {
      pinsRequested++;
      if (pins.length < MAX_PINS) pins.push(heap.pin(o));
    }
    liveCount++;
  }
  // Extra roots on live objects spread over the heap (a fixed number, whatever the size).
  const pick = rng(w.seed ^ 0x5eed);
  for (let i = 0; i < w.roots && liveCount > 0; i++) roots.push(heap.root(liveAt(heap, dirRef, Math.floor(pick() * liveCount))));
  return { dir, roots, pins, liveCount, objects, liveBytesPlanned: liveBytes, usedBytes: heap.usedBytes, pinsRequested, buildMs: performance.now() - t0 };
}

/** Live object i through the directory (two reference loads). */
export function liveAt(heap: Heap, dirRef: Ref, i: number): Ref {
  return heap.getRef(heap.getRef(dirRef, i >>> CHUNK_SHIFT)!, i & (CHUNK - 1))!;
}

export function chunkOf(i: number): number {
  return i >>> CHUNK_SHIFT;
}
export function slotOf(i: number): number {
  return i & (CHUNK - 1);
}
