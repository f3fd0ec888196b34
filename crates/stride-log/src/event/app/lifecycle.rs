//! How tasks are fetched, checked, replaced and given up on.

use super::defaults;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchUri {
    pub uri: String,
    #[serde(default)]
    pub executable: bool,
    #[serde(default = "defaults::yes")]
    pub extract: bool,
    #[serde(default)]
    pub cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub protocol: HealthCheckProtocol,
    /// For HTTP(S) checks; `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Which of the app's ports to check; the first when neither this nor
    /// `port` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// For COMMAND checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    #[serde(default = "defaults::health_grace_period_seconds")]
    pub grace_period_seconds: u32,
    #[serde(default = "defaults::health_interval_seconds")]
    pub interval_seconds: u32,
    #[serde(default = "defaults::health_timeout_seconds")]
    pub timeout_seconds: u32,
    #[serde(default = "defaults::health_max_consecutive_failures")]
    pub max_consecutive_failures: u32,
    #[serde(default = "defaults::health_delay_seconds")]
    pub delay_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
    #[serde(default)]
    pub ip_protocol: IpProtocol,
}

impl HealthCheck {
    /// The fields Marathon keeps for this check's protocol, as it writes a
    /// check (HealthCheckConversion.scala, `create`): HTTP and HTTPS checks
    /// always have `ignoreHttp1xx`, only HTTP checks a `path`, only
    /// COMMAND checks a command and no port.
    pub fn keep_only_its_fields(&mut self) {
        use HealthCheckProtocol::{Command, Http, Https, MesosHttp, MesosHttps};
        let http = matches!(self.protocol, Http | Https);
        self.ignore_http1xx = http.then(|| self.ignore_http1xx.unwrap_or(false));
        if !matches!(self.protocol, Http | Https | MesosHttp | MesosHttps) {
            self.path = None;
        }
        if self.protocol == Command {
            self.port = None;
            self.port_index = None;
        } else {
            self.command = None;
        }
    }
}

/// Which IP version a health check uses (Marathon's `ipProtocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpProtocol {
    #[default]
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheckProtocol {
    #[default]
    Http,
    Https,
    Tcp,
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

impl HealthCheckProtocol {
    pub fn checks_a_port(self) -> bool {
        self != HealthCheckProtocol::Command
    }

    /// Checks Mesos runs against a port (MESOS_HTTP, MESOS_HTTPS, MESOS_TCP).
    pub fn is_mesos_network_check(self) -> bool {
        matches!(
            self,
            HealthCheckProtocol::MesosHttp
                | HealthCheckProtocol::MesosHttps
                | HealthCheckProtocol::MesosTcp
        )
    }
}

/// A shell command, in Marathon's `{"value": "..."}` wrapper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    #[serde(default = "defaults::readiness_name")]
    pub name: String,
    #[serde(default)]
    pub protocol: ReadinessProtocol,
    #[serde(default = "defaults::health_path")]
    pub path: String,
    #[serde(default = "defaults::readiness_port_name")]
    pub port_name: String,
    #[serde(default = "defaults::readiness_interval_seconds")]
    pub interval_seconds: u32,
    #[serde(default = "defaults::readiness_timeout_seconds")]
    pub timeout_seconds: u32,
    #[serde(default = "defaults::readiness_status_codes")]
    pub http_status_codes_for_ready: Vec<u16>,
    #[serde(default)]
    pub preserve_last_response: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadinessProtocol {
    #[default]
    Http,
    Https,
}

/// What to do with tasks on an unreachable agent: JSON `"disabled"` or
/// `{"inactiveAfterSeconds": N, "expungeAfterSeconds": M}`. Only ever
/// (de)serialized as JSON (inside `AppSpec`'s text), so the string-or-object
/// shape is safe here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// Never replace an unreachable task; wait for it.
    Disabled,
    Enabled {
        /// Replace the task after it has been unreachable this long.
        inactive_after_seconds: u64,
        /// Forget (and kill if it returns) the task after this long.
        expunge_after_seconds: u64,
    },
}

impl Default for UnreachableStrategy {
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

const DISABLED: &str = "disabled";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnreachableEnabled {
    #[serde(default)]
    inactive_after_seconds: u64,
    #[serde(default)]
    expunge_after_seconds: u64,
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            UnreachableStrategy::Disabled => serializer.serialize_str(DISABLED),
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => UnreachableEnabled {
                inactive_after_seconds,
                expunge_after_seconds,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for UnreachableStrategy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnreachableVisitor)
    }
}

struct UnreachableVisitor;

impl<'de> Visitor<'de> for UnreachableVisitor {
    type Value = UnreachableStrategy;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#""disabled" or {"inactiveAfterSeconds", "expungeAfterSeconds"}"#)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<UnreachableStrategy, E> {
        if value == DISABLED {
            Ok(UnreachableStrategy::Disabled)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(value), &self))
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UnreachableStrategy, A::Error> {
        let enabled = UnreachableEnabled::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(UnreachableStrategy::Enabled {
            inactive_after_seconds: enabled.inactive_after_seconds,
            expunge_after_seconds: enabled.expunge_after_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_strategy_round_trips_both_shapes() {
        for text in [
            r#""disabled""#,
            r#"{"inactiveAfterSeconds":60,"expungeAfterSeconds":120}"#,
        ] {
            let strategy: UnreachableStrategy = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&strategy).unwrap(), text);
        }
        let partial: UnreachableStrategy =
            serde_json::from_str(r#"{"inactiveAfterSeconds":5}"#).unwrap();
        assert_eq!(
            partial,
            UnreachableStrategy::Enabled {
                inactive_after_seconds: 5,
                expunge_after_seconds: 0
            }
        );
        for bad in [r#""enabled""#, "3", "[]"] {
            assert!(serde_json::from_str::<UnreachableStrategy>(bad).is_err());
        }
    }
}
