//! Deployment bookkeeping: the one-deployment-per-app lock, and cancelling.

use super::apps::Decider;
use super::existing;
use crate::command::Rejection;
use crate::event::app::AppSpec;
use crate::event::{
    AppDeleted, AppId, AppScaled, AppUpdated, DeploymentFailed, DeploymentId, DeploymentKind,
    DeploymentStarted, Event,
};
use crate::projection::{Deployment, State};

/// One deployment per app: a running one locks the app unless `force`
/// cancels it.
pub(super) fn unlock(state: &State, app: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
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

pub(super) fn started(deployment: DeploymentId, app: &AppId, kind: DeploymentKind) -> Event {
    Event::DeploymentStarted(DeploymentStarted {
        deployment,
        app: app.clone(),
        kind,
        steps: 1,
    })
}

/// `force` stops the deployment where it is. Otherwise, as in Marathon, a
/// new deployment takes the app back to where it was before.
pub(super) fn cancel(
    apps: &Decider,
    target: &DeploymentId,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    let state = apps.state;
    let rollback = apps.deployment;
    let deployment = state
        .deployments
        .get(target)
        .ok_or_else(|| Rejection::not_found(format!("DeploymentPlan {target} does not exist")))?;
    let app = &deployment.app;
    let reason = if force {
        "cancelled".to_owned()
    } else {
        format!("cancelled and rolled back by deployment {rollback}")
    };
    let mut events = vec![Event::DeploymentFailed(DeploymentFailed {
        deployment: *target,
        app: app.clone(),
        reason,
    })];
    if !force {
        events.push(undo(apps, deployment)?);
        events.push(started(rollback, app, DeploymentKind::Rollback));
    }
    Ok(events)
}

/// The change that takes `deployment`'s app back to the version before it.
fn undo(apps: &Decider, deployment: &Deployment) -> Result<Event, Rejection> {
    let state = apps.state;
    let id = &deployment.app;
    if deployment.kind == DeploymentKind::Create {
        return Ok(Event::AppDeleted(AppDeleted { app: id.clone() }));
    }
    let cannot = || {
        Rejection::conflict(format!(
            "the deployment of {id} has no earlier version to roll back to; cancel it with ?force=true"
        ))
    };
    if deployment.kind == DeploymentKind::Delete {
        return Err(cannot());
    }
    let app = existing(state, id)?;
    // The deployment's own version is the newest one recorded before it
    // started; the one before that is what it replaced.
    let own = app
        .versions
        .iter()
        .rposition(|v| v.version <= deployment.started_at)
        .ok_or_else(cannot)?;
    let previous = own
        .checked_sub(1)
        .and_then(|i| app.versions.get(i))
        .ok_or_else(cannot)?;
    Ok(if deployment.kind == DeploymentKind::Scale {
        Event::AppScaled(AppScaled {
            app: id.clone(),
            previous: app.definition.instances,
            instances: previous.definition.instances,
        })
    } else {
        // Checked again: its service ports may have gone to another app.
        Event::AppUpdated(AppUpdated {
            app: id.clone(),
            previous: app.definition.clone(),
            definition: AppSpec::new(apps.accept(&previous.definition)?),
        })
    })
}
