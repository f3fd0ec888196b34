//! Health verdicts from Stride-run checks. Raw results stay in memory
//! (`health/`); only what changes a task becomes an event.

use crate::event::{Event, HealthChanged, TaskId, TaskKillRequested};
use crate::projection::{State, Task};

/// `HealthChanged` when `healthy` differs from what the task has; a task
/// that is gone, ended or owned by no app records nothing.
pub(super) fn record(
    state: &State,
    task_id: &TaskId,
    healthy: bool,
    cause: Option<&str>,
) -> Vec<Event> {
    let Some((task, app)) = live(state, task_id) else {
        return Vec::new();
    };
    if task.healthy == Some(healthy) {
        return Vec::new();
    }
    vec![Event::HealthChanged(HealthChanged {
        task: task_id.clone(),
        app: app.clone(),
        healthy,
        cause: cause.map(str::to_owned),
    })]
}

/// One kill per task: a task already being killed records nothing more.
pub(super) fn kill_unhealthy(
    state: &State,
    task_id: &TaskId,
    failures: u32,
    cause: &str,
) -> Vec<Event> {
    let Some((task, app)) = live(state, task_id) else {
        return Vec::new();
    };
    if task.kill_requested {
        return Vec::new();
    }
    vec![Event::TaskKillRequested(TaskKillRequested {
        task: task_id.clone(),
        app: app.clone(),
        reason: format!("health check failed {failures} times in a row: {cause}"),
    })]
}

fn live<'a>(state: &'a State, task_id: &TaskId) -> Option<(&'a Task, &'a crate::event::AppId)> {
    let task = state.tasks.get(task_id)?;
    let app = task.app.as_ref()?;
    (!task.condition.is_terminal()).then_some((task, app))
}
