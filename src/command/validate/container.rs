//! `container`: image, networking, port mappings and volumes.

use super::{MAX_PORT, Problems, valid_protocol};
use crate::event::app::{AppDefinition, ContainerType, Network, NetworkMode};
use std::collections::HashSet;

/// `host` and `container/bridge` each stand alone; only virtual
/// (`container`) networks can be joined several at once.
pub(super) fn check_networks(networks: &[Network], problems: &mut Problems) {
    if networks.len() < 2 {
        return;
    }
    for (i, network) in networks.iter().enumerate() {
        if network.mode != NetworkMode::Container {
            problems.add(
                format!("/networks/{i}/mode"),
                "host and container/bridge networking cannot be combined with other networks",
            );
        }
    }
}

pub(super) fn check_container(definition: &AppDefinition, problems: &mut Problems) {
    let Some(container) = &definition.container else {
        return;
    };
    match (&container.docker, container.kind) {
        (None, ContainerType::Docker) => {
            problems.add("/container/docker", "a DOCKER container needs docker.image")
        }
        (Some(docker), _) => {
            if docker.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                problems.add("/container/docker/image", "must not be empty");
            }
            for (i, parameter) in docker.parameters.iter().enumerate() {
                if parameter.key.trim().is_empty() {
                    problems.add(
                        format!("/container/docker/parameters/{i}/key"),
                        "must not be empty",
                    );
                }
            }
        }
        (None, ContainerType::Mesos) => {}
    }
    if !definition.uses_port_mappings() && !container.port_mappings.is_empty() {
        problems.add(
            "/container/portMappings",
            "portMappings need bridge or container networking; host networking uses portDefinitions",
        );
    }
    let mut service_ports = HashSet::new();
    for (i, mapping) in container.port_mappings.iter().enumerate() {
        let path = |field: &str| format!("/container/portMappings/{i}/{field}");
        for (field, port) in [
            ("containerPort", Some(mapping.container_port)),
            ("hostPort", mapping.host_port),
            ("servicePort", Some(mapping.service_port)),
        ] {
            if let Some(port) = port.filter(|p| *p > MAX_PORT) {
                problems.add(path(field), format!("got {port}, expected 0 to {MAX_PORT}"));
            }
        }
        let service_port = mapping.service_port;
        if service_port != 0 && service_port <= MAX_PORT && !service_ports.insert(service_port) {
            problems.add(
                path("servicePort"),
                format!("service port {service_port} is declared twice"),
            );
        }
        if !valid_protocol(&mapping.protocol) {
            problems.add(path("protocol"), "must be tcp, udp or udp,tcp");
        }
    }
    for (i, volume) in container.volumes.iter().enumerate() {
        if volume.container_path.trim().is_empty() {
            problems.add(
                format!("/container/volumes/{i}/containerPath"),
                "must not be empty",
            );
        }
    }
}
