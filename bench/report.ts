/**
 * The HTML report: one self-contained file (uPlot's script and stylesheet, the results and the
 * drawing code are all inlined), readable offline in any browser. Tables are rendered here;
 * charts are drawn in the page by uPlot from the embedded results.
 *
 * Charts: minimum mutator utilization vs window size; pause per rep and fault-latency CDFs per
 * mode (mutator side, handler side, the kernel floor's round trip); one cycle's timeline per
 * mode (pages installed, RSS, faults, and every faulting access's latency over time); the
 * scaling sweep (compaction cost per live MiB and pause per heap size).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { ModeName } from '../gc/index.js';
import type { ModeSummary, Results } from './run.js';

const MiB = 2 ** 20;

function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const js = fs.readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const css = fs.readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  return { js, css };
}

const esc = (s: unknown): string => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const num = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

function tableHtml(head: string[], rows: string[][], cls = ''): string {
  return `<table class="${cls}"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function modeTable(ms: ModeSummary[]): string {
  const rows: Array<[string, (s: ModeSummary) => string]> = [
    ['live data (MiB)', (s) => num(s.liveBytes / MiB)],
    ['heap used before (MiB)', (s) => num(s.usedBytes / MiB)],
    ['pages built', (s) => num(s.pagesTotal, 0)],
    ['<b>compaction (ms)</b> — compaction-thread completion', (s) => `<b>${num(s.compactionMs)}</b>`],
    ['throughput (live GB/s)', (s) => num(s.throughputMBps / 1000, 2)],
    ['cost (ms per live MiB)', (s) => num(s.msPerLiveMiB, 3)],
    ['<b>compaction pause (ms)</b>', (s) => `<b>${num(s.pauseMs, 2)}</b>`],
    ['collect() wall (ms): mark + plan + pause', (s) => num(s.collectMs)],
    ['mark (ms)', (s) => num(s.markMs)],
    ['plan (ms)', (s) => num(s.planMs)],
    ['idle() wall (ms): finalization', (s) => num(s.idleMs, 2)],
    ['compactor busy (ms)', (s) => num(s.compactorBusyMs)],
    ['mutator faults', (s) => num(s.mutatorFaults, 0)],
    ['faults read by the fault server', (s) => num(s.faults, 0)],
    ['<b>fault p50 / p99, mutator side (µs)</b>', (s) => `<b>${num(s.faultP50Us)}</b> / ${num(s.faultP99Us)}`],
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
  return tableHtml(['median over reps', ...ms.map((s) => `<span class="m-${s.mode}">${s.mode}</span>${s.fallbacks.length ? ' (fallback)' : ''}`)], rows.map(([k, f]) => [k, ...ms.map(f)]), 'modes');
}

function rawTable(ms: ModeSummary[]): string {
  const head = ['mode', 'rep', 'compaction ms', 'pause ms', 'collect ms', 'mark ms', 'GB/s', 'faults', 'mut p50 µs', 'mut p99 µs', 'hdl p50 µs', 'moved', 'copied', 'RSS peak/before', 'build s'];
  const rows = ms.flatMap((s) =>
    s.raw.map((r) => [
      s.mode, String(r.rep), num(r.compactionMs), num(r.pauseMs, 2), num(r.collectMs), num(r.markMs), num(r.throughputMBps / 1000, 2), String(r.mutatorFaults),
      num(r.faultMutatorUs.p50), num(r.faultMutatorUs.p99), num(r.faultHandlerUs.p50), String(r.pagesMoved), String(r.pagesCopied), num(r.rssPeakBytes / r.rssBeforeBytes, 3), num(r.buildMs / 1000),
    ]),
  );
  return tableHtml(head, rows, 'raw');
}

const CLIENT = String.raw`
const R = JSON.parse(document.getElementById('data').textContent);
const COL = { move: '#1f77b4', copy: '#ff7f0e', stw: '#2ca02c', floor: '#777' };
const W = () => Math.min(1100, document.getElementById('main').clientWidth - 10);
const logX = { time: false, distr: 3, log: 10 };
// Joins [xs, ys] tables on the union of their xs (uPlot needs one x array); gaps are null.
function join(tables) {
  const xs = [...new Set(tables.flatMap(t => t[0]))].sort((a, b) => a - b);
  const idx = new Map(xs.map((x, i) => [x, i]));
  const out = [xs];
  for (const [tx, ty] of tables) {
    const y = new Array(xs.length).fill(null);
    tx.forEach((x, i) => { y[idx.get(x)] = ty[i]; });
    out.push(y);
  }
  return out;
}
function chart(el, title, data, series, opts = {}) {
  const node = document.getElementById(el);
  if (!node) return;
  if (data[0].length === 0) { node.innerHTML = '<p class="note">no data</p>'; return; }
  new uPlot({ title, width: W(), height: opts.height || 300, scales: opts.scales || { x: { time: false } },
    axes: opts.axes, series: [{ label: opts.xLabel || 'x' }, ...series], legend: { live: true } }, data, node);
}
const line = (label, stroke, extra = {}) => ({ label, stroke, width: 2, spanGaps: true, points: { show: false }, ...extra });
const dots = (label, stroke) => ({ label, stroke, fill: stroke, paths: () => null, points: { show: true, size: 4, stroke, fill: stroke } });
const modes = R.main ? Object.keys(R.main.modes) : [];

// MMU
if (R.main) {
  const m = R.main.mmu;
  chart('mmu', 'Minimum mutator utilization vs window (median over reps): solid = every stall, dashed = without mark and plan', [m.windowsMs, ...modes.map(k => m.curves[k]), ...modes.map(k => m.compaction[k])],
    [...modes.map(k => line(k, COL[k])), ...modes.map(k => line(k + ' (compaction only)', COL[k], { dash: [6, 4] }))], { xLabel: 'window (ms)', scales: { x: logX, y: { range: [0, 1] } },
    axes: [{ label: 'window (ms, log)' }, { label: 'MMU' }] });
}
// Pauses per rep
if (R.main) {
  const d = R.main.distributions;
  const reps = Math.max(...modes.map(k => d[k].pauseMs.length));
  const xs = Array.from({ length: reps }, (_, i) => i + 1);
  const pad = a => xs.map((_, i) => a[i] ?? null);
  chart('pauses', 'Compaction pause (solid) and whole collect() call (dashed) per rep', [xs, ...modes.map(k => pad(d[k].pauseMs)), ...modes.map(k => pad(d[k].collectMs))],
    [...modes.map(k => line(k + ' pause', COL[k], { points: { show: true, size: 7 } })), ...modes.map(k => line(k + ' collect()', COL[k], { dash: [6, 4], points: { show: true, size: 5 } }))],
    { xLabel: 'rep', scales: { x: { time: false }, y: { distr: 3, log: 10 } }, axes: [{ label: 'rep', incrs: [1, 2, 5, 10, 20, 50] }, { label: 'ms (log)' }] });
  // Fault latency CDFs
  const tables = [], ser = [];
  for (const k of modes) {
    const c = d[k].faultMutatorCdf; if (c.length) { tables.push([c.map(p => p[0]), c.map(p => p[1])]); ser.push(line(k + ' mutator side', COL[k])); }
    const h = d[k].faultHandlerCdf; if (h.length) { tables.push([h.map(p => Math.max(0.5, p[0])), h.map(p => p[1])]); ser.push(line(k + ' handler side', COL[k], { dash: [5, 4] })); }
  }
  if (R.floor) {
    const f = R.floor.faultRoundTripCdf; tables.push([f.map(p => p[0]), f.map(p => p[1])]); ser.push(line('floor round trip (idle machine)', COL.floor, { width: 3 }));
    const b = R.floor.busySibling.faultRoundTripCdf; tables.push([b.map(p => p[0]), b.map(p => p[1])]); ser.push(line('floor round trip (sibling thread busy)', '#222', { width: 3, dash: [2, 3] }));
  }
  if (tables.length) chart('faults', 'Fault latency CDF (all reps pooled)', join(tables), ser,
    { xLabel: 'µs', scales: { x: logX, y: { range: [0, 1] } }, axes: [{ label: 'latency (µs, log)' }, { label: 'fraction ≤ x' }] });
  else document.getElementById('faults').innerHTML = '<p class="note">no faults in this run</p>';
}
// Timelines of one cycle
if (R.main) {
  const T = R.main.timelines;
  const tab = (k, f) => { const t = T[k]; return [t.tMs, t[f]]; };
  const pct = k => { const t = T[k]; return [t.tMs, t.pagesMapped.map(v => t.pagesTotal ? 100 * v / t.pagesTotal : 100)]; };
  const ax = y => [{ label: 'ms since collect() was called' }, { label: y }];
  chart('tl-pages', 'Pages installed (% of the cycle\'s pages) — one cycle per mode (the median rep)', join(modes.map(pct)), modes.map(k => line(k, COL[k])), { xLabel: 'ms', axes: ax('% installed'), scales: { x: { time: false }, y: { range: [0, 100] } } });
  chart('tl-rss', 'Process RSS during the cycle (MiB)', join(modes.map(k => { const t = T[k]; return [t.tMs, t.rssMiB]; })), modes.map(k => line(k, COL[k])), { xLabel: 'ms', axes: ax('MiB') });
  chart('tl-faults', 'Faults (cumulative, fault server count)', join(modes.map(k => tab(k, 'faults'))), modes.map(k => line(k, COL[k])), { xLabel: 'ms', axes: ax('faults') });
  const ev = modes.filter(k => T[k].faultEvents.length);
  if (ev.length) chart('tl-lat', 'Every faulting mutator access: latency over time', join(ev.map(k => [T[k].faultEvents.map(e => e[0]), T[k].faultEvents.map(e => e[1])])), ev.map(k => dots(k, COL[k])),
    { xLabel: 'ms', axes: [{ label: 'ms since collect() was called' }, { label: 'µs (log)' }], scales: { x: { time: false }, y: { distr: 3, log: 10 } } });
  else document.getElementById('tl-lat').innerHTML = '<p class="note">no faults in this run</p>';
}
// Sweep
if (R.sweep) {
  const pts = R.sweep.points.filter(p => !p.skipped);
  const ms = [...new Set(pts.flatMap(p => Object.keys(p.msPerLiveMiB)))];
  const xs = pts.map(p => p.heapMiB);
  const lx = { time: false, distr: 3, log: 2 };
  chart('sw-cost', 'Compaction cost per live MiB vs heap size', [xs, ...ms.map(k => pts.map(p => p.msPerLiveMiB[k] ?? null))], ms.map(k => line(k, COL[k], { points: { show: true, size: 7 } })),
    { xLabel: 'heap MiB', scales: { x: lx }, axes: [{ label: 'heap (MiB, log)' }, { label: 'ms per live MiB' }] });
  chart('sw-pause', 'Compaction pause (solid) and collect() call (dashed) vs heap size', [xs, ...ms.map(k => pts.map(p => p.pauseMs[k] ?? null)), ...ms.map(k => pts.map(p => p.collectMs[k] ?? null))],
    [...ms.map(k => line(k + ' pause', COL[k], { points: { show: true, size: 7 } })), ...ms.map(k => line(k + ' collect()', COL[k], { dash: [6, 4], points: { show: true, size: 5 } }))],
    { xLabel: 'heap MiB', scales: { x: lx, y: { distr: 3, log: 10 } }, axes: [{ label: 'heap (MiB, log)' }, { label: 'ms (log)' }] });
}
`;

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
  const ratios = c ? tableHtml(['ratio', 'value'], Object.entries(c.ratios).map(([k, v]) => [esc(k), num(v, 3)]), 'ratios') : '';
  const fl = res.floor;
  const floor = fl
    ? tableHtml(
        ['kernel floor (this process, via the binding)', 'value'],
        [
          ['UFFDIO_MOVE, 1 page per call', `${num(fl.movePerPageNs['1'], 0)} ns/page`],
          ['UFFDIO_MOVE, 16 pages per call', `${num(fl.movePerPageNs['16'], 0)} ns/page`],
          ['UFFDIO_MOVE, 64 pages per call (the collector\'s largest run)', `${num(fl.movePerPageNs['64'], 0)} ns/page`],
          ['UFFDIO_MOVE, 512 pages per call', `${num(fl.movePerPageNs['512'], 0)} ns/page (${num(4096 / fl.movePerPageNs['512'], 1)} GB/s)`],
          ['UFFDIO_COPY, 1 page per call', `${num(fl.copyPerPageNs['1'], 0)} ns/page`],
          ['UFFDIO_COPY, 64 pages per call', `${num(fl.copyPerPageNs['64'], 0)} ns/page`],
          ['UFFDIO_COPY, 512 pages per call', `${num(fl.copyPerPageNs['512'], 0)} ns/page (${num(4096 / fl.copyPerPageNs['512'], 1)} GB/s)`],
          ['memcpy (Uint8Array.set)', `${num(fl.memcpyPerPageNs, 0)} ns/page`],
          ['with a sibling thread running: MOVE 1 / 64 pages per call', `${num(fl.busySibling.movePerPageNs['1'], 0)} / ${num(fl.busySibling.movePerPageNs['64'], 0)} ns/page`],
          ['with a sibling thread running: COPY 1 / 64 pages per call', `${num(fl.busySibling.copyPerPageNs['1'], 0)} / ${num(fl.busySibling.copyPerPageNs['64'], 0)} ns/page`],
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
          ['mutator', `${esc(res.params.mutator)}${res.params.mutator === 'paced' ? `: one touch (3 loads) every ${res.params.touchUs} µs` : res.params.mutator === 'busy' ? ': touches back to back' : ''}`],
          ['mutator runs at least', `${num(c!.horizonMs, 0)} ms after collect()`],
        ],
        'params',
      )
    : '';
  let sweepNote = '';
  let sweepTable = '';
  if (res.sweep) {
    const modes = [...new Set(res.sweep.points.flatMap((p) => Object.keys(p.msPerLiveMiB)))] as ModeName[];
    sweepNote = res.sweep.fromEarlierRun ? `<p class="warn">This sweep is from an earlier run: ${esc(res.sweep.fromEarlierRun)}. Run with --sweep to refresh it.</p>` : '';
    sweepTable = tableHtml(
      ['heap', ...modes.flatMap((k) => [`${k} ms/live MiB`, `${k} compaction ms`, `${k} pause ms`, `${k} collect() ms`])],
      res.sweep.points.map((p) => [
        `${p.heapMiB} MiB`,
        ...(p.skipped ? modes.flatMap(() => ['skipped', '', '', '']) : modes.flatMap((k) => [num(p.msPerLiveMiB[k], 3), num(p.compactionMs[k]), num(p.pauseMs[k], 2), num(p.collectMs[k])])),
      ]),
      'sweep',
    );
    const skipped = res.sweep.points.filter((p) => p.skipped);
    if (skipped.length) sweepTable += `<p class="note">Skipped: ${skipped.map((p) => `${p.heapMiB} MiB (${esc(p.skipped)})`).join('; ')}</p>`;
    const ps = res.sweep.pauseSmallVsLarge as Record<string, { pause64MiBMs: number | null; pause1GiBMs: number | null; ratio: number | null; roots: number }> | null;
    if (ps)
      sweepTable += tableHtml(
        ['pause with the same roots', '64 MiB (ms)', '1 GiB (ms)', '1 GiB / 64 MiB', 'goal: < 5 ms at 1 GiB and ≤ 1.5x'],
        Object.entries(ps).map(([k, v]) => [k, num(v.pause64MiBMs, 3), num(v.pause1GiBMs, 3), num(v.ratio, 2), v.pause1GiBMs !== null && v.ratio !== null ? (v.pause1GiBMs < 5 && v.ratio <= 1.5 ? '<span class="ok">met</span>' : '<span class="bad">missed</span>') : '–']),
        'sweep',
      );
  }
  const data = JSON.stringify(res).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>movegc benchmark ${esc(res.startedAt)}</title>
<style>${css}</style>
<style>
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
<div class="row">${machine}${params}</div>
<h2>Goals (measured, not asserted)</h2>${goals}
<h2>Results: medians over ${res.params.reps} interleaved reps</h2>
${ms.length ? modeTable(ms) : '<p>no comparison in this run</p>'}
<p class="note">Compaction = the compaction thread's completion time (pause end to its last install; in stw, the stop-the-world rebuild).
Mutator side = the duration of a mutator load that faulted on a not-yet-installed page (fault to wake, as the application sees it);
handler side = the fault server's read-to-install time (CycleStats.faultUs, log buckets: lower bounds). The mutator touches random live
objects (paced: one every few µs, sleeping between; busy: back to back, a worst case that takes a core from the collector on a 2-core machine),
so most of its loads early in the cycle fault. collect() also marks and plans on the mutator's thread.</p>
<div class="row">${ratios}${floor}</div>
<h2>Minimum mutator utilization</h2>
<p class="note">Stalls: the whole collect() call (mark and plan run on the mutator's thread too), every faulting load, and the final idle() call,
over the mutator's run (collect() to the end of idle()). Dashed: the same without mark and plan, i.e. what the compaction design itself costs the mutator.</p>
<div id="mmu" class="chart"></div>
<h2>Pauses and fault latencies</h2>
<div id="pauses" class="chart"></div>
<div id="faults" class="chart"></div>
<h2>One cycle</h2>
<p class="note">Time 0 is the collect() call; mark and plan run first (no page changes), then the compaction pause, then (move, copy) concurrent compaction.
In stw every page is built inside the pause, where the mutator cannot sample: its curve is drawn as a ramp across the pause.</p>
<div id="tl-pages" class="chart"></div>
<div id="tl-faults" class="chart"></div>
<div id="tl-lat" class="chart"></div>
<div id="tl-rss" class="chart"></div>
<h2>Scaling sweep</h2>
${res.sweep ? `${sweepNote}${sweepTable}<div id="sw-cost" class="chart"></div><div id="sw-pause" class="chart"></div>` : '<p class="note">No sweep yet: run with <code>--sweep</code>.</p>'}
<h2>Every rep</h2>
<details><summary>per-rep values</summary>${ms.length ? rawTable(ms) : ''}</details>
</div>
<script id="data" type="application/json">${data}</script>
<script>${js}</script>
<script>${CLIENT}</script>
</body></html>
`;
}
