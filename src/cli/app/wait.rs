//! `--wait`: a deployment followed on `/v1/stream` from the event that
//! planned it (so none of its events is missed, however fast it ends), with
//! a progress bar of the app's running tasks, until it finishes or fails.

use super::show::{list_of, text};
use crate::cli::exit::Failure;
use crate::cli::follow::{Followed, Follower};
use crate::cli::remote::Api;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The app's counts are asked for at most this often.
const REFRESH: Duration = Duration::from_millis(250);

pub async fn until_done(
    api: &Api,
    app: &str,
    deployment: &str,
    version: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let (seq, steps) = planned(api, deployment, version).await?;
    // By type, not by app: a deployment's events name the group the change
    // was planned at, which may be the app's parent.
    let types = [
        "DeploymentStepFinished",
        "DeploymentFinished",
        "DeploymentFailed",
        "TaskStatusRecorded",
    ];
    let filters = types.iter().map(|t| ("type", (*t).to_owned())).collect();
    let mut follower = Follower::new(&api.remote, seq.to_string(), filters, true);
    let mut progress = Progress::new(deployment, steps);
    let mut refreshed: Option<Instant> = None;
    loop {
        let next = match tokio::time::timeout_at(deadline, follower.next()).await {
            Ok(next) => next?,
            Err(_) => {
                progress.bar.abandon();
                return Err(Failure::TimedOut(format!(
                    "deployment {deployment} still running after {}: {}{} \
                     (`stride app why {app}` says why)",
                    humantime::format_duration(timeout),
                    progress.counts,
                    progress.failure_note()
                ))
                .into());
            }
        };
        let event = match next {
            Followed::Event(event, _) => event,
            Followed::CaughtUp => Value::Null,
        };
        let ours = event["deployment"] == deployment;
        match event["type"].as_str().unwrap_or("") {
            "DeploymentStepFinished" if ours => {
                progress.step(event["step"].as_u64().unwrap_or(0));
            }
            "DeploymentFinished" if ours => {
                refresh(api, app, &mut progress).await?;
                progress.bar.finish();
                return Ok(());
            }
            "DeploymentFailed" if ours => {
                progress.bar.abandon();
                return Err(Failure::DeploymentFailed(format!(
                    "deployment {deployment} failed: {}",
                    text(&event["reason"])
                ))
                .into());
            }
            "TaskStatusRecorded" if event["app"] == app => {
                // Kills are the deployment's own doing; these are not.
                let state = text(&event["mesos_state"]);
                let failed = [
                    "TASK_FAILED",
                    "TASK_ERROR",
                    "TASK_LOST",
                    "TASK_DROPPED",
                    "TASK_GONE",
                    "TASK_UNREACHABLE",
                ];
                if failed.contains(&state.as_str()) {
                    progress.failed(format!("{state}: {}", text(&event["message"])));
                }
            }
            _ => {}
        }
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH) {
            refresh(api, app, &mut progress).await?;
            refreshed = Some(Instant::now());
        }
    }
}

/// The seq of the event that planned `deployment` (recorded at the
/// `version` it made), and its step count.
async fn planned(api: &Api, deployment: &str, version: &str) -> anyhow::Result<(u64, usize)> {
    let mut url = api.remote.endpoint("/v1/audit")?;
    url.query_pairs_mut()
        .append_pair("type", "DeploymentPlanned")
        .append_pair("since", version);
    let page = api.get(url).await?;
    list_of(&page["events"])
        .find(|event| event["deployment"] == deployment)
        .and_then(|event| Some((event["seq"].as_u64()?, list_of(&event["steps"]).count())))
        .with_context(|| format!("the log has no plan for deployment {deployment}"))
}

/// The app's running tasks against its instances (none once deleted).
async fn refresh(api: &Api, app: &str, progress: &mut Progress) -> anyhow::Result<()> {
    let mut url = api.remote.resource("/v2/apps", app, &[])?;
    url.query_pairs_mut().append_pair("embed", "app.counts");
    let (running, wanted) = match api.get(url).await {
        Ok(answer) => (
            answer["app"]["tasksRunning"].as_u64().unwrap_or(0),
            answer["app"]["instances"].as_u64().unwrap_or(0),
        ),
        Err(error) if matches!(error.downcast_ref(), Some(Failure::NotFound(_))) => (0, 0),
        Err(error) => return Err(error),
    };
    progress.counts(running, wanted);
    Ok(())
}

/// A bar on a terminal; elsewhere (a log, a test) a line per change.
struct Progress {
    bar: ProgressBar,
    steps: usize,
    step: u64,
    counts: String,
    last_failure: Option<String>,
}

impl Progress {
    fn new(deployment: &str, steps: usize) -> Progress {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} running  {wide_msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("deployment {deployment}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar,
            steps,
            step: 0,
            counts: String::new(),
            last_failure: None,
        }
    }

    fn step(&mut self, step: u64) {
        self.step = step;
        self.say(format!("step {step} of {} done", self.steps));
        self.show();
    }

    fn counts(&mut self, running: u64, wanted: u64) {
        let counts = format!("{running} of {wanted} running");
        self.bar.set_length(wanted);
        self.bar.set_position(running.min(wanted));
        if counts != self.counts {
            self.say(counts.clone());
            self.counts = counts;
        }
    }

    fn failed(&mut self, failure: String) {
        self.say(format!("a task ended: {failure}"));
        self.last_failure = Some(failure);
        self.show();
    }

    fn failure_note(&self) -> String {
        match &self.last_failure {
            Some(failure) => format!("; last task failure: {failure}"),
            None => String::new(),
        }
    }

    fn show(&self) {
        let mut message = format!("step {}/{}", self.step, self.steps);
        if let Some(failure) = &self.last_failure {
            message.push_str(&format!("  last failure: {failure}"));
        }
        self.bar.set_message(message);
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("stride: {line}");
        }
    }
}
