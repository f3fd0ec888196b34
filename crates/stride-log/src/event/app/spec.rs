//! `AppSpec`: how a definition is stored in events and snapshots.

use super::{
    AppDefinition, Constraint, Container, DockerNetwork, FetchUri, HealthCheck, KillSelection,
    Network, PortDefinition, ReadinessCheck, UnreachableStrategy, UpgradeStrategy, defaults,
};
use crate::event::AppId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An app definition as stored in events and snapshots.
///
/// In binary formats (bincode) it is the definition's JSON text, so the
/// definition can grow fields without a log migration; in JSON it is the
/// definition object itself. Shared, because versions are kept in history.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec(pub Arc<AppDefinition>);

impl AppSpec {
    /// Every stored definition is in Marathon's canonical form.
    pub fn new(definition: AppDefinition) -> AppSpec {
        AppSpec(Arc::new(definition.canonical()))
    }
}

impl std::ops::Deref for AppSpec {
    type Target = AppDefinition;
    fn deref(&self) -> &AppDefinition {
        &self.0
    }
}

impl Serialize for AppSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            let text = serde_json::to_string(&Stored::from(&*self.0))
                .map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(&text)
        }
    }
}

impl<'de> Deserialize<'de> for AppSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let definition = if deserializer.is_human_readable() {
            AppDefinition::deserialize(deserializer)?
        } else {
            let text = String::deserialize(deserializer)?;
            serde_json::from_str(&text).map_err(serde::de::Error::custom)?
        };
        Ok(AppSpec::new(definition))
    }
}

/// The JSON text a definition is stored as. Fields of record format 1 come
/// first, in their original order; fields added since are written only when
/// they differ from their defaults. So every definition a format-1 Stride
/// could write still encodes to the same bytes (the golden fixtures check
/// this), and reading fills absent fields with their defaults.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored<'a> {
    id: &'a AppId,
    cmd: &'a Option<String>,
    args: &'a Option<Vec<String>>,
    instances: u32,
    cpus: f64,
    mem: f64,
    disk: f64,
    env: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    port_definitions: &'a [PortDefinition],
    require_ports: bool,
    backoff_seconds: f64,
    backoff_factor: f64,
    max_launch_delay_seconds: f64,
    /// A number in format 1, where it always had one; `null` when unset.
    task_kill_grace_period_seconds: Option<f64>,
    kill_selection: KillSelection,
    upgrade_strategy: &'a UpgradeStrategy,
    // Added after format 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: &'a Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    gpus: u32,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    constraints: &'a [Constraint],
    #[serde(skip_serializing_if = "is_host_only")]
    networks: &'a [Network],
    #[serde(skip_serializing_if = "Option::is_none")]
    container: &'a Option<Container>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fetch: &'a [FetchUri],
    #[serde(skip_serializing_if = "is_default_unreachable")]
    unreachable_strategy: UnreachableStrategy,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    health_checks: &'a [HealthCheck],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    readiness_checks: &'a [ReadinessCheck],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    dependencies: &'a [AppId],
    #[serde(skip_serializing_if = "str::is_empty")]
    executor: &'a str,
    #[serde(skip_serializing_if = "is_default_role")]
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_resource_roles: &'a Option<Vec<String>>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// The networks every definition without any had (and gets on reading).
fn is_host_only(networks: &[Network]) -> bool {
    networks.is_empty() || networks == [Network::of(DockerNetwork::Host)]
}

fn is_default_role(role: &str) -> bool {
    role == defaults::role()
}

fn is_default_unreachable(value: &UnreachableStrategy) -> bool {
    *value == UnreachableStrategy::default()
}

impl<'a> From<&'a AppDefinition> for Stored<'a> {
    fn from(definition: &'a AppDefinition) -> Stored<'a> {
        // No `..`: a field added to AppDefinition must be added here too,
        // or it would silently not be stored.
        let AppDefinition {
            id,
            cmd,
            args,
            user,
            instances,
            cpus,
            mem,
            disk,
            gpus,
            env,
            labels,
            constraints,
            networks,
            port_definitions,
            require_ports,
            container,
            fetch,
            backoff_seconds,
            backoff_factor,
            max_launch_delay_seconds,
            upgrade_strategy,
            task_kill_grace_period_seconds,
            kill_selection,
            unreachable_strategy,
            health_checks,
            readiness_checks,
            dependencies,
            executor,
            role,
            accepted_resource_roles,
        } = definition;
        Stored {
            id,
            cmd,
            args,
            instances: *instances,
            cpus: *cpus,
            mem: *mem,
            disk: *disk,
            env,
            labels,
            port_definitions,
            require_ports: *require_ports,
            backoff_seconds: *backoff_seconds,
            backoff_factor: *backoff_factor,
            max_launch_delay_seconds: *max_launch_delay_seconds,
            task_kill_grace_period_seconds: *task_kill_grace_period_seconds,
            kill_selection: *kill_selection,
            upgrade_strategy,
            user,
            gpus: *gpus,
            constraints,
            networks,
            container,
            fetch,
            unreachable_strategy: *unreachable_strategy,
            health_checks,
            readiness_checks,
            dependencies,
            executor,
            role,
            accepted_resource_roles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AppSpec;
    use serde_json::json;

    fn stored_text(spec: &AppSpec) -> String {
        let bytes = bincode::serialize(spec).unwrap();
        bincode::deserialize(&bytes).unwrap()
    }

    #[test]
    fn newer_fields_are_stored_only_when_set() {
        let plain: AppSpec = serde_json::from_value(json!({"id": "/a", "cmd": "x"})).unwrap();
        let text = stored_text(&plain);
        assert!(text.starts_with(r#"{"id":"/a","cmd":"x","args":null,"instances":1,"#));
        assert!(text.ends_with(
            r#""upgradeStrategy":{"minimumHealthCapacity":1.0,"maximumOverCapacity":1.0}}"#
        ));
        let placed: AppSpec = serde_json::from_value(
            json!({"id": "/a", "constraints": [["hostname", "UNIQUE"]], "gpus": 1}),
        )
        .unwrap();
        let text = stored_text(&placed);
        assert!(
            text.contains(r#""gpus":1,"constraints":[["hostname","UNIQUE"]]}"#),
            "{text}"
        );
    }
}
