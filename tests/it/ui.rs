//! The web UI in a real browser (`tests/ui/browser.py`): Debian's chromium
//! driven by Playwright for Python against the real binary on the embedded
//! cluster. `scripts/ui-test-up.sh` installs both (idempotent).

use crate::support::ports::ports;
use crate::support::real_parts::set_up;
use crate::support::{BIN, run_stride, users_file};
use std::process::Command;

const BROWSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/browser.py");

/// Runs browser.py with `args` until it prints `done`; `None` when
/// chromium or Playwright is missing.
fn run(args: &[&str], done: &str) -> Option<String> {
    let python = set_up(
        "ui-test-up.sh",
        "Debian's chromium and Playwright from PyPI",
    )?;
    let task_ports = ports(100);
    // The page acts anonymously, then with a token; alice's change from
    // outside is proven.
    let (_auth, auth_file) = users_file(&["alice"], "admin");
    let path = auth_file.to_str().expect("a UTF-8 path");
    let (ok, token, err) = run_stride(&[
        "auth",
        "token",
        "create",
        "--name",
        "ui",
        "--role",
        "admin",
        "--auth-file",
        path,
    ]);
    assert!(ok, "{err}");
    let output = Command::new(python)
        .env("STRIDE_UI_TASK_PORTS", task_ports.arg())
        .env("STRIDE_AUTH_FILE", &auth_file)
        .env("STRIDE_UI_TOKEN", token.trim())
        .arg(BROWSER)
        .arg(BIN)
        .args(args)
        .output()
        .expect("run browser.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{stdout}");
    assert!(
        output.status.success(),
        "browser.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(done), "{stdout}");
    Some(stdout)
}

#[test]
fn a_person_deploys_scales_repairs_rolls_back_and_reads_in_the_browser() {
    run(&[], "ui walk: ok");
}

/// `cargo test --release --test it -- --ignored --nocapture ui::` prints the
/// figures in BENCHMARKS.md.
#[test]
#[ignore = "a benchmark: run on its own"]
fn page_load_and_commit_to_screen() {
    run(&["--bench"], "ui bench: ok");
}
