//! The commands that only read: `stride app list|show|versions|diff|tasks`,
//! `stride deployments`, `stride tasks`.

use super::Output;
use crate::cli::table;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Write;
use tabwriter::TabWriter;

pub async fn list(out: &Output) -> anyhow::Result<()> {
    let api = out.remote.api()?;
    let mut url = out.remote.endpoint("/v2/apps")?;
    url.query_pairs_mut()
        .append_pair("embed", "apps.counts")
        .append_pair("embed", "apps.deployments");
    let answer = api.get(url).await?;
    let apps = answer["apps"].as_array().cloned().unwrap_or_default();
    if out.json {
        return print_json(&Value::Array(apps));
    }
    let rows = apps.iter().map(|app| {
        vec![
            text(&app["id"]),
            format!("{}/{}", app["tasksRunning"], app["instances"]),
            text(&app["tasksStaged"]),
            text(&app["tasksHealthy"]),
            text(&app["cpus"]),
            text(&app["mem"]),
            deploying(app),
            text(&app["version"]),
        ]
    });
    print_table(
        &[
            "ID",
            "RUNNING",
            "STAGED",
            "HEALTHY",
            "CPUS",
            "MEM",
            "DEPLOYING",
            "VERSION",
        ],
        rows,
    )
}

pub async fn app(id: &str, out: &Output) -> anyhow::Result<()> {
    let app = fetch_app(out, id).await?;
    if out.json {
        return print_json(&app);
    }
    let mut lines = vec![
        ("id", text(&app["id"])),
        ("runs", runs(&app)),
        (
            "instances",
            format!(
                "{} wanted: {} running, {} staged, {} healthy, {} unhealthy",
                app["instances"],
                app["tasksRunning"],
                app["tasksStaged"],
                app["tasksHealthy"],
                app["tasksUnhealthy"]
            ),
        ),
        (
            "resources",
            format!(
                "{} cpus, {} MB memory, {} MB disk per instance",
                app["cpus"], app["mem"], app["disk"]
            ),
        ),
    ];
    let ports: Vec<String> = list_of(&app["portDefinitions"])
        .map(|port| format!("{} ({})", port["port"], text(&port["protocol"])))
        .collect();
    if !ports.is_empty() {
        lines.push(("service ports", ports.join(", ")));
    }
    for (name, field) in [("labels", "labels"), ("env", "env")] {
        if let Some(map) = app[field].as_object().filter(|m| !m.is_empty()) {
            let pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect();
            lines.push((name, pairs.join(" ")));
        }
    }
    for check in list_of(&app["healthChecks"]) {
        lines.push(("health check", health_check(check)));
    }
    lines.push(("version", text(&app["version"])));
    lines.push((
        "definition changed",
        text(&app["versionInfo"]["lastConfigChangeAt"]),
    ));
    for deployment in list_of(&app["deployments"]) {
        lines.push(("deploying", text(&deployment["id"])));
    }
    if let Some(failure) = app.get("lastTaskFailure").filter(|f| f.is_object()) {
        lines.push(("last task failure", task_failure(failure)));
    }
    let mut tw = TabWriter::new(std::io::stdout().lock());
    for (name, value) in lines {
        writeln!(tw, "{name}:\t{value}")?;
    }
    tw.flush()?;
    Ok(())
}

pub async fn versions(id: &str, out: &Output) -> anyhow::Result<()> {
    let api = out.remote.api()?;
    let answer = api
        .get(out.remote.resource("/v2/apps", id, &["versions"])?)
        .await?;
    if out.json {
        return print_json(&answer["versions"]);
    }
    let rows = list_of(&answer["versions"])
        .enumerate()
        .map(|(i, version)| {
            let at = text(version);
            let note = if i == 0 { "current" } else { "" };
            vec![at.clone(), ago(&at), note.to_owned()]
        });
    print_table(&["VERSION", "AGE", ""], rows)
}

pub async fn diff(id: &str, from: &str, to: &str, out: &Output) -> anyhow::Result<()> {
    let api = out.remote.api()?;
    let mut url = out.remote.resource("/v1/apps", id, &["diff"])?;
    url.query_pairs_mut()
        .append_pair("from", from)
        .append_pair("to", to);
    let answer = api.get(url).await?;
    if out.json {
        return print_json(&answer);
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}: {} -> {}",
        text(&answer["app"]),
        text(&answer["from"]),
        text(&answer["to"])
    )?;
    let lines = table::change_lines(&answer);
    if lines.is_empty() {
        writeln!(stdout, "  no change")?;
    }
    for line in lines {
        writeln!(stdout, "  {}", line.trim_start())?;
    }
    Ok(())
}

/// One app's tasks, or with no app every task.
pub async fn tasks(id: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let api = out.remote.api()?;
    let url = match id {
        Some(id) => out.remote.resource("/v2/apps", id, &["tasks"])?,
        None => out.remote.endpoint("/v2/tasks")?,
    };
    let answer = api.get(url).await?;
    if out.json {
        return print_json(&answer["tasks"]);
    }
    let rows = list_of(&answer["tasks"]).map(|task| {
        let ports: Vec<String> = list_of(&task["ports"]).map(text).collect();
        let health: Vec<bool> = list_of(&task["healthCheckResults"])
            .filter_map(|r| r["alive"].as_bool())
            .collect();
        let health = match health.as_slice() {
            [] => "-",
            all if all.iter().all(|alive| *alive) => "healthy",
            _ => "unhealthy",
        };
        let mut row = vec![
            text(&task["id"]),
            text(&task["host"]),
            ports.join(","),
            text(&task["state"]),
            health.to_owned(),
            text(&task["version"]),
            ago(task["startedAt"].as_str().unwrap_or("")),
        ];
        if id.is_none() {
            row.insert(1, text(&task["appId"]));
        }
        row
    });
    let mut header = vec![
        "ID", "HOST", "PORTS", "STATE", "HEALTH", "VERSION", "STARTED",
    ];
    if id.is_none() {
        header.insert(1, "APP");
    }
    print_table(&header, rows)
}

pub async fn deployments(out: &Output) -> anyhow::Result<()> {
    let api = out.remote.api()?;
    let answer = api.get(out.remote.endpoint("/v2/deployments")?).await?;
    if out.json {
        return print_json(&answer);
    }
    let rows = list_of(&answer).map(|deployment| {
        let apps: Vec<String> = list_of(&deployment["affectedApps"]).map(text).collect();
        let actions: Vec<String> = list_of(&deployment["currentActions"])
            .map(|a| format!("{} {}", text(&a["action"]), text(&a["app"])))
            .collect();
        vec![
            text(&deployment["id"]),
            apps.join(","),
            format!("{}/{}", deployment["currentStep"], deployment["totalSteps"]),
            actions.join(", "),
            ago(deployment["version"].as_str().unwrap_or("")),
        ]
    });
    print_table(&["ID", "APPS", "STEP", "NOW", "STARTED"], rows)
}

/// `GET /v2/apps/{id}` with its counts, deployments and last failure.
pub(super) async fn fetch_app(out: &Output, id: &str) -> anyhow::Result<Value> {
    let api = out.remote.api()?;
    let mut url = out.remote.resource("/v2/apps", id, &[])?;
    for embed in ["app.counts", "app.deployments", "app.lastTaskFailure"] {
        url.query_pairs_mut().append_pair("embed", embed);
    }
    let answer = api.get(url).await?;
    Ok(answer["app"].clone())
}

/// What the app runs: its command, arguments or image.
fn runs(app: &Value) -> String {
    if let Some(cmd) = app["cmd"].as_str() {
        return cmd.to_owned();
    }
    let image = &app["container"]["docker"]["image"];
    let args: Vec<String> = list_of(&app["args"]).map(text).collect();
    match image.as_str() {
        Some(image) => format!("docker image {image} {}", args.join(" ")),
        None => args.join(" "),
    }
    .trim_end()
    .to_owned()
}

fn health_check(check: &Value) -> String {
    let protocol = text(&check["protocol"]);
    let target = match check["path"].as_str() {
        Some(path) => format!("{protocol} {path}"),
        None => protocol,
    };
    format!(
        "{target} every {}s, {} failures allowed",
        check["intervalSeconds"], check["maxConsecutiveFailures"]
    )
}

/// A task failure in a line: when, how and where.
pub(super) fn task_failure(failure: &Value) -> String {
    let at = text(&failure["timestamp"]);
    format!(
        "{} {}: {} (task {} on {})",
        ago(&at),
        text(&failure["state"]),
        text(&failure["message"]),
        text(&failure["taskId"]),
        text(&failure["host"])
    )
}

fn deploying(app: &Value) -> String {
    match list_of(&app["deployments"]).count() {
        0 => "-".to_owned(),
        _ => "yes".to_owned(),
    }
}

/// A JSON value as a person reads it: strings without quotes, null as -.
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

pub(super) fn list_of(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// How long ago an RFC 3339 time was, to the second (`3m 12s ago`).
pub(super) fn ago(at: &str) -> String {
    let Ok(then) = DateTime::parse_from_rfc3339(at) else {
        return "-".to_owned();
    };
    let seconds = (Utc::now() - then.with_timezone(&Utc)).num_seconds().max(0);
    let elapsed = std::time::Duration::from_secs(seconds.unsigned_abs());
    format!("{} ago", humantime::format_duration(elapsed))
}

pub(super) fn print_json(value: &Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value).context("writing JSON")?;
    writeln!(stdout)?;
    Ok(())
}

/// Columns aligned on tab stops, the header first.
fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<()> {
    let mut tw = TabWriter::new(std::io::stdout().lock()).padding(2);
    writeln!(tw, "{}", header.join("\t"))?;
    for row in rows {
        // A tab inside a value would shift every column after it.
        let cells: Vec<String> = row.iter().map(|c| c.replace('\t', " ")).collect();
        writeln!(tw, "{}", cells.join("\t"))?;
    }
    tw.flush()?;
    Ok(())
}
