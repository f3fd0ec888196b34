//! Carries out plans: records their intents first (so after a crash Stride
//! knows every task that may exist), then ACCEPTs, DECLINEs, KILLs and
//! asks Mesos about silent launches; SUPPRESSes offers when nothing waits
//! and REVIVEs them when something does.

use super::Links;
use super::plan::{self, Agents, Drain, Plan, PlanInput, RejectReason};
use super::queue::Queue;
use super::task_info::task_info;
use crate::committer::{Committer, SubmitError};
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::published::Projection;
use crate::stream::Sidecars;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use stride_core::command::Command;
use stride_log::event::{Actor, Event, TaskId};
use stride_mesos::SchedulerHandle;
use stride_mesos::types::{
    AgentId, Filters, Offer, OfferId, Operation, ReconcileTask, TaskId as MesosTaskId, TaskInfo,
};
use stride_runtime::Clock;
use tokio::time::Instant;

/// Unused offers come back this soon while something waits for room...
const REFUSE_WHILE_WAITING: Duration = Duration::from_secs(2);
/// ...and this late when nothing does (offers are suppressed then anyway).
const REFUSE_WHEN_IDLE: Duration = Duration::from_secs(120);
/// A kill Mesos has not confirmed is sent again after this long.
const KILL_RESEND: Duration = Duration::from_secs(10);
/// A silent launch is asked about at most this often.
const STALE_ASK: Duration = Duration::from_secs(30);

pub struct Executor {
    mesos: SchedulerHandle,
    committer: Committer,
    projection: Arc<Projection>,
    queue: Arc<Queue>,
    offers: Vec<Offer>,
    agents: Agents,
    /// Whether offers are suppressed; unknown until the first plan.
    suppressed: Option<bool>,
    kills_sent: HashMap<TaskId, Instant>,
    stale_asked: HashMap<TaskId, Instant>,
    sidecars: Sidecars,
    readiness: Readiness,
    drain_timeout: Duration,
    metrics: Metrics,
    clock: Clock,
    /// When the last plan said it would change by itself.
    pub wake_at: Option<u64>,
}

impl Executor {
    pub fn new(
        mesos: SchedulerHandle,
        committer: Committer,
        projection: Arc<Projection>,
        links: Links,
    ) -> Self {
        let Links {
            queue,
            sidecars,
            readiness,
            drain_timeout,
            metrics,
            clock,
        } = links;
        Executor {
            mesos,
            committer,
            projection,
            queue,
            offers: Vec::new(),
            agents: Agents::default(),
            suppressed: None,
            kills_sent: HashMap::new(),
            stale_asked: HashMap::new(),
            sidecars,
            readiness,
            drain_timeout,
            metrics,
            clock,
            wake_at: None,
        }
    }

    pub fn offered(&mut self, offers: Vec<Offer>) {
        self.metrics.offers_received(offers.len());
        for offer in &offers {
            self.agents.learn(offer);
        }
        self.offers.extend(offers);
    }

    pub fn rescinded(&mut self, offer: &OfferId) {
        self.offers.retain(|o| &o.id != offer);
    }

    /// A new subscription: offers in hand are void and Mesos forgot our
    /// suppression.
    pub fn resubscribed(&mut self) {
        self.offers.clear();
        self.suppressed = None;
        self.kills_sent.clear();
    }

    /// Plans against the current state and carries the plan out.
    pub async fn activate(&mut self) -> Result<(), SubmitError> {
        let offers = std::mem::take(&mut self.offers);
        let (plan, infos) = {
            let state = self.projection.read();
            let started = self.metrics.start();
            let plan = plan::plan(&PlanInput {
                state: &state,
                offers: &offers,
                agents: &self.agents,
                now: self.clock.now_micros(),
                passed_readiness: &self.readiness.ready_tasks(),
                drain: Drain {
                    confirmed_upto: self.sidecars.confirmed_upto(),
                    timeout: u64::try_from(self.drain_timeout.as_micros()).unwrap_or(u64::MAX),
                },
            });
            self.metrics.planned(started);
            let infos: HashMap<TaskId, TaskInfo> = plan
                .launches
                .iter()
                .filter_map(|l| {
                    let app = state.apps.get(&l.intent.app)?;
                    Some((l.intent.task.clone(), task_info(l, app)))
                })
                .collect();
            (plan, infos)
        };
        self.wake_at = plan.wake_at;
        let launched = self.record(&plan).await?;
        self.launch(&plan, infos, &launched).await;
        self.kill(&plan).await;
        self.ask_about_stale(&plan).await;
        self.set_suppression(plan.wants_offers()).await;
        self.queue.update(&plan, !offers.is_empty());
        Ok(())
    }

    /// Records the plan's intents; returns the launches `decide` kept.
    async fn record(&self, plan: &Plan) -> Result<HashSet<TaskId>, SubmitError> {
        let intents = plan.intents();
        if intents == Default::default() {
            return Ok(HashSet::new());
        }
        let command = Command::RecordPlan(intents);
        let outcome = self
            .committer
            .submit(Actor::Reconciler, None, command)
            .await?;
        Ok(outcome
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::TaskLaunchRequested(l) => Some(l.task.clone()),
                _ => None,
            })
            .collect())
    }

    async fn launch(
        &self,
        plan: &Plan,
        mut infos: HashMap<TaskId, TaskInfo>,
        launched: &HashSet<TaskId>,
    ) {
        let mut by_offer: BTreeMap<&OfferId, Vec<TaskInfo>> = BTreeMap::new();
        let mut declines = plan.declines.clone();
        for launch in &plan.launches {
            let tasks = by_offer.entry(&launch.offer).or_default();
            if launched.contains(&launch.intent.task) {
                tasks.extend(infos.remove(&launch.intent.task));
            }
        }
        let refuse = if plan.wants_offers() {
            REFUSE_WHILE_WAITING
        } else {
            REFUSE_WHEN_IDLE
        };
        for (reason, count) in &plan.unused_because {
            self.metrics
                .offers_declined(decline_reason(*reason), *count as usize);
        }
        for (offer, tasks) in by_offer {
            if tasks.is_empty() {
                // Every launch planned on it was dropped by `decide`: the
                // state changed since the plan.
                self.metrics.offers_declined("superseded", 1);
                declines.push(offer.clone());
                continue;
            }
            let count = tasks.len();
            let filters = Some(Filters {
                refuse_seconds: Some(refuse.as_secs_f64()),
            });
            let operations = vec![Operation::launch(tasks)];
            match self
                .mesos
                .accept(vec![offer.clone()], operations, filters)
                .await
            {
                Ok(()) => {
                    self.metrics.launches(true, count);
                    tracing::info!(%offer, count, "launched");
                }
                // Mesos answers a failed launch with TASK_DROPPED or LOST
                // updates, or reconciliation finds it never happened.
                Err(error) => {
                    self.metrics.launches(false, count);
                    tracing::warn!(%offer, %error, "ACCEPT failed");
                }
            }
        }
        if !declines.is_empty() {
            if let Err(error) = self.mesos.decline(declines, Some(refuse)).await {
                tracing::warn!(%error, "DECLINE failed");
            }
        }
    }

    async fn kill(&mut self, plan: &Plan) {
        let now = Instant::now();
        let wanted: HashSet<&TaskId> = plan.kills.iter().map(|k| &k.task).collect();
        self.kills_sent.retain(|task, _| wanted.contains(task));
        for kill in &plan.kills {
            let recent = self
                .kills_sent
                .get(&kill.task)
                .is_some_and(|at| now.duration_since(*at) < KILL_RESEND);
            if recent {
                continue;
            }
            self.kills_sent.insert(kill.task.clone(), now);
            let grace = kill.app.as_ref().and_then(|app| {
                let state = self.projection.read();
                Some(state.apps.get(app)?.definition.kill_grace_period())
            });
            let agent = kill.agent.as_ref().map(|a| AgentId::new(a.as_str()));
            let task = MesosTaskId::new(kill.task.as_str());
            tracing::info!(task = %kill.task, reason = %kill.reason, "killing");
            self.metrics.kill_sent();
            if let Err(error) = self.mesos.kill(task, agent, grace).await {
                tracing::warn!(task = %kill.task, %error, "KILL failed");
            }
        }
    }

    async fn ask_about_stale(&mut self, plan: &Plan) {
        let now = Instant::now();
        let stale: HashSet<&TaskId> = plan.stale.iter().map(|(t, _)| t).collect();
        self.stale_asked.retain(|task, _| stale.contains(task));
        let due: Vec<ReconcileTask> = plan
            .stale
            .iter()
            .filter(|(task, _)| {
                self.stale_asked
                    .get(task)
                    .is_none_or(|at| now.duration_since(*at) >= STALE_ASK)
            })
            .map(|(task, agent)| ReconcileTask {
                task_id: MesosTaskId::new(task.as_str()),
                agent_id: agent.as_ref().map(|a| AgentId::new(a.as_str())),
            })
            .collect();
        if due.is_empty() {
            return;
        }
        for task in &due {
            self.stale_asked
                .insert(TaskId(task.task_id.value.clone()), now);
        }
        if let Err(error) = self.mesos.reconcile(due).await {
            tracing::warn!(%error, "RECONCILE of silent launches failed");
        }
    }

    async fn set_suppression(&mut self, wants_offers: bool) {
        if self.suppressed == Some(!wants_offers) {
            return;
        }
        let result = if wants_offers {
            self.mesos.revive(Vec::new()).await
        } else {
            self.mesos.suppress(Vec::new()).await
        };
        match result {
            Ok(()) => self.suppressed = Some(!wants_offers),
            Err(error) => tracing::warn!(%error, wants_offers, "SUPPRESS/REVIVE failed"),
        }
    }
}

/// A declined offer's reason as a metric label.
fn decline_reason(reason: Option<RejectReason>) -> &'static str {
    match reason {
        None => "unneeded",
        Some(RejectReason::UnfulfilledConstraint) => "unfulfilled_constraint",
        Some(RejectReason::InsufficientCpus) => "insufficient_cpus",
        Some(RejectReason::InsufficientMemory) => "insufficient_memory",
        Some(RejectReason::InsufficientDisk) => "insufficient_disk",
        Some(RejectReason::InsufficientGpus) => "insufficient_gpus",
        Some(RejectReason::InsufficientPorts) => "insufficient_ports",
    }
}
