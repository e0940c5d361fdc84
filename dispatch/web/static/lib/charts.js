// Small SVG charts drawn here (no CDN, no chart package): grouped horizontal bars of shares per row,
// and a trend of shares over months. Pure: each returns SVG markup for the data it is given, with
// every label escaped, a <title> for screen readers and a null drawn as "no data" (never as 0).

import { escapeHtml } from "./html.js";

const FONT = 12;
const GAP = 6;

// Bars of shares (0..1) per row: `rows` = [{ label, values: [share|null, ...] }], `series` =
// [{ name, colour }] in the same order as `values`; `format(share)` writes the value at each bar.
export function shareBars({ title, rows, series, format, noData }) {
  const labelWidth = 190;
  const plotWidth = 420;
  const bar = 14;
  const group = series.length * bar + GAP * 2;
  const legend = 22;
  const height = legend + rows.length * group + 20;
  const width = labelWidth + plotWidth + 70;
  const x = (share) => labelWidth + share * plotWidth;
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((s) => `<line x1="${x(s)}" x2="${x(s)}" y1="${legend}" y2="${height - 16}" class="grid"/>` +
      `<text x="${x(s)}" y="${height - 4}" text-anchor="middle">${escapeHtml(format(s))}</text>`)
    .join("");
  const bars = rows
    .map((row, r) => {
      const top = legend + r * group + GAP;
      const label = `<text x="${labelWidth - 8}" y="${top + (series.length * bar) / 2 + FONT / 3}" text-anchor="end" class="label">${escapeHtml(row.label)}</text>`;
      const marks = series
        .map((s, i) => {
          const y = top + i * bar;
          const value = row.values[i];
          if (value === null || value === undefined) {
            return `<text x="${x(0) + 4}" y="${y + bar - 3}" class="none">${escapeHtml(noData)}</text>`;
          }
          const w = Math.max(value * plotWidth, 1);
          return `<rect x="${x(0)}" y="${y}" width="${w}" height="${bar - 2}" fill="${s.colour}" data-series="${i}"><title>${escapeHtml(`${row.label} · ${s.name}: ${format(value)}`)}</title></rect>` +
            `<text x="${x(0) + w + 4}" y="${y + bar - 3}">${escapeHtml(format(value))}</text>`;
        })
        .join("");
      return `<g class="row">${label}${marks}</g>`;
    })
    .join("");
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}" font-size="${FONT}">
    <title>${escapeHtml(title)}</title>${legendOf(series, labelWidth)}${ticks}${bars}</svg>`;
}

// Lines of shares (0..1) over months: `points` = [{ label, values: [share|null, ...] }]; a month
// without incidents (null) breaks the line rather than dropping it to 0.
export function shareTrend({ title, points, series, format }) {
  const left = 64; // room for "100.0 %"
  const plotWidth = Math.max(360, (points.length - 1) * 60); // a year reads as well as one month
  const plotHeight = 160;
  const top = 26;
  const width = left + plotWidth + 40;
  const height = top + plotHeight + 30;
  const x = (i) => left + (points.length === 1 ? plotWidth / 2 : (i * plotWidth) / (points.length - 1));
  const y = (share) => top + (1 - share) * plotHeight;
  const grid = [0, 0.5, 1]
    .map((s) => `<line x1="${left}" x2="${left + plotWidth}" y1="${y(s)}" y2="${y(s)}" class="grid"/>` +
      `<text x="${left - 6}" y="${y(s) + FONT / 3}" text-anchor="end">${escapeHtml(format(s))}</text>`)
    .join("");
  const months = points
    .map((p, i) => `<text x="${x(i)}" y="${height - 8}" text-anchor="middle">${escapeHtml(p.label)}</text>`)
    .join("");
  const lines = series
    .map((s, k) => {
      const runs = [[]];
      points.forEach((p, i) => {
        const value = p.values[k];
        if (value === null || value === undefined) runs.push([]);
        else runs[runs.length - 1].push([x(i), y(value), p.label, value]);
      });
      const paths = runs
        .filter((run) => run.length > 1)
        .map((run) => `<polyline fill="none" stroke="${s.colour}" stroke-width="2.5" points="${run.map(([px, py]) => `${px},${py}`).join(" ")}"/>`)
        .join("");
      const dots = runs
        .flat()
        .map(([px, py, label, value]) => `<circle cx="${px}" cy="${py}" r="4" fill="${s.colour}" data-series="${k}"><title>${escapeHtml(`${label} · ${s.name}: ${format(value)}`)}</title></circle>`)
        .join("");
      return paths + dots;
    })
    .join("");
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}" font-size="${FONT}">
    <title>${escapeHtml(title)}</title>${legendOf(series, left)}${grid}${months}${lines}</svg>`;
}

function legendOf(series, left) {
  return series
    .map((s, i) => {
      const at = left + i * 200;
      return `<rect x="${at}" y="4" width="12" height="12" fill="${s.colour}"/><text x="${at + 16}" y="14">${escapeHtml(s.name)}</text>`;
    })
    .join("");
}
