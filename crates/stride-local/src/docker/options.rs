//! A Docker TaskInfo as the container to create, following Mesos 1.11's
//! `Docker::RunOptions::create` (`src/docker/docker.cpp`) rule for rule:
//! resources as cpu shares and a memory limit, the command's environment
//! plus `MESOS_SANDBOX`, `MESOS_CONTAINER_NAME` and `MESOS_ALLOCATION_ROLE`,
//! volumes relative to the sandbox, the sandbox itself at
//! `/mnt/mesos/sandbox`, the network mode, port mappings checked against
//! the task's port resources, `shell` as a `/bin/sh -c` entrypoint.
//! Mesos appends each `parameter` to `docker run` as `--key=value`; the
//! engine API has no command line, so `parameters.rs` maps each flag to
//! its API field. Errors are Mesos' texts.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use super::parameters::apply_parameter;
use stride_mesos::types::{ContainerType, DockerInfo, DockerNetwork, TaskInfo, VolumeMode};

/// Where the sandbox appears inside the container (`--docker_mesos_sandbox`
/// is not a flag here; this is the agent's default `--sandbox_directory`).
pub(crate) const MAPPED_SANDBOX: &str = "/mnt/mesos/sandbox";
/// `CPU_SHARES_PER_CPU` and `MIN_CPU_SHARES` of Mesos' cgroups isolator.
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const MIN_CPU_SHARES: i64 = 2;
/// `MIN_MEMORY`: 32 MB.
const MIN_MEMORY_BYTES: i64 = 32 * 1024 * 1024;

/// What to ask the engine for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunOptions {
    /// As written in the TaskInfo (for messages).
    pub(crate) image: String,
    /// What the engine is asked for: `:latest` added when no tag is given.
    pub(crate) reference: String,
    pub(crate) force_pull: bool,
    pub(crate) body: ContainerCreateBody,
}

/// The Docker part of a TaskInfo, or `None` for other containerizers.
pub(crate) fn docker_info(task: &TaskInfo) -> Option<&DockerInfo> {
    let container = task.container.as_ref()?;
    (container.kind == ContainerType::Docker)
        .then_some(container.docker.as_ref())
        .flatten()
}

/// Mesos pulls `image:latest` when no tag is given; a registry host's port
/// (`localhost:5000/app`) is not a tag, nor is anything before the last `/`.
pub(crate) fn image_reference(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

pub(crate) fn run_options(
    task: &TaskInfo,
    name: &str,
    sandbox: &Path,
    labels: HashMap<String, String>,
) -> Result<RunOptions, String> {
    let container = task
        .container
        .as_ref()
        .ok_or("No container info found in task info")?;
    let docker = docker_info(task).ok_or("No docker info found in container info")?;
    let mut host = HostConfig {
        privileged: Some(docker.privileged.unwrap_or(false)),
        ..HostConfig::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(image_reference(&docker.image)),
        labels: Some(labels),
        ..ContainerCreateBody::default()
    };
    resources(task, &mut host);
    body.env = Some(environment(task, name));
    host.binds = Some(volumes(task, sandbox)?);
    let network = network_mode(task)?;
    if let Some(hostname) = &container.hostname {
        if network == "host" {
            return Err("Unable to set hostname with host network mode".to_string());
        }
        body.hostname = Some(hostname.clone());
    }
    port_mappings(task, docker, &network, &mut body, &mut host)?;
    host.network_mode = Some(network);
    for parameter in &docker.parameters {
        apply_parameter(&parameter.key, &parameter.value, &mut body, &mut host)?;
    }
    command(task, &mut body)?;
    body.host_config = Some(host);
    Ok(RunOptions {
        image: docker.image.clone(),
        reference: image_reference(&docker.image),
        force_pull: docker.force_pull_image.unwrap_or(false),
        body,
    })
}

fn scalar(task: &TaskInfo, name: &str) -> Option<f64> {
    let values = task
        .resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.map(|s| s.value));
    values.reduce(|a, b| a + b)
}

fn resources(task: &TaskInfo, host: &mut HostConfig) {
    if let Some(cpus) = scalar(task, "cpus") {
        host.cpu_shares = Some(((CPU_SHARES_PER_CPU * cpus) as i64).max(MIN_CPU_SHARES));
    }
    if let Some(mem) = scalar(task, "mem") {
        let bytes = (mem * 1024.0 * 1024.0) as i64;
        host.memory = Some(bytes.max(MIN_MEMORY_BYTES));
    }
}

/// The command's variables, then Mesos' own, sorted by name (Mesos keeps
/// them in a `std::map`).
fn environment(task: &TaskInfo, name: &str) -> Vec<String> {
    let mut env: BTreeMap<String, String> = task
        .command
        .iter()
        .filter_map(|c| c.environment.as_ref())
        .flat_map(|e| &e.variables)
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect();
    env.insert("MESOS_SANDBOX".into(), MAPPED_SANDBOX.into());
    env.insert("MESOS_CONTAINER_NAME".into(), name.into());
    if let Some(first) = task.resources.first() {
        let role = first
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.clone())
            .or_else(|| first.role.clone())
            .unwrap_or_else(|| "*".to_string());
        env.insert("MESOS_ALLOCATION_ROLE".into(), role);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn volumes(task: &TaskInfo, sandbox: &Path) -> Result<Vec<String>, String> {
    let mut binds = Vec::new();
    let volumes = task.container.iter().flat_map(|c| &c.volumes);
    for volume in volumes {
        let inside = if volume.container_path.starts_with('/') {
            volume.container_path.clone()
        } else {
            format!("{MAPPED_SANDBOX}/{}", volume.container_path)
        };
        let Some(host_path) = &volume.host_path else {
            return Err("Host path or volume source is required".to_string());
        };
        let host_absolute = host_path.starts_with('/');
        if !host_absolute && !volume.container_path.starts_with('/') {
            return Err(format!(
                "Both host_path '{host_path}' and container_path '{}' of a volume are relative",
                volume.container_path
            ));
        }
        let source = if host_absolute {
            host_path.clone()
        } else {
            sandbox.join(host_path).display().to_string()
        };
        let mode = match &volume.mode {
            VolumeMode::ReadWrite => "rw",
            VolumeMode::ReadOnly => "ro",
            VolumeMode::Other(_) => return Err("Unsupported volume mode".to_string()),
        };
        binds.push(format!("{source}:{inside}:{mode}"));
    }
    binds.push(format!("{}:{MAPPED_SANDBOX}", sandbox.display()));
    Ok(binds)
}

fn network_mode(task: &TaskInfo) -> Result<String, String> {
    let container = task.container.as_ref();
    let network = docker_info(task).and_then(|d| d.network.clone());
    Ok(match network.unwrap_or(DockerNetwork::Host) {
        DockerNetwork::Host => "host".to_string(),
        DockerNetwork::Bridge => "bridge".to_string(),
        DockerNetwork::None => "none".to_string(),
        DockerNetwork::User => {
            let infos = container.map_or(&[][..], |c| &c.network_infos[..]);
            match infos {
                [] => return Err("No network info found in container info".to_string()),
                [info] => info
                    .name
                    .clone()
                    .ok_or("No network name found in network info")?,
                _ => return Err("Only a single network can be defined in Docker run".to_string()),
            }
        }
        DockerNetwork::Other(mode) => return Err(format!("Unsupported Network mode: {mode}")),
    })
}

fn port_mappings(
    task: &TaskInfo,
    docker: &DockerInfo,
    network: &str,
    body: &mut ContainerCreateBody,
    host: &mut HostConfig,
) -> Result<(), String> {
    if docker.port_mappings.is_empty() {
        return Ok(());
    }
    if network == "host" || network == "none" {
        return Err(
            "Port mappings are only supported for bridge and user-defined networks".to_string(),
        );
    }
    let ranges: Vec<(u64, u64)> = task
        .resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| r.range.iter().map(|v| (v.begin, v.end)))
        .collect();
    if ranges.is_empty() {
        return Err("Port mappings require port resources".to_string());
    }
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed = Vec::new();
    for mapping in &docker.port_mappings {
        let port = u64::from(mapping.host_port);
        if !ranges
            .iter()
            .any(|&(begin, end)| begin <= port && port <= end)
        {
            return Err(format!("Port [{port}] not included in resources"));
        }
        let protocol = mapping.protocol.as_deref().unwrap_or("tcp").to_lowercase();
        let key = format!("{}/{protocol}", mapping.container_port);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: None,
                host_port: Some(mapping.host_port.to_string()),
            });
    }
    body.exposed_ports = Some(exposed);
    host.port_bindings = Some(bindings);
    Ok(())
}

/// `shell` (Mesos' default) runs `value` under `/bin/sh -c` in place of the
/// image's entrypoint (MESOS-1770); otherwise `value` and `arguments` are
/// the arguments to the image's entrypoint, or its default command when
/// there are none.
fn command(task: &TaskInfo, body: &mut ContainerCreateBody) -> Result<(), String> {
    let command = task.command.clone().unwrap_or_default();
    if command.shell.unwrap_or(true) {
        let value = command
            .value
            .ok_or("Shell specified but no command value provided")?;
        body.entrypoint = Some(vec!["/bin/sh".to_string()]);
        body.cmd = Some(vec!["-c".to_string(), value]);
        return Ok(());
    }
    let arguments: Vec<String> = command.value.into_iter().chain(command.arguments).collect();
    if !arguments.is_empty() {
        body.cmd = Some(arguments);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stride_mesos::types::{
        AgentId, CommandInfo, ContainerInfo, Environment, EnvironmentVariable, NetworkInfo,
        Parameter, PortMapping, Resource, TaskId, ValueRange, Volume,
    };

    fn task(docker: DockerInfo, command: CommandInfo) -> TaskInfo {
        TaskInfo {
            name: "web".into(),
            task_id: TaskId::new("web.1"),
            agent_id: AgentId::new("S0"),
            resources: vec![
                Resource::scalar("cpus", 0.5),
                Resource::scalar("mem", 16.0),
                Resource::ranges(
                    "ports",
                    vec![ValueRange {
                        begin: 31000,
                        end: 31001,
                    }],
                ),
            ],
            command: Some(command),
            container: Some(ContainerInfo {
                kind: ContainerType::Docker,
                volumes: Vec::new(),
                hostname: None,
                docker: Some(docker),
                mesos: None,
                network_infos: Vec::new(),
            }),
            health_check: None,
            kill_policy: None,
            labels: None,
            discovery: None,
        }
    }

    fn docker(network: DockerNetwork) -> DockerInfo {
        DockerInfo {
            image: "nginx".into(),
            network: Some(network),
            port_mappings: Vec::new(),
            privileged: Some(false),
            parameters: Vec::new(),
            force_pull_image: Some(false),
        }
    }

    fn shell(value: &str) -> CommandInfo {
        CommandInfo {
            value: Some(value.into()),
            environment: Some(Environment {
                variables: vec![EnvironmentVariable {
                    name: "PORT0".into(),
                    value: Some("31000".into()),
                }],
            }),
            ..CommandInfo::default()
        }
    }

    fn options(task: &TaskInfo) -> Result<RunOptions, String> {
        run_options(task, "mesos-c1", Path::new("/sb"), HashMap::new())
    }

    #[test]
    fn images_without_a_tag_are_asked_for_as_latest() {
        for (image, reference) in [
            ("nginx", "nginx:latest"),
            ("nginx:1.25", "nginx:1.25"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost:5000/app:v2", "localhost:5000/app:v2"),
            ("app@sha256:abc", "app@sha256:abc"),
        ] {
            assert_eq!(image_reference(image), reference);
        }
    }

    #[test]
    fn a_shell_command_on_bridge_networking_maps_ports_and_the_sandbox() {
        let mut docker = docker(DockerNetwork::Bridge);
        docker.port_mappings = vec![
            PortMapping {
                host_port: 31000,
                container_port: 80,
                protocol: Some("TCP".into()),
            },
            PortMapping {
                host_port: 31001,
                container_port: 53,
                protocol: Some("udp".into()),
            },
        ];
        let run = options(&task(docker, shell("httpd -f -p 80"))).unwrap();
        let body = &run.body;
        assert_eq!(run.reference, "nginx:latest");
        assert_eq!(
            body.entrypoint.as_deref(),
            Some(&["/bin/sh".to_string()][..])
        );
        assert_eq!(
            body.cmd.as_deref(),
            Some(&["-c".to_string(), "httpd -f -p 80".to_string()][..])
        );
        let env = body.env.clone().unwrap();
        assert_eq!(
            env,
            [
                "MESOS_ALLOCATION_ROLE=*",
                "MESOS_CONTAINER_NAME=mesos-c1",
                "MESOS_SANDBOX=/mnt/mesos/sandbox",
                "PORT0=31000"
            ]
        );
        let host = body.host_config.clone().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(
            host.memory,
            Some(MIN_MEMORY_BYTES),
            "16 MB rises to Mesos' minimum"
        );
        assert_eq!(host.binds.unwrap(), ["/sb:/mnt/mesos/sandbox"]);
        let bindings = host.port_bindings.unwrap();
        assert_eq!(
            bindings["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("31000")
        );
        assert_eq!(
            bindings["53/udp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("31001")
        );
    }

    #[test]
    fn arguments_go_to_the_image_entrypoint_and_no_command_keeps_the_image_default() {
        let args = CommandInfo {
            shell: Some(false),
            arguments: vec!["serve".into(), "--port=80".into()],
            ..CommandInfo::default()
        };
        let run = options(&task(docker(DockerNetwork::Host), args)).unwrap();
        assert_eq!(run.body.entrypoint, None);
        assert_eq!(run.body.cmd.unwrap(), ["serve", "--port=80"]);
        let none = CommandInfo {
            shell: Some(false),
            ..CommandInfo::default()
        };
        let run = options(&task(docker(DockerNetwork::Host), none)).unwrap();
        assert_eq!((run.body.entrypoint, run.body.cmd), (None, None));
    }

    #[test]
    fn volumes_resolve_against_the_sandbox() {
        let mut task = task(docker(DockerNetwork::Host), shell("true"));
        let container = task.container.as_mut().unwrap();
        container.volumes = vec![
            Volume {
                container_path: "/data".into(),
                host_path: Some("/srv".into()),
                mode: VolumeMode::ReadOnly,
            },
            Volume {
                container_path: "cache".into(),
                host_path: Some("/var/c".into()),
                mode: VolumeMode::ReadWrite,
            },
            Volume {
                container_path: "/logs".into(),
                host_path: Some("logs".into()),
                mode: VolumeMode::ReadWrite,
            },
        ];
        let binds = options(&task)
            .unwrap()
            .body
            .host_config
            .unwrap()
            .binds
            .unwrap();
        assert_eq!(
            binds,
            [
                "/srv:/data:ro",
                "/var/c:/mnt/mesos/sandbox/cache:rw",
                "/sb/logs:/logs:rw",
                "/sb:/mnt/mesos/sandbox"
            ]
        );
    }

    #[test]
    fn user_networks_take_the_single_network_info_name() {
        let mut task = task(docker(DockerNetwork::User), shell("true"));
        let err = options(&task).unwrap_err();
        assert_eq!(err, "No network info found in container info");
        task.container.as_mut().unwrap().network_infos = vec![NetworkInfo {
            ip_addresses: Vec::new(),
            name: Some("apps".into()),
        }];
        let host = options(&task).unwrap().body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("apps"));
    }

    #[test]
    fn what_mesos_refuses_is_refused_in_its_words() {
        let mut host_mapped = docker(DockerNetwork::Host);
        host_mapped.port_mappings = vec![PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: None,
        }];
        let mut outside = docker(DockerNetwork::Bridge);
        outside.port_mappings = vec![PortMapping {
            host_port: 40000,
            container_port: 80,
            protocol: None,
        }];
        let no_value = CommandInfo::default();
        let mut unknown = docker(DockerNetwork::Host);
        unknown.parameters = vec![Parameter {
            key: "no-such-flag".into(),
            value: "1".into(),
        }];
        for (task, expected) in [
            (
                task(host_mapped, shell("true")),
                "Port mappings are only supported",
            ),
            (
                task(outside, shell("true")),
                "Port [40000] not included in resources",
            ),
            (
                task(docker(DockerNetwork::Host), no_value),
                "Shell specified but no command",
            ),
            (task(unknown, shell("true")), "'no-such-flag'"),
        ] {
            let error = options(&task).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
