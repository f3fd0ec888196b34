// The page: header (navigation, connection, token), then the view the
// location's hash names: #/apps, #/apps/<id>, #/tasks/<id>/<file>,
// #/deployments, #/events.

import { html, render, useEffect, useState } from './vendor/htm-preact.js';
import { store, start, restart, useStore } from './live.js';
import { token, setToken } from './api.js';
import { AppList } from './apps.js';
import { AppDetail } from './app.js';
import { Deployments } from './deployments.js';
import { EventFeed } from './events.js';
import { TaskLog } from './logs.js';
import { Trackers } from './actions.js';

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return decodeURIComponent(hash.replace(/^#/, '')) || '/apps';
}

function Connection() {
  const { connection, model } = useStore();
  const [, tick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, []);
  if (connection.status === 'live') {
    return html`<span class="badge ok" id="connection" data-status="live">live · seq ${model?.seq ?? 0}</span>`;
  }
  if (connection.status === 'connecting') {
    return html`<span class="badge" id="connection" data-status="connecting">connecting…</span>`;
  }
  return html`<span class="badge bad" id="connection" data-status="down">unreachable</span>`;
}

function Unreachable() {
  const { connection, model } = useStore();
  if (connection.status !== 'down') return null;
  const wait = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
  const since = new Date(connection.since).toLocaleTimeString(undefined, { hour12: false });
  return html`<div class="banner bad" id="unreachable" role="alert">
    Stride is unreachable since ${since} (${connection.error}). Retrying in ${wait}s (attempt ${connection.attempt}).
    ${model ? ` What you see is as of seq ${model.seq} and may be stale; changes made meanwhile appear when the stream resumes.` : ''}
  </div>`;
}

function TokenField() {
  const [value, setValue] = useState(token());
  const [open, setOpen] = useState(false);
  const save = (event) => {
    event.preventDefault();
    setToken(value.trim());
    setOpen(false);
    restart();
  };
  if (!open) {
    return html`<button class="link" id="token-toggle" onClick=${() => setOpen(true)}>${token() ? 'token set' : 'API token'}</button>`;
  }
  return html`<form class="token" onSubmit=${save}>
    <input id="token" type="password" placeholder="bearer token" value=${value} onInput=${(e) => setValue(e.target.value)} autocomplete="off" />
    <button type="submit">Use</button>
  </form>`;
}

function Page() {
  const route = useHash();
  const { model, info } = useStore();
  const nav = [['/apps', 'Apps'], ['/deployments', 'Deployments'], ['/events', 'Events']];
  let view;
  if (!model) view = html`<p class="muted">Loading state…</p>`;
  else if (route.startsWith('/apps/')) view = html`<${AppDetail} id=${route.slice('/apps'.length)} />`;
  else if (route.startsWith('/tasks/')) {
    const [, , task, file] = route.split('/');
    view = html`<${TaskLog} task=${task} file=${file || 'stdout'} />`;
  } else if (route === '/deployments') view = html`<${Deployments} />`;
  else if (route === '/events') view = html`<${EventFeed} />`;
  else view = html`<${AppList} />`;
  return html`<header>
      <a class="brand" href="#/apps">Stride</a>
      <nav>${nav.map(([path, name]) => html`<a href=${`#${path}`} class=${route.startsWith(path) ? 'active' : ''}>${name}</a>`)}</nav>
      <span class="spacer"></span>
      ${info && html`<span class="muted">${info.name} ${info.version}</span>`}
      <${Connection} />
      <${TokenField} />
    </header>
    <${Unreachable} />
    <${Trackers} />
    <main class=${store.connection.status === 'down' ? 'stale' : ''}>${view}</main>`;
}

// Tests and benchmarks read the store.
window.strideStore = store;
const root = document.getElementById('root');
root.textContent = '';
render(html`<${Page} />`, root);
start();
