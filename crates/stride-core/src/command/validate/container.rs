//! `container`: image, networking, port mappings and volumes.

use super::{MAX_PORT, Problems, valid_protocol};
use crate::event::app::{AppDefinition, ContainerType, NetworkMode};
use std::collections::HashSet;

/// Marathon's `NetworkValidation.ramlNetworksValidator`: one host network,
/// one bridge network, or one or more named container networks.
pub(super) fn check_networks(definition: &AppDefinition, problems: &mut Problems) {
    let networks = &definition.networks;
    let count = |mode| networks.iter().filter(|n| n.mode == mode).count();
    let (host, bridge, container) = (
        count(NetworkMode::Host),
        count(NetworkMode::ContainerBridge),
        count(NetworkMode::Container),
    );
    let single = |n: usize, others: usize| n == 1 && others == 0;
    if !(single(host, bridge + container)
        || single(bridge, host + container)
        || (container > 0 && host + bridge == 0))
    {
        problems.add(
            "/networks",
            "May specify a single host network, single bridge network, or else 1-to-n container networks",
        );
    }
    let mut names = HashSet::new();
    for (i, network) in networks.iter().enumerate() {
        let path = |field: &str| format!("/networks/{i}/{field}");
        match network.mode {
            NetworkMode::Host if network.name.is_some() || !network.labels.is_empty() => {
                problems.add(path("mode"), "Host networks may not have names or labels")
            }
            NetworkMode::ContainerBridge if network.name.is_some() => {
                problems.add(path("name"), "Bridge networks may not have names")
            }
            NetworkMode::Container if network.name.as_deref().is_none_or(str::is_empty) => problems
                .add(
                    path("name"),
                    "Network name must be specified when container network is selected.",
                ),
            NetworkMode::Container if !names.insert(network.name.as_deref()) => {
                problems.add(path("name"), "Duplicate networks are not allowed")
            }
            _ => {}
        }
    }
    let docker = definition
        .container
        .as_ref()
        .is_some_and(|c| c.kind == ContainerType::Docker);
    if docker && container > 1 {
        problems.add(
            "/networks",
            "may only specify a single container network when using the Docker container engine",
        );
    }
}

pub(super) fn check_container(definition: &AppDefinition, problems: &mut Problems) {
    let Some(container) = &definition.container else {
        return;
    };
    if definition.gpus > 0 && container.kind == ContainerType::Docker {
        problems.add(
            "/gpus",
            "GPU resources only work with the Mesos containerizer",
        );
    }
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
    let mut service_ports = HashSet::new();
    let mut names = HashSet::new();
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
        if let Some(name) = &mapping.name {
            if !names.insert(name.as_str()) {
                problems.add(path("name"), "Port names must be unique.");
            }
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
