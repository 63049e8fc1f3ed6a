/**
 * The art example's app (art-app.ts runs it): a UI tree of views with children arrays, text
 * byte arrays and styles, built once, and the per-frame work on it (input events, layout
 * temporaries, display-list ops, strings: the short-lived objects). Apart from the runner
 * because it is the workload alone: it only allocates and touches the heap, never collects.
 */
import type { Heap, HeapType, Ref, Root } from '../gc/index.js';

/** The frame budget at 60 fps, ms. */
export const BUDGET_MS = 1000 / 60;

// View: refs children (RefArray), text (bytes), style, parent; raw: x y w h (f64), id, flags (u32).
const V_CHILDREN = 0, V_TEXT = 1, V_STYLE = 2, V_PARENT = 3;
const V_X = 0, V_Y = 8, V_W = 16, V_H = 24, V_ID = 32, V_FLAGS = 36;

export interface Types {
  view: HeapType;
  style: HeapType;
  event: HeapType;
  layout: HeapType;
  draw: HeapType;
}

export function defineTypes(heap: Heap): Types {
  return {
    view: heap.defineType({ name: 'View', refs: 4, bytes: 40 }),
    style: heap.defineType({ name: 'Style', refs: 0, bytes: 24 }),
    event: heap.defineType({ name: 'MotionEvent', refs: 2, bytes: 16 }),
    layout: heap.defineType({ name: 'LayoutParams', refs: 2, bytes: 32 }),
    draw: heap.defineType({ name: 'DrawOp', refs: 2, bytes: 24 }),
  };
}

function label(rnd: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = 97 + ((rnd() * 26) | 0);
  return b;
}

export class App {
  readonly heap: Heap;
  readonly t: Types;
  readonly rnd: () => number;
  readonly tree: Root;
  nodes = 0;
  nextId = 1;

  constructor(heap: Heap, t: Types, rnd: () => number, tree: Root) {
    this.heap = heap;
    this.t = t;
    this.rnd = rnd;
    this.tree = tree;
  }

  newView(parent: Ref | null, depth: number): Ref {
    const { heap, t, rnd } = this;
    const v = heap.alloc(t.view);
    heap.setRef(v, V_PARENT, parent);
    heap.setU32(v, V_ID, this.nextId++);
    heap.setU32(v, V_FLAGS, depth);
    heap.setF64(v, V_W, 20 + rnd() * 300);
    heap.setF64(v, V_H, 10 + rnd() * 60);
    const text = heap.allocBytes(8 + ((rnd() * 40) | 0));
    heap.writeBytes(text, 0, label(rnd, heap.length(text)));
    heap.setRef(v, V_TEXT, text);
    if (rnd() < 0.25) {
      const s = heap.alloc(t.style);
      heap.setU32(s, 0, (rnd() * 0xffffff) | 0);
      heap.setF64(s, 8, rnd() * 16);
      heap.setRef(v, V_STYLE, s);
    }
    this.nodes++;
    return v;
  }

  /** A tree of about `n` views, breadth first, 2-8 children per inner view. */
  build(n: number): void {
    const { heap, rnd } = this;
    const root = this.newView(null, 0);
    this.tree.set(root);
    let level: Ref[] = [root];
    let depth = 1;
    while (this.nodes < n && level.length) {
      const next: Ref[] = [];
      for (const p of level) {
        if (this.nodes >= n) break;
        const k = 2 + ((rnd() * 7) | 0);
        const kids = heap.allocRefArray(k);
        heap.setRef(p, V_CHILDREN, kids);
        for (let i = 0; i < k; i++) {
          const c = this.newView(p, depth);
          heap.setRef(kids, i, c);
          next.push(c);
        }
      }
      level = next;
      depth++;
    }
  }

  /** Whether the subtree under v has at most `limit` views. */
  small(v: Ref, limit: { n: number }): boolean {
    if (--limit.n < 0) return false;
    const kids = this.heap.getRef(v, V_CHILDREN);
    if (kids === null) return true;
    const k = this.heap.length(kids);
    for (let i = 0; i < k; i++) {
      const c = this.heap.getRef(kids, i);
      if (c !== null && !this.small(c, limit)) return false;
    }
    return true;
  }

  /** A copy of the subtree under v with fresh objects (an adapter rebinding a list item). */
  rebuild(v: Ref, parent: Ref | null, depth: number): Ref {
    const { heap } = this;
    const c = this.newView(parent, depth);
    heap.setF64(c, V_X, heap.getF64(v, V_X));
    heap.setF64(c, V_Y, heap.getF64(v, V_Y));
    const kids = heap.getRef(v, V_CHILDREN);
    if (kids !== null) {
      const k = heap.length(kids);
      const nk = heap.allocRefArray(k);
      heap.setRef(c, V_CHILDREN, nk);
      for (let i = 0; i < k; i++) {
        const g = heap.getRef(kids, i);
        if (g !== null) heap.setRef(nk, i, this.rebuild(g, c, depth + 1));
      }
    }
    return c;
  }

  /** One frame's work. Every ref it holds dies at its end (no collection happens inside). */
  frame(f: number, visit: number): void {
    const { heap, t, rnd } = this;
    // A random part of the tree: descend a few levels, then walk breadth first.
    let n = this.tree.get()!;
    const depth = (rnd() * 3) | 0;
    for (let d = 0; d < depth; d++) {
      const kids = heap.getRef(n, V_CHILDREN);
      if (kids === null) break;
      n = heap.getRef(kids, (rnd() * heap.length(kids)) | 0)!;
    }
    const queue: Ref[] = [n];
    let events: Ref | null = null;
    let layouts: Ref | null = null;
    const display = heap.allocRefArray(visit);
    let shown = 0;
    let rebuildAt: Ref | null = null;
    for (let qi = 0; qi < queue.length && qi < visit; qi++) {
      const v = queue[qi];
      const kids = heap.getRef(v, V_CHILDREN);
      if (kids !== null) {
        const k = heap.length(kids);
        for (let i = 0; i < k; i++) {
          const c = heap.getRef(kids, i);
          if (c !== null) queue.push(c);
        }
      }
      // Input: an event targeting every other view.
      if (qi & 1) {
        const e = heap.alloc(t.event);
        heap.setRef(e, 0, v);
        heap.setRef(e, 1, events);
        heap.setF64(e, 0, f * BUDGET_MS);
        heap.setU32(e, 8, qi);
        events = e;
      }
      // Measure and lay out: a temporary per view, then write the view's position.
      const lp = heap.alloc(t.layout);
      heap.setRef(lp, 0, v);
      heap.setRef(lp, 1, layouts);
      layouts = lp;
      const parent = heap.getRef(v, V_PARENT);
      const px = parent === null ? 0 : heap.getF64(parent, V_X);
      const w = heap.getF64(v, V_W);
      heap.setF64(lp, 0, px + (qi % 8) * w * 0.1);
      heap.setF64(lp, 8, heap.getF64(v, V_H) * (qi & 7));
      heap.setF64(v, V_X, heap.getF64(lp, 0));
      heap.setF64(v, V_Y, heap.getF64(lp, 8));
      heap.setU32(v, V_FLAGS, heap.getU32(v, V_FLAGS) ^ 0x100);
      // Draw: an op per view, and a string for some.
      const text = heap.getRef(v, V_TEXT);
      const op = heap.alloc(t.draw);
      heap.setRef(op, 0, text);
      heap.setF64(op, 0, w);
      heap.setRef(display, shown++, op);
      if (text !== null && rnd() < 0.5) {
        const len = heap.length(text);
        const s = heap.allocBytes(len + 16);
        heap.writeBytes(s, 0, heap.readBytes(text, 0, len));
      }
      // A few views get new text (the old one becomes garbage anywhere in the old generation).
      if (rnd() < 0.08) {
        const nt = heap.allocBytes(8 + ((rnd() * 40) | 0));
        heap.writeBytes(nt, 0, label(rnd, heap.length(nt)));
        heap.setRef(v, V_TEXT, nt);
      }
      if (qi > 0 && kids !== null && rebuildAt === null && rnd() < 0.02 && this.small(v, { n: 300 })) rebuildAt = v;
    }
    // Sometimes a list item is rebound: its subtree is replaced by fresh objects.
    if (rebuildAt !== null && f % 4 === 0) {
      const parent = heap.getRef(rebuildAt, V_PARENT)!;
      const kids = heap.getRef(parent, V_CHILDREN)!;
      const k = heap.length(kids);
      for (let i = 0; i < k; i++)
        if (heap.getRef(kids, i) === rebuildAt) {
          const before = this.nodes;
          heap.setRef(kids, i, this.rebuild(rebuildAt, parent, heap.getU32(rebuildAt, V_FLAGS) & 0xff));
          this.nodes = before; // replaced one for one: the count stays the same
          break;
        }
    }
    void events;
    void layouts;
  }
}
