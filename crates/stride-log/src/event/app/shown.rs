//! A definition's JSON as Marathon writes an `App` (its RAML generator in
//! `type-generator/`, with `AppConversion.appWriter`): unset options and
//! empty `omitEmpty` collections are left out, `labels` and `networks`
//! always appear, `portDefinitions` only on the host network, and the
//! integer fields of Marathon's schema are written as integers.

use super::{
    AppDefinition, Constraint, Container, FetchUri, HealthCheck, KillSelection, Network,
    PortDefinition, ReadinessCheck, UnreachableStrategy, UpgradeStrategy,
};
use crate::event::AppId;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    id: &'a AppId,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: &'a Option<String>,
    instances: u32,
    cpus: f64,
    mem: f64,
    disk: f64,
    gpus: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    constraints: &'a [Constraint],
    networks: &'a [Network],
    #[serde(skip_serializing_if = "Option::is_none")]
    port_definitions: Option<Vec<ShownPort<'a>>>,
    require_ports: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: &'a Option<Container>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fetch: &'a [FetchUri],
    #[serde(serialize_with = "whole")]
    backoff_seconds: f64,
    backoff_factor: f64,
    #[serde(serialize_with = "whole")]
    max_launch_delay_seconds: f64,
    upgrade_strategy: &'a UpgradeStrategy,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_option"
    )]
    task_kill_grace_period_seconds: Option<f64>,
    kill_selection: KillSelection,
    unreachable_strategy: UnreachableStrategy,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    health_checks: &'a [HealthCheck],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    readiness_checks: &'a [ReadinessCheck],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    dependencies: &'a [AppId],
    executor: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_resource_roles: Option<&'a [String]>,
}

impl Serialize for AppDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let non_empty = |list: &'_ Option<Vec<String>>| -> bool {
            list.as_ref().is_some_and(|l| !l.is_empty())
        };
        Shown {
            id: &self.id,
            cmd: &self.cmd,
            args: self.args.as_deref().filter(|_| non_empty(&self.args)),
            user: &self.user,
            instances: self.instances,
            cpus: self.cpus,
            mem: self.mem,
            disk: self.disk,
            gpus: self.gpus,
            env: &self.env,
            labels: &self.labels,
            constraints: &self.constraints,
            networks: &self.networks,
            port_definitions: (!self.uses_port_mappings())
                .then(|| self.port_definitions.iter().map(ShownPort::from).collect()),
            require_ports: self.require_ports,
            container: &self.container,
            fetch: &self.fetch,
            backoff_seconds: self.backoff_seconds,
            backoff_factor: self.backoff_factor,
            max_launch_delay_seconds: self.max_launch_delay_seconds,
            upgrade_strategy: &self.upgrade_strategy,
            task_kill_grace_period_seconds: self.task_kill_grace_period_seconds,
            kill_selection: self.kill_selection,
            unreachable_strategy: self.unreachable_strategy,
            health_checks: &self.health_checks,
            readiness_checks: &self.readiness_checks,
            dependencies: &self.dependencies,
            executor: &self.executor,
            role: &self.role,
            accepted_resource_roles: self
                .accepted_resource_roles
                .as_deref()
                .filter(|_| non_empty(&self.accepted_resource_roles)),
        }
        .serialize(serializer)
    }
}

/// Marathon's `PortDefinition`: no `name` when unset, no empty `labels`.
#[derive(Serialize)]
struct ShownPort<'a> {
    port: u32,
    protocol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: &'a Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a PortDefinition> for ShownPort<'a> {
    fn from(port: &'a PortDefinition) -> ShownPort<'a> {
        ShownPort {
            port: port.port,
            protocol: &port.protocol,
            name: &port.name,
            labels: &port.labels,
        }
    }
}

/// A number of seconds Marathon types as an integer: whole values are
/// written as integers.
fn whole<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

fn whole_option<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => whole(v, serializer),
        None => serializer.serialize_none(),
    }
}
