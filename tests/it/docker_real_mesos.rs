//! Docker apps against the REAL Mesos 1.11 master (`../shared/real-mesos`):
//! for each Docker layout Marathon accepts, the TaskInfo Stride sends is
//! the one Marathon 1.9 would build (`TaskBuilder`, `ContainerSerializer`,
//! `PortDiscovery`; `docs/docker.md`). The real master validates it and
//! keeps it; its `/master/state` is compared with Marathon's shape. That
//! agent has no Docker containerizer, so it fails each task, and its words
//! reach `lastTaskFailure` and the event log.

use crate::support::{Server, all_events, client, real_master, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const IMAGE: &str = "stride-test/busybox:local";

fn app(id: &str, container: Value, extra: Value) -> Value {
    let mut app = json!({
        "id": id, "cmd": "exec httpd -f -p 80", "cpus": 0.05, "mem": 32,
        "backoffSeconds": 30, "container": container
    });
    for (key, value) in extra.as_object().unwrap() {
        app[key] = value.clone();
    }
    app
}

/// The task as the real master keeps it (running or completed).
async fn master_task(master: &str, id: &str) -> Value {
    let state: Value = client()
        .get(format!("{master}/master/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let frameworks = state["frameworks"].as_array().unwrap();
    frameworks
        .iter()
        .flat_map(|f| {
            let tasks = f["tasks"].as_array().into_iter().flatten();
            tasks.chain(f["completed_tasks"].as_array().into_iter().flatten())
        })
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("the master does not know {id}"))
}

/// The single host port the master granted the task.
fn granted_port(task: &Value) -> u64 {
    let ports = task["resources"]["ports"].as_str().unwrap();
    let range = ports.trim_matches(|c| c == '[' || c == ']');
    range.split('-').next().unwrap().parse().unwrap()
}

fn host_scope(mut labels: Vec<Value>) -> Value {
    labels.push(json!({"key": "network-scope", "value": "host"}));
    json!({"labels": labels})
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_task_infos_are_marathons_and_the_agents_failure_reaches_the_user() {
    let Some(master) = real_master().await else {
        return;
    };
    let master = &master.url;
    let dir = tempfile::tempdir().unwrap();
    let framework = format!("stride-docker-{}", uuid::Uuid::new_v4());
    let server = Server::start_with_mesos(
        dir.path(),
        &["--master", master, "--framework-name", &framework],
    );
    let http = client();
    let group = format!("/docker-{}", &framework[14..22]);
    let volume = json!([{"containerPath": "/data", "hostPath": "/tmp", "mode": "RO"}]);
    // (app, the Docker part Marathon would send given the task id and its
    // host port, the discovery ports likewise)
    type Expect = fn(&str, u64) -> (Value, Value);
    let layouts: Vec<(Value, Expect)> = vec![
        (
            app(
                &format!("{group}/host"),
                json!({"type": "DOCKER", "volumes": volume, "docker": {
                    "image": IMAGE, "forcePullImage": true,
                    "parameters": [{"key": "label", "value": "team=web"}]}}),
                json!({"portDefinitions": [{"port": 0, "name": "http"}],
                       "labels": {"owner": "ops"}}),
            ),
            |task, port| {
                let docker = json!({
                    "image": IMAGE, "network": "HOST", "privileged": false,
                    "parameters": [
                        {"key": "label", "value": "team=web"},
                        {"key": "label", "value": format!("MESOS_TASK_ID={task}")}],
                    "force_pull_image": true});
                let ports = json!([{"number": port, "name": "http", "protocol": "tcp"}]);
                (docker, ports)
            },
        ),
        (
            app(
                &format!("{group}/legacy-bridge"),
                json!({"type": "DOCKER", "docker": {"image": IMAGE, "network": "BRIDGE"},
                       "portMappings": [{"containerPort": 80, "hostPort": 0,
                                         "protocol": "tcp,udp", "name": "web"}]}),
                json!({}),
            ),
            |task, port| {
                let docker = json!({
                    "image": IMAGE, "network": "BRIDGE",
                    "port_mappings": [
                        {"host_port": port, "container_port": 80, "protocol": "tcp"},
                        {"host_port": port, "container_port": 80, "protocol": "udp"}],
                    "privileged": false,
                    "parameters": [{"key": "label", "value": format!("MESOS_TASK_ID={task}")}],
                    "force_pull_image": false});
                let ports = json!([
                    {"number": port, "name": "web", "protocol": "tcp", "labels": host_scope(vec![])},
                    {"number": port, "name": "web", "protocol": "udp", "labels": host_scope(vec![])}]);
                (docker, ports)
            },
        ),
        (
            app(
                &format!("{group}/bridge"),
                json!({"type": "DOCKER", "docker": {"image": IMAGE, "privileged": true},
                       "portMappings": [{"containerPort": 0, "hostPort": 0,
                                         "labels": {"VIP_0": "/web:80"}}]}),
                json!({"networks": [{"mode": "container/bridge"}], "args": ["httpd", "-f"],
                       "cmd": null}),
            ),
            |task, port| {
                // containerPort 0 takes the host port's number.
                let docker = json!({
                    "image": IMAGE, "network": "BRIDGE",
                    "port_mappings": [{"host_port": port, "container_port": port, "protocol": "tcp"}],
                    "privileged": true,
                    "parameters": [{"key": "label", "value": format!("MESOS_TASK_ID={task}")}],
                    "force_pull_image": false});
                let vip = json!({"key": "VIP_0", "value": "/web:80"});
                let ports =
                    json!([{"number": port, "protocol": "tcp", "labels": host_scope(vec![vip])}]);
                (docker, ports)
            },
        ),
        (
            app(
                &format!("{group}/user"),
                json!({"type": "DOCKER", "docker": {"image": IMAGE},
                       "portMappings": [
                           {"containerPort": 80, "hostPort": 0, "name": "web"},
                           {"containerPort": 9000, "name": "admin"}]}),
                json!({"networks": [{"mode": "container", "name": "stride-net"}]}),
            ),
            |task, port| {
                let docker = json!({
                    "image": IMAGE, "network": "USER",
                    "port_mappings": [{"host_port": port, "container_port": 80, "protocol": "tcp"}],
                    "privileged": false,
                    "parameters": [{"key": "label", "value": format!("MESOS_TASK_ID={task}")}],
                    "force_pull_image": false});
                let ports = json!([
                    {"number": port, "name": "web", "protocol": "tcp", "labels": host_scope(vec![])},
                    {"number": 9000, "name": "admin", "protocol": "tcp", "labels": {"labels": [
                        {"key": "network-scope", "value": "container"},
                        {"key": "network-name", "value": "stride-net"}]}}]);
                (docker, ports)
            },
        ),
    ];
    for (definition, _) in &layouts {
        let answer = http
            .post(server.url("/v2/apps"))
            .json(definition)
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "{definition}: {}",
            answer.text().await.unwrap()
        );
    }
    for (definition, expect) in &layouts {
        let id = definition["id"].as_str().unwrap();
        let path = format!("/v2/apps{id}?embed=apps.lastTaskFailure");
        let failure = || async {
            let body: Value = http
                .get(server.url(&path))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["app"]["lastTaskFailure"].clone()
        };
        wait_until(&format!("{id} to fail on the real agent"), WAIT, || async {
            failure().await.is_object()
        })
        .await;
        let failure = failure().await;
        // What a 1.11 agent without `--containerizers=docker` answers.
        assert_eq!(failure["state"], "TASK_FAILED", "{failure}");
        assert_eq!(
            failure["message"],
            "Abnormal executor termination: unknown container"
        );
        let task_id = failure["taskId"].as_str().unwrap();

        let task = master_task(master, task_id).await;
        let port = granted_port(&task);
        let (docker, ports) = expect(task_id, port);
        let container = &task["container"];
        assert_eq!(container["type"], "DOCKER", "{id}: {task}");
        assert_eq!(container["docker"], docker, "{id}");
        let name: String = id
            .trim_start_matches('/')
            .rsplit('/')
            .collect::<Vec<_>>()
            .join(".");
        assert_eq!(
            task["discovery"],
            json!({"visibility": "FRAMEWORK", "name": name, "ports": {"ports": ports}}),
            "{id}"
        );
        if id.ends_with("/user") {
            assert_eq!(container["network_infos"], json!([{"name": "stride-net"}]));
        } else {
            assert!(
                container.get("network_infos").is_none(),
                "{id}: {container}"
            );
        }
        if id.ends_with("/host") {
            assert_eq!(
                container["volumes"],
                json!([{"mode": "RO", "container_path": "/data", "host_path": "/tmp"}])
            );
            assert_eq!(task["labels"], json!([{"key": "owner", "value": "ops"}]));
        }
    }
    let events = all_events(&http, &server).await;
    let failed = events
        .iter()
        .find(|e| e["mesos_state"] == "TASK_FAILED")
        .expect("a recorded failure");
    assert_eq!(failed["reason"], "REASON_EXECUTOR_TERMINATED");
    for (definition, _) in &layouts {
        let id = definition["id"].as_str().unwrap();
        let path = format!("/v2/apps{id}?force=true");
        http.delete(server.url(&path)).send().await.unwrap();
    }
}
