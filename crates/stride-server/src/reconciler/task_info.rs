//! A planned launch as the Mesos `TaskInfo` to send: the command, the
//! environment Marathon gives tasks, the container, discovery, and what it
//! was granted. Shapes follow Marathon 1.9's `TaskBuilder`,
//! `ContainerSerializer`, `EnvironmentHelper` and `PortDiscovery`
//! (`docs/compat.md`, `docs/docker.md`).

use super::plan::Launch;
use crate::health::mesos_health_check;
use std::collections::BTreeMap;
use stride_core::projection::App;
use stride_log::event::app::{self, AppDefinition, DockerNetwork, NetworkMode};
use stride_log::event::json::timestamp;
use stride_mesos::types::{
    AgentId, CommandInfo, CommandUri, ContainerInfo, ContainerType, DiscoveryInfo, DockerImage,
    DockerInfo, DurationInfo, Environment, EnvironmentVariable, Image, ImageType, KillPolicy,
    Label, Labels, MesosInfo, NetworkInfo, Parameter, Port, PortMapping, Ports, TaskId, TaskInfo,
    Visibility, Volume, VolumeMode,
};

pub fn task_info(launch: &Launch, app: &App) -> TaskInfo {
    let definition = &app.definition;
    let intent = &launch.intent;
    let grace = definition.kill_grace_period();
    let host_ports = host_ports(definition, &intent.ports);
    TaskInfo {
        name: task_name(definition),
        task_id: TaskId::new(intent.task.as_str()),
        agent_id: AgentId::new(intent.agent.as_str()),
        resources: launch.resources.clone(),
        command: Some(command(definition, environment(launch, app, &host_ports))),
        container: container(definition, &host_ports, &intent.task),
        health_check: mesos_health_check(definition, &intent.ports),
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo::from_duration(grace)),
        }),
        labels: (!definition.labels.is_empty()).then(|| Labels {
            labels: definition
                .labels
                .iter()
                .map(|(key, value)| Label {
                    key: key.clone(),
                    value: Some(value.clone()),
                })
                .collect(),
        }),
        discovery: Some(DiscoveryInfo {
            visibility: Visibility::Framework,
            name: Some(task_name(definition)),
            ports: Some(Ports {
                ports: discovery_ports(definition, &host_ports),
            }),
        }),
    }
}

/// Marathon names tasks after the app path, reversed: `/prod/web` runs as
/// `web.prod`.
fn task_name(definition: &AppDefinition) -> String {
    let segments: Vec<&str> = definition
        .id
        .as_str()
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .collect();
    segments.join(".")
}

fn command(definition: &AppDefinition, environment: Environment) -> CommandInfo {
    let docker = is_docker(definition);
    let (shell, value, arguments) = match (&definition.cmd, &definition.args) {
        (Some(cmd), _) if !cmd.is_empty() => (None, Some(cmd.clone()), Vec::new()),
        // Docker runs the image's entrypoint with `args`; Mesos runs
        // `args[0]` itself.
        (_, Some(args)) if docker => (Some(false), None, args.clone()),
        (_, Some(args)) => (Some(false), args.first().cloned(), args.clone()),
        (_, None) => (Some(false), None, Vec::new()),
    };
    CommandInfo {
        uris: definition
            .fetch
            .iter()
            .map(|f| CommandUri {
                value: f.uri.clone(),
                executable: Some(f.executable),
                extract: Some(f.extract),
                cache: Some(f.cache),
                output_file: f.dest_path.clone(),
            })
            .collect(),
        environment: Some(environment),
        shell,
        value,
        arguments,
        user: definition.user.clone(),
    }
}

/// What Marathon tells a task about itself, then the app's own `env`.
fn environment(launch: &Launch, app: &App, host_ports: &[Option<u32>]) -> Environment {
    let definition = &app.definition;
    let intent = &launch.intent;
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |name: String, value: String| {
        vars.insert(name, value);
    };
    set("MARATHON_APP_ID".into(), definition.id.to_string());
    set("MARATHON_APP_VERSION".into(), timestamp(app.version));
    set("MESOS_TASK_ID".into(), intent.task.to_string());
    set("HOST".into(), intent.host.clone());
    set(
        "MARATHON_APP_RESOURCE_CPUS".into(),
        definition.cpus.to_string(),
    );
    set(
        "MARATHON_APP_RESOURCE_MEM".into(),
        definition.mem.to_string(),
    );
    set(
        "MARATHON_APP_RESOURCE_DISK".into(),
        definition.disk.to_string(),
    );
    set(
        "MARATHON_APP_RESOURCE_GPUS".into(),
        definition.gpus.to_string(),
    );
    if let Some(image) = image(definition) {
        set("MARATHON_APP_DOCKER_IMAGE".into(), image.to_owned());
    }
    let label_names: Vec<String> = definition.labels.keys().map(|k| env_name(k)).collect();
    set("MARATHON_APP_LABELS".into(), label_names.join(" "));
    for (key, value) in &definition.labels {
        set(
            format!("MARATHON_APP_LABEL_{}", env_name(key)),
            value.clone(),
        );
    }
    for (name, value) in ports_env(&declared_ports(definition), host_ports) {
        set(name, value);
    }
    for (key, value) in &definition.env {
        set(key.clone(), value.clone());
    }
    Environment {
        variables: vars
            .into_iter()
            .map(|(name, value)| EnvironmentVariable {
                name,
                value: Some(value),
            })
            .collect(),
    }
}

/// The ports an app declares, as (name, port): container ports when it
/// maps ports, else its port definitions; 0 is "any".
fn declared_ports(definition: &AppDefinition) -> Vec<(Option<String>, u32)> {
    if definition.uses_port_mappings() {
        let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
        return mappings
            .map(|m| (m.name.clone(), m.container_port))
            .collect();
    }
    let definitions = definition.port_definitions.iter();
    definitions.map(|d| (d.name.clone(), d.port)).collect()
}

/// The host port each declared port got, in declaration order: `None` for
/// a mapping without a `hostPort` (container networks). The planner hands
/// out `assigned` in this same order.
fn host_ports(definition: &AppDefinition, assigned: &[u32]) -> Vec<Option<u32>> {
    let mut assigned = assigned.iter().copied();
    if definition.uses_port_mappings() {
        let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
        return mappings
            .map(|m| m.host_port.and_then(|_| assigned.next()))
            .collect();
    }
    let definitions = definition.port_definitions.iter();
    definitions.map(|_| assigned.next()).collect()
}

/// Marathon's `EnvironmentHelper.portsEnv`: `PORT<i>` is the host port, or
/// the container port where there is none (a random one for 0);
/// `PORT_<declared>` and `PORT_<NAME>` point at the port actually used;
/// `PORT` and `PORTS` list the host ports, then the generated ones.
fn ports_env(
    declared: &[(Option<String>, u32)],
    host_ports: &[Option<u32>],
) -> Vec<(String, String)> {
    if host_ports.is_empty() {
        return Vec::new();
    }
    let mut env = Vec::new();
    let mut generated: BTreeMap<usize, u32> = BTreeMap::new();
    let mut taken: Vec<u32> = declared.iter().map(|(_, p)| *p).collect();
    taken.extend(host_ports.iter().flatten());
    for (index, host_port) in host_ports.iter().enumerate() {
        let value = match (host_port, declared.get(index)) {
            (Some(port), _) => *port,
            (None, Some((_, 0))) => {
                let port = random_container_port(&taken);
                taken.push(port);
                generated.insert(index, port);
                port
            }
            (None, Some((_, port))) => *port,
            (None, None) => continue,
        };
        env.push((format!("PORT{index}"), value.to_string()));
    }
    for (index, ((name, requested), host_port)) in declared.iter().zip(host_ports).enumerate() {
        let used = match (host_port, *requested) {
            (Some(port), _) => *port,
            (None, 0) => generated[&index],
            (None, port) => port,
        };
        let key = if *requested == 0 { used } else { *requested };
        env.push((format!("PORT_{key}"), used.to_string()));
        if let Some(name) = name {
            env.push((format!("PORT_{}", name.to_uppercase()), used.to_string()));
        }
    }
    let all: Vec<String> = host_ports
        .iter()
        .flatten()
        .chain(generated.values())
        .map(u32::to_string)
        .collect();
    if let Some(first) = all.first() {
        env.push(("PORT".to_string(), first.clone()));
    }
    env.push(("PORTS".to_string(), all.join(",")));
    env
}

/// Marathon picks a container port above 1024 that the task does not
/// already name.
fn random_container_port(taken: &[u32]) -> u32 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(1025..=65535);
        if !taken.contains(&port) {
            return port;
        }
    }
}

fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn is_docker(definition: &AppDefinition) -> bool {
    definition
        .container
        .as_ref()
        .is_some_and(|c| c.kind == app::ContainerType::Docker)
}

fn image(definition: &AppDefinition) -> Option<&str> {
    definition
        .container
        .as_ref()?
        .docker
        .as_ref()?
        .image
        .as_deref()
}

fn container(
    definition: &AppDefinition,
    host_ports: &[Option<u32>],
    task: &stride_log::event::TaskId,
) -> Option<ContainerInfo> {
    let container = definition.container.as_ref()?;
    let docker = container.docker.as_ref();
    let volumes = container
        .volumes
        .iter()
        .map(|v| Volume {
            container_path: v.container_path.clone(),
            host_path: v.host_path.clone(),
            mode: match v.mode {
                app::VolumeMode::ReadOnly => VolumeMode::ReadOnly,
                app::VolumeMode::ReadWrite => VolumeMode::ReadWrite,
            },
        })
        .collect();
    let mut info = ContainerInfo {
        kind: ContainerType::Mesos,
        volumes,
        hostname: None,
        docker: None,
        mesos: None,
        network_infos: Vec::new(),
    };
    match container.kind {
        app::ContainerType::Docker => {
            let docker = docker?;
            let (network, user_network) = network_of(definition);
            // Marathon's `boundPortMappings`: each mapping that got a host
            // port, once per protocol; container port 0 means "the same
            // as the host port".
            let port_mappings = container
                .port_mappings
                .iter()
                .zip(host_ports)
                .filter_map(|(m, host)| Some((m, (*host)?)))
                .flat_map(|(m, host_port)| {
                    let container_port = if m.container_port == 0 {
                        host_port
                    } else {
                        m.container_port
                    };
                    m.protocol.split(',').map(move |protocol| PortMapping {
                        host_port,
                        container_port,
                        protocol: Some(protocol.to_owned()),
                    })
                })
                .collect();
            // Marathon labels every Docker container with its task id.
            let task_label = Parameter {
                key: "label".to_owned(),
                value: format!("MESOS_TASK_ID={task}"),
            };
            info.kind = ContainerType::Docker;
            info.network_infos = user_network
                .map(|name| NetworkInfo {
                    ip_addresses: Vec::new(),
                    name: Some(name),
                })
                .into_iter()
                .collect();
            info.docker = Some(DockerInfo {
                image: docker.image.clone().unwrap_or_default(),
                network: Some(docker_network(network)),
                port_mappings,
                privileged: Some(docker.privileged),
                parameters: docker
                    .parameters
                    .iter()
                    .map(|p| Parameter {
                        key: p.key.clone(),
                        value: p.value.clone(),
                    })
                    .chain([task_label])
                    .collect(),
                force_pull_image: Some(docker.force_pull_image),
            });
        }
        app::ContainerType::Mesos => {
            info.mesos = Some(MesosInfo {
                image: docker.and_then(|d| {
                    Some(Image {
                        kind: ImageType::Docker,
                        docker: Some(DockerImage {
                            name: d.image.clone()?,
                        }),
                        cached: Some(!d.force_pull_image),
                    })
                }),
            });
        }
    }
    Some(info)
}

/// The Docker network mode and, for USER, the network's name. Marathon
/// 1.5's `networks` decide (the last entry's mode, the first container
/// network's name); without them the legacy `docker.network` does.
fn network_of(definition: &AppDefinition) -> (DockerNetwork, Option<String>) {
    let Some(last) = definition.networks.last() else {
        return (definition.docker_network(), None);
    };
    let mode = match last.mode {
        NetworkMode::Host => DockerNetwork::Host,
        NetworkMode::ContainerBridge => DockerNetwork::Bridge,
        NetworkMode::Container => DockerNetwork::User,
    };
    let name = definition
        .networks
        .iter()
        .find(|n| n.mode == NetworkMode::Container)
        .and_then(|n| n.name.clone());
    (mode, name)
}

/// Marathon's `PortDiscovery.generateForApp`: one port per protocol; on
/// container networks a mapped port is its host port (`network-scope:
/// host`), an unmapped one its container port on each container network
/// (`network-scope: container`, `network-name`).
fn discovery_ports(definition: &AppDefinition, host_ports: &[Option<u32>]) -> Vec<Port> {
    let port =
        |number: u32, name: &Option<String>, protocol: &str, labels: Vec<(String, String)>| Port {
            number,
            name: name.clone(),
            protocol: Some(protocol.to_owned()),
            labels: (!labels.is_empty()).then(|| Labels {
                labels: labels
                    .into_iter()
                    .map(|(key, value)| Label {
                        key,
                        value: Some(value),
                    })
                    .collect(),
            }),
        };
    let user_labels = |labels: &BTreeMap<String, String>| -> Vec<(String, String)> {
        labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut ports = Vec::new();
    if !definition.uses_port_mappings() {
        for (d, host) in definition.port_definitions.iter().zip(host_ports) {
            let Some(number) = host else { continue };
            for protocol in d.protocol.split(',') {
                ports.push(port(*number, &d.name, protocol, user_labels(&d.labels)));
            }
        }
        return ports;
    }
    let container_networks: Vec<String> = definition
        .networks
        .iter()
        .filter(|n| n.mode == NetworkMode::Container)
        .filter_map(|n| n.name.clone())
        .collect();
    let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
    for (m, host) in mappings.zip(host_ports) {
        for protocol in m.protocol.split(',') {
            match host {
                Some(number) => {
                    let mut labels = user_labels(&m.labels);
                    labels.push(("network-scope".into(), "host".into()));
                    ports.push(port(*number, &m.name, protocol, labels));
                }
                None => {
                    for network in &container_networks {
                        let mut labels = user_labels(&m.labels);
                        labels.push(("network-scope".into(), "container".into()));
                        labels.push(("network-name".into(), network.clone()));
                        ports.push(port(m.container_port, &m.name, protocol, labels));
                    }
                }
            }
        }
    }
    ports
}

fn docker_network(network: DockerNetwork) -> stride_mesos::types::DockerNetwork {
    use stride_mesos::types::DockerNetwork as Wire;
    match network {
        DockerNetwork::Host => Wire::Host,
        DockerNetwork::Bridge => Wire::Bridge,
        DockerNetwork::User => Wire::User,
        DockerNetwork::None => Wire::None,
    }
}

#[cfg(test)]
mod tests {
    use super::ports_env;
    use std::collections::BTreeMap;

    fn env(declared: &[(Option<&str>, u32)], host: &[Option<u32>]) -> BTreeMap<String, String> {
        let declared: Vec<(Option<String>, u32)> = declared
            .iter()
            .map(|(name, port)| (name.map(str::to_owned), *port))
            .collect();
        ports_env(&declared, host).into_iter().collect()
    }

    fn pairs(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Marathon's `EnvironmentHelperTest` cases, whole maps compared.
    #[test]
    fn ports_env_matches_marathons_environment_helper() {
        assert!(env(&[], &[]).is_empty());
        assert_eq!(
            env(&[(None, 0), (None, 0)], &[Some(1001), Some(1002)]),
            pairs(&[
                ("PORT", "1001"),
                ("PORT0", "1001"),
                ("PORT1", "1002"),
                ("PORTS", "1001,1002"),
                ("PORT_1001", "1001"),
                ("PORT_1002", "1002"),
            ])
        );
        assert_eq!(
            env(
                &[(Some("http"), 80), (None, 8080), (Some("https"), 443)],
                &[Some(1001), Some(1002), Some(1003)]
            ),
            pairs(&[
                ("PORT", "1001"),
                ("PORT0", "1001"),
                ("PORT1", "1002"),
                ("PORT2", "1003"),
                ("PORTS", "1001,1002,1003"),
                ("PORT_80", "1001"),
                ("PORT_8080", "1002"),
                ("PORT_443", "1003"),
                ("PORT_HTTP", "1001"),
                ("PORT_HTTPS", "1003"),
            ])
        );
    }

    /// On a container network a mapping without a host port is reached on
    /// its container port; 0 there gets a random port above 1024.
    #[test]
    fn container_only_ports_use_the_container_port() {
        let got = env(
            &[(Some("web"), 80), (Some("admin"), 9000)],
            &[Some(31000), None],
        );
        assert_eq!(
            got,
            pairs(&[
                ("PORT", "31000"),
                ("PORT0", "31000"),
                ("PORT1", "9000"),
                ("PORTS", "31000"),
                ("PORT_80", "31000"),
                ("PORT_9000", "9000"),
                ("PORT_WEB", "31000"),
                ("PORT_ADMIN", "9000"),
            ])
        );
        let random = env(&[(None, 0)], &[None]);
        let port: u32 = random["PORT0"].parse().unwrap();
        assert!(port > 1024);
        assert_eq!(random[&format!("PORT_{port}")], port.to_string());
        assert_eq!(random["PORTS"], port.to_string());
    }
}
