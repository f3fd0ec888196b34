//! The reconciler: keeps Stride's log in line with what Mesos reports, and
//! Mesos in line with what users asked for.
//!
//! Every Mesos event that is a fact becomes a command through the one
//! committer; an update is acknowledged only after its event is durable, so
//! a crash in between makes Mesos resend it (and recording it twice changes
//! nothing: see `command::decide`). State changes, Mesos events and a timer
//! all trigger the same thing: a plan (`plan`, pure) over the whole state,
//! carried out by the `executor`. Triggers that arrive together share one.
//!
//! It runs until told to stop, finishing the activation under way first;
//! Mesos refusing the framework for good (an `ERROR` event, e.g. after an
//! operator's teardown) ends it with an error, which ends the process, as
//! it ends Marathon.

mod executor;
pub mod plan;
mod queue;
mod reconciliation;
mod status;
mod task_info;

pub use plan::RejectReason;
pub use queue::{Entry as QueueEntry, Queue};

use crate::committer::{Committer, SubmitError};
use crate::health::Readiness;
use crate::metrics::{MesosState, Metrics};
use crate::published::Projection;
use crate::stream::Sidecars;
use executor::Executor;
use reconciliation::Reconciliation;
use std::sync::Arc;
use std::time::Duration;
use stride_core::command::Command;
use stride_log::event::{Actor, FrameworkId};
use stride_mesos::{SchedulerEvent, SchedulerHandle};
use stride_runtime::Clock;
use stride_runtime::{SubtaskPanicked, Subtasks};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the reconciler shares with the rest of the server.
pub struct Links {
    /// Written here, read by `GET /v2/queue`.
    pub queue: Arc<Queue>,
    /// LB sidecars' progress: drained tasks wait for it.
    pub sidecars: Sidecars,
    /// Readiness results: deployments wait for them.
    pub readiness: Readiness,
    /// How long a drained task waits for the sidecars before its kill.
    pub drain_timeout: Duration,
    pub metrics: Metrics,
    /// What plans and timers measure time by.
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcilerError {
    #[error("Mesos refused the framework for good: {0}")]
    Refused(String),
    #[error("the Mesos driver stopped")]
    DriverGone,
    #[error("cannot record a Mesos event")]
    Record(#[source] SubmitError),
    #[error("cannot record a plan")]
    Plan(#[source] SubmitError),
    #[error(transparent)]
    Update(#[from] SubtaskPanicked),
}

/// The safety net: plan at least this often even if nothing seems to change.
const TICK: Duration = Duration::from_secs(5);

pub struct Reconciler {
    mesos: SchedulerHandle,
    committer: Committer,
    projection: Arc<Projection>,
    reconciliation: Reconciliation,
    executor: Executor,
    sidecars: Sidecars,
    readiness: Readiness,
    metrics: Metrics,
    clock: Clock,
    subscribed: bool,
}

impl Reconciler {
    pub fn new(
        mesos: SchedulerHandle,
        committer: Committer,
        projection: Arc<Projection>,
        links: Links,
    ) -> Self {
        let sidecars = links.sidecars.clone();
        let readiness = links.readiness.clone();
        let metrics = links.metrics.clone();
        let clock = links.clock;
        let executor = Executor::new(mesos.clone(), committer.clone(), projection.clone(), links);
        Reconciler {
            mesos,
            committer,
            projection,
            reconciliation: Reconciliation::default(),
            executor,
            sidecars,
            readiness,
            metrics,
            clock,
            subscribed: false,
        }
    }

    /// Follows the Mesos event stream until told to stop (between
    /// activations) or Mesos refuses the framework for good.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<SchedulerEvent>,
        stop: CancellationToken,
    ) -> Result<(), ReconcilerError> {
        let mut head = self.projection.watch_head();
        // Each status update is recorded and acknowledged by a task of its
        // own (see `handle`), which the reconciler owns.
        let mut updates = Subtasks::new("status update", &stop);
        loop {
            let wake = self.wake_instant();
            let event = tokio::select! {
                biased;
                () = stop.cancelled() => {
                    // Updates in flight are recorded and acknowledged first.
                    updates.finish().await?;
                    // Without a framework teardown: Mesos keeps the tasks.
                    self.mesos.shutdown().await;
                    return Ok(());
                }
                panicked = updates.panicked() => return Err(panicked.into()),
                event = events.recv() => match event {
                    Some(event) => Some(event),
                    None => return Err(ReconcilerError::DriverGone),
                },
                changed = head.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    None
                }
                () = self.reconciliation.due() => {
                    self.reconciliation.ask(&self.mesos).await;
                    continue;
                }
                () = tokio::time::sleep_until(wake) => None,
                // A load balancer applied more: a drained task may go.
                () = self.sidecars.moved() => None,
                // A new task passed its readiness checks: an old one may go.
                () = self.readiness.moved() => None,
            };
            let mut pending = event.into_iter().collect::<Vec<_>>();
            // Coalesce: whatever else has arrived joins this activation.
            while let Ok(more) = events.try_recv() {
                pending.push(more);
            }
            head.mark_unchanged();
            for event in pending {
                self.handle(event, &mut updates).await?;
            }
            if !self.subscribed {
                continue;
            }
            self.executor
                .activate()
                .await
                .map_err(ReconcilerError::Plan)?;
        }
    }

    /// The next timer activation: the tick, or sooner if the last plan
    /// said it would change by itself (a backoff running out).
    fn wake_instant(&self) -> Instant {
        let tick = Instant::now() + TICK;
        let Some(at) = self.executor.wake_at else {
            return tick;
        };
        tick.min(self.clock.instant_at(at))
    }

    async fn handle(
        &mut self,
        event: SchedulerEvent,
        updates: &mut Subtasks,
    ) -> Result<(), ReconcilerError> {
        match event {
            SchedulerEvent::Subscribed {
                framework_id,
                master,
                ..
            } => {
                let command = Command::RecordFrameworkSubscribed {
                    framework: FrameworkId(framework_id.value.clone()),
                    master: master.to_string(),
                };
                self.committer
                    .submit(Actor::Mesos, None, command)
                    .await
                    .map_err(ReconcilerError::Record)?;
                tracing::info!(framework = %framework_id, %master, "subscribed");
                self.metrics.mesos(MesosState::Subscribed);
                self.subscribed = true;
                self.executor.resubscribed();
                self.reconciliation.start(&self.projection.read());
                self.reconciliation.ask(&self.mesos).await;
            }
            SchedulerEvent::Update(update) => {
                let status = status::from_mesos(&update);
                self.reconciliation.answered(&status.task);
                // Updates of different tasks are independent (Mesos holds a
                // task's next update until this one is acknowledged), so
                // they share group commits instead of waiting in line.
                let committer = self.committer.clone();
                let mesos = self.mesos.clone();
                updates.spawn(|_| async move {
                    let command = Command::RecordTaskStatus(status);
                    if let Err(error) = committer.submit(Actor::Mesos, None, command).await {
                        tracing::warn!(task = %update.task_id, %error, "cannot record an update");
                        return;
                    }
                    if update.needs_acknowledgement() {
                        if let Err(error) = mesos.acknowledge(&update).await {
                            // Mesos resends unacknowledged updates; a resend
                            // is recorded as nothing new.
                            tracing::warn!(task = %update.task_id, %error, "ACKNOWLEDGE failed");
                        }
                    }
                });
            }
            SchedulerEvent::Offers(offers) => self.executor.offered(offers),
            SchedulerEvent::Rescinded(offer) => self.executor.rescinded(&offer),
            SchedulerEvent::Failure(failure) => tracing::info!(?failure, "Mesos reports a failure"),
            SchedulerEvent::Message(_) | SchedulerEvent::OperationStatus(_) => {}
            SchedulerEvent::Error(message) => {
                self.metrics.mesos(MesosState::Failed);
                return Err(ReconcilerError::Refused(message));
            }
            SchedulerEvent::Disconnected { reason } => {
                tracing::warn!(%reason, "disconnected from Mesos; resubscribing");
                self.metrics.mesos(MesosState::Disconnected);
                self.subscribed = false;
            }
        }
        Ok(())
    }
}
