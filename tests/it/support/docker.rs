//! The real Docker engine the Docker tests use (`scripts/docker-up.sh`:
//! the machine's engine, or a private dockerd), and the docker CLI to
//! look at it from outside Stride.

use std::process::Command;

/// Built locally by `docker-up.sh`; no registry has it.
pub const IMAGE: &str = "stride-test/busybox:local";

/// The engine's socket path (an engine started once per test run), or
/// `None` after saying why there is none.
pub fn engine() -> Option<String> {
    super::real_parts::set_up("docker-up.sh", "a Docker engine")
}

/// The socket of the engine the running test checked for.
pub fn socket() -> String {
    engine().expect("the test checked for the Docker engine first")
}

/// `docker -H unix://SOCKET ARGS...`; its stdout, or a panic with stderr.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket()))
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Names of the containers (running or not) carrying `label`.
pub fn containers(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Removes every container of an agent; for cleanup whatever a test did.
pub struct AgentContainers(pub String);

impl Drop for AgentContainers {
    fn drop(&mut self) {
        let names = containers(&format!("stride.agent={}", self.0));
        if !names.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(names.iter().map(String::as_str));
            let _ = Command::new("docker")
                .arg("-H")
                .arg(format!("unix://{}", socket()))
                .args(&args)
                .output();
        }
    }
}
