//! Task commands from the API (kills) and facts from Mesos.

use super::deploy::{Change, deploy};
use super::existing;
use crate::command::{Rejection, TaskSelection, TaskStatus};
use crate::event::{
    AppId, DeploymentId, DeploymentKind, Event, FrameworkId, FrameworkSubscribed, TaskId,
    TaskKillRequested, TaskStatusRecorded,
};
use crate::projection::State;
use std::collections::BTreeMap;

/// Asks for tasks of one app to be killed. Without `scale` the reconciler
/// replaces them; with `scale` the app shrinks by as many, which is a
/// deployment.
pub(super) fn kill(
    state: &State,
    deployment: DeploymentId,
    app_id: &AppId,
    which: &TaskSelection,
    scale: bool,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    existing(state, app_id)?;
    let selected: Vec<TaskId> = match which {
        TaskSelection::One(task) => {
            let owned = state
                .tasks_by_app
                .get(app_id)
                .is_some_and(|tasks| tasks.contains_key(task));
            if !owned {
                return Err(Rejection::not_found(format!(
                    "Task '{task}' of app '{app_id}' does not exist"
                )));
            }
            vec![task.clone()]
        }
        TaskSelection::All { host } => state
            .tasks_of(app_id)
            .filter(|(_, task)| !task.condition.is_terminal())
            .filter(|(_, task)| host.as_deref().is_none_or(|h| on_host(h, &task.host)))
            .map(|(id, _)| id.clone())
            .collect(),
    };
    let by_app = BTreeMap::from([(app_id.clone(), selected)]);
    kill_and_maybe_scale(state, deployment, by_app, scale, force)
}

/// Whether a task on `task_host` is one `?host=` picks: `*` is every host,
/// anything else one host by its exact name, not a part of it (Marathon's
/// AppTasksResource.deleteMany: `hostname.contains(h) || h == "*"` on an
/// `Option`, which is equality).
fn on_host(host: &str, task_host: &str) -> bool {
    host == "*" || host == task_host
}

/// `POST /v2/tasks/delete`: the tasks named, of whichever apps; ids of no
/// live task are ignored, as Marathon ignores them.
pub(super) fn kill_by_id(
    state: &State,
    deployment: DeploymentId,
    tasks: &[TaskId],
    scale: bool,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    let mut by_app: BTreeMap<AppId, Vec<TaskId>> = BTreeMap::new();
    for id in tasks {
        let Some(task) = state.tasks.get(id) else {
            continue;
        };
        if let Some(app) = task.app.as_ref().filter(|a| state.apps.contains_key(*a)) {
            if !task.condition.is_terminal() {
                by_app.entry(app.clone()).or_default().push(id.clone());
            }
        }
    }
    for ids in by_app.values_mut() {
        ids.sort();
        ids.dedup();
    }
    kill_and_maybe_scale(state, deployment, by_app, scale, force)
}

/// The kill requests, and with `scale` one deployment shrinking each app
/// by the tasks killed (Marathon's `TaskKiller.killAndScale`).
fn kill_and_maybe_scale(
    state: &State,
    deployment: DeploymentId,
    by_app: BTreeMap<AppId, Vec<TaskId>>,
    scale: bool,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    let kills = by_app.iter().flat_map(|(app, tasks)| {
        tasks.iter().map(|task| {
            Event::TaskKillRequested(TaskKillRequested {
                task: task.clone(),
                app: app.clone(),
                reason: "killed through the API".to_owned(),
            })
        })
    });
    if !scale {
        return Ok(kills.collect());
    }
    let group = match by_app.keys().next() {
        Some(app) if by_app.len() == 1 => app.parent(),
        _ => AppId::root(),
    };
    let mut change = Change::new(DeploymentKind::Scale, group);
    change.prelude = kills.collect();
    for (app, tasks) in &by_app {
        if tasks.is_empty() {
            continue;
        }
        let mut definition = (*state.apps[app].definition).clone();
        let killed = u32::try_from(tasks.len()).unwrap_or(u32::MAX);
        definition.instances = definition.instances.saturating_sub(killed);
        change.apps.insert(app.clone(), Some(definition));
    }
    if change.apps.is_empty() {
        return Ok(change.prelude);
    }
    deploy(state, deployment, change, force)
}

/// Mesos resends an update until it is acknowledged; a resend (same uuid)
/// records nothing new.
pub(super) fn record_status(state: &State, status: &TaskStatus) -> Vec<Event> {
    let known = state.tasks.get(&status.task);
    if let (Some(task), Some(uuid)) = (known, &status.uuid) {
        if task.last_status_uuid.as_ref() == Some(uuid) {
            return Vec::new();
        }
    }
    vec![Event::TaskStatusRecorded(TaskStatusRecorded {
        task: status.task.clone(),
        app: known.and_then(|t| t.app.clone()),
        condition: status.condition,
        mesos_state: status.mesos_state.clone(),
        reason: status.reason.clone(),
        message: status.message.clone(),
        agent: status.agent.clone(),
        healthy: status.healthy,
        status_uuid: status.uuid.clone(),
        mesos_timestamp: status.timestamp,
    })]
}

pub(super) fn framework_subscribed(
    state: &State,
    framework: &FrameworkId,
    master: &str,
) -> Vec<Event> {
    if state.framework.as_ref() == Some(framework) {
        return Vec::new();
    }
    vec![Event::FrameworkSubscribed(FrameworkSubscribed {
        framework: framework.clone(),
        master: master.to_owned(),
    })]
}
