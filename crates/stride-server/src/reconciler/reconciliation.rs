//! Task reconciliation after every (re)subscription, as the Mesos docs
//! recommend: ask explicitly about every task we believe is not terminal,
//! re-ask those that have not answered with capped backoff, and once all
//! have, ask implicitly so Mesos reports tasks we do not know of.

use std::collections::BTreeMap;
use std::time::Duration;
use stride_core::projection::State;
use stride_log::event::TaskId;
use stride_mesos::SchedulerHandle;
use stride_mesos::types::{AgentId, ReconcileTask, TaskId as MesosTaskId};
use stride_runtime::Backoff;
use tokio::time::Instant;

const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(60);

pub struct Reconciliation {
    /// Tasks that have not answered since the round started.
    pending: BTreeMap<TaskId, Option<AgentId>>,
    /// When to ask next; `None` when no round is running.
    next: Option<Instant>,
    retry: Backoff,
    implicit_sent: bool,
}

impl Default for Reconciliation {
    fn default() -> Self {
        Reconciliation {
            pending: BTreeMap::new(),
            next: None,
            retry: Backoff::new(FIRST_RETRY, MAX_RETRY),
            implicit_sent: false,
        }
    }
}

impl Reconciliation {
    /// Starts a new round, superseding any running one.
    pub fn start(&mut self, state: &State) {
        self.pending = state
            .tasks
            .iter()
            .filter(|(_, task)| !task.condition.is_terminal())
            .map(|(id, task)| {
                (
                    id.clone(),
                    task.agent.as_ref().map(|a| AgentId::new(a.as_str())),
                )
            })
            .collect();
        self.next = Some(Instant::now());
        self.retry.reset();
        self.implicit_sent = false;
    }

    pub fn answered(&mut self, task: &TaskId) {
        self.pending.remove(task);
    }

    /// Resolves when the next ask is due; never while no round runs.
    pub async fn due(&self) {
        match self.next {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Explicit for the silent tasks, or implicit once none is left.
    pub async fn ask(&mut self, mesos: &SchedulerHandle) {
        let implicit = self.pending.is_empty();
        if implicit && self.implicit_sent {
            self.next = None;
            return;
        }
        let tasks: Vec<ReconcileTask> = if implicit {
            Vec::new()
        } else {
            self.pending
                .iter()
                .map(|(task, agent)| ReconcileTask {
                    task_id: MesosTaskId::new(task.as_str()),
                    agent_id: agent.clone(),
                })
                .collect()
        };
        let explicit = tasks.len();
        match mesos.reconcile(tasks).await {
            Ok(()) => {
                self.implicit_sent = implicit;
                tracing::info!(explicit, "RECONCILE sent");
            }
            Err(error) => tracing::warn!(%error, "RECONCILE failed; will retry"),
        }
        self.next = Some(Instant::now() + self.retry.next_delay());
    }
}
