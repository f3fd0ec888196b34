//! `container`: the Mesos or Docker containerizer, networking and volumes.

use super::defaults;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type", default)]
    pub kind: ContainerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    /// Used with BRIDGE or USER networking instead of `portDefinitions`;
    /// Marathon writes none with host networking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

impl Container {
    /// An empty Mesos container.
    pub fn mesos() -> Container {
        Container {
            kind: ContainerType::Mesos,
            docker: None,
            port_mappings: Vec::new(),
            volumes: Vec::new(),
        }
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
    /// Legacy (Marathon < 1.5): read from older definitions and turned into
    /// the app's `networks` by `AppDefinition::canonical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    /// 0 asks Stride to assign a service port.
    #[serde(default)]
    pub service_port: u32,
    #[serde(default = "defaults::protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl PortMapping {
    /// The mapping a container off the host network gets when it declares
    /// none: Marathon's `DefaultPortMappings`.
    pub fn default_mapping() -> PortMapping {
        PortMapping {
            container_port: 0,
            host_port: None,
            service_port: 0,
            protocol: defaults::protocol(),
            name: Some("default".to_owned()),
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Network {
    /// The network a legacy `container.docker.network` stands for, as
    /// Marathon translates it (`NetworkTranslation`).
    pub fn of(docker: DockerNetwork) -> Network {
        let mode = match docker {
            DockerNetwork::Bridge => NetworkMode::ContainerBridge,
            DockerNetwork::User => NetworkMode::Container,
            DockerNetwork::Host | DockerNetwork::None => NetworkMode::Host,
        };
        Network {
            mode,
            name: None,
            labels: BTreeMap::new(),
        }
    }
}

/// Marathon's RAML makes `container` the mode a network has when none is
/// given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    #[serde(rename = "host")]
    Host,
    #[serde(rename = "container/bridge")]
    ContainerBridge,
    #[default]
    #[serde(rename = "container")]
    Container,
}
