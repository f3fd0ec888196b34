// Changing things: every action asks for confirmation first, then shows
// the deployment it started until that deployment finishes or fails.

import { html, useState } from './vendor/htm-preact.js';
import { api, appPath } from './api.js';
import { store, track, untrack, useStore } from './live.js';
import { rfc3339 } from './fold.js';
import { when, shortId } from './format.js';

export function Confirm({ title, children, confirmLabel, danger, onConfirm, onCancel }) {
  return html`<div class="modal-backdrop">
    <div class="modal" role="dialog" aria-modal="true" aria-label=${title} id="confirm">
      <h3>${title}</h3>
      <div>${children}</div>
      <div class="buttons">
        <button id="confirm-cancel" onClick=${onCancel}>Cancel</button>
        <button id="confirm-ok" class=${danger ? 'danger' : 'primary'} onClick=${onConfirm}>${confirmLabel}</button>
      </div>
    </div>
  </div>`;
}

/** Where a deployment this page started is: from `/v2/deployments` while
 * it runs, from its last event once it ended. */
function DeploymentTracker({ tracked }) {
  const { id, what, ended } = tracked;
  const running = store.deployments.find((d) => d.id === id);
  let status;
  let cls = '';
  if (ended?.type === 'DeploymentFinished') {
    status = `finished at ${when(Date.parse(ended.at) * 1000)}`;
    cls = 'ok';
  } else if (ended) {
    status = `failed: ${ended.reason}`;
    cls = 'bad';
  } else if (running) {
    const actions = (running.currentActions || []).map((a) => `${a.action} ${a.app}`).join(', ');
    status = `step ${running.currentStep} of ${running.totalSteps}${actions ? `: ${actions}` : ''}`;
  } else {
    status = 'started';
  }
  return html`<div class=${`tracker ${cls}`} data-deployment=${id} data-state=${ended ? ended.type : 'running'}>
    ${what}: deployment <code title=${id}>${shortId(id)}</code> ${status}
    <button class="link dismiss" title="dismiss" onClick=${() => untrack(id)}>×</button>
  </div>`;
}

/** The deployments this page started, under the header on every view. */
export function Trackers() {
  const { tracked } = useStore();
  if (tracked.length === 0) return null;
  return html`<div id="trackers">${tracked.map((t) => html`<${DeploymentTracker} key=${t.id} tracked=${t} />`)}</div>`;
}

/** A button that confirms, calls, and then tracks the deployment it started. */
export function useAction() {
  const [pending, setPending] = useState(null);
  const [error, setError] = useState(null);
  const ask = (action) => {
    setError(null);
    setPending(action);
  };
  const run = async () => {
    const action = pending;
    setPending(null);
    try {
      const answer = await action.call();
      // Deployable calls answer {deploymentId}; creating answers the app with its deployments.
      const started = answer?.deploymentId || answer?.deployments?.[0]?.id;
      if (started) track(started, action.what);
      action.done?.(answer);
    } catch (e) {
      setError(`${action.what}: ${e.message}`);
    }
  };
  const view = html`
    ${pending && html`<${Confirm} title=${pending.title} confirmLabel=${pending.confirmLabel} danger=${pending.danger}
        onConfirm=${run} onCancel=${() => setPending(null)}>${pending.body}</${Confirm}>`}
    ${error && html`<div class="error" role="alert" id="action-error">${error}</div>`}`;
  return [ask, view];
}

/** `versions`: newest first, `{version, definition}` (the definition may
 * be unknown for old ones). */
export function AppActions({ id, app, versions: all }) {
  const [ask, view] = useAction();
  const [instances, setInstances] = useState(String(app.definition.instances));
  const versions = all.filter((v) => v.version !== rfc3339(app.version));
  const [target, setTarget] = useState('');
  const path = appPath(id);
  const scale = () => {
    const n = Number(instances);
    ask({
      what: `scale ${id} to ${n}`,
      title: `Scale ${id}?`,
      body: html`<p>From ${app.definition.instances} to <b>${n}</b> instances.</p>`,
      confirmLabel: 'Scale',
      call: () => api('PUT', path, { instances: n }),
    });
  };
  const restart = () => ask({
    what: `restart ${id}`,
    title: `Restart ${id}?`,
    body: html`<p>Every task is replaced, within the app's upgrade strategy.</p>`,
    confirmLabel: 'Restart',
    call: () => api('POST', `${path}/restart`),
  });
  const rollback = () => {
    const version = target || versions[0]?.version;
    ask({
      what: `roll ${id} back to ${version}`,
      title: `Roll ${id} back?`,
      body: html`<p>To the definition of version <code>${version}</code>, as a new version.</p>`,
      confirmLabel: 'Roll back',
      call: () => api('PUT', path, { version }),
    });
  };
  const destroy = () => ask({
    what: `delete ${id}`,
    title: `Delete ${id}?`,
    body: html`<p>Its ${app.definition.instances} instances are killed and the app is removed. Its history stays in the log.</p>`,
    confirmLabel: 'Delete',
    danger: true,
    call: () => api('DELETE', path),
    done: () => { location.hash = '#/apps'; },
  });
  return html`<div class="actions" id="app-actions">
    <label>Instances <input id="scale-input" type="number" min="0" value=${instances} onInput=${(e) => setInstances(e.target.value)} /></label>
    <button id="scale" onClick=${scale}>Scale</button>
    <button id="restart" onClick=${restart}>Restart</button>
    <select id="rollback-version" value=${target || versions[0]?.version || ''} onChange=${(e) => setTarget(e.target.value)} disabled=${versions.length === 0}>
      ${versions.map((v) => html`<option value=${v.version}>${v.version}${v.definition ? ` (${v.definition.instances} inst.)` : ''}</option>`)}
    </select>
    <button id="rollback" onClick=${rollback} disabled=${versions.length === 0}>Roll back</button>
    <button id="delete" class="danger" onClick=${destroy}>Delete</button>
    ${view}
  </div>`;
}

export function KillTask({ id, task }) {
  const [ask, view] = useAction();
  const kill = (scale) => ask({
    what: `kill ${task}`,
    title: scale ? `Kill ${task} and scale down?` : `Kill ${task}?`,
    body: html`<p>${scale ? 'The app is scaled down by one, so it is not replaced.' : 'Stride replaces it.'}</p>`,
    confirmLabel: 'Kill',
    danger: true,
    call: () => api('DELETE', `${appPath(id)}/tasks/${encodeURIComponent(task)}?scale=${scale}`),
  });
  return html`<span class="task-actions">
    <button class="small" onClick=${() => kill(false)}>kill</button>
    <button class="small" onClick=${() => kill(true)}>kill & scale</button>
    ${view}
  </span>`;
}
