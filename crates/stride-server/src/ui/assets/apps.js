// The app list: instances running, healthy and staged, health, any
// deployment in progress; filtered by id prefix and label; and a form to
// deploy a new app.

import { html, useState } from './vendor/htm-preact.js';
import { useStore } from './live.js';
import { counts } from './fold.js';
import { api } from './api.js';
import { useAction } from './actions.js';
import { ServerFigures } from './metrics.js';

/** `key` or `key=value` against an app's labels. */
function labelMatches(labels, filter) {
  if (!filter) return true;
  const [key, value] = filter.split('=', 2).map((s) => s.trim());
  if (!(key in (labels || {}))) return false;
  return value === undefined || labels[key] === value;
}

export function deploymentOf(deployments, id) {
  return deployments.find((d) => (d.affectedApps || []).includes(id));
}

export function status(app, c, deployment) {
  if (deployment) return ['Deploying', 'warn'];
  if (app.definition.instances === 0) return ['Suspended', ''];
  if (c.running < app.definition.instances) return ['Waiting', 'warn'];
  if (c.unhealthy > 0) return ['Unhealthy', 'bad'];
  return ['Running', 'ok'];
}

const TEMPLATE = JSON.stringify({
  id: '/web',
  cmd: 'python3 -m http.server $PORT0',
  instances: 1,
  cpus: 0.1,
  mem: 64,
  portDefinitions: [{ port: 0 }],
  healthChecks: [{ protocol: 'HTTP', path: '/', portIndex: 0, intervalSeconds: 2, gracePeriodSeconds: 10 }],
}, null, 2);

function NewApp({ onClose }) {
  const [text, setText] = useState(TEMPLATE);
  const [error, setError] = useState(null);
  const [ask, view] = useAction();
  const submit = () => {
    let definition;
    try {
      definition = JSON.parse(text);
    } catch (e) {
      setError(`Not JSON: ${e.message}`);
      return;
    }
    setError(null);
    ask({
      what: `create ${definition.id}`,
      title: `Deploy ${definition.id}?`,
      body: html`<p>${definition.instances ?? 1} instance(s) of <code>${definition.cmd || definition.container?.docker?.image || ''}</code>.</p>`,
      confirmLabel: 'Deploy',
      call: () => api('POST', '/v2/apps', definition),
    });
  };
  return html`<section class="new-app" id="new-app">
    <h2>Deploy an app</h2>
    <p class="muted">A Marathon app definition (POST /v2/apps).</p>
    <textarea id="new-app-json" rows="14" spellcheck="false" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
    ${error && html`<div class="error" role="alert">${error}</div>`}
    <div class="buttons"><button onClick=${onClose}>Close</button><button id="new-app-submit" class="primary" onClick=${submit}>Deploy</button></div>
    ${view}
  </section>`;
}

export function AppList() {
  const { model, deployments } = useStore();
  const [prefix, setPrefix] = useState('');
  const [label, setLabel] = useState('');
  const [creating, setCreating] = useState(false);
  const ids = Object.keys(model.apps)
    .filter((id) => id.startsWith(prefix || ''))
    .filter((id) => labelMatches(model.apps[id].definition.labels, label))
    .sort();
  return html`<section>
    <div class="toolbar">
      <h1>Apps <span class="muted">${ids.length} of ${Object.keys(model.apps).length}</span></h1>
      <input id="filter-id" placeholder="id prefix, e.g. /prod/" value=${prefix} onInput=${(e) => setPrefix(e.target.value)} />
      <input id="filter-label" placeholder="label, e.g. team=web" value=${label} onInput=${(e) => setLabel(e.target.value)} />
      <button id="new-app-open" class="primary" onClick=${() => setCreating(true)}>Deploy app</button>
    </div>
    ${creating && html`<${NewApp} onClose=${() => setCreating(false)} />`}
    <table class="apps" id="apps">
      <thead><tr><th>App</th><th>Status</th><th>Running</th><th>Healthy</th><th>Staged</th><th>Deployment</th><th>CPU / Mem</th><th>Labels</th></tr></thead>
      <tbody>
        ${ids.map((id) => {
          const app = model.apps[id];
          const c = counts(model, id);
          const d = deploymentOf(deployments, id);
          const [word, cls] = status(app, c, d);
          const checked = (app.definition.healthChecks || []).length > 0;
          return html`<tr data-app=${id} key=${id}>
            <td><a href=${`#/apps${id}`}>${id}</a></td>
            <td><span class=${`badge ${cls}`}>${word}</span></td>
            <td class="num" data-field="running">${c.running} / ${app.definition.instances}</td>
            <td class="num" data-field="healthy">${checked ? `${c.healthy}${c.unhealthy ? ` (${c.unhealthy} unhealthy)` : ''}` : '—'}</td>
            <td class="num" data-field="staged">${c.staged}</td>
            <td>${d ? html`<a href="#/deployments">step ${d.currentStep}/${d.totalSteps}</a>` : ''}</td>
            <td class="num">${app.definition.cpus} / ${app.definition.mem} MiB</td>
            <td>${Object.entries(app.definition.labels || {}).map(([k, v]) => html`<span class="label">${k}=${v}</span>`)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${ids.length === 0 && html`<p class="muted">No apps${prefix || label ? ' match' : ' yet'}.</p>`}
    <${ServerFigures} />
  </section>`;
}
