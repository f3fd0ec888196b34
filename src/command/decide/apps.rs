//! App lifecycle commands: every accepted change starts a deployment.

use super::deployments::{started, unlock};
use super::existing;
use crate::command::ports::assign_service_ports;
use crate::command::validate::{Problems, check_definition, error_pointer};
use crate::command::{Rejection, Settings};
use crate::event::app::{AppDefinition, AppSpec};
use crate::event::{
    AppCreated, AppDeleted, AppId, AppScaled, AppUpdated, DeploymentId, DeploymentKind, Event,
    LaunchDelayReset,
};
use crate::projection::State;
use serde_json::{Map, Value};

pub(super) struct Decider<'a> {
    pub state: &'a State,
    pub settings: &'a Settings,
    /// The id a deployment started by this command gets.
    pub deployment: DeploymentId,
}

impl Decider<'_> {
    pub fn create(&self, definition: &AppDefinition) -> Result<Vec<Event>, Rejection> {
        let definition = self.accept(definition)?;
        if self.state.apps.contains_key(&definition.id) {
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
            started(self.deployment, &definition.id, DeploymentKind::Create),
        ])
    }

    pub fn update(&self, definition: &AppDefinition, force: bool) -> Result<Vec<Event>, Rejection> {
        if !self.state.apps.contains_key(&definition.id) {
            // Marathon's PUT creates a missing app.
            return self.create(definition);
        }
        let definition = self.accept(definition)?;
        self.change(
            &definition.id.clone(),
            definition,
            DeploymentKind::Update,
            force,
        )
    }

    pub fn patch(
        &self,
        id: &AppId,
        patch: &Map<String, Value>,
        force: bool,
    ) -> Result<Vec<Event>, Rejection> {
        let app = existing(self.state, id)?;
        let mut merged = match serde_json::to_value(&*app.definition) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
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
        let definition = self.accept(&definition)?;
        self.change(id, definition, DeploymentKind::Update, force)
    }

    pub fn scale(&self, id: &AppId, instances: u32, force: bool) -> Result<Vec<Event>, Rejection> {
        let app = existing(self.state, id)?;
        let mut events = unlock(self.state, id, force)?;
        events.push(Event::AppScaled(AppScaled {
            app: id.clone(),
            previous: app.definition.instances,
            instances,
        }));
        events.push(started(self.deployment, id, DeploymentKind::Scale));
        Ok(events)
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
        let definition = self.accept(&earlier.definition)?;
        self.change(id, definition, DeploymentKind::Update, force)
    }

    /// Marathon restarts by deploying a new version of the same definition:
    /// every task runs an older version and so gets replaced.
    pub fn restart(&self, id: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
        let app = existing(self.state, id)?;
        let definition = (*app.definition).clone();
        self.change(id, definition, DeploymentKind::Restart, force)
    }

    pub fn delete(&self, id: &AppId, force: bool) -> Result<Vec<Event>, Rejection> {
        existing(self.state, id)?;
        let mut events = unlock(self.state, id, force)?;
        events.push(Event::AppDeleted(AppDeleted { app: id.clone() }));
        events.push(started(self.deployment, id, DeploymentKind::Delete));
        Ok(events)
    }

    pub fn reset_launch_delay(&self, id: &AppId) -> Result<Vec<Event>, Rejection> {
        existing(self.state, id)?;
        Ok(vec![Event::LaunchDelayReset(LaunchDelayReset {
            app: id.clone(),
        })])
    }

    /// A new version of an existing app, deployed unless another deployment
    /// holds the app.
    fn change(
        &self,
        id: &AppId,
        definition: AppDefinition,
        kind: DeploymentKind,
        force: bool,
    ) -> Result<Vec<Event>, Rejection> {
        let app = existing(self.state, id)?;
        let mut events = unlock(self.state, id, force)?;
        events.push(Event::AppUpdated(AppUpdated {
            app: id.clone(),
            previous: app.definition.clone(),
            definition: AppSpec::new(definition),
        }));
        events.push(started(self.deployment, id, kind));
        Ok(events)
    }

    /// The definition as it will be stored: valid, with its service ports
    /// free and assigned. Every problem is reported at once.
    pub fn accept(&self, definition: &AppDefinition) -> Result<AppDefinition, Rejection> {
        let mut problems = Problems::default();
        check_definition(definition, &mut problems);
        let mut assigned = definition.clone();
        assign_service_ports(
            self.state,
            self.settings.service_ports,
            &mut assigned,
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
