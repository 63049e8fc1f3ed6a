/** Heap.census(): live and dead objects by type, from a walk of the heap's headers. */
import { ErrorCode, MoveGcError } from './errors.js';
import { HEAP_START_WORD, Kind, sizeWords, type TypeTable } from './layout.js';

/** See Heap.census(). Objects include those not yet collected. */
export interface Census {
  types: Array<{ type: string; objects: number; bytes: number }>;
  objects: number;
  bytes: number;
  fillerBytes: number;
  usedBytes: number;
}

/** Walks words [HEAP_START_WORD, top) object by object. */
export function census(u32: Uint32Array, types: TypeTable, typeList: ReadonlyArray<{ name: string } | undefined>, top: number): Census {
  const rows = types.rows;
  const byType = new Map<number, { objects: number; bytes: number }>();
  let fillerBytes = 0;
  for (let w = HEAP_START_WORD; w < top; ) {
    const t = u32[w * 2];
    const size = sizeWords(u32, rows, w);
    if (size < 1) throw new MoveGcError(ErrorCode.HEAP_CORRUPT, `census: object at word ${w} has size ${size}`);
    if (types.kind(t) === Kind.FILLER) fillerBytes += size * 8;
    else {
      const e = byType.get(t) ?? { objects: 0, bytes: 0 };
      e.objects++;
      e.bytes += size * 8;
      byType.set(t, e);
    }
    w += size;
  }
  const out = [...byType].map(([t, e]) => ({ type: typeList[t]?.name ?? `#${t}`, ...e })).sort((a, b) => b.bytes - a.bytes);
  return { types: out, objects: out.reduce((n, r) => n + r.objects, 0), bytes: out.reduce((n, r) => n + r.bytes, 0), fillerBytes, usedBytes: top * 8 };
}
