/** `movegc probe`: the kernel's capabilities as the heap sees them, and the mode it would choose. */
import os from 'node:os';
import { chooseMode, probe, type Capability } from '../gc/index.js';
import type { Values } from './args.js';

export async function main(v: Values): Promise<void> {
  const caps = probe();
  const choice = chooseMode('move', caps);
  if (v.json) {
    console.log(JSON.stringify({ kernel: os.release(), ...caps, defaultMode: choice.mode, fallbacks: choice.fallbacks }, null, 1));
    return;
  }
  const yes = (c: Capability): string => (c.ok ? 'yes' : `no (${c.reason})`);
  const rows: Array<[string, string]> = [
    ['kernel', `Linux ${os.release()}`],
    ['userfaultfd', caps.uffd.ok ? `yes, opened with ${caps.uffd.how}` : `no (${caps.uffd.reason})`],
    ...Object.entries(caps.uffd.ways).map(([k, c]): [string, string] => [`  ${k}`, yes(c)]),
    ['UFFDIO_MOVE', yes(caps.move)],
    ['UFFDIO_COPY', yes(caps.copy)],
    ['UFFDIO_ZEROPAGE', yes(caps.zeropage)],
    ['write-protect', yes(caps.writeProtect)],
    ['mremap(MREMAP_DONTUNMAP)', yes(caps.mremapDontUnmap)],
    ['features', caps.features.join(' ') || '-'],
    ...(caps.featuresRefused.length ? [['  refused to this process', caps.featuresRefused.join(' ')] as [string, string]] : []),
    // The questions the UFFDIO_MOVE review left to "how an user app knows what the kernel supports".
    ['MOVE across processes', caps.crossMm.ok ? 'yes' : `no (${caps.crossMm.reason})`],
    ['pinned pages refused by MOVE', caps.pinsRefused.ok ? 'yes (EBUSY; the page moves once unpinned)' : `not shown (${caps.pinsRefused.reason}${caps.pinsRefused.detail ? `: ${caps.pinsRefused.detail}` : ''})`],
    ['UFFDIO_MOVE fixes (ART gate)', caps.moveFixes.ok ? 'yes' : `no (${caps.moveFixes.reason})`],
    ['THP', caps.thp],
    ['a move heap runs as', choice.mode + (choice.fallbacks.length ? ` (${choice.fallbacks.join('; ')})` : '')],
  ];
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  console.log(rows.map(([k, x]) => k.padEnd(w) + x).join('\n'));
}
