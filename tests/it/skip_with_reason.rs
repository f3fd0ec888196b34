//! A test whose real part is missing says so and is not run; under
//! `STRIDE_TEST_REQUIRE_ALL=1` (as `scripts/test.sh` and CI run the suite)
//! the same absence fails it. Checked on this very test binary, run again
//! with a PATH that holds no strace.

use crate::support::real_parts::REQUIRE_ALL;
use std::process::{Command, Output};

const NEEDS_STRACE: &str =
    "durability_strace::every_201_follows_an_fdatasync_of_its_append_and_the_watermark";

/// This binary running only `NEEDS_STRACE`, with an empty PATH.
fn without_strace(require_all: bool) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([NEEDS_STRACE, "--exact", "--test-threads", "1"])
        .env("PATH", "")
        .env_remove(REQUIRE_ALL);
    if require_all {
        command.env(REQUIRE_ALL, "1");
    }
    command.output().expect("the test binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_missing_part_is_named_on_stderr_and_the_test_not_run() {
    let output = without_strace(false);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        stderr.contains(&format!(
            "not run: {NEEDS_STRACE}: needs strace (not on PATH; Debian's `strace` has it); \
             `scripts/test.sh` installs and starts it"
        )),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{}",
        text(&output)
    );
}

#[test]
fn under_require_all_a_missing_part_fails_the_test() {
    let output = without_strace(true);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!(
            "needs strace (not on PATH; Debian's `strace` has it); `scripts/test.sh` installs \
             and starts it; {REQUIRE_ALL}=1 requires every test to run"
        )),
        "{}",
        text(&output)
    );
}
