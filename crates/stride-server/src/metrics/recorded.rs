//! Values recorded as things happen: counters and histograms registered
//! once, at start.

use super::SnapshotObserved;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How a submitted command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Committed,
    /// A retry with a known idempotency key: nothing appended.
    Replayed,
    Rejected,
    /// No decision: the committer stopped, or could not do its part.
    Failed,
}

impl Ack {
    fn name(self) -> &'static str {
        match self {
            Ack::Committed => "committed",
            Ack::Replayed => "replayed",
            Ack::Rejected => "rejected",
            Ack::Failed => "failed",
        }
    }
}

/// A step of a command's way through the committer (`committer.rs`),
/// timed so that a slow acknowledgement can be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Submitted until the decide thread took it.
    Queued,
    /// Deciding and folding one batch (idempotency lookups included).
    Decide,
    /// Writing one batch to sled (not yet synced).
    Append,
    /// A written batch waiting for the sync thread (the fsync before it).
    Handoff,
    /// Publishing the state after a group commit.
    Publish,
    /// Sending a group commit's answers.
    Answer,
    /// An answer sent until its writer's task ran again (the API runtime).
    Wake,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Queued,
        Phase::Decide,
        Phase::Append,
        Phase::Handoff,
        Phase::Publish,
        Phase::Answer,
        Phase::Wake,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Decide => "decide",
            Phase::Append => "append",
            Phase::Handoff => "handoff",
            Phase::Publish => "publish",
            Phase::Answer => "answer",
            Phase::Wake => "wake",
        }
    }
}

/// Where the Mesos subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MesosState {
    /// `--no-mesos`.
    Disabled,
    Connecting,
    Subscribed,
    /// Lost; the driver is trying again.
    Disconnected,
    /// Mesos sent ERROR: the driver stopped.
    Failed,
}

const MESOS_STATES: [MesosState; 5] = [
    MesosState::Disabled,
    MesosState::Connecting,
    MesosState::Subscribed,
    MesosState::Disconnected,
    MesosState::Failed,
];

impl MesosState {
    fn name(self) -> &'static str {
        match self {
            MesosState::Disabled => "disabled",
            MesosState::Connecting => "connecting",
            MesosState::Subscribed => "subscribed",
            MesosState::Disconnected => "disconnected",
            MesosState::Failed => "failed",
        }
    }
}

type Labels<const N: usize> = [(&'static str, &'static str); N];
type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

pub(super) struct Recorded {
    pub registry: Registry,
    batch_events: Histogram,
    batch_commands: Histogram,
    fsync: Histogram,
    ack: Histograms<Labels<1>>,
    phases: Histograms<Labels<1>>,
    activations: Counter,
    plan: Histogram,
    offers_received: Counter,
    offers_declined: Family<Labels<1>, Counter>,
    launches: Family<Labels<1>, Counter>,
    kills: Counter,
    mesos_state: Family<Labels<1>, Gauge>,
    mesos_disconnects: Counter,
    mesos_reconnects: Counter,
    ever_subscribed: AtomicBool,
    health: Family<Labels<2>, Counter>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    /// The newest snapshot, as the committer last took or found one.
    snapshot: Mutex<Option<SnapshotObserved>>,
}

/// 100 µs to about 6.5 s, doubling: fsyncs, acknowledgements, plans and
/// requests all fall in this range on any disk worth running on.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// 10 µs to about 5 s, doubling: the committer's steps, most of which
/// take microseconds.
fn fine_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.00001, 2.0, 20))
}

/// 1 to 4096 (the committer's largest batch), doubling.
fn sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

impl Recorded {
    pub fn new() -> Recorded {
        let recorded = Recorded {
            registry: Registry::default(),
            batch_events: sizes(),
            batch_commands: sizes(),
            fsync: latency(),
            ack: Family::new_with_constructor(latency),
            phases: Family::new_with_constructor(fine_latency),
            activations: Counter::default(),
            plan: latency(),
            offers_received: Counter::default(),
            offers_declined: Family::default(),
            launches: Family::default(),
            kills: Counter::default(),
            mesos_state: Family::default(),
            mesos_disconnects: Counter::default(),
            mesos_reconnects: Counter::default(),
            ever_subscribed: AtomicBool::new(false),
            health: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            snapshot: Mutex::new(None),
        };
        recorded.mesos(MesosState::Connecting);
        recorded.register()
    }

    fn register(mut self) -> Recorded {
        let r = &mut self.registry;
        r.register(
            "stride_commit_batch_events",
            "Events made durable by one group commit (one fsync)",
            self.batch_events.clone(),
        );
        r.register(
            "stride_commit_batch_commands",
            "Commands answered by one group commit (one fsync)",
            self.batch_commands.clone(),
        );
        r.register_with_unit(
            "stride_fsync_duration",
            "Time to make a group commit durable (sled flush and fdatasync)",
            Unit::Seconds,
            self.fsync.clone(),
        );
        r.register_with_unit(
            "stride_commit_ack_duration",
            "Time from a command's submission to its answer, by result",
            Unit::Seconds,
            self.ack.clone(),
        );
        r.register_with_unit(
            "stride_commit_phase_duration",
            "Time a command or its batch spent in one step of the committer, by phase (fsync: stride_fsync_duration)",
            Unit::Seconds,
            self.phases.clone(),
        );
        r.register(
            "stride_reconciler_activations",
            "Reconciler activations (each plans over the whole state)",
            self.activations.clone(),
        );
        r.register_with_unit(
            "stride_reconciler_plan_duration",
            "Time to plan one reconciler activation",
            Unit::Seconds,
            self.plan.clone(),
        );
        r.register(
            "stride_offers_received",
            "Mesos offers received",
            self.offers_received.clone(),
        );
        r.register(
            "stride_offers_declined",
            "Mesos offers declined, by why no launch used them",
            self.offers_declined.clone(),
        );
        r.register(
            "stride_task_launches",
            "Tasks sent to Mesos in ACCEPT calls, by whether Mesos took the call",
            self.launches.clone(),
        );
        r.register(
            "stride_task_kills",
            "KILL calls sent to Mesos",
            self.kills.clone(),
        );
        r.register(
            "stride_mesos_subscription_state",
            "1 for the state the Mesos subscription is in, 0 for the others",
            self.mesos_state.clone(),
        );
        r.register(
            "stride_mesos_disconnects",
            "Mesos subscriptions lost (each is followed by a new attempt)",
            self.mesos_disconnects.clone(),
        );
        r.register(
            "stride_mesos_reconnects",
            "Mesos subscriptions made again after the first",
            self.mesos_reconnects.clone(),
        );
        r.register(
            "stride_health_checks",
            "Health probes Stride ran, by protocol and result",
            self.health.clone(),
        );
        r.register(
            "stride_http_requests",
            "HTTP requests answered, by method, route template and status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "stride_http_request_duration",
            "Time to answer an HTTP request (to its headers, for streams)",
            Unit::Seconds,
            self.request_seconds.clone(),
        );
        self
    }

    pub fn synced(&self, took: Duration, commands: usize, events: usize) {
        self.fsync.observe(took.as_secs_f64());
        self.batch_commands.observe(commands as f64);
        self.batch_events.observe(events as f64);
    }

    pub fn snapshot_taken(&self, seq: u64, recorded_at: u64) {
        let mut snapshot = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        *snapshot = Some(SnapshotObserved { seq, recorded_at });
    }

    pub fn snapshot(&self) -> Option<SnapshotObserved> {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn acknowledged(&self, took: Duration, ack: Ack) {
        self.ack
            .get_or_create(&[("result", ack.name())])
            .observe(took.as_secs_f64());
    }

    pub fn phase(&self, phase: Phase, took: Duration) {
        self.phases
            .get_or_create(&[("phase", phase.name())])
            .observe(took.as_secs_f64());
    }

    pub fn planned(&self, took: Duration) {
        self.activations.inc();
        self.plan.observe(took.as_secs_f64());
    }

    pub fn offers_received(&self, count: usize) {
        self.offers_received.inc_by(count as u64);
    }

    pub fn offers_declined(&self, reason: &'static str, count: usize) {
        self.offers_declined
            .get_or_create(&[("reason", reason)])
            .inc_by(count as u64);
    }

    pub fn launches(&self, accepted: bool, count: usize) {
        let result = if accepted { "accepted" } else { "failed" };
        self.launches
            .get_or_create(&[("result", result)])
            .inc_by(count as u64);
    }

    pub fn kill_sent(&self) {
        self.kills.inc();
    }

    pub fn mesos(&self, state: MesosState) {
        for each in MESOS_STATES {
            let value = i64::from(each == state);
            self.mesos_state
                .get_or_create(&[("state", each.name())])
                .set(value);
        }
        match state {
            MesosState::Subscribed if self.ever_subscribed.swap(true, Ordering::Relaxed) => {
                self.mesos_reconnects.inc();
            }
            MesosState::Disconnected => {
                self.mesos_disconnects.inc();
            }
            _ => {}
        }
    }

    pub fn health_probed(&self, protocol: &'static str, healthy: bool) {
        let result = if healthy { "healthy" } else { "unhealthy" };
        self.health
            .get_or_create(&[("protocol", protocol), ("result", result)])
            .inc();
    }

    pub fn http_request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}
