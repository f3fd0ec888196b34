//! Older layouts of an app definition that Marathon 1.5+ still accepts,
//! turned into its canonical fields before the JSON is read, as Marathon's
//! `AppNormalization.forDeprecated` does, with the conflicts its
//! `AppValidation.validateOldAppAPI` refuses:
//!
//! - `ports: [..]` becomes `portDefinitions`;
//! - `uris: [..]` becomes `fetch` (archives are extracted);
//! - `ipAddress` becomes `networks` (and a Mesos container, and its
//!   `discovery.ports` become port mappings);
//! - `container.docker.network` becomes `networks`;
//! - `container.docker.portMappings` become `container.portMappings`.
//!
//! Works on whole definitions and on partial updates alike: only the fields
//! present are translated.

use serde_json::{Map, Value, json};

/// The bridge network name Marathon maps to `container/bridge` (its
/// `--mesos_bridge_name` default).
const MESOS_BRIDGE_NAME: &str = "mesos-bridge";

/// A problem with the input, as a JSON pointer and a message.
pub type Problem = (String, String);

/// Rewrites the legacy fields of `fields` into canonical ones, or says why
/// they cannot be.
pub fn normalize(fields: &mut Map<String, Value>) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    fetch(fields, &mut problems);
    ports(fields, &mut problems);
    let ip_address = fields.remove("ipAddress").filter(|v| !v.is_null());
    let docker_network = take_docker_network(fields, &mut problems);
    networks(fields, ip_address.as_ref(), docker_network, &mut problems);
    if let Some(ip_address) = &ip_address {
        discovery_ports(fields, ip_address, &mut problems);
    }
    docker_port_mappings(fields, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn problem(problems: &mut Vec<Problem>, path: &str, message: impl Into<String>) {
    problems.push((path.to_owned(), message.into()));
}

fn non_empty_array(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn fetch(fields: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let Some(uris) = fields.remove("uris").filter(|v| !v.is_null()) else {
        return;
    };
    let Some(uris) = uris.as_array() else {
        return problem(problems, "/uris", "expected an array of URIs");
    };
    if uris.is_empty() {
        return;
    }
    if non_empty_array(fields.get("fetch")) {
        return problem(
            problems,
            "/uris",
            "may not be set in conjunction with fetch",
        );
    }
    let mut fetch = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        match uri.as_str().filter(|u| !u.trim().is_empty()) {
            Some(uri) => fetch.push(json!({"uri": uri, "extract": is_archive(uri)})),
            None => problem(problems, &format!("/uris/{i}"), "must be a non-empty URI"),
        }
    }
    fields.insert("fetch".into(), Value::Array(fetch));
}

/// Marathon's `FetchUri.isExtract`: archives Mesos can unpack.
fn is_archive(uri: &str) -> bool {
    [
        ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip",
    ]
    .iter()
    .any(|suffix| uri.ends_with(suffix))
}

fn ports(fields: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let Some(raw) = fields.remove("ports").filter(|v| !v.is_null()) else {
        return;
    };
    let Some(ports) = raw
        .as_array()
        .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
    else {
        return problem(problems, "/ports", "expected an array of port numbers");
    };
    let fixed: Vec<u64> = ports.iter().copied().filter(|p| *p != 0).collect();
    let unique: std::collections::BTreeSet<u64> = fixed.iter().copied().collect();
    if unique.len() != fixed.len() {
        problem(problems, "/ports", "ports must be unique");
    }
    if let Some(definitions) = fields.get("portDefinitions").and_then(Value::as_array) {
        let declared: Vec<Option<u64>> = definitions
            .iter()
            .map(|d| d.get("port").map_or(Some(0), Value::as_u64))
            .collect();
        let same = declared == ports.iter().copied().map(Some).collect::<Vec<_>>();
        if !definitions.is_empty() && !same {
            problem(
                problems,
                "/ports",
                "cannot specify both ports and port definitions",
            );
        }
        return;
    }
    let definitions = ports.iter().map(|p| json!({"port": p})).collect();
    fields.insert("portDefinitions".into(), Value::Array(definitions));
}

fn container_mut(fields: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    fields.get_mut("container")?.as_object_mut()
}

fn is_mesos_container(fields: &Map<String, Value>) -> bool {
    fields
        .get("container")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        == Some("MESOS")
}

/// Takes `container.docker.network` out; a Mesos container may not have one.
fn take_docker_network(
    fields: &mut Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let mesos = is_mesos_container(fields);
    let docker = container_mut(fields)?.get_mut("docker")?.as_object_mut()?;
    if docker.get("credential").is_some_and(|c| !c.is_null()) {
        problem(
            problems,
            "/container/docker/credential",
            "must be empty: docker credentials are not supported this way any more",
        );
    }
    let network = docker.remove("network").filter(|v| !v.is_null())?;
    if mesos {
        problem(
            problems,
            "/container/docker/network",
            "must be empty for a MESOS container",
        );
        return None;
    }
    match network.as_str() {
        Some(name) => Some(name.to_owned()),
        None => {
            problem(problems, "/container/docker/network", "expected a string");
            None
        }
    }
}

/// Marathon's `NetworkTranslation`: the legacy network settings become
/// `networks`, which must then not be given as well.
fn networks(
    fields: &mut Map<String, Value>,
    ip_address: Option<&Value>,
    docker_network: Option<String>,
    problems: &mut Vec<Problem>,
) {
    if ip_address.is_none() && docker_network.is_none() {
        return;
    }
    if non_empty_array(fields.get("networks")) {
        let message = if ip_address.is_some() {
            "must not specify both networks and ipAddress"
        } else {
            "must not specify both container.docker.network and networks"
        };
        return problem(problems, "/networks", message);
    }
    let labels = ip_address
        .and_then(|ip| ip.get("labels"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let network = match (docker_network.as_deref(), ip_address) {
        (Some("HOST"), _) => json!({"mode": "host"}),
        (Some("BRIDGE"), _) => json!({"mode": "container/bridge", "labels": labels}),
        (Some("USER"), ip) => {
            let name = ip.and_then(|ip| ip.get("networkName")).cloned();
            json!({"mode": "container", "name": name, "labels": labels})
        }
        (Some(other), _) => {
            return problem(
                problems,
                "/container/docker/network",
                format!("unsupported docker network type {other}"),
            );
        }
        (None, Some(ip)) => match ip.get("networkName").and_then(Value::as_str) {
            Some(MESOS_BRIDGE_NAME) => json!({"mode": "container/bridge", "labels": labels}),
            name => json!({"mode": "container", "name": name, "labels": labels}),
        },
        (None, None) => return,
    };
    fields.insert("networks".into(), json!([network]));
    if ip_address.is_some() {
        let has_ports = non_empty_array(fields.get("portDefinitions"));
        if has_ports {
            problem(
                problems,
                "/ipAddress",
                "cannot specify both an IP address and port",
            );
        }
        // An IP per task needs a container; Marathon assumes a Mesos one.
        if fields.get("container").is_none_or(Value::is_null) {
            fields.insert("container".into(), json!({"type": "MESOS"}));
        }
    }
}

/// `ipAddress.discovery.ports` become the Mesos container's port mappings.
fn discovery_ports(
    fields: &mut Map<String, Value>,
    ip_address: &Value,
    problems: &mut Vec<Problem>,
) {
    let Some(ports) = ip_address
        .get("discovery")
        .and_then(|d| d.get("ports"))
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    else {
        return;
    };
    if !is_mesos_container(fields) {
        return problem(
            problems,
            "/ipAddress/discovery",
            "ipAddress/discovery is not allowed for Docker containers",
        );
    }
    let Some(container) = container_mut(fields) else {
        return;
    };
    if non_empty_array(container.get("portMappings")) {
        return problem(
            problems,
            "/container/portMappings",
            "container.portMappings and ipAddress.discovery.ports must not both be set",
        );
    }
    let mappings = ports
        .iter()
        .map(|port| {
            json!({
                "containerPort": port.get("number").cloned().unwrap_or(json!(0)),
                "name": port.get("name").cloned(),
                "protocol": port.get("protocol").cloned().unwrap_or(json!("tcp")),
                "labels": port.get("labels").cloned().unwrap_or(json!({})),
            })
        })
        .collect();
    container.insert("portMappings".into(), Value::Array(mappings));
}

/// Marathon 1.5 moved port mappings from `container.docker` to `container`.
fn docker_port_mappings(fields: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let mesos = is_mesos_container(fields);
    let Some(container) = container_mut(fields) else {
        return;
    };
    let Some(docker) = container.get_mut("docker").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(mappings) = docker.remove("portMappings").filter(|v| !v.is_null()) else {
        return;
    };
    if !non_empty_array(Some(&mappings)) {
        return;
    }
    if mesos {
        return problem(
            problems,
            "/container/docker/portMappings",
            "must be empty for a MESOS container",
        );
    }
    if non_empty_array(container.get("portMappings")) {
        return problem(
            problems,
            "/container/portMappings",
            "cannot specify both portMappings and docker.portMappings",
        );
    }
    container.insert("portMappings".into(), mappings);
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use serde_json::{Value, json};

    fn normalized(input: Value) -> Result<Value, Vec<super::Problem>> {
        let Value::Object(mut fields) = input else {
            panic!("an object")
        };
        normalize(&mut fields).map(|()| Value::Object(fields))
    }

    #[test]
    fn docker_bridge_layout_becomes_networks_and_container_port_mappings() {
        let app = normalized(json!({
            "id": "/web",
            "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "hostPort": 0}]}}
        }))
        .unwrap();
        assert_eq!(
            app["networks"],
            json!([{"mode": "container/bridge", "labels": {}}])
        );
        assert_eq!(
            app["container"]["portMappings"],
            json!([{"containerPort": 80, "hostPort": 0}])
        );
        assert_eq!(app["container"]["docker"], json!({"image": "nginx"}));
    }

    #[test]
    fn ports_and_uris_become_port_definitions_and_fetch() {
        let app = normalized(
            json!({"id": "/a", "ports": [0, 8080], "uris": ["http://x/a.tgz", "http://x/b"]}),
        )
        .unwrap();
        assert_eq!(app["portDefinitions"], json!([{"port": 0}, {"port": 8080}]));
        assert_eq!(
            app["fetch"],
            json!([{"uri": "http://x/a.tgz", "extract": true}, {"uri": "http://x/b", "extract": false}])
        );
        assert!(app.get("ports").is_none() && app.get("uris").is_none());
    }

    #[test]
    fn ip_address_becomes_a_container_network_and_a_mesos_container() {
        let app = normalized(json!({"id": "/a", "ipAddress": {"networkName": "dev",
            "discovery": {"ports": [{"number": 80, "name": "http", "protocol": "tcp"}]}}}))
        .unwrap();
        assert_eq!(
            app["networks"],
            json!([{"mode": "container", "name": "dev", "labels": {}}])
        );
        assert_eq!(app["container"]["type"], "MESOS");
        assert_eq!(app["container"]["portMappings"][0]["containerPort"], 80);
    }

    #[test]
    fn contradictions_are_refused_with_their_paths() {
        for (input, path) in [
            (json!({"uris": ["a"], "fetch": [{"uri": "b"}]}), "/uris"),
            (json!({"ports": [80, 80]}), "/ports"),
            (
                json!({"ports": [1], "portDefinitions": [{"port": 2}]}),
                "/ports",
            ),
            (
                json!({"networks": [{"mode": "host"}], "container": {"docker": {"image": "x", "network": "BRIDGE"}}}),
                "/networks",
            ),
            (
                json!({"container": {"docker": {"image": "x", "network": "NONE"}}}),
                "/container/docker/network",
            ),
            (
                json!({"container": {"portMappings": [{"containerPort": 1}],
                    "docker": {"image": "x", "portMappings": [{"containerPort": 2}]}}}),
                "/container/portMappings",
            ),
            (
                json!({"ipAddress": {}, "portDefinitions": [{"port": 0}]}),
                "/ipAddress",
            ),
        ] {
            let problems = normalized(input.clone()).unwrap_err();
            assert!(
                problems.iter().any(|(p, _)| p == path),
                "{input}: {problems:?}"
            );
        }
    }
}
