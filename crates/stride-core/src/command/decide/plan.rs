//! The reconciler's intentions become facts, minus any the state has
//! overtaken since the plan was made.

use crate::command::PlanIntents;
use crate::event::{
    DeploymentFinished, DeploymentStepFinished, Event, TaskDraining, TaskExpunged,
    TaskKillRequested, TaskLaunchRequested,
};
use crate::projection::State;

pub(super) fn record(state: &State, intents: &PlanIntents) -> Vec<Event> {
    let mut events = Vec::new();
    for launch in &intents.launches {
        // A scale, an update or a delete since the plan changes the
        // version (or removes the app): the plan's count no longer holds.
        let current = state
            .apps
            .get(&launch.app)
            .is_some_and(|app| app.version == launch.app_version);
        if !current || state.tasks.contains_key(&launch.task) {
            continue;
        }
        events.push(Event::TaskLaunchRequested(TaskLaunchRequested {
            task: launch.task.clone(),
            app: launch.app.clone(),
            app_version: launch.app_version,
            agent: launch.agent.clone(),
            host: launch.host.clone(),
            ports: launch.ports.clone(),
            offer: launch.offer.clone(),
        }));
    }
    for kill in &intents.kills {
        let Some(task) = state.tasks.get(&kill.task) else {
            continue;
        };
        if task.kill_requested || task.condition.is_terminal() {
            continue;
        }
        events.push(Event::TaskKillRequested(TaskKillRequested {
            task: kill.task.clone(),
            app: kill.app.clone(),
            reason: kill.reason.clone(),
        }));
    }
    for drain in &intents.drains {
        let Some(task) = state.tasks.get(&drain.task) else {
            continue;
        };
        if task.draining || task.kill_requested || task.condition.is_terminal() {
            continue;
        }
        events.push(Event::TaskDraining(TaskDraining {
            task: drain.task.clone(),
            app: drain.app.clone(),
            reason: drain.reason.clone(),
        }));
    }
    for id in &intents.expunges {
        if let Some(app) = state.tasks.get(id).and_then(|t| t.app.clone()) {
            events.push(Event::TaskExpunged(TaskExpunged {
                task: id.clone(),
                app,
            }));
        }
    }
    for (id, step) in &intents.finished {
        let Some(deployment) = state.deployments.get(id) else {
            continue;
        };
        // One event per step, as Marathon reports each.
        for done in deployment.steps_finished + 1..=*step {
            events.push(Event::DeploymentStepFinished(DeploymentStepFinished {
                deployment: *id,
                app: deployment.subject.clone(),
                step: done,
            }));
        }
        if *step as usize >= deployment.steps.len() {
            events.push(Event::DeploymentFinished(DeploymentFinished {
                deployment: *id,
                app: deployment.subject.clone(),
            }));
        }
    }
    events
}
