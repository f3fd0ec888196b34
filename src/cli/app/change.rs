//! The commands that start a deployment: `stride app deploy|scale|restart|
//! rollback|delete`. Each prints the deployment it started and, with
//! `--wait`, follows it to its end.

use super::show::{list_of, print_json, text};
use super::{Change, wait};
use crate::cli::exit::Failure;
use crate::cli::remote::Api;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};
use std::io::Read;
use std::path::Path;

/// What the server reports about an app besides its definition: left out
/// of a deployed file, so `stride app show ID --json > app.json` can be
/// edited and deployed again.
const REPORTED: &[&str] = &[
    "version",
    "versionInfo",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
    "readinessCheckResults",
    "taskStats",
];

pub async fn deploy(file: &Path, change: &Change) -> anyhow::Result<()> {
    let mut definition = read_definition(file)?;
    for field in REPORTED {
        definition.remove(*field);
    }
    let id = definition["id"].as_str().unwrap_or_default();
    let id = super::app_id(id).map_err(|_| {
        Failure::Refused(format!(
            "{}: \"id\" must name an app, such as /prod/web",
            file.display()
        ))
    })?;
    // A whole definition: what the file leaves out gets Marathon's defaults.
    let mut url = change.out.remote.resource("/v2/apps", &id, &[])?;
    url.query_pairs_mut().append_pair("partialUpdate", "false");
    let body = Value::Object(definition);
    submit(change, &id, "updating", Method::PUT, url, Some(&body)).await
}

pub async fn scale(id: &str, instances: u32, change: &Change) -> anyhow::Result<()> {
    // PATCH, not PUT: a PUT would create a missing app from `instances`.
    let url = change.out.remote.resource("/v2/apps", id, &[])?;
    let body = json!({ "instances": instances });
    submit(change, id, "scaling", Method::PATCH, url, Some(&body)).await
}

pub async fn restart(id: &str, change: &Change) -> anyhow::Result<()> {
    let url = change.out.remote.resource("/v2/apps", id, &["restart"])?;
    submit(change, id, "restarting", Method::POST, url, None).await
}

pub async fn rollback(id: &str, version: Option<String>, change: &Change) -> anyhow::Result<()> {
    let version = match version {
        Some(version) => version,
        None => previous_version(&change.out.remote.api()?, change, id).await?,
    };
    let url = change.out.remote.resource("/v2/apps", id, &[])?;
    let body = json!({ "version": version });
    submit(change, id, "rolling back", Method::PUT, url, Some(&body)).await
}

pub async fn delete(id: &str, change: &Change) -> anyhow::Result<()> {
    let url = change.out.remote.resource("/v2/apps", id, &[])?;
    submit(change, id, "deleting", Method::DELETE, url, None).await
}

/// The version before the current one.
async fn previous_version(api: &Api, change: &Change, id: &str) -> anyhow::Result<String> {
    let url = change.out.remote.resource("/v2/apps", id, &["versions"])?;
    let answer = api.get(url).await?;
    match list_of(&answer["versions"]).nth(1).and_then(Value::as_str) {
        Some(previous) => Ok(previous.to_owned()),
        None => Err(Failure::NotFound(format!(
            "{id} has no version before the current one to roll back to"
        ))
        .into()),
    }
}

/// The app definition in `file` (`-`: stdin), or why it is none.
fn read_definition(file: &Path) -> anyhow::Result<Map<String, Value>> {
    let name = file.display();
    let mut raw = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut raw)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut raw))
    };
    read.map_err(|error| Failure::Refused(format!("{name}: cannot read it: {error}")))?;
    let value: Value = serde_json::from_str(&raw)
        .map_err(|error| Failure::Refused(format!("{name}: not JSON: {error}")))?;
    match value {
        Value::Object(definition) if definition.get("id").is_some_and(Value::is_string) => {
            Ok(definition)
        }
        Value::Object(_) => Err(Failure::Refused(format!(
            "{name}: the definition has no \"id\" (a string such as \"/prod/web\")"
        ))
        .into()),
        _ => Err(Failure::Refused(format!(
            "{name}: expected one app definition, a JSON object such as \
             {{\"id\": \"/prod/web\", \"cmd\": \"...\", \"instances\": 2}}"
        ))
        .into()),
    }
}

/// Sends the change, prints the deployment it started, and with `--wait`
/// follows it.
async fn submit(
    change: &Change,
    id: &str,
    verb: &str,
    method: Method,
    url: Url,
    body: Option<&Value>,
) -> anyhow::Result<()> {
    let api = change.out.remote.api()?;
    let mut url = url;
    url.query_pairs_mut()
        .append_pair("force", if change.force { "true" } else { "false" });
    let (status, answer) = api.send_for_status(method, url, body).await?;
    let deployment = text(&answer["deploymentId"]);
    let version = text(&answer["version"]);
    let verb = if status == StatusCode::CREATED {
        "created"
    } else {
        verb
    };
    if change.out.json {
        let mut printed = json!({"app": id, "deploymentId": deployment, "version": version});
        if change.wait {
            wait::until_done(&api, id, &deployment, &version, change.timeout).await?;
            printed["status"] = json!("finished");
        }
        return print_json(&printed);
    }
    println!("{verb} {id}: deployment {deployment} (version {version})");
    for (n, step) in plan(&api, &change.out.remote, &deployment)
        .await?
        .iter()
        .enumerate()
    {
        println!("  step {}: {step}", n + 1);
    }
    if change.wait {
        wait::until_done(&api, id, &deployment, &version, change.timeout).await?;
        println!("deployment {deployment} finished");
    }
    Ok(())
}

/// The steps of a running deployment, each its actions
/// (`StartApplication /prod/web`); none once it is over.
async fn plan(
    api: &Api,
    remote: &crate::cli::remote::Remote,
    deployment: &str,
) -> anyhow::Result<Vec<String>> {
    let all = api.get(remote.endpoint("/v2/deployments")?).await?;
    let Some(ours) = list_of(&all).find(|d| d["id"] == deployment) else {
        return Ok(Vec::new());
    };
    Ok(list_of(&ours["steps"])
        .map(|step| {
            let actions: Vec<String> = list_of(&step["actions"])
                .map(|a| format!("{} {}", text(&a["action"]), text(&a["app"])))
                .collect();
            actions.join(", ")
        })
        .collect())
}
