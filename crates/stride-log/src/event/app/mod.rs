//! The app definition users post, in Marathon's `/v2/apps` JSON shape.
//!
//! Events store a definition as its normalized JSON text (see `AppSpec`), so
//! a field added later rides on `#[serde(default)]` and needs no migration.
//! Nested types therefore only ever meet JSON, which lets `Constraint` and
//! `UnreachableStrategy` keep Marathon's array and string-or-object shapes.

mod constraint;
mod container;
mod defaults;
pub mod legacy;
mod lifecycle;
mod shown;
mod spec;

pub use constraint::{Constraint, ConstraintOperator};
pub use container::{
    Container, ContainerType, Docker, DockerNetwork, DockerParameter, Network, NetworkMode,
    PortMapping, Volume, VolumeMode,
};
pub use lifecycle::{
    Command as ShellCommand, FetchUri, HealthCheck, HealthCheckProtocol, IpProtocol, KillSelection,
    ReadinessCheck, ReadinessProtocol, UnreachableStrategy, UpgradeStrategy,
};
pub use spec::AppSpec;

use super::ids::AppId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An app definition in Marathon's canonical (1.5+) form once it has been
/// through `canonical()`: `networks` is never empty, port mappings live in
/// `container.portMappings`, and `container.docker.network` is gone. Its
/// JSON is Marathon's `App` as Marathon writes one (see `shown.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: AppId,
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default = "defaults::instances")]
    pub instances: u32,
    #[serde(default = "defaults::cpus")]
    pub cpus: f64,
    #[serde(default = "defaults::mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Marathon 1.5's networking. Empty only before `canonical()`, where
    /// the legacy `container.docker.network` (or HOST) decides.
    #[serde(default)]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub port_definitions: Vec<PortDefinition>,
    #[serde(default)]
    pub require_ports: bool,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub fetch: Vec<FetchUri>,
    #[serde(default = "defaults::backoff_seconds")]
    pub backoff_seconds: f64,
    #[serde(default = "defaults::backoff_factor")]
    pub backoff_factor: f64,
    #[serde(default = "defaults::max_launch_delay_seconds")]
    pub max_launch_delay_seconds: f64,
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
    /// Unset means Mesos's default (3 s).
    #[serde(default)]
    pub task_kill_grace_period_seconds: Option<f64>,
    #[serde(default)]
    pub kill_selection: KillSelection,
    #[serde(default)]
    pub unreachable_strategy: UnreachableStrategy,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    #[serde(default)]
    pub readiness_checks: Vec<ReadinessCheck>,
    #[serde(default)]
    pub dependencies: Vec<AppId>,
    /// Marathon's executor field; only the command executor (`""` or
    /// `//cmd`) runs tasks here.
    #[serde(default)]
    pub executor: String,
    /// The Mesos role the app's tasks run under: Stride's framework role.
    #[serde(default = "defaults::role")]
    pub role: String,
    #[serde(default)]
    pub accepted_resource_roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// 0 asks Stride to assign a service port.
    #[serde(default)]
    pub port: u32,
    #[serde(default = "defaults::protocol")]
    pub protocol: String,
    /// Stored as format 1 wrote it; `shown.rs` writes Marathon's shape.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl PortDefinition {
    /// The port a definition gets when it declares none: Marathon's
    /// `DefaultPortDefinitions`.
    pub fn default_port() -> PortDefinition {
        PortDefinition {
            port: 0,
            protocol: defaults::protocol(),
            name: Some("default".to_owned()),
            labels: BTreeMap::new(),
        }
    }
}

/// Where a service port is declared, so errors and assignment can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePortSlot {
    PortDefinition(usize),
    PortMapping(usize),
}

impl ServicePortSlot {
    /// The JSON pointer of the slot's service port.
    pub fn path(self) -> String {
        match self {
            ServicePortSlot::PortDefinition(i) => format!("/portDefinitions/{i}/port"),
            ServicePortSlot::PortMapping(i) => format!("/container/portMappings/{i}/servicePort"),
        }
    }
}

impl AppDefinition {
    /// How long a task may take to stop after SIGTERM: the definition's
    /// `taskKillGracePeriodSeconds`, else Mesos's default.
    pub fn kill_grace_period(&self) -> std::time::Duration {
        let seconds = self
            .task_kill_grace_period_seconds
            .unwrap_or_else(defaults::task_kill_grace_period_seconds);
        std::time::Duration::from_secs_f64(seconds.max(0.0))
    }

    /// True when the app's tasks get their own network namespace, so service
    /// ports come from `container.portMappings` instead of `portDefinitions`.
    pub fn uses_port_mappings(&self) -> bool {
        self.docker_network() != DockerNetwork::Host
    }

    /// The networking mode in Docker's words, from `networks` (or, before
    /// `canonical()`, the legacy `container.docker.network`).
    pub fn docker_network(&self) -> DockerNetwork {
        if self.networks.is_empty() {
            return self
                .container
                .as_ref()
                .and_then(|c| c.docker.as_ref()?.network)
                .unwrap_or(DockerNetwork::Host);
        }
        if self
            .networks
            .iter()
            .any(|n| n.mode == NetworkMode::Container)
        {
            DockerNetwork::User
        } else if self
            .networks
            .iter()
            .any(|n| n.mode == NetworkMode::ContainerBridge)
        {
            DockerNetwork::Bridge
        } else {
            DockerNetwork::Host
        }
    }

    /// Marathon's canonical form (`AppNormalization` in Marathon): the
    /// legacy docker network becomes `networks` (HOST when none is given);
    /// port mappings apply only off the host network and port definitions
    /// only on it; BRIDGE port mappings without a host port get one (0,
    /// "any"); a port check names a port index when the app has ports.
    /// Lenient, because it also reads definitions stored by older Stride
    /// versions; the API refuses contradictory input before this.
    pub fn canonical(mut self) -> AppDefinition {
        if self.networks.is_empty() {
            self.networks = vec![Network::of(self.docker_network())];
        }
        if let Some(docker) = self.container.as_mut().and_then(|c| c.docker.as_mut()) {
            docker.network = None;
        }
        let network = self.docker_network();
        if network == DockerNetwork::Host {
            if let Some(container) = &mut self.container {
                container.port_mappings.clear();
            }
        } else {
            self.port_definitions.clear();
            self.require_ports = false;
        }
        if network == DockerNetwork::Bridge {
            for mapping in self.container.iter_mut().flat_map(|c| &mut c.port_mappings) {
                mapping.host_port.get_or_insert(0);
            }
        }
        let has_ports = !self.service_ports().is_empty();
        for check in &mut self.health_checks {
            if has_ports && check.protocol.checks_a_port() && check.port.is_none() {
                check.port_index.get_or_insert(0);
            }
            check.keep_only_its_fields();
        }
        self
    }

    /// The service ports the app declares, with where each is declared; 0 is
    /// "assign one".
    pub fn service_ports(&self) -> Vec<(ServicePortSlot, u32)> {
        if self.uses_port_mappings() {
            self.container
                .iter()
                .flat_map(|c| c.port_mappings.iter().enumerate())
                .map(|(i, m)| (ServicePortSlot::PortMapping(i), m.service_port))
                .collect()
        } else {
            self.port_definitions
                .iter()
                .enumerate()
                .map(|(i, d)| (ServicePortSlot::PortDefinition(i), d.port))
                .collect()
        }
    }

    /// Sets the service port declared at `slot`; a slot the definition does
    /// not have is left alone.
    pub fn set_service_port(&mut self, slot: ServicePortSlot, port: u32) {
        let target = match slot {
            ServicePortSlot::PortDefinition(i) => {
                self.port_definitions.get_mut(i).map(|d| &mut d.port)
            }
            ServicePortSlot::PortMapping(i) => self
                .container
                .as_mut()
                .and_then(|c| c.port_mappings.get_mut(i))
                .map(|m| &mut m.service_port),
        };
        if let Some(target) = target {
            *target = port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AppDefinition, AppSpec};
    use serde_json::json;

    /// A definition using every field survives the JSON text that events
    /// store, and bincode around it.
    #[test]
    fn a_full_definition_round_trips_through_storage() {
        let definition: AppDefinition = serde_json::from_value(json!({
            "id": "/prod/web", "args": ["serve"], "user": "nobody", "instances": 2,
            "cpus": 0.5, "mem": 64, "disk": 10, "gpus": 1,
            "env": {"A": "1"}, "labels": {"team": "web"},
            "constraints": [["hostname", "UNIQUE"], ["rack", "MAX_PER", "2"]],
            "requirePorts": true,
            "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
                "forcePullImage": true, "parameters": [{"key": "ulimit", "value": "nofile=1024"}]},
                "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10000, "name": "http"}],
                "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RO"}]},
            "fetch": [{"uri": "https://example.com/a.tgz", "cache": true}],
            "backoffSeconds": 2, "backoffFactor": 1.5, "maxLaunchDelaySeconds": 60,
            "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
            "taskKillGracePeriodSeconds": 10, "killSelection": "OLDEST_FIRST",
            "unreachableStrategy": {"inactiveAfterSeconds": 30, "expungeAfterSeconds": 60},
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0}],
            "readinessChecks": [{"portName": "http", "httpStatusCodesForReady": [200, 204]}],
            "dependencies": ["/prod/db"]
        }))
        .unwrap();
        let spec = AppSpec::new(definition);
        let bytes = bincode::serialize(&spec).unwrap();
        let back: AppSpec = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, spec);
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<AppSpec>(&text).unwrap(), spec);
    }
}
