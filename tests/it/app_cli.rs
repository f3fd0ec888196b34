//! `stride app`, `stride deployments` and `stride tasks` against the real
//! server on the embedded cluster: every subcommand, its `--json` parsed,
//! its table read, and the exit code and message of each failure a script
//! must tell apart (docs/cli.md).

use crate::support::ports::ports;
use crate::support::{BIN, Server};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn finished(output: Output) -> Run {
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `stride ARGS --stride URL`, run to its end.
fn stride(server: &str, args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .args(args)
        .args(["--stride", server])
        .stdin(Stdio::null())
        .output()
        .expect("stride runs");
    finished(output)
}

/// A run that must succeed.
fn ok(server: &str, args: &[&str]) -> Run {
    let run = stride(server, args);
    assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
    run
}

fn write(dir: &std::path::Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write a file");
    path.to_str().unwrap().to_owned()
}

/// Until `check` holds of `stride ARGS --json`, for at most 60 s.
fn eventually(server: &str, args: &[&str], check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = ok(server, args).json();
        if check(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{args:?}: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_subcommand_against_a_running_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(100);
    let server = Server::start_with_mesos(dir.path(), &["--local-ports", &ports.arg()]);
    let url = server.url.as_str();
    let web = write(
        dir.path(),
        "web.json",
        r#"{"id": "/cli/web", "cmd": "sleep 1000", "instances": 2, "cpus": 0.01, "mem": 8}"#,
    );

    // deploy --wait --json: created, followed to its end.
    let deployed = ok(url, &["app", "deploy", &web, "--wait", "--json"]).json();
    assert_eq!(deployed["app"], "/cli/web");
    assert_eq!(deployed["status"], "finished");
    assert!(deployed["deploymentId"].is_string(), "{deployed}");
    let first_version = deployed["version"].as_str().unwrap().to_owned();

    // list
    let apps = ok(url, &["app", "list", "--json"]).json();
    let listed = &apps.as_array().unwrap()[0];
    assert_eq!(
        (listed["id"].as_str(), listed["tasksRunning"].as_u64()),
        (Some("/cli/web"), Some(2))
    );
    let table = ok(url, &["app", "list"]).stdout;
    assert!(table.starts_with("ID "), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("/cli/web"))
        .expect(&table);
    assert!(row.contains("2/2"), "{table}");

    // show
    let shown = ok(url, &["app", "show", "cli/web", "--json"]).json();
    assert_eq!(
        (shown["id"].as_str(), shown["instances"].as_u64()),
        (Some("/cli/web"), Some(2))
    );
    let text = ok(url, &["app", "show", "/cli/web"]).stdout;
    assert!(text.contains("2 wanted: 2 running"), "{text}");
    assert!(text.contains("sleep 1000"), "{text}");

    // tasks, of the app and of all
    let tasks = ok(url, &["app", "tasks", "/cli/web", "--json"]).json();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(
        tasks.iter().all(|t| t["state"] == "TASK_RUNNING"),
        "{tasks:?}"
    );
    let first_tasks: Vec<Value> = tasks.iter().map(|t| t["id"].clone()).collect();
    let table = ok(url, &["app", "tasks", "/cli/web"]).stdout;
    assert_eq!(
        table.lines().filter(|l| l.contains("TASK_RUNNING")).count(),
        2,
        "{table}"
    );
    let all = ok(url, &["tasks", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let table = ok(url, &["tasks"]).stdout;
    assert!(table.lines().next().unwrap().contains("APP"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains("/cli/web"),
        "{table}"
    );

    // scale --wait, as text: the deployment, its plan, its end
    let scaled = ok(url, &["app", "scale", "/cli/web", "3", "--wait"]);
    assert!(
        scaled.stdout.starts_with("scaling /cli/web: deployment "),
        "{}",
        scaled.stdout
    );
    assert!(
        scaled.stdout.contains("ScaleApplication /cli/web"),
        "{}",
        scaled.stdout
    );
    assert!(scaled.stdout.contains("finished"), "{}", scaled.stdout);
    assert!(
        scaled.stderr.contains("3 of 3 running"),
        "{}",
        scaled.stderr
    );
    let shown = ok(url, &["app", "show", "/cli/web", "--json"]).json();
    assert_eq!(shown["tasksRunning"], 3, "{shown}");

    // versions and diff
    let versions = ok(url, &["app", "versions", "/cli/web", "--json"]).json();
    let versions: Vec<String> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[1], first_version);
    let table = ok(url, &["app", "versions", "/cli/web"]).stdout;
    assert!(table.lines().nth(1).unwrap().contains("current"), "{table}");
    let diff = ok(
        url,
        &[
            "app",
            "diff",
            "/cli/web",
            &versions[1],
            &versions[0],
            "--json",
        ],
    )
    .json();
    assert_eq!(
        diff["changes"],
        json!([{"path": "/instances", "before": 2, "after": 3}])
    );
    let text = ok(
        url,
        &["app", "diff", "/cli/web", &versions[1], &versions[0]],
    )
    .stdout;
    assert!(text.contains("instances: 2 -> 3"), "{text}");

    // rollback to the version before: 2 instances again
    let rolled = ok(url, &["app", "rollback", "/cli/web", "--wait", "--json"]).json();
    assert_eq!(rolled["status"], "finished");
    let shown = ok(url, &["app", "show", "/cli/web", "--json"]).json();
    assert_eq!(shown["instances"], 2, "{shown}");

    // restart --wait: every task replaced
    let restarted = ok(url, &["app", "restart", "/cli/web", "--wait"]);
    assert!(
        restarted.stdout.starts_with("restarting /cli/web"),
        "{}",
        restarted.stdout
    );
    let tasks = ok(url, &["app", "tasks", "/cli/web", "--json"]).json();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(
        tasks.iter().all(|t| !first_tasks.contains(&t["id"])),
        "{tasks:?}"
    );

    // An app no offer fits: its deployment holds, why says so in words.
    let big = write(
        dir.path(),
        "big.json",
        r#"{"id": "/cli/big", "cmd": "sleep 1000", "cpus": 100, "mem": 8}"#,
    );
    let timed_out = stride(url, &["app", "deploy", &big, "--wait", "--timeout", "2s"]);
    assert_eq!(timed_out.code, 8, "{}", timed_out.stderr);
    assert!(
        timed_out.stderr.contains("still running after 2s"),
        "{}",
        timed_out.stderr
    );
    assert!(
        timed_out.stderr.contains("stride app why /cli/big"),
        "{}",
        timed_out.stderr
    );
    let held = ok(url, &["deployments", "--json"]).json();
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["affectedApps"], json!(["/cli/big"]));
    let table = ok(url, &["deployments"]).stdout;
    assert!(
        table.lines().nth(1).unwrap().contains("/cli/big"),
        "{table}"
    );
    let why = eventually(url, &["app", "why", "/cli/big", "--json"], |why| {
        why["reasons"].to_string().contains("had less CPU")
    });
    assert_eq!(why["waiting"], 1, "{why}");
    let text = ok(url, &["app", "why", "/cli/big"]).stdout;
    assert!(
        text.contains("/cli/big: 0 of 1 instances running"),
        "{text}"
    );
    assert!(text.contains("1 instance is waiting to launch"), "{text}");
    assert!(
        text.contains("had less CPU than the 100.0 it asks per instance"),
        "{text}"
    );
    assert!(text.contains("Deployment "), "{text}");
    let healthy = ok(url, &["app", "why", "/cli/web"]).stdout;
    assert!(healthy.contains("2 of 2 instances running"), "{healthy}");
    assert!(healthy.contains("Nothing waits to launch."), "{healthy}");

    // A conflict is exit 6 and names --force; a forced change cancels the
    // held deployment, which a waiter sees fail (exit 7).
    let conflict = stride(url, &["app", "scale", "/cli/big", "0"]);
    assert_eq!(conflict.code, 6, "{}", conflict.stderr);
    assert!(conflict.stderr.contains("--force"), "{}", conflict.stderr);
    let waiter = Command::new(BIN)
        .args([
            "app", "restart", "/cli/big", "--force", "--wait", "--stride", url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(url, &["deployments", "--json"], |d| {
        d.as_array()
            .unwrap()
            .iter()
            .any(|d| d["currentActions"][0]["action"] == "RestartApplication")
    });
    ok(url, &["app", "scale", "/cli/big", "0", "--force", "--wait"]);
    let cancelled = finished(waiter.wait_with_output().unwrap());
    assert_eq!(
        cancelled.code, 7,
        "{}\n{}",
        cancelled.stdout, cancelled.stderr
    );
    assert!(
        cancelled.stderr.contains("superseded"),
        "{}",
        cancelled.stderr
    );

    // delete --wait, then the app is gone: exit 4.
    let deleted = ok(url, &["app", "delete", "/cli/web", "--wait", "--json"]).json();
    assert_eq!(deleted["status"], "finished");
    let gone = stride(url, &["app", "show", "/cli/web"]);
    assert_eq!(gone.code, 4, "{}", gone.stderr);
    assert!(
        gone.stderr.contains("'/cli/web' does not exist"),
        "{}",
        gone.stderr
    );
    assert_eq!(ok(url, &["tasks", "--json"]).json(), json!([]));
}

#[test]
fn every_failure_has_a_message_and_an_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let url = server.url.as_str();

    // A missing app: 4, with the server's words.
    for args in [
        vec!["app", "show", "/nope"],
        vec!["app", "tasks", "/nope"],
        vec!["app", "versions", "/nope"],
        vec!["app", "why", "/nope"],
        vec!["app", "scale", "/nope", "2"],
        vec!["app", "restart", "/nope"],
        vec!["app", "rollback", "/nope"],
        vec!["app", "rollback", "/nope", "2026-01-01T00:00:00Z"],
        vec!["app", "delete", "/nope"],
        vec![
            "app",
            "diff",
            "/nope",
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ],
    ] {
        let run = stride(url, &args);
        assert_eq!(run.code, 4, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("stride: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("/nope"), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }

    // A bad file: 5, naming the file and what is wrong with it.
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let run = stride(url, &["app", "deploy", missing]);
    assert_eq!(run.code, 5);
    assert!(
        run.stderr.contains(&format!("{missing}: cannot read it")),
        "{}",
        run.stderr
    );
    for (name, body, says) in [
        (
            "broken.json",
            "{\"id\": \"/x\",\n \"cmd\": ",
            "not JSON: EOF while parsing a value at line 2",
        ),
        (
            "list.json",
            "[{\"id\": \"/x\"}]",
            "expected one app definition",
        ),
        (
            "anonymous.json",
            "{\"cmd\": \"sleep 1\"}",
            "the definition has no \"id\"",
        ),
        (
            "root.json",
            "{\"id\": \"/\", \"cmd\": \"sleep 1\"}",
            "\"id\" must name an app",
        ),
    ] {
        let file = write(dir.path(), name, body);
        let run = stride(url, &["app", "deploy", &file]);
        assert_eq!(run.code, 5, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("{file}: {says}")),
            "{name}: {}",
            run.stderr
        );
    }

    // A refused definition: 5, every field the server names, readably.
    let refused = write(
        dir.path(),
        "refused.json",
        r#"{"id": "/x", "cmd": "sleep 1", "cpus": 0,
            "healthChecks": [{"protocol": "HTTP", "portIndex": 5}]}"#,
    );
    let run = stride(url, &["app", "deploy", &refused]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines[0], "stride: Object is not valid", "{}", run.stderr);
    assert!(
        lines.contains(&"  cpus: got 0, expected 0.001 or more"),
        "{}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  healthChecks[0].portIndex: ")),
        "{}",
        run.stderr
    );
    // Nothing refused was written.
    assert_eq!(ok(url, &["app", "list", "--json"]).json(), json!([]));

    // A bad version: the server's 400 is 5 too.
    let app = write(dir.path(), "app.json", r#"{"id": "/x", "cmd": "sleep 1"}"#);
    ok(url, &["app", "deploy", &app]);
    let run = stride(url, &["app", "diff", "/x", "yesterday", "today"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("yesterday"), "{}", run.stderr);
    let run = stride(url, &["app", "rollback", "/x"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("no version before the current one"),
        "{}",
        run.stderr
    );

    // An unreachable server: 3, saying where it looked and how to change it.
    let closed = "http://127.0.0.1:1";
    for args in [
        vec!["app", "list"],
        vec!["app", "deploy", &app],
        vec!["deployments"],
        vec!["tasks", "--json"],
    ] {
        let run = stride(closed, &args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot reach Stride at http://127.0.0.1:1/ (--stride or STRIDE_URL): "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("refused"), "{args:?}: {}", run.stderr);
    }

    // Usage errors are clap's: 2.
    for args in [
        vec!["app", "scale", "/x"],
        vec!["app", "scale", "/x", "many"],
        vec!["app", "show", "/"],
        vec!["app", "deploy", &app, "--wait", "--timeout", "soon"],
    ] {
        let run = stride(url, &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}
