//! Readable rows for `stride events` and `stride audit`, built from the
//! envelope JSON alone, so every event type (today's and later ones) prints.

use serde_json::{Map, Value};
use std::fmt::Write;

/// Fields every envelope has; the rest are the event's own.
const ENVELOPE_FIELDS: &[&str] = &[
    "seq",
    "id",
    "at",
    "actor",
    "commandId",
    "type",
    "app",
    "task",
];

pub fn header() -> String {
    format!(
        "{:>8}  {:<20}  {:<22}  {:<28}  {:<16}  DETAILS",
        "SEQ", "TIME", "TYPE", "APP / TASK", "ACTOR"
    )
}

pub fn row(event: &Value) -> String {
    let at = event["at"].as_str().unwrap_or("");
    // Seconds are enough to read; --json has the microseconds.
    let at = match at.get(..19) {
        Some(seconds) => format!("{seconds}Z"),
        None => at.to_owned(),
    };
    let subject = match (event["app"].as_str(), event["task"].as_str()) {
        (_, Some(task)) => task.to_owned(),
        (Some(app), None) => app.to_owned(),
        (None, None) => "-".to_owned(),
    };
    format!(
        "{:>8}  {:<20}  {:<22}  {:<28}  {:<16}  {}",
        event["seq"],
        at,
        event["type"].as_str().unwrap_or("?"),
        subject,
        actor(&event["actor"]),
        details(event)
    )
}

fn actor(actor: &Value) -> String {
    match (actor["kind"].as_str(), actor["principal"].as_str()) {
        (Some("api"), Some(principal)) => format!("api:{principal}"),
        (Some(kind), _) => kind.to_owned(),
        _ => "?".to_owned(),
    }
}

fn details(event: &Value) -> String {
    let Some(fields) = event.as_object() else {
        return String::new();
    };
    match event["type"].as_str() {
        Some("AppUpdated") => changed_fields(&event["previous"], &event["definition"]),
        Some("AppScaled") => format!("instances {} -> {}", event["previous"], event["instances"]),
        Some("AppCreated") => format!(
            "instances={} cmd={}",
            event["definition"]["instances"], event["definition"]["cmd"]
        ),
        _ => scalars(fields),
    }
}

/// The top-level definition fields an update changed: who changed what.
fn changed_fields(before: &Value, after: &Value) -> String {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut changed: Vec<&str> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(value))
        .map(|(key, _)| key.as_str())
        .collect();
    changed.extend(
        before
            .keys()
            .filter(|key| !after.contains_key(*key))
            .map(String::as_str),
    );
    if changed.is_empty() {
        "no change".to_owned()
    } else {
        format!("changed: {}", changed.join(", "))
    }
}

/// A definition change's `changes` (from `/v1/audit`), one indented line
/// each: `instances: 3 -> 5`, `env/A: "1" -> (none)`.
pub fn change_lines(event: &Value) -> Vec<String> {
    let shown = |value: &Value| match value {
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    };
    event["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|change| {
            let path = change["path"].as_str().unwrap_or("?");
            format!(
                "{:>12}{}: {} -> {}",
                "",
                path.strip_prefix('/')
                    .filter(|p| !p.is_empty())
                    .unwrap_or(path),
                shown(&change["before"]),
                shown(&change["after"])
            )
        })
        .collect()
}

/// `key=value` for the event's own scalar fields.
fn scalars(fields: &Map<String, Value>) -> String {
    let mut out = String::new();
    for (key, value) in fields {
        if ENVELOPE_FIELDS.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        let shown = match value {
            Value::String(s) => s.clone(),
            Value::Bool(_) | Value::Number(_) => value.to_string(),
            _ => continue,
        };
        let _ = write!(
            out,
            "{}{key}={shown}",
            if out.is_empty() { "" } else { " " }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn updates_name_the_changed_fields() {
        let before = json!({"cmd": "a", "mem": 1, "gone": true});
        let after = json!({"cmd": "b", "mem": 1});
        assert_eq!(changed_fields(&before, &after), "changed: cmd, gone");
    }

    #[test]
    fn changes_read_as_before_and_after() {
        let event = json!({"changes": [
            {"path": "/instances", "before": 3, "after": 5},
            {"path": "/env/A", "before": "1"},
            {"path": "/cmd", "before": "a", "after": "b"}]});
        let lines: Vec<String> = change_lines(&event)
            .iter()
            .map(|l| l.trim().to_owned())
            .collect();
        assert_eq!(
            lines,
            [
                "instances: 3 -> 5",
                r#"env/A: "1" -> (none)"#,
                r#"cmd: "a" -> "b""#
            ]
        );
    }

    #[test]
    fn unknown_event_types_still_print_their_fields() {
        let event = json!({"seq": 9, "at": "2026-01-02T03:04:05.000006Z", "type": "Novel",
                           "actor": {"kind": "mesos"}, "agent": "a1", "count": 3, "list": [1]});
        let row = row(&event);
        assert!(row.contains("2026-01-02T03:04:05Z"), "{row}");
        assert!(row.contains("agent=a1 count=3"), "{row}");
    }
}
