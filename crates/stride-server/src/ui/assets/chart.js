// A small step chart in SVG: a few series over time, for a glance.

import { html } from './vendor/htm-preact.js';

const WIDTH = 480;
const HEIGHT = 120;
const PAD = { left: 36, right: 8, top: 8, bottom: 18 };

/**
 * `series`: [{name, cls, points: [{t (ms), v}]}]; `unit` labels the axis.
 * Values hold until the next point (a step chart), up to `until`.
 */
export function Chart({ title, series, unit = '', until = Date.now(), id }) {
  const points = series.flatMap((s) => s.points);
  if (points.length === 0) {
    return html`<figure class="chart" id=${id}><figcaption>${title}</figcaption><p class="muted">no data yet</p></figure>`;
  }
  const t0 = Math.min(...points.map((p) => p.t));
  const t1 = Math.max(until, t0 + 1000);
  const vmax = Math.max(1, ...points.map((p) => p.v));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - (v / vmax) * (HEIGHT - PAD.top - PAD.bottom);
  const path = (ps) => {
    if (ps.length === 0) return '';
    let d = `M${x(ps[0].t).toFixed(1)},${y(ps[0].v).toFixed(1)}`;
    for (let i = 1; i < ps.length; i += 1) {
      d += `H${x(ps[i].t).toFixed(1)}V${y(ps[i].v).toFixed(1)}`;
    }
    return `${d}H${x(t1).toFixed(1)}`;
  };
  const label = (v) => `${Number.isInteger(v) ? v : v.toFixed(1)}${unit}`;
  const span = Math.round((t1 - t0) / 1000);
  return html`<figure class="chart" id=${id}>
    <figcaption>${title} <span class="legend">${series.map((s) => html`<span class=${`key ${s.cls}`}>${s.name}${s.points.length ? ` ${label(s.points[s.points.length - 1].v)}` : ''}</span>`)}</span></figcaption>
    <svg viewBox=${`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label=${title}>
      <line class="axis" x1=${PAD.left} y1=${y(0)} x2=${WIDTH - PAD.right} y2=${y(0)} />
      <line class="grid" x1=${PAD.left} y1=${y(vmax)} x2=${WIDTH - PAD.right} y2=${y(vmax)} />
      <text class="tick" x=${PAD.left - 4} y=${y(vmax) + 4} text-anchor="end">${label(vmax)}</text>
      <text class="tick" x=${PAD.left - 4} y=${y(0) + 4} text-anchor="end">0</text>
      <text class="tick" x=${WIDTH - PAD.right} y=${HEIGHT - 4} text-anchor="end">${span}s</text>
      ${series.map((s) => html`<path class=${`line ${s.cls}`} d=${path(s.points)} />`)}
    </svg>
  </figure>`;
}
