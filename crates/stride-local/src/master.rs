//! The master's state and the framework lifecycle: SUBSCRIBE (new and
//! failover), stream ids, disconnection, `failover_timeout`, TEARDOWN,
//! heartbeats, and the periodic timer that drives retries and offers.
//!
//! All state sits behind one mutex and every operation is short and
//! synchronous; events go out through unbounded per-subscription channels,
//! so nothing waits on a slow client while holding the lock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use stride_mesos::recordio::encode_record;
use stride_mesos::types::{
    Address, ErrorEvent, Event, FrameworkCapabilityType, FrameworkId, FrameworkInfo,
    MasterCapability, MasterInfo, Subscribe, Subscribed, TaskId,
};

use super::agent::Agent;
use super::docker::Engine;
use super::offers::{DeclineFilter, OutstandingOffer};
use super::process::Spawner;
use super::tasks::Task;

/// What every subscriber is told about us; mirrors a real 1.11 master.
pub(crate) const MESOS_VERSION: &str = "1.11.0";
/// Finished tasks kept per framework for `/master/state`, as Mesos'
/// `--max_completed_tasks_per_framework` default.
const MAX_COMPLETED_TASKS: usize = 1000;
/// Process launches in flight at once; enough to overlap the disk waits
/// of sandbox creation on a small machine.
const CONCURRENT_SPAWNS: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) update_retry: Duration,
    pub(crate) default_kill_grace: Duration,
    pub(crate) offer_timeout: Option<Duration>,
    pub(crate) work_dir: PathBuf,
    /// Framework authentication required (`--credentials`).
    pub(crate) credentials: Option<crate::credentials::FrameworkCredentials>,
}

#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) hostname: String,
    pub(crate) address: SocketAddr,
    pub(crate) start_time: f64,
}

/// Why a call was refused; the HTTP layer maps these to status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallRejection {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
}

pub(crate) struct Master {
    state: Mutex<MasterState>,
    pub(crate) identity: Identity,
    pub(crate) settings: Settings,
    /// Every task supervisor, so shutdown can wait for all children.
    pub(crate) supervisors: TaskTracker,
    pub(crate) spawner: Spawner,
    /// Where DOCKER containers run.
    pub(crate) docker: Arc<Engine>,
}

pub(crate) struct MasterState {
    pub(crate) agents: Vec<Agent>,
    pub(crate) frameworks: HashMap<FrameworkId, Framework>,
    pub(crate) offers: HashMap<String, OutstandingOffer>,
    next_framework: u64,
    pub(crate) next_offer: u64,
    /// Rotates which framework is offered an agent first.
    pub(crate) allocation_turn: usize,
}

struct Connection {
    stream_id: String,
    events: mpsc::UnboundedSender<Bytes>,
}

pub(crate) struct Framework {
    pub(crate) id: FrameworkId,
    pub(crate) info: FrameworkInfo,
    connection: Option<Connection>,
    disconnected_at: Option<Instant>,
    next_heartbeat: Instant,
    pub(crate) registered_time: f64,
    pub(crate) unregistered_time: f64,
    pub(crate) suppressed: bool,
    pub(crate) filters: Vec<DeclineFilter>,
    pub(crate) tasks: HashMap<TaskId, Task>,
    pub(crate) completed_tasks: VecDeque<Task>,
    /// Torn down or failed over too late; kept to refuse resubscription.
    pub(crate) removed: bool,
}

impl Framework {
    fn new(id: &FrameworkId, info: FrameworkInfo) -> Self {
        Self {
            id: id.clone(),
            info,
            connection: None,
            disconnected_at: None,
            next_heartbeat: Instant::now(),
            registered_time: now_seconds(),
            unregistered_time: 0.0,
            suppressed: false,
            filters: Vec::new(),
            tasks: HashMap::new(),
            completed_tasks: VecDeque::new(),
            removed: false,
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    pub(crate) fn role(&self) -> &str {
        self.info
            .roles
            .first()
            .or(self.info.role.as_ref())
            .map_or("*", String::as_str)
    }

    pub(crate) fn has_capability(&self, capability: &FrameworkCapabilityType) -> bool {
        self.info.capabilities.iter().any(|c| c.kind == *capability)
    }

    /// Sends an event if a scheduler is connected; events for a
    /// disconnected framework are dropped, as Mesos does.
    pub(crate) fn send(&self, event: &Event) {
        if let Some(connection) = &self.connection {
            let _ = connection.events.send(encode(event));
        }
    }

    pub(crate) fn complete_task(&mut self, task_id: &TaskId) {
        if let Some(task) = self.tasks.remove(task_id) {
            if self.completed_tasks.len() == MAX_COMPLETED_TASKS {
                self.completed_tasks.pop_front();
            }
            self.completed_tasks.push_back(task);
        }
    }
}

pub(crate) fn encode(event: &Event) -> Bytes {
    // Serializing these plain structs cannot fail.
    let json = serde_json::to_vec(event).unwrap_or_default();
    Bytes::from(encode_record(&json))
}

pub(crate) fn now_seconds() -> f64 {
    stride_runtime::clock::now_micros() as f64 / 1e6
}

/// A live SUBSCRIBE response: its stream id and the encoded events.
pub(crate) struct Subscription {
    pub(crate) stream_id: String,
    pub(crate) events: mpsc::UnboundedReceiver<Bytes>,
    pub(crate) guard: DisconnectGuard,
}

/// Dropped with the response body, i.e. when the scheduler's connection
/// closes; marks the framework disconnected if this is still its stream.
pub(crate) struct DisconnectGuard {
    master: Weak<Master>,
    framework_id: FrameworkId,
    stream_id: String,
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        if let Some(master) = self.master.upgrade() {
            master.disconnected(&self.framework_id, &self.stream_id);
        }
    }
}

impl MasterState {
    /// A framework known only from the tasks an agent recovered: it stays,
    /// disconnected and without a failover timeout, until its scheduler
    /// subscribes with its id (as a Mesos master keeps recovered frameworks).
    pub(crate) fn recovered_framework(&mut self, id: &FrameworkId) {
        let info = FrameworkInfo {
            user: String::new(),
            name: String::new(),
            id: Some(id.clone()),
            failover_timeout: None,
            checkpoint: Some(true),
            role: None,
            roles: Vec::new(),
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Vec::new(),
            labels: None,
        };
        self.frameworks
            .entry(id.clone())
            .or_insert_with(|| Framework::new(id, info));
    }
}

impl Master {
    pub(crate) fn new(
        identity: Identity,
        settings: Settings,
        agents: Vec<Agent>,
        docker: Engine,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(MasterState {
                agents,
                frameworks: HashMap::new(),
                offers: HashMap::new(),
                next_framework: 0,
                next_offer: 0,
                allocation_turn: 0,
            }),
            identity,
            settings,
            supervisors: TaskTracker::new(),
            spawner: Spawner::new(CONCURRENT_SPAWNS),
            docker: Arc::new(docker),
        })
    }

    /// The lock is never held across an await, and a panic while holding it
    /// leaves consistent-enough state, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, MasterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn master_info(&self) -> MasterInfo {
        let address = self.identity.address;
        let ip = match address.ip() {
            std::net::IpAddr::V4(ip) => u32::from_le_bytes(ip.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        MasterInfo {
            id: self.identity.id.clone(),
            ip,
            port: u32::from(address.port()),
            pid: Some(format!("master@{address}")),
            hostname: Some(self.identity.hostname.clone()),
            version: Some(MESOS_VERSION.to_string()),
            address: Some(Address {
                hostname: Some(self.identity.hostname.clone()),
                ip: Some(address.ip().to_string()),
                port: u32::from(address.port()),
            }),
            capabilities: ["AGENT_UPDATE", "AGENT_DRAINING"]
                .into_iter()
                .map(|kind| MasterCapability {
                    kind: Some(kind.to_string()),
                })
                .collect(),
        }
    }

    /// SUBSCRIBE: registers a new framework, or fails over an existing one
    /// (same id: new stream id, the old stream gets ERROR and closes, tasks
    /// and unacknowledged updates carry over).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        call_framework_id: Option<FrameworkId>,
        subscribe: Subscribe,
    ) -> Result<Subscription, CallRejection> {
        let mut info = subscribe.framework_info;
        if let Some(id) = &info.id
            && call_framework_id.as_ref() != Some(id)
        {
            return Err(CallRejection::BadRequest(
                "Failed to validate scheduler::Call: 'framework_id' differs from \
                 'subscribe.framework_info.id'"
                    .to_string(),
            ));
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let stream_id = uuid::Uuid::new_v4().to_string();
        let now = Instant::now();
        let mut state = self.lock();
        let state = &mut *state;
        let id = match info.id.clone() {
            Some(id) => id,
            None => {
                let id =
                    FrameworkId::new(format!("{}-{:04}", self.identity.id, state.next_framework));
                state.next_framework += 1;
                id
            }
        };
        info.id = Some(id.clone());
        let guard = DisconnectGuard {
            master: Arc::downgrade(self),
            framework_id: id.clone(),
            stream_id: stream_id.clone(),
        };
        if state.frameworks.get(&id).is_some_and(|f| f.removed) {
            let error = Event::Error(ErrorEvent {
                message: "Framework has been removed".to_string(),
            });
            let _ = sender.send(encode(&error));
            drop(sender);
            return Ok(Subscription {
                stream_id,
                events: receiver,
                guard,
            });
        }
        let framework = state
            .frameworks
            .entry(id.clone())
            .or_insert_with(|| Framework::new(&id, info.clone()));
        if let Some(old) = framework.connection.take() {
            tracing::info!(framework_id = %id, "framework failed over to a new subscription");
            let error = Event::Error(ErrorEvent {
                message: "Framework failed over".to_string(),
            });
            let _ = old.events.send(encode(&error));
        }
        framework.info = info;
        framework.suppressed = !subscribe.suppressed_roles.is_empty();
        framework.disconnected_at = None;
        framework.unregistered_time = 0.0;
        framework.connection = Some(Connection {
            stream_id: stream_id.clone(),
            events: sender,
        });
        framework.send(&Event::Subscribed(Subscribed {
            framework_id: id.clone(),
            heartbeat_interval_seconds: Some(self.settings.heartbeat_interval.as_secs_f64()),
            master_info: Some(self.master_info()),
        }));
        framework.send(&Event::Heartbeat);
        framework.next_heartbeat = now + self.settings.heartbeat_interval;
        // The new scheduler gets fresh offers and every pending update.
        state.rescind_offers_of(&id, false);
        if let Some(framework) = state.frameworks.get_mut(&id) {
            framework.resend_all_pending(self.settings.update_retry);
        }
        state.allocate(self, now);
        tracing::info!(framework_id = %id, %stream_id, "framework subscribed");
        Ok(Subscription {
            stream_id,
            events: receiver,
            guard,
        })
    }

    /// Checks that a non-SUBSCRIBE call comes from the framework's current
    /// subscription, with a real master's wording and order of checks.
    pub(crate) fn authorize(
        &self,
        framework_id: &FrameworkId,
        stream_id: Option<&str>,
        principal: Option<&str>,
    ) -> Result<(), CallRejection> {
        let state = self.lock();
        let framework = state
            .frameworks
            .get(framework_id)
            .filter(|f| !f.removed)
            .ok_or_else(|| CallRejection::BadRequest("Framework cannot be found".to_string()))?;
        if let Some(principal) = principal {
            let framework_principal = framework.info.principal.as_deref().unwrap_or_default();
            if principal != framework_principal {
                return Err(CallRejection::BadRequest(crate::http::principal_mismatch(
                    principal,
                    framework_principal,
                )));
            }
        }
        let Some(stream_id) = stream_id else {
            return Err(CallRejection::BadRequest(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".to_string(),
            ));
        };
        let Some(connection) = &framework.connection else {
            return Err(CallRejection::Forbidden(
                "Framework is not subscribed".to_string(),
            ));
        };
        if connection.stream_id != stream_id {
            return Err(CallRejection::BadRequest(format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream ID \
                 currently associated with framework ID {framework_id}"
            )));
        }
        Ok(())
    }

    fn disconnected(&self, framework_id: &FrameworkId, stream_id: &str) {
        let mut state = self.lock();
        let Some(framework) = state.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework
            .connection
            .as_ref()
            .is_none_or(|c| c.stream_id != stream_id)
        {
            return;
        }
        tracing::info!(%framework_id, "framework disconnected");
        framework.connection = None;
        framework.disconnected_at = Some(Instant::now());
        framework.unregistered_time = now_seconds();
        state.rescind_offers_of(framework_id, false);
        // failover_timeout 0 (the default) means "kill my tasks at once".
        self.expire_failover_timeouts(&mut state, Instant::now());
    }

    /// TEARDOWN: the framework goes away and its tasks are killed. False
    /// if there is no such active framework.
    pub(crate) fn teardown(&self, framework_id: &FrameworkId) -> bool {
        let mut state = self.lock();
        let known = state
            .frameworks
            .get(framework_id)
            .is_some_and(|f| !f.removed);
        if known {
            self.remove_framework(&mut state, framework_id);
        }
        known
    }

    fn remove_framework(&self, state: &mut MasterState, framework_id: &FrameworkId) {
        state.rescind_offers_of(framework_id, false);
        let Some(framework) = state.frameworks.get_mut(framework_id) else {
            return;
        };
        tracing::info!(%framework_id, tasks = framework.tasks.len(), "removing framework");
        framework.removed = true;
        framework.connection = None;
        framework.unregistered_time = now_seconds();
        let task_ids: Vec<TaskId> = framework.tasks.keys().cloned().collect();
        for task_id in task_ids {
            state.kill_for_removal(framework_id, &task_id, self.settings.default_kill_grace);
        }
    }

    fn expire_failover_timeouts(&self, state: &mut MasterState, now: Instant) {
        let expired: Vec<FrameworkId> = state
            .frameworks
            .values()
            .filter(|f| !f.removed)
            .filter(|f| {
                f.disconnected_at.is_some_and(|since| {
                    let timeout = f.info.failover_timeout.unwrap_or(0.0);
                    let timeout = Duration::try_from_secs_f64(timeout).unwrap_or(Duration::MAX);
                    now.saturating_duration_since(since) >= timeout
                })
            })
            .map(|f| f.id.clone())
            .collect();
        for framework_id in expired {
            tracing::info!(%framework_id, "failover timeout expired");
            self.remove_framework(state, &framework_id);
        }
    }

    /// One timer step: heartbeats, update resends, failover timeouts, offer
    /// timeouts and allocation.
    pub(crate) fn tick(self: &Arc<Self>) {
        let now = Instant::now();
        let mut state = self.lock();
        for framework in state.frameworks.values_mut() {
            if framework.is_connected() && now >= framework.next_heartbeat {
                framework.send(&Event::Heartbeat);
                framework.next_heartbeat = now + self.settings.heartbeat_interval;
            }
            if framework.is_connected() {
                framework.resend_due_updates(now);
            }
        }
        self.expire_failover_timeouts(&mut state, now);
        if let Some(timeout) = self.settings.offer_timeout {
            state.rescind_stale_offers(now, timeout);
        }
        state.allocate(self, now);
    }

    /// Closes every subscription and kills every task at once; the caller
    /// then waits on `supervisors`.
    pub(crate) fn shutdown(&self) {
        let mut state = self.lock();
        let ids: Vec<FrameworkId> = state.frameworks.keys().cloned().collect();
        for framework_id in ids {
            if let Some(framework) = state.frameworks.get_mut(&framework_id) {
                framework.connection = None;
                framework.removed = true;
                let task_ids: Vec<TaskId> = framework.tasks.keys().cloned().collect();
                for task_id in task_ids {
                    state.kill_for_removal(&framework_id, &task_id, Duration::ZERO);
                }
            }
        }
    }

    /// Process groups still alive; for last-resort cleanup on drop.
    pub(crate) fn live_process_groups(&self) -> Vec<u32> {
        let state = self.lock();
        state
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values())
            .filter(|task| !task.docker && !super::tasks::is_terminal(&task.state))
            .filter_map(|task| task.pid)
            .collect()
    }
}
