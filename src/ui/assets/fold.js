// The UI's model: `/v1/state` (apps and tasks as the projection holds them)
// kept current by folding the events of `/v1/stream`, the way the
// projection folds them, for the fields the UI shows. Details the events
// do not carry (deployment plans, queue reasons, last failures) are read
// from their endpoints when an event says they changed.

const TERMINAL = new Set(['Finished', 'Failed', 'Killed', 'Error', 'Dropped', 'Gone', 'GoneByOperator']);
const STAGED = new Set(['Provisioned', 'Staging', 'Starting']);

export const isTerminal = (condition) => TERMINAL.has(condition);

/** An RFC 3339 time with microseconds as unix µs, as versions are kept. */
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

/** The model from `/v1/state`'s answer. */
export function model(answer) {
  const state = answer.state;
  return { seq: answer.seq, apps: state.apps, tasks: state.tasks, framework: state.framework };
}

function newVersion(app, definition, at, configChange) {
  app.version = at;
  if (configChange) app.config_version = at;
  app.versions.push({ version: at, definition });
  app.definition = definition;
}

/** Applies one event envelope; answers the app it concerned, if any. */
export function apply(m, e) {
  const at = micros(e.at);
  const app = m.apps[e.app];
  const task = e.task === undefined ? undefined : m.tasks[e.task];
  switch (e.type) {
    case 'AppCreated':
      m.apps[e.app] = {
        definition: e.definition,
        version: at,
        config_version: at,
        versions: [{ version: at, definition: e.definition }],
        last_failure: null,
      };
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
      m.tasks[e.task] = {
        app: e.app,
        app_version: e.app_version,
        agent: e.agent,
        host: e.host,
        ports: e.ports,
        condition: 'Provisioned',
        mesos_state: null,
        message: null,
        staged_at: at,
        started_at: null,
        healthy: null,
        kill_requested: false,
        draining: false,
      };
      break;
    case 'TaskStatusRecorded':
      recordStatus(m, e, at);
      break;
    case 'TaskKillRequested':
      if (task) task.kill_requested = true;
      break;
    case 'TaskDraining':
      if (task) task.draining = true;
      break;
    case 'TaskExpunged':
      delete m.tasks[e.task];
      break;
    case 'HealthChanged':
      if (task) task.healthy = e.healthy;
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
  let task = m.tasks[e.task];
  if (!task) {
    if (isTerminal(e.condition)) return;
    task = m.tasks[e.task] = {
      app: e.app, app_version: 0, agent: e.agent, host: '', ports: [], staged_at: at,
      started_at: null, healthy: null, kill_requested: false, draining: false,
    };
  }
  task.condition = e.condition;
  task.mesos_state = e.mesos_state;
  task.message = e.message;
  if (e.agent) task.agent = e.agent;
  if (e.healthy !== null && e.healthy !== undefined) task.healthy = e.healthy;
  if (e.condition === 'Running' && !task.started_at) task.started_at = at;
  if (isTerminal(e.condition) && !task.app) delete m.tasks[e.task];
}

/** An app's tasks, newest first. */
export function tasksOf(m, id) {
  return Object.entries(m.tasks)
    .filter(([, task]) => task.app === id)
    .sort(([, a], [, b]) => b.staged_at - a.staged_at);
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
