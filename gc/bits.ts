/** Bitmap helpers over Uint32Array, one bit per heap word (bit w of word w>>>5). */

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function testBit(bits: Uint32Array, i: number): boolean {
  return (bits[i >>> 5] & (1 << (i & 31))) !== 0;
}

export function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] |= 1 << (i & 31);
}

export function clearBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] &= ~(1 << (i & 31));
}

/** Sets bits [from, to). */
export function setRange(bits: Uint32Array, from: number, to: number): void {
  if (from >= to) return;
  let w = from >>> 5;
  const last = (to - 1) >>> 5;
  const lo = from & 31;
  if (w === last) {
    const hi = ((to - 1) & 31) + 1;
    bits[w] |= (hi === 32 ? 0xffffffff : (1 << hi) - 1) & ~((1 << lo) - 1);
    return;
  }
  bits[w++] |= ~((1 << lo) - 1);
  while (w < last) bits[w++] = 0xffffffff;
  const hi = ((to - 1) & 31) + 1;
  bits[last] |= hi === 32 ? 0xffffffff : (1 << hi) - 1;
}

/** First set bit in [from, limit), or `limit`. */
export function nextSet(bits: Uint32Array, from: number, limit: number): number {
  if (from >= limit) return limit;
  let w = from >>> 5;
  let v = bits[w] & ~((1 << (from & 31)) - 1);
  const lastW = (limit - 1) >>> 5;
  while (v === 0) {
    if (++w > lastW) return limit;
    v = bits[w];
  }
  const i = (w << 5) + (31 - Math.clz32(v & -v));
  return i < limit ? i : limit;
}

/** First clear bit in [from, limit), or `limit`. */
export function nextClear(bits: Uint32Array, from: number, limit: number): number {
  if (from >= limit) return limit;
  let w = from >>> 5;
  let v = ~bits[w] & ~((1 << (from & 31)) - 1);
  const lastW = (limit - 1) >>> 5;
  while (v === 0) {
    if (++w > lastW) return limit;
    v = ~bits[w];
  }
  const i = (w << 5) + (31 - Math.clz32(v & -v));
  return i < limit ? i : limit;
}

/** Last set bit in [floor, from], or -1. */
export function prevSet(bits: Uint32Array, from: number, floor: number): number {
  if (from < floor) return -1;
  let w = from >>> 5;
  const sh = 31 - (from & 31);
  let v = sh === 0 ? bits[w] : (bits[w] << sh) >>> sh;
  const floorW = floor >>> 5;
  while (v === 0) {
    if (--w < floorW) return -1;
    v = bits[w];
  }
  const i = (w << 5) + 31 - Math.clz32(v);
  return i >= floor ? i : -1;
}

/** Set bits in [from, to). */
export function countRange(bits: Uint32Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; ) {
    const w = i >>> 5;
    const lo = i & 31;
    const end = Math.min(to, (w + 1) << 5);
    const hi = end - (w << 5);
    const mask = (hi === 32 ? 0xffffffff : (1 << hi) - 1) & ~((1 << lo) - 1);
    n += popcount32(bits[w] & mask);
    i = end;
  }
  return n;
}

/** dst |= src over bits [from, to). */
export function copyBits(src: Uint32Array, dst: Uint32Array, from: number, to: number): void {
  if (from >= to) return;
  const first = from >>> 5;
  const last = (to - 1) >>> 5;
  for (let w = first; w <= last; w++) {
    let mask = 0xffffffff;
    if (w === first) mask &= ~((1 << (from & 31)) - 1);
    if (w === last && (to & 31) !== 0) mask &= (1 << (to & 31)) - 1;
    dst[w] |= src[w] & mask;
  }
}

/** Elements filled between two heartbeats (1 MiB of a 32-bit table). */
const FILL_STEP = 1 << 18;

/**
 * a.fill(value, start, end) in steps with a heartbeat between. A collector thread's first
 * cycle touches its tables for the first time (256 MiB of one bitmap at 16 GiB): on a loaded
 * VM those page faults took longer than stallMs, and a thread that does not beat is replaced.
 */
export function fillBeating(a: Uint32Array | Int32Array | Uint8Array, value: number, start: number, end: number, beat?: () => void): void {
  for (let i = start; i < end; i += FILL_STEP) {
    a.fill(value, i, Math.min(end, i + FILL_STEP));
    beat?.();
  }
}
