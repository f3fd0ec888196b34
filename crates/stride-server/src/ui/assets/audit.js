// An app's audit timeline from `/v1/audit`: who changed what, when, and
// the fields each change touched; newest first, live, paged back.

import { html, useEffect, useState } from './vendor/htm-preact.js';
import { api } from './api.js';
import { onEvent } from './live.js';
import { actor, summary, whenAt, shown } from './format.js';

const CHANGES = ['AppCreated', 'AppUpdated', 'AppScaled', 'AppDeleted', 'TaskKillRequested', 'LaunchDelayReset'];

export function AppAudit({ id }) {
  const [all, setAll] = useState(false);
  const [events, setEvents] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const query = (cursor) => {
    const params = new URLSearchParams({ app: id, order: 'desc', limit: '20' });
    if (!all) for (const type of CHANGES) params.append('type', type);
    if (cursor) params.set('cursor', cursor);
    return `/v1/audit?${params}`;
  };
  const load = async (cursor) => {
    try {
      const answer = await api('GET', query(cursor));
      setEvents((old) => (cursor ? [...old, ...answer.events] : answer.events));
      setNext(answer.next);
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  };
  useEffect(() => {
    load(null);
    // The stream's events lack the audit's `changes`: read the head again.
    const off = onEvent((e) => {
      if (e.app === id && (all || CHANGES.includes(e.type))) load(null);
    });
    return off;
  }, [id, all]);
  return html`<div class="audit" id="audit">
    <label><input type="checkbox" id="audit-all" checked=${all} onChange=${(e) => setAll(e.target.checked)} /> every event (not only changes)</label>
    ${error && html`<div class="error">${error}</div>`}
    <ol class="timeline">${events.map((e) => html`<li key=${e.seq} data-seq=${e.seq} data-type=${e.type}>
      <div><span class="when">${whenAt(e.at)}</span> <b>${actor(e.actor)}</b> ${summary(e)} <span class="muted">seq ${e.seq}</span></div>
      ${e.changes && html`<${Changes} changes=${e.changes} empty="No field changed: a new version of the same definition (a restart)." />`}
    </li>`)}</ol>
    ${next && html`<button id="audit-older" onClick=${() => load(next)}>Older</button>`}
  </div>`;
}

export function Changes({ changes, id, empty = 'No differences.' }) {
  if (!changes.length) return html`<p class="muted" id=${id}>${empty}</p>`;
  return html`<table class="diff" id=${id}><thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>
    <tbody>${changes.map((c) => html`<tr><td><code>${c.path}</code></td><td class="before">${shown(c.before)}</td><td class="after">${shown(c.after)}</td></tr>`)}</tbody></table>`;
}
