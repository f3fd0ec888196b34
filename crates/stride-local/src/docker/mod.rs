//! `container.type: DOCKER` tasks on a Docker engine, as Mesos 1.11's
//! Docker containerizer and `mesos-docker-executor` run them: pull only
//! when asked to or when the image is absent, a container named
//! `mesos-<container id>` with the sandbox mounted at
//! `/mnt/mesos/sandbox`, its output in the sandbox, `docker stop -t
//! <grace>` to kill, and Mesos' status texts. The engine is reached over
//! its HTTP API (`engine.rs`), never through the docker CLI.
//!
//! Differences, deliberate: the container is removed as soon as its task
//! ends (a Mesos agent keeps it for `--docker_remove_delay`, 6 hours); the
//! sandbox already holds its output. Each container carries labels naming
//! its agent, framework, task and checkpoint, so a restarted cluster finds
//! and adopts the containers it started (`recover.rs`).

mod engine;
mod logs;
mod options;
mod parameters;
mod recover;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub(crate) use engine::{Engine, EngineError};
pub(crate) use options::docker_info;
pub(crate) use recover::{Recovered, recover};

use super::process::{KillRequest, TaskReport};
use super::sandbox::Sandbox;
use options::run_options;
use stride_mesos::types::{AgentId, FrameworkId, TaskInfo};

/// Labels every container started here carries.
pub(crate) const LABEL_AGENT: &str = "stride.agent";
const LABEL_FRAMEWORK: &str = "stride.framework";
const LABEL_TASK: &str = "stride.task";
const LABEL_CONTAINER: &str = "stride.container";
const LABEL_CHECKPOINT: &str = "stride.checkpoint";
/// Mesos' `DOCKER_NAME_PREFIX`.
const NAME_PREFIX: &str = "mesos-";
/// How long an unanswered wait is retried before the task is failed: the
/// engine may be restarting.
const ENGINE_PATIENCE: Duration = Duration::from_secs(30);
/// How long the output may trail the exit before the log stream is cut.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// Who a container belongs to; also what is checkpointed beside the
/// sandbox so a restarted cluster can adopt the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) info: TaskInfo,
    pub(crate) framework_id: FrameworkId,
    pub(crate) agent_id: AgentId,
    pub(crate) container_id: String,
    pub(crate) sandbox: PathBuf,
}

impl Checkpoint {
    fn name(&self) -> String {
        format!("{NAME_PREFIX}{}", self.container_id)
    }

    fn labels(&self, checkpoint: &std::path::Path) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_AGENT.into(), self.agent_id.value.clone()),
            (LABEL_FRAMEWORK.into(), self.framework_id.value.clone()),
            (LABEL_TASK.into(), self.info.task_id.value.clone()),
            (LABEL_CONTAINER.into(), self.container_id.clone()),
            (LABEL_CHECKPOINT.into(), checkpoint.display().to_string()),
        ])
    }

    fn image(&self) -> String {
        docker_info(&self.info).map_or_else(String::new, |d| d.image.clone())
    }
}

/// Where a container's checkpoint goes: beside its sandbox, outside it, so
/// the task cannot change it.
fn checkpoint_path(sandbox: &Sandbox) -> PathBuf {
    sandbox.dir.with_extension("checkpoint.json")
}

/// A kill request, once: a dropped sender means nobody will ever ask.
struct KillSwitch(Option<KillRequest>);

impl KillSwitch {
    async fn requested(&mut self) -> Duration {
        if let Some(request) = self.0.as_mut() {
            let answer = request.await;
            self.0 = None;
            if let Ok(grace) = answer {
                return grace;
            }
        }
        std::future::pending().await
    }
}

/// Pulls if needed, creates, starts and follows one container, sending each
/// step to `report` as the docker executor would send it.
pub(crate) async fn supervise(
    engine: Arc<Engine>,
    owner: Checkpoint,
    kill: KillRequest,
    report: impl Fn(TaskReport),
) {
    let mut kill = KillSwitch(Some(kill));
    let sandbox = Sandbox {
        dir: owner.sandbox.clone(),
    };
    let checkpoint = checkpoint_path(&sandbox);
    let files = {
        let (sandbox, owner, checkpoint) = (sandbox.clone(), owner.clone(), checkpoint.clone());
        tokio::task::spawn_blocking(move || prepare(&sandbox, &owner, &checkpoint)).await
    };
    let (stdout, stderr) = match files {
        Ok(Ok(files)) => files,
        Ok(Err(message)) => return report(TaskReport::LaunchFailed { message }),
        Err(error) => {
            let message = format!("Failed to create sandbox: {error}");
            return report(TaskReport::LaunchFailed { message });
        }
    };
    let image = owner.image();
    let options = match run_options(
        &owner.info,
        &owner.name(),
        &sandbox.dir,
        owner.labels(&checkpoint),
    ) {
        Ok(options) => options,
        Err(error) => {
            // The executor builds these after the containerizer pulled;
            // a bad definition fails the same way whatever the image.
            let message = format!("Failed to create docker run options: {error}");
            return report(TaskReport::ExecutorFailed { message });
        }
    };
    tokio::select! {
        pulled = ensure_image(&engine, &options.image, &options.reference, options.force_pull) => {
            if let Err(message) = pulled {
                return report(TaskReport::LaunchFailed { message });
            }
        }
        _ = kill.requested() => {
            return report(TaskReport::Exited {
                killed: true,
                message: "Container destroyed while pulling image".to_string(),
                success: false,
            });
        }
    }
    let name = owner.name();
    if let Err(error) = engine.create(&name, options.body).await {
        let message = format!("Failed to create container '{name}' from image '{image}': {error}");
        return report(TaskReport::LaunchFailed { message });
    }
    let output = match engine.attach(&name).await {
        Ok(output) => output,
        Err(error) => {
            let _ = engine.remove(&name).await;
            let message =
                format!("Failed to attach to container '{name}' (image '{image}'): {error}");
            return report(TaskReport::LaunchFailed { message });
        }
    };
    let pump = tokio::spawn(logs::pump(output, stdout, stderr, None));
    if let Err(error) = engine.start(&name).await {
        let _ = engine.remove(&name).await;
        pump.abort();
        let message = format!("Failed to start container '{name}' from image '{image}': {error}");
        return report(TaskReport::LaunchFailed { message });
    }
    follow(&engine, &owner, kill, pump, false, report).await;
}

/// Creates the sandbox with its output files and writes the checkpoint.
fn prepare(
    sandbox: &Sandbox,
    owner: &Checkpoint,
    checkpoint: &std::path::Path,
) -> Result<(std::fs::File, std::fs::File), String> {
    let files = sandbox.create().map_err(|error| {
        format!(
            "Failed to create sandbox {}: {error}",
            sandbox.dir.display()
        )
    })?;
    let text = serde_json::to_vec(owner).map_err(|e| e.to_string())?;
    std::fs::write(checkpoint, text)
        .map_err(|error| format!("Failed to checkpoint {}: {error}", checkpoint.display()))?;
    Ok(files)
}

/// Mesos' `Docker::pull`: without `force`, an image already on the engine
/// is used as it is and nothing is pulled.
async fn ensure_image(
    engine: &Engine,
    image: &str,
    reference: &str,
    force: bool,
) -> Result<(), String> {
    let endpoint = engine.endpoint();
    let present = if force {
        false
    } else {
        match engine.has_image(reference).await {
            Ok(present) => present,
            Err(error) => return Err(format!("Failed to inspect image '{image}': {error}")),
        }
    };
    if present {
        tracing::debug!(%image, "image present on the engine; no pull");
        return Ok(());
    }
    tracing::info!(%image, force, "pulling image");
    engine
        .pull(reference)
        .await
        .map_err(|error| match (force, error) {
            (_, error @ EngineError::Unreachable { .. }) => {
                format!("Failed to pull image '{image}': {error}")
            }
            (true, error) => format!(
                "Failed to pull image '{image}' (forcePullImage is set, so it is pulled even when \
             present) through the Docker engine at {endpoint}: {error}"
            ),
            (false, error) => format!(
                "Image '{image}' is not on the Docker engine at {endpoint}, and pulling it failed: \
             {error}"
            ),
        })
}

/// From a started container to its end: reports it running, stops it when
/// asked, waits for its exit, removes it and reports how it ended.
async fn follow(
    engine: &Arc<Engine>,
    owner: &Checkpoint,
    mut kill: KillSwitch,
    pump: JoinHandle<()>,
    adopted: bool,
    report: impl Fn(TaskReport),
) {
    let name = owner.name();
    let image = owner.image();
    let (pid, ip) = match engine.inspect(&name).await {
        Ok(inspect) => {
            let state = inspect.state.unwrap_or_default();
            let ip = inspect
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.into_values().find_map(|e| e.ip_address))
                .filter(|ip| !ip.is_empty());
            (
                state.pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                ip,
            )
        }
        Err(_) => (0, None),
    };
    report(match adopted {
        false => TaskReport::Started { pid, ip },
        true => TaskReport::Adopted { pid, ip },
    });
    let mut stopping: Option<JoinHandle<()>> = None;
    let exit = loop {
        tokio::select! {
            exit = wait_exit(engine, &name) => break exit,
            grace = kill.requested(), if stopping.is_none() => {
                report(TaskReport::Killing);
                stopping = Some(tokio::spawn(stop_until_stopped(
                    Arc::clone(engine), name.clone(), grace,
                )));
            }
        }
    };
    if let Some(stopping) = stopping.as_ref() {
        stopping.abort();
    }
    let killed = stopping.is_some();
    if tokio::time::timeout(LOG_DRAIN, pump).await.is_err() {
        tracing::debug!(container = %name, "output still open after the exit; cut");
    }
    let oom = engine
        .inspect(&name)
        .await
        .ok()
        .and_then(|i| i.state?.oom_killed)
        .unwrap_or(false);
    if let Err(error) = engine.remove(&name).await {
        tracing::warn!(container = %name, %error, "cannot remove the container");
    }
    let stderr = owner.sandbox.join("stderr");
    let (message, success) = match exit {
        Ok(code) => {
            let mut message = format!("Container exited with status {code}");
            if code != 0 && !killed {
                let mut why = vec![format!("image '{image}'")];
                if oom {
                    why.push("killed by the kernel for exceeding its memory limit".to_string());
                }
                if let Some(line) = logs::last_line(&stderr) {
                    why.push(format!("last stderr line: '{line}'"));
                }
                message.push_str(&format!(" ({})", why.join("; ")));
            }
            (message, code == 0)
        }
        Err(error) => (
            format!("Failed to get exit status of container '{name}' (image '{image}'): {error}"),
            false,
        ),
    };
    report(TaskReport::Exited {
        killed,
        message,
        success,
    });
}

/// The engine's exit code, waiting out an engine that stops answering for
/// a while (a restart); a container that vanished is an error.
async fn wait_exit(engine: &Engine, name: &str) -> Result<i64, EngineError> {
    let deadline = tokio::time::Instant::now() + ENGINE_PATIENCE;
    loop {
        match engine.wait(name).await {
            Ok(code) => return Ok(code),
            Err(error @ EngineError::Refused { .. }) => return Err(error),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(error) => {
                tracing::warn!(container = %name, %error, "waiting for the container failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `docker stop -t <whole seconds>` (Mesos truncates the grace period),
/// retried until it succeeds: a failed stop must not leave the task running
/// while its kill is considered sent.
async fn stop_until_stopped(engine: Arc<Engine>, name: String, grace: Duration) {
    let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
    tracing::info!(container = %name, seconds, "stopping container");
    while let Err(error) = engine.stop(&name, seconds).await {
        tracing::warn!(container = %name, %error, "docker stop failed; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Follows a running container this cluster started before it restarted
/// (`recover`), appending to its sandbox only the output written since.
pub(crate) async fn adopt(
    engine: Arc<Engine>,
    owner: Checkpoint,
    kill: KillRequest,
    report: impl Fn(TaskReport),
) {
    let kill = KillSwitch(Some(kill));
    let sandbox = owner.sandbox.clone();
    let files = tokio::task::spawn_blocking(move || reopen(&sandbox)).await;
    let pump = match files {
        Ok(Ok((stdout, stderr, after))) => {
            let since = i32::try_from(after.timestamp()).unwrap_or(0);
            match engine.follow_logs(&owner.name(), since).await {
                Ok(output) => tokio::spawn(logs::pump(output, stdout, stderr, Some(after))),
                Err(_) => tokio::spawn(async {}),
            }
        }
        _ => tokio::spawn(async {}),
    };
    follow(&engine, &owner, kill, pump, true, report).await;
}

/// The sandbox's output files, to append to, and when they were last
/// written: output up to then is already in them.
fn reopen(
    sandbox: &std::path::Path,
) -> std::io::Result<(std::fs::File, std::fs::File, DateTime<Utc>)> {
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(sandbox.join(name))
    };
    let (stdout, stderr) = (open("stdout")?, open("stderr")?);
    let latest = [&stdout, &stderr]
        .iter()
        .filter_map(|f| f.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(std::time::UNIX_EPOCH);
    Ok((stdout, stderr, DateTime::<Utc>::from(latest)))
}
