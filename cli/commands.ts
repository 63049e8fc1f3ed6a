/**
 * Every `movegc` subcommand: its options (one table, read for parsing and for --help) and the
 * module that runs it, loaded only when the command runs (so --help works without the addon).
 */
import fs from 'node:fs';
import { HEAP_VARIANTS, KNOBS, MUTATORS, knobDefault } from '../bench/knobs.js';
import { PATTERNS, SIZE_MIXES } from '../bench/workload.js';
import { evenMiB, type CommandSpec, type OptSpec, type Values } from './args.js';

const MODES = ['move', 'copy', 'stw'] as const;
const SPLAY_VARIANTS = [...HEAP_VARIANTS, 'v8'] as const;
const FAULT_PATHS = ['self', 'handler'] as const;
/** gc/options.ts MAX_CAPACITY in MiB (not imported: --help must work without the addon). */
const MAX_HEAP_MIB = 16382;
/** The workloads' PRNG takes a 32-bit seed (bench/workload.ts rng): a larger one aliased a smaller one (an audit). */
const MAX_SEED = 2 ** 32 - 1;
const allEven = (vs: number[]): string | undefined => vs.map(evenMiB).find(Boolean);

export interface Command {
  spec: CommandSpec;
  /** Files the command writes in its --out directory besides latest.json and latest.html (checked before the run). */
  outFiles?: string[];
  load: () => Promise<{ main: (v: Values) => Promise<void> }>;
}

/** examples/pinned-io.ts reads two of its 64 KiB buffers' worth (checked here: that module loads the addon). */
const PINNED_IO_MIN_BYTES = 2 * 64 * 1024;

/** Knob flags: one value for bench, a comma-separated list for sweep. */
function knobOptions(list: boolean): Record<string, OptSpec> {
  return Object.fromEntries(
    KNOBS.map((k): [string, OptSpec] => [
      k.flag,
      k.choices
        ? { type: list ? 'list' : 'string', choices: k.choices, default: knobDefault(k), help: k.help + (k.env ? ` ($${k.env} sets the default)` : '') + (list ? ' (a list: each is run)' : '') }
        : {
            type: list ? 'numbers' : k.integer ? 'int' : 'number',
            min: k.min,
            max: k.max,
            default: k.default,
            help: k.help + (list ? ' (a list: each is run)' : ''),
            ...(list && k.integer ? { check: (xs: number[]) => (xs.every(Number.isInteger) ? undefined : 'values must be integers') } : {}),
          },
    ]),
  );
}

const workloadOptions: Record<string, OptSpec> = {
  live: { type: 'number', min: 0, max: 1, default: 0.5, help: 'live fraction of the objects' },
  pattern: { type: 'string', choices: PATTERNS, default: 'interleaved', help: 'fragmentation: live and dead object by object, in 128 KiB blocks, or at random' },
  sizes: { type: 'string', choices: SIZE_MIXES, default: 'mixed', help: 'object sizes (see bench/workload.ts)' },
  modes: { type: 'list', choices: MODES, default: MODES, help: 'modes, run side by side' },
  reps: { type: 'int', min: 1, max: 1000, default: null, help: 'repetitions per mode, interleaved (default 5; 3 with --quick and for sweep)' },
  pinned: { type: 'number', min: 0, max: 1, default: 0, help: 'fraction of live objects pinned with heap.pin (at most 2000 pins)' },
  seed: { type: 'int', min: 0, max: 2 ** 31, default: 1, help: 'workload seed' },
  fill: { type: 'number', min: 0.05, max: 0.99, default: 0.9, help: 'fraction of the capacity allocated before collecting' },
  roots: { type: 'int', min: 0, max: 100000, default: 64, help: 'extra roots (the same at every size)' },
  'mutator-ms': { type: 'number', min: 0, max: 600000, default: null, metavar: 'MS', help: 'the mutator runs at least this long after collect() (default max(100, heap MiB / 2))' },
  'sample-ms': { type: 'number', min: 0.1, max: 1000, default: 1, metavar: 'MS', help: 'timeline sampling period' },
  mutator: { type: 'string', choices: MUTATORS, default: 'paced', help: 'paced: one touch every --touch-us; paced-idle: the same, its sleeps given to a compacting cycle (heap.idleCompact); busy: back to back (worst case); none' },
  'touch-us': { type: 'number', min: 0, max: 1e6, default: 100, metavar: 'US', help: 'paced mutator: microseconds between touches' },
  'warm-cycles': { type: 'int', min: 0, max: 100, default: 0, metavar: 'N', help: 'collections of each fresh heap before the measured one (steady state: pages the last cycle installed, untouched since)' },
  verify: { type: 'boolean', help: 'heap.verify() after every cycle (slow; reported, never asserted)' },
  'no-floor': { type: 'boolean', help: 'skip the kernel floor (MOVE/COPY per page, fault round trip)' },
  out: { type: 'string', default: 'bench/results', metavar: 'DIR', help: 'results directory, relative to the current directory' },
};

const exampleCommon = (heap: number): Record<string, OptSpec> => ({
  mode: { type: 'string', choices: MODES, default: 'move', conflicts: ['compare'], help: 'the heap\'s mode' },
  compare: { type: 'boolean', help: 'run every mode of --modes, each in its own child process, side by side' },
  modes: { type: 'list', choices: MODES, default: MODES, needs: 'compare', help: 'modes for --compare' },
  heap: { type: 'int', min: 2, max: MAX_HEAP_MIB, default: heap, metavar: 'MiB', check: evenMiB, help: 'heap capacity' },
  out: { type: 'string', metavar: 'FILE', help: 'write the results (with provenance) as JSON to FILE' },
  json: { type: 'boolean', help: 'print one RESULT line of JSON on stdout (what --compare reads from its children)' },
});

export const COMMANDS: Record<string, Command> = {
  bench: {
    spec: {
      name: 'bench',
      summary: 'the same fragmented heap compacted in each mode side by side, with a concurrent mutator; writes JSON and an HTML report',
      options: {
        heap: { type: 'int', min: 2, max: MAX_HEAP_MIB, default: null, metavar: 'MiB', check: evenMiB, help: 'heap capacity (default 1024; 256 with --quick)' },
        quick: { type: 'boolean', help: '256 MiB heap, 3 reps, shorter floor: the whole run in under a minute' },
        ...workloadOptions,
        ...knobOptions(false),
      },
      notes:
        'Reps are interleaved (rep 1: move, copy, stw; rep 2: ...), each on a fresh heap built the same way from the seed;\n' +
        'figures are medians. Writes OUT/latest.{json,html} and timestamped copies. The JSON records the package version, git\n' +
        'commit, load average at start and end, THP and every heap option; a warning is printed when the load exceeds the cores.',
    },
    load: () => import('../bench/run.js'),
  },
  sweep: {
    outFiles: ['sweep-latest.json', 'sweep-latest.html'],
    spec: {
      name: 'sweep',
      summary: 'the bench over heap sizes (and over lists of heap options): cost per live MiB and pause per heap size',
      options: {
        heaps: { type: 'numbers', min: 2, max: MAX_HEAP_MIB, default: [64, 256, 1024, 2048, 4094], metavar: 'LIST', check: allEven, help: 'heap sizes in MiB' },
        ...workloadOptions,
        ...knobOptions(true),
      },
      notes: 'Every combination of the listed heap options is run at every size, e.g. movegc sweep --heaps 64,1024 --fault-install copy,move.\nWrites OUT/sweep-latest.{json,html}, and OUT/latest.{json,html} as bench does (the last report of either); later bench reports show that sweep, labelled as such.',
    },
    load: () => import('../bench/run.js').then((m) => ({ main: (v: Values) => m.main({ ...v, sweep: true }) })),
  },
  pause: {
    spec: {
      name: 'pause',
      summary: 'the compaction pause against heap size with the same roots (median over cycles)',
      options: {
        sizes: { type: 'numbers', min: 2, max: MAX_HEAP_MIB, default: [64, 1024], metavar: 'LIST', check: allEven, help: 'heap sizes in MiB' },
        modes: { type: 'list', choices: MODES, default: ['move', 'copy'], help: 'modes' },
        cycles: { type: 'int', min: 1, max: 10000, default: 9, help: 'cycles per size' },
        roots: { type: 'int', min: 1, max: 100000, default: 64, help: 'roots the live nodes hang from' },
        ...knobOptions(false),
      },
    },
    load: () => import('../bench/pause.js'),
  },
  soak: {
    spec: {
      name: 'soak',
      summary: 'thousands of cycles with a concurrent mutator checked against a model, with injected faults',
      options: {
        cycles: { type: 'int', min: 0, default: 2000, help: 'stop after N cycles in all (0: no limit)' },
        seconds: { type: 'number', min: 0, default: 0, help: 'stop after S seconds of cycles, counted once the heaps are filled (0: no limit; at least one cycle runs); whichever comes first' },
        heap: { type: 'int', min: 2, max: MAX_HEAP_MIB, default: 32, metavar: 'MiB', check: evenMiB, help: 'capacity of each heap' },
        modes: { type: 'list', choices: MODES, default: MODES, help: 'heaps run side by side, one cycle each in turn' },
        ops: { type: 'int', min: 0, default: 400, help: 'mutator operations during each cycle' },
        faults: { type: 'number', min: 0, max: 1, default: 0.15, metavar: 'P', help: 'probability that a cycle gets an injected fault' },
        check: { type: 'int', min: 1, default: 25, help: 'full model comparison and heap.verify() every N cycles of a heap' },
        seed: { type: 'int', min: 0, max: MAX_SEED, default: 1, help: 'PRNG seed' },
        'stall-ms': { type: 'int', min: 1, max: 600_000, default: 50, help: 'heap option stallMs: a collector thread silent this long is taken over (injected stalls scale with it)' },
        json: { type: 'boolean', help: 'the summary as one JSON line on stdout (progress on stderr)' },
        ...knobOptions(false),
      },
      notes:
        'Exit status 1 when a verifier failure or a model mismatch occurred, 2 on an error.\n' +
        'The heap options apply to every heap, e.g. movegc soak --modes move --huge-pages on --large-object-bytes 4096 --collector-policy idle.',
    },
    load: () => import('../bench/soak.js'),
  },
  binding: {
    spec: {
      name: 'binding',
      summary: 'per-page cost of UFFDIO_MOVE, UFFDIO_COPY and memcpy through the binding, against kernel-floor in C',
      options: {
        pages: { type: 'int', min: 512, max: 1_048_576, default: 65536, check: (v: number) => (v % 512 ? `must be a multiple of 512 (the largest batch), got ${v}` : undefined), help: 'pages per pass' },
        reps: { type: 'int', min: 1, max: 1000, default: 5, help: 'passes; figures are medians' },
        json: { type: 'boolean', help: 'table on stderr, JSON report on stdout' },
        'no-floor': { type: 'boolean', help: 'do not build and run kernel-floor' },
        floor: { type: 'string', default: '/tmp/kernel-floor', metavar: 'PATH', help: 'where kernel-floor is built' },
      },
    },
    load: () => import('../bench/binding.js'),
  },
  probe: {
    spec: {
      name: 'probe',
      summary: 'what this kernel offers: userfaultfd (and how it opens), MOVE, COPY, mremap(MREMAP_DONTUNMAP), THP; the mode a heap would get',
      options: { json: { type: 'boolean', help: 'the capabilities as JSON' } },
    },
    load: () => import('./probe.js'),
  },
  splay: {
    outFiles: ['splay-latest.json', 'splay-latest.html'],
    spec: {
      name: 'splay',
      summary: "Octane's Splay and SplayLatency on the movegc heap in each mode, and on plain JavaScript objects (V8's collector)",
      options: {
        variants: { type: 'list', choices: SPLAY_VARIANTS, default: SPLAY_VARIANTS, help: 'heap modes (move/copy: with --fault-path; move-handler/copy-handler: the kernel fault path), and v8 for plain objects' },
        reps: { type: 'int', min: 1, max: 100, default: 3, help: 'repetitions per variant, interleaved, each in a fresh process' },
        seconds: { type: 'number', min: 0.1, max: 3600, default: 3, help: 'benchmark runs (80 insert/remove pairs each) for this long after setup' },
        heap: { type: 'int', min: 2, max: MAX_HEAP_MIB, default: 64, metavar: 'MiB', check: evenMiB, help: 'movegc heap capacity (the tree holds about 33 MiB)' },
        trigger: { type: 'number', min: 0.1, max: 1, default: 0.9, help: 'collect when heap use passes this fraction of the capacity' },
        seed: { type: 'int', min: 0, max: MAX_SEED, default: 49734321, help: 'key generator seed (the same keys in every variant)' },
        out: { type: 'string', default: 'bench/results', metavar: 'DIR', help: 'results directory, relative to the current directory' },
        variant: { type: 'string', choices: SPLAY_VARIANTS, conflicts: ['variants', 'reps'], help: 'run one variant in this process and print one RESULT line (what the parent runs)' },
        ...knobOptions(false),
      },
      notes:
        'Writes OUT/splay-latest.json and .html; the bench report shows the latest Splay results too.\n' +
        'Per variant also: the collection run (the run during which collect() returned, its time removed), the stall per\n' +
        'touched unbuilt page, pages built by self-service, kernel faults; and self / handler ratios against issue 11\'s targets.',
    },
    load: () => import('../bench/splay.js'),
  },
  'example art': {
    spec: {
      name: 'example art',
      summary: "an ART-style app's 60 fps frames while the heap compacts (npm start runs it with --compare)",
      options: {
        ...exampleCommon(32),
        modes: { type: 'list', choices: HEAP_VARIANTS, default: ['move', 'move-handler', 'copy', 'stw'], needs: 'compare', help: 'columns for --compare: modes, and move-handler/copy-handler for the kernel fault path' },
        'fault-path': { type: 'string', choices: FAULT_PATHS, default: 'self', help: 'a page the frames touch during compaction: built by the accessor (self) or left to the kernel fault and the fault server (handler); --compare: for move and copy' },
        seconds: { type: 'number', min: 0.1, max: 3600, default: null, help: 'seconds of frames (default 10; 6.5 per column with --compare)' },
        nodes: { type: 'int', min: 1, max: 10_000_000, default: 60000, help: 'views in the UI tree' },
        visit: { type: 'int', min: 1, max: 10_000_000, default: 1500, help: 'views touched per frame' },
        threshold: { type: 'number', min: 0.01, max: 1, default: 0.6, help: 'collect when heap use passes this fraction' },
        every: { type: 'int', min: 0, default: 0, help: 'collect every N frames instead (0: by threshold)' },
        safepoint: { type: 'string', choices: ['end', 'start'], default: 'end', help: "where each frame calls heap.safepoint(): after its work (a pause then leaves the rest of the frame's budget to what runs concurrently after it) or before it" },
        'idle-compact': { type: 'string', choices: ['on', 'off'], default: 'off', help: "between frames, the time left before the next one goes to the compacting cycle (heap.idleCompact): pages the tree's root reaches first are built before a frame touches them" },
        'huge-pages': { type: 'string', choices: ['off', 'on'], default: 'off', help: 'the heap backed by transparent huge pages (hugePages): in move mode pages are then built 2 MiB at a time and moved in as one PMD' },
        'unbuilt-reads': {
          type: 'string',
          choices: ['build', 'from-space'],
          default: 'build',
          help: "with --fault-path self, a read of a page not yet built: builds it, as ART's mutator does (the default here: each frame reads the same few hundred pages again), or is served in from-space (the library's default, for programs that touch many pages a few times each, as Octane Splay does)",
        },
        seed: { type: 'int', min: 0, max: MAX_SEED, default: 42, help: 'PRNG seed' },
        reps: { type: 'int', min: 1, max: 100, default: 1, needs: 'compare', help: "--compare: rounds of every column, interleaved, each in a fresh process; the table shows each column's median round (by frames over budget), the summary every round" },
      },
    },
    load: () => import('../examples/art-app.js'),
  },
  'example gcbench': {
    spec: {
      name: 'example gcbench',
      summary: "Boehm's GCBench (binary trees) on the heap, the long-lived data checked at the end",
      options: {
        ...exampleCommon(64),
        trigger: { type: 'number', min: 0.01, max: 1, default: 0.75, help: 'collect between trees when heap use passes this fraction' },
        stretch: { type: 'int', min: 1, max: 24, default: 18, help: 'stretch tree depth' },
        'long-lived': { type: 'int', min: 1, max: 24, default: 16, help: 'long-lived tree depth' },
        'max-depth': { type: 'int', min: 4, max: 24, default: 16, help: 'deepest short-lived trees' },
        scale: { type: 'number', min: 0.001, max: 100, default: 1, help: 'iterations multiplier' },
      },
    },
    load: () => import('../examples/gcbench.js'),
  },
  'example pinned-io': {
    spec: {
      name: 'example pinned-io',
      summary: 'io_uring READ_FIXED into a heap object during compaction, with and without heap.pin',
      options: {
        mode: { type: 'string', choices: ['move', 'copy'], default: 'move', help: "the heap's mode" },
        heap: { type: 'int', min: 2, max: MAX_HEAP_MIB, default: 32, metavar: 'MiB', check: evenMiB, help: 'heap capacity' },
        out: exampleCommon(32).out,
        file: {
          type: 'string',
          metavar: 'PATH',
          help: `file to read, at least ${PINNED_IO_MIN_BYTES / 1024} KiB (default: 1 MiB of random bytes in a temporary file)`,
          check: (p: string) => {
            try {
              const st = fs.statSync(p);
              return !st.isFile() ? `${p} is not a regular file` : st.size < PINNED_IO_MIN_BYTES ? `${p} has ${st.size} bytes; at least ${PINNED_IO_MIN_BYTES} are needed` : undefined;
            } catch (e) {
              return `${p}: ${(e as NodeJS.ErrnoException).code ?? 'cannot be read'}`;
            }
          },
        },
      },
    },
    load: () => import('../examples/pinned-io.js'),
  },
};

export const EXAMPLES = ['art', 'gcbench', 'pinned-io'] as const;
