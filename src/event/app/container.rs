//! `container`: the Mesos or Docker containerizer, networking and volumes.

use super::defaults;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type", default)]
    pub kind: ContainerType,
    #[serde(default)]
    pub docker: Option<Docker>,
    /// Used with BRIDGE or USER networking instead of `portDefinitions`.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

impl Container {
    pub fn docker_network(&self) -> DockerNetwork {
        self.docker
            .as_ref()
            .and_then(|d| d.network)
            .unwrap_or(DockerNetwork::Host)
    }
}

/// Marathon's default containerizer is Docker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerType {
    #[default]
    Docker,
    Mesos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    /// Optional in the shape so that a missing image is reported by
    /// validation, along with every other problem.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub network: Option<DockerNetwork>,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub parameters: Vec<DockerParameter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DockerNetwork {
    Host,
    Bridge,
    User,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default)]
    pub container_port: u32,
    /// 0 asks for a random host port; absent means none (USER networks).
    #[serde(default)]
    pub host_port: Option<u32>,
    /// 0 asks Stride to assign a service port.
    #[serde(default)]
    pub service_port: u32,
    #[serde(default = "defaults::protocol")]
    pub protocol: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub container_path: String,
    #[serde(default)]
    pub host_path: Option<String>,
    #[serde(default)]
    pub mode: VolumeMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeMode {
    #[serde(rename = "RO")]
    ReadOnly,
    #[default]
    #[serde(rename = "RW")]
    ReadWrite,
}

/// One network a task joins, in Marathon 1.5's `networks` API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    #[serde(default)]
    pub mode: NetworkMode,
    /// The virtual network's name, for `container` mode.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    #[default]
    #[serde(rename = "host")]
    Host,
    #[serde(rename = "container/bridge")]
    ContainerBridge,
    #[serde(rename = "container")]
    Container,
}
