/**
 * The HTML report: one self-contained file (uPlot's script and stylesheet, the results and the
 * drawing code are all inlined), readable offline in any browser. Tables and the strip plots
 * are rendered here; the other charts are drawn in the page by uPlot (report-client.ts).
 *
 * Sections: provenance and workload; medians per mode; minimum mutator utilization per cycle
 * and over the whole run; pauses per rep (strip and box plots); fault-latency exceedance
 * (mutator side, handler side, the kernel floor) with a percentile table; one cycle's
 * timeline per mode with its phases marked; the scaling sweep; the latest Octane Splay run;
 * the project's targets in an appendix.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { ModeName } from '../gc/index.js';
import { CLIENT } from './report-client.js';
import { splaySection } from './report-splay.js';
import { stripPlot, STRIP_CSS } from './report-svg.js';
import type { Provenance } from './provenance.js';
import type { ModeSummary, Results } from './results.js';

const MiB = 2 ** 20;

export function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const js = fs.readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const css = fs.readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  return { js, css };
}

export const esc = (s: unknown): string => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
export const num = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
export const COLORS: Record<string, string> = { move: '#1f77b4', 'move-handler': '#17becf', copy: '#ff7f0e', 'copy-handler': '#d62728', stw: '#2ca02c', v8: '#9467bd' };

export function tableHtml(head: string[], rows: string[][], cls = ''): string {
  return `<table class="${cls}"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** Rows that only concurrent modes have: stw shows "-" there (nothing to measure), not 0. */
const CONCURRENT_ONLY = new Set(['stalled accesses (self-service or fault)', 'faults read by the fault server', 'fault p50 / p99, mutator side (µs)', 'fault max, mutator side (µs)',
  'fault p50 / p99, handler side (µs)', 'pages built by the fault server', 'MOVE calls / COPY calls', 'batch p50 (pages per call)', 'EBUSY fallbacks', 'compactor busy (ms)', 'idle() wall (ms): finalization']);

function modeTable(ms: ModeSummary[]): string {
  const rows: Array<[string, (s: ModeSummary) => string]> = [
    ['live data (MiB)', (s) => num(s.liveBytes / MiB)],
    ['heap used before (MiB)', (s) => num(s.usedBytes / MiB)],
    ['pages built', (s) => num(s.pagesTotal, 0)],
    ['<b>compaction (ms)</b>: compaction-thread completion', (s) => `<b>${num(s.compactionMs)}</b>`],
    ['throughput (live GB/s)', (s) => num(s.throughputMBps / 1000, 2)],
    ['cost (ms per live MiB)', (s) => num(s.msPerLiveMiB, 3)],
    ['<b>compaction pause (ms)</b>', (s) => `<b>${num(s.pauseMs, 2)}</b>`],
    ['collect() wall (ms): mark + plan + pause', (s) => num(s.collectMs)],
    ['mark (ms)', (s) => num(s.markMs)],
    ['plan (ms)', (s) => num(s.planMs)],
    ['idle() wall (ms): finalization', (s) => num(s.idleMs, 2)],
    ['compactor busy (ms)', (s) => num(s.compactorBusyMs)],
    ['stalled accesses (self-service or fault)', (s) => num(s.mutatorFaults, 0)],
    ['faults read by the fault server', (s) => num(s.faults, 0)],
    ['fault p50 / p99, mutator side (µs)', (s) => `<b>${num(s.faultP50Us)}</b> / ${num(s.faultP99Us)}`],
    ['fault max, mutator side (µs)', (s) => num(s.faultMaxUs, 0)],
    ['fault p50 / p99, handler side (µs)', (s) => `${num(s.handlerFaultP50Us)} / ${num(s.handlerFaultP99Us)}`],
    ['pages built by the fault server', (s) => num(s.pagesBuiltByFaults, 0)],
    ['pages moved / copied', (s) => `${num(s.pagesMoved, 0)} / ${num(s.pagesCopied, 0)}`],
    ['MOVE calls / COPY calls', (s) => `${num(s.moveCalls, 0)} / ${num(s.copyCalls, 0)}`],
    ['batch p50 (pages per call)', (s) => num(s.batchPagesP50, 0)],
    ['EBUSY fallbacks', (s) => num(s.ebusyFallbacks, 0)],
    ['RSS before / peak / after (MiB)', (s) => `${num(s.rssBeforeBytes / MiB, 0)} / ${num(s.rssPeakBytes / MiB, 0)} / ${num(s.rssAfterBytes / MiB, 0)}`],
    ['<b>RSS peak / before</b>', (s) => `<b>${num(s.rssPeakOverBefore, 3)}</b>`],
    ['mutator touches (3 loads each)', (s) => num(s.touches, 0)],
    ['bad reads / verify', (s) => `${s.touchErrors} / ${s.verifyOk === null ? 'not run' : s.verifyOk ? 'ok' : 'FAILED'}`],
    ['build (s)', (s) => num(s.buildMs / 1000, 1)],
  ];
  const cell = (k: string, f: (s: ModeSummary) => string, s: ModeSummary): string => (s.mode === 'stw' && CONCURRENT_ONLY.has(k) ? '-' : f(s));
  return tableHtml(['median over reps', ...ms.map((s) => `<span class="m-${esc(s.mode)}">${esc(s.mode)}</span>${s.fallbacks.length ? ' (fallback)' : ''}`)], rows.map(([k, f]) => [k, ...ms.map((s) => cell(k, f, s))]), 'modes');
}

function rawTable(ms: ModeSummary[]): string {
  const head = ['mode', 'rep', 'compaction ms', 'pause ms', 'collect ms', 'mark ms', 'GB/s', 'stalled accesses', 'mut p50 µs', 'mut p99 µs', 'hdl p50 µs', 'moved', 'copied', 'RSS peak/before', 'build s'];
  const rows = ms.flatMap((s) =>
    s.raw.map((r) => {
      const c = (x: string): string => (s.mode === 'stw' ? '-' : x);
      return [
        esc(s.mode), String(r.rep), num(r.compactionMs), num(r.pauseMs, 2), num(r.collectMs), num(r.markMs), num(r.throughputMBps / 1000, 2), c(String(r.mutatorFaults)),
        c(r.mutatorFaults ? num(r.faultMutatorUs.p50) : '-'), c(r.mutatorFaults ? num(r.faultMutatorUs.p99) : '-'), c(r.faultHandlerUs.count ? num(r.faultHandlerUs.p50) : '-'), String(r.pagesMoved), String(r.pagesCopied), num(r.rssPeakBytes / r.rssBeforeBytes, 3), num(r.buildMs / 1000),
      ];
    }),
  );
  return tableHtml(head, rows, 'raw');
}

/** Percentiles of the mutator-side fault latency per mode (the tail in numbers). */
function faultPercentiles(res: Results): string {
  const c = res.main;
  if (!c) return '';
  const rows = (Object.keys(c.distributions) as ModeName[])
    .filter((k) => k !== 'stw')
    .map((k) => {
      const q = c.distributions[k]!.faultMutatorPooled;
      return [`<span class="m-${esc(k)}">${esc(k)}</span> mutator side`, String(q.count), num(q.p50), num(q.p90), num(q.p99), num(q.max, 0)];
    });
  if (res.floor) {
    const f = res.floor.faultRoundTripUs;
    const b = res.floor.busySibling.faultRoundTripUs;
    rows.push(['floor round trip (idle)', String(f.count), num(f.p50), num(f.p90), num(f.p99), num(f.max, 0)]);
    rows.push(['floor round trip (sibling busy)', String(b.count), num(b.p50), num(b.p90), num(b.p99), num(b.max, 0)]);
  }
  return tableHtml(['fault latency (µs)', 'faults', 'p50', 'p90', 'p99', 'max'], rows, 'pct');
}

export function provenanceTable(p: Provenance | undefined): string {
  if (!p) return '<p class="warn">No provenance in these results (written by an older version).</p>';
  const load = (xs: number[] | null): string => (xs ? xs.map((x) => x.toFixed(2)).join(' / ') : '–');
  return tableHtml(
    ['provenance', ''],
    [
      ['package', `${esc(p.package.name)} ${esc(p.package.version)}`],
      ['git commit', p.gitCommit ? `<code>${esc(p.gitCommit.slice(0, 12))}</code>${p.gitDirty ? ' (with uncommitted changes)' : ''}` : 'n/a (not a git checkout)'],
      ['command', `<code>${esc(p.command)}</code>`],
      ['load average 1/5/15 min: start', load(p.load.start)],
      ['load average 1/5/15 min: end', load(p.load.end) + (p.busy ? ` <span class="bad">busy: more load than ${esc(p.cores)} cores</span>` : '')],
      ['THP', esc(p.thp)],
      ['heap options', `<code>${esc(JSON.stringify(p.heapOptions))}</code>`],
    ],
    'prov',
  );
}


export function renderHtml(res: Results): string {
  const { js, css } = uplotAssets();
  const c = res.main;
  const ms = c ? (Object.values(c.modes) as ModeSummary[]) : [];
  const w = c?.workload;
  const m = res.machine;
  const goals = tableHtml(
    ['goal', 'measured', 'target', ''],
    res.goals.map((g) => [esc(g.text), num(g.value, 3), esc(g.target), g.met === null ? '<span class="na">n/a</span>' : g.met ? '<span class="ok">met</span>' : '<span class="bad">missed</span>']),
    'goals',
  );
  const pauses = c
    ? ['pauseMs', 'collectMs']
        .map((f) =>
          stripPlot(f === 'pauseMs' ? 'Compaction pause per rep' : 'Whole collect() call per rep (mark + plan + pause)', 'ms',
            (Object.keys(c.distributions) as ModeName[]).map((k) => ({ label: k, color: COLORS[k], values: c.distributions[k]![f as 'pauseMs' | 'collectMs'] }))),
        )
        .join('')
    : '';
  const ratios = c ? tableHtml(['ratio', 'value'], Object.entries(c.ratios).map(([k, v]) => [esc(k), num(v, 3)]), 'ratios') : '';
  const fl = res.floor;
  const floor = fl
    ? tableHtml(
        ['kernel floor (this process, via the binding)', 'value'],
        [
          ['UFFDIO_MOVE, 1 page per call', `${num(fl.movePerPageNs['1'], 0)} ns/page`],
          ['UFFDIO_MOVE, 16 pages per call', `${num(fl.movePerPageNs['16'], 0)} ns/page`],
          ['UFFDIO_MOVE, 32 / 34 pages per call (either side of x86\'s single-page TLB flush ceiling, 33)', `${num(fl.movePerPageNs['32'], 0)} / ${num(fl.movePerPageNs['34'], 0)} ns/page`],
          ['UFFDIO_MOVE, 64 pages per call (the collector\'s largest run)', `${num(fl.movePerPageNs['64'], 0)} ns/page`],
          ['UFFDIO_MOVE, 512 pages per call', `${num(fl.movePerPageNs['512'], 0)} ns/page (${num(4096 / fl.movePerPageNs['512'], 1)} GB/s)`],
          ['UFFDIO_COPY, 1 page per call', `${num(fl.copyPerPageNs['1'], 0)} ns/page`],
          ['UFFDIO_COPY, 64 pages per call', `${num(fl.copyPerPageNs['64'], 0)} ns/page`],
          ['UFFDIO_COPY, 512 pages per call', `${num(fl.copyPerPageNs['512'], 0)} ns/page (${num(4096 / fl.copyPerPageNs['512'], 1)} GB/s)`],
          ['UFFDIO_COPY from one reused buffer (as the collector installs), 1 / 64 pages per call', fl.copyFromScratchPerPageNs ? `${num(fl.copyFromScratchPerPageNs['1'], 0)} / ${num(fl.copyFromScratchPerPageNs['64'], 0)} ns/page` : '-'],
          ['memcpy (Uint8Array.set)', `${num(fl.memcpyPerPageNs, 0)} ns/page`],
          ['first read of a page after mremap moved it (of a page just written)', fl.firstReadPerPageNs ? `${num(fl.firstReadPerPageNs.remapped, 0)} (${num(fl.firstReadPerPageNs.written, 0)}) ns/page` : '-'],
          ['first read of a page just installed by UFFDIO_MOVE / UFFDIO_COPY', fl.firstReadPerPageNs?.installed ? `${num(fl.firstReadPerPageNs.installed.move, 0)} / ${num(fl.firstReadPerPageNs.installed.copy, 0)} ns/page` : '-'],
          ['UFFDIO_MOVE of a 2 MiB huge page, one call each (share of the source in huge pages); first read of its pages', fl.pmd ? `${num(fl.pmd.movePerPageNs, 0)} ns/page (${num(fl.pmd.hugeSource * 100, 0)}%); ${num(fl.firstReadPerPageNs.installed.pmd, 0)} ns/page` : '-'],
          ['with a sibling thread running: MOVE 1 / 64 pages per call', `${num(fl.busySibling.movePerPageNs['1'], 0)} / ${num(fl.busySibling.movePerPageNs['64'], 0)} ns/page`],
          ['with a sibling thread running: COPY 1 / 64 pages per call', `${num(fl.busySibling.copyPerPageNs['1'], 0)} / ${num(fl.busySibling.copyPerPageNs['64'], 0)} ns/page`],
          ...(fl.busySibling.siblingLossUsPerCall
            ? [['what each call costs the sibling (its lost time): MOVE / COPY at 1 / 64 pages per call', `${num(fl.busySibling.siblingLossUsPerCall.move['1'])} / ${num(fl.busySibling.siblingLossUsPerCall.move['64'])} µs, ${num(fl.busySibling.siblingLossUsPerCall.copy['1'])} / ${num(fl.busySibling.siblingLossUsPerCall.copy['64'])} µs`] as [string, string]]
            : []),
          ['with a sibling thread running: fault round trip p50 / p90 / p99', `${num(fl.busySibling.faultRoundTripUs.p50)} / ${num(fl.busySibling.faultRoundTripUs.p90)} / ${num(fl.busySibling.faultRoundTripUs.p99)} µs over ${fl.busySibling.faultRoundTripUs.count} faults`],
          ['fault round trip (poll + read + MOVE on a Worker) p50 / p90 / p99', `${num(fl.faultRoundTripUs.p50)} / ${num(fl.faultRoundTripUs.p90)} / ${num(fl.faultRoundTripUs.p99)} µs over ${fl.faultRoundTripUs.count} faults${fl.faultRoundTripNote ? ` (${esc(fl.faultRoundTripNote)})` : ''}`],
        ],
        'floor',
      )
    : '<p class="note">kernel floor not measured (--no-floor or no userfaultfd)</p>';
  const machine = tableHtml(['machine', ''], Object.entries(m).map(([k, v]) => [esc(k), esc(k.endsWith('Bytes') ? `${(Number(v) / 2 ** 30).toFixed(1)} GiB` : v)]), 'machine');
  const params = w
    ? tableHtml(
        ['workload', ''],
        [
          ['heap capacity', `${w.heapBytes / MiB} MiB`],
          ['live fraction', String(w.live)],
          ['fragmentation pattern', esc(w.pattern)],
          ['object sizes', `${esc(w.sizes)}: ${esc(res.params.sizesDoc)}`],
          ['pinned fraction', String(w.pinned)],
          ['heap filled to', `${(w.fill * 100).toFixed(0)}% of capacity`],
          ['extra roots', String(w.roots)],
          ['seed', String(w.seed)],
          ['reps per mode (interleaved)', String(res.params.reps)],
          ['mutator', `${esc(res.params.mutator)}${res.params.mutator.startsWith('paced') ? `: one touch (3 loads) every ${res.params.touchUs} µs${res.params.mutator === 'paced-idle' ? ', the time between given to a compacting cycle (heap.idleCompact)' : ''}` : res.params.mutator === 'busy' ? ': touches back to back' : ''}`],
          ['mutator runs at least', `${num(c!.horizonMs, 0)} ms after collect()`],
        ],
        'params',
      )
    : '';
  let sweepNote = '';
  let sweepTable = '';
  if (res.sweep) {
    const modes = [...new Set(res.sweep.points.flatMap((p) => Object.keys(p.msPerLiveMiB)))] as ModeName[];
    sweepNote = res.sweep.fromEarlierRun ? `<p class="warn">This sweep is from an earlier run: ${esc(res.sweep.fromEarlierRun)}. Run <code>movegc sweep</code> to refresh it.</p>` : '';
    sweepTable = tableHtml(
      ['heap', ...modes.flatMap((k) => [`${esc(k)} ms/live MiB`, `${esc(k)} compaction ms`, `${esc(k)} pause ms`, `${esc(k)} collect() ms`])],
      res.sweep.points.map((p) => [
        `${esc(p.heapMiB)} MiB${p.label ? ` (${esc(p.label)})` : ''}`,
        ...(p.skipped ? modes.flatMap(() => ['skipped', '', '', '']) : modes.flatMap((k) => [num(p.msPerLiveMiB[k], 3), num(p.compactionMs[k]), num(p.pauseMs[k], 2), num(p.collectMs[k])])),
      ]),
      'sweep',
    );
    const skipped = res.sweep.points.filter((p) => p.skipped);
    if (skipped.length) sweepTable += `<p class="note">Skipped: ${skipped.map((p) => `${esc(p.heapMiB)} MiB${p.label ? ` ${esc(p.label)}` : ''} (${esc(p.skipped)})`).join('; ')}</p>`;
    const ps = res.sweep.pauseSmallVsLarge as Record<string, { pause64MiBMs: number | null; pause1GiBMs: number | null; ratio: number | null; roots: number }> | null;
    if (ps)
      sweepTable += tableHtml(
        ['pause with the same roots', '64 MiB (ms)', '1 GiB (ms)', '1 GiB / 64 MiB', 'goal: < 5 ms at 1 GiB and ≤ 1.5x'],
        Object.entries(ps).map(([k, v]) => [esc(k), num(v.pause64MiBMs, 3), num(v.pause1GiBMs, 3), num(v.ratio, 2), v.pause1GiBMs !== null && v.ratio !== null ? (v.pause1GiBMs < 5 && v.ratio <= 1.5 ? '<span class="ok">met</span>' : '<span class="bad">missed</span>') : '–']),
        'sweep',
      );
  }
  const data = JSON.stringify(res).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>movegc benchmark ${esc(res.startedAt)}</title>
<style>${css}</style>
<style>
${STRIP_CSS}
.u-legend .u-marker { width: 22px; height: 0; border-width: 3px 0 0 0 !important; margin-right: 6px; vertical-align: middle; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; background: #fafafa; color: #222; }
#main { max-width: 1140px; margin: 0 auto; padding: 16px 20px 60px; background: #fff; }
h1 { font-size: 22px; margin: 6px 0; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: top; }
thead th { background: #f0f0f0; text-align: center; } tbody th { text-align: left; font-weight: normal; background: #fbfbfb; }
.ok { color: #080; font-weight: bold; } .bad { color: #c00; font-weight: bold; } .na { color: #888; }
.note { color: #555; font-size: 13px; } .warn { color: #a60; } code { background: #f3f3f3; padding: 1px 4px; }
.m-move { color: #1f77b4; font-weight: bold; } .m-copy { color: #ff7f0e; font-weight: bold; } .m-stw { color: #2ca02c; font-weight: bold; }
.row { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.chart { margin: 6px 0 18px; }
</style></head>
<body><div id="main">
<h1>movegc benchmark: move vs copy vs stop-the-world</h1>
<p class="note">${esc(res.startedAt)} – ${esc(res.finishedAt)} (${num(res.elapsedS, 0)} s). Command: <code>${esc(res.command)}</code></p>
${res.provenance?.busy ? `<p class="warn">The machine was busy during this run (load ${esc(res.provenance.load.start[0])} at the start, ${esc(res.provenance.load.end?.[0])} at the end, on ${esc(res.provenance.cores)} cores): absolute times are inflated and noisy; read the ratios.</p>` : ''}
<div class="row">${provenanceTable(res.provenance)}${machine}${params}</div>
<h2>Results: medians over ${res.params.reps} interleaved reps</h2>
${ms.length ? modeTable(ms) : '<p>no comparison in this run</p>'}
<p class="note">Compaction = the compaction thread's completion time (pause end to its last install; in stw, the stop-the-world rebuild).
Mutator side = the duration of a mutator load that faulted on a not-yet-installed page (fault to wake, as the application sees it);
handler side = the fault server's read-to-install time (CycleStats.faultUs, log buckets: lower bounds). The mutator touches random live
objects (paced: one every few µs, sleeping between; busy: back to back, a worst case that takes a core from the collector on a 2-core machine),
so most of its loads early in the cycle fault. Marking and planning run on the marker's thread (concurrent marking, the default in move and copy) or inside the pause (stw, and marking 'pause').</p>
<div class="row">${ratios}${floor}</div>
<h2>Minimum mutator utilization</h2>
<p class="note">The least fraction of any time window of a given length that the mutator had to itself. Stalls: every pause, every other
safepoint() call over 50 µs, every load that met an unbuilt page, and the final idle() call. Concurrent marking and planning are not stalls (the
marker's thread runs them); in stw and with marking 'pause' they are inside the pause. Left: per cycle, over one rep's mutator run (the request to
the end of idle()), median over reps; dashed: from the compaction pause on (the initial and remark pauses left out), what compaction itself costs the mutator.
Right: every rep of a mode back to back, as one run: the worst window anywhere, up to the whole run.</p>
<div class="row"><div id="mmu" class="chart"></div><div id="mmu-run" class="chart"></div></div>
<h2>Pauses</h2>
<p class="note">One dot per rep; the box spans the middle half of the reps, the thick line is the median. In stw the pause is the whole compaction.</p>
<div class="row">${pauses}</div>
<h2>Fault latencies</h2>
<p class="note">Exceedance (1 − CDF) on log axes: each curve reads "this fraction of faults took longer than x", so the tail (p99 and beyond) is visible.
Solid: mutator side, a faulting load's duration as the application sees it; dashed: handler side, the fault server's read-to-install time (log buckets);
grey: the kernel floor, a fault served by a bare thread with one MOVE.</p>
<div id="faults" class="chart"></div>
${faultPercentiles(res)}
<h2>One cycle</h2>
<p class="note">Time 0 is the collect() call; mark and plan run first (no page changes), then the compaction pause, then (move, copy) concurrent compaction
until the cycle's end. The bars at the top of each chart show each mode's phases: <span style="color:#444">■</span> mark, <span style="color:#aaa">■</span> plan,
<span style="color:#d62728">■</span> compaction pause, then concurrent compaction in the mode's colour; dotted lines mark the pause and the cycle's end.
In stw every page is built inside the pause, where the mutator cannot sample: its curve is drawn as a ramp across the pause.</p>
<div id="tl-pages" class="chart"></div>
<div id="tl-faults" class="chart"></div>
<div id="tl-lat" class="chart"></div>
<div id="tl-rss" class="chart"></div>
<h2>Scaling sweep</h2>
${res.sweep ? `${sweepNote}${sweepTable}<div id="sw-cost" class="chart"></div><div id="sw-pause" class="chart"></div>` : '<p class="note">No sweep yet: run <code>movegc sweep</code>.</p>'}
<h2>Octane Splay and SplayLatency</h2>
${res.splay ? splaySection(res.splay, `From <code>${esc(res.splay.fromFile)}</code> (${esc(res.splay.startedAt)}), a separate run: <code>movegc splay</code> refreshes it.`) : '<p class="note">No Splay run yet: run <code>movegc splay</code> (writes splay-latest.json next to this report).</p>'}
<h2>Every rep</h2>
<details><summary>per-rep values</summary>${ms.length ? rawTable(ms) : ''}</details>
<h2>Appendix: the project's targets</h2>
<details><summary>what the design aims at, measured by this run (not asserted)</summary>
<p class="note">Targets set in the project's issues, after ART's figures: move should compact in at most half of copy's time, a fault should cost at most
twice the kernel floor's round trip, RSS should stay within 10% during compaction, the pause should be under 5 ms at 1 GiB and flat in heap size.
A run on a busy or virtual machine misses some of them for reasons that have nothing to do with the collector; they guide work, they are not tests.</p>
${goals}</details>
</div>
<script id="data" type="application/json">${data}</script>
<script>${js}</script>
<script>${CLIENT}</script>
</body></html>
`;
}
