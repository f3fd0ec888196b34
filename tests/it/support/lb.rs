//! The HAProxy sidecar as tests run it: the real `stride lb haproxy`
//! process and the HAProxy it starts, cleaned up however a test ends.

use super::{BIN, Server, client, spawn_until_listening, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The HAProxy binary the running test checked for (`real_parts::haproxy`).
pub fn haproxy_bin() -> PathBuf {
    super::real_parts::haproxy().expect("the test checked for HAProxy first")
}

/// The sidecar process. Dropping it kills only the sidecar: HAProxy
/// outlives it by design (see `HaproxyGuard`).
pub struct Sidecar {
    pub child: Child,
    pub status_url: String,
    pub config: PathBuf,
}

impl Sidecar {
    pub fn start(stride_url: &str, dir: &Path, http_port: u16) -> Sidecar {
        Self::start_with(stride_url, dir, http_port, &[])
    }

    pub fn start_with(stride_url: &str, dir: &Path, http_port: u16, extra: &[&str]) -> Sidecar {
        let config = dir.join("haproxy.cfg");
        let mut command = Command::new(BIN);
        command
            .args(["lb", "haproxy", "--stride", stride_url, "--config"])
            .arg(&config)
            .args(["--http-port", &http_port.to_string()])
            .args(["--bind-address", "127.0.0.1", "--name", "test-lb"])
            .args(["--max-backoff", "500ms"])
            .arg("--haproxy")
            .arg(haproxy_bin())
            .args(extra)
            .env(
                "STRIDE_LOG",
                std::env::var("STRIDE_TEST_LB_LOG").unwrap_or("warn".into()),
            );
        let (child, status_url) = spawn_until_listening(command, "stride lb: status on ");
        Sidecar {
            child,
            status_url,
            config,
        }
    }

    pub async fn status(&self) -> Value {
        let answer = client()
            .get(format!("{}/status", self.status_url))
            .send()
            .await;
        match answer {
            Ok(answer) => answer.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap_or_default()
    }

    pub fn master_socket(&self) -> PathBuf {
        self.config.with_extension("cfg.master.sock")
    }

    /// Waits until HAProxy serves everything up to Stride's head.
    pub async fn wait_applied(&self, server: &Server) {
        let head = head(server).await;
        wait_until(
            &format!("the sidecar to apply seq {head}"),
            WAIT,
            || async { self.status().await["appliedSeq"].as_u64() >= Some(head) },
        )
        .await;
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the HAProxy behind a master socket (master and workers) when the
/// test ends, however it ends.
pub struct HaproxyGuard(pub PathBuf);

impl Drop for HaproxyGuard {
    fn drop(&mut self) {
        // A master in the middle of a reload re-executes itself and does
        // not answer for a moment: ask again while its socket is there.
        let mut pids = haproxy_pids(&self.0);
        for _ in 0..50 {
            if !pids.is_empty() || !self.0.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            pids = haproxy_pids(&self.0);
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Every pid `show proc` lists, without going through the code under test.
pub fn haproxy_pids(master_socket: &Path) -> Vec<u32> {
    use std::io::{Read, Write};
    let Ok(mut socket) = std::os::unix::net::UnixStream::connect(master_socket) else {
        return Vec::new();
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = socket.write_all(b"show proc\n");
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    answer
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

pub async fn head(server: &Server) -> u64 {
    let state: Value = client()
        .get(server.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["seq"].as_u64().unwrap()
}
