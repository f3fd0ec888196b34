// The UI's model: `/v1/state` (apps and tasks as the projection holds them)
// kept current by folding the events of `/v1/stream`, the way the
// projection folds them, for the fields the UI shows. Details the events
// do not carry (deployment plans, queue reasons, last failures) are read
// from their endpoints when an event says they changed.

const TERMINAL = new Set(['Finished', 'Failed', 'Killed', 'Error', 'Dropped', 'Gone', 'GoneByOperator']);
const STAGED = new Set(['Provisioned', 'Staging', 'Starting']);

export const isTerminal = (condition) => TERMINAL.has(condition);

/** An RFC 3339 time with microseconds as unix µs, as the document keeps times. */
export function micros(at) {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(at);
  if (!match) return Date.parse(at) * 1000;
  const fraction = (match[2] || '').padEnd(6, '0').slice(0, 6);
  return Date.parse(match[1] + match[3]) * 1000 + Number(fraction);
}

/** Unix µs as Stride writes versions: `2026-01-02T03:04:05.123456Z`. */
export function rfc3339(us) {
  const millis = Math.floor(us / 1000);
  return `${new Date(millis).toISOString().slice(0, 23)}${String(us % 1000).padStart(3, '0')}Z`;
}

/** The `/v1/state` document version this page reads (`protocol/state.rs`). */
const STATE_VERSION = 1;

/** The model from `/v1/state`'s document. */
export function model(document) {
  if (document.version !== STATE_VERSION) {
    throw new Error(`/v1/state is document version ${document.version}; this page reads version ${STATE_VERSION}`);
  }
  const { apps, tasks, framework } = document.state;
  return { seq: document.seq, apps, tasks, framework };
}

function newVersion(app, definition, at, configChange) {
  app.version = at;
  if (configChange) app.configVersion = at;
  app.definition = definition;
}

function task(fields) {
  return {
    app: null, appVersion: 0, agent: null, host: '', ports: [], condition: 'Provisioned', mesosState: null,
    message: null, stagedAt: 0, startedAt: null, healthy: null, killRequested: false, unreachableSince: null,
    draining: false, drainSeq: 0, drainAt: 0, ...fields,
  };
}

/** Applies one event envelope (its fields as the stream names them) to
 * the model (the document's names); answers the app it concerned, if any. */
export function apply(m, e) {
  const at = micros(e.at);
  const app = m.apps[e.app];
  const known = e.task === undefined ? undefined : m.tasks[e.task];
  switch (e.type) {
    case 'AppCreated':
      m.apps[e.app] = { definition: e.definition, version: at, configVersion: at };
      break;
    case 'AppUpdated':
      if (app) newVersion(app, e.definition, at, true);
      break;
    case 'AppScaled':
      if (app) newVersion(app, { ...app.definition, instances: e.instances }, at, false);
      break;
    case 'AppDeleted':
      delete m.apps[e.app];
      break;
    case 'TaskLaunchRequested':
      m.tasks[e.task] = task({
        app: e.app, appVersion: e.app_version, agent: e.agent, host: e.host, ports: e.ports, stagedAt: at,
      });
      break;
    case 'TaskStatusRecorded':
      recordStatus(m, e, at);
      break;
    case 'TaskKillRequested':
      if (known) known.killRequested = true;
      break;
    case 'TaskDraining':
      if (known) Object.assign(known, { draining: true, drainSeq: e.seq, drainAt: at });
      break;
    case 'TaskExpunged':
      delete m.tasks[e.task];
      break;
    case 'HealthChanged':
      if (known) known.healthy = e.healthy;
      break;
    case 'FrameworkSubscribed':
      m.framework = e.framework;
      break;
    default:
      break;
  }
  m.seq = e.seq;
  return e.app;
}

function recordStatus(m, e, at) {
  let known = m.tasks[e.task];
  if (!known) {
    // The end of a task nobody knows is not kept; a task Mesos knows and
    // Stride does not is, until the reconciler kills it.
    if (isTerminal(e.condition)) return;
    known = m.tasks[e.task] = task({ app: e.app ?? null, agent: e.agent ?? null, condition: e.condition, stagedAt: at });
  }
  const newlyTerminal = isTerminal(e.condition) && !isTerminal(known.condition);
  known.condition = e.condition;
  known.mesosState = e.mesos_state;
  known.message = e.message ?? null;
  if (e.agent) known.agent = e.agent;
  if (e.healthy !== null && e.healthy !== undefined) known.healthy = e.healthy;
  if (e.condition === 'Running' && known.startedAt === null) known.startedAt = at;
  known.unreachableSince = e.condition === 'Unreachable' ? (known.unreachableSince ?? at) : null;
  if (newlyTerminal && !known.app) delete m.tasks[e.task];
}

/** An app's tasks, newest first. */
export function tasksOf(m, id) {
  return Object.entries(m.tasks)
    .filter(([, task]) => task.app === id)
    .sort(([, a], [, b]) => b.stagedAt - a.stagedAt);
}

/** Marathon's counts: staged, running, healthy, unhealthy (live tasks only). */
export function counts(m, id) {
  const c = { staged: 0, running: 0, healthy: 0, unhealthy: 0 };
  for (const [, task] of tasksOf(m, id)) {
    if (STAGED.has(task.condition)) c.staged += 1;
    else if (task.condition === 'Running') c.running += 1;
    else continue;
    if (task.healthy === true) c.healthy += 1;
    if (task.healthy === false) c.unhealthy += 1;
  }
  return c;
}
