//! Deployment bookkeeping: one deployment per app at a time, and
//! cancelling one (with or without rolling its change back).

use super::apps::Decider;
use super::deploy::{Change, deploy};
use crate::command::Rejection;
use crate::event::{AppId, DeploymentFailed, DeploymentId, DeploymentKind, Event};
use crate::projection::State;
use std::collections::{BTreeSet, HashSet};

/// One deployment per app: those running for `apps` lock them, unless
/// `force` cancels them (or they are in `cancelled` already).
pub(super) fn unlock<'a>(
    state: &State,
    apps: impl IntoIterator<Item = &'a AppId>,
    cancelled: &HashSet<DeploymentId>,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    let holding: BTreeSet<(DeploymentId, &AppId)> = apps
        .into_iter()
        .filter_map(|app| state.deployment_of(app).map(|(id, d)| (*id, &d.subject)))
        .filter(|(id, _)| !cancelled.contains(id))
        .collect();
    let Some((first, _)) = holding.first() else {
        return Ok(Vec::new());
    };
    if !force {
        return Err(Rejection::conflict(format!(
            "App is locked by one or more deployments. Override with the option '?force=true'. Deployment: {first}"
        )));
    }
    let mut seen = HashSet::new();
    Ok(holding
        .into_iter()
        .filter(|(id, _)| seen.insert(*id))
        .map(|(deployment, subject)| {
            Event::DeploymentFailed(DeploymentFailed {
                deployment,
                app: subject.clone(),
                reason: "superseded by a forced change".to_owned(),
            })
        })
        .collect())
}

/// `force` stops the deployment where it is. Otherwise, as in Marathon, a
/// new deployment takes what it changed back to how it was before.
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
    let reason = if force {
        "cancelled".to_owned()
    } else {
        format!("cancelled and rolled back by deployment {rollback}")
    };
    let failed = Event::DeploymentFailed(DeploymentFailed {
        deployment: *target,
        app: deployment.subject.clone(),
        reason,
    });
    if force {
        return Ok(vec![failed]);
    }
    let mut change = Change::new(DeploymentKind::Rollback, deployment.group.clone());
    change.prelude.push(failed);
    let mut claimed = HashSet::new();
    for app in &deployment.apps {
        let before = match &app.before {
            // Checked again: its service ports may have gone elsewhere.
            Some((definition, _)) => Some(apps.accept(definition, &mut claimed)?),
            None => None,
        };
        change.apps.insert(app.app.clone(), before);
    }
    for group in &deployment.groups {
        // A group it made goes again only if nothing else moved in since.
        let emptied = || {
            state
                .apps_under(&group.group)
                .all(|app| change.apps.get(app).is_some_and(Option::is_none))
        };
        if group.before != group.after && (group.before.is_some() || emptied()) {
            change
                .groups
                .insert(group.group.clone(), group.before.clone());
        }
    }
    deploy(state, rollback, change, false)
}
