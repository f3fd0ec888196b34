//! The processes the bench runs: `stride local-mesos`, `stride serve` and
//! `stride lb haproxy` (this same binary), stopped when the bench ends
//! however it ends, along with the HAProxy the sidecar leaves running.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child stopped on drop: SIGTERM (so `local-mesos` takes its tasks
/// down with it), SIGKILL if it lingers.
pub struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `stride <args>` with its stderr in `logs/<name>.log` and waits for
/// the stdout line starting with `prefix`; returns the rest of that line.
pub fn start(
    logs: &Path,
    name: &str,
    args: &[&str],
    prefix: &str,
) -> anyhow::Result<(Running, String)> {
    let exe = std::env::current_exe().context("cannot find the stride binary")?;
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    let mut child = Command::new(exe)
        .args(args)
        .env("STRIDE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start stride {name}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    let rest = rest.to_owned();
                    // Keep reading so the child never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines {});
                    return Ok((running, rest));
                }
            }
            _ => bail!(
                "stride {name} exited at start; see {}/{name}.log",
                logs.display()
            ),
        }
    }
}

/// The HAProxy a sidecar started: it outlives the sidecar by design, so it
/// is stopped through its master socket.
pub struct SidecarHaproxy(pub PathBuf);

impl Drop for SidecarHaproxy {
    fn drop(&mut self) {
        let Ok(mut socket) = std::os::unix::net::UnixStream::connect(&self.0) else {
            return;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = socket.write_all(b"show proc\n");
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        let _ = socket.read_to_string(&mut answer);
        let master = answer.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            let pid: i32 = fields.next()?.parse().ok()?;
            (fields.next() == Some("master")).then_some(pid)
        });
        if let Some(pid) = master {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
}
