/**
 * The Splay section of the report (bench/splay.ts results): a side-by-side table of the
 * variants, issue 11's self / handler ratios against their targets, a strip plot of each rep's
 * RMS latency and of its collection runs, and the latency exceedance chart (drawn by
 * report-client.ts). renderSplayHtml() wraps it as a page of its own for `movegc splay`.
 */
import { COLORS, esc, num, provenanceTable, tableHtml, uplotAssets } from './report.js';
import { CLIENT } from './report-client.js';
import { stripPlot, STRIP_CSS } from './report-svg.js';
import { variantTitle } from './knobs.js';
import { TARGETS, type SplayResults } from './splay.js';

export function splaySection(res: SplayResults, note: string): string {
  const vs = Object.values(res.summary);
  const title = (s: (typeof vs)[number]): string => (s.variant === 'v8' ? 'v8 (plain JS objects)' : variantTitle(s.mode, s.faultPath));
  const head = ['median over reps', ...vs.map((s) => `<span style="color:${COLORS[s.variant] ?? '#000'};font-weight:bold">${esc(title(s))}</span>${s.fallbacks.length ? ' (fallback)' : ''}`)];
  const heapOnly = (x: string, s: (typeof vs)[number]): string => (s.variant === 'v8' ? '-' : x);
  const rows: Array<[string, (s: (typeof vs)[number]) => string]> = [
    ['<b>throughput (runs/s)</b>', (s) => `<b>${num(s.runsPerS, 0)}</b>`],
    ['µs per run', (s) => num(s.usPerRun, 0)],
    ['Octane Splay score', (s) => esc(s.splayScore)],
    ['latency p50 / p99 (ms)', (s) => `${num(s.latencyP50Ms, 2)} / ${num(s.latencyP99Ms, 2)}`],
    ['<b>latency max (ms)</b>', (s) => `<b>${num(s.latencyMaxMs, 1)}</b>`],
    ['RMS latency (ms)', (s) => num(s.rmsMs, 2)],
    ['<b>Octane SplayLatency score</b>', (s) => `<b>${esc(s.latencyScore)}</b>`],
    ['movegc cycles', (s) => heapOnly(num(s.cycles, 0), s)],
    ['collect() p50 / max (ms)', (s) => heapOnly(`${num(s.collectP50Ms, 1)} / ${num(s.collectMaxMs, 1)}`, s)],
    ['<b>collection run p50</b> / max (ms): collect() removed', (s) => heapOnly(`<b>${num(s.collectionRunP50Ms, 1)}</b> / ${num(s.collectionRunMaxMs, 1)}`, s)],
    ['the run after it, p50 (ms)', (s) => heapOnly(num(s.nextRunP50Ms, 1), s)],
    ['runs until every page is installed, p50: count / total ms (collect() removed)', (s) => heapOnly(`${num(s.compactionRunsP50, 0)} / ${num(s.compactionRunsP50Ms, 1)}`, s)],
    ['<b>stall per touched unbuilt page p50</b> / p99 (µs)', (s) => heapOnly(s.stalls ? `<b>${num(s.stallP50Us, 0)}</b> / ${num(s.stallP99Us, 0)}` : '–', s)],
    ['touched unbuilt pages / built by self / left to the kernel path', (s) => heapOnly(`${num(s.stalls, 0)} / ${num(s.pagesBuiltBySelf, 0)} / ${num(s.selfLeft, 0)}`, s)],
    ['kernel faults (fault server)', (s) => heapOnly(num(s.faults, 0), s)],
    ["V8's own GCs: count / max pause / total (ms)", (s) => `${num(s.v8gcCount, 0)} / ${num(s.v8gcMaxMs, 1)} / ${num(s.v8gcTotalMs, 0)}`],
    ['setup: 8000 inserts (ms)', (s) => num(s.setupMs, 0)],
    ['tree check (8000 sorted keys; heap.verify)', (s) => (s.keysOk ? 'ok' : '<span class="bad">FAILED</span>')],
  ];
  const table = tableHtml(head, rows.map(([k, f]) => [k, ...vs.map(f)]), 'splay');
  const met = (x: number | null, t: number): string => (x === null ? '–' : `${num(x, 3)} ${x <= t ? '(met)' : '<span class="bad">(not met)</span>'}`);
  const ys = res.yardsticks ?? [];
  const yard = ys.length
    ? tableHtml(['issue 11: self / handler', ...ys.map((y) => esc(y.mode))], [
        [`stall per touched unbuilt page, p50 (target ≤ ${num(TARGETS.stallP50Ratio, 3)})`, ...ys.map((y) => met(y.stallP50Ratio, TARGETS.stallP50Ratio))],
        [`collection run, p50 (target ≤ ${num(TARGETS.collectionRunRatio, 3)} in move mode)`, ...ys.map((y) => met(y.collectionRunRatio, TARGETS.collectionRunRatio))],
      ], 'ratios')
    : '';
  const strips = stripPlot('RMS latency per rep', 'ms', vs.map((s) => ({ label: s.variant, color: COLORS[s.variant], values: res.reps.filter((r) => r.variant === s.variant).map((r) => r.rmsMs) })), 720, 240) +
    stripPlot('Longest latency sample per rep', 'ms', vs.map((s) => ({ label: s.variant, color: COLORS[s.variant], values: res.reps.filter((r) => r.variant === s.variant).map((r) => r.latencyMs.max) })), 720, 240) +
    stripPlot('Collection runs, collect() removed (every collection of every rep)', 'ms', vs.filter((s) => s.variant !== 'v8').map((s) => ({ label: s.variant, color: COLORS[s.variant], values: res.reps.filter((r) => r.variant === s.variant).flatMap((r) => r.collectionRunsMs) })), 720, 240);
  const p = res.params;
  return `<p class="note">${note} ${esc(p.reps)} reps per variant, interleaved, each in a fresh process: setup (8000 inserts) then ${esc(p.seconds)} s of Octane runs
(80 inserts and 80 removes each). Heap ${esc(p.heapMiB)} MiB, collect() when use passes ${esc(p.trigger)} of it. A latency sample is the time between two samples
(every 20 inserts during setup, then one per run): it includes collect() calls and faults. Scores as Octane 2.0 computes them (higher is better):
Splay = 100 × 81491 / µs per run, SplayLatency = 100 × 2739514 / (RMS ms × 10⁴).
The collection run is the run during which <code>collect()</code> returned (the same insert in every variant: the keys are seeded), less collect()'s own time:
the concurrent compaction starts there. A stall per touched unbuilt page is timed on the mutator's thread (log buckets: lower bounds), self-service and
kernel-fault samples merged; <i>self</i> variants build such pages in the accessor, <i>handler</i> variants leave them to the fault-server thread.${res.provenance.busy ? ` <span class="warn">Busy machine: load ${esc(res.provenance.load.start[0])} to ${esc(res.provenance.load.end?.[0])} on ${esc(res.provenance.cores)} cores.</span>` : ''}</p>
${table}${yard}<div class="row">${strips}</div><div id="splay-lat" class="chart"></div>`;
}

export function renderSplayHtml(res: SplayResults): string {
  const { js, css } = uplotAssets();
  const data = JSON.stringify({ splay: res }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>movegc Splay ${esc(res.startedAt)}</title>
<style>${css}</style><style>${STRIP_CSS}
.u-legend .u-marker { width: 22px; height: 0; border-width: 3px 0 0 0 !important; margin-right: 6px; vertical-align: middle; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; background: #fafafa; color: #222; }
#main { max-width: 1140px; margin: 0 auto; padding: 16px 20px 60px; background: #fff; }
h1 { font-size: 22px; } table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } thead th { background: #f0f0f0; text-align: center; }
tbody th { text-align: left; font-weight: normal; background: #fbfbfb; } .note { color: #555; font-size: 13px; } .warn { color: #a60; } .bad { color: #c00; }
code { background: #f3f3f3; padding: 1px 4px; } .row { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
</style></head><body><div id="main">
<h1>movegc: Octane Splay and SplayLatency, movegc heap vs V8</h1>
${provenanceTable(res.provenance)}
${splaySection(res, `${esc(res.startedAt)} – ${esc(res.finishedAt)}.`)}
</div>
<script id="data" type="application/json">${data}</script>
<script>${js}</script>
<script>${CLIENT}</script>
</body></html>
`;
}
