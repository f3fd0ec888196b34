//! Group commands (`/v2/groups`), each one deployment: creating or
//! restructuring a group as Marathon's `UpdateGroupStructureOp` does,
//! scaling every app under one, deleting one with its contents.

use super::apps::Decider;
use super::deploy::{Change, deploy};
use crate::command::validate::check_id;
use crate::command::{FieldError, GroupUpdate, Rejection};
use crate::event::{AppId, DeploymentKind, Event};
use std::collections::HashSet;

impl Decider<'_> {
    pub fn create_group(&self, update: &GroupUpdate, force: bool) -> Result<Vec<Event>, Rejection> {
        let id = &update.id;
        // The root group always exists: POSTing it is a 409 too, as in
        // Marathon (GroupsResource.createWithPath).
        if id.is_root() || self.state.has_group(id) {
            return Err(Rejection::conflict(format!(
                "Group {id} is already created. Use PUT to change this group."
            )));
        }
        if self.state.apps.contains_key(id) {
            return Err(Rejection::conflict(format!(
                "An app with the path {id} already exists."
            )));
        }
        self.update_group(update, force)
    }

    pub fn update_group(&self, update: &GroupUpdate, force: bool) -> Result<Vec<Event>, Rejection> {
        let mut change = Change::new(DeploymentKind::Group, update.id.parent());
        let mut problems = Vec::new();
        let mut claimed = HashSet::new();
        self.restructure(update, "", &mut change, &mut claimed, &mut problems);
        if !problems.is_empty() {
            return Err(Rejection::invalid(problems));
        }
        deploy(self.state, self.deployment, change, force)
    }

    /// What `update` makes of its group, recursively: each part given
    /// replaces that part; what the group had and the update leaves out of
    /// a part it gives is removed.
    fn restructure(
        &self,
        update: &GroupUpdate,
        path: &str,
        change: &mut Change,
        claimed: &mut HashSet<u32>,
        problems: &mut Vec<FieldError>,
    ) {
        let id = &update.id;
        if !id.is_root() {
            if let Err(error) = check_id(id.as_str()) {
                problems.push(FieldError {
                    path: format!("{path}/id"),
                    errors: vec![error],
                });
            }
        }
        let current = self.state.groups.get(id);
        if current.is_none() || update.dependencies.is_some() {
            let dependencies = update
                .dependencies
                .clone()
                .or_else(|| current.map(|g| g.dependencies.clone()))
                .unwrap_or_default();
            change.groups.insert(id.clone(), Some(dependencies));
        }
        if let Some(apps) = &update.apps {
            for app in self.state.apps_in(id) {
                change.apps.insert(app.clone(), None);
            }
            for (i, definition) in apps.iter().enumerate() {
                let at = format!("{path}/apps/{i}");
                if definition.id.parent() != *id {
                    problems.push(FieldError {
                        path: format!("{at}/id"),
                        errors: vec![format!(
                            "App {} has to be a child of group {id}",
                            definition.id
                        )],
                    });
                    continue;
                }
                match self.accept(definition, claimed) {
                    Ok(accepted) => {
                        change.apps.insert(accepted.id.clone(), Some(accepted));
                    }
                    Err(rejection) => {
                        problems.extend(rejection.details.into_iter().map(|mut detail| {
                            detail.path = format!("{at}{}", detail.path);
                            detail
                        }))
                    }
                }
            }
        }
        if let Some(groups) = &update.groups {
            for group in self.state.subgroups(id) {
                change.groups.insert(group.clone(), None);
            }
            for (i, group) in groups.iter().enumerate() {
                let at = format!("{path}/groups/{i}");
                if group.id.parent() != *id {
                    problems.push(FieldError {
                        path: format!("{at}/id"),
                        errors: vec![format!(
                            "Group {} has to be a child of group {id}",
                            group.id
                        )],
                    });
                    continue;
                }
                self.restructure(group, &at, change, claimed, problems);
            }
        }
    }

    /// Every app under the group gets `ceil(instances * by)` instances.
    pub fn scale_group(&self, id: &AppId, by: f64, force: bool) -> Result<Vec<Event>, Rejection> {
        if !by.is_finite() || by < 0.0 {
            return Err(Rejection::invalid_field(
                "/scaleBy".into(),
                format!("got {by}, expected 0 or more"),
            ));
        }
        let mut change = Change::new(DeploymentKind::Scale, id.parent());
        for app in self.state.apps_under(id) {
            let mut definition = (*self.state.apps[app].definition).clone();
            let scaled = (f64::from(definition.instances) * by).ceil();
            definition.instances = if scaled >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                scaled as u32
            };
            change.apps.insert(app.clone(), Some(definition));
        }
        deploy(self.state, self.deployment, change, force)
    }

    pub fn delete_group(&self, id: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
        if !self.state.has_group(id) {
            return Err(Rejection::not_found(format!("Group '{id}' does not exist")));
        }
        let mut change = Change::new(DeploymentKind::Delete, id.parent());
        change.groups.insert(id.clone(), None);
        deploy(self.state, self.deployment, change, force)
    }
}
