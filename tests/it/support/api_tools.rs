//! The Python tools that judge the API from outside (schemathesis,
//! openapi-spec-validator, prometheus-client's OpenMetrics parser), from
//! the venv `scripts/api-tools-up.sh` makes.

use std::io::Write;
use std::process::{Command, Stdio};

/// The venv's python: `STRIDE_API_TOOLS_PYTHON` (scripts/test.sh sets it),
/// else what `scripts/api-tools-up.sh` prints (it installs the tools if
/// missing); `None` after saying why there is none.
pub fn python() -> Option<String> {
    if let Ok(python) = std::env::var("STRIDE_API_TOOLS_PYTHON") {
        return Some(python);
    }
    super::real_parts::set_up(
        "api-tools-up.sh",
        "schemathesis, openapi-spec-validator and prometheus-client from PyPI",
    )
}

/// Runs `script` with the venv's `python`, `input` on its stdin: (exit
/// success, stdout, stderr).
pub fn run_python(
    python: &str,
    script: &str,
    args: &[&str],
    input: &str,
) -> (bool, String, String) {
    let mut child = Command::new(python)
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
