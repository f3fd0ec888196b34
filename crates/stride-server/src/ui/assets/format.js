// Words and times, shared by the views.

import { micros } from './fold.js';

/** Local date and time of unix µs, to the second. */
export function when(us) {
  if (!us) return '';
  const d = new Date(us / 1000);
  return d.toLocaleString(undefined, { hour12: false });
}

export function whenAt(at) {
  return when(micros(at));
}

/** `3s ago`, `5m ago`, `2h ago` from unix µs. */
export function ago(us) {
  if (!us) return '';
  const seconds = Math.max(0, Math.round((Date.now() - us / 1000) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function actor(a) {
  if (!a) return '';
  if (a.kind === 'api') return `${a.principal} (${a.remote})`;
  return a.kind;
}

/** Deployment ids are UUIDv7: their first digits are a timestamp that
 * changes once a minute, their last ones random. */
export const shortId = (id) => `…${id.slice(-8)}`;

const short = (id) => (id && id.length > 24 ? `${id.slice(0, 22)}…` : id);

/** One line saying what an event recorded. */
export function summary(e) {
  switch (e.type) {
    case 'AppCreated': return `created ${e.app} (${e.definition.instances} instances)`;
    case 'AppUpdated': return `updated ${e.app}`;
    case 'AppScaled': return `scaled ${e.app} ${e.previous} → ${e.instances}`;
    case 'AppDeleted': return `deleted ${e.app}`;
    case 'DeploymentStarted': return `deployment ${shortId(e.deployment)} started: ${e.kind} ${e.app}`;
    case 'DeploymentPlanned': return `deployment ${shortId(e.deployment)} planned: ${e.kind} ${e.app} (${e.steps.length} step${e.steps.length === 1 ? '' : 's'})`;
    case 'DeploymentStepFinished': return `deployment ${shortId(e.deployment)}: step ${e.step + 1} done`;
    case 'DeploymentFinished': return `deployment ${shortId(e.deployment)} finished`;
    case 'DeploymentFailed': return `deployment ${shortId(e.deployment)} failed: ${e.reason}`;
    case 'TaskLaunchRequested': return `launch ${short(e.task)} on ${e.host}:${e.ports.join(',')}`;
    case 'TaskStatusRecorded': return `${short(e.task)} ${e.mesos_state}${e.message ? `: ${e.message}` : ''}`;
    case 'TaskKillRequested': return `kill ${short(e.task)}: ${e.reason}`;
    case 'TaskDraining': return `drain ${short(e.task)}: ${e.reason}`;
    case 'TaskExpunged': return `forgot ${short(e.task)}`;
    case 'HealthChanged': return `${short(e.task)} ${e.healthy ? 'healthy' : 'unhealthy'}${e.cause ? `: ${e.cause}` : ''}`;
    case 'FrameworkSubscribed': return `subscribed to ${e.master} as ${e.framework}`;
    case 'LaunchDelayReset': return `launch delay of ${e.app} reset`;
    case 'CallbackSubscribed': return `callback ${e.callback_url} subscribed`;
    case 'CallbackUnsubscribed': return `callback ${e.callback_url} unsubscribed`;
    case 'GroupUpdated': return `group ${e.group} updated`;
    case 'GroupDeleted': return `group ${e.group} deleted`;
    default: return e.type;
  }
}

export const EVENT_TYPES = [
  'AppCreated', 'AppUpdated', 'AppScaled', 'AppDeleted', 'DeploymentPlanned', 'DeploymentStarted',
  'DeploymentStepFinished', 'DeploymentFinished', 'DeploymentFailed', 'TaskLaunchRequested',
  'TaskStatusRecorded', 'TaskKillRequested', 'TaskDraining', 'TaskExpunged', 'HealthChanged',
  'FrameworkSubscribed', 'LaunchDelayReset', 'CallbackSubscribed', 'CallbackUnsubscribed',
  'GroupUpdated', 'GroupDeleted',
];

/** A JSON value on one line, short. */
export function shown(value) {
  if (value === undefined || value === null) return '—';
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}
