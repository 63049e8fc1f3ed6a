/**
 * Graph builders and a checksum of the reachable graph for the heap tests.
 *
 * The checksum walks from the roots in order (breadth first) and numbers objects by
 * discovery, so it captures contents AND shape: every object's type, length, raw bytes, and
 * which objects its slots point at (as discovery numbers, not addresses, so a moved graph
 * has the same checksum as long as it is the same graph).
 */
import { createHash } from 'node:crypto';
import type { Heap, HeapType, Ref, Root } from '../../dist/gc/index.js';
import type { Rng } from './prng.js';

export const PS = 4096;

/** Object size in bytes, computed from the object model (layout.ts) independently of the heap. */
export function sizeOf(kind: 'fixed' | 'refs' | 'bytes', refs: number, bytes: number): number {
  if (kind === 'refs') return 8 + Math.ceil(refs / 2) * 8;
  if (kind === 'bytes') return 8 + Math.ceil(bytes / 8) * 8;
  return 8 + Math.ceil((Math.ceil((refs * 4) / 8) * 8 + bytes) / 8) * 8;
}

/** Two-lane 32-bit hash (FNV-1a and a multiplicative lane) of bytes, as 16 hex digits. */
export function hashBytes(u8: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < u8.length; i++) {
    a = Math.imul(a ^ u8[i], 0x01000193);
    b = Math.imul(b ^ u8[i], 0x5bd1e995) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

export type ObjKind = 'fixed' | 'refs' | 'bytes';

export function kindOf(heap: Heap, r: Ref): ObjKind {
  const name = heap.typeOf(r).name;
  return name === 'RefArray' ? 'refs' : name === 'ByteArray' ? 'bytes' : 'fixed';
}

/** Raw bytes of an object (empty for reference arrays). */
export function rawBytes(heap: Heap, r: Ref): Uint8Array {
  const k = kindOf(heap, r);
  if (k === 'refs') return new Uint8Array(0);
  const n = heap.length(r);
  return n === 0 ? new Uint8Array(0) : heap.readBytes(r, 0, n);
}

export interface Snapshot {
  checksum: string;
  objects: number;
  /** Sum of the reachable objects' sizes (what mark should report as live). */
  liveBytes: number;
  /** One line per object, in discovery order (for diffs). */
  records: string[];
  /** Reachable refs in discovery order (valid until the next collection). */
  refs: Ref[];
}

/** Walks the graph reachable from `roots` (in order) and digests it. */
export function snapshot(heap: Heap, roots: ReadonlyArray<Ref | null>): Snapshot {
  const ids = new Map<Ref, number>();
  const order: Ref[] = [];
  const visit = (r: Ref | null): number => {
    if (r === null) return -1;
    let id = ids.get(r);
    if (id === undefined) {
      id = order.length;
      ids.set(r, id);
      order.push(r);
    }
    return id;
  };
  const rootIds = roots.map(visit);
  const records: string[] = [];
  let liveBytes = 0;
  for (let i = 0; i < order.length; i++) {
    const r = order[i];
    const t = heap.typeOf(r);
    const k = kindOf(heap, r);
    const n = heap.refCount(r);
    const slots = new Array<number>(n);
    for (let s = 0; s < n; s++) slots[s] = visit(heap.getRef(r, s));
    const bytes = rawBytes(heap, r);
    liveBytes += sizeOf(k, n, bytes.length);
    records.push(`${t.name}/${heap.length(r)}/[${slots.join(',')}]/${hashBytes(bytes)}`);
  }
  const h = createHash('sha256');
  h.update(`roots:${rootIds.join(',')}\n`);
  for (const line of records) h.update(line + '\n');
  return { checksum: h.digest('hex'), objects: order.length, liveBytes, records, refs: order };
}

/** A readable description of where two snapshots first differ (for failure messages). */
export function firstDifference(a: Snapshot, b: Snapshot): string {
  if (a.checksum === b.checksum) return 'identical';
  const n = Math.max(a.records.length, b.records.length);
  for (let i = 0; i < n; i++)
    if (a.records[i] !== b.records[i])
      return `object #${i} differs: ${(a.records[i] ?? '(none)').slice(0, 200)} vs ${(b.records[i] ?? '(none)').slice(0, 200)}`;
  return `same records, different roots (${a.objects} vs ${b.objects} objects)`;
}

/** A deterministic byte pattern for object `tag`. */
export function pattern(tag: number, n: number): Uint8Array {
  const u = new Uint8Array(n);
  let x = (tag * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u[i] = x & 0xff;
  }
  return u;
}

export interface TestTypes {
  node: HeapType; // 2 refs, 16 bytes
  leaf: HeapType; // no refs, 13 bytes
  wide: HeapType; // 7 refs, 5 bytes
  page: HeapType; // 3 refs, 4075 bytes: exactly 4096 bytes, so it straddles unless page aligned
  straddle: HeapType; // 1 ref, 4100 bytes
  empty: HeapType; // nothing but the header
}

export function defineTestTypes(heap: Heap): TestTypes {
  return {
    node: heap.defineType({ name: 'Node', refs: 2, bytes: 16 }),
    leaf: heap.defineType({ name: 'Leaf', refs: 0, bytes: 13 }),
    wide: heap.defineType({ name: 'Wide', refs: 7, bytes: 5 }),
    page: heap.defineType({ name: 'PageSized', refs: 3, bytes: 4075 }),
    straddle: heap.defineType({ name: 'Straddle', refs: 1, bytes: 4100 }),
    empty: heap.defineType({ name: 'Empty', refs: 0, bytes: 0 }),
  };
}

/** Byte-array sizes around page boundaries, and reference-array lengths, all awkward. */
export const EDGE_BYTE_SIZES = [0, 1, 7, 9, 4087, 4088, 4089, 4095, 4096, 4097, 4100, 5000, 8183, 8191, 12289];
export const EDGE_REF_LENGTHS = [0, 1, 3, 1021, 1023, 1025, 2047, 3001];

export interface BuildOptions {
  /** Live objects of the small kinds to allocate. */
  objects: number;
  /** Probability that a garbage object follows each live one. */
  garbage: number;
  /** Add the page-edge byte arrays and odd-length ref arrays. */
  edges?: boolean;
  /** Add a 1 MiB byte array and a 100k-element reference array. */
  huge?: boolean;
  /** Number of roots (the first holds an index array). */
  roots?: number;
}

/**
 * Builds a random graph with interleaved garbage: every live object is linked into a slot of
 * an earlier live object (which may orphan that slot's previous target: more garbage, and a
 * shape with shared children and cycles). Returns the roots; the reachable graph is what a
 * snapshot of them walks.
 */
export function buildGraph(heap: Heap, T: TestTypes, rng: Rng, o: BuildOptions): Root[] {
  const holders: Ref[] = []; // live objects with reference slots
  const all: Ref[] = [];
  const free: Array<[Ref, number]> = []; // null slots of live objects
  const index = heap.allocRefArray(257);
  holders.push(index);
  all.push(index);
  for (let i = 0; i < 257; i++) free.push([index, i]);
  const roots = [heap.root(index)];
  let tag = 1;
  const garbage = (): void => {
    if (!rng.chance(o.garbage)) return;
    const g = rng.weighted([[3, () => heap.alloc(T.node)], [1, () => heap.allocBytes(rng.int(0, 3000))], [1, () => heap.allocRefArray(rng.int(0, 300))], [1, () => heap.alloc(T.straddle)]] as const)();
    // Garbage pointing at live objects must not keep anything alive or confuse the walk.
    if (heap.refCount(g) > 0 && all.length) heap.setRef(g, 0, rng.pick(all));
  };
  /**
   * Links r into a null slot of a live object (now and then over a used slot, orphaning its
   * target: more garbage); some of r's own slots point back at earlier objects (shared
   * children, cycles), the rest become free slots.
   */
  const link = (r: Ref, fillSlots = true): void => {
    if (free.length > 0 && rng.chance(0.92)) {
      const k = rng.int(0, free.length - 1);
      const [h, i] = free[k];
      free[k] = free[free.length - 1];
      free.pop();
      heap.setRef(h, i, r);
    } else {
      const h = rng.pick(holders.filter((x) => heap.refCount(x) > 0));
      heap.setRef(h, rng.int(0, heap.refCount(h) - 1), r);
    }
    const n = heap.refCount(r);
    if (fillSlots)
      for (let i = 0; i < n; i++) {
        if (rng.chance(0.25)) heap.setRef(r, i, rng.pick(all));
        else free.push([r, i]);
      }
    all.push(r);
    if (n > 0) holders.push(r);
  };
  const fill = (r: Ref): void => {
    const n = kindOf(heap, r) === 'refs' ? 0 : heap.length(r);
    if (n > 0) heap.writeBytes(r, 0, pattern(tag++, n));
  };
  const small = (): Ref =>
    rng.weighted([
      [6, () => heap.alloc(T.node)],
      [3, () => heap.alloc(T.leaf)],
      [2, () => heap.alloc(T.wide)],
      [1, () => heap.alloc(T.empty)],
      [1, () => heap.alloc(T.page)],
      [1, () => heap.alloc(T.straddle)],
      [2, () => heap.allocBytes(rng.int(0, 200))],
      [1, () => heap.allocRefArray(rng.int(0, 40))],
    ] as const)();
  for (let i = 0; i < o.objects; i++) {
    const r = small();
    fill(r);
    link(r);
    garbage();
  }
  if (o.edges) {
    for (const n of EDGE_BYTE_SIZES) {
      const r = heap.allocBytes(n);
      fill(r);
      link(r);
      garbage();
    }
    for (const n of EDGE_REF_LENGTHS) {
      const r = heap.allocRefArray(n);
      for (let i = 0; i < n; i++) if (rng.chance(0.8)) heap.setRef(r, i, rng.pick(all));
      link(r, false);
      garbage();
    }
  }
  if (o.huge) {
    const big = heap.allocBytes(1 << 20);
    fill(big);
    link(big);
    garbage();
    const arr = heap.allocRefArray(100_000);
    for (let i = 0; i < 100_000; i++) if (i % 7 !== 3) heap.setRef(arr, i, all[(i * 7919) % all.length]);
    link(arr, false);
    garbage();
  }
  for (let i = 1; i < (o.roots ?? 4); i++) roots.push(heap.root(rng.chance(0.8) ? rng.pick(all) : null));
  return roots;
}

export const rootRefs = (roots: readonly Root[]): Array<Ref | null> => roots.map((r) => r.get());

/** Allocates garbage of about `bytes` bytes (nothing references it). */
export function allocGarbage(heap: Heap, T: TestTypes, bytes: number): void {
  let left = bytes;
  let i = 0;
  while (left > 0) {
    const r = i++ % 2 ? heap.alloc(T.node) : heap.allocBytes(Math.min(left, 1000 + (i % 3000)));
    left -= sizeOf(kindOf(heap, r), heap.refCount(r), heap.length(r));
  }
}

/**
 * Straddler scenarios (pinned spans, plan step 1): `live` keeps a reference in `keep`, a rooted
 * array of 16 slots; `straddlePair` allocates a live byte array (bytes `pattern(tag)`) ending
 * `tailBytes` into the page 3 pages on, and a node right after it holding `tag`.
 */
export function straddlers(heap: Heap, T: TestTypes): { keep: Root; live(r: Ref): Ref; straddlePair(tailBytes: number, tag: number): { arr: Ref; node: Ref } } {
  const keep = heap.root(heap.allocRefArray(16));
  let slot = 0;
  const live = (r: Ref): Ref => {
    heap.setRef(keep.get()!, slot++, r);
    return r;
  };
  const straddlePair = (tailBytes: number, tag: number): { arr: Ref; node: Ref } => {
    const u = heap.usedBytes;
    const end = (Math.floor(u / PS) + 3) * PS + tailBytes;
    const arr = live(heap.allocBytes(end - u - 8));
    heap.writeBytes(arr, 0, pattern(tag, heap.length(arr)));
    const node = live(heap.alloc(T.node));
    heap.setU32(node, 0, tag);
    if (heap.addressOf(node) - heap.address !== end) throw new Error(`straddlePair: node at ${heap.addressOf(node) - heap.address}, not ${end}`);
    return { arr, node };
  };
  return { keep, live, straddlePair };
}
