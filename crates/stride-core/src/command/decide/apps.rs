//! App lifecycle commands: each accepted change is one deployment.

use super::deploy::{Change, deploy};
use super::existing;
use crate::command::ports::assign_service_ports;
use crate::command::validate::{Problems, check_definition, error_pointer};
use crate::command::{AppUpdate, Rejection, Settings};
use crate::event::app::AppDefinition;
use crate::event::{AppId, DeploymentId, DeploymentKind, Event, LaunchDelayReset};
use crate::projection::State;
use serde_json::{Map, Value};
use std::collections::HashSet;

pub(super) struct Decider<'a> {
    pub state: &'a State,
    pub settings: &'a Settings,
    /// The id a deployment started by this command gets.
    pub deployment: DeploymentId,
}

impl Decider<'_> {
    pub fn create(&self, definition: &AppDefinition) -> Result<Vec<Event>, Rejection> {
        if self.state.apps.contains_key(&definition.id) {
            return Err(Rejection::conflict(format!(
                "An app with id [{}] already exists.",
                definition.id
            )));
        }
        let definition = self.accept(definition, &mut HashSet::new())?;
        self.one(
            DeploymentKind::Create,
            definition.id.clone(),
            Some(definition),
            false,
        )
    }

    /// Marathon's PUT creates a missing app.
    pub fn update(&self, definition: &AppDefinition, force: bool) -> Result<Vec<Event>, Rejection> {
        let kind = match self.state.apps.contains_key(&definition.id) {
            true => DeploymentKind::Update,
            false => DeploymentKind::Create,
        };
        let definition = self.accept(definition, &mut HashSet::new())?;
        self.one(kind, definition.id.clone(), Some(definition), force)
    }

    pub fn patch(
        &self,
        id: &AppId,
        patch: &Map<String, Value>,
        force: bool,
        create: bool,
    ) -> Result<Vec<Event>, Rejection> {
        let (kind, definition) = self.patched(id, patch, create, &mut HashSet::new())?;
        self.one(kind, id.clone(), Some(definition), force)
    }

    /// `PUT`/`PATCH /v2/apps`: every app in one deployment.
    pub fn update_many(&self, updates: &[AppUpdate], force: bool) -> Result<Vec<Event>, Rejection> {
        let mut change = Change::new(DeploymentKind::Group, AppId::root());
        let mut claimed = HashSet::new();
        let mut problems = Vec::new();
        for (i, update) in updates.iter().enumerate() {
            let accepted = match update {
                AppUpdate::Replace(definition) => self
                    .accept(definition, &mut claimed)
                    .map(|d| (d.id.clone(), d)),
                AppUpdate::Patch { app, patch, create } => self
                    .patched(app, patch, *create, &mut claimed)
                    .map(|(_, d)| (app.clone(), d)),
            };
            match accepted {
                Ok((id, definition)) => {
                    change.apps.insert(id, Some(definition));
                }
                Err(rejection) if rejection.details.is_empty() => return Err(rejection),
                Err(rejection) => problems.extend(rejection.details.into_iter().map(|mut d| {
                    d.path = format!("/{i}{}", d.path);
                    d
                })),
            }
        }
        if !problems.is_empty() {
            return Err(Rejection::invalid(problems));
        }
        deploy(self.state, self.deployment, change, force)
    }

    /// The app's definition with `patch` merged in (or, if it is missing
    /// and `create` allows, made from `patch` alone), accepted.
    fn patched(
        &self,
        id: &AppId,
        patch: &Map<String, Value>,
        create: bool,
        claimed: &mut HashSet<u32>,
    ) -> Result<(DeploymentKind, AppDefinition), Rejection> {
        let (kind, mut merged) = match self.state.apps.get(id) {
            Some(app) => match serde_json::to_value(&*app.definition) {
                Ok(Value::Object(fields)) => (DeploymentKind::Update, fields),
                _ => (DeploymentKind::Update, Map::new()),
            },
            None if create => (DeploymentKind::Create, Map::new()),
            None => return Err(Rejection::not_found(format!("App '{id}' does not exist"))),
        };
        for (field, value) in patch {
            merged.insert(field.clone(), value.clone());
        }
        // The path names the app; a patch cannot move it.
        merged.insert("id".into(), Value::String(id.to_string()));
        let definition: AppDefinition = serde_path_to_error::deserialize(Value::Object(merged))
            .map_err(|error| {
                Rejection::invalid_field(error_pointer(&error), error.inner().to_string())
            })?;
        Ok((kind, self.accept(&definition, claimed)?))
    }

    /// The earlier definition is checked again: its service ports may have
    /// gone to another app since.
    pub fn revert(&self, id: &AppId, version: u64, force: bool) -> Result<Vec<Event>, Rejection> {
        let app = existing(self.state, id)?;
        let earlier = app
            .versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| Rejection::not_found(format!("App '{id}' has no version {version}")))?;
        let definition = self.accept(&earlier.definition, &mut HashSet::new())?;
        self.one(DeploymentKind::Update, id.clone(), Some(definition), force)
    }

    /// Marathon restarts by deploying a new version of the same definition:
    /// every task runs an older version and so gets replaced.
    pub fn restart(&self, id: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
        let app = existing(self.state, id)?;
        let mut change = Change::new(DeploymentKind::Restart, id.parent());
        change
            .apps
            .insert(id.clone(), Some((*app.definition).clone()));
        change.restart.insert(id.clone());
        deploy(self.state, self.deployment, change, force)
    }

    pub fn delete(&self, id: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
        existing(self.state, id)?;
        self.one(DeploymentKind::Delete, id.clone(), None, force)
    }

    pub fn reset_launch_delay(&self, id: &AppId) -> Result<Vec<Event>, Rejection> {
        existing(self.state, id)?;
        Ok(vec![Event::LaunchDelayReset(LaunchDelayReset {
            app: id.clone(),
        })])
    }

    /// A deployment changing one app, made at the app's group.
    fn one(
        &self,
        kind: DeploymentKind,
        id: AppId,
        after: Option<AppDefinition>,
        force: bool,
    ) -> Result<Vec<Event>, Rejection> {
        let mut change = Change::new(kind, id.parent());
        change.apps.insert(id, after);
        deploy(self.state, self.deployment, change, force)
    }

    /// The definition as it will be stored: valid, with its service ports
    /// free and assigned, none of them among `claimed` (ports other apps of
    /// the same command took, to which this one's are added). Every
    /// problem is reported at once.
    pub fn accept(
        &self,
        definition: &AppDefinition,
        claimed: &mut HashSet<u32>,
    ) -> Result<AppDefinition, Rejection> {
        let mut problems = Problems::default();
        let mut assigned = definition.clone().canonical();
        check_definition(&assigned, &mut problems);
        assign_service_ports(
            self.state,
            self.settings.service_ports,
            &mut assigned,
            claimed,
            &mut problems,
        );
        let problems = problems.into_vec();
        if problems.is_empty() {
            Ok(assigned)
        } else {
            Err(Rejection::invalid(problems))
        }
    }
}
