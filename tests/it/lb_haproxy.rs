//! `stride lb haproxy` with real parts: the `stride` binary (server and
//! sidecar) and real HAProxy on loopback. Service ports are each test's
//! own (`support::ports`).
//!
//! Server changes are driven both through the sidecar's apply layer (a
//! state holding tasks that are real local HTTP servers) and end to end
//! (`tasks_launched_by_stride_get_traffic_through_haproxy`: tasks launched
//! by Stride on `stride local-mesos`).

use crate::support;

use crate::support::lb::{HaproxyGuard, Sidecar, haproxy_bin, haproxy_pids, head};
use crate::support::ports::ports;
use crate::support::real_parts;
use crate::support::{LocalMesos, Server, client, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use stride_core::projection::State;
use stride_lb::apply::Applier;
use stride_lb::config::{Backends, RenderOptions, render};
use stride_lb::install::ConfigFile;
use stride_lb::model::Selection;
use stride_lb::status::{Status, StatusHandle};
use stride_lb::supervisor::{Haproxy, Launch};
use stride_log::event::app::AppSpec;
use stride_log::event::condition::Condition;
use stride_log::event::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

/// `stride serve --no-mesos` with this test's service ports, and progress
/// messages often enough that a sidecar's applied seq reaches the head fast.
fn stride(data_dir: &Path, listen: Option<u16>, service_ports: &str) -> Server {
    let listen = format!("127.0.0.1:{}", listen.unwrap_or(0));
    let extra = [
        "--no-mesos",
        "--service-ports",
        service_ports,
        "--stream-progress-interval",
        "200ms",
    ];
    Server::start_on(data_dir, &listen, &extra)
}

async fn create(server: &Server, app: Value) {
    let answer = client()
        .post(server.url("/v2/apps"))
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
}

fn labelled(id: &str, labels: Value) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
           "portDefinitions": [{"port": 0}], "labels": labels})
}

/// A client that opens a new connection per request, so HAProxy balances
/// every one.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn http_status(port: u16, host: &str) -> Option<u16> {
    let answer = fresh_client()
        .get(format!("http://127.0.0.1:{port}/"))
        .header("Host", host)
        .send()
        .await
        .ok()?;
    Some(answer.status().as_u16())
}

#[test]
fn every_golden_config_passes_haproxy_check() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lb");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let output = Command::new(haproxy_bin())
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}{}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 3);
}

#[tokio::test]
async fn apps_in_the_group_get_frontends_and_answer_503_while_they_have_no_task() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(11);
    let dir = tempfile::tempdir().unwrap();
    let server = stride(&dir.path().join("data"), None, &ports.slice(0, 9));
    let lb_dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    create(
        &server,
        labelled(
            "/prod/web",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"}),
        ),
    )
    .await;
    create(
        &server,
        labelled("/prod/db", json!({"HAPROXY_GROUP": "internal,external"})),
    )
    .await;
    create(
        &server,
        labelled("/prod/private", json!({"HAPROXY_GROUP": "internal"})),
    )
    .await;
    create(
        &server,
        json!({"id": "/prod/noport", "cmd": "run", "portDefinitions": [], "labels": {"HAPROXY_GROUP": "external"}}),
    )
    .await;
    sidecar.wait_applied(&server).await;

    let config = sidecar.config_text();
    assert!(
        config.contains(&format!("bind 127.0.0.1:{}", ports.nth(0))),
        "{config}"
    );
    assert!(
        config.contains(&format!(
            "backend be_prod_web_{}\n    mode http",
            ports.nth(0)
        )),
        "{config}"
    );
    assert!(
        config.contains(&format!("bind 127.0.0.1:{}", ports.nth(1))),
        "{config}"
    );
    assert!(
        config.contains(&format!(
            "backend be_prod_db_{}\n    mode tcp",
            ports.nth(1)
        )),
        "{config}"
    );
    assert!(
        !config.contains("be_prod_private"),
        "another group's app: {config}"
    );
    assert!(
        !config.contains("be_prod_noport"),
        "an app without a service port: {config}"
    );
    assert!(
        config.contains(&format!("bind 127.0.0.1:{}", ports.nth(10))),
        "the shared HTTP frontend: {config}"
    );
    assert_eq!(
        config.matches("server srv").count(),
        16,
        "8 free slots per backend"
    );

    // Served, with no server yet: HAProxy itself answers.
    assert_eq!(
        http_status(ports.nth(0), "web.example.com").await,
        Some(503)
    );
    assert_eq!(
        http_status(ports.nth(10), &format!("web.example.com:{}", ports.nth(10))).await,
        Some(503)
    );
    assert!(
        tokio::net::TcpStream::connect(&format!("127.0.0.1:{}", ports.nth(1)))
            .await
            .is_ok()
    );

    let status = sidecar.status().await;
    assert_eq!(status["connected"], true);
    assert!(status["reloads"].as_u64() >= Some(1), "{status}");
    assert_eq!(status["backends"], 2);
    assert!(
        status["latency"]["reload"]["p50Ms"].as_f64().is_some(),
        "{status}"
    );
    assert_eq!(status["haproxy"]["running"], true);

    // Stride knows the sidecar and how far it is.
    let head = head(&server).await;
    let sidecars: Value = client()
        .get(server.url("/v1/sidecars"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &sidecars["sidecars"][0];
    assert_eq!(listed["name"], "test-lb", "{sidecars}");
    assert_eq!(listed["drainConfirmation"], true);
    assert_eq!(listed["appliedSeq"], head, "{sidecars}");
}

#[tokio::test]
async fn a_config_haproxy_rejects_is_kept_aside_and_the_other_apps_still_update() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(11);
    let dir = tempfile::tempdir().unwrap();
    let server = stride(&dir.path().join("data"), None, &ports.slice(0, 9));
    let lb_dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    create(
        &server,
        labelled(
            "/bad",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "fastest"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    let status = sidecar.status().await;
    assert_eq!(status["rejected"][0]["app"], "/bad", "{status}");
    assert!(
        status["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("balance"),
        "{status}"
    );
    let kept = std::fs::read_to_string(lb_dir.path().join("haproxy.cfg.rejected")).unwrap();
    assert!(kept.contains("balance fastest"), "{kept}");
    assert!(!sidecar.config_text().contains("be_bad"));

    create(
        &server,
        labelled(
            "/good",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    assert!(
        sidecar
            .config_text()
            .contains(&format!("be_good_{}", ports.nth(1)))
    );
    assert_eq!(http_status(ports.nth(1), "any").await, Some(503));

    // A service port another process holds: that app is left out, named.
    let _squatter = std::net::TcpListener::bind(format!("127.0.0.1:{}", ports.nth(2))).unwrap();
    create(
        &server,
        labelled("/squatted", json!({"HAPROXY_GROUP": "external"})),
    )
    .await;
    sidecar.wait_applied(&server).await;
    let status = sidecar.status().await;
    let squatted = status["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["app"] == "/squatted");
    assert!(
        squatted.is_some_and(|r| r["reason"] == format!("port {} is in use on this host", ports.nth(2))),
        "{status}"
    );
    assert!(!sidecar.config_text().contains("be_squatted"));

    // Fixed, it is tried again and goes in.
    let fixed = labelled(
        "/bad",
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "leastconn"}),
    );
    let answer = client()
        .put(server.url("/v2/apps/bad?force=true"))
        .json(&fixed)
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
    sidecar.wait_applied(&server).await;
    assert!(sidecar.config_text().contains(&format!(
        "be_bad_{}\n    mode tcp\n    balance leastconn",
        ports.nth(0)
    )));
    let status = sidecar.status().await;
    assert_eq!(status["rejected"][0]["app"], "/squatted", "{status}");
    assert_eq!(status["rejected"].as_array().unwrap().len(), 1, "{status}");
}

#[tokio::test]
async fn a_killed_sidecar_restarts_into_the_same_haproxy_and_the_same_config() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(11);
    let dir = tempfile::tempdir().unwrap();
    let server = stride(&dir.path().join("data"), None, &ports.slice(0, 9));
    let lb_dir = tempfile::tempdir().unwrap();
    let mut sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    create(
        &server,
        labelled(
            "/a",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    let master = stride_lb::master::MasterCli::new(&sidecar.master_socket());
    let before = master.processes().await.unwrap();

    let _ = sidecar.child.kill();
    let _ = sidecar.child.wait();
    wait_until("Stride to forget the sidecar", WAIT, || async {
        let listed: Value = client()
            .get(server.url("/v1/sidecars"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed["sidecars"] == json!([])
    })
    .await;
    assert_eq!(
        http_status(ports.nth(0), "a.example").await,
        Some(503),
        "HAProxy serves without its sidecar"
    );
    create(
        &server,
        labelled("/b", json!({"HAPROXY_GROUP": "external"})),
    )
    .await;

    sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    sidecar.wait_applied(&server).await;
    let after = master.processes().await.unwrap();
    assert_eq!(
        after.master_pid, before.master_pid,
        "the running HAProxy is adopted"
    );
    assert_eq!(after.reloads, before.reloads + 1, "one reload, for /b");
    let (ok, dry_run, stderr) = support::run_stride(&[
        "lb",
        "haproxy",
        "--dry-run",
        "--stride",
        &server.url,
        "--config",
        sidecar.config.to_str().unwrap(),
        "--http-port",
        &format!("{}", ports.nth(10)),
        "--bind-address",
        "127.0.0.1",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        sidecar.config_text(),
        dry_run,
        "a fresh sidecar would write the same file"
    );

    // Restarted again with nothing new: no reload at all.
    drop(sidecar);
    let sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    sidecar.wait_applied(&server).await;
    assert_eq!(master.processes().await.unwrap().reloads, after.reloads);
    assert_eq!(sidecar.status().await["reloads"], 0);
}

#[tokio::test]
async fn a_dead_haproxy_is_started_again_with_the_current_config() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(11);
    let dir = tempfile::tempdir().unwrap();
    let server = stride(&dir.path().join("data"), None, &ports.slice(0, 9));
    let lb_dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    create(
        &server,
        labelled(
            "/a",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    let first = sidecar.status().await["haproxy"]["masterPid"].clone();

    for pid in haproxy_pids(&sidecar.master_socket()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_until("HAProxy to be started again", WAIT, || async {
        let status = sidecar.status().await;
        status["haproxy"]["running"] == true && status["haproxy"]["masterPid"] != first
    })
    .await;
    wait_until("the service port to answer again", WAIT, || async {
        http_status(ports.nth(0), "a").await == Some(503)
    })
    .await;
    create(
        &server,
        labelled(
            "/b",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    assert_eq!(http_status(ports.nth(1), "b").await, Some(503));
    assert_eq!(sidecar.status().await["lastError"], Value::Null);
}

#[tokio::test]
async fn an_haproxy_started_elsewhere_is_managed_through_its_master_socket() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(11);
    let dir = tempfile::tempdir().unwrap();
    let server = stride(&dir.path().join("data"), None, &ports.slice(0, 9));
    let lb_dir = tempfile::tempdir().unwrap();
    let config = lb_dir.path().join("haproxy.cfg");
    let socket = lb_dir.path().join("operator.sock");
    std::fs::write(&config, "defaults\n    timeout connect 5s\n").unwrap();
    let _haproxy = HaproxyGuard(socket.clone());
    let mut operator = Command::new(haproxy_bin())
        .arg("-W")
        .arg("-S")
        .arg(&socket)
        .arg("-f")
        .arg(&config)
        .spawn()
        .unwrap();
    let master = stride_lb::master::MasterCli::new(&socket);
    wait_until("the operator's HAProxy", WAIT, || async {
        master.processes().await.is_ok()
    })
    .await;
    let theirs = master.processes().await.unwrap().master_pid;

    let sidecar = Sidecar::start_with(
        &server.url,
        lb_dir.path(),
        ports.nth(10),
        &["--socket", socket.to_str().unwrap()],
    );
    create(
        &server,
        labelled(
            "/a",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    assert_eq!(http_status(ports.nth(0), "a").await, Some(503));
    assert_eq!(
        master.processes().await.unwrap().master_pid,
        theirs,
        "theirs, reloaded"
    );
    assert_eq!(sidecar.status().await["haproxy"]["masterPid"], theirs);
    drop(sidecar);
    assert_eq!(http_status(ports.nth(0), "a").await, Some(503));
    let _ = operator.kill();
    let _ = operator.wait();
}

#[tokio::test]
async fn with_stride_killed_haproxy_keeps_serving_and_the_sidecar_resumes_without_a_gap() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(100);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = stride(&data, Some(ports.nth(99)), &ports.slice(0, 9));
    let lb_dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    create(
        &server,
        labelled(
            "/a",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    let applied = sidecar.status().await["appliedSeq"].clone();

    server.kill();
    wait_until("the sidecar to notice", WAIT, || async {
        sidecar.status().await["connected"] == false
    })
    .await;
    assert_eq!(
        http_status(ports.nth(0), "a").await,
        Some(503),
        "HAProxy serves while Stride is down"
    );
    assert_eq!(sidecar.status().await["appliedSeq"], applied);

    let server = stride(&data, Some(ports.nth(99)), &ports.slice(0, 9));
    create(
        &server,
        labelled(
            "/b",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}),
        ),
    )
    .await;
    sidecar.wait_applied(&server).await;
    assert_eq!(http_status(ports.nth(1), "b").await, Some(503));
    let status = sidecar.status().await;
    assert_eq!(status["connected"], true);
    assert!(status["reconnects"].as_u64() >= Some(1), "{status}");
    assert_eq!(
        status["stateFetches"], 1,
        "resumed the stream, never re-read the state: {status}"
    );
    assert!(
        sidecar
            .config_text()
            .contains(&format!("be_a_{}", ports.nth(0)))
            && sidecar
                .config_text()
                .contains(&format!("be_b_{}", ports.nth(1)))
    );
}

// ---- Server changes through the apply layer, with tasks that are real HTTP servers.

/// A task stand-in: answers every request with its name.
async fn task_server(name: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, serve)
}

/// States built the way the sidecar builds them: events through `apply`.
struct StateBuilder(State);

impl StateBuilder {
    fn push(&mut self, event: Event) {
        let seq = self.0.seq.next();
        self.0.apply(&Envelope {
            seq,
            id: uuid::Uuid::now_v7(),
            recorded_at: seq.0,
            actor: Actor::Mesos,
            command_id: uuid::Uuid::now_v7(),
            event,
        });
    }

    fn app(&mut self, definition: Value) {
        let definition: AppSpec = serde_json::from_value(definition).unwrap();
        self.push(Event::AppCreated(AppCreated {
            app: definition.id.clone(),
            definition,
        }));
    }

    fn status(&mut self, task: &str, condition: Condition) {
        self.push(Event::TaskStatusRecorded(TaskStatusRecorded {
            task: TaskId::from(task),
            app: Some(AppId::from("/web")),
            condition,
            mesos_state: format!("{condition:?}"),
            reason: None,
            message: None,
            agent: None,
            healthy: None,
            status_uuid: None,
            mesos_timestamp: None,
        }));
    }

    fn running(&mut self, task: &str, port: u16) {
        self.push(Event::TaskLaunchRequested(TaskLaunchRequested {
            task: TaskId::from(task),
            app: AppId::from("/web"),
            app_version: 0,
            agent: AgentId::from("local"),
            host: "localhost".into(),
            ports: vec![u32::from(port)],
            offer: "o".into(),
        }));
        self.status(task, Condition::Running);
    }

    fn healthy(&mut self, task: &str, healthy: bool) {
        self.push(Event::HealthChanged(HealthChanged {
            task: TaskId::from(task),
            app: AppId::from("/web"),
            healthy,
            cause: None,
        }));
    }
}

/// Which tasks answer through HAProxy, over enough requests to see them all.
async fn answering(port: u16) -> BTreeSet<String> {
    let client = fresh_client();
    let mut names = BTreeSet::new();
    for _ in 0..24 {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        names.insert(answer.text().await.unwrap());
    }
    names
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_changes_reach_haproxy_through_the_runtime_api_without_a_reload() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(11);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    let master_socket = dir.path().join("master.sock");
    let options = RenderOptions {
        group: "external".into(),
        stats_socket: dir.path().join("stats.sock"),
        bind: [127, 0, 0, 1].into(),
        http_port: ports.nth(10),
    };
    let file = ConfigFile::new(&config, &haproxy_bin());
    file.install(&render(&options, &Backends::new()).text)
        .unwrap();
    let haproxy = Arc::new(Haproxy::new(
        Launch::Spawn {
            binary: haproxy_bin(),
        },
        &master_socket,
        &config,
    ));
    let _guard = HaproxyGuard(master_socket.clone());
    haproxy.ensure_running().await.unwrap();
    let (_, seen) = tokio::sync::watch::channel(None);
    let selection = Selection {
        group: "external".into(),
        http_port: ports.nth(10),
    };
    let mut applier = Applier::new(
        options,
        selection,
        file,
        haproxy.clone(),
        StatusHandle::new(Status::default(), seen),
    );

    let (one, _a) = task_server("one").await;
    let (two, _b) = task_server("two").await;
    let (three, _c) = task_server("three").await;
    let mut state = StateBuilder(State::default());
    state.app(
        json!({"id": "/web", "instances": 3, "portDefinitions": [{"port": ports.nth(0)}],
                     "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}}),
    );
    state.running("one", one);
    state.running("two", two);
    applier.apply(&state.0).await.unwrap();
    assert_eq!(answering(ports.nth(0)).await, names(&["one", "two"]));
    let before = haproxy.master.processes().await.unwrap();

    state.running("three", three);
    applier.apply(&state.0).await.unwrap();
    assert_eq!(
        answering(ports.nth(0)).await,
        names(&["one", "three", "two"])
    );

    state.status("two", Condition::Failed);
    applier.apply(&state.0).await.unwrap();
    assert_eq!(
        answering(ports.nth(0)).await,
        names(&["one", "three"]),
        "a task that went down gets nothing"
    );

    state.healthy("one", false);
    applier.apply(&state.0).await.unwrap();
    assert_eq!(
        answering(ports.nth(0)).await,
        names(&["three"]),
        "nor does an unhealthy one"
    );

    state.healthy("one", true);
    state.push(Event::TaskKillRequested(TaskKillRequested {
        task: TaskId::from("three"),
        app: AppId::from("/web"),
        reason: "scale".into(),
    }));
    applier.apply(&state.0).await.unwrap();
    assert_eq!(
        answering(ports.nth(0)).await,
        names(&["one"]),
        "a kill-requested task drains"
    );
    let servers = haproxy_query(
        &dir.path().join("stats.sock"),
        &format!("show servers state be_web_{}", ports.nth(0)),
    )
    .await;
    assert_eq!(admin_state(&servers, "srv3") & DRAIN, DRAIN, "{servers}");

    let after = haproxy.master.processes().await.unwrap();
    assert_eq!(after, before, "same worker, no reload");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("server srv1 127.0.0.1:{one}\n")),
        "the file shows the servers as they are: {text}"
    );

    // More instances than slots: a reload, seamless for clients hammering
    // the port meanwhile.
    let reloaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = reloaded.clone();
    let service = ports.nth(0);
    let hammer = tokio::spawn(async move {
        let client = fresh_client();
        let mut failures = Vec::new();
        let mut sent = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) || sent < 50 {
            sent += 1;
            match client
                .get(format!("http://127.0.0.1:{service}/"))
                .send()
                .await
            {
                Ok(answer) if answer.status() == 200 => {}
                Ok(answer) => failures.push(answer.status().to_string()),
                Err(error) => failures.push(error.to_string()),
            }
        }
        failures
    });
    state.push(Event::AppScaled(AppScaled {
        app: AppId::from("/web"),
        previous: 3,
        instances: 5,
    }));
    applier.apply(&state.0).await.unwrap();
    reloaded.store(true, std::sync::atomic::Ordering::Relaxed);
    let grown = haproxy.master.processes().await.unwrap();
    assert_eq!(grown.reloads, before.reloads + 1);
    assert_eq!(
        std::fs::read_to_string(&config)
            .unwrap()
            .matches("server srv")
            .count(),
        10
    );
    assert_eq!(
        answering(ports.nth(0)).await,
        names(&["one"]),
        "servers survive the reload"
    );
    assert_eq!(
        hammer.await.unwrap(),
        Vec::<String>::new(),
        "no request failed during the reload"
    );

    // HAProxy dies and is started again from the file, which shows the
    // servers as they are; re-applying the runtime state needs no reload.
    for pid in haproxy_pids(&master_socket) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let restarted = haproxy.ensure_running().await.unwrap();
    assert_ne!(restarted.master_pid, grown.master_pid);
    applier.invalidate();
    applier.apply(&state.0).await.unwrap();
    assert_eq!(answering(ports.nth(0)).await, names(&["one"]));
    let servers = haproxy_query(
        &dir.path().join("stats.sock"),
        &format!("show servers state be_web_{}", ports.nth(0)),
    )
    .await;
    assert_eq!(
        admin_state(&servers, "srv3") & DRAIN,
        DRAIN,
        "still draining: {servers}"
    );
    assert_eq!(haproxy.master.processes().await.unwrap().reloads, 0);
}

/// HAProxy's `SRV_ADMF_FDRAIN`: drain state set through the Runtime API.
const DRAIN: u32 = 0x08;

/// A server's `srv_admin_state` in `show servers state` output.
fn admin_state(servers: &str, server: &str) -> u32 {
    let line = servers
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(server))
        .unwrap_or_else(|| panic!("{server} in {servers}"));
    line.split_whitespace().nth(6).unwrap().parse().unwrap()
}

async fn haproxy_query(stats_socket: &Path, command: &str) -> String {
    let mut api = stride_lb::runtime::RuntimeApi::new(stats_socket);
    api.query(command).await.unwrap()
}

// ---- The full path, once Stride launches tasks.

#[tokio::test]
async fn tasks_launched_by_stride_get_traffic_through_haproxy() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let ports = ports(100);
    let mesos = LocalMesos::start(&["--ports", &ports.slice(50, 99)]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(
        dir.path(),
        &[
            "--master",
            &mesos.url,
            "--service-ports",
            &ports.slice(0, 9),
            "--stream-progress-interval",
            "200ms",
        ],
    );
    let lb_dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(&server.url, lb_dir.path(), ports.nth(10));
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    // Each task serves a file naming it.
    let cmd = "mkdir -p www && echo -n $MESOS_TASK_ID > www/id && cd www && exec python3 -m http.server $PORT0";
    create(&server, json!({"id": "/web", "cmd": cmd, "instances": 2, "cpus": 0.1, "mem": 32,
        "portDefinitions": [{"port": 0}], "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"}})).await;
    let client = fresh_client();
    let service = ports.nth(0);
    let seen = |client: reqwest::Client| async move {
        let mut ids = BTreeSet::new();
        for _ in 0..24 {
            if let Ok(answer) = client
                .get(format!("http://127.0.0.1:{service}/id"))
                .send()
                .await
            {
                if answer.status() == 200 {
                    ids.insert(answer.text().await.unwrap_or_default());
                }
            }
        }
        ids
    };
    wait_until(
        "both tasks to answer through HAProxy",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            async move { seen(client).await.len() == 2 }
        },
    )
    .await;
    let reloads = sidecar.status().await["reloads"].clone();
    let answer = client
        .put(server.url("/v2/apps/web?force=true"))
        .json(&json!({"instances": 1}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    wait_until("one task to answer", Duration::from_secs(60), || {
        let client = client.clone();
        async move { seen(client).await.len() == 1 }
    })
    .await;
    assert_eq!(
        sidecar.status().await["reloads"],
        reloads,
        "scaling down needs no reload"
    );
}
