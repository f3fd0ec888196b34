// Deployments in progress (`/v2/deployments`, read again whenever a
// deployment event lands), with their steps; cancelling one rolls it back.

import { html } from './vendor/htm-preact.js';
import { api } from './api.js';
import { useStore } from './live.js';
import { useAction } from './actions.js';
import { whenAt, shortId } from './format.js';

function Deployment({ d }) {
  const [ask, view] = useAction();
  const cancel = (force) => ask({
    what: `${force ? 'stop' : 'roll back'} deployment ${shortId(d.id)}`,
    title: force ? 'Stop this deployment where it is?' : 'Roll this deployment back?',
    body: html`<p>${force ? 'Nothing is undone; the apps stay as they are now.' : 'A new deployment returns the apps to where they were before it.'}</p>`,
    confirmLabel: force ? 'Stop' : 'Roll back',
    danger: true,
    call: () => api('DELETE', `/v2/deployments/${d.id}${force ? '?force=true' : ''}`),
  });
  return html`<tr data-deployment=${d.id}>
    <td><code title=${d.id}>${shortId(d.id)}</code></td>
    <td>${d.affectedApps.map((a) => html`<a href=${`#/apps${a}`}>${a}</a> `)}</td>
    <td>step ${d.currentStep} of ${d.totalSteps}
      <ol class="steps">${d.steps.map((s, i) => html`<li class=${i + 1 < d.currentStep ? 'done' : i + 1 === d.currentStep ? 'current' : ''}>${s.actions.map((a) => `${a.action} ${a.app}`).join(', ')}</li>`)}</ol></td>
    <td>${d.version}</td>
    <td><button class="small" onClick=${() => cancel(false)}>roll back</button> <button class="small" onClick=${() => cancel(true)}>stop</button>${view}</td>
  </tr>`;
}

export function Deployments() {
  const { deployments, recent } = useStore();
  const ended = recent.filter((e) => e.type === 'DeploymentFinished' || e.type === 'DeploymentFailed').slice(0, 20);
  return html`<section>
    <h1>Deployments <span class="muted">${deployments.length} in progress</span></h1>
    <table id="deployments"><thead><tr><th>Id</th><th>Apps</th><th>Progress</th><th>Version</th><th></th></tr></thead>
      <tbody>${deployments.map((d) => html`<${Deployment} d=${d} key=${d.id} />`)}</tbody></table>
    ${deployments.length === 0 && html`<p class="muted">None in progress.</p>`}
    <h2>Ended since this page loaded</h2>
    <ul id="deployments-ended">${ended.map((e) => html`<li>${whenAt(e.at)} <code title=${e.deployment}>${shortId(e.deployment)}</code> ${e.app}: ${e.type === 'DeploymentFinished' ? 'finished' : `failed: ${e.reason}`}</li>`)}</ul>
  </section>`;
}
