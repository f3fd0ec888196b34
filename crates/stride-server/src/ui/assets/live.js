// The live store: loads `/v1/state`, then follows `/v1/stream` from the
// seq after it, so no event between the load and the stream is missed.
// On a lost connection it retries with backoff and resumes from the last
// seq it saw (docs/stream.md: exactly once, in order); if the server's log
// is now shorter than that (a new store), it loads the state afresh.

import { useEffect, useState } from './vendor/htm-preact.js';
import { api, streamUrl, ApiError } from './api.js';
import { apply, model, counts, micros } from './fold.js';

const RECENT_EVENTS = 2000;
const SAMPLES_PER_APP = 600;
const FROM_BEYOND_HEAD = 4416;

export const store = {
  model: null,
  /** `connecting`, `live`, or `down` (with `error` and `retryAt`). */
  connection: { status: 'connecting', since: Date.now(), attempt: 0, error: null, retryAt: null },
  info: null,
  deployments: [],
  /** The newest events first: the feed and the trackers read them. */
  recent: [],
  /** Per app: [{t (ms), running, healthy, staged, instances}] as changes land. */
  samples: new Map(),
  /** Receipt delay (ms) of each event: now minus its commit time. */
  delays: [],
  listeners: new Set(),
  socket: null,
  resumeFrom: 1,
  loaded: null,
  /** Deployments this page started: [{id, what, ended}], newest last. */
  tracked: [],
  /** Times the page found a gap in the stream and loaded the state again
   * (docs/stream.md promises none). */
  resyncs: 0,
};

let notifyQueued = false;
let retryTimer = null;

/** Re-renders subscribers once per frame however many events arrive. */
export function notify() {
  if (notifyQueued) return;
  notifyQueued = true;
  requestAnimationFrame(() => {
    notifyQueued = false;
    for (const listener of store.listeners) listener();
  });
}

export function subscribe(listener) {
  store.listeners.add(listener);
  return () => store.listeners.delete(listener);
}

/** Re-renders the calling component whenever the store changes. */
export function useStore() {
  const [, set] = useState(0);
  useEffect(() => subscribe(() => set((n) => n + 1)), []);
  return store;
}

function setConnection(change) {
  store.connection = { ...store.connection, ...change };
  notify();
}

function sample(id, t) {
  const app = store.model.apps[id];
  const c = counts(store.model, id);
  const series = store.samples.get(id) || [];
  series.push({ t, running: c.running, healthy: c.healthy, staged: c.staged, instances: app ? app.definition.instances : 0 });
  if (series.length > SAMPLES_PER_APP) series.shift();
  store.samples.set(id, series);
}

async function loadState() {
  const started = performance.now();
  const [answer, info] = await Promise.all([api('GET', '/v1/state'), api('GET', '/v1/info')]);
  store.model = model(answer);
  store.info = info;
  store.resumeFrom = answer.seq + 1;
  store.loaded = { seq: answer.seq, ms: performance.now() - started };
  const now = Date.now();
  for (const id of Object.keys(store.model.apps)) sample(id, now);
  notify();
  refreshDeployments();
}

let deploymentsQueued = null;

/** Deployment plans are read from `/v2/deployments` when an event says one changed. */
export function refreshDeployments() {
  deploymentsQueued ??= (async () => {
    try {
      store.deployments = await api('GET', '/v2/deployments');
    } catch {
      // The connection state already says why.
    } finally {
      deploymentsQueued = null;
      notify();
    }
  })();
  return deploymentsQueued;
}

function receive(message) {
  if (message.type === 'progress') {
    store.resumeFrom = Math.max(store.resumeFrom, message.seq + 1);
    store.head = message.head;
    return;
  }
  if (message.type === 'error') {
    setConnection({ error: message.message });
    return;
  }
  if (message.seq < store.resumeFrom) return;
  if (message.seq > store.resumeFrom) {
    console.error(`stream gap: expected seq ${store.resumeFrom}, got ${message.seq}; loading the state again`);
    store.resyncs += 1;
    restart();
    return;
  }
  const now = Date.now();
  const app = apply(store.model, message);
  store.resumeFrom = message.seq + 1;
  store.recent.unshift({ ...message, receivedAt: now });
  if (store.recent.length > RECENT_EVENTS) store.recent.pop();
  store.delays.push({ t: now, ms: now - micros(message.at) / 1000 });
  if (store.delays.length > 600) store.delays.shift();
  if (app) sample(app, now);
  if (message.type.startsWith('Deployment')) {
    endTracked(message);
    refreshDeployments();
  }
  for (const hook of eventHooks) hook(message);
  notify();
}

const TRACKED = 5;
const ENDED = new Set(['DeploymentFinished', 'DeploymentFailed']);

/** How long a tracked deployment stays shown once it ended. */
const SHOW_ENDED_MS = 15000;

function ended(tracked, e) {
  tracked.ended = e;
  setTimeout(() => untrack(tracked.id), SHOW_ENDED_MS);
}

function endTracked(e) {
  const tracked = store.tracked.find((t) => t.id === e.deployment);
  if (tracked && !tracked.ended && ENDED.has(e.type)) ended(tracked, e);
}

/** Follows a deployment this page started until it ends (and a little
 * longer), wherever the person goes meanwhile (a deleted app's page goes
 * away at once). */
export function track(id, what) {
  if (store.tracked.some((t) => t.id === id)) return;
  // A quick deployment may have ended before the call that started it answered.
  const tracked = { id, what, ended: null };
  const end = store.recent.find((e) => e.deployment === id && ENDED.has(e.type));
  if (end) ended(tracked, end);
  store.tracked = [...store.tracked, tracked].slice(-TRACKED);
  notify();
}

export function untrack(id) {
  store.tracked = store.tracked.filter((t) => t.id !== id);
  notify();
}

const eventHooks = new Set();

/** Calls `hook` with every event as it lands. */
export function onEvent(hook) {
  eventHooks.add(hook);
  return () => eventHooks.delete(hook);
}

function connect() {
  const socket = new WebSocket(streamUrl(store.resumeFrom));
  store.socket = socket;
  let opened = false;
  socket.onopen = () => {
    opened = true;
    setConnection({ status: 'live', since: Date.now(), attempt: 0, error: null, retryAt: null });
    refreshDeployments();
  };
  socket.onmessage = (frame) => {
    if (store.socket === socket) receive(JSON.parse(frame.data));
  };
  socket.onclose = (close) => {
    if (store.socket !== socket) return;
    const reason = close.code === FROM_BEYOND_HEAD
      ? 'the server\'s log is behind what this page saw (a new store?): reloading'
      : `stream closed (${close.code}${close.reason ? `: ${close.reason}` : ''})`;
    retry(opened ? 0 : store.connection.attempt, reason, close.code === FROM_BEYOND_HEAD);
  };
}

function retry(attempt, error, reload) {
  const delay = Math.min(500 * 2 ** attempt, 5000);
  setConnection({ status: 'down', attempt: attempt + 1, error, retryAt: Date.now() + delay, since: store.connection.status === 'down' ? store.connection.since : Date.now() });
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => start(reload), delay);
}

/** Loads (or, after a reconnect, resumes) and follows the stream. */
export async function start(reload = false) {
  if (!store.model || reload) {
    try {
      await loadState();
    } catch (error) {
      retry(store.connection.attempt, error instanceof ApiError ? error.message : String(error), true);
      return;
    }
  }
  connect();
}

/** Follows again from scratch: after the token changes, say. */
export function restart() {
  clearTimeout(retryTimer);
  const old = store.socket;
  store.socket = null;
  if (old) old.close();
  store.model = null;
  start(true);
}
