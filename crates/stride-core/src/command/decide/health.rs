//! Health verdicts from Stride-run checks. Raw results stay in memory
//! (`health/`); only what changes a task becomes an event.

use crate::event::{Event, HealthChanged, TaskId, TaskKillRequested, UNHEALTHY_KILL_REASON};
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
        reason: format!("{UNHEALTHY_KILL_REASON} {failures} times in a row: {cause}"),
    })]
}

fn live<'a>(state: &'a State, task_id: &TaskId) -> Option<(&'a Task, &'a crate::event::AppId)> {
    let task = state.tasks.get(task_id)?;
    let app = task.app.as_ref()?;
    (!task.condition.is_terminal()).then_some((task, app))
}

#[cfg(test)]
mod tests {
    use super::super::decide;
    use crate::command::{Command, Settings};
    use crate::event::condition::Condition;
    use crate::event::{
        Actor, AppCreated, AppId, Envelope, Event, Seq, TaskId, TaskLaunchRequested,
        TaskStatusRecorded,
    };
    use crate::projection::State;
    use uuid::Uuid;

    const TASK: &str = "a.1";

    /// A state with app `/a` and its task `a.1` in `condition`, with
    /// `healthy` and, if `killing`, a kill already asked for.
    fn state(condition: Condition, healthy: Option<bool>, killing: bool) -> State {
        let app = AppId::from("/a");
        let task = TaskId::from(TASK);
        let definition = serde_json::from_value(serde_json::json!({"id": "/a"})).expect("app");
        let mut events = vec![
            Event::AppCreated(AppCreated {
                app: app.clone(),
                definition: crate::event::app::AppSpec::new(definition),
            }),
            Event::TaskLaunchRequested(TaskLaunchRequested {
                task: task.clone(),
                app: app.clone(),
                app_version: 1,
                agent: "S0".into(),
                host: "localhost".into(),
                ports: vec![],
                offer: "O1".into(),
            }),
            Event::TaskStatusRecorded(TaskStatusRecorded {
                task: task.clone(),
                app: Some(app.clone()),
                condition,
                mesos_state: "TASK_X".into(),
                reason: None,
                message: None,
                agent: None,
                healthy,
                status_uuid: None,
                mesos_timestamp: None,
            }),
        ];
        if killing {
            events.push(Event::TaskKillRequested(crate::event::TaskKillRequested {
                task,
                app,
                reason: "API".into(),
            }));
        }
        let mut state = State::default();
        for (i, event) in events.into_iter().enumerate() {
            state.apply(&Envelope {
                seq: Seq(i as u64 + 1),
                id: Uuid::nil(),
                recorded_at: 1,
                actor: Actor::Reconciler,
                command_id: Uuid::nil(),
                event,
            });
        }
        state
    }

    fn names(state: &State, command: Command) -> Vec<&'static str> {
        decide(state, &Settings::default(), &command, Uuid::nil())
            .expect("never rejected")
            .iter()
            .map(Event::type_name)
            .collect()
    }

    fn record(healthy: bool) -> Command {
        Command::RecordHealth {
            task: TASK.into(),
            healthy,
            cause: None,
        }
    }

    #[test]
    fn only_a_change_of_health_is_recorded() {
        use Condition::{Killed, Running};
        let cases = [
            (Running, None, true, vec!["HealthChanged"]),
            (Running, None, false, vec!["HealthChanged"]),
            (Running, Some(true), true, vec![]),
            (Running, Some(true), false, vec!["HealthChanged"]),
            (Running, Some(false), false, vec![]),
            (Running, Some(false), true, vec!["HealthChanged"]),
            (Killed, None, true, vec![]),
        ];
        for (condition, before, healthy, want) in cases {
            let state = state(condition, before, false);
            assert_eq!(
                names(&state, record(healthy)),
                want,
                "{condition:?} {before:?} -> {healthy}"
            );
        }
        let unknown = Command::RecordHealth {
            task: "nope".into(),
            healthy: true,
            cause: None,
        };
        assert!(names(&state(Running, None, false), unknown).is_empty());
    }

    #[test]
    fn an_unhealthy_task_is_killed_once_saying_why() {
        let kill = Command::KillUnhealthyTask {
            task: TASK.into(),
            failures: 3,
            cause: "HTTP status 503".into(),
        };
        let events = decide(
            &state(Condition::Running, Some(false), false),
            &Settings::default(),
            &kill,
            Uuid::nil(),
        )
        .expect("accepted");
        let [Event::TaskKillRequested(requested)] = events.as_slice() else {
            panic!("one kill: {events:?}");
        };
        assert_eq!(
            requested.reason,
            "health check failed 3 times in a row: HTTP status 503"
        );
        assert!(names(&state(Condition::Running, Some(false), true), kill.clone()).is_empty());
        assert!(names(&state(Condition::Failed, Some(false), false), kill).is_empty());
    }
}
