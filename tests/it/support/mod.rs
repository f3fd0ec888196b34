//! Test harness: the real `stride` binary on an ephemeral port and a temp
//! data dir, driven over HTTP.

pub mod api_tools;
pub mod docker;
pub mod fake_master;
pub mod lb;
pub mod mesos_framework;
pub mod ports;
pub mod raw_scheduler;
pub mod real_parts;
pub mod stream_client;

pub use real_parts::{real_master, zookeeper};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_stride");
pub struct Server {
    pub child: Child,
    pub url: String,
}

/// Where servers listen unless a test says otherwise: the kernel's choice.
const ANY_PORT: &str = "127.0.0.1:0";

/// `serve` on `listen` over `data_dir`, logging at `level`.
fn serve_args<'a>(
    command: &'a mut Command,
    data_dir: &Path,
    listen: &str,
    extra: &[&str],
    level: &str,
) -> &'a mut Command {
    command
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("STRIDE_LOG", level)
}

impl Server {
    /// Starts `stride serve --no-mesos` on `data_dir` and waits until it
    /// listens: the log and the API alone, so seqs are the test's own.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--no-mesos"];
        args.extend_from_slice(extra);
        Self::start_wrapped(data_dir, &args, &[])
    }

    /// Starts `stride serve` with Mesos: `extra` names the master, or none
    /// for the embedded local cluster.
    pub fn start_with_mesos(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_wrapped(data_dir, extra, &[])
    }

    /// `stride serve` listening on `listen`: a port from `ports` that a
    /// restarted server must be found on again, or another interface
    /// (`0.0.0.0:0`). `extra` as for `start_with_mesos`.
    pub fn start_on(data_dir: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        serve_args(&mut command, data_dir, listen, extra, "warn").stderr(Stdio::inherit());
        let (child, url) = spawn_until_listening(command, "stride: listening on ");
        Server { child, url }
    }

    /// Like `start`, with the binary run under `wrapper` (e.g. strace).
    pub fn start_wrapped(data_dir: &Path, extra: &[&str], wrapper: &[&str]) -> Server {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        serve_args(&mut command, data_dir, ANY_PORT, extra, "warn").stderr(Stdio::inherit());
        let (child, url) = spawn_until_listening(command, "stride: listening on ");
        Server { child, url }
    }

    /// Starts `stride serve` (`extra` names the master, or `--no-mesos`)
    /// logging at info level into a `Log` the test reads.
    pub fn start_logged(data_dir: &Path, extra: &[&str]) -> (Server, Log) {
        let mut command = Command::new(BIN);
        serve_args(&mut command, data_dir, ANY_PORT, extra, "info").stderr(Stdio::piped());
        let (mut child, url) = spawn_until_listening(command, "stride: listening on ");
        let log = Log::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = kept.0.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        let server = Server { child, url };
        (server, log)
    }

    /// Waits for the server to exit; `None` if it still runs at `within`.
    pub fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILLs the server. Under a wrapper such as strace, the server is
    /// the wrapper's child: kill it first, or it outlives the test.
    pub fn kill(&mut self) {
        let children = format!("/proc/{0}/task/{0}/children", self.child.id());
        if let Ok(pids) = std::fs::read_to_string(children) {
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

/// What a server logged (on stderr), read as it comes.
#[derive(Clone, Default)]
pub struct Log(std::sync::Arc<std::sync::Mutex<String>>);

impl Log {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `command` and waits for the stdout line that starts with
/// `prefix`; returns the child and the rest of that line (its URL).
/// Asserts `text` (a server's log) holds each of `steps`, in this order.
pub fn assert_in_order(text: &str, steps: &[&str]) {
    let at: Vec<usize> = steps
        .iter()
        .map(|step| {
            text.find(step)
                .unwrap_or_else(|| panic!("no {step:?} in\n{text}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order:\n{text}");
}

pub fn spawn_until_listening(mut command: Command, prefix: &str) -> (Child, String) {
    command.stdout(Stdio::piped());
    let mut child = command.spawn().expect("stride starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix(prefix) {
                    break url.to_owned();
                }
            }
            _ => {
                let status = child.wait().expect("wait for stride");
                panic!("stride exited before listening: {status}");
            }
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// `stride local-mesos` as its own process, so Stride can die and come
/// back while its tasks keep running.
pub struct LocalMesos {
    pub child: Child,
    pub url: String,
}

impl LocalMesos {
    /// `extra` adds flags such as `--agents 3` or `--ports 29000-29499`.
    pub fn start(extra: &[&str]) -> LocalMesos {
        let mut command = Command::new(BIN);
        command
            .args(["local-mesos", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("STRIDE_LOG", "warn")
            .stdout(Stdio::piped());
        let (child, url) = spawn_until_listening(command, "stride local-mesos: listening on ");
        LocalMesos { child, url }
    }
}

impl Drop for LocalMesos {
    fn drop(&mut self) {
        // SIGTERM: the cluster kills its tasks on the way out.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion: (exit success, stdout, stderr).
pub fn run_stride(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env("STRIDE_LOG", "warn")
        .output()
        .expect("stride runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The python of the venv holding the `marathon` client from PyPI.
pub fn marathon_python() -> Option<String> {
    real_parts::set_up("marathon-client-up.sh", "the `marathon` client from PyPI")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn app(id: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16})
}

/// GETs `url` and parses the answer as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = http.get(url).send().await.expect("GET");
    response.json().await.expect("a JSON answer")
}

/// A request to `server` that must succeed; its JSON answer (null if none).
pub async fn send_ok(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request = http.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Every event in the log, through the API.
pub async fn all_events(client: &reqwest::Client, server: &Server) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let mut from = 1;
    loop {
        let page: serde_json::Value = client
            .get(server.url(&format!("/v1/events?from={from}&limit=10000")))
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("events json");
        let batch = page["events"].as_array().expect("events array").clone();
        if batch.is_empty() {
            return events;
        }
        from = page["next"].as_u64().expect("next");
        events.extend(batch);
    }
}

/// Polls `check` until it holds (true) or `within` passes (false): the
/// suite's one polling loop.
pub async fn holds_within<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds; fails the test naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(
        holds_within(timeout, check).await,
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// GETs `http://127.0.0.1:port/` once; true on any HTTP answer.
pub async fn answers_http(port: u64) -> bool {
    let url = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    client.get(url).send().await.is_ok()
}

/// An auth file made with `stride auth` (so the audit's names are proven):
/// each of `users` (password `pw`) may do everything, and requests without
/// credentials have the role `anonymous`: `observer` (read, stream and
/// audit) or `admin` (everything).
pub fn users_file(users: &[&str], anonymous: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.toml");
    std::fs::write(
        &path,
        format!("anonymous = [\"{anonymous}\"]\n")
            + "[roles.admin]\n\
         grants = [{ prefix = \"/\", verbs = [\"read\", \"write\", \"stream\", \"audit\", \"admin\"] }]\n\
         [roles.observer]\n\
         grants = [{ prefix = \"/\", verbs = [\"read\", \"stream\", \"audit\"] }]\n",
    )
    .expect("write the auth file");
    for user in users {
        let mut child = Command::new(BIN)
            .args([
                "auth",
                "user",
                "set",
                "--role",
                "admin",
                "--name",
                user,
                "--auth-file",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run stride auth user set");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"pw\n").unwrap();
        assert!(
            child.wait().unwrap().success(),
            "stride auth user set {user}"
        );
    }
    (dir, path)
}

/// A token for `role` named `name`, made by `stride auth token create` in
/// the auth file `file`; the secret is printed once and stored nowhere.
pub fn create_token(file: &Path, name: &str, role: &str) -> String {
    let (ok, out, err) = run_stride(&[
        "auth",
        "token",
        "create",
        "--name",
        name,
        "--role",
        role,
        "--auth-file",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let secret = out.trim().to_owned();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(secret.starts_with("stride_"), "{out}");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains(&secret), "the secret is written nowhere");
    assert!(text.contains(&format!("name = \"{name}\"")), "{text}");
    secret
}

/// The value of `series` (a name with its labels, as the text format
/// writes it) on the server's `/metrics`.
pub async fn metric(server: &Server, series: &str) -> f64 {
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Reconciler activations so far.
pub async fn activations(server: &Server) -> u64 {
    metric(server, "stride_reconciler_activations_total").await as u64
}

/// Waits until the reconciler has planned over the state as it is now: two
/// more activations, since the one under way may have begun before.
pub async fn wait_for_a_whole_activation(server: &Server) {
    let before = activations(server).await;
    wait_until(
        "a whole reconciler activation",
        Duration::from_secs(60),
        || async { activations(server).await >= before + 2 },
    )
    .await;
}
