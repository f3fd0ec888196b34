//! Task commands from the API (kills) and facts from Mesos.

use super::deployments::{started, unlock};
use super::existing;
use crate::command::{Rejection, TaskSelection, TaskStatus};
use crate::event::{
    AppId, AppScaled, DeploymentId, DeploymentKind, Event, FrameworkId, FrameworkSubscribed,
    TaskId, TaskKillRequested, TaskStatusRecorded,
};
use crate::projection::State;

/// Asks for tasks to be killed. Without `scale` the reconciler replaces
/// them; with `scale` the app shrinks by as many, which is a deployment.
pub(super) fn kill(
    state: &State,
    deployment: DeploymentId,
    app_id: &AppId,
    which: &TaskSelection,
    scale: bool,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    let app = existing(state, app_id)?;
    let selected: Vec<&TaskId> = match which {
        TaskSelection::One(task) => {
            let owned = state
                .tasks_by_app
                .get(app_id)
                .is_some_and(|tasks| tasks.contains(task));
            if !owned {
                return Err(Rejection::not_found(format!(
                    "Task '{task}' of app '{app_id}' does not exist"
                )));
            }
            vec![task]
        }
        TaskSelection::All { host } => state
            .tasks_of(app_id)
            .filter(|(_, task)| !task.condition.is_terminal())
            .filter(|(_, task)| host.as_ref().is_none_or(|h| *h == task.host))
            .map(|(id, _)| id)
            .collect(),
    };
    let shrink = scale && !selected.is_empty();
    let mut events = if shrink {
        unlock(state, app_id, force)?
    } else {
        Vec::new()
    };
    for task in &selected {
        events.push(Event::TaskKillRequested(TaskKillRequested {
            task: (*task).clone(),
            app: app_id.clone(),
            reason: "killed through the API".to_owned(),
        }));
    }
    if shrink {
        let instances = app.definition.instances;
        let killed = u32::try_from(selected.len()).unwrap_or(u32::MAX);
        events.push(Event::AppScaled(AppScaled {
            app: app_id.clone(),
            previous: instances,
            instances: instances.saturating_sub(killed),
        }));
        events.push(started(deployment, app_id, DeploymentKind::Scale));
    }
    Ok(events)
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
