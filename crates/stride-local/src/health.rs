//! What the Mesos command executor does with a TaskInfo's `health_check`,
//! following Mesos 1.11's health checker: the first check `delay_seconds`
//! after the task runs, the next `interval_seconds` after the previous one
//! ended, each bounded by `timeout_seconds` (0: unbounded). Failures within
//! `grace_period_seconds` of the start, before any success, are ignored.
//! The first success, and the first after failures, report healthy; every
//! counted failure reports unhealthy, and the `consecutive_failures`th kills
//! the task. Reports are TASK_RUNNING updates with
//! `REASON_TASK_HEALTH_CHECK_STATUS_UPDATED`; the task's TASK_KILLED then
//! carries `healthy: false` and no reason, as a real 1.11 agent sends it
//! (`fixtures` in `../shared/mesos/events/health--*`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use stride_mesos::types::{FrameworkId, HealthCheck, HealthCheckType, TaskId, TaskState};
use stride_runtime::probe;

use super::master::Master;
use super::process::signal_group;
use super::tasks::StatusChange;

/// `mesos.proto`'s defaults for fields a HealthCheck leaves out.
const DEFAULT_DELAY_SECONDS: f64 = 15.0;
const DEFAULT_INTERVAL_SECONDS: f64 = 10.0;
const DEFAULT_TIMEOUT_SECONDS: f64 = 20.0;
const DEFAULT_GRACE_PERIOD_SECONDS: f64 = 10.0;
const DEFAULT_CONSECUTIVE_FAILURES: u32 = 3;

/// A task's health check with what a COMMAND check runs in: the task's
/// sandbox and environment.
#[derive(Debug, Clone)]
pub(super) struct HealthCheckRun {
    pub(super) check: HealthCheck,
    pub(super) sandbox: PathBuf,
    pub(super) env: Vec<(String, String)>,
}

/// The health checker's memory: whether the task ever passed, and the
/// failures in a row since.
#[derive(Debug)]
struct Checker {
    initializing: bool,
    failures: u32,
    grace: Duration,
    max_failures: u32,
}

/// What one check result makes the executor say.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Nothing,
    Healthy,
    Unhealthy { kill: bool },
}

impl Checker {
    fn new(check: &HealthCheck) -> Self {
        Self {
            initializing: true,
            failures: 0,
            grace: seconds(check.grace_period_seconds, DEFAULT_GRACE_PERIOD_SECONDS),
            max_failures: check
                .consecutive_failures
                .unwrap_or(DEFAULT_CONSECUTIVE_FAILURES),
        }
    }

    /// `since_start`: how long ago the checker started (before the delay).
    fn record(&mut self, passed: bool, since_start: Duration) -> Report {
        if passed {
            let report = match self.initializing || self.failures > 0 {
                true => Report::Healthy,
                false => Report::Nothing,
            };
            self.initializing = false;
            self.failures = 0;
            return report;
        }
        if self.initializing && !self.grace.is_zero() && since_start <= self.grace {
            return Report::Nothing;
        }
        self.failures += 1;
        Report::Unhealthy {
            kill: self.failures >= self.max_failures,
        }
    }
}

fn seconds(value: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(value.unwrap_or(default)).unwrap_or(Duration::ZERO)
}

impl Master {
    /// Starts checking a task that just reported TASK_RUNNING; the checker
    /// ends with the task (`stop`) or once it has killed it.
    pub(super) fn start_health_check(
        self: &Arc<Self>,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        run: HealthCheckRun,
        stop: CancellationToken,
    ) {
        let master = Arc::clone(self);
        let (framework_id, task_id) = (framework_id.clone(), task_id.clone());
        self.supervisors.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = check_until_killed(run, |healthy, kill| {
                    master.on_health(&framework_id, &task_id, healthy, kill)
                }) => {}
            }
        });
    }

    /// Sends a health update and, when `kill`, kills the task as the
    /// executor does. False once there is nothing left to check: the task
    /// is no longer running or is being killed.
    fn on_health(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        healthy: bool,
        kill: bool,
    ) -> bool {
        let retry = self.settings.update_retry;
        let default_grace = self.settings.default_kill_grace;
        let mut state = self.lock();
        let running = state
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(task_id))
            .is_some_and(|t| t.state == TaskState::Running && t.kill.is_some());
        if !running {
            return false;
        }
        state.push_update(framework_id, task_id, StatusChange::health(healthy), retry);
        if !kill {
            return true;
        }
        let task = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.tasks.get_mut(task_id));
        if let Some(task) = task {
            task.killed_by_health = true;
            let grace = task.kill_grace(None, default_grace);
            if let Some(sender) = task.kill.take() {
                tracing::info!(%task_id, ?grace, "killing a task that failed its health check");
                let _ = sender.send(grace);
            }
        }
        false
    }
}

/// Runs the check on its schedule, telling `report(healthy, kill)` what to
/// say, until `report` answers that checking is over.
async fn check_until_killed(run: HealthCheckRun, report: impl Fn(bool, bool) -> bool) {
    let start = Instant::now();
    let check = &run.check;
    let delay = seconds(check.delay_seconds, DEFAULT_DELAY_SECONDS);
    let interval = seconds(check.interval_seconds, DEFAULT_INTERVAL_SECONDS);
    let timeout = seconds(check.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
    let client = probe::client(true);
    let mut checker = Checker::new(check);
    tokio::time::sleep(delay).await;
    loop {
        let passed = match &client {
            Ok(client) => check_once(&run, client, timeout).await,
            Err(error) => Err(format!("cannot build an HTTP client: {error}")),
        };
        if let Err(why) = &passed {
            tracing::debug!(why, "health check failed");
        }
        let keep_going = match checker.record(passed.is_ok(), start.elapsed()) {
            Report::Nothing => true,
            Report::Healthy => report(true, false),
            Report::Unhealthy { kill } => report(false, kill),
        };
        if !keep_going {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// One check; `timeout` zero means none.
async fn check_once(
    run: &HealthCheckRun,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), String> {
    let bounded = match timeout.is_zero() {
        true => Duration::MAX,
        false => timeout,
    };
    match run.check.kind {
        HealthCheckType::Command => run_command(run, bounded).await,
        HealthCheckType::Http => {
            let http = run
                .check
                .http
                .as_ref()
                .ok_or("an HTTP check without `http`")?;
            let scheme = http.scheme.as_deref().unwrap_or("http");
            let path = http.path.as_deref().unwrap_or("/");
            let slash = if path.starts_with('/') { "" } else { "/" };
            let url = format!("{scheme}://127.0.0.1:{}{slash}{path}", http.port);
            // The default executors ignore `statuses`: 200-399 passes.
            match probe::http_status(client, &url, bounded).await? {
                200..=399 => Ok(()),
                status => Err(format!("{url} answered {status}")),
            }
        }
        HealthCheckType::Tcp => {
            let tcp = run.check.tcp.as_ref().ok_or("a TCP check without `tcp`")?;
            probe::tcp_connect("127.0.0.1", tcp.port, bounded).await
        }
        HealthCheckType::Other(ref kind) => Err(format!("unsupported health check type {kind}")),
    }
}

/// A COMMAND check: `sh -c` (or exec) in the sandbox with the task's
/// environment plus the check's own; passes on exit 0. A check that runs
/// out of time is killed with its process group.
async fn run_command(run: &HealthCheckRun, timeout: Duration) -> Result<(), String> {
    let command = run
        .check
        .command
        .as_ref()
        .ok_or("a COMMAND check without `command`")?;
    let value = command.value.clone().unwrap_or_default();
    let mut process = match command.shell {
        Some(false) => {
            let mut process = tokio::process::Command::new(&value);
            process.args(command.arguments.iter().skip(1));
            process
        }
        _ => {
            let mut process = tokio::process::Command::new("/bin/sh");
            process.arg("-c").arg(&value);
            process
        }
    };
    let variables = command.environment.iter().flat_map(|e| &e.variables);
    process
        .envs(run.env.iter().map(|(name, value)| (name, value)))
        .envs(variables.map(|v| (&v.name, v.value.clone().unwrap_or_default())))
        .current_dir(&run.sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = process
        .spawn()
        .map_err(|error| format!("cannot run the health check command: {error}"))?;
    let pid = child.id();
    if let Some(pid) = pid {
        stride_sched::restore_defaults(pid);
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("the health check command ended with {status}")),
        Ok(Err(error)) => Err(format!("cannot wait for the health check command: {error}")),
        Err(_) => {
            if let Some(pid) = pid {
                signal_group(pid, Signal::SIGKILL);
            }
            Err(format!(
                "the health check command timed out after {timeout:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mesos's rules, one row per sequence of results at the given seconds
    /// after start, with a 10 s grace period and 3 failures to kill.
    #[test]
    fn reports_follow_the_mesos_health_checker() {
        let check: HealthCheck = serde_json::from_value(serde_json::json!({
            "type": "COMMAND", "grace_period_seconds": 10.0, "consecutive_failures": 3
        }))
        .expect("a check");
        use Report::{Healthy, Nothing, Unhealthy};
        let quiet = Unhealthy { kill: false };
        let kill = Unhealthy { kill: true };
        type Row = (&'static str, Vec<(bool, u64)>, Vec<Report>);
        let rows: Vec<Row> = vec![
            ("failure in grace", vec![(false, 5)], vec![Nothing]),
            (
                "first success",
                vec![(true, 1), (true, 2)],
                vec![Healthy, Nothing],
            ),
            (
                "every failure after grace reports",
                vec![(false, 11), (false, 12), (false, 13)],
                vec![quiet, Unhealthy { kill: false }, kill],
            ),
            (
                "a success ends the grace period",
                vec![(true, 1), (false, 2)],
                vec![Healthy, Unhealthy { kill: false }],
            ),
            (
                "recovery reports healthy and resets the count",
                vec![(false, 11), (false, 12), (true, 13), (false, 14)],
                vec![
                    Unhealthy { kill: false },
                    Unhealthy { kill: false },
                    Healthy,
                    Unhealthy { kill: false },
                ],
            ),
        ];
        for (name, steps, want) in rows {
            let mut checker = Checker::new(&check);
            let got: Vec<Report> = steps
                .into_iter()
                .map(|(passed, at)| checker.record(passed, Duration::from_secs(at)))
                .collect();
            assert_eq!(got, want, "{name}");
        }
        let mut no_grace = Checker::new(&HealthCheck {
            grace_period_seconds: Some(0.0),
            consecutive_failures: Some(1),
            ..check
        });
        assert_eq!(
            no_grace.record(false, Duration::ZERO),
            Unhealthy { kill: true }
        );
    }
}
