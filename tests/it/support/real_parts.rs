//! The real parts some tests need from outside this repository: a real
//! Mesos master, HAProxy, strace, a Docker engine, chromium, ZooKeeper
//! with a JRE, the PyPI venvs. `scripts/test.sh` installs and starts every one of them and sets
//! `STRIDE_TEST_REQUIRE_ALL=1`, so CI runs every test. On a clone that
//! lacks a part, a test that needs it says on stderr that it was not run
//! and why, and passes; under `STRIDE_TEST_REQUIRE_ALL=1` that is a failure.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex as BlockingMutex;

use tokio::sync::{Mutex, MutexGuard, OnceCell};

pub const REQUIRE_ALL: &str = "STRIDE_TEST_REQUIRE_ALL";
const REAL_MESOS_UP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/real-mesos/up.sh");

/// Reports that the running test needs `part`, missing because `why`: one
/// line on stderr (written past the test harness's capture), or a panic
/// under `STRIDE_TEST_REQUIRE_ALL=1`.
pub fn not_run(part: &str, why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let line =
        format!("not run: {test}: needs {part} ({why}); `scripts/test.sh` installs and starts it");
    if std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1") {
        panic!("{line}; {REQUIRE_ALL}=1 requires every test to run");
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `program` on PATH, or `None` after saying it is missing (Debian's
/// `package` has it).
pub fn program(program: &str, package: &str) -> Option<PathBuf> {
    let found = on_path(program);
    if found.is_none() {
        not_run(
            program,
            &format!("not on PATH; Debian's `{package}` has it"),
        );
    }
    found
}

pub fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// HAProxy: on PATH, else in Debian's /usr/sbin (not on every user's
/// PATH); `None` after saying it is missing.
pub fn haproxy() -> Option<PathBuf> {
    let sbin = Path::new("/usr/sbin/haproxy");
    on_path("haproxy")
        .or_else(|| sbin.is_file().then(|| sbin.to_owned()))
        .or_else(|| program("haproxy", "haproxy"))
}

/// Runs one of `scripts/` that sets up a real part (idempotently, once per
/// test run) and prints where it is as its last line: that line, or `None`
/// after saying why `part` is missing.
pub fn set_up(script: &'static str, part: &str) -> Option<String> {
    static DONE: BlockingMutex<BTreeMap<&str, Result<String, String>>> =
        BlockingMutex::new(BTreeMap::new());
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    let outcome = done.entry(script).or_insert_with(|| run_script(script));
    match outcome {
        Ok(found) => Some(found.clone()),
        Err(why) => {
            not_run(part, why);
            None
        }
    }
}

fn run_script(script: &str) -> Result<String, String> {
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&path)
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{script} failed: {}",
            last_line(&String::from_utf8_lossy(&output.stderr))
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = last_line(&stdout).trim();
    if last.is_empty() {
        return Err(format!("{script} printed nothing"));
    }
    Ok(last.to_owned())
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// The real Mesos 1.11 master, this test's alone while it lives: tests on
/// it launch tasks and decline offers, so they take turns rather than
/// starve each other of offers.
pub struct RealMaster {
    pub url: String,
    _turn: MutexGuard<'static, ()>,
}

/// The real Mesos master: `STRIDE_MESOS_MASTER`, or the one
/// `../shared/real-mesos/up.sh` starts (idempotent) on 127.0.0.1:5050;
/// `None` after saying why there is none.
pub async fn real_master() -> Option<RealMaster> {
    static TURN: Mutex<()> = Mutex::const_new(());
    static URL: OnceCell<Result<String, String>> = OnceCell::const_new();
    let url = URL.get_or_init(locate_real_master).await;
    match url {
        Ok(url) => Some(RealMaster {
            url: url.clone(),
            _turn: TURN.lock().await,
        }),
        Err(why) => {
            not_run("a real Mesos 1.11 master", why);
            None
        }
    }
}

async fn locate_real_master() -> Result<String, String> {
    if let Ok(url) = std::env::var("STRIDE_MESOS_MASTER") {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    if !Path::new(REAL_MESOS_UP).is_file() {
        return Err(format!(
            "STRIDE_MESOS_MASTER is unset and {REAL_MESOS_UP} is absent"
        ));
    }
    let output = tokio::process::Command::new(REAL_MESOS_UP)
        .output()
        .await
        .map_err(|e| format!("{REAL_MESOS_UP}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "real-mesos/up.sh failed: {}",
            last_line(&String::from_utf8_lossy(&output.stderr))
        ));
    }
    Ok("http://127.0.0.1:5050".to_owned())
}

/// A real ZooKeeper ensemble of `size` nodes on free loopback ports, or
/// `None` after saying what is missing (Debian's `zookeeper`, a JRE).
pub fn zookeeper(size: usize) -> Option<stride_zk::ensemble::Ensemble> {
    use stride_zk::ensemble::Ensemble;
    if let Some(why) = Ensemble::missing() {
        not_run("a ZooKeeper ensemble", &why);
        return None;
    }
    Some(Ensemble::start(size).expect("a ZooKeeper ensemble starts"))
}
