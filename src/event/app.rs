//! The app definition users post, in Marathon's `/v2/apps` JSON shape.
//!
//! Events store a definition as its normalized JSON text (see `AppSpec`), so
//! a field added later rides on `#[serde(default)]` and needs no migration.

use super::ids::AppId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: AppId,
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default = "defaults::instances")]
    pub instances: u32,
    #[serde(default = "defaults::cpus")]
    pub cpus: f64,
    #[serde(default = "defaults::mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub port_definitions: Vec<PortDefinition>,
    #[serde(default)]
    pub require_ports: bool,
    #[serde(default = "defaults::backoff_seconds")]
    pub backoff_seconds: f64,
    #[serde(default = "defaults::backoff_factor")]
    pub backoff_factor: f64,
    #[serde(default = "defaults::max_launch_delay_seconds")]
    pub max_launch_delay_seconds: f64,
    #[serde(default = "defaults::task_kill_grace_period_seconds")]
    pub task_kill_grace_period_seconds: f64,
    #[serde(default)]
    pub kill_selection: KillSelection,
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// 0 asks Stride to assign a service port.
    #[serde(default)]
    pub port: u32,
    #[serde(default = "defaults::protocol")]
    pub protocol: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    #[serde(default = "defaults::capacity")]
    pub minimum_health_capacity: f64,
    #[serde(default = "defaults::capacity")]
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

/// Marathon's defaults.
mod defaults {
    pub fn instances() -> u32 {
        1
    }
    pub fn cpus() -> f64 {
        1.0
    }
    pub fn mem() -> f64 {
        128.0
    }
    pub fn backoff_seconds() -> f64 {
        1.0
    }
    pub fn backoff_factor() -> f64 {
        1.15
    }
    pub fn max_launch_delay_seconds() -> f64 {
        300.0
    }
    pub fn task_kill_grace_period_seconds() -> f64 {
        3.0
    }
    pub fn protocol() -> String {
        "tcp".to_owned()
    }
    pub fn capacity() -> f64 {
        1.0
    }
}

/// An app definition as stored in events and snapshots.
///
/// In binary formats (bincode) it is the definition's JSON text, so the
/// definition can grow fields without a log migration; in JSON it is the
/// definition object itself. Shared, because versions are kept in history.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec(pub Arc<AppDefinition>);

impl AppSpec {
    pub fn new(definition: AppDefinition) -> AppSpec {
        AppSpec(Arc::new(definition))
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
            let text = serde_json::to_string(&*self.0).map_err(serde::ser::Error::custom)?;
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
