// One app: its figures, actions, a chart of instances and health over
// time, its tasks, its last failure, why launches wait, its versions with
// a diff between any two, and its audit timeline.

import { html, useEffect, useState } from './vendor/htm-preact.js';
import { useStore, onEvent } from './live.js';
import { api, appPath } from './api.js';
import { apply, counts, model, tasksOf, rfc3339, isTerminal } from './fold.js';
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
  if (!complete && events.length) m = model(await api('GET', `/v1/state?at=${events[0].seq - 1}`));
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
      <td><code>${rfc3339(task.appVersion)}</code>${task.appVersion === app.configVersion || task.appVersion === app.version ? '' : html` <span class="badge warn">old</span>`}</td>
      <td title=${when(task.startedAt)}>${task.startedAt ? ago(task.startedAt) : '—'}</td>
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

/** Definitions shown for the newest versions (each is one request). */
const DEFINED_VERSIONS = 20;

/** The app's versions, newest first (`/v2/apps/{id}/versions`), the newest
 * with their definitions; read again whenever the app changes version. */
function useVersions(id, current) {
  const [versions, setVersions] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stopped = false;
    (async () => {
      try {
        const { versions: stamps } = await api('GET', `${appPath(id)}/versions`);
        const defined = await Promise.all(stamps.slice(0, DEFINED_VERSIONS)
          .map((v) => api('GET', `${appPath(id)}/versions/${encodeURIComponent(v)}`).catch(() => null)));
        if (stopped) return;
        setVersions(stamps.map((version, i) => ({ version, definition: defined[i] || null })));
        setError(null);
      } catch (e) {
        if (!stopped) setError(e.message);
      }
    })();
    return () => {
      stopped = true;
    };
  }, [id, current]);
  return [versions, error];
}

/** The versions, newest first; pick two and see what changed between them. */
function Versions({ id, app, versions, error }) {
  const current = rfc3339(app.version);
  const [from, setFrom] = useState(null);
  const [to, setTo] = useState(null);
  const [diff, setDiff] = useState(null);
  const [failed, setFailed] = useState(null);
  // Unless picked: the current version against the one before.
  const chosenTo = to || versions[0]?.version;
  const chosenFrom = from || versions[1]?.version;
  const compare = async () => {
    setFailed(null);
    try {
      const query = new URLSearchParams({ from: chosenFrom, to: chosenTo });
      setDiff(await api('GET', `/v1/apps${id}/diff?${query}`));
    } catch (e) {
      setDiff(null);
      setFailed(e.message);
    }
  };
  return html`<div class="versions" id="versions">
    ${error && html`<div class="error">versions: ${error}</div>`}
    <table><thead><tr><th>from</th><th>to</th><th>Version</th><th>Instances</th><th>Command / image</th></tr></thead>
      <tbody>${versions.map(({ version, definition }) => html`<tr key=${version} data-version=${version}>
          <td><input type="radio" name="diff-from" value=${version} checked=${chosenFrom === version} onChange=${() => setFrom(version)} /></td>
          <td><input type="radio" name="diff-to" value=${version} checked=${chosenTo === version} onChange=${() => setTo(version)} /></td>
          <td><code>${version}</code>${version === current ? ' (current)' : ''}</td>
          <td class="num">${definition ? definition.instances : ''}</td>
          <td><code>${definition ? definition.cmd || definition.container?.docker?.image || '' : ''}</code></td>
        </tr>`)}</tbody></table>
    <button id="compare" onClick=${compare} disabled=${!chosenFrom || !chosenTo}>Compare</button>
    ${failed && html`<div class="error">${failed}</div>`}
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
  const [versions, versionsError] = useVersions(id, app.version);
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
    <${AppActions} id=${id} app=${app} versions=${versions} />
    <${InstancesChart} id=${id} checked=${checked} />
    <h2>Tasks</h2>
    <${Tasks} id=${id} app=${app} />
    <${Diagnosis} id=${id} />
    <h2>Versions</h2>
    <${Versions} id=${id} app=${app} versions=${versions} error=${versionsError} />
    <h2>Audit</h2>
    <${AppAudit} id=${id} />
  </section>`;
}
