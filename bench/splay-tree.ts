/**
 * Octane's Splay benchmark (V8's GC-latency benchmark, Octane 2.0 splay.js), twice: on plain
 * JavaScript objects, as Octane runs it (V8's collector manages them), and on the movegc heap.
 * Same algorithm, same constants, same keys (a seeded generator instead of Octane's seeded
 * Math.random), line for line; only the object model differs.
 *
 * A splay tree of 8000 nodes; each node's payload is a binary tree of depth 5 whose 32 leaves
 * hold a 10-element array and a string. One run inserts 80 new nodes and removes 80 (the
 * greatest key below each new one): about 320 KiB of fresh payload per run, the same amount
 * dying. splay_() allocates a header node per call, as Octane's does.
 *
 * On the heap: Node {left, right, value; key f64 (raw areas start 8-aligned: 4 bytes of padding before it)},
 * Inner {left, right}, Leaf {array, string};
 * the array is a 40-byte byte array holding 10 u32 (V8 keeps [0..9] as 10 tagged 32-bit
 * elements), the string a byte array of its Latin-1 characters. References are valid until
 * the next collection, so the driver collects only between inserts (the tree is in a Root).
 */
import type { Heap, HeapType, Ref, Root } from '../gc/index.js';

export const SPLAY_TREE_SIZE = 8000;
export const SPLAY_TREE_MODIFICATIONS = 80;
export const SPLAY_TREE_PAYLOAD_DEPTH = 5;
/** A latency sample every 20 inserts during setup, as Octane's SplaySetup takes them. */
export const SETUP_SAMPLE_EVERY = 20;

/** The operations the driver needs, on either object model. */
export interface SplayTreeOps {
  /** Inserts a node with a fresh key and its payload; returns the key. */
  insertNewNode(): number;
  isEmpty(): boolean;
  /** The greatest key below `key` (Octane's findGreatestLessThan(key).key), or null. */
  findGreatestLessThanKey(key: number): number | null;
  remove(key: number): void;
  exportKeys(): number[];
}

// ------------------------------------------------------------------ plain JavaScript objects

class JsNode {
  left: JsNode | null = null;
  right: JsNode | null = null;
  constructor(
    public key: number,
    public value: unknown,
  ) {}
}

type Payload = { array: number[]; string: string } | { left: Payload; right: Payload };

function generatePayloadTree(depth: number, tag: string): Payload {
  if (depth === 0) return { array: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], string: 'String for key ' + tag + ' in leaf node' };
  return { left: generatePayloadTree(depth - 1, tag), right: generatePayloadTree(depth - 1, tag) };
}

export class JsSplayTree implements SplayTreeOps {
  root: JsNode | null = null;
  constructor(readonly nextKey: () => number) {}

  isEmpty(): boolean {
    return this.root === null;
  }
  insertNewNode(): number {
    let key: number;
    do key = this.nextKey();
    while (this.find(key) !== null);
    this.insert(key, generatePayloadTree(SPLAY_TREE_PAYLOAD_DEPTH, String(key)));
    return key;
  }
  insert(key: number, value: unknown): void {
    if (this.root === null) {
      this.root = new JsNode(key, value);
      return;
    }
    this.splay(key);
    if (this.root.key === key) return;
    const node = new JsNode(key, value);
    if (key > this.root.key) {
      node.left = this.root;
      node.right = this.root.right;
      this.root.right = null;
    } else {
      node.right = this.root;
      node.left = this.root.left;
      this.root.left = null;
    }
    this.root = node;
  }
  remove(key: number): void {
    if (this.root === null) throw new Error(`Key not found: ${key}`);
    this.splay(key);
    if (this.root.key !== key) throw new Error(`Key not found: ${key}`);
    if (this.root.left === null) this.root = this.root.right;
    else {
      const right = this.root.right;
      this.root = this.root.left;
      this.splay(key);
      this.root.right = right;
    }
  }
  find(key: number): JsNode | null {
    if (this.root === null) return null;
    this.splay(key);
    return this.root.key === key ? this.root : null;
  }
  findGreatestLessThanKey(key: number): number | null {
    if (this.root === null) return null;
    this.splay(key);
    if (this.root.key < key) return this.root.key;
    let cur = this.root.left;
    if (cur === null) return null;
    while (cur.right !== null) cur = cur.right;
    return cur.key;
  }
  exportKeys(): number[] {
    const out: number[] = [];
    const walk = (n: JsNode | null): void => {
      for (let cur = n; cur !== null; cur = cur.right) {
        walk(cur.left);
        out.push(cur.key);
      }
    };
    walk(this.root);
    return out;
  }
  private splay(key: number): void {
    const dummy = new JsNode(NaN, null);
    let left = dummy;
    let right = dummy;
    let current = this.root!;
    for (;;) {
      if (key < current.key) {
        if (current.left === null) break;
        if (key < current.left.key) {
          const tmp: JsNode = current.left; // rotate right
          current.left = tmp.right;
          tmp.right = current;
          current = tmp;
          if (current.left === null) break;
        }
        right.left = current; // link right
        right = current;
        current = current.left!;
      } else if (key > current.key) {
        if (current.right === null) break;
        if (key > current.right.key) {
          const tmp: JsNode = current.right; // rotate left
          current.right = tmp.left;
          tmp.left = current;
          current = tmp;
          if (current.right === null) break;
        }
        left.right = current; // link left
        left = current;
        current = current.right!;
      } else break;
    }
    left.right = current.left; // assemble
    right.left = current.right;
    current.left = dummy.right;
    current.right = dummy.left;
    this.root = current;
  }
}

// ------------------------------------------------------------------ the movegc heap

const L = 0, R = 1, V = 2; // Node reference slots; key: the raw area's f64 (it starts 8-aligned after the 3 slots)
const KEY = 0;
const ARRAY_BYTES = new Uint8Array(new Uint32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).buffer);

export class HeapSplayTree implements SplayTreeOps {
  readonly #heap: Heap;
  readonly #root: Root;
  readonly #node: HeapType;
  readonly #inner: HeapType;
  readonly #leaf: HeapType;

  constructor(heap: Heap, readonly nextKey: () => number) {
    this.#heap = heap;
    this.#root = heap.root(null);
    this.#node = heap.defineType({ name: 'SplayNode', refs: 3, bytes: 8 });
    this.#inner = heap.defineType({ name: 'PayloadNode', refs: 2, bytes: 0 });
    this.#leaf = heap.defineType({ name: 'PayloadLeaf', refs: 2, bytes: 0 });
  }

  isEmpty(): boolean {
    return this.#root.get() === null;
  }
  #key(n: Ref): number {
    return this.#heap.getF64(n, KEY);
  }
  #newNode(key: number, value: Ref | null): Ref {
    const n = this.#heap.alloc(this.#node);
    this.#heap.setF64(n, KEY, key);
    this.#heap.setRef(n, V, value);
    return n;
  }
  #payload(depth: number, text: Uint8Array): Ref {
    const h = this.#heap;
    if (depth === 0) {
      const leaf = h.alloc(this.#leaf);
      const array = h.allocBytes(ARRAY_BYTES.length);
      h.writeBytes(array, 0, ARRAY_BYTES);
      h.setRef(leaf, 0, array);
      const s = h.allocBytes(text.length);
      h.writeBytes(s, 0, text);
      h.setRef(leaf, 1, s);
      return leaf;
    }
    const n = h.alloc(this.#inner);
    h.setRef(n, 0, this.#payload(depth - 1, text));
    h.setRef(n, 1, this.#payload(depth - 1, text));
    return n;
  }
  insertNewNode(): number {
    let key: number;
    do key = this.nextKey();
    while (this.find(key) !== null);
    const text = Buffer.from('String for key ' + String(key) + ' in leaf node', 'latin1');
    this.insert(key, this.#payload(SPLAY_TREE_PAYLOAD_DEPTH, text));
    return key;
  }
  insert(key: number, value: Ref): void {
    const h = this.#heap;
    let root = this.#root.get();
    if (root === null) {
      this.#root.set(this.#newNode(key, value));
      return;
    }
    root = this.#splay(key);
    if (this.#key(root) === key) return;
    const node = this.#newNode(key, value);
    if (key > this.#key(root)) {
      h.setRef(node, L, root);
      h.setRef(node, R, h.getRef(root, R));
      h.setRef(root, R, null);
    } else {
      h.setRef(node, R, root);
      h.setRef(node, L, h.getRef(root, L));
      h.setRef(root, L, null);
    }
    this.#root.set(node);
  }
  remove(key: number): void {
    const h = this.#heap;
    if (this.isEmpty()) throw new Error(`Key not found: ${key}`);
    let root = this.#splay(key);
    if (this.#key(root) !== key) throw new Error(`Key not found: ${key}`);
    const left = h.getRef(root, L);
    if (left === null) this.#root.set(h.getRef(root, R));
    else {
      const right = h.getRef(root, R);
      this.#root.set(left);
      root = this.#splay(key);
      h.setRef(root, R, right);
    }
  }
  find(key: number): Ref | null {
    if (this.isEmpty()) return null;
    const root = this.#splay(key);
    return this.#key(root) === key ? root : null;
  }
  findGreatestLessThanKey(key: number): number | null {
    const h = this.#heap;
    if (this.isEmpty()) return null;
    const root = this.#splay(key);
    if (this.#key(root) < key) return this.#key(root);
    let cur = h.getRef(root, L);
    if (cur === null) return null;
    for (let r = h.getRef(cur, R); r !== null; r = h.getRef(cur, R)) cur = r;
    return this.#key(cur);
  }
  exportKeys(): number[] {
    const h = this.#heap;
    const out: number[] = [];
    const walk = (n: Ref | null): void => {
      for (let cur = n; cur !== null; cur = h.getRef(cur, R)) {
        walk(h.getRef(cur, L));
        out.push(this.#key(cur));
      }
    };
    walk(this.#root.get());
    return out;
  }
  /** Top-down splay (Octane's splay_), returning the new root. */
  #splay(key: number): Ref {
    const h = this.#heap;
    const dummy = this.#newNode(NaN, null);
    let left = dummy;
    let right = dummy;
    let current = this.#root.get()!;
    for (;;) {
      const ck = this.#key(current);
      if (key < ck) {
        let cl = h.getRef(current, L);
        if (cl === null) break;
        if (key < this.#key(cl)) {
          h.setRef(current, L, h.getRef(cl, R)); // rotate right
          h.setRef(cl, R, current);
          current = cl;
          cl = h.getRef(current, L);
          if (cl === null) break;
        }
        h.setRef(right, L, current); // link right
        right = current;
        current = cl;
      } else if (key > ck) {
        let cr = h.getRef(current, R);
        if (cr === null) break;
        if (key > this.#key(cr)) {
          h.setRef(current, R, h.getRef(cr, L)); // rotate left
          h.setRef(cr, L, current);
          current = cr;
          cr = h.getRef(current, R);
          if (cr === null) break;
        }
        h.setRef(left, R, current); // link left
        left = current;
        current = cr;
      } else break;
    }
    h.setRef(left, R, h.getRef(current, L)); // assemble
    h.setRef(right, L, h.getRef(current, R));
    h.setRef(current, L, h.getRef(dummy, R));
    h.setRef(current, R, h.getRef(dummy, L));
    this.#root.set(current);
    return current;
  }
}
