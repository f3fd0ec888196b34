//! The pure half of the write path: a command against the current state
//! becomes events, or a rejection. No IO, no clock.

mod apps;
mod deploy;
mod deployments;
mod groups;
mod health;
mod plan;
mod subscriptions;
mod tasks;

use super::{Command, Rejection, Settings};
use crate::event::{AppId, DeploymentId, Event};
use crate::projection::{App, State};
use uuid::Uuid;

/// The events `command` causes in `state`. `command_id` seeds any id the
/// events need (a command starts at most one deployment), keeping this pure.
pub fn decide(
    state: &State,
    settings: &Settings,
    command: &Command,
    command_id: Uuid,
) -> Result<Vec<Event>, Rejection> {
    let deployment = DeploymentId(command_id);
    let apps = apps::Decider {
        state,
        settings,
        deployment,
    };
    match command {
        Command::CreateApp(definition) => apps.create(definition),
        Command::UpdateApp { definition, force } => apps.update(definition, *force),
        Command::PatchApp {
            app,
            patch,
            force,
            create,
        } => apps.patch(app, patch, *force, *create),
        Command::UpdateApps { updates, force } => apps.update_many(updates, *force),
        Command::RevertApp {
            app,
            version,
            force,
        } => apps.revert(app, *version, *force),
        Command::RestartApp { app, force } => apps.restart(app, *force),
        Command::DeleteApp { app, force } => apps.delete(app, *force),
        Command::ResetLaunchDelay { app } => apps.reset_launch_delay(app),
        Command::KillTasks {
            app,
            which,
            scale,
            force,
        } => tasks::kill(state, deployment, app, which, *scale, *force),
        Command::KillTasksById {
            tasks: ids,
            scale,
            force,
        } => tasks::kill_by_id(state, deployment, ids, *scale, *force),
        Command::CreateGroup { group, force } => apps.create_group(group, *force),
        Command::UpdateGroup { group, force } => apps.update_group(group, *force),
        Command::ScaleGroup { group, by, force } => apps.scale_group(group, *by, *force),
        Command::DeleteGroup { group, force } => apps.delete_group(group, *force),
        Command::CancelDeployment {
            deployment: target,
            force,
        } => deployments::cancel(&apps, target, *force),
        Command::RecordTaskStatus(status) => Ok(tasks::record_status(state, status)),
        Command::RecordPlan(intents) => Ok(plan::record(state, intents)),
        Command::RecordHealth {
            task,
            healthy,
            cause,
        } => Ok(health::record(state, task, *healthy, cause.as_deref())),
        Command::KillUnhealthyTask {
            task,
            failures,
            cause,
        } => Ok(health::kill_unhealthy(state, task, *failures, cause)),
        Command::RecordFrameworkSubscribed { framework, master } => {
            Ok(tasks::framework_subscribed(state, framework, master))
        }
        Command::SubscribeCallback { callback_url } => {
            subscriptions::subscribe(state, callback_url)
        }
        Command::UnsubscribeCallback { callback_url } => {
            subscriptions::unsubscribe(state, callback_url)
        }
        Command::RecordElection(elected) => Ok(vec![Event::LeaderElected(elected.clone())]),
    }
}

fn existing<'a>(state: &'a State, id: &AppId) -> Result<&'a App, Rejection> {
    state
        .apps
        .get(id)
        .map(|app| &**app)
        .ok_or_else(|| Rejection::not_found(format!("App '{id}' does not exist")))
}

#[cfg(test)]
mod tests;
