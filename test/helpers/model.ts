/**
 * A plain-JavaScript model of a heap graph, for differential tests: the same operations are
 * applied to the model and to the heap, and `compareGraph` walks both from their roots and
 * pins in parallel, checking that they are the same graph (same types, lengths, bytes, and
 * the same sharing: two slots point at one heap object exactly when they point at one model
 * object).
 */
import type { Heap, Pin, Ref, Root } from '../../dist/gc/index.js';
import { kindOf, type ObjKind } from './graph.js';

export interface MObj {
  id: number;
  type: string;
  kind: ObjKind;
  refs: Array<MObj | null>;
  bytes: Uint8Array;
}

export interface MPin {
  pin: Pin;
  obj: MObj;
  /** Address when pinned: it must never change while pinned. */
  address: number;
}

export class Model {
  #next = 1;
  readonly roots = new Map<Root, MObj | null>();
  readonly pins: MPin[] = [];

  make(type: string, kind: ObjKind, refs: number, bytes: number): MObj {
    return { id: this.#next++, type, kind, refs: new Array<MObj | null>(refs).fill(null), bytes: new Uint8Array(bytes) };
  }
}

export class GraphMismatch extends Error {}

function fail(ctx: string, path: string, msg: string): never {
  throw new GraphMismatch(`${ctx}: at ${path}: ${msg}`);
}

/** Checks one heap object against its model (not its children). */
export function compareObject(heap: Heap, r: Ref, m: MObj, ctx: string, path: string): void {
  const t = heap.typeOf(r).name;
  if (t !== m.type) fail(ctx, path, `type ${t}, model ${m.type}`);
  const k = kindOf(heap, r);
  if (k !== m.kind) fail(ctx, path, `kind ${k}, model ${m.kind}`);
  const n = heap.refCount(r);
  if (n !== m.refs.length) fail(ctx, path, `${n} slots, model ${m.refs.length}`);
  if (k !== 'refs') {
    const len = heap.length(r);
    if (len !== m.bytes.length) fail(ctx, path, `${len} bytes, model ${m.bytes.length}`);
    if (len > 0) {
      const got = heap.readBytes(r, 0, len);
      for (let i = 0; i < len; i++) if (got[i] !== m.bytes[i]) fail(ctx, path, `byte ${i} is ${got[i]}, model ${m.bytes[i]}`);
    }
  } else if (heap.length(r) !== m.refs.length) fail(ctx, path, `array length ${heap.length(r)}, model ${m.refs.length}`);
}

/**
 * Walks the heap and the model from the roots and pins together; throws GraphMismatch with
 * the path to the first difference. Returns the model-to-heap mapping of every reachable
 * object (heap refs valid until the next collection).
 */
export function compareGraph(heap: Heap, model: Model, ctx: string): Map<MObj, Ref> {
  const m2r = new Map<MObj, Ref>();
  const r2m = new Map<Ref, MObj>();
  const queue: Array<[Ref, MObj, string]> = [];
  const pair = (r: Ref | null, m: MObj | null, path: string): void => {
    if (r === null || m === null) {
      if (r !== m) fail(ctx, path, r === null ? `null, model has object #${m!.id}` : `an object, model has null`);
      return;
    }
    const seen = m2r.get(m);
    if (seen !== undefined) {
      if (seen !== r) fail(ctx, path, `model object #${m.id} is reached as two different heap objects`);
      return;
    }
    const other = r2m.get(r);
    if (other !== undefined) fail(ctx, path, `one heap object stands for model objects #${other.id} and #${m.id}`);
    m2r.set(m, r);
    r2m.set(r, m);
    queue.push([r, m, path]);
  };
  let i = 0;
  for (const [root, m] of model.roots) pair(root.get(), m, `root${i++}`);
  for (const p of model.pins) {
    const r = p.pin.ref;
    if (p.pin.address !== p.address) fail(ctx, `pin #${p.obj.id}`, `pin address moved from ${p.address} to ${p.pin.address}`);
    if (heap.addressOf(r) !== p.address) fail(ctx, `pin #${p.obj.id}`, `pinned object moved from ${p.address} to ${heap.addressOf(r)}`);
    pair(r, p.obj, `pin#${p.obj.id}`);
  }
  while (queue.length > 0) {
    const [r, m, path] = queue.pop()!;
    compareObject(heap, r, m, ctx, `${path}(#${m.id})`);
    const base = path.length > 120 ? `…${path.slice(-100)}` : path;
    for (let s = 0; s < m.refs.length; s++) pair(heap.getRef(r, s), m.refs[s], `${base}.${s}`);
  }
  return m2r;
}
