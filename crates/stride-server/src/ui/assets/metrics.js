// The server's own figures, from `GET /metrics` (Prometheus text format):
// acknowledgement latency (the commit histogram's mean and p99 over each
// poll) and how far the furthest websocket subscriber lags, charted beside
// what this page itself sees (commit to receipt of each event).

import { html, useEffect, useState } from './vendor/htm-preact.js';
import { text } from './api.js';
import { store } from './live.js';
import { Chart } from './chart.js';

const POLL_MS = 2000;
const KEEP = 300;
const ACK = 'stride_commit_ack_duration_seconds';
const LAG = 'stride_stream_max_lag_events';

/** `name{a="b"} 1.5` lines as [{name, labels, value}]. */
export function parseMetrics(body) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of body.split('\n')) {
    if (raw.startsWith('#')) continue;
    const match = line.exec(raw);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] || '').matchAll(label)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function ackFigures(samples) {
  const committed = samples.filter((s) => s.labels.result === 'committed');
  const one = (name) => committed.find((s) => s.name === name)?.value ?? 0;
  const buckets = committed
    .filter((s) => s.name === `${ACK}_bucket`)
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  return { sum: one(`${ACK}_sum`), count: one(`${ACK}_count`), buckets };
}

/** The bucket bound under which 99% of the interval's acks fell. */
function p99(before, after) {
  const total = after.count - before.count;
  if (total <= 0) return null;
  for (const bucket of after.buckets) {
    const earlier = before.buckets.find((b) => b.le === bucket.le)?.count ?? 0;
    if (bucket.count - earlier >= 0.99 * total) return Number.isFinite(bucket.le) ? bucket.le : null;
  }
  return null;
}

const history = { mean: [], p99: [], lag: [], previous: null, status: 'loading', error: null };

function keep(series, point) {
  series.push(point);
  if (series.length > KEEP) series.shift();
}

async function poll() {
  try {
    const body = await text('/metrics');
    if (body === null) {
      history.status = 'absent';
      return;
    }
    const samples = parseMetrics(body);
    const t = Date.now();
    const ack = ackFigures(samples);
    const previous = history.previous;
    if (previous && ack.count > previous.count) {
      keep(history.mean, { t, v: (1000 * (ack.sum - previous.sum)) / (ack.count - previous.count) });
      const bound = p99(previous, ack);
      if (bound !== null) keep(history.p99, { t, v: 1000 * bound });
    }
    history.previous = ack;
    const lag = samples.find((s) => s.name === LAG && s.labels.protocol === 'websocket');
    if (lag) keep(history.lag, { t, v: lag.value });
    history.status = 'ok';
    history.error = null;
  } catch (error) {
    history.status = 'error';
    history.error = error.message;
  }
}

export function ServerFigures() {
  const [, tick] = useState(0);
  useEffect(() => {
    let stopped = false;
    const run = async () => {
      await poll();
      if (!stopped) tick((n) => n + 1);
    };
    run();
    const timer = setInterval(run, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  const seen = store.delays.map((d) => ({ t: d.t, v: d.ms }));
  const note = {
    absent: 'This server has no /metrics: only what this page sees is shown.',
    error: `GET /metrics failed: ${history.error}`,
  }[history.status];
  return html`<section class="figures" id="server-figures">
    <h2>Server figures</h2>
    ${note && html`<p class="muted">${note}</p>`}
    <div class="charts">
      <${Chart} id="chart-ack" title="Acknowledgement latency (ms, per 2 s)" unit="ms"
        series=${[{ name: 'mean', cls: 's1', points: history.mean }, { name: 'p99 ≤', cls: 's2', points: history.p99 }, { name: 'commit→this page', cls: 's3', points: seen }]} />
      <${Chart} id="chart-lag" title="Stream lag (events behind, furthest subscriber)"
        series=${[{ name: 'lag', cls: 's1', points: history.lag }]} />
    </div>
  </section>`;
}
