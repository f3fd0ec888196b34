// One app: its figures, actions, a chart of instances and health over
// time, its tasks, its last failure, why launches wait, its versions with
// a diff between any two, and its audit timeline.

import { html, useEffect, useState } from './vendor/htm-preact.js';
import { useStore, onEvent } from './live.js';
import { api, appPath } from './api.js';
import { apply, counts, tasksOf, rfc3339, isTerminal } from './fold.js';
import { when, ago, shortId } from './format.js';
import { AppActions, KillTask } from './actions.js';
import { deploymentOf, status } from './apps.js';
import { Chart } from './chart.js';
import { AppAudit, Changes } from './audit.js';

const HISTORY_PAGES = 10;

/** Instances, running and healthy after each of the app's events, folded
 * from its audit history (the newest 10,000 events; older history starts
 * from the state as of the first of them). */
async function history(id) {
  const events = [];
  let cursor = null;
  let complete = false;
  for (let page = 0; page < HISTORY_PAGES; page += 1) {
    const query = new URLSearchParams({ app: id, order: 'desc', limit: '1000' });
    if (cursor) query.set('cursor', cursor);
    const answer = await api('GET', `/v1/audit?${query}`);
    events.push(...answer.events);
    cursor = answer.next;
    if (!cursor) {
      complete = true;
      break;
    }
  }
  events.reverse();
  let m = { seq: 0, apps: {}, tasks: {} };
  if (!complete && events.length) {
    const before = await api('GET', `/v1/state?at=${events[0].seq - 1}`);
    m = { seq: before.seq, apps: before.state.apps, tasks: before.state.tasks };
  }
  const points = [];
  for (const e of events) {
    apply(m, e);
    const c = counts(m, id);
    points.push({ t: Date.parse(e.at), running: c.running, healthy: c.healthy, instances: m.apps[id]?.definition.instances ?? 0, seq: e.seq });
  }
  return points;
}

function InstancesChart({ id, checked }) {
  const { samples } = useStore();
  const [past, setPast] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    history(id).then(setPast, (e) => setError(e.message));
  }, [id]);
  // Live samples after what the history covered.
  const cutoff = past?.length ? past[past.length - 1].t : 0;
  const live = (samples.get(id) || []).filter((p) => p.t > cutoff);
  const all = [...(past || []), ...live];
  const series = [
    { name: 'instances', cls: 's2', points: all.map((p) => ({ t: p.t, v: p.instances })) },
    { name: 'running', cls: 's1', points: all.map((p) => ({ t: p.t, v: p.running })) },
  ];
  if (checked) series.push({ name: 'healthy', cls: 's3', points: all.map((p) => ({ t: p.t, v: p.healthy })) });
  return html`<div>
    ${error && html`<p class="error">history: ${error}</p>`}
    <${Chart} id="chart-instances" title="Instances and health over time" series=${series} />
  </div>`;
}

function Tasks({ id, app }) {
  const { model } = useStore();
  const tasks = tasksOf(model, id);
  const checked = (app.definition.healthChecks || []).length > 0;
  return html`<table class="tasks" id="tasks">
    <thead><tr><th>Task</th><th>Host:ports</th><th>State</th><th>Health</th><th>Version</th><th>Started</th><th>Output</th><th></th></tr></thead>
    <tbody>${tasks.map(([taskId, task]) => html`<tr key=${taskId} data-task=${taskId} data-condition=${task.condition}>
      <td><code>${taskId}</code></td>
      <td>${task.ports.length ? task.ports.map((p) => html`<a class="endpoint" href=${`http://${task.host}:${p}/`} target="_blank" rel="noopener">${task.host}:${p}</a> `) : task.host}</td>
      <td><span class=${`badge ${task.condition === 'Running' ? 'ok' : isTerminal(task.condition) ? 'bad' : 'warn'}`}>${task.condition}</span>${task.draining ? ' draining' : ''}${task.message ? html`<div class="muted small">${task.message}</div>` : ''}</td>
      <td>${!checked ? '—' : task.healthy === true ? html`<span class="badge ok">healthy</span>` : task.healthy === false ? html`<span class="badge bad">unhealthy</span>` : 'unknown'}</td>
      <td><code>${rfc3339(task.app_version)}</code>${task.app_version === app.config_version || task.app_version === app.version ? '' : html` <span class="badge warn">old</span>`}</td>
      <td title=${when(task.started_at)}>${task.started_at ? ago(task.started_at) : '—'}</td>
      <td><a href=${`#/tasks/${encodeURIComponent(taskId)}/stdout`}>stdout</a> · <a href=${`#/tasks/${encodeURIComponent(taskId)}/stderr`}>stderr</a></td>
      <td>${!isTerminal(task.condition) && html`<${KillTask} id=${id} task=${taskId} />`}</td>
    </tr>`)}</tbody>
  </table>
  ${tasks.length === 0 && html`<p class="muted">No tasks.</p>`}`;
}

/** `lastTaskFailure` (from `/v2/apps/{id}`) and why launches wait (from
 * `/v1/queue`), read again when one of the app's tasks ends or every 2 s. */
function Diagnosis({ id }) {
  const [failure, setFailure] = useState(null);
  const [waiting, setWaiting] = useState(null);
  useEffect(() => {
    let stopped = false;
    const read = async () => {
      try {
        const [answer, queue] = await Promise.all([api('GET', appPath(id)), api('GET', '/v1/queue')]);
        if (stopped) return;
        setFailure(answer.app.lastTaskFailure || null);
        setWaiting(queue.queue.find((q) => q.app === id) || null);
      } catch {
        // The banner says the server is unreachable; a deleted app shows nothing.
      }
    };
    read();
    const timer = setInterval(read, 2000);
    const off = onEvent((e) => {
      if (e.app === id && (e.type === 'TaskStatusRecorded' || e.type === 'TaskLaunchRequested')) read();
    });
    return () => {
      stopped = true;
      clearInterval(timer);
      off();
    };
  }, [id]);
  return html`<div class="diagnosis">
    <div id="queue-reason">${waiting
      ? html`<b>Waiting to launch ${waiting.count}</b> since ${when(Date.parse(waiting.since) * 1000)}: ${waiting.reason}`
      : html`<span class="muted">Nothing waits to launch.</span>`}</div>
    <div id="last-failure">${failure
      ? html`<b>Last task failure</b> ${when(Date.parse(failure.timestamp) * 1000)}: <code>${failure.taskId}</code> ${failure.state} on ${failure.host}${failure.message ? `: ${failure.message}` : ''}${' '}
          (<a href=${`#/tasks/${encodeURIComponent(failure.taskId)}/stderr`}>stderr</a>)`
      : html`<span class="muted">No task has failed.</span>`}</div>
  </div>`;
}

/** The versions, newest first; pick two and see what changed between them. */
function Versions({ id, app }) {
  const versions = [...app.versions].reverse();
  const [from, setFrom] = useState(versions[1] ? rfc3339(versions[1].version) : null);
  const [to, setTo] = useState(rfc3339(versions[0].version));
  const [diff, setDiff] = useState(null);
  const [error, setError] = useState(null);
  const compare = async () => {
    setError(null);
    try {
      const query = new URLSearchParams({ from, to });
      setDiff(await api('GET', `/v1/apps${id}/diff?${query}`));
    } catch (e) {
      setDiff(null);
      setError(e.message);
    }
  };
  return html`<div class="versions" id="versions">
    <table><thead><tr><th>from</th><th>to</th><th>Version</th><th>Instances</th><th>Command / image</th></tr></thead>
      <tbody>${versions.map((v) => {
        const stamp = rfc3339(v.version);
        return html`<tr key=${stamp}>
          <td><input type="radio" name="diff-from" value=${stamp} checked=${from === stamp} onChange=${() => setFrom(stamp)} /></td>
          <td><input type="radio" name="diff-to" value=${stamp} checked=${to === stamp} onChange=${() => setTo(stamp)} /></td>
          <td><code>${stamp}</code>${v.version === app.version ? ' (current)' : ''}</td>
          <td class="num">${v.definition.instances}</td>
          <td><code>${v.definition.cmd || v.definition.container?.docker?.image || ''}</code></td>
        </tr>`;
      })}</tbody></table>
    <button id="compare" onClick=${compare} disabled=${!from || !to}>Compare</button>
    ${error && html`<div class="error">${error}</div>`}
    ${diff && html`<${Changes} changes=${diff.changes} id="version-diff" />`}
  </div>`;
}

export function AppDetail({ id }) {
  const { model, deployments } = useStore();
  const app = model.apps[id];
  if (!app) {
    return html`<section><h1>${id}</h1><p class="muted" id="app-missing">No such app (it may have been deleted). <a href="#/apps">All apps</a></p></section>`;
  }
  const c = counts(model, id);
  const d = deploymentOf(deployments, id);
  const [word, cls] = status(app, c, d);
  const checked = (app.definition.healthChecks || []).length > 0;
  return html`<section class="app" data-app=${id}>
    <div class="toolbar">
      <h1>${id} <span class=${`badge ${cls}`}>${word}</span></h1>
      <span class="figures" id="app-figures">
        <b data-field="running">${c.running}</b> of ${app.definition.instances} running${' · '}
        ${checked ? html`<b data-field="healthy">${c.healthy}</b> healthy${' · '}` : ''}
        ${c.staged} staged · version <code>${rfc3339(app.version)}</code>
      </span>
    </div>
    ${d && html`<div class="tracker">Deployment <code title=${d.id}>${shortId(d.id)}</code>: step ${d.currentStep} of ${d.totalSteps}</div>`}
    <${AppActions} id=${id} app=${app} />
    <${InstancesChart} id=${id} checked=${checked} />
    <h2>Tasks</h2>
    <${Tasks} id=${id} app=${app} />
    <${Diagnosis} id=${id} />
    <h2>Versions</h2>
    <${Versions} id=${id} app=${app} key=${app.versions.length} />
    <h2>Audit</h2>
    <${AppAudit} id=${id} />
  </section>`;
}
