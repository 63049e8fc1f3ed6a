/**
 * Strip-and-box plots as inline SVG, drawn when the report is written (no script needed):
 * one column per group, every value a dot (jittered sideways, so reps do not hide each
 * other), a box from the first to the third quartile and a line at the median, on a log axis.
 */

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export interface StripGroup {
  label: string;
  color: string;
  values: number[];
}

function quartile(sorted: number[], p: number): number {
  const i = (sorted.length - 1) * p;
  const lo = Math.floor(i);
  return sorted[lo] + (sorted[Math.min(sorted.length - 1, lo + 1)] - sorted[lo]) * (i - lo);
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

/** A strip plot with boxes; `unit` labels the axis. Non-positive values are left out (log axis). */
export function stripPlot(title: string, unit: string, groups: StripGroup[], width = 520, height = 260): string {
  const all = groups.flatMap((g) => g.values).filter((v) => v > 0 && Number.isFinite(v));
  if (!all.length) return `<p class="note">${esc(title)}: no data</p>`;
  const top = 26, bottom = 34, left = 56, right = 12;
  let lo = Math.floor(Math.log10(Math.min(...all)));
  let hi = Math.ceil(Math.log10(Math.max(...all)));
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const y = (v: number): number => top + (height - top - bottom) * (1 - (Math.log10(v) - lo) / (hi - lo));
  const colW = (width - left - right) / groups.length;
  const parts: string[] = [];
  parts.push(`<text x="${width / 2}" y="16" text-anchor="middle" class="t">${esc(title)}</text>`);
  for (let e = lo; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) > hi) continue;
      const yy = y(v).toFixed(1);
      parts.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" class="${m === 1 ? 'g1' : 'g2'}"/>`);
      if (m === 1 || hi - lo <= 2) parts.push(`<text x="${left - 5}" y="${yy}" dy="4" text-anchor="end" class="a">${fmt(v)}</text>`);
    }
  }
  parts.push(`<text transform="translate(13 ${(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle" class="a">${esc(unit)} (log)</text>`);
  groups.forEach((g, i) => {
    const cx = left + colW * (i + 0.5);
    const vs = g.values.filter((v) => v > 0 && Number.isFinite(v)).sort((a, b) => a - b);
    parts.push(`<text x="${cx}" y="${height - bottom + 16}" text-anchor="middle" class="a" fill="${g.color}">${esc(g.label)}</text>`);
    parts.push(`<text x="${cx}" y="${height - bottom + 29}" text-anchor="middle" class="n">${vs.length ? `median ${fmt(quartile(vs, 0.5))}, ` : ''}n=${vs.length}</text>`);
    if (!vs.length) return;
    const bw = Math.min(70, colW * 0.5);
    const q1 = y(quartile(vs, 0.25));
    const q3 = y(quartile(vs, 0.75));
    const med = y(quartile(vs, 0.5));
    parts.push(`<rect x="${(cx - bw / 2).toFixed(1)}" y="${q3.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(1, q1 - q3).toFixed(1)}" fill="${g.color}" fill-opacity="0.12" stroke="${g.color}"/>`);
    parts.push(`<line x1="${(cx - bw / 2).toFixed(1)}" x2="${(cx + bw / 2).toFixed(1)}" y1="${med.toFixed(1)}" y2="${med.toFixed(1)}" stroke="${g.color}" stroke-width="3"/>`);
    g.values.forEach((v, j) => {
      if (!(v > 0 && Number.isFinite(v))) return;
      // Deterministic jitter: spread the reps across the box width.
      const jx = cx + (g.values.length > 1 ? ((j / (g.values.length - 1)) - 0.5) * bw * 0.8 : 0);
      parts.push(`<circle cx="${jx.toFixed(1)}" cy="${y(v).toFixed(1)}" r="4" fill="${g.color}" fill-opacity="0.75" stroke="#fff" stroke-width="0.8"><title>${esc(g.label)} #${j + 1}: ${fmt(v)} ${esc(unit)}</title></circle>`);
    });
  });
  return `<svg class="strip" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

/** The CSS the strip plots use (once per page). */
export const STRIP_CSS = `svg.strip { background: #fff; border: 1px solid #eee; margin: 4px 8px 4px 0; }
svg.strip .t { font: bold 13px system-ui, sans-serif; } svg.strip .a { font: 11px system-ui, sans-serif; fill: #333; }
svg.strip .n { font: 10px system-ui, sans-serif; fill: #777; } svg.strip .g1 { stroke: #ccc; } svg.strip .g2 { stroke: #eee; }`;
