// The live event feed: recent history from `/v1/audit` under the same
// filters, then every matching event as it lands.

import { html, useEffect, useState } from './vendor/htm-preact.js';
import { api } from './api.js';
import { useStore } from './live.js';
import { actor, summary, whenAt, EVENT_TYPES } from './format.js';

const SHOWN = 300;

/** The stream's app filter: an id, or a prefix ending in `/`. */
const appMatches = (filter, app) => !filter || (filter.endsWith('/') ? (app || '').startsWith(filter) : app === filter);

export function EventFeed() {
  const { recent, loaded } = useStore();
  const [type, setType] = useState('');
  const [app, setApp] = useState('');
  const [task, setTask] = useState('');
  const [past, setPast] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    const params = new URLSearchParams({ order: 'desc', limit: '100' });
    if (type) params.set('type', type);
    if (app.startsWith('/')) params.set('app', app);
    if (task) params.set('task', task);
    if (loaded) params.set('until', String(loaded.seq));
    api('GET', `/v1/audit?${params}`).then((a) => {
      setPast(a.events);
      setError(null);
    }, (e) => setError(e.message));
  }, [type, app, task]);
  const matches = (e) => (!type || e.type === type) && appMatches(app, e.app) && (!task || e.task === task);
  const newest = past.length ? past[0].seq : 0;
  const shown = [...recent.filter((e) => e.seq > newest && matches(e)), ...past.filter(matches)].slice(0, SHOWN);
  return html`<section>
    <div class="toolbar">
      <h1>Events</h1>
      <select id="events-type" value=${type} onChange=${(e) => setType(e.target.value)}>
        <option value="">every type</option>
        ${EVENT_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select>
      <input id="events-app" placeholder="app id or prefix/" value=${app} onInput=${(e) => setApp(e.target.value)} />
      <input id="events-task" placeholder="task id" value=${task} onInput=${(e) => setTask(e.target.value)} />
    </div>
    ${error && html`<div class="error">${error}</div>`}
    <table class="events" id="events">
      <thead><tr><th>Seq</th><th>When</th><th>Type</th><th>Who</th><th>What</th></tr></thead>
      <tbody>${shown.map((e) => html`<tr key=${e.seq} data-seq=${e.seq} data-type=${e.type}>
        <td class="num">${e.seq}</td><td class="when">${whenAt(e.at)}</td><td>${e.type}</td><td>${actor(e.actor)}</td>
        <td>${e.app ? html`<a href=${`#/apps${e.app}`}>${e.app}</a> ` : ''}${summary(e)}</td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}
