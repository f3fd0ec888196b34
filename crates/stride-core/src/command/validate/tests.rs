use super::{Problems, check_definition, check_id};
use crate::event::app::AppDefinition;
use serde_json::{Value, json};

/// The paths of the problems with `body` once canonical; a body naming
/// nothing to run gets a command.
fn paths_of(mut body: Value) -> Vec<String> {
    if body.get("id").is_none() {
        body["id"] = json!("/web");
    }
    if ["cmd", "args", "container"]
        .iter()
        .all(|f| body.get(f).is_none())
    {
        body["cmd"] = json!("sleep 1000");
    }
    let definition: AppDefinition = serde_json::from_value(body).expect("the shape parses");
    let definition = definition.canonical();
    let mut problems = Problems::default();
    check_definition(&definition, &mut problems);
    problems.into_vec().into_iter().map(|e| e.path).collect()
}

#[test]
fn app_ids_follow_marathon_path_rules() {
    for good in ["/web", "/prod/web", "/a/b-c/d1.e"] {
        assert!(check_id(good).is_ok(), "{good}");
    }
    for bad in [
        "web",
        "/",
        "/Web",
        "/a//b",
        "/-a",
        "/a-",
        "/a/../b",
        "/a b",
        "/a\0b",
        "/a/restart",
        "/versions",
    ] {
        assert!(check_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_full_valid_definition_has_no_problems() {
    let body = json!({
        "id": "/prod/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.5,
        "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"], ["zone", "LIKE", "eu-.*"]],
        "portDefinitions": [{"port": 0, "name": "http-api"}],
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0}, {"protocol": "COMMAND", "command": {"value": "true"}}],
        "readinessChecks": [{"portName": "http-api"}],
        "fetch": [{"uri": "https://example.com/app.tgz"}],
        "unreachableStrategy": "disabled",
        "dependencies": ["/prod/db"]
    });
    assert_eq!(paths_of(body), Vec::<String>::new());
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let cases = [
        (json!({"cpus": -1}), "/cpus"),
        (json!({"mem": -5}), "/mem"),
        (json!({"cmd": "xx", "args": ["y"]}), "/"),
        (json!({"cmd": "x"}), "/cmd"),
        (
            json!({"container": {"type": "DOCKER", "docker": {"image": "x"}}, "gpus": 1}),
            "/gpus",
        ),
        (json!({"role": "prod"}), "/role"),
        (
            json!({"acceptedResourceRoles": ["slave_public"]}),
            "/acceptedResourceRoles/0",
        ),
        (json!({"executor": "/opt/my-executor"}), "/executor"),
        (json!({"id": "/app/tasks"}), "/id"),
        (
            json!({"labels": {"MARATHON_SINGLE_INSTANCE_APP": "true"}, "instances": 2,
                   "upgradeStrategy": {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}}),
            "/",
        ),
        (
            json!({"readinessChecks": [{"portName": "default"}, {"portName": "default"}],
                   "portDefinitions": [{"port": 0, "name": "default"}]}),
            "/readinessChecks",
        ),
        (
            json!({"healthChecks": [{"protocol": "MESOS_TCP"}, {"protocol": "MESOS_HTTP"}],
                   "portDefinitions": [{"port": 0}]}),
            "/healthChecks",
        ),
        (
            json!({"healthChecks": [{"protocol": "HTTP", "ipProtocol": "IPv6"}],
                   "portDefinitions": [{"port": 0}]}),
            "/healthChecks/0/ipProtocol",
        ),
        (json!({"id": "/Bad"}), "/id"),
        (
            json!({"constraints": [["hostname", "UNIQUE", "x"]]}),
            "/constraints/0",
        ),
        (json!({"constraints": [["a", "MAX_PER"]]}), "/constraints/0"),
        (
            json!({"constraints": [["a", "IS", "b"], ["a", "LIKE", "(unclosed"]]}),
            "/constraints/1",
        ),
        (
            json!({"portDefinitions": [{"port": 80}, {"port": 80}]}),
            "/portDefinitions/1/port",
        ),
        (
            json!({"portDefinitions": [{"port": 70000}]}),
            "/portDefinitions/0/port",
        ),
        (
            json!({"container": {"type": "DOCKER", "docker": {}}}),
            "/container/docker/image",
        ),
        (
            json!({"cmd": "run", "container": {"type": "DOCKER"}}),
            "/container/docker",
        ),
        (
            json!({"container": {"docker": {"image": "x", "network": "BRIDGE"}, "portMappings": [{"hostPort": 70000}]}}),
            "/container/portMappings/0/hostPort",
        ),
        (
            json!({"healthChecks": [{"protocol": "COMMAND"}]}),
            "/healthChecks/0/command",
        ),
        (
            json!({"healthChecks": [{"protocol": "HTTP"}]}),
            "/healthChecks/0/portIndex",
        ),
        (
            json!({"readinessChecks": [{"portName": "nope"}]}),
            "/readinessChecks/0/portName",
        ),
        (
            json!({"unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}}),
            "/unreachableStrategy/expungeAfterSeconds",
        ),
        (json!({"dependencies": ["nope"]}), "/dependencies/0"),
        (
            json!({"networks": [{"mode": "host"}, {"mode": "container", "name": "a"}]}),
            "/networks",
        ),
        (
            json!({"networks": [{"mode": "container"}], "container": {"type": "MESOS"}}),
            "/networks/0/name",
        ),
        (
            json!({"networks": [{"mode": "host", "name": "a"}]}),
            "/networks/0/mode",
        ),
        (
            json!({"upgradeStrategy": {"minimumHealthCapacity": 2}}),
            "/upgradeStrategy/minimumHealthCapacity",
        ),
    ];
    for (body, path) in cases {
        let found = paths_of(body.clone());
        assert_eq!(found, vec![path.to_owned()], "{body}");
    }
}

/// As Marathon normalizes (AppNormalization): port definitions apply on
/// the host network only, port mappings off it; the other is dropped.
#[test]
fn the_networks_decide_between_port_definitions_and_mappings() {
    let bridged: AppDefinition = serde_json::from_value(json!({
        "id": "/web", "networks": [{"mode": "container/bridge"}], "portDefinitions": [{"port": 0}],
        "container": {"type": "DOCKER", "docker": {"image": "python:3"},
            "portMappings": [{"containerPort": 8080}]}
    }))
    .expect("a shape");
    let bridged = bridged.canonical();
    assert!(bridged.port_definitions.is_empty());
    let mapping = &bridged
        .container
        .as_ref()
        .expect("a container")
        .port_mappings[0];
    assert_eq!(
        mapping.host_port,
        Some(0),
        "a bridge mapping gets a host port"
    );
    let host: AppDefinition = serde_json::from_value(json!({
        "id": "/web", "portDefinitions": [{"port": 0}],
        "container": {"type": "MESOS", "portMappings": [{"containerPort": 80}]}
    }))
    .expect("a shape");
    let host = host.canonical();
    assert_eq!(host.port_definitions.len(), 1);
    assert!(
        host.container
            .expect("a container")
            .port_mappings
            .is_empty()
    );
    assert_eq!(
        paths_of(json!({"networks": [{"mode": "container/bridge"}],
        "container": {"type": "DOCKER", "docker": {"image": "python:3"},
            "portMappings": [{"containerPort": 8080, "hostPort": 0}]}})),
        Vec::<String>::new()
    );
}

#[test]
fn several_problems_come_back_together() {
    let found = paths_of(json!({"cpus": 0, "mem": -1, "constraints": [["a", "IS"]]}));
    assert_eq!(found, ["/cpus", "/mem", "/constraints/0"]);
}
