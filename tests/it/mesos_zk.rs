//! `stride serve --master zk://.../mesos` (issue 15): Stride finds the
//! leading Mesos master in a real ZooKeeper and follows it. The real master
//! (`../shared/real-mesos`) runs standalone and registers nowhere, so the
//! test announces masters as Mesos 1.11 does: an ephemeral sequential
//! `json.info_<seq>` node holding the JSON `MasterInfo` the real master
//! reports of itself (`GET_MASTER`). A master listed before the real one
//! (a lower sequence) leads until its node goes: one on a dead port, or,
//! for the redirect case only, a scripted fake master answering `307`
//! towards the real one (neither the real master nor the local cluster can
//! play a non-leading master here).

use crate::support::fake_master::{FakeMaster, Reply};
use crate::support::mesos_framework::teardown_frameworks_named;
use crate::support::real_parts::zookeeper;
use crate::support::{
    Log, Server, all_events, client, get_json, metric, real_master, run_stride, wait_until,
};
use reqwest::Url;
use serde_json::{Value, json};
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode};

const WITHIN: Duration = Duration::from_secs(60);
pub const GROUP: &str = "/mesos";

/// The masters' group, written as the masters' contenders write it.
pub struct Group {
    client: Client,
}

impl Group {
    pub async fn connect(servers: &str) -> Group {
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(servers)
            .await
            .expect("a ZooKeeper session");
        Group { client }
    }

    /// Creates `json.info_<seq>` holding `info`; returns its name.
    pub async fn announce(&self, info: &Value) -> String {
        let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
        self.client
            .mkdir(GROUP, &persistent)
            .await
            .or_else(|e| match e {
                zookeeper_client::Error::NodeExists => Ok(()),
                e => Err(e),
            })
            .expect("the group's path");
        let node = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let data = serde_json::to_vec(info).expect("JSON");
        let (_, sequence) = self
            .client
            .create(&format!("{GROUP}/json.info_"), &data, &node)
            .await
            .expect("announced");
        format!("json.info_{sequence}")
    }

    async fn withdraw(&self, name: &str) {
        self.client
            .delete(&format!("{GROUP}/{name}"), None)
            .await
            .expect("withdrawn");
    }
}

/// The real master's `MasterInfo`, as it reports it.
pub async fn master_info(master: &str) -> Value {
    let answer: Value = client()
        .post(format!("{master}/api/v1"))
        .header("Accept", "application/json")
        .json(&json!({"type": "GET_MASTER"}))
        .send()
        .await
        .expect("GET_MASTER")
        .json()
        .await
        .expect("JSON");
    answer["get_master"]["master_info"].clone()
}

/// `info` moved to `port` on loopback, under another id.
fn elsewhere(info: &Value, port: u16) -> Value {
    let mut moved = info.clone();
    moved["id"] = json!(uuid::Uuid::new_v4().to_string());
    moved["port"] = json!(port);
    moved["pid"] = json!(format!("master@127.0.0.1:{port}"));
    moved["address"] = json!({"hostname": "localhost", "ip": "127.0.0.1", "port": port});
    moved
}

fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("an address").port()
}

async fn detected(server: &Server) -> Value {
    get_json(&client(), &server.url("/v1/info")).await["mesosMaster"].clone()
}

async fn wait_detected(server: &Server, what: &str, check: impl Fn(&Value) -> bool) {
    wait_until(what, WITHIN, || async { check(&detected(server).await) }).await;
}

/// Subscriptions since start, the first one aside.
async fn resubscriptions(server: &Server) -> f64 {
    metric(server, "stride_mesos_reconnects_total").await
}

async fn subscribed_now(server: &Server) -> bool {
    metric(
        server,
        "stride_mesos_subscription_state{state=\"subscribed\"}",
    )
    .await
        == 1.0
}

/// Each new framework Stride subscribed as, with the master it went
/// through (a resubscription as the same framework records nothing).
async fn subscriptions(server: &Server) -> Vec<(String, String)> {
    all_events(&client(), server)
        .await
        .iter()
        .filter(|e| e["type"] == "FrameworkSubscribed")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (field("framework"), field("master"))
        })
        .collect()
}

async fn count(server: &Server, kind: &str) -> usize {
    let events = all_events(&client(), server).await;
    events.iter().filter(|e| e["type"] == kind).count()
}

async fn tasks_running(server: &Server, app: &str) -> u64 {
    let app: Value = get_json(&client(), &server.url(&format!("/v2/apps{app}"))).await;
    app["app"]["tasksRunning"].as_u64().unwrap_or(0)
}

/// Whether the real master has framework `id` connected now.
async fn connected(master: &str, id: &str) -> bool {
    let frameworks: Value = get_json(&client(), &format!("{master}/master/frameworks")).await;
    frameworks["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["id"] == id && f["active"] == true && f["connected"] == true)
}

async fn scale(server: &Server, app: &str, instances: u64) {
    let response = client()
        .put(server.url(&format!("/v2/apps{app}")))
        .json(&json!({"instances": instances}))
        .send()
        .await
        .expect("scaled");
    assert!(response.status().is_success(), "{}", response.status());
}

fn start(dir: &std::path::Path, flag: &str, name: &str) -> (Server, Log) {
    Server::start_logged(dir, &["--master", flag, "--framework-name", name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stride_follows_the_leading_master_through_zookeeper_and_its_absence() {
    let Some(real) = real_master().await else {
        return;
    };
    let Some(mut ensemble) = zookeeper(1) else {
        return;
    };
    let flag = ensemble.url(GROUP);
    let name = format!("stride-zkm-{}", uuid::Uuid::new_v4());
    let dir = tempfile::tempdir().expect("a dir");
    let http = client();

    // No master registered (the path does not even exist): Stride waits,
    // says so, and serves.
    let (server, log) = start(dir.path(), &flag, &name);
    wait_detected(&server, "no master reported", |d| {
        d["detector"]
            .as_str()
            .is_some_and(|s| s.contains("no Mesos master registered"))
            && d["leading"].is_null()
    })
    .await;
    let info: Value = get_json(&http, &server.url("/v2/info")).await;
    assert_eq!(info["marathon_config"]["master"], json!(flag));
    assert_eq!(info["marathon_config"]["mesos_leader_ui_url"], Value::Null);
    assert_eq!(info["frameworkId"], Value::Null);
    wait_until("the log says no master is registered", WITHIN, || async {
        log.text().contains("no Mesos master registered")
    })
    .await;
    // The health of the subscription says so too.
    wait_until("the subscription reported down", WITHIN, || async {
        metric(
            &server,
            "stride_mesos_subscription_state{state=\"disconnected\"}",
        )
        .await
            == 1.0
    })
    .await;

    // A master on a dead port registers first, so it leads; the real one
    // second. Stride names the dead one and cannot subscribe.
    let group = Group::connect(&ensemble.servers()).await;
    let real_info = master_info(&real.url).await;
    let dead_port = dead_port();
    let dead = group.announce(&elsewhere(&real_info, dead_port)).await;
    let real_node = group.announce(&real_info).await;
    assert!(dead < real_node, "{dead} {real_node}");
    let dead_url = format!("http://127.0.0.1:{dead_port}/");
    wait_detected(&server, "the dead master named", |d| {
        d["leading"] == json!(dead_url)
    })
    .await;
    assert!(subscriptions(&server).await.is_empty());

    // Its node goes: the real master leads, and Stride subscribes to it.
    group.withdraw(&dead).await;
    wait_until("subscribed to the real master", WITHIN, || async {
        !subscriptions(&server).await.is_empty()
    })
    .await;
    let (framework, master) = subscriptions(&server).await.remove(0);
    assert_eq!(master, "http://127.0.0.1:5050/api/v1/scheduler");
    let info: Value = get_json(&http, &server.url("/v2/info")).await;
    assert_eq!(info["frameworkId"], json!(framework));
    assert_eq!(
        info["marathon_config"]["mesos_leader_ui_url"],
        json!("http://localhost:5050/")
    );
    let d = detected(&server).await;
    assert_eq!(d["node"], json!(real_node));
    assert_eq!(d["detector"], json!("watching"));

    // A task runs on the real agent.
    let app = "/zkm/sleep";
    let created = http
        .post(server.url("/v2/apps"))
        .json(&json!({"id": app, "cmd": "sleep 1000", "instances": 1, "cpus": 0.01, "mem": 8}))
        .send()
        .await
        .expect("created");
    assert_eq!(created.status(), 201);
    wait_until("a task running", WITHIN, || async {
        tasks_running(&server, app).await == 1
    })
    .await;

    // ZooKeeper stops, for longer than a session lives: the subscription
    // holds, writes still work and launch on the real agent.
    ensemble.kill(0);
    wait_detected(&server, "ZooKeeper reported unreachable", |d| {
        d["detector"]
            .as_str()
            .is_some_and(|s| s.contains("ZooKeeper unreachable"))
            && d["leading"] == json!("http://127.0.0.1:5050/")
    })
    .await;
    scale(&server, app, 2).await;
    wait_until("a second task running", WITHIN, || async {
        tasks_running(&server, app).await == 2
    })
    .await;
    wait_detected(&server, "Stride's ZooKeeper session over", |d| {
        d["detector"]
            .as_str()
            .is_some_and(|s| s.contains("Expired"))
    })
    .await;
    assert!(connected(&real.url, &framework).await);
    assert!(subscribed_now(&server).await);
    assert_eq!(resubscriptions(&server).await, 0.0, "resubscribed");
    assert_eq!(tasks_running(&server, app).await, 2);

    // ZooKeeper returns: watching resumes (a new session), and a new
    // leading master is followed. The real master's node goes (none leads:
    // the working subscription stays), a dead master's comes (Stride moves
    // to it and cannot subscribe), then the real master's again (Stride
    // subscribes to it as the same framework, its tasks untouched). The
    // test's own session expired too: it writes with a new one, as a
    // restarted master would.
    ensemble.restart(0).expect("ZooKeeper restarts");
    ensemble.wait_serving().expect("ZooKeeper serves");
    wait_detected(&server, "watching again", |d| {
        d["detector"] == json!("watching") && d["node"] == json!(real_node)
    })
    .await;
    let group = Group::connect(&ensemble.servers()).await;
    group.withdraw(&real_node).await;
    wait_detected(&server, "no master", |d| d["leading"].is_null()).await;
    let info: Value = get_json(&http, &server.url("/v2/info")).await;
    assert_eq!(info["marathon_config"]["mesos_leader_ui_url"], Value::Null);
    assert!(connected(&real.url, &framework).await);
    let dead = group.announce(&elsewhere(&real_info, dead_port)).await;
    wait_detected(&server, "the dead master named", |d| {
        d["node"] == json!(dead)
    })
    .await;
    wait_until("the real master's subscription dropped", WITHIN, || async {
        !subscribed_now(&server).await && !connected(&real.url, &framework).await
    })
    .await;
    group.withdraw(&dead).await;
    group.announce(&real_info).await;
    wait_until("resubscribed to the real master", WITHIN, || async {
        subscribed_now(&server).await && connected(&real.url, &framework).await
    })
    .await;
    assert_eq!(resubscriptions(&server).await, 1.0);
    // The same framework: a new one would have been recorded.
    assert_eq!(subscriptions(&server).await, [(framework.clone(), master)]);
    assert_eq!(tasks_running(&server, app).await, 2);
    assert_eq!(count(&server, "TaskLaunchRequested").await, 2);
    assert_eq!(count(&server, "TaskKillRequested").await, 0);
    let logged = log.text();
    assert!(logged.contains("leading Mesos master detected"), "{logged}");

    // Leave the shared master as found.
    let deleted = http
        .delete(server.url(&format!("/v2/apps{app}")))
        .send()
        .await
        .expect("deleted");
    assert!(deleted.status().is_success());
    wait_until("the tasks gone", WITHIN, || async {
        tasks_running(&server, app).await == 0
    })
    .await;
    drop(server);
    teardown_frameworks_named(&Url::parse(&real.url).expect("URL"), &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leading_node_that_redirects_is_followed_to_the_real_master() {
    let Some(real) = real_master().await else {
        return;
    };
    let Some(ensemble) = zookeeper(1) else {
        return;
    };
    let group = Group::connect(&ensemble.servers()).await;
    let real_info = master_info(&real.url).await;
    // Mesos's own 307 Location form: scheme-relative.
    let fake = FakeMaster::start(vec![Reply::Redirect(
        "//127.0.0.1:5050/api/v1/scheduler".into(),
    )])
    .await;
    let fake_port = fake.url.port().expect("a port");
    group.announce(&elsewhere(&real_info, fake_port)).await;
    group.announce(&real_info).await;
    let name = format!("stride-zkm-{}", uuid::Uuid::new_v4());
    let dir = tempfile::tempdir().expect("a dir");
    let (server, _log) = start(dir.path(), &ensemble.url(GROUP), &name);
    wait_until("subscribed through the redirect", WITHIN, || async {
        !subscriptions(&server).await.is_empty()
    })
    .await;
    let (_, master) = subscriptions(&server).await.remove(0);
    assert_eq!(master, "http://127.0.0.1:5050/api/v1/scheduler");
    assert_eq!(fake.subscribes().len(), 1);
    let d = detected(&server).await;
    assert_eq!(
        d["leading"],
        json!(format!("http://127.0.0.1:{fake_port}/"))
    );
    drop(server);
    teardown_frameworks_named(&Url::parse(&real.url).expect("URL"), &name).await;
}

/// A leading master that takes the connection and never answers is left
/// as soon as another leads, not after the 30 s SUBSCRIBE timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_leading_master_is_left_when_another_leads() {
    let Some(real) = real_master().await else {
        return;
    };
    let Some(ensemble) = zookeeper(1) else {
        return;
    };
    // The kernel completes its connections; nobody reads them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let silent_port = silent.local_addr().expect("an address").port();
    let group = Group::connect(&ensemble.servers()).await;
    let real_info = master_info(&real.url).await;
    let first = group.announce(&elsewhere(&real_info, silent_port)).await;
    group.announce(&real_info).await;
    let name = format!("stride-zkm-{}", uuid::Uuid::new_v4());
    let dir = tempfile::tempdir().expect("a dir");
    let (server, log) = start(dir.path(), &ensemble.url(GROUP), &name);
    wait_until("the silent master named", WITHIN, || async {
        detected(&server).await["node"] == json!(first)
    })
    .await;
    group.withdraw(&first).await;
    wait_until(
        "subscribed to the real master, well before SUBSCRIBE times out",
        Duration::from_secs(20),
        || async { !subscriptions(&server).await.is_empty() },
    )
    .await;
    let logged = log.text();
    assert!(
        logged.contains("the leading Mesos master moved"),
        "{logged}"
    );
    drop(server);
    teardown_frameworks_named(&Url::parse(&real.url).expect("URL"), &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_high_availability_the_leader_finds_the_master_through_zookeeper() {
    let Some(real) = real_master().await else {
        return;
    };
    let Some(ensemble) = zookeeper(1) else {
        return;
    };
    let group = Group::connect(&ensemble.servers()).await;
    group.announce(&master_info(&real.url).await).await;
    let name = format!("stride-zkm-{}", uuid::Uuid::new_v4());
    let dir = tempfile::tempdir().expect("a dir");
    let (stride, mesos) = (ensemble.url("/stride"), ensemble.url(GROUP));
    let server = Server::start_with_mesos(
        dir.path(),
        &[
            "--zk",
            &stride,
            "--master",
            &mesos,
            "--framework-name",
            &name,
        ],
    );
    wait_until("the leader subscribed", WITHIN, || async {
        !subscriptions(&server).await.is_empty()
    })
    .await;
    let (framework, master) = subscriptions(&server).await.remove(0);
    assert_eq!(master, "http://127.0.0.1:5050/api/v1/scheduler");
    assert!(connected(&real.url, &framework).await);
    let info: Value = get_json(&client(), &server.url("/v2/info")).await;
    assert_eq!(info["marathon_config"]["master"], json!(mesos));
    assert_eq!(info["zookeeper_config"]["zk"], json!(stride));
    drop(server);
    teardown_frameworks_named(&Url::parse(&real.url).expect("URL"), &name).await;
}

#[test]
fn a_bad_zk_master_url_is_a_cli_error_naming_master() {
    for (url, why) in [
        ("zk://", "names no server"),
        ("zk:///mesos", "names no server"),
        ("zk://h1:2181", "names no path"),
        ("zk://h1:2181,h2/mesos", "lacks its :port"),
        ("zk://h1:99999/mesos", "not host:port"),
        ("zk://h1:0/mesos", "not host:port"),
    ] {
        let dir = tempfile::tempdir().expect("a dir");
        let data = dir.path().join("data");
        let data = data.to_str().expect("a path");
        let (ok, _, stderr) = run_stride(&["serve", "--data-dir", data, "--master", url]);
        assert!(!ok, "{url} was taken");
        assert!(
            stderr.contains(&format!("invalid value '{url}' for '--master <MASTER>'"))
                && stderr.contains(why),
            "{url}: {stderr}"
        );
        assert!(
            !std::path::Path::new(data).exists(),
            "{url}: a store was made"
        );
    }
}
