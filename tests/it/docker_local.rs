//! Docker apps on the embedded cluster, with a REAL Docker engine
//! (`scripts/docker-up.sh`: the machine's engine or a private dockerd) and
//! the real `stride serve`. The image is built locally and no registry is
//! reachable, so any pull fails at once: a task that runs proves that no
//! pull was attempted. Each test has its own host ports (`support::ports`);
//! the docker CLI looks at the engine from outside.

use crate::support::docker::{self, AgentContainers, IMAGE, containers};
use crate::support::lb::{HaproxyGuard, Sidecar};
use crate::support::ports::ports;
use crate::support::real_parts;
use crate::support::{
    Server, activations, all_events, client, send_ok, wait_for_a_whole_activation, wait_until,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

struct Stride {
    server: Server,
    http: reqwest::Client,
    args: Vec<String>,
    agent: String,
    _cleanup: AgentContainers,
    _dir: tempfile::TempDir,
}

impl Stride {
    /// `stride serve` on the embedded cluster with host ports `ports`.
    fn start(ports: &str) -> Stride {
        Self::start_with(ports, &docker::socket(), &[])
    }

    fn start_with(ports: &str, socket: &str, extra: &[&str]) -> Stride {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = ["--docker-socket", socket, "--local-ports", ports]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = Self::serve(dir.path(), &args);
        let ids = dir.path().join("local-sandboxes/agent-ids");
        let agent = std::fs::read_to_string(ids).unwrap().trim().to_owned();
        Stride {
            server,
            http: client(),
            args,
            _cleanup: AgentContainers(agent.clone()),
            agent,
            _dir: dir,
        }
    }

    fn serve(dir: &Path, args: &[String]) -> Server {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_with_mesos(dir, &args)
    }

    /// SIGKILL, then the same command on the same data dir.
    fn kill_and_restart(&mut self) {
        self.server.kill();
        self.server = Self::serve(self._dir.path(), &self.args);
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        send_ok(&self.http, &self.server, method, path, body).await
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn create(&self, app: Value) {
        self.send(reqwest::Method::POST, "/v2/apps", Some(app))
            .await;
    }

    async fn delete(&self, app: &str) {
        // Forced: an app whose tasks keep failing is still deploying.
        let path = format!("/v2/apps{app}?force=true");
        self.send(reqwest::Method::DELETE, &path, None).await;
    }

    async fn tasks(&self, app: &str) -> Vec<Value> {
        let body = self.get(&format!("/v2/apps{app}/tasks")).await;
        body["tasks"].as_array().cloned().unwrap_or_default()
    }

    async fn running(&self, app: &str) -> Vec<Value> {
        let tasks = self.tasks(app).await;
        let running = tasks.into_iter().filter(|t| t["state"] == "TASK_RUNNING");
        running.collect()
    }

    async fn wait_running(&self, app: &str, n: usize) -> Vec<Value> {
        wait_until(&format!("{n} running tasks of {app}"), WAIT, || async {
            self.running(app).await.len() == n && self.tasks(app).await.len() == n
        })
        .await;
        self.running(app).await
    }

    async fn last_failure(&self, app: &str) -> Value {
        let path = format!("/v2/apps{app}?embed=apps.lastTaskFailure");
        self.get(&path).await["app"]["lastTaskFailure"].clone()
    }

    async fn wait_failure(&self, app: &str) -> Value {
        wait_until(&format!("a task failure of {app}"), WAIT, || async {
            self.last_failure(app).await.is_object()
        })
        .await;
        self.last_failure(app).await
    }

    async fn queue_entry(&self, app: &str) -> Option<Value> {
        let queue = self.get("/v2/queue").await;
        queue["queue"]
            .as_array()?
            .iter()
            .find(|q| q["app"]["id"] == app)
            .cloned()
    }

    /// Why `app` waits, in words (`/v1/queue`; Marathon's has no reason).
    async fn queue_reason(&self, app: &str) -> String {
        let queue = self.get("/v1/queue").await;
        queue["queue"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|q| q["app"] == app)
            .and_then(|q| q["reason"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The sandbox a task ran in (`runs/<container id>`).
    fn sandbox(&self, task: &str) -> PathBuf {
        let pattern = format!(
            "{}/local-sandboxes/slaves/*/frameworks/*/executors/{task}/runs/*/stdout",
            self._dir.path().display()
        );
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("ls -d {pattern}")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&found.stdout);
        let stdout = text
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no sandbox for {task}"));
        Path::new(stdout).parent().unwrap().to_owned()
    }

    fn agent_containers(&self) -> Vec<String> {
        containers(&format!("stride.agent={}", self.agent))
    }
}

fn docker_app(id: &str, cmd: &str, docker: Value) -> Value {
    let mut docker_part = json!({"image": IMAGE, "network": "HOST"});
    for (key, value) in docker.as_object().unwrap() {
        docker_part[key] = value.clone();
    }
    json!({
        "id": id, "cmd": cmd, "instances": 1, "cpus": 0.05, "mem": 32,
        "backoffSeconds": 10, "taskKillGracePeriodSeconds": 1,
        "container": {"type": "DOCKER", "docker": docker_part}
    })
}

const HTTPD: &str = "echo serving on $PORT0; exec httpd -f -p $PORT0 -h /www";

async fn http_body(port: u64) -> Option<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let answer = http
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .ok()?;
    answer.text().await.ok()
}

/// The container's name and labels, as the engine has them.
fn inspect(name: &str, format: &str) -> String {
    docker::docker(&["inspect", "--format", format, name])
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_image_runs_without_a_pull_and_force_pull_fails_naming_the_pull() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let stride = Stride::start(&ports.slice(0, 19));
    let cmd = format!("env > $MESOS_SANDBOX/env.txt; {HTTPD}");
    stride.create(docker_app("/local", &cmd, json!({}))).await;
    let task = stride.wait_running("/local", 1).await.remove(0);
    let port = task["ports"][0].as_u64().unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    wait_until("the container to serve", WAIT, || async {
        http_body(port)
            .await
            .is_some_and(|b| b.contains("hello from stride-test"))
    })
    .await;

    // What Mesos' docker containerizer would have made of it.
    let sandbox = stride.sandbox(&id);
    let env = std::fs::read_to_string(sandbox.join("env.txt")).unwrap();
    for line in [
        format!("PORT0={port}"),
        format!("PORTS={port}"),
        "HOST=localhost".to_owned(),
        format!("MESOS_TASK_ID={id}"),
        "MARATHON_APP_ID=/local".to_owned(),
        "MESOS_SANDBOX=/mnt/mesos/sandbox".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from {env}");
    }
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert_eq!(stdout, format!("serving on {port}\n"));
    let name = &stride.agent_containers()[0];
    assert!(name.starts_with("mesos-"), "{name}");
    assert_eq!(
        inspect(
            name,
            "{{index .Config.Labels \"MESOS_TASK_ID\"}} {{.HostConfig.NetworkMode}}"
        ),
        format!("{id} host")
    );

    // forcePullImage: true pulls even a present image, and no pull works.
    let forced = docker_app("/pulled", HTTPD, json!({"forcePullImage": true}));
    stride.create(forced).await;
    let failure = stride.wait_failure("/pulled").await;
    let message = failure["message"].as_str().unwrap();
    assert_eq!(failure["state"], "TASK_FAILED");
    assert!(
        message.starts_with("Failed to launch container: Failed to pull image 'stride-test/busybox:local' (forcePullImage is set"),
        "{message}"
    );
    // Gone (the failure may be shown a moment before the task goes); the
    // app backs off, then may have launched the next already.
    let failed = &failure["taskId"];
    wait_until("the failed task to be gone", WAIT, || async {
        stride
            .tasks("/pulled")
            .await
            .iter()
            .all(|t| &t["id"] != failed)
    })
    .await;

    stride.delete("/local").await;
    stride.delete("/pulled").await;
    wait_until("no container left behind", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absent_image_fails_clearly_everywhere_and_the_app_backs_off() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let stride = Stride::start(&ports.slice(0, 19));
    let mut ws = stream_client::subscribe(&stride.server, "from=1").await;
    let app = docker_app("/absent", HTTPD, json!({"image": "stride-test/absent:1"}));
    stride.create(app).await;
    let failure = stride.wait_failure("/absent").await;
    let message = failure["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(
            "Failed to launch container: Image 'stride-test/absent:1' is not on the Docker engine at unix://"
        ) && message.contains("and pulling it failed: "),
        "{message}"
    );

    // The same words in the log and on the stream, with Mesos' reason.
    let events = all_events(&stride.http, &stride.server).await;
    let failed = events
        .iter()
        .find(|e| e["message"].as_str() == Some(message.as_str()))
        .unwrap_or_else(|| panic!("no event with {message}: {events:?}"));
    assert_eq!(failed["mesos_state"], "TASK_FAILED");
    assert_eq!(failed["reason"], "REASON_CONTAINER_LAUNCH_FAILED");
    loop {
        match stream_client::receive(&mut ws).await {
            stream_client::Received::Event(event) if event["message"] == failed["message"] => {
                assert_eq!(event["seq"], failed["seq"]);
                break;
            }
            stream_client::Received::Closed(code) => panic!("stream closed: {code:?}"),
            _ => {}
        }
    }

    // Marathon's backoff: the next launch waits (/v2/queue), and /v1/queue
    // says why.
    wait_until("the queue to show the backoff", WAIT, || async {
        let delayed = stride
            .queue_entry("/absent")
            .await
            .is_some_and(|q| q["delay"]["timeLeftSeconds"].as_u64() > Some(0));
        delayed && stride.queue_reason("/absent").await.contains("backoff")
    })
    .await;
    stride.delete("/absent").await;
    assert!(stride.agent_containers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_exits_at_once_fails_with_its_status_image_and_stderr() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let stride = Stride::start(&ports.slice(0, 19));
    let app = docker_app("/crash", "echo cannot bind >&2; exit 3", json!({}));
    stride.create(app).await;
    let failure = stride.wait_failure("/crash").await;
    assert_eq!(failure["state"], "TASK_FAILED");
    assert_eq!(
        failure["message"],
        "Container exited with status 3 (image 'stride-test/busybox:local'; last stderr line: 'cannot bind')"
    );
    // As from Mesos' docker executor: from the executor, with no reason.
    let events = all_events(&stride.http, &stride.server).await;
    let update = events
        .iter()
        .find(|e| e["task"] == failure["taskId"] && e["mesos_state"] == "TASK_FAILED")
        .expect("the failure in the log");
    assert_eq!(update["reason"], Value::Null, "{update}");
    wait_until("the exited container to be removed", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;
    stride.delete("/crash").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_engine_docker_tasks_fail_saying_so() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-engine.sock");
    let stride = Stride::start_with(&ports.slice(0, 19), missing.to_str().unwrap(), &[]);
    stride
        .create(docker_app("/nowhere", HTTPD, json!({})))
        .await;
    let failure = stride.wait_failure("/nowhere").await;
    let message = failure["message"].as_str().unwrap();
    let expected = format!(
        "Failed to launch container: Failed to inspect image 'stride-test/busybox:local': no Docker engine answers at unix://{}",
        missing.display()
    );
    assert!(message.starts_with(&expected), "{message}");
    stride.delete("/nowhere").await;
}

/// Two apps want one host port (one on host networking with
/// `requirePorts`, one on a bridge with a fixed `hostPort`) and a plain
/// command app wants any port, on an agent with two ports: host ports come
/// only from offers, so no port ever has two tasks and what does not fit
/// waits in `/v2/queue`, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn host_networking_never_puts_two_tasks_on_one_port() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(2);
    let stride = Stride::start(&ports.slice(0, 1));
    let mut host = docker_app("/host-fixed", HTTPD, json!({}));
    host["requirePorts"] = json!(true);
    host["portDefinitions"] = json!([{"port": ports.nth(0)}]);
    let mut bridge = docker_app(
        "/bridge-fixed",
        "exec httpd -f -p 80 -h /www",
        json!({"network": "BRIDGE"}),
    );
    bridge["container"]["portMappings"] = json!([{"containerPort": 80, "hostPort": ports.nth(0)}]);
    let plain = json!({
        "id": "/plain", "cmd": "exec sleep 1000", "cpus": 0.05, "mem": 16,
        "portDefinitions": [{"port": 0}]
    });
    let apps = ["/host-fixed", "/bridge-fixed", "/plain"];
    for app in [host, bridge, plain] {
        stride.create(app).await;
    }
    // Which apps hold each port (any task that is not over).
    let holders = || async {
        let tasks = stride.get("/v2/tasks").await["tasks"].clone();
        let mut holders: Vec<(u64, &str)> = Vec::new();
        for task in tasks.as_array().unwrap() {
            let app = apps.into_iter().find(|a| task["appId"] == *a).unwrap();
            holders.push((task["ports"][0].as_u64().unwrap_or(0), app));
        }
        holders
    };
    let never_shared = || async {
        let held = holders().await;
        for port in [ports.nth(0), ports.nth(1)].map(u64::from) {
            let on_port: Vec<_> = held.iter().filter(|(p, _)| *p == port).collect();
            assert!(on_port.len() <= 1, "two tasks on port {port}: {held:?}");
        }
        held
    };
    wait_until("both ports to be taken", WAIT, || async {
        never_shared().await.len() == 2
    })
    .await;
    let waiting: Vec<&str> = {
        let held = never_shared().await;
        apps.into_iter()
            .filter(|a| held.iter().all(|(_, h)| h != a))
            .collect()
    };
    // The two fixed-port apps cannot both run: at least one waits, and
    // every app without a task says why.
    assert!(waiting.iter().any(|a| a.ends_with("-fixed")), "{waiting:?}");
    for app in &waiting {
        wait_until(&format!("{app} to wait for ports"), WAIT, || async {
            stride.queue_reason(app).await.contains("InsufficientPorts")
        })
        .await;
    }
    never_shared_through_a_whole_activation(&stride.server, &never_shared).await;
    // When the first port's holder goes, the waiting app starts, still alone on it.
    let held = never_shared().await;
    let (_, holder) = held
        .iter()
        .find(|(p, _)| *p == u64::from(ports.nth(0)))
        .unwrap();
    stride.delete(holder).await;
    wait_until("a waiting app to start", WAIT, || async {
        never_shared()
            .await
            .iter()
            .any(|(_, a)| waiting.contains(a))
    })
    .await;
    never_shared_through_a_whole_activation(&stride.server, &never_shared).await;
    for app in apps.into_iter().filter(|a| a != holder) {
        stride.delete(app).await;
    }
    wait_until("no container left behind", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;
}

/// Checks `never_shared` until the reconciler has planned over the state
/// as it is now (two more activations).
async fn never_shared_through_a_whole_activation<F, Fut>(server: &Server, never_shared: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
{
    let before = activations(server).await;
    wait_until("a whole reconciler activation", WAIT, || async {
        never_shared().await;
        activations(server).await >= before + 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_host_port_zero_is_reachable_directly_and_through_haproxy() {
    if docker::engine().is_none() || real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(251);
    let stride = Stride::start_with(
        &ports.slice(0, 19),
        &docker::socket(),
        &[
            "--service-ports",
            &ports.slice(200, 249),
            "--stream-progress-interval",
            "200ms",
        ],
    );
    let mut app = docker_app(
        "/bridged",
        "exec httpd -f -p 80 -h /www",
        json!({"network": "BRIDGE"}),
    );
    app["labels"] = json!({"HAPROXY_GROUP": "external"});
    app["container"]["portMappings"] = json!([{"containerPort": 80, "hostPort": 0, "servicePort": ports.nth(210), "name": "http"}]);
    stride.create(app).await;
    let task = stride.wait_running("/bridged", 1).await.remove(0);
    let host_port = task["ports"][0].as_u64().unwrap();
    assert!(
        (ports.nth(0).into()..=ports.nth(19).into()).contains(&host_port),
        "{task}"
    );
    wait_until("the container to answer on its host port", WAIT, || async {
        http_body(host_port)
            .await
            .is_some_and(|b| b.contains("hello from stride-test"))
    })
    .await;
    let name = &stride.agent_containers()[0];
    assert_eq!(
        inspect(
            name,
            "{{.HostConfig.NetworkMode}} {{json .HostConfig.PortBindings}}"
        ),
        format!("bridge {{\"80/tcp\":[{{\"HostIp\":\"\",\"HostPort\":\"{host_port}\"}}]}}")
    );

    let lb_dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(&stride.server.url, lb_dir.path(), ports.nth(250));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    sidecar.wait_applied(&stride.server).await;
    wait_until("HAProxy to route the service port", WAIT, || async {
        http_body(ports.nth(210).into())
            .await
            .is_some_and(|b| b.contains("hello from stride-test"))
    })
    .await;
    stride.delete("/bridged").await;
    wait_until("no container left behind", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;
}

/// Marathon 1.5's `networks` form with a user network, and the rest of
/// the Docker definition: `args` instead of `cmd`, `parameters`, a
/// read-only volume, a mapping without a host port; `privileged` reaches
/// the engine, which cannot grant it in this sandbox (no
/// `CAP_SYS_RESOURCE`) and says so.
#[tokio::test(flavor = "multi_thread")]
async fn user_networks_args_parameters_privileged_and_volumes_reach_the_container() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let stride = Stride::start(&ports.slice(0, 19));
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();
    let script = "env > /mnt/mesos/sandbox/env.txt; cat /data/hello > /mnt/mesos/sandbox/seen.txt; \
                  touch /data/written 2> /mnt/mesos/sandbox/ro.txt; exec httpd -f -p 80 -h /www";
    let mut app = docker_app(
        "/user",
        "",
        json!({
            "parameters": [{"key": "label", "value": "team=web"}, {"key": "env", "value": "EXTRA=1"}]
        }),
    );
    app.as_object_mut().unwrap().remove("cmd");
    app["args"] = json!(["sh", "-c", script]);
    app["env"] = json!({"GREETING": "hello"});
    app["networks"] = json!([{"mode": "container", "name": "stride-test-net"}]);
    app["container"]["docker"]
        .as_object_mut()
        .unwrap()
        .remove("network");
    app["container"]["portMappings"] = json!([
        {"containerPort": 80, "hostPort": 0, "name": "web"},
        {"containerPort": 9000, "name": "admin"}
    ]);
    app["container"]["volumes"] =
        json!([{"containerPath": "/data", "hostPath": data.path(), "mode": "RO"}]);
    stride.create(app).await;
    let task = stride.wait_running("/user", 1).await.remove(0);
    let id = task["id"].as_str().unwrap();
    let host_port = task["ports"][0].as_u64().unwrap();
    wait_until("the container to answer on its host port", WAIT, || async {
        http_body(host_port)
            .await
            .is_some_and(|b| b.contains("hello from stride-test"))
    })
    .await;
    let sandbox = stride.sandbox(id);
    let env = std::fs::read_to_string(sandbox.join("env.txt")).unwrap();
    for line in [
        format!("PORT0={host_port}"),
        "PORT1=9000".to_owned(),
        format!("PORT_WEB={host_port}"),
        "PORT_ADMIN=9000".to_owned(),
        "EXTRA=1".to_owned(),
        "GREETING=hello".to_owned(),
        "HOST=localhost".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from {env}");
    }
    assert_eq!(
        std::fs::read_to_string(sandbox.join("seen.txt")).unwrap(),
        "from the host\n"
    );
    let refused = std::fs::read_to_string(sandbox.join("ro.txt")).unwrap();
    assert!(refused.contains("Read-only file system"), "{refused}");
    let name = containers(&format!("stride.task={id}")).remove(0);
    assert_eq!(
        inspect(
            &name,
            "{{.HostConfig.NetworkMode}} {{.HostConfig.Privileged}} {{index .Config.Labels \"team\"}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}"
        ),
        format!(
            "stride-test-net false web {} null",
            json!(["sh", "-c", script])
        )
    );

    let privileged = docker_app("/privileged", HTTPD, json!({"privileged": true}));
    stride.create(privileged).await;
    let failure = stride.wait_failure("/privileged").await;
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.starts_with("Failed to launch container: Failed to start container 'mesos-")
            && message.contains("from image 'stride-test/busybox:local': ")
            && message.contains("caps"),
        "{message}"
    );
    stride.delete("/privileged").await;
    stride.delete("/user").await;
    wait_until("no container left behind", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;
}

/// The engine's time format for `--since`/`--until`, to the nanosecond.
fn now() -> String {
    let now = chrono::Utc::now();
    format!("{}.{:09}", now.timestamp(), now.timestamp_subsec_nanos())
}

/// `docker events` for one container: `action signal` per line.
fn events_of(name: &str, since: &str) -> Vec<String> {
    let until = now();
    let filter = format!("container={name}");
    docker::docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &filter,
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"signal\"}}",
    ])
    .lines()
    .map(|l| l.trim().to_owned())
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_uses_the_grace_period_as_docker_stop_time() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let stride = Stride::start(&ports.slice(0, 19));
    let since = now();
    // PID 1 with SIGTERM ignored: only the SIGKILL after the grace ends it.
    let mut stubborn = docker_app(
        "/stubborn",
        "trap '' TERM; while true; do sleep 1; done",
        json!({}),
    );
    stubborn["taskKillGracePeriodSeconds"] = json!(2);
    // A clean shutdown on SIGTERM, well within its grace.
    let mut polite = docker_app(
        "/polite",
        "trap 'echo got TERM; exit 0' TERM; while true; do sleep 1 & wait $!; done",
        json!({}),
    );
    polite["taskKillGracePeriodSeconds"] = json!(30);
    stride.create(stubborn).await;
    stride.create(polite).await;
    let stubborn_task = stride.wait_running("/stubborn", 1).await.remove(0);
    let polite_task = stride.wait_running("/polite", 1).await.remove(0);
    let name_of = |task: &Value| {
        let id = task["id"].as_str().unwrap();
        containers(&format!("stride.task={id}")).remove(0)
    };
    let (stubborn_name, polite_name) = (name_of(&stubborn_task), name_of(&polite_task));
    let polite_sandbox = stride.sandbox(polite_task["id"].as_str().unwrap());
    stride.delete("/stubborn").await;
    stride.delete("/polite").await;
    wait_until("both containers to be removed", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;

    // One `docker stop` each: SIGTERM, then for the stubborn one SIGKILL
    // (status 137) once its 2 s were up; the polite one exited by itself.
    let kills = |events: Vec<String>| -> Vec<String> {
        events
            .into_iter()
            .filter(|e| e.starts_with("kill"))
            .collect()
    };
    assert_eq!(
        kills(events_of(&stubborn_name, &since)),
        ["kill 15", "kill 9"]
    );
    assert_eq!(kills(events_of(&polite_name, &since)), ["kill 15"]);
    let stdout = std::fs::read_to_string(polite_sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("got TERM"), "{stdout}");
    let events = all_events(&stride.http, &stride.server).await;
    for (task, status) in [(&stubborn_task, 137), (&polite_task, 0)] {
        let updates: Vec<&Value> = events.iter().filter(|e| e["task"] == task["id"]).collect();
        let states: Vec<&str> = updates
            .iter()
            .filter_map(|e| e["mesos_state"].as_str())
            .collect();
        assert!(
            states.ends_with(&["TASK_KILLING", "TASK_KILLED"]),
            "{states:?}"
        );
        let last = updates
            .iter()
            .rev()
            .find(|e| e["mesos_state"] == "TASK_KILLED")
            .unwrap();
        assert_eq!(
            last["message"],
            format!("Container exited with status {status}")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_stride_finds_its_running_containers_and_kills_none_twice() {
    if docker::engine().is_none() {
        return;
    }
    let ports = ports(20);
    let mut stride = Stride::start(&ports.slice(0, 19));
    let mut app = docker_app("/steady", HTTPD, json!({}));
    app["instances"] = json!(2);
    stride.create(app).await;
    let before: BTreeSet<String> = stride
        .wait_running("/steady", 2)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    let names: BTreeSet<String> = stride.agent_containers().into_iter().collect();
    assert_eq!(names.len(), 2);
    let since = now();

    stride.kill_and_restart();
    // The restarted cluster adopts both containers; Stride reconciles and
    // keeps its tasks: same ids, same containers, nothing relaunched.
    wait_until(
        "the restarted Stride to see its tasks running",
        WAIT,
        || async {
            let ids: BTreeSet<String> = stride
                .running("/steady")
                .await
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect();
            ids == before
        },
    )
    .await;
    // The reconciler has planned over this state: still nothing relaunched.
    wait_for_a_whole_activation(&stride.server).await;
    let after: BTreeSet<String> = stride
        .tasks("/steady")
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after, before);
    assert_eq!(
        stride
            .agent_containers()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        names
    );
    for name in &names {
        assert_eq!(inspect(name, "{{.State.Status}}"), "running");
        let touched = events_of(name, &since);
        assert!(touched.is_empty(), "{name} was touched: {touched:?}");
    }
    for task in stride.running("/steady").await {
        let port = task["ports"][0].as_u64().unwrap();
        assert!(http_body(port).await.is_some(), "{task}");
    }

    // Deleting stops each container once.
    stride.delete("/steady").await;
    wait_until("no container left behind", WAIT, || async {
        stride.agent_containers().is_empty()
    })
    .await;
    for name in &names {
        let stops: Vec<String> = events_of(name, &since)
            .into_iter()
            .filter(|e| e == "kill 15")
            .collect();
        assert_eq!(stops.len(), 1, "{name}: {stops:?}");
    }
}

use crate::support::stream_client;
