/**
 * The report's drawing code, run in the page: uPlot charts from the embedded results (R).
 * Legends are static (no live values) and show each series' line style, solid or dashed.
 * Latency distributions are drawn as exceedance curves (CCDF, log-log: the fraction of faults
 * slower than x), so the tail that a CDF squeezes against 1.0 stays visible.
 */
export const CLIENT = String.raw`
const R = JSON.parse(document.getElementById('data').textContent);
const COL = { move: '#1f77b4', 'move-handler': '#17becf', copy: '#ff7f0e', 'copy-handler': '#d62728', stw: '#2ca02c', v8: '#9467bd', floor: '#777' };
const W = (f = 1) => Math.floor(Math.min(1100, document.getElementById('main').clientWidth - 10) * f) - (f < 1 ? 8 : 0);
const logX = { time: false, distr: 3, log: 10 };
// Tick labels for a log axis of fractions (uPlot's default prints 0.0001 as 0).
const fracTicks = (u, vs) => vs.map(v => (v == null ? '' : v >= 1 ? v.toLocaleString() : String(+v.toPrecision(1))));
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
const legend = { live: false, markers: { width: 3, dash: (u, i) => (u.series[i].dash ? 'dashed' : 'solid') } };
function chart(el, title, data, series, opts = {}) {
  const node = document.getElementById(el);
  if (!node) return;
  if (data[0].length === 0) { node.innerHTML = '<p class="note">no data</p>'; return; }
  return new uPlot({ title, width: opts.width || W(), height: opts.height || 300, scales: opts.scales || { x: { time: false } },
    axes: opts.axes, series: [{ label: opts.xLabel || 'x' }, ...series], legend, plugins: opts.plugins || [], ...(opts.padding ? { padding: opts.padding } : {}) }, data, node);
}
const line = (label, stroke, extra = {}) => ({ label, stroke, width: 2, spanGaps: true, points: { show: false }, ...extra });
const dots = (label, stroke) => ({ label, stroke, fill: stroke, paths: () => null, points: { show: true, size: 4, stroke, fill: stroke } });
// Exceedance of a CDF table [[x, F(x)], ...]: [[x, 1 - F(x)]], zero dropped (log y axis).
const ccdf = c => { const t = c.filter(p => p[1] < 1); return [t.map(p => p[0]), t.map(p => 1 - p[1])]; };
// x range of an MMU chart: from a little below the first window where any curve leaves 0
// (below it every mode is at 0) to the last window with a value.
const fitted = (xs, ...curves) => {
  let last = 0, first = xs.length - 1;
  curves.forEach(c => c.forEach((v, i) => { if (v !== null && v !== undefined) { last = Math.max(last, i); if (v > 0) first = Math.min(first, i); } }));
  const lo = Math.max(0, Math.min(first, last) - 8);
  return { time: false, distr: 3, log: 10, range: () => [Math.pow(10, Math.floor(Math.log10(xs[lo]))), xs[last]] };
};
// Phase bars: one thin bar per mode above the plot (in its top padding), a segment per phase
// (mark, plan, pause, concurrent compaction), and dotted lines at the pause and the cycle's end.
const PHASE = { mark: '#444', plan: '#aaa', pause: '#d62728' };
function phases(rows) {
  return { hooks: { draw: [u => {
    const ctx = u.ctx, d = devicePixelRatio, b = u.bbox; ctx.save();
    ctx.font = (10 * d) + 'px system-ui, sans-serif'; ctx.textBaseline = 'middle';
    const X = v => Math.max(b.left, Math.min(b.left + b.width, u.valToPos(v, 'x', true)));
    rows.forEach((r, i) => {
      const y = b.top - (11 * (rows.length - i) + 1) * d, h = 7 * d;
      ctx.setLineDash([2 * d, 3 * d]); ctx.lineWidth = d; ctx.strokeStyle = r.color; ctx.globalAlpha = 0.6;
      for (const x of r.lines) { const px = Math.round(X(x)); ctx.beginPath(); ctx.moveTo(px, b.top); ctx.lineTo(px, b.top + b.height); ctx.stroke(); }
      ctx.setLineDash([]); ctx.globalAlpha = 1;
      for (const [a, z, kind] of r.segs) {
        if (!(z > a)) continue;
        const x0 = X(a), x1 = Math.max(X(z), x0 + d);
        ctx.fillStyle = PHASE[kind] || r.color; ctx.globalAlpha = PHASE[kind] ? 1 : 0.55; ctx.fillRect(x0, y, x1 - x0, h); ctx.globalAlpha = 1;
      }
      ctx.fillStyle = r.color; ctx.textAlign = 'right'; ctx.fillText(r.mode, b.left - 4 * d, y + h / 2); ctx.textAlign = 'left';
    });
    ctx.restore();
  }] } };
}
const modes = R.main ? Object.keys(R.main.modes) : [];

// MMU: per cycle (median over reps) and over the whole run (every rep back to back).
if (R.main) {
  const m = R.main.mmu;
  const cs = [...modes.map(k => m.curves[k]), ...modes.map(k => m.compaction[k])];
  chart('mmu', 'Per cycle (median over reps)', [m.windowsMs, ...cs],
    [...modes.map(k => line(k + ': every stall', COL[k])), ...modes.map(k => line(k + ': from the compaction pause on', COL[k], { dash: [6, 4] }))],
    { width: W(0.5), xLabel: 'window (ms)', scales: { x: fitted(m.windowsMs, ...cs), y: { range: [0, 1] } }, axes: [{ label: 'window (ms, log)' }, { label: 'MMU' }] });
  const wr = m.wholeRun;
  if (wr) chart('mmu-run', 'Whole run (every rep of a mode back to back)', [wr.windowsMs, ...modes.map(k => wr.curves[k])], modes.map(k => line(k + ': every stall', COL[k])),
    { width: W(0.5), xLabel: 'window (ms)', scales: { x: fitted(wr.windowsMs, ...modes.map(k => wr.curves[k])), y: { range: [0, 1] } }, axes: [{ label: 'window (ms, log)' }, { label: 'MMU' }] });
}
// Fault latency exceedance (CCDF)
if (R.main) {
  const d = R.main.distributions;
  const tables = [], ser = [];
  for (const k of modes) {
    const c = d[k].faultMutatorCdf; if (c.length > 1) { tables.push(ccdf(c)); ser.push(line(k + ' mutator side', COL[k])); }
    const h = d[k].faultHandlerCdf; if (h.length > 1) { tables.push(ccdf(h.map(p => [Math.max(0.5, p[0]), p[1]]))); ser.push(line(k + ' handler side', COL[k], { dash: [5, 4] })); }
  }
  if (R.floor) {
    tables.push(ccdf(R.floor.faultRoundTripCdf)); ser.push(line('floor round trip (idle)', COL.floor, { width: 3 }));
    tables.push(ccdf(R.floor.busySibling.faultRoundTripCdf)); ser.push(line('floor round trip (sibling busy)', '#222', { width: 2, dash: [2, 3] }));
  }
  if (tables.length) chart('faults', 'Fault latency: fraction of faults slower than x (all reps pooled)', join(tables), ser,
    { xLabel: 'µs', scales: { x: logX, y: { distr: 3, log: 10 } }, axes: [{ label: 'latency (µs, log)' }, { label: 'fraction slower (log)', values: fracTicks }] });
  else document.getElementById('faults').innerHTML = '<p class="note">no faults in this run</p>';
}
// Timelines of one cycle, with the phases marked per mode.
if (R.main) {
  const T = R.main.timelines;
  const rows = modes.map(k => {
    const t = T[k], me = t.markEndMs ?? 0, pe = t.planEndMs ?? t.pauseStartMs;
    const segs = [[0, me, 'mark'], [me, pe, 'plan'], [t.pauseStartMs, t.collectEndMs, 'pause']];
    if (k !== 'stw' && t.cycleEndMs > t.collectEndMs) segs.push([t.collectEndMs, t.cycleEndMs, 'concurrent']);
    return { mode: k, color: COL[k], segs, lines: [t.pauseStartMs, t.collectEndMs, ...(k !== 'stw' && t.cycleEndMs > 0 ? [t.cycleEndMs] : [])] };
  });
  const plug = [phases(rows)];
  const padding = [14 + 11 * rows.length, null, null, null];
  const tab = (k, f) => { const t = T[k]; return [t.tMs, t[f]]; };
  const pct = k => { const t = T[k]; return [t.tMs, t.pagesMapped.map(v => t.pagesTotal ? 100 * v / t.pagesTotal : 100)]; };
  const ax = y => [{ label: 'ms since collect() was called' }, { label: y }];
  chart('tl-pages', 'Pages installed (% of the cycle\'s pages): one cycle per mode (the median rep)', join(modes.map(pct)), modes.map(k => line(k, COL[k])), { xLabel: 'ms', axes: ax('% installed'), scales: { x: { time: false }, y: { range: [0, 100] } }, plugins: plug, padding });
  chart('tl-rss', 'Process RSS during the cycle (MiB)', join(modes.map(k => { const t = T[k]; return [t.tMs, t.rssMiB]; })), modes.map(k => line(k, COL[k])), { xLabel: 'ms', axes: ax('MiB'), plugins: plug, padding });
  chart('tl-faults', 'Faults (cumulative, fault server count)', join(modes.map(k => tab(k, 'faults'))), modes.map(k => line(k, COL[k])), { xLabel: 'ms', axes: ax('faults'), plugins: plug, padding });
  const ev = modes.filter(k => T[k].faultEvents.length);
  if (ev.length) chart('tl-lat', 'Every faulting mutator access: latency over time', join(ev.map(k => [T[k].faultEvents.map(e => e[0]), T[k].faultEvents.map(e => e[1])])), ev.map(k => dots(k, COL[k])),
    { xLabel: 'ms', axes: [{ label: 'ms since collect() was called' }, { label: 'µs (log)' }], scales: { x: { time: false }, y: { distr: 3, log: 10 } }, plugins: plug, padding });
  else document.getElementById('tl-lat').innerHTML = '<p class="note">no faults in this run</p>';
}
// Sweep: one series per mode (and per heap-option combination, dashed after the first).
if (R.sweep) {
  const pts = R.sweep.points.filter(p => !p.skipped);
  const labels = [...new Set(pts.map(p => p.label || ''))];
  const ms = [...new Set(pts.flatMap(p => Object.keys(p.msPerLiveMiB)))];
  const xs = [...new Set(pts.map(p => p.heapMiB))].sort((a, b) => a - b);
  const lx = { time: false, distr: 3, log: 2 };
  const col = (f, k, l) => xs.map(x => { const p = pts.find(q => q.heapMiB === x && (q.label || '') === l); return p && p[f][k] !== undefined ? p[f][k] : null; });
  const name = (k, l) => k + (l ? ' ' + l : '');
  const dash = (li, d) => (li > 0 ? { dash: d } : {});
  const both = (f, size) => labels.flatMap((l, li) => ms.map(k => [col(f, k, l), line(name(k, l), COL[k], { points: { show: true, size }, ...dash(li, [2, 3]) })]));
  const cost = both('msPerLiveMiB', 7);
  chart('sw-cost', 'Compaction cost per live MiB vs heap size', [xs, ...cost.map(c => c[0])], cost.map(c => c[1]),
    { xLabel: 'heap MiB', scales: { x: lx }, axes: [{ label: 'heap (MiB, log)' }, { label: 'ms per live MiB' }] });
  const pa = both('pauseMs', 7), co = labels.flatMap((l, li) => ms.map(k => [col('collectMs', k, l), line(name(k, l) + ' collect()', COL[k], { dash: li > 0 ? [1, 4] : [6, 4], points: { show: true, size: 5 } })]));
  chart('sw-pause', 'Compaction pause (solid) and collect() call (dashed) vs heap size', [xs, ...pa.map(c => c[0]), ...co.map(c => c[0])], [...pa.map(c => c[1]), ...co.map(c => c[1])],
    { xLabel: 'heap MiB', scales: { x: lx, y: { distr: 3, log: 10 } }, axes: [{ label: 'heap (MiB, log)' }, { label: 'ms (log)' }] });
}
// Splay: per-run latency exceedance per variant.
if (R.splay) {
  const vs = [...new Set(R.splay.reps.map(r => r.variant))];
  const tables = vs.map(v => {
    const s = R.splay.reps.filter(r => r.variant === v).flatMap(r => r.samplesMs).sort((a, b) => a - b);
    return [s, s.map((_, i) => 1 - (i + 1) / s.length)].map((a, j) => j ? a.slice(0, -1) : a.slice(0, -1));
  });
  chart('splay-lat', 'Splay latency samples: fraction of samples longer than x (reps pooled)', join(tables), vs.map(v => line(v === 'v8' ? 'v8 (plain JS objects)' : v, COL[v])),
    { xLabel: 'ms', scales: { x: logX, y: { distr: 3, log: 10 } }, axes: [{ label: 'sample (ms, log)' }, { label: 'fraction longer (log)', values: fracTicks }] });
}
`;
