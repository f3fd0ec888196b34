//! A test whose real part is missing says so and is not run; under
//! `STRIDE_TEST_REQUIRE_ALL=1` (as `scripts/test.sh` and CI run the suite)
//! the same absence fails it. Checked on this very test binary, run again
//! with a PATH that holds no strace and no java (so no ZooKeeper).

use crate::support::real_parts::REQUIRE_ALL;
use std::process::{Command, Output};

const NEEDS_STRACE: &str =
    "durability_strace::every_201_follows_an_fdatasync_of_its_append_and_the_watermark";
const NEEDS_ZOOKEEPER: &str =
    "zk_ensemble::the_lowest_candidate_leads_and_a_deposed_leader_cannot_write";
const STRACE_MISSING: &str = "needs strace (not on PATH; Debian's `strace` has it); \
                              `scripts/test.sh` installs and starts it";

/// This binary running only `test`, with an empty PATH.
fn with_empty_path(test: &str, require_all: bool) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([test, "--exact", "--test-threads", "1"])
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

/// What a skipped ZooKeeper test names: the jar or java, whichever this
/// machine lacks with an empty PATH.
fn zookeeper_missing() -> String {
    let why = match std::path::Path::new("/usr/share/java/zookeeper.jar").is_file() {
        true => "java is not on PATH; Debian's `default-jre-headless` has it",
        false => "/usr/share/java/zookeeper.jar is absent; Debian's `zookeeper` has it",
    };
    format!("needs a ZooKeeper ensemble ({why}); `scripts/test.sh` installs and starts it")
}

#[test]
fn a_missing_part_is_named_on_stderr_and_the_test_not_run() {
    for (test, missing) in [
        (NEEDS_STRACE, STRACE_MISSING.to_owned()),
        (NEEDS_ZOOKEEPER, zookeeper_missing()),
    ] {
        let output = with_empty_path(test, false);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            stderr.contains(&format!("not run: {test}: {missing}")),
            "{stderr}"
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "{}",
            text(&output)
        );
    }
}

#[test]
fn under_require_all_a_missing_part_fails_the_test() {
    for (test, missing) in [
        (NEEDS_STRACE, STRACE_MISSING.to_owned()),
        (NEEDS_ZOOKEEPER, zookeeper_missing()),
    ] {
        let output = with_empty_path(test, true);
        assert!(!output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains(&format!(
                "{missing}; {REQUIRE_ALL}=1 requires every test to run"
            )),
            "{}",
            text(&output)
        );
    }
}
