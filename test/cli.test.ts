/**
 * The `movegc` command as a user meets it (dist/cli/movegc.js, run as a process): --help for
 * the command and every subcommand, usage errors with a usage line and no stack, output
 * under the current directory, and the provenance every results file carries.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { itKernel } from './kernel.js';
import { COMMANDS as SPECS } from '../dist/cli/commands.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'dist', 'cli', 'movegc.js');
const COMMANDS = ['bench', 'sweep', 'pause', 'soak', 'binding', 'probe', 'splay', 'example art', 'example gcbench', 'example pinned-io'];

function movegc(args: string[], cwd = root, timeout = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const STACK = /^\s+at /m;

describe('movegc --help', () => {
  it('lists every command', () => {
    const r = movegc(['--help']);
    expect(r.status).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c} `);
  });

  it.each(COMMANDS)('%s --help prints its options and runs nothing', (c) => {
    const t = Date.now();
    const r = movegc([...c.split(' '), '--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`usage: movegc ${c} [options]`);
    expect(r.stdout).toContain('  -h, --help');
    expect(Date.now() - t).toBeLessThan(10_000);
  });
});

describe('modules run as programs are their commands', () => {
  // The issues quote `node dist/bench/run.js ...` and `node dist/examples/art-app.js ...`.
  const direct: Array<[string, string]> = [
    ['bench/run.js', 'bench'],
    ['examples/art-app.js', 'example art'],
    ['examples/gcbench.js', 'example gcbench'],
    ['examples/pinned-io.js', 'example pinned-io'],
    // (These four did nothing at all run directly.)
    ['bench/pause.js', 'pause'],
    ['bench/binding.js', 'binding'],
    ['bench/soak.js', 'soak'],
    ['bench/splay.js', 'splay'],
  ];
  it.each(direct)('node dist/%s --help is movegc %s --help', (file, c) => {
    const r = spawnSync(process.execPath, [path.join(root, 'dist', file), '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`usage: movegc ${c} [options]`);
  });

  // The three scripts behind npm run bench:barrier / bench:accessors / bench:builder crashed
  // with a parseArgs stack on --help (found by the README audit).
  it.each(['barrier', 'accessors', 'builder'])('node dist/bench/%s.js: --help prints its options, a bad flag is one line and exit 2', (name) => {
    const file = path.join(root, 'dist', 'bench', `${name}.js`);
    const h = spawnSync(process.execPath, [file, '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toContain(`usage: npm run bench:${name} -- [options]`);
    expect(h.stdout).toContain('--reps N');
    const bad = spawnSync(process.execPath, [file, '--rep', '3'], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown option --rep \(did you mean --reps\?\)/);
    expect(bad.stderr).not.toMatch(STACK);
  });

  it.each(['barrier', 'accessors'])('node dist/bench/%s.js --baseline: a directory or a file that is no movegc build is one line, exit 2', (name) => {
    // An audit: both ended in a stack (ERR_UNSUPPORTED_DIR_IMPORT, a SyntaxError).
    const file = path.join(root, 'dist', 'bench', `${name}.js`);
    for (const [p, msg] of [['test', /--baseline test is a directory/], ['package.json', /--baseline package.json: not a movegc build's gc\/index.js/]] as const) {
      const r = spawnSync(process.execPath, [file, '--baseline', p, '--ops', '1', '--reps', '1'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(STACK);
    }
  });

  it('a usage error through bench/run.js exits 2 with the reason', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'run.js'), '--heapp', '64'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/movegc bench: unknown option --heapp/);
  });
});

describe('usage errors: the reason and a usage line, exit 2, no stack', () => {
  const cases: Array<[string[], RegExp]> = [
    [['bench', '--heapp', '64'], /movegc bench: unknown option --heapp \(did you mean --heap\?\)/],
    [['bench', '--heap', 'abc'], /--heap must be a decimal number, got 'abc'/],
    [['bench', '--heap', '63'], /--heap must be an even number of MiB/],
    [['bench', '--pause-order', 'sideways'], /--pause-order must be one of remap-first, register-first/],
    [['sweep', '--fault-install', 'copy,teleport'], /--fault-install: unknown value 'teleport'/],
    [['binding', '--pages', '1000'], /--pages must be a multiple of 512/],
    [['pause', '--modes', 'move,fast'], /--modes: unknown value 'fast'/],
    [['soak', '--cycles'], /--cycles needs a value/],
    [['example', 'art', '--seconds=-3'], /--seconds must be in \[0.1, 3600\]/],
    [['example', 'art', '--seconds', '-3'], /--seconds needs a value/],
    [['example', 'gcbench', 'extra'], /unexpected argument 'extra'/],
    [['example'], /which example\? examples: art, gcbench, pinned-io/],
    [['benhc'], /unknown command 'benhc' \(did you mean 'bench'\?\)/],
    [['splay', '--variants', 'move,move-self'], /--variants: unknown value 'move-self' \(expected move, move-handler, copy, copy-handler, stw, v8\)/],
    [['example', 'art', '--fault-path', 'kernel'], /--fault-path must be one of self, handler/],
    [['example', 'art', '--modes', 'move,stw-handler'], /--modes: unknown value 'stw-handler'/],
    [['example', 'art', '--safepoint', 'middle'], /--safepoint must be one of end, start/],
    [['example', 'art', '--reps', '0'], /--reps must be in \[1, 100\]/],
    // --out, checked before the run: a file in the way, a path no one can create (under /proc
    // Node's recursive mkdir never returned), a directory where a file is expected.
    [['bench', '--out', 'package.json'], /--out package.json: .*package.json is not a directory/],
    [['bench', '--out', 'package.json/results'], /--out package.json\/results: .*package.json is not a directory/],
    [['splay', '--out', '/proc/movegc-nope'], /--out \/proc\/movegc-nope: cannot create \/proc\/movegc-nope/],
    [['example', 'gcbench', '--out', 'test'], /--out test: .*test is a directory \(a file name is expected\)/],
    // Found by a front-door audit: these ran to the end, then died with a stack (or guessed wrong).
    [['example', 'art', '--out', '/proc/movegc-nope.json'], /--out \/proc\/movegc-nope.json: \/proc is on a kernel file system/],
    [['bench', '--heep', '32'], /unknown option --heep \(did you mean --heap\?\)/],
    [['bench', '--large-object-bytes', '1.5'], /--large-object-bytes must be an integer, got 1.5/],
    [['sweep', '--large-object-bytes', '65536,0.5'], /--large-object-bytes values must be integers/],
    [['example', 'pinned-io', '--file', '/nonexistent-movegc'], /--file \/nonexistent-movegc: ENOENT/],
    [['example', 'pinned-io', '--file', 'package.json'], /--file package.json has \d+ bytes; at least 131072 are needed/],
    // A second audit: accepted before, and run (or ignored).
    [['soak', '--stall-ms', '700000'], /--stall-ms must be in \[1, 600000\], got 700000/],
    [['bench', '--out', ''], /--out needs a path, got ''/],
    [['splay', '--out', ' '], /--out needs a path, got ' '/],
    [['--version', 'extra'], /unexpected argument 'extra' after --version/],
    [['--help', 'extra'], /unexpected argument 'extra' after --help/],
    // A fourth audit: lists with a value twice ran it twice under one name (its reps pooled,
    // soak's statistics overwritten), and numbers Number() reads but nobody means.
    [['bench', '--modes', 'stw,stw'], /--modes: 'stw' is given twice/],
    [['soak', '--modes', 'move,copy,move'], /--modes: 'move' is given twice/],
    [['sweep', '--heaps', '64,64'], /--heaps: '64' is given twice/],
    [['bench', '--heap', '0x10'], /--heap must be a decimal number, got '0x10'/],
    [['bench', '--heap', ' 64'], /--heap must be a decimal number, got ' 64'/],
    [['bench', '--touch-us', '1e-400'], /--touch-us: 1e-400 is too small to be told from 0/],
    [['bench', '--help=1'], /--help takes no value/],
    // A CLI audit: the last of a repeated flag won, silently (--modes move --modes stw ran stw alone).
    [['example', 'gcbench', '--heap', '16', '--heap', '64'], /--heap is given twice/],
    [['example', 'gcbench', '--compare', '--modes', 'move', '--modes', 'stw'], /--modes is given twice/],    // A bounds audit: a fraction of the capacity past 1.
    [['bench', '--fill', '1.5'], /--fill must be in \[0.05, 0.99\], got 1.5/],
  ];
  it.each(cases)('%j', (args, msg) => {
    const r = movegc(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).toMatch(/^usage: movegc /m);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stdout).toBe('');
  });
});

describe('numeric options: every bound in the option table is enforced by the command', () => {
  const NUMERIC = ['number', 'int', 'numbers'];
  it('every numeric option has a lower bound, and an upper one but for these (counts and sizes where any value means something)', () => {
    const unbounded: string[] = [];
    for (const [c, cmd] of Object.entries(SPECS))
      for (const [k, o] of Object.entries(cmd.spec.options)) {
        if (!NUMERIC.includes(o.type)) continue;
        expect(o.min, `${c} --${k}`).toBeTypeOf('number');
        if (o.max === undefined) unbounded.push(`${c} --${k}`);
      }
    const knobs = (c: string): string[] => [`${c} --dense-threshold`, `${c} --large-object-bytes`];
    expect(unbounded.sort()).toEqual(
      [...['bench', 'sweep', 'pause', 'soak', 'splay'].flatMap(knobs), 'soak --cycles', 'soak --seconds', 'soak --ops', 'soak --check', 'example art --every'].sort(),
    );
  });

  // Per command: each bound crossed just past it (--flag=VALUE, so a negative value is a value):
  // exit 2, the reason naming the flag and its bounds, the usage line, nothing else.
  it.each(Object.keys(SPECS))('%s: a value past each bound is refused in one line', (c) => {
    let tried = 0;
    for (const [k, o] of Object.entries(SPECS[c].spec.options)) {
      const step = (b: number): number => (o.type === 'number' ? Math.max(0.001, Math.abs(b) * 0.01) : 1);
      const past = [o.max === undefined ? undefined : o.max + step(o.max), o.min === undefined ? undefined : o.min - step(o.min)];
      for (const v of past) {
        if (v === undefined) continue;
        tried++;
        const r = movegc([...c.split(' '), `--${k}=${v}`]);
        const lines = r.stderr.trimEnd().split('\n');
        expect(r.status, `${c} --${k}=${v}: ${r.stderr}`).toBe(2);
        expect(lines[0]).toBe(`movegc ${c}: --${k} must be in [${o.min ?? '-inf'}, ${o.max ?? 'inf'}], got ${v}`);
        expect(lines.slice(1).join('\n')).toMatch(/^usage: movegc .*$/);
        expect(r.stderr).not.toMatch(STACK);
        expect(r.stdout).toBe('');
      }
    }
    if (c !== 'probe') expect(tried, c).toBeGreaterThan(0);
  });
});

describe('errors from the heap: one line with the code, exit 1, no stack', () => {
  it('a bad MOVEGC_LOG level', () => {
    const r = spawnSync(process.execPath, [CLI, 'example', 'art', '--seconds', '0.2'], { cwd: root, encoding: 'utf8', env: { ...process.env, MOVEGC_LOG: 'loud' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/MOVEGC_LOG must be one of trace, debug, info, warn, error, fatal, silent, got 'loud'/);
    expect(r.stderr).not.toMatch(STACK);
  });
  it('a bad MOVEGC_LOG_FORMAT (any but json or pretty gave pretty output, silently)', () => {
    const r = spawnSync(process.execPath, [CLI, 'example', 'art', '--seconds', '0.2'], { cwd: root, encoding: 'utf8', env: { ...process.env, MOVEGC_LOG_FORMAT: 'xml' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/MOVEGC_LOG_FORMAT must be json or pretty, got 'xml'/);
    expect(r.stderr).not.toMatch(STACK);
  });

  it('a --compare column that fails: its own line, then one line from the parent', () => {
    const r = movegc(['example', 'art', '--compare', '--modes', 'stw', '--heap', '2', '--seconds', '0.2'], root, 60_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[ERR_HEAP_FULL\]/);
    expect(r.stderr).toMatch(/run failed \(exit 1; its error is above\)/);
    expect(r.stderr).not.toMatch(STACK);
  });
  it('soak with a heap option the heap refuses (it printed a stack)', () => {
    const r = movegc(['soak', '--cycles', '1', '--heap', '2', '--modes', 'stw', '--large-object-bytes', '4194304']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^movegc soak: largeObjectBytes must be an integer in \[0, capacity\] .*\[ERR_OUT_OF_RANGE\]$/m);
    expect(r.stderr).not.toMatch(STACK);
  });
  it('an --out whose latest.html is a directory is refused before the run, and help help is the top help', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-out-'));
    try {
      fs.mkdirSync(path.join(dir, 'latest.html'));
      const r = movegc(['bench', '--quick', '--out', dir]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/latest.html cannot be written \(EISDIR\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const h = movegc(['help', 'help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^movegc \d/);
  });

  it('help COMMAND prints the command\'s help', () => {
    const r = movegc(['help', 'bench']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(movegc(['bench', '--help']).stdout);
  });
  it('a workload larger than --heap', () => {
    const r = movegc(['example', 'gcbench', '--heap', '2', '--scale', '0.001']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^movegc example gcbench: heap full: .* \[ERR_HEAP_FULL\]$/m);
    expect(r.stderr).not.toMatch(STACK);
  });
});

describe('child runs die with their parent', () => {
  // A second audit: SIGTERM to `example art --compare` left the column's child running on, an
  // orphan, until its --seconds were up (cli/child.ts passes the signal on).
  it('SIGTERM to a --compare run ends the column it is running, then the run, by the same signal', async () => {
    const parent = spawn(process.execPath, [CLI, 'example', 'art', '--compare', '--modes', 'stw,copy', '--seconds', '30', '--heap', '16'], { cwd: root, stdio: ['ignore', 'ignore', 'ignore'] });
    const childOf = (pid: number): number | null => {
      for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
          if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(d); // field 4: ppid
        } catch {
          // exited meanwhile
        }
      }
      return null;
    };
    let child: number | null = null;
    for (let i = 0; i < 200 && child === null; i++) {
      await new Promise((r) => setTimeout(r, 50));
      child = childOf(parent.pid!);
    }
    expect(child, 'the column started').not.toBeNull();
    const ended = new Promise<NodeJS.Signals | null>((r) => parent.once('exit', (_code, sig) => r(sig)));
    parent.kill('SIGTERM');
    expect(await ended).toBe('SIGTERM');
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(child!); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(child!), 'the column is gone').toBe(false);
  }, 30_000);
});

describe('results', () => {
  it('probe --json reports the capabilities', () => {
    const r = movegc(['probe', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const caps = JSON.parse(r.stdout);
    expect(caps).toHaveProperty('move.ok');
    expect(['move', 'copy', 'stw']).toContain(caps.defaultMode);
  });

  itKernel('bench writes under the current directory, with provenance and every heap option', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['bench', '--heap', '4', '--reps', '1', '--modes', 'stw,move', '--no-floor', '--mutator-ms', '0', '--pause-order', 'register-first', '--warm-cycles', '1'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const file = path.join(cwd, 'bench', 'results', 'latest.json');
      expect(fs.existsSync(file)).toBe(true);
      expect(fs.existsSync(path.join(cwd, 'bench', 'results', 'latest.html'))).toBe(true);
      const res = JSON.parse(fs.readFileSync(file, 'utf8'));
      const p = res.provenance;
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
      expect(p.package).toEqual({ name: 'movegc', version: pkg.version });
      expect(p.gitCommit).toMatch(/^[0-9a-f]{40}$/); // this checkout is a git work tree
      expect(p.load.start).toHaveLength(3);
      expect(p.load.end).toHaveLength(3);
      expect(p.cores).toBe(os.cpus().length);
      expect(typeof p.thp).toBe('string');
      expect(p.busy).toBe(p.load.start[0] > p.cores || p.load.end[0] > p.cores);
      if (p.busy) expect(r.stderr).toMatch(/WARNING: load average [\d.]+ at the (start|end) of the run on \d+ cores/);
      expect(p.heapOptions).toMatchObject({ capacityMiB: [4], modes: ['stw', 'move'], pauseOrder: 'register-first', faultInstall: 'copy', denseThreshold: 0.95, largeObjectBytes: 65536 });
      // The measured collection is each heap's second: its rep's cycle number says so.
      expect(res.main.params?.warmCycles ?? res.params?.warmCycles).toBe(1);
      for (const m of ['stw', 'move']) expect(res.main.modes[m].raw[0].cycle).toBe(2);
      expect(r.stdout).toMatch(/measured after 1 collections of each heap/);
      expect(res.main.heapOptions.pauseOrder).toBe('register-first');
      expect(r.stdout).not.toMatch(/goals/); // the targets are in the report's appendix, not the terminal
      // The compactor's split and what broke its install runs, per mode and per rep.
      const mv = res.main.modes.move;
      expect(mv.compactorBuildMs + mv.compactorInstallMs).toBeGreaterThan(0);
      expect(typeof mv.pagesBySelf).toBe('number');
      expect(mv.raw[0].batchPages.count).toBe(mv.raw[0].moveCalls + mv.raw[0].copyCalls);
      expect(mv.raw[0].faultPathStalls.self.count).toBe(mv.raw[0].pages.builtBySelf);
      expect(r.stdout).toMatch(/compactor ms build \/ install \/ release \/ other; .*: move \d+ \/ \d+ \/ \d+ \/ \d+; [\d.]+; \d+/);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  it('an earlier run\'s results in --out that are malformed or carry markup are left out of the report, not this run', async () => {
    // An audit: a splay-latest.json or sweep-latest.json of the wrong shape crashed bench after
    // all its measuring (a stack, nothing written), and their strings reached latest.html unescaped.
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    const inject = '<img src=x onerror=alert(1)>';
    const cases: Array<[string, string, unknown]> = [
      ['a Splay file of the right schema and the wrong shape', 'splay-latest.json', { schema: 'movegc-splay/2' }],
      ['a sweep with no points', 'sweep-latest.json', { startedAt: 'then', sweep: { points: null } }],
      ['a sweep carrying markup in a mode name', 'sweep-latest.json', { startedAt: 'then', sweep: { points: [{ heapMiB: 64, msPerLiveMiB: { [inject]: 1 }, compactionMs: {}, pauseMs: {}, collectMs: {} }], pauseSmallVsLarge: null } }],
    ];
    try {
      for (const [what, name, content] of cases) {
        const out = path.join(cwd, 'out');
        fs.rmSync(out, { recursive: true, force: true });
        fs.mkdirSync(out);
        fs.writeFileSync(path.join(out, name), JSON.stringify(content));
        const r = movegc(['bench', '--heap', '4', '--reps', '1', '--modes', 'stw', '--no-floor', '--out', out], cwd, 60_000);
        expect(r.status, `${what}: ${r.stderr.slice(-1500)}`).toBe(0);
        expect(r.stderr, what).not.toMatch(STACK);
        expect(r.stderr, what).toMatch(/left out/);
        const res = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
        expect(res.main.modes.stw.raw).toHaveLength(1);
        expect(fs.readFileSync(path.join(out, 'latest.html'), 'utf8'), what).not.toContain('<img');
      }
      // The report escapes such strings itself too (a sweep handed to it directly).
      const res = JSON.parse(fs.readFileSync(path.join(cwd, 'out', 'latest.json'), 'utf8'));
      res.sweep = { ...(cases[2][2] as { sweep: object }).sweep, pauseSmallVsLarge: { [inject]: { pause64MiBMs: 1, pause1GiBMs: 1, ratio: 1, roots: 1 } } };
      res.sweep.points[0].label = inject;
      const { renderHtml } = await import('../dist/bench/report.js');
      const html = renderHtml(res);
      expect(html).toContain('&lt;img');
      expect(html).not.toContain('<img');
      // stw has no stalled accesses to count: '-' as in the terminal, not 0 (an audit).
      expect(html).toContain('<th>stalled accesses (self-service or fault)</th><td>-</td>');
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, 150_000);

  it('splay writes only under --out: its children leave nothing in the current directory', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-out-'));
    try {
      const r = movegc(['splay', '--variants', 'v8', '--reps', '1', '--seconds', '0.1', '--out', out], cwd, 60_000);
      expect(r.status, r.stderr.slice(-1500)).toBe(0);
      expect(fs.existsSync(path.join(out, 'splay-latest.json'))).toBe(true);
      expect(fs.readdirSync(cwd)).toEqual([]); // an audit: each child made ./bench/results
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  it('an example with --json prints one RESULT line and still writes --out, alone and with --compare', () => {
    // An audit: --json made the example skip --out (and --compare --json printed its table, no RESULT line).
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const small = ['--heap', '16', '--stretch', '8', '--long-lived', '6', '--max-depth', '6'];
      for (const [args, n] of [[['--mode', 'stw'], 1], [['--compare', '--modes', 'stw,move'], 2]] as const) {
        const r = movegc(['example', 'gcbench', ...args, ...small, '--json', '--out', 'r/gc.json'], cwd, 120_000);
        expect(r.status, r.stderr.slice(-2000)).toBe(0);
        const lines = r.stdout.trim().split('\n');
        expect(lines, r.stdout).toHaveLength(1);
        expect(lines[0]).toMatch(/^RESULT /);
        const out = JSON.parse(fs.readFileSync(path.join(cwd, 'r', 'gc.json'), 'utf8'));
        expect(out.provenance.package.name).toBe('movegc');
        expect(out.results).toHaveLength(n);
        fs.rmSync(path.join(cwd, 'r'), { recursive: true });
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, 150_000);

  it('art --compare --json prints its RESULT line alone on stdout (the report pointer went there too)', () => {
    const r = movegc(['example', 'art', '--compare', '--modes', 'stw', '--heap', '8', '--nodes', '2000', '--visit', '50', '--seconds', '0.3', '--json'], root, 60_000);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines, r.stdout).toHaveLength(1);
    expect(lines[0]).toMatch(/^RESULT /);
    expect(r.stderr).toMatch(/Benchmark report|run the benchmark/);
  }, 60_000);

  it('an example\'s --out file carries provenance', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['example', 'gcbench', '--mode', 'stw', '--heap', '16', '--stretch', '8', '--long-lived', '6', '--max-depth', '6', '--out', 'r/gc.json'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const out = JSON.parse(fs.readFileSync(path.join(cwd, 'r', 'gc.json'), 'utf8'));
      expect(out.provenance.package.name).toBe('movegc');
      expect(out.provenance.heapOptions).toEqual({ capacityMiB: 16, modes: ['stw'] });
      expect(out.results[0].longLivedOk).toBe(true);
      expect(out.provenance.command).toBe('movegc example gcbench --mode stw --heap 16 --stretch 8 --long-lived 6 --max-depth 6 --out r/gc.json');
      // Run as a module, with an --out that needs quoting: recorded as a command that runs again
      // (an audit: the command's name was missing, and 'a b' was not quoted).
      const d = spawnSync(process.execPath, [path.join(root, 'dist', 'examples', 'gcbench.js'), '--mode', 'stw', '--heap', '16', '--stretch', '8', '--long-lived', '6', '--max-depth', '6', '--out', "r b/it's.json"], { cwd, encoding: 'utf8', timeout: 120_000 });
      expect(d.status, d.stderr.slice(-2000)).toBe(0);
      const cmd = JSON.parse(fs.readFileSync(path.join(cwd, 'r b', "it's.json"), 'utf8')).provenance.command as string;
      expect(cmd).toBe(`movegc example gcbench --mode stw --heap 16 --stretch 8 --long-lived 6 --max-depth 6 --out 'r b/it'\\''s.json'`);
      const again = spawnSync('sh', ['-c', cmd.replace(/^movegc /, `"${process.execPath}" "${CLI}" `)], { cwd, encoding: 'utf8', timeout: 120_000 });
      expect(again.status, again.stderr.slice(-2000)).toBe(0);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, 150_000);
});

/**
 * Issue 11's yardsticks: the self-service and the kernel fault path side by side. Quick
 * settings; only what each column ran and counted is checked here (speed targets are the
 * benchmark's business, as ratios).
 */
describe('fault paths side by side', () => {
  itKernel('splay runs move and move-handler with their own fault paths and reports the collection run and stalls', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['splay', '--reps', '1', '--seconds', '1', '--trigger', '0.6', '--variants', 'move,move-handler,stw,v8'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(cwd, 'bench', 'results', 'splay-latest.json'), 'utf8'));
      expect(res.schema).toBe('movegc-splay/2');
      const rep = (v: string) => res.reps.find((x: { variant: string }) => x.variant === v);
      const self = rep('move');
      const handler = rep('move-handler');
      expect([self.mode, self.faultPath, handler.mode, handler.faultPath]).toEqual(['move', 'self', 'move', 'handler']);
      for (const x of [self, handler, rep('stw')]) {
        // Every collection during the runs (none during setup at this trigger) has its run, and a run after it or null.
        expect(x.collectionRunsMs.length, x.variant).toBe(x.heap.cycles);
        expect(x.nextRunsMs).toHaveLength(x.collectionRunsMs.length);
        for (const ms of x.collectionRunsMs) expect(ms).toBeGreaterThan(0);
        const s = x.heap.stallUs;
        expect(s.count, x.variant).toBe(s.self + s.handler + s.reads);
      }
      expect(self.heap.cycles).toBeGreaterThan(0);
      expect(self.heap.pagesBuiltBySelf).toBeGreaterThan(0);
      // A page found installed by the time the accessor claims it counts as resolved, unbuilt by it.
      expect(self.heap.stallUs.self).toBeGreaterThanOrEqual(self.heap.pagesBuiltBySelf);
      // Self-service's kernel-path samples: pages another builder held, and failed builds (none injected here).
      expect(self.heap.stallUs.handler).toBe(self.heap.selfLeft + self.heap.selfFailed);
      expect(res.summary.move.selfLeft).toBe(self.heap.selfLeft);
      expect(handler.heap.pagesBuiltBySelf).toBe(0);
      expect(handler.heap.stallUs.self).toBe(0);
      expect(handler.heap.stallUs.handler).toBeGreaterThan(0);
      expect(handler.heap.faults).toBeGreaterThan(0);
      expect(rep('stw').heap.stallUs.count).toBe(0);
      expect(rep('v8').collectionRunsMs).toEqual([]);
      expect(res.summary['move-handler']).toMatchObject({ faultPath: 'handler', pagesBuiltBySelf: 0 });
      expect(res.summary.move.stalls).toBe(self.heap.stallUs.count);
      expect(res.summary.move.collectionRunP50Ms).toBeGreaterThan(0);
      expect(res.yardsticks).toHaveLength(1);
      expect(res.yardsticks[0].mode).toBe('move');
      expect(res.yardsticks[0].stallP50Ratio).toBeCloseTo(res.summary.move.stallP50Us / res.summary['move-handler'].stallP50Us, 2);
      expect(res.yardsticks[0].collectionRunRatio).toBeCloseTo(res.summary.move.collectionRunP50Ms / res.summary['move-handler'].collectionRunP50Ms, 2);
      expect(r.stdout).toMatch(/move \(self\)\s+move \(handler\)\s+stw\s+v8 \(plain JS\)/);
      expect(r.stdout).toMatch(/^collection run p50 \/ max ms/m);
      expect(r.stdout).toMatch(/move, self \/ handler: stall p50 per touched unbuilt page [\d.]+ \(target <= 0.200: (met|NOT met)\); collection run [\d.]+/);
      const html = fs.readFileSync(path.join(cwd, 'bench', 'results', 'splay-latest.html'), 'utf8');
      expect(html).toContain('issue 11: self / handler');
      expect(html).toContain('move (handler)');
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  itKernel('splay with --unbuilt-reads from-space counts the reads (and stores) among the touches of unbuilt pages', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['splay', '--reps', '1', '--seconds', '1', '--trigger', '0.6', '--variants', 'move', '--unbuilt-reads', 'from-space'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(cwd, 'bench', 'results', 'splay-latest.json'), 'utf8'));
      const s = res.reps[0].heap.stallUs;
      expect(s.reads, 'reads served from from-space').toBeGreaterThan(0);
      expect(s.count).toBe(s.self + s.handler + s.reads);
      expect(r.stdout + r.stderr).toMatch(/[1-9]\d* read or written in from-space/);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  itKernel('art --compare puts move (self) and move (handler) side by side', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      // The safepoint before each frame's work: the frame after a pause touches the heap at once
      // (at the end, the default, a small heap can be compacted in the frame's slack).
      const r = movegc(['example', 'art', '--compare', '--modes', 'move,move-handler', '--seconds', '1', '--heap', '16', '--nodes', '20000', '--visit', '500', '--every', '12', '--safepoint', 'start', '--out', 'r/art.json'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const out = JSON.parse(fs.readFileSync(path.join(cwd, 'r', 'art.json'), 'utf8'));
      const [self, handler] = out.results;
      expect([self.mode, self.faultPath, handler.mode, handler.faultPath]).toEqual(['move', 'self', 'move', 'handler']);
      expect([self.safepoint, handler.safepoint]).toEqual(['start', 'start']); // handed on to each column
      expect([self.unbuiltReads, handler.unbuiltReads]).toEqual(['build', null]); // the demo's default (art-app.ts says why)
      expect(r.stdout).toMatch(/^reads of unbuilt pages \(self path\)\s+build\s+-$/m);
      expect([self.frames, handler.frames]).toEqual([60, 60]);
      expect(self.cycles).toBeGreaterThan(0);
      // The self path met unbuilt pages and served them on the mutator's thread (in from-space,
      // or by building them: how many it built depends on races with the compactor, and was 0
      // in one CI run); the kernel saw only what it left to it.
      expect(self.stalls).toBeGreaterThan(0);
      expect(self.stalls).toBeGreaterThanOrEqual(self.pagesBuiltBySelf + self.selfLeft);
      expect(self.faults).toBeLessThanOrEqual(self.selfLeft);
      expect([handler.pagesBuiltBySelf, handler.selfLeft]).toEqual([0, 0]);
      expect(handler.stalls).toBeGreaterThan(0);
      expect(handler.faults).toBeGreaterThan(0);
      expect(handler.stallTotalMs).toBeGreaterThan(0);
      expect(r.stdout).toMatch(/move \(self\)\s+move \(handler\)/);
      expect(r.stdout).toMatch(/^stall\/page p50 \/ p99 us\s+\d+ \/ \d+\s+\d+ \/ \d+$/m);
      expect(r.stdout).toMatch(new RegExp(`^  touched unbuilt pages / self-built / left\\s+${self.stalls} / ${self.pagesBuiltBySelf} / ${self.selfLeft}\\s+${handler.stalls} / 0 / 0$`, 'm'));
      expect(r.stdout).toMatch(/move, self vs handler \(issue 11\): stall per touched unbuilt page p50 \d+ vs \d+ us/);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  itKernel('art --compare --reps 2 runs every column twice, interleaved: the median round in the table, each round in the summary and the --out file', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-cli-'));
    try {
      const r = movegc(['example', 'art', '--compare', '--modes', 'move,move-handler', '--reps', '2', '--seconds', '0.5', '--heap', '16', '--nodes', '20000', '--visit', '500', '--every', '12', '--safepoint', 'start', '--unbuilt-reads', 'from-space', '--out', 'r/art.json'], cwd, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const out = JSON.parse(fs.readFileSync(path.join(cwd, 'r', 'art.json'), 'utf8'));
      expect(out.results.rounds).toHaveLength(2);
      for (const round of out.results.rounds) expect(round.map((x: { faultPath: string }) => x.faultPath)).toEqual(['self', 'handler']);
      // --unbuilt-reads is handed on to every child: each self column read from from-space.
      for (const round of out.results.rounds) expect(round.map((x: { unbuiltReads: string | null }) => x.unbuiltReads)).toEqual(['from-space', null]);
      // The median of two is the lower (frames over budget, then p99): one of the rounds' own runs.
      const [self, handler] = out.results.median;
      const selfRuns: Array<{ overBudget: number; p99: number }> = out.results.rounds.map((x: unknown[]) => x[0]);
      const lower = [...selfRuns].sort((a, b) => a.overBudget - b.overBudget || a.p99 - b.p99)[0];
      expect(self).toEqual(lower);
      expect(handler.faultPath).toBe('handler');
      const pairs = out.results.rounds.map((x: Array<{ overBudget: number }>) => `${x[0].overBudget}/${x[1].overBudget}`).join(', ');
      expect(r.stdout).toContain('move, self vs handler (issue 11, median rounds of 2)');
      expect(r.stdout).toContain(`by round, self / handler: frames over budget ${pairs} (self fewer in`);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  itKernel('pinned-io in copy mode succeeds and says why nothing was refused (it exited 1 on every run)', () => {
    const r = movegc(['example', 'pinned-io', '--mode', 'copy'], root, 120_000);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/copy mode installs every page by copying it, so the kernel had no MOVE to refuse/);
    expect(r.stdout).not.toMatch(/refused to MOVE its 0 pinned pages/);
  }, ['uffd'], 150_000);

  itKernel('pinned-io runs: with heap.pin every read lands in the heap object; without it the kernel refuses MOVE', () => {
    // It failed on every run (its buffer, a 64 KiB large object, had its header and not its
    // contents on a page, so the io_uring pin refused the address) and only its --help was tested.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'movegc-pinned-io-out-'));
    try {
      const out = path.join(dir, 'r.json');
      const r = movegc(['example', 'pinned-io', '--out', out], root, 120_000);
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      expect(r.stdout).toMatch(/with heap\.pin the buffer never moved and 5 of 5 reads landed in the heap object/);
      expect(r.stdout).toMatch(/^MOVE refused: EBUSY\s+0\s+[1-9]\d*$/m);
      expect(r.stdout).toMatch(/^heap verifies\s+yes\s+yes$/m);
      // --out: both runs, with the provenance every example's results carry.
      const j = JSON.parse(fs.readFileSync(out, 'utf8'));
      expect(j.example).toBe('pinned-io');
      expect(j.provenance.gitCommit).toMatch(/^[0-9a-f]{40}$/);
      expect(j.results.withPin.reads.every((x: { holds: number; chunk: number }) => x.holds === x.chunk)).toBe(true);
      expect(j.results.withoutPin.cycles.reduce((t: number, c: { ebusy: number }) => t + c.ebusy, 0)).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, undefined, 150_000);

  it('art --compare runs 6.5 s of frames per column unless --seconds is given', () => {
    const r = movegc(['example', 'art', '--compare', '--modes', 'stw', '--heap', '8', '--nodes', '2000', '--visit', '50'], root, 60_000);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/^frames \(60 fps\)\s+390$/m);
  }, 90_000);
});
