//! The reconciler: keeps Stride's log in line with what Mesos reports, and
//! (next) Mesos in line with what users asked for.
//!
//! Every Mesos event that is a fact becomes a command through the one
//! committer; an update is acknowledged only after its event is durable, so
//! a crash in between makes Mesos resend it (and recording it twice changes
//! nothing: see `command::decide`).

mod reconciliation;
mod status;

use crate::command::{Command, Committer, SubmitError};
use crate::event::{Actor, FrameworkId};
use crate::mesos::{SchedulerEvent, SchedulerHandle};
use crate::projection::Projection;
use reconciliation::Reconciliation;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long unused offers are refused; nothing is launched yet, so long.
const DECLINE_REFUSE: Duration = Duration::from_secs(30);

pub struct Reconciler {
    mesos: SchedulerHandle,
    committer: Committer,
    projection: Arc<Projection>,
    reconciliation: Reconciliation,
}

impl Reconciler {
    pub fn new(mesos: SchedulerHandle, committer: Committer, projection: Arc<Projection>) -> Self {
        Reconciler {
            mesos,
            committer,
            projection,
            reconciliation: Reconciliation::default(),
        }
    }

    /// Follows the Mesos event stream until the driver stops.
    pub async fn run(mut self, mut events: mpsc::Receiver<SchedulerEvent>) {
        loop {
            let next = tokio::select! {
                event = events.recv() => event,
                () = self.reconciliation.due() => {
                    self.reconciliation.ask(&self.mesos).await;
                    continue;
                }
            };
            let Some(event) = next else {
                tracing::info!("Mesos driver stopped");
                return;
            };
            if let Err(error) = self.handle(event).await {
                // Only a stopping committer fails a submit of these facts.
                tracing::warn!(%error, "cannot record a Mesos event; stopping the reconciler");
                return;
            }
        }
    }

    async fn handle(&mut self, event: SchedulerEvent) -> Result<(), SubmitError> {
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
                self.committer.submit(Actor::Mesos, None, command).await?;
                tracing::info!(framework = %framework_id, %master, "subscribed");
                // Nothing is launched yet: no offers wanted until there is.
                if let Err(error) = self.mesos.suppress(Vec::new()).await {
                    tracing::warn!(%error, "SUPPRESS failed");
                }
                self.reconciliation.start(&self.projection.read());
                self.reconciliation.ask(&self.mesos).await;
            }
            SchedulerEvent::Update(update) => {
                let status = status::from_mesos(&update);
                self.reconciliation.answered(&status.task);
                let command = Command::RecordTaskStatus(status);
                self.committer.submit(Actor::Mesos, None, command).await?;
                if update.needs_acknowledgement() {
                    if let Err(error) = self.mesos.acknowledge(&update).await {
                        // Mesos resends unacknowledged updates; a resend is
                        // recorded as nothing new.
                        tracing::warn!(task = %update.task_id, %error, "ACKNOWLEDGE failed");
                    }
                }
            }
            SchedulerEvent::Offers(offers) => {
                let ids = offers.into_iter().map(|o| o.id).collect();
                if let Err(error) = self.mesos.decline(ids, Some(DECLINE_REFUSE)).await {
                    tracing::warn!(%error, "DECLINE failed");
                }
            }
            SchedulerEvent::Rescinded(offer) => tracing::debug!(%offer, "offer rescinded"),
            SchedulerEvent::Failure(failure) => tracing::info!(?failure, "Mesos reports a failure"),
            SchedulerEvent::Message(_) | SchedulerEvent::OperationStatus(_) => {}
            SchedulerEvent::Error(message) => {
                tracing::error!(%message, "Mesos ended the subscription");
            }
            SchedulerEvent::Disconnected { reason } => {
                tracing::warn!(%reason, "disconnected from Mesos; resubscribing");
            }
        }
        Ok(())
    }
}
