//! The non-SUBSCRIBE calls. Each goes to the leader that accepted our
//! SUBSCRIBE, with its `Mesos-Stream-Id`, and succeeds on `202 Accepted`:
//! the result (if any) arrives later on the event stream.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tracing::{debug, warn};

use super::client::{CallError, STREAM_ID_HEADER, SchedulerHandle};
use super::types::{
    Accept, Acknowledge, AgentId, Call, CallKind, Decline, DurationInfo, Filters, Kill, KillPolicy,
    OfferId, Operation, Reconcile, ReconcileTask, Roles, TaskId, TaskStatus,
};

impl SchedulerHandle {
    /// Uses offers. Whatever the operations leave unused is declined with
    /// `filters`.
    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        filters: Option<Filters>,
    ) -> Result<(), CallError> {
        let accept = Accept {
            offer_ids,
            operations,
            filters,
        };
        self.send("ACCEPT", CallKind::Accept(accept)).await
    }

    /// Returns offers; Mesos holds their resources back for `refuse` (its
    /// default is 5 s).
    pub async fn decline(
        &self,
        offer_ids: Vec<OfferId>,
        refuse: Option<Duration>,
    ) -> Result<(), CallError> {
        let filters = refuse.map(|d| Filters {
            refuse_seconds: Some(d.as_secs_f64()),
        });
        let decline = Decline { offer_ids, filters };
        self.send("DECLINE", CallKind::Decline(decline)).await
    }

    /// Kills a task; `grace_period` overrides the task's kill policy (time
    /// between SIGTERM and SIGKILL).
    pub async fn kill(
        &self,
        task_id: TaskId,
        agent_id: Option<AgentId>,
        grace_period: Option<Duration>,
    ) -> Result<(), CallError> {
        let kill_policy = grace_period.map(|d| KillPolicy {
            grace_period: Some(DurationInfo::from_duration(d)),
        });
        let kill = Kill {
            task_id,
            agent_id,
            kill_policy,
        };
        self.send("KILL", CallKind::Kill(kill)).await
    }

    /// Acknowledges a reliable update. Updates without a uuid (answers to
    /// reconciliation) give `NothingToAcknowledge`: check
    /// `status.needs_acknowledgement()` first.
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), CallError> {
        let uuid = status.uuid.clone().ok_or(CallError::NothingToAcknowledge)?;
        let agent_id = status.agent_id.clone().ok_or(CallError::MissingAgentId)?;
        let acknowledge = Acknowledge {
            agent_id,
            task_id: status.task_id.clone(),
            uuid,
        };
        self.send("ACKNOWLEDGE", CallKind::Acknowledge(acknowledge))
            .await
    }

    /// Asks for the latest state of `tasks`; an empty list asks for every
    /// task Mesos knows of this framework (implicit reconciliation).
    pub async fn reconcile(&self, tasks: Vec<ReconcileTask>) -> Result<(), CallError> {
        self.send("RECONCILE", CallKind::Reconcile(Reconcile { tasks }))
            .await
    }

    /// Stops offers for `roles` (all roles if empty).
    pub async fn suppress(&self, roles: Vec<String>) -> Result<(), CallError> {
        self.send("SUPPRESS", CallKind::Suppress(Roles { roles }))
            .await
    }

    /// Resumes offers for `roles` (all if empty) and clears decline filters.
    pub async fn revive(&self, roles: Vec<String>) -> Result<(), CallError> {
        self.send("REVIVE", CallKind::Revive(Roles { roles })).await
    }

    /// Removes the framework: Mesos kills all its tasks. On success the
    /// driver stops instead of resubscribing.
    pub async fn teardown(&self) -> Result<(), CallError> {
        self.begin_teardown();
        let result = self.send("TEARDOWN", CallKind::Teardown).await;
        match &result {
            Ok(()) => self.shared.stop.cancel(),
            Err(_) => self.abort_teardown(),
        }
        result
    }

    async fn send(&self, name: &'static str, kind: CallKind) -> Result<(), CallError> {
        if !self.shared.may_act() {
            return Err(CallError::Gated { call: name });
        }
        let session = self.shared.session().ok_or(CallError::NotSubscribed)?;
        let call = Call {
            framework_id: Some(session.framework_id),
            kind,
        };
        let body = serde_json::to_vec(&call)?;
        let url = session.endpoint;
        let response = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(STREAM_ID_HEADER, session.stream_id)
            .body(body)
            .send()
            .await
            .map_err(|source| CallError::Http {
                call: name,
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::OK {
            debug!(call = name, "call accepted");
            return Ok(());
        }
        // Mesos explains rejections in a short plain-text body.
        let message = response.text().await.unwrap_or_default();
        warn!(call = name, %status, reason = %message, "call rejected");
        Err(CallError::Rejected {
            call: name,
            url,
            status,
            message,
        })
    }
}
