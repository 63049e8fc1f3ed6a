/**
 * Microbenchmark of the binding: per-page cost of UFFDIO_MOVE (1, 16 and 512 pages per call),
 * UFFDIO_COPY (1 and 512 pages per call) and memcpy (Uint8Array.set between two mappings),
 * all through the typed layer, side by side with /work/shared/tools/kernel-floor.c (the same
 * operations in plain C) when a C compiler is available.
 *
 *   movegc binding [--pages N] [--reps R] [--json] [--no-floor] [--floor PATH]
 *
 * Method, mirroring kernel-floor: for each batch size, a fresh userfaultfd and two fresh
 * 2 MiB-aligned MADV_NOHUGEPAGE mappings of N pages; the destination is registered (MISSING);
 * every source page is written (one byte per page) before the timed pass; MOVE and COPY run
 * with DONTWAKE over consecutive batches; before the COPY pass the destination is emptied
 * with MADV_DONTNEED and the source written again. memcpy: both mappings filled, then one
 * timed copy of the whole range. Every figure is the median of R passes (min and max shown).
 *
 * kernel-floor runs as a child process once per repetition, interleaved with the binding's
 * passes so both see the same machine state. Forking shares every anonymous page of this
 * process with the child (MOVE would then say EBUSY), so our mappings are MADV_DONTFORK and
 * are made after the child has gone.
 *
 * With --json, the table goes to stderr and a JSON report to stdout.
 *
 * Reading the results: at 512 pages per call the binding is at the floor (~1.0-1.1x). At 1 and
 * 16 pages per call it is slower by a few hundred ns per call, but little of that is the
 * binding's own code: the typed layer + N-API cost ~70 ns per call (UFFDIO_WAKE, a no-op ioctl:
 * ~190 ns from JS against ~115 ns from C). The rest is the TLB invalidation every MOVE call
 * performs, which makes the *caller's* next memory accesses slower; kernel-floor's loop touches
 * a handful of pages, a JavaScript loop touches many (JIT code, heap, stack). The same effect
 * shows in C: touching 64 distinct pages after each call costs +445 ns after a MOVE but
 * +248 ns after a WAKE (and the gap remains with the process pinned to one CPU, so it is not
 * TLB-shootdown IPIs to other threads' CPUs). Batching amortises it, as it does the flush itself.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Values } from '../cli/args.js';
import { runTied } from '../cli/child.js';
import { HUGE_PAGE_SIZE, Mapping, PAGE_SIZE, Userfaultfd, probe, type MoveOptions } from '../gc/index.js';
import { runWhenMain } from '../cli/main.js';

const PS = PAGE_SIZE;
/** The team's kernel-floor tool (not part of the package): MOVEGC_KERNEL_FLOOR names it elsewhere. */
const FLOOR_SOURCE = process.env.MOVEGC_KERNEL_FLOOR ?? '/work/shared/tools/kernel-floor.c';

interface Args {
  pages: number;
  reps: number;
  json: boolean;
  floor: boolean;
  floorBin: string;
}

function toArgs(v: Values): Args {
  return { pages: v.pages as number, reps: v.reps as number, json: v.json === true, floor: v.noFloor !== true, floorBin: v.floor as string };
}

const now = (): number => Number(process.hrtime.bigint());
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Writes one byte in every page (faults each page in as an ordinary private page). */
function touch(u8: Uint8Array): void {
  for (let i = 0; i < u8.length; i += PS) u8[i] = 1;
}

function mapForBench(len: number): Mapping {
  return Mapping.anonymous(len, { alignment: HUGE_PAGE_SIZE, advise: ['NOHUGEPAGE', 'DONTFORK'] });
}

interface BatchResult { move: number; copy?: number }

/** One MOVE pass and (optionally) one COPY pass at `batch` pages per call: ns per page. */
function measureBatch(pages: number, batch: number, withCopy: boolean): BatchResult {
  const len = pages * PS;
  const bytes = batch * PS;
  const u = Userfaultfd.open({ features: ['MOVE'] });
  const src = mapForBench(len);
  const dst = mapForBench(len);
  try {
    u.register(dst.address, len);
    const s = new Uint8Array(src.view());
    const opts: MoveOptions = { dontWake: true };
    const sa = src.address;
    const da = dst.address;

    touch(s);
    let t = now();
    for (let off = 0; off < len; off += bytes) {
      if (u.moveOnce(da + off, sa + off, bytes, opts) !== bytes) throw new Error(`short MOVE at +${off}`);
    }
    const move = (now() - t) / pages;

    let copy: number | undefined;
    if (withCopy) {
      dst.advise('DONTNEED');
      touch(s);
      const copts = { dontWake: true };
      t = now();
      for (let off = 0; off < len; off += bytes) {
        if (u.copy(da + off, sa + off, bytes, copts) !== bytes) throw new Error(`short COPY at +${off}`);
      }
      copy = (now() - t) / pages;
    }
    return { move, copy };
  } finally {
    src.close();
    dst.close();
    u.close();
  }
}

/** memcpy of the whole range between two filled mappings: ns per page. */
function measureMemcpy(pages: number): number {
  const len = pages * PS;
  const a = mapForBench(len);
  const b = mapForBench(len);
  try {
    const x = new Uint8Array(a.view());
    const y = new Uint8Array(b.view());
    x.fill(1);
    y.fill(2);
    const t = now();
    y.set(x);
    const dt = now() - t;
    if (y[len - 1] !== 1) throw new Error('memcpy did not copy');
    return dt / pages;
  } finally {
    a.close();
    b.close();
  }
}

interface FloorRun {
  move: Record<number, number>;
  copy: Record<number, number>;
  memcpy?: number;
  thpNsPer2MiB?: number;
  faultP50us?: number;
  faultP99us?: number;
}

function haveCc(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function buildFloor(bin: string): Promise<string | undefined> {
  if (!fs.existsSync(FLOOR_SOURCE)) return `${FLOOR_SOURCE} not found (set MOVEGC_KERNEL_FLOOR to kernel-floor.c)`;
  if (!haveCc()) return 'no C compiler (cc)';
  try {
    fs.accessSync(path.dirname(path.resolve(bin)), fs.constants.W_OK); // said plainly, not as the linker's error (a CLI audit)
  } catch (e) {
    return `--floor ${bin}: cannot write there (${(e as { code?: string }).code ?? String(e)})`;
  }
  try {
    await runTied('cc', ['-O2', '-pthread', FLOOR_SOURCE, '-o', bin], 120_000); // its messages go to stderr
    return undefined;
  } catch (e) {
    return `cc failed: ${(e as Error).message}`;
  }
}

async function runFloor(bin: string, pages: number): Promise<FloorRun> {
  const out = await runTied(bin, [String(pages)], 300_000);
  const r: FloorRun = { move: {}, copy: {} };
  for (const line of out.split('\n')) {
    let m = /^batch\s+(\d+) pages: MOVE\s+([\d.]+) ns\/page\s+COPY\s+([\d.]+) ns\/page/.exec(line);
    if (m) {
      r.move[Number(m[1])] = Number(m[2]);
      r.copy[Number(m[1])] = Number(m[3]);
      continue;
    }
    if ((m = /^memcpy:\s+([\d.]+) ns\/page/.exec(line))) r.memcpy = Number(m[1]);
    else if ((m = /^THP 2 MiB MOVE:\s+([\d.]+) ns per 2 MiB/.exec(line))) r.thpNsPer2MiB = Number(m[1]);
    else if ((m = /p50 ([\d.]+) us\s+p99 ([\d.]+) us/.exec(line))) {
      r.faultP50us = Number(m[1]);
      r.faultP99us = Number(m[2]);
    }
  }
  if (r.move[512] === undefined) throw new Error(`could not parse kernel-floor output:\n${out}`);
  return r;
}

interface Row {
  key: string;
  label: string;
  binding: number[];
  floor: number[];
}

export async function main(v: Values): Promise<void> {
  const args = toArgs(v);
  const caps = probe();
  if (!caps.move.ok) {
    console.error(`UFFDIO_MOVE unavailable: ${caps.move.reason}`);
    process.exit(2);
  }

  // Build the C floor first, before this process maps anything of its own.
  let floorNote: string | undefined = args.floor ? await buildFloor(args.floorBin) : 'disabled (--no-floor)';
  const useFloor = floorNote === undefined;

  const rows: Row[] = [
    { key: 'move1', label: 'MOVE     1 page/call', binding: [], floor: [] },
    { key: 'move16', label: 'MOVE    16 pages/call', binding: [], floor: [] },
    { key: 'move512', label: 'MOVE   512 pages/call', binding: [], floor: [] },
    { key: 'copy1', label: 'COPY     1 page/call', binding: [], floor: [] },
    { key: 'copy512', label: 'COPY   512 pages/call', binding: [], floor: [] },
    { key: 'memcpy', label: 'memcpy (Uint8Array.set)', binding: [], floor: [] },
  ];
  const row = (k: string): Row => rows.find((r) => r.key === k)!;
  const floorExtra: Array<Pick<FloorRun, 'thpNsPer2MiB' | 'faultP50us' | 'faultP99us'>> = [];

  // Warm-up (not reported): lets the JIT compile the typed layer's call paths.
  measureBatch(4096, 1, true);
  measureBatch(4096, 16, false);
  measureBatch(4096, 512, true);

  for (let rep = 0; rep < args.reps; rep++) {
    if (useFloor) {
      try {
        const f = await runFloor(args.floorBin, args.pages);
        row('move1').floor.push(f.move[1]!);
        row('move16').floor.push(f.move[16]!);
        row('move512').floor.push(f.move[512]!);
        row('copy1').floor.push(f.copy[1]!);
        row('copy512').floor.push(f.copy[512]!);
        if (f.memcpy !== undefined) row('memcpy').floor.push(f.memcpy);
        floorExtra.push({ thpNsPer2MiB: f.thpNsPer2MiB, faultP50us: f.faultP50us, faultP99us: f.faultP99us });
      } catch (e) {
        floorNote = `kernel-floor failed: ${(e as Error).message}`;
      }
    }
    const b1 = measureBatch(args.pages, 1, true);
    const b16 = measureBatch(args.pages, 16, false);
    const b512 = measureBatch(args.pages, 512, true);
    row('move1').binding.push(b1.move);
    row('move16').binding.push(b16.move);
    row('move512').binding.push(b512.move);
    row('copy1').binding.push(b1.copy!);
    row('copy512').binding.push(b512.copy!);
    row('memcpy').binding.push(measureMemcpy(args.pages));
  }

  const med = (xs: number[]): number | null => (xs.length ? median(xs) : null);
  const f0 = (x: number | null): string => (x === null ? '-' : x.toFixed(0));
  const f2 = (x: number | null): string => (x === null ? '-' : x.toFixed(2));
  const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

  const lines: string[] = [];
  const mib = (args.pages * PS) / 2 ** 20;
  lines.push(`movegc binding microbenchmark: ${args.pages} pages (${mib} MiB) per pass, ${args.reps} repetitions, ns per page`);
  lines.push(`node ${process.version}, Linux ${os.release()}, ${os.cpus().length} CPUs, THP ${caps.thp}`);
  lines.push('');
  const head = ['operation', 'binding median', '(min - max)', 'floor median', 'binding/floor'];
  const table = rows.map((r) => {
    const b = med(r.binding);
    const f = med(r.floor);
    return [r.label, f0(b), `(${f0(Math.min(...r.binding))} - ${f0(Math.max(...r.binding))})`, f0(f), f2(ratio(b, f))];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push(fmt(head));
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const t of table) lines.push(fmt(t));
  lines.push('');
  const cm1 = ratio(med(row('copy1').binding), med(row('move1').binding));
  const cm512 = ratio(med(row('copy512').binding), med(row('move512').binding));
  const fcm1 = ratio(med(row('copy1').floor), med(row('move1').floor));
  const fcm512 = ratio(med(row('copy512').floor), med(row('move512').floor));
  lines.push(`COPY/MOVE   binding: ${f2(cm1)} at 1 page/call, ${f2(cm512)} at 512 pages/call   floor: ${f2(fcm1)}, ${f2(fcm512)}`);
  const m512 = ratio(med(row('move512').binding), med(row('move512').floor));
  if (useFloor && m512 !== null) {
    lines.push(`MOVE@512 binding/floor = ${f2(m512)} (goal <= 1.50): ${m512 <= 1.5 ? 'ok' : 'ABOVE GOAL'}`);
    const thp = med(floorExtra.map((x) => x.thpNsPer2MiB).filter((x): x is number => x !== undefined));
    const p50 = med(floorExtra.map((x) => x.faultP50us).filter((x): x is number => x !== undefined));
    lines.push(`kernel-floor also: THP 2 MiB MOVE ${f0(thp)} ns per 2 MiB, fault round trip p50 ${p50?.toFixed(1) ?? '-'} us`);
  } else {
    lines.push(`kernel-floor: ${floorNote}`);
  }

  const text = lines.join('\n');
  if (args.json) {
    console.error(text);
    const report = {
      pages: args.pages,
      reps: args.reps,
      pageSize: PS,
      node: process.version,
      kernel: os.release(),
      thp: caps.thp,
      unit: 'ns/page',
      results: Object.fromEntries(
        rows.map((r) => [r.key, { binding: { median: med(r.binding), samples: r.binding }, floor: { median: med(r.floor), samples: r.floor } }]),
      ),
      copyOverMove: { binding: { batch1: cm1, batch512: cm512 }, floor: { batch1: fcm1, batch512: fcm512 } },
      move512BindingOverFloor: m512,
      floor: useFloor ? { binary: args.floorBin, runs: floorExtra } : { note: floorNote },
    };
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(text);
  }
}

runWhenMain(import.meta.url, ['binding']);
