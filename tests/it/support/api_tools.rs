//! The Python tools that judge the API from outside (schemathesis,
//! openapi-spec-validator, prometheus-client's OpenMetrics parser), from
//! the venv `scripts/api-tools-up.sh` makes.

use std::io::Write;
use std::process::{Command, Stdio};

const UP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/api-tools-up.sh");

/// The venv's python: `STRIDE_API_TOOLS_PYTHON` (scripts/test.sh sets it),
/// else what the script prints (it installs the tools if missing).
pub fn python() -> String {
    if let Ok(python) = std::env::var("STRIDE_API_TOOLS_PYTHON") {
        return python;
    }
    let output = Command::new(UP)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/api-tools-up.sh");
    assert!(output.status.success(), "scripts/api-tools-up.sh failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().last().expect("the venv's python").to_owned()
}

/// Runs `script` with the venv's python, `input` on its stdin: (exit
/// success, stdout, stderr).
pub fn run_python(script: &str, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("python runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
