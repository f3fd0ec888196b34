//! A planned launch as the Mesos `TaskInfo` to send: the command, the
//! environment Marathon gives tasks, the container, and what it was granted.

use super::plan::Launch;
use crate::event::app::{self, AppDefinition, DockerNetwork};
use crate::event::json::timestamp;
use crate::health::mesos_health_check;
use crate::mesos::types::{
    AgentId, CommandInfo, CommandUri, ContainerInfo, ContainerType, DockerImage, DockerInfo,
    DurationInfo, Environment, EnvironmentVariable, Image, ImageType, KillPolicy, Label, Labels,
    MesosInfo, Parameter, PortMapping, TaskId, TaskInfo, Volume, VolumeMode,
};
use crate::projection::App;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn task_info(launch: &Launch, app: &App) -> TaskInfo {
    let definition = &app.definition;
    let intent = &launch.intent;
    let grace = Duration::from_secs_f64(definition.task_kill_grace_period_seconds.max(0.0));
    TaskInfo {
        name: task_name(definition),
        task_id: TaskId::new(intent.task.as_str()),
        agent_id: AgentId::new(intent.agent.as_str()),
        resources: launch.resources.clone(),
        command: Some(command(definition, environment(launch, app))),
        container: container(definition, &intent.ports),
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
        (Some(cmd), _) => (None, Some(cmd.clone()), Vec::new()),
        // Docker runs the image's entrypoint with `args`; Mesos runs
        // `args[0]` itself.
        (None, Some(args)) if docker => (Some(false), None, args.clone()),
        (None, Some(args)) => (Some(false), args.first().cloned(), args.clone()),
        (None, None) => (Some(false), None, Vec::new()),
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
fn environment(launch: &Launch, app: &App) -> Environment {
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
    let ports: Vec<String> = intent.ports.iter().map(u32::to_string).collect();
    if !ports.is_empty() {
        set("PORTS".into(), ports.join(","));
        set("PORT".into(), ports[0].clone());
    }
    for (i, (port, name)) in intent.ports.iter().zip(port_names(definition)).enumerate() {
        set(format!("PORT{i}"), port.to_string());
        if let Some(name) = name {
            set(format!("PORT_{}", env_name(&name)), port.to_string());
        }
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

/// The names of the ports a task gets, in the order it gets them.
fn port_names(definition: &AppDefinition) -> Vec<Option<String>> {
    if definition.uses_port_mappings() {
        let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
        return mappings
            .filter(|m| m.host_port.is_some())
            .map(|m| m.name.clone())
            .collect();
    }
    let definitions = definition.port_definitions.iter();
    definitions.map(|d| d.name.clone()).collect()
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

fn container(definition: &AppDefinition, host_ports: &[u32]) -> Option<ContainerInfo> {
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
            let mut assigned = host_ports.iter();
            let port_mappings = if container.docker_network() == DockerNetwork::Bridge {
                container
                    .port_mappings
                    .iter()
                    .filter(|m| m.host_port.is_some())
                    .filter_map(|m| {
                        Some(PortMapping {
                            host_port: *assigned.next()?,
                            container_port: m.container_port,
                            protocol: Some(m.protocol.clone()),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            info.kind = ContainerType::Docker;
            info.docker = Some(DockerInfo {
                image: docker.image.clone().unwrap_or_default(),
                network: Some(docker_network(container.docker_network())),
                port_mappings,
                privileged: Some(docker.privileged),
                parameters: docker
                    .parameters
                    .iter()
                    .map(|p| Parameter {
                        key: p.key.clone(),
                        value: p.value.clone(),
                    })
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

fn docker_network(network: DockerNetwork) -> crate::mesos::types::DockerNetwork {
    use crate::mesos::types::DockerNetwork as Wire;
    match network {
        DockerNetwork::Host => Wire::Host,
        DockerNetwork::Bridge => Wire::Bridge,
        DockerNetwork::User => Wire::User,
        DockerNetwork::None => Wire::None,
    }
}
