//! After a restart: the containers this cluster's agents started, found by
//! their labels, matched with their checkpoints. As Mesos' Docker
//! containerizer recovers, a running container is adopted, one that ended
//! meanwhile is reported with its exit, and one without a checkpoint (an
//! orphan) is removed (`--docker_kill_orphans`).

use super::engine::{Engine, EngineError};
use super::{Checkpoint, LABEL_AGENT, LABEL_CHECKPOINT};
use stride_mesos::types::AgentId;

/// A container found at start.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) owner: Checkpoint,
    /// `None` while it runs; otherwise how it ended, and whether well.
    pub(crate) ended: Option<(String, bool)>,
}

pub(crate) async fn recover(engine: &Engine, agents: &[AgentId]) -> Vec<Recovered> {
    let containers = match engine.list_labelled(LABEL_AGENT).await {
        Ok(containers) => containers,
        Err(error @ EngineError::Unreachable { .. }) => {
            tracing::debug!(%error, "no Docker engine: no container to recover");
            return Vec::new();
        }
        Err(error) => {
            tracing::warn!(%error, "cannot list containers to recover");
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for container in containers {
        let labels = container.labels.unwrap_or_default();
        let ours = labels
            .get(LABEL_AGENT)
            .is_some_and(|agent| agents.iter().any(|a| a.value == *agent));
        let Some(name) = container.names.into_iter().flatten().next() else {
            continue;
        };
        let name = name.trim_start_matches('/').to_string();
        if !ours {
            continue;
        }
        let checkpoint = labels.get(LABEL_CHECKPOINT).and_then(|path| {
            let text = std::fs::read(path).ok()?;
            serde_json::from_slice::<Checkpoint>(&text).ok()
        });
        let Some(owner) = checkpoint.filter(|owner| owner.name() == name) else {
            tracing::warn!(container = %name, "removing an orphan container: its checkpoint is gone");
            if let Err(error) = engine.remove(&name).await {
                tracing::warn!(container = %name, %error, "cannot remove the orphan");
            }
            continue;
        };
        let state = container.state.map(|s| s.to_string()).unwrap_or_default();
        let ended = match state.as_str() {
            "running" | "paused" | "restarting" => None,
            "created" => Some((
                "Container was created but never started before the agent restarted".to_string(),
                false,
            )),
            _ => {
                let code = engine
                    .inspect(&name)
                    .await
                    .ok()
                    .and_then(|i| i.state?.exit_code)
                    .unwrap_or(-1);
                let message =
                    format!("Container exited with status {code} while the agent was down");
                Some((message, code == 0))
            }
        };
        if ended.is_some()
            && let Err(error) = engine.remove(&name).await
        {
            tracing::warn!(container = %name, %error, "cannot remove an ended container");
        }
        tracing::info!(container = %name, task = %owner.info.task_id, running = ended.is_none(), "recovered container");
        found.push(Recovered { owner, ended });
    }
    found
}
