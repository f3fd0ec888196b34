//! `stride app why ID`: why an app runs fewer tasks than it asks for, in
//! plain words, from its counts, the launch queue (`/v2/queue`: the offers
//! the reconciler looked at and why each did not fit, the backoff after
//! failures), its deployments and its last task failure.

use super::Output;
use super::show::{fetch_app, list_of, print_json, task_failure, text};
use serde_json::{Value, json};

pub async fn why(id: &str, out: &Output) -> anyhow::Result<()> {
    let app = fetch_app(out, id).await?;
    let api = out.remote.api()?;
    let queue = api.get(out.remote.endpoint("/v2/queue")?).await?;
    let waiting = list_of(&queue["queue"]).find(|entry| entry["app"]["id"] == id);
    let deployments = api.get(out.remote.endpoint("/v2/deployments")?).await?;
    let deploying: Vec<&Value> = list_of(&deployments)
        .filter(|d| list_of(&d["affectedApps"]).any(|a| a == id))
        .collect();
    let lines = explain(&app, waiting, &deploying);
    if out.json {
        return print_json(&json!({
            "app": id,
            "instances": app["instances"],
            "running": app["tasksRunning"],
            "staged": app["tasksStaged"],
            "healthy": app["tasksHealthy"],
            "waiting": waiting.map_or(json!(0), |w| w["count"].clone()),
            "reasons": lines,
            "queue": waiting,
            "lastTaskFailure": app.get("lastTaskFailure"),
        }));
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// The explanation, a sentence a line.
fn explain(app: &Value, waiting: Option<&Value>, deploying: &[&Value]) -> Vec<String> {
    let id = text(&app["id"]);
    let wanted = app["instances"].as_u64().unwrap_or(0);
    let running = app["tasksRunning"].as_u64().unwrap_or(0);
    let mut lines = vec![format!(
        "{id}: {running} of {wanted} instances running ({} staged, {} healthy, {} unhealthy).",
        app["tasksStaged"], app["tasksHealthy"], app["tasksUnhealthy"]
    )];
    match waiting {
        Some(entry) => {
            lines.push(format!(
                "{} waiting to launch since {} ({}).",
                instances(entry["count"].as_u64().unwrap_or(0)),
                text(&entry["since"]),
                super::show::ago(entry["since"].as_str().unwrap_or(""))
            ));
            lines.extend(queue_reasons(app, entry));
        }
        None if running >= wanted => lines.push("Nothing waits to launch.".to_owned()),
        None => lines.push(
            "Nothing waits to launch: the tasks missing are starting or being replaced.".to_owned(),
        ),
    }
    for deployment in deploying {
        let now: Vec<String> = list_of(&deployment["currentActions"])
            .map(|a| format!("{} {}", text(&a["action"]), text(&a["app"])))
            .collect();
        lines.push(format!(
            "Deployment {} is at step {} of {}: {}.",
            text(&deployment["id"]),
            deployment["currentStep"],
            deployment["totalSteps"],
            now.join(", ")
        ));
    }
    if let Some(failure) = app.get("lastTaskFailure").filter(|f| f.is_object()) {
        lines.push(format!("Last task failure: {}.", task_failure(failure)));
    }
    lines
}

/// Why a queued app is not launched: backoff, no offers, or what each
/// offer lacked.
fn queue_reasons(app: &Value, entry: &Value) -> Vec<String> {
    let summary = &entry["processedOffersSummary"];
    let mut lines = Vec::new();
    let delayed = entry["delay"]["timeLeftSeconds"].as_u64().unwrap_or(0);
    if delayed > 0 {
        lines.push(format!(
            "Its tasks failed, so launches back off: the next is in {delayed} s \
             (DELETE /v2/queue{}/delay resets the backoff).",
            text(&app["id"])
        ));
    }
    let processed = summary["processedOffersCount"].as_u64().unwrap_or(0);
    if processed == 0 {
        if delayed == 0 {
            lines.push(
                "No offer has come from Mesos since it started waiting: is an agent \
                 registered, with resources to spare?"
                    .to_owned(),
            );
        }
        return lines;
    }
    let declined: Vec<String> = list_of(&summary["rejectSummaryLastOffers"])
        .filter(|step| step["declined"].as_u64().unwrap_or(0) > 0)
        .map(|step| {
            format!(
                "{} of {} offers {}",
                step["declined"],
                step["processed"],
                lacked(app, step["reason"].as_str().unwrap_or(""))
            )
        })
        .collect();
    if declined.is_empty() {
        lines.push(format!(
            "The last {processed} offers fitted; the launch is under way."
        ));
    } else {
        lines.push(format!("No offer fits: {}.", declined.join("; ")));
    }
    lines
}

/// What an offer declined for `reason` lacked, against what the app asks.
fn lacked(app: &Value, reason: &str) -> String {
    match reason {
        "InsufficientCpus" => format!("had less CPU than the {} it asks per instance", app["cpus"]),
        "InsufficientMemory" => format!(
            "had less memory than the {} MB it asks per instance",
            app["mem"]
        ),
        "InsufficientDisk" => format!(
            "had less disk than the {} MB it asks per instance",
            app["disk"]
        ),
        "InsufficientGpus" => format!("had fewer GPUs than the {} it asks", app["gpus"]),
        "InsufficientPorts" => {
            let ports = list_of(&app["portDefinitions"]).count();
            let fixed = if app["requirePorts"] == true {
                " (requirePorts: the very ports of its definition)"
            } else {
                ""
            };
            format!("had fewer free host ports than the {ports} it needs{fixed}")
        }
        "UnfulfilledConstraint" => {
            format!("did not meet its constraints {}", app["constraints"])
        }
        "UnfulfilledRole" => "were for another role".to_owned(),
        "AgentMaintenance" => "came from agents in maintenance".to_owned(),
        other => format!("were declined ({other})"),
    }
}

fn instances(n: u64) -> String {
    match n {
        1 => "1 instance is".to_owned(),
        n => format!("{n} instances are"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_that_lack_cpu_say_so_with_what_the_app_asks() {
        let app = json!({"id": "/big", "instances": 2, "tasksRunning": 0, "tasksStaged": 0,
                         "tasksHealthy": 0, "tasksUnhealthy": 0, "cpus": 100.0});
        let entry = json!({"count": 2, "since": "2026-01-01T00:00:00Z",
            "delay": {"timeLeftSeconds": 0},
            "processedOffersSummary": {"processedOffersCount": 3, "rejectSummaryLastOffers": [
                {"reason": "UnfulfilledRole", "declined": 0, "processed": 3},
                {"reason": "InsufficientCpus", "declined": 3, "processed": 3}]}});
        let lines = explain(&app, Some(&entry), &[]);
        assert_eq!(
            lines[0],
            "/big: 0 of 2 instances running (0 staged, 0 healthy, 0 unhealthy)."
        );
        assert!(
            lines[1].starts_with("2 instances are waiting to launch since 2026-01-01T00:00:00Z"),
            "{lines:?}"
        );
        assert_eq!(
            lines[2],
            "No offer fits: 3 of 3 offers had less CPU than the 100.0 it asks per instance."
        );
    }

    #[test]
    fn backoff_and_a_quiet_master_are_told_apart() {
        let app = json!({"id": "/fail", "instances": 1});
        let backoff = json!({"delay": {"timeLeftSeconds": 7},
            "processedOffersSummary": {"processedOffersCount": 0}});
        let lines = queue_reasons(&app, &backoff);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("next is in 7 s"), "{lines:?}");
        let quiet = json!({"delay": {"timeLeftSeconds": 0},
            "processedOffersSummary": {"processedOffersCount": 0}});
        assert!(queue_reasons(&app, &quiet)[0].starts_with("No offer has come"));
    }
}
