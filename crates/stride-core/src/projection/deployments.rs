//! Deployments in the projection: each with its plan, how far it got, and
//! what it changed (Marathon's `original` and `target`), gathered from the
//! events of the command that started it.

use super::State;
use crate::event::app::AppSpec;
use crate::event::{AppId, DeploymentId, DeploymentKind, DeploymentStep, Envelope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// Finished deployments kept, so that the events which end them (read after
/// they ended) can still show their plan.
const FINISHED_KEPT: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub kind: DeploymentKind,
    /// Its one app, or the group the change was made at.
    pub subject: AppId,
    /// The group the change was made at.
    pub group: AppId,
    pub steps: Vec<DeploymentStep>,
    pub steps_finished: u32,
    pub started_at: u64,
    /// Each app it changes, before and after.
    pub apps: Vec<AppChange>,
    /// Each group on the way to those apps (or changed itself), before and
    /// after.
    pub groups: Vec<GroupChange>,
    /// The tree's version before the change (unix µs).
    pub previous_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppChange {
    pub app: AppId,
    /// The definition and its version before, if the app existed.
    pub before: Option<(AppSpec, u64)>,
    pub after: Option<AppSpec>,
}

/// A group's dependencies before and after; `None` when it did not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChange {
    pub group: AppId,
    pub before: Option<Vec<AppId>>,
    pub after: Option<Vec<AppId>>,
}

/// The changes of the command being applied, until its deployment event
/// takes them. Part of the state (not of the events), so a snapshot taken
/// between a command's events resumes correctly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    command: Uuid,
    apps: Vec<AppChange>,
    groups: Vec<GroupChange>,
}

impl Deployment {
    /// Every app the plan acts on.
    pub fn affected(&self) -> BTreeSet<&AppId> {
        self.steps.iter().flatten().map(|(app, _)| app).collect()
    }

    /// The step running now (0-based), if any is left.
    pub fn current_step(&self) -> Option<&DeploymentStep> {
        self.steps.get(self.steps_finished as usize)
    }
}

impl State {
    /// Notes that `app` changed in the command `envelope` belongs to.
    pub(super) fn note_app(&mut self, envelope: &Envelope, app: &AppId, after: Option<AppSpec>) {
        let before = self
            .apps
            .get(app)
            .map(|a| (a.definition.clone(), a.version));
        let pending = self.pending_for(envelope);
        match pending.apps.iter_mut().find(|c| &c.app == app) {
            Some(change) => change.after = after,
            None => pending.apps.push(AppChange {
                app: app.clone(),
                before,
                after,
            }),
        }
    }

    pub(super) fn note_group(
        &mut self,
        envelope: &Envelope,
        group: &AppId,
        after: Option<Vec<AppId>>,
    ) {
        let before = self.groups.get(group).map(|g| g.dependencies.clone());
        let pending = self.pending_for(envelope);
        match pending.groups.iter_mut().find(|c| &c.group == group) {
            Some(change) => change.after = after,
            None => pending.groups.push(GroupChange {
                group: group.clone(),
                before,
                after,
            }),
        }
    }

    fn pending_for(&mut self, envelope: &Envelope) -> &mut Pending {
        if self.pending.command != envelope.command_id {
            self.pending = Pending {
                command: envelope.command_id,
                ..Pending::default()
            };
        }
        &mut self.pending
    }

    /// A deployment starts: it takes its command's changes, and the tree
    /// gets a new version.
    pub(super) fn start_deployment(
        &mut self,
        envelope: &Envelope,
        id: DeploymentId,
        kind: DeploymentKind,
        (subject, group): (AppId, AppId),
        steps: Vec<DeploymentStep>,
    ) {
        let pending = if self.pending.command == envelope.command_id {
            std::mem::take(&mut self.pending)
        } else {
            Pending::default()
        };
        let mut groups = pending.groups;
        // The groups on the way to each changed app, as they stand.
        for change in &pending.apps {
            for ancestor in change.app.ancestors() {
                if groups.iter().all(|g| g.group != ancestor) {
                    let dependencies = self.groups.get(&ancestor).map(|g| g.dependencies.clone());
                    groups.push(GroupChange {
                        group: ancestor,
                        before: dependencies.clone(),
                        after: dependencies,
                    });
                }
            }
        }
        let deployment = Deployment {
            kind,
            subject,
            group,
            steps,
            steps_finished: 0,
            started_at: envelope.recorded_at,
            apps: pending.apps,
            groups,
            previous_version: self.version(),
        };
        self.remove_deployment(&id);
        for app in deployment.affected() {
            self.deployments_by_app
                .entry(app.clone())
                .or_default()
                .insert(id);
        }
        self.deployments.insert(id, Arc::new(deployment));
        self.tree_versions
            .push_back((envelope.recorded_at, envelope.seq));
    }

    /// The deployment running for `app`, if any.
    pub fn deployment_of(&self, app: &AppId) -> Option<(&DeploymentId, &Deployment)> {
        let id = self.deployments_by_app.get(app)?.get_min()?;
        self.deployments.get_key_value(id).map(|(id, d)| (id, &**d))
    }

    /// A deployment running or recently finished, for showing its plan.
    pub fn plan_of(&self, id: &DeploymentId) -> Option<&Deployment> {
        let running = self.deployments.get(id);
        running
            .or_else(|| {
                self.finished_deployments
                    .iter()
                    .rev()
                    .find(|(finished, _)| finished == id)
                    .map(|(_, d)| d)
            })
            .map(|d| &**d)
    }

    pub(super) fn step_finished(&mut self, id: &DeploymentId, step: u32) {
        if let Some(d) = self.deployments.get_mut(id).map(Arc::make_mut) {
            d.steps_finished = d.steps_finished.max(step);
        }
    }

    /// The deployment ended (either way); it is kept a while for its plan.
    pub(super) fn remove_deployment(&mut self, id: &DeploymentId) {
        let Some(removed) = self.deployments.remove(id) else {
            return;
        };
        for app in removed.affected() {
            if let Some(ids) = self.deployments_by_app.get_mut(app) {
                ids.remove(id);
                if ids.is_empty() {
                    self.deployments_by_app.remove(app);
                }
            }
        }
        if self.finished_deployments.len() == FINISHED_KEPT {
            self.finished_deployments.pop_front();
        }
        self.finished_deployments.push_back((*id, removed));
    }
}
