//! Mesos framework authentication against the REAL Mesos 1.11 master
//! (its own authenticated master and agent, on port 5151 in
//! /tmp/real-mesos-auth, so the shared one on 5050 stays open) and the
//! embedded cluster requiring the same credentials file: Stride subscribes
//! with the right secret (framework_info.principal set), and stops naming
//! the cause with a wrong one or none; both masters answer a SUBSCRIBE
//! alike: 401 without or with wrong credentials, 400 when the principal
//! differs from framework_info.principal.

use crate::support::{LocalMesos, Log, Server, real_parts, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PRINCIPAL: &str = "stride-test";
const SECRET: &str = "s3cret-test";
const WAIT: Duration = Duration::from_secs(60);
const UP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/real-mesos/up.sh");
const AUTH_HOME: &str = "/tmp/real-mesos-auth";
const AUTH_PORT: &str = "5151";

/// The credentials file, in Mesos' JSON shape, for both masters.
fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("credentials.json");
    let text = json!({"credentials": [
        {"principal": PRINCIPAL, "secret": SECRET},
        {"principal": "other", "secret": "other-secret"},
    ]});
    std::fs::write(&path, text.to_string()).unwrap();
    path
}

/// A real master+agent requiring framework authentication, started once
/// (up.sh is idempotent) in its own home and port. The shared build cache
/// of the default home is linked in when present, so nothing is rebuilt.
/// `None` after saying why, without `../shared/real-mesos`.
fn real_auth_master() -> Option<String> {
    if !Path::new(UP).is_file() {
        real_parts::not_run("a real Mesos 1.11 master", &format!("{UP} is absent"));
        return None;
    }
    let home = Path::new(AUTH_HOME);
    std::fs::create_dir_all(home).unwrap();
    let shared = Path::new("/tmp/real-mesos");
    for part in ["pkg", "lib", "bin", "gen"] {
        let (from, to) = (shared.join(part), home.join(part));
        if from.exists() && !to.exists() {
            std::os::unix::fs::symlink(&from, &to).unwrap();
        }
    }
    if shared.join("build.stamp").exists() && !home.join("build.stamp").exists() {
        std::fs::copy(shared.join("build.stamp"), home.join("build.stamp")).unwrap();
    }
    let credentials = credentials_file(home);
    let status = Command::new(UP)
        .env("REAL_MESOS_HOME", home)
        .env("REAL_MESOS_PORT", AUTH_PORT)
        .env("MESOS_AUTHENTICATE_HTTP_FRAMEWORKS", "true")
        .env("MESOS_HTTP_FRAMEWORK_AUTHENTICATORS", "basic")
        .env("MESOS_CREDENTIALS", &credentials)
        .status()
        .expect("run up.sh");
    assert!(status.success(), "real-mesos/up.sh (authenticated) failed");
    Some(format!("http://127.0.0.1:{AUTH_PORT}"))
}

fn secret_file(dir: &Path, secret: &str) -> PathBuf {
    let path = dir.join(format!("secret-{secret}"));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

/// `stride serve` with `extra`, its log captured.
fn serve(data: &Path, extra: &[&str]) -> (Server, Log) {
    Server::start_logged(data, extra)
}

/// The framework called `name` on `master`, once it is active.
async fn active_framework(master: &str, name: &str) -> Value {
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(answer) = http.get(format!("{master}/master/frameworks")).send().await {
            let frameworks: Value = answer.json().await.unwrap_or_default();
            let active = frameworks["frameworks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["name"] == name && f["active"] == true);
            if let Some(framework) = active {
                return framework.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "framework {name} not active on {master}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn teardown(master: &str, name: &str) {
    let http = reqwest::Client::new();
    let frameworks: Value = http
        .get(format!("{master}/master/frameworks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for framework in frameworks["frameworks"].as_array().into_iter().flatten() {
        if framework["name"] == name {
            let id = framework["id"].as_str().unwrap();
            let _ = http
                .post(format!("{master}/master/teardown"))
                .form(&[("frameworkId", id)])
                .send()
                .await;
        }
    }
}

/// Stride against `master` (`flags` name it, or the embedded cluster):
/// the right secret subscribes as the principal; a wrong secret, no
/// credentials at all, each stop Stride with an error naming the cause.
async fn stride_authenticates(master: Option<&str>, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let good = secret_file(dir.path(), SECRET);
    let bad = secret_file(dir.path(), "wrong");
    let name = format!("stride-auth-{}", std::process::id());
    let with = |secret: Option<&Path>| {
        let mut args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        args.extend(["--framework-name".into(), name.clone()]);
        if let Some(secret) = secret {
            args.extend(["--mesos-principal".into(), PRINCIPAL.into()]);
            args.extend(["--mesos-secret-file".into(), secret.display().to_string()]);
        }
        args
    };

    let data = tempfile::tempdir().unwrap();
    let args = with(Some(&good));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (server, _log) = serve(data.path(), &args);
    let master = match master {
        Some(master) => master.to_owned(),
        // The embedded cluster: /v2/info names it.
        None => {
            let info: Value = reqwest::get(server.url("/v2/info"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let master = info["marathon_config"]["master"].as_str();
            master
                .unwrap_or_else(|| panic!("no master in {info}"))
                .trim_end_matches('/')
                .to_owned()
        }
    };
    let framework = active_framework(&master, &name).await;
    assert_eq!(framework["principal"], PRINCIPAL, "{framework}");
    teardown(&master, &name).await;
    drop(server);

    for (secret, cause) in [
        (
            Some(bad.as_path()),
            "401 Unauthorized: wrong framework credentials (principal 'stride-test'",
        ),
        (
            None,
            "401 Unauthorized: the master requires framework authentication (give --mesos-principal and --mesos-secret-file)",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let args = with(secret);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (mut server, log) = serve(data.path(), &args);
        let status = server
            .exit_within(WAIT)
            .unwrap_or_else(|| panic!("Stride kept running with {secret:?}: {}", log.text()));
        assert!(!status.success());
        // The exit names it, and so did the log before.
        wait_until("the exit message", Duration::from_secs(5), || async {
            log.text().matches(cause).count() >= 2
        })
        .await;
    }
}

/// A raw SUBSCRIBE: its status and body.
async fn subscribe(
    master: &str,
    principal: Option<&str>,
    basic: Option<(&str, &str)>,
) -> (u16, String) {
    let mut info = json!({"user": "root", "name": "stride-auth-raw", "failover_timeout": 1.0});
    if let Some(principal) = principal {
        info["principal"] = json!(principal);
    }
    let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
    let mut request = reqwest::Client::new()
        .post(format!("{master}/api/v1/scheduler"))
        .header("Accept", "application/json")
        .json(&call)
        .timeout(Duration::from_secs(10));
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    if status == 401 {
        assert_eq!(
            challenge.as_deref(),
            Some("Basic realm=\"mesos-master-scheduler\"")
        );
        return (status, String::new());
    }
    // A 200 is a stream that never ends: the status is all that is needed.
    if status == 200 {
        return (status, String::new());
    }
    (status, response.text().await.unwrap())
}

/// What a master answers each kind of SUBSCRIBE.
async fn answers(master: &str) -> Vec<(u16, String)> {
    vec![
        subscribe(master, Some(PRINCIPAL), None).await,
        subscribe(master, Some(PRINCIPAL), Some((PRINCIPAL, "wrong"))).await,
        subscribe(master, Some(PRINCIPAL), Some(("nobody", SECRET))).await,
        subscribe(master, Some(PRINCIPAL), Some((PRINCIPAL, SECRET))).await,
        subscribe(master, None, Some((PRINCIPAL, SECRET))).await,
        subscribe(master, Some(PRINCIPAL), Some(("other", "other-secret"))).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_cluster_answers_as_the_real_master() {
    let Some(real) = real_auth_master() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let local = LocalMesos::start(&["--credentials", credentials.to_str().unwrap()]);
    let real_answers = answers(&real).await;
    let local_answers = answers(&local.url).await;
    assert_eq!(
        real_answers[..5].iter().map(|a| a.0).collect::<Vec<_>>(),
        [401, 401, 401, 200, 200]
    );
    assert_eq!(real_answers[5].0, 400);
    assert!(
        real_answers[5].1.contains("Authenticated principal 'other' does not match principal 'stride-test' set in `FrameworkInfo`"),
        "{:?}",
        real_answers[5]
    );
    assert_eq!(local_answers, real_answers);
    teardown(&real, "stride-auth-raw").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stride_authenticates_to_the_real_master() {
    let Some(real) = real_auth_master() else {
        return;
    };
    stride_authenticates(Some(&real), &["--master", &real]).await;
}

/// The same, with the master found in ZooKeeper (`--master zk://`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stride_authenticates_to_the_real_master_found_in_zookeeper() {
    use crate::mesos_zk::{GROUP, Group, master_info};
    let Some(real) = real_auth_master() else {
        return;
    };
    let Some(ensemble) = real_parts::zookeeper(1) else {
        return;
    };
    let group = Group::connect(&ensemble.servers()).await;
    group.announce(&master_info(&real).await).await;
    stride_authenticates(Some(&real), &["--master", &ensemble.url(GROUP)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stride_authenticates_to_the_embedded_cluster_requiring_it() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    stride_authenticates(
        None,
        &["--local-credentials", credentials.to_str().unwrap()],
    )
    .await;
}
