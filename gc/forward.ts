/**
 * Forwarding without forwarding pointers (ART CMC): an object's new address is its chunk's
 * new base plus the live words before it in the chunk, read from the live-words bitmap.
 * Chunks are 64 words (512 bytes, as in ART), so the in-chunk count is two popcounts.
 */
import { popcount32 } from './bits.js';

export const CHUNK_WORDS = 64;
/** chunkNew value for chunks that do not move (pinned spans, the dense prefix). */
export const IN_PLACE = 0xffffffff;
/**
 * Set in a from-space reference slot the mutator wrote during compaction (unbuilt-writes.ts):
 * the value below it is already a to-space word, which builders copy as it is. Free because
 * references are word indexes under 2^31 (heaps up to 16 GiB).
 */
export const FORWARDED = 0x80000000;

/**
 * The to-space word under a FORWARDED tag in slot value v, or -1 (untagged, or a word past
 * the heap: garbage, which the builders count as malformed). native/build.cc Slot does the same.
 */
export function storedWord(live: Uint32Array, v: number): number {
  return v >= FORWARDED && v - FORWARDED < live.length * 32 ? v - FORWARDED : -1;
}

/** New word index of the live object starting at word `w`. */
export function forward(chunkNew: Uint32Array, live: Uint32Array, w: number): number {
  const c = w >>> 6;
  const base = chunkNew[c];
  if (base === IN_PLACE) return w;
  const off = w & 63;
  const i = c << 1;
  if (off < 32) return off === 0 ? base : base + popcount32(live[i] & ((1 << off) - 1));
  return base + popcount32(live[i]) + (off === 32 ? 0 : popcount32(live[i + 1] & ((1 << (off - 32)) - 1)));
}

/**
 * The first word x in [lo, hi) with forward(x) >= t, or hi: forward's inverse, by bisection.
 * forward is non-decreasing over every word of from-space in address order, dead words
 * included (a dead word forwards as the next live word of its chunk would; chunks that do not
 * move forward to themselves, above every object that slides below them; a large object's
 * alignment gap only raises its chunk's base), since objects keep their order. So the object
 * landing at to-space word t, if any, is the first live word from x (unbuilt-reads.ts
 * sourceOf checks it): O(log(hi - lo)) forwards, where a walk over the object starts of a
 * page of small objects takes one forward and one bitmap scan per object.
 */
export function firstForwardedTo(chunkNew: Uint32Array, live: Uint32Array, lo: number, hi: number, t: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (forward(chunkNew, live, mid) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
