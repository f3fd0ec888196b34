//! The pure half of the write path: a command against the current state
//! becomes events, or a rejection. No IO, no clock.

use super::{Command, Rejection, TaskStatus, validate_definition};
use crate::event::app::AppSpec;
use crate::event::{
    AppCreated, AppDeleted, AppId, AppScaled, AppUpdated, CallbackSubscribed, CallbackUnsubscribed,
    DeploymentFailed, DeploymentId, DeploymentKind, DeploymentStarted, Event, FrameworkSubscribed,
    TaskStatusRecorded,
};
use crate::projection::State;
use uuid::Uuid;

/// The events `command` causes in `state`. `command_id` seeds any id the
/// events need (a command starts at most one deployment), keeping this pure.
pub fn decide(state: &State, command: &Command, command_id: Uuid) -> Result<Vec<Event>, Rejection> {
    let deployment = DeploymentId(command_id);
    match command {
        Command::CreateApp(definition) => {
            check_valid(definition)?;
            if state.apps.contains_key(&definition.id) {
                return Err(Rejection::conflict(format!(
                    "An app with id [{}] already exists.",
                    definition.id
                )));
            }
            Ok(vec![
                Event::AppCreated(AppCreated {
                    app: definition.id.clone(),
                    definition: AppSpec::new(definition.clone()),
                }),
                started(deployment, &definition.id, DeploymentKind::Create),
            ])
        }
        Command::UpdateApp { definition, force } => {
            check_valid(definition)?;
            let Some(app) = state.apps.get(&definition.id) else {
                // Marathon's PUT creates a missing app.
                return decide(state, &Command::CreateApp(definition.clone()), command_id);
            };
            let mut events = unlock(state, &definition.id, *force)?;
            events.push(Event::AppUpdated(AppUpdated {
                app: definition.id.clone(),
                previous: app.definition.clone(),
                definition: AppSpec::new(definition.clone()),
            }));
            events.push(started(deployment, &definition.id, DeploymentKind::Update));
            Ok(events)
        }
        Command::ScaleApp {
            app: id,
            instances,
            force,
        } => {
            let app = existing(state, id)?;
            let mut events = unlock(state, id, *force)?;
            events.push(Event::AppScaled(AppScaled {
                app: id.clone(),
                previous: app.definition.instances,
                instances: *instances,
            }));
            events.push(started(deployment, id, DeploymentKind::Scale));
            Ok(events)
        }
        Command::DeleteApp { app: id, force } => {
            existing(state, id)?;
            let mut events = unlock(state, id, *force)?;
            events.push(Event::AppDeleted(AppDeleted { app: id.clone() }));
            events.push(started(deployment, id, DeploymentKind::Delete));
            Ok(events)
        }
        Command::RecordTaskStatus(status) => Ok(record_status(state, status)),
        Command::RecordFrameworkSubscribed { framework, master } => {
            if state.framework.as_ref() == Some(framework) {
                return Ok(Vec::new());
            }
            Ok(vec![Event::FrameworkSubscribed(FrameworkSubscribed {
                framework: framework.clone(),
                master: master.clone(),
            })])
        }
        Command::SubscribeCallback { callback_url } => {
            check_callback_url(callback_url)?;
            // Subscribing twice is a no-op, as in Marathon.
            if state.callbacks.contains_key(callback_url) {
                return Ok(Vec::new());
            }
            Ok(vec![Event::CallbackSubscribed(CallbackSubscribed {
                callback_url: callback_url.clone(),
            })])
        }
        Command::UnsubscribeCallback { callback_url } => {
            if !state.callbacks.contains_key(callback_url) {
                return Err(Rejection::not_found(format!(
                    "no event subscription for callbackUrl {callback_url}"
                )));
            }
            Ok(vec![Event::CallbackUnsubscribed(CallbackUnsubscribed {
                callback_url: callback_url.clone(),
            })])
        }
    }
}

/// Only absolute http(s) URLs: delivery POSTs to them.
fn check_callback_url(url: &str) -> Result<(), Rejection> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        _ => Err(Rejection::invalid(vec![super::FieldError {
            path: "/callbackUrl".into(),
            errors: vec![format!("'{url}' is not an absolute http(s) URL")],
        }])),
    }
}

fn check_valid(definition: &crate::event::app::AppDefinition) -> Result<(), Rejection> {
    let errors = validate_definition(definition);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection::invalid(errors))
    }
}

fn existing<'a>(state: &'a State, id: &AppId) -> Result<&'a crate::projection::App, Rejection> {
    state
        .apps
        .get(id)
        .ok_or_else(|| Rejection::not_found(format!("App '{id}' does not exist")))
}

/// One deployment per app: a running one locks the app unless `force`
/// cancels it.
fn unlock(state: &State, app: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
    match state.deployment_of(app) {
        None => Ok(Vec::new()),
        Some((id, _)) if force => Ok(vec![Event::DeploymentFailed(DeploymentFailed {
            deployment: *id,
            app: app.clone(),
            reason: "superseded by a forced change".to_owned(),
        })]),
        Some((id, _)) => Err(Rejection::conflict(format!(
            "App is locked by one or more deployments. Override with the option '?force=true'. Deployment: {id}"
        ))),
    }
}

fn started(deployment: DeploymentId, app: &AppId, kind: DeploymentKind) -> Event {
    Event::DeploymentStarted(DeploymentStarted {
        deployment,
        app: app.clone(),
        kind,
        steps: 1,
    })
}

/// Mesos resends an update until it is acknowledged; a resend (same uuid)
/// records nothing new.
fn record_status(state: &State, status: &TaskStatus) -> Vec<Event> {
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
