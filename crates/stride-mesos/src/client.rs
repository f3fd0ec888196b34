//! The scheduler driver's public face: `Scheduler::spawn` starts the
//! subscription task and returns a handle for calls plus a channel of
//! events. It knows nothing of Stride's event log; the caller decides what
//! to persist before acknowledging.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{CallGate, ConfigError, SchedulerConfig};
use super::subscription::{Driver, SubscriptionError};
use super::types::{Failure, FrameworkId, Message, Offer, OfferId, OperationStatus, TaskStatus};

pub(crate) const SCHEDULER_PATH: &str = "api/v1/scheduler";
pub(crate) const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// What the driver reports, in stream order.
#[derive(Debug)]
pub enum SchedulerEvent {
    /// Subscribed (or resubscribed). Persist `framework_id` before
    /// launching anything: losing it orphans every task.
    Subscribed {
        framework_id: FrameworkId,
        heartbeat_interval: Duration,
        /// The leading master's scheduler endpoint.
        master: Url,
    },
    Offers(Vec<Offer>),
    /// The offer is void; accepting or declining it now fails.
    Rescinded(OfferId),
    /// A task status. Persist it, then `acknowledge` it if
    /// `status.needs_acknowledgement()`.
    Update(TaskStatus),
    OperationStatus(OperationStatus),
    /// Opaque executor data (unreliable).
    Message(Message),
    /// An agent or executor is gone.
    Failure(Failure),
    /// Mesos sent ERROR (e.g. the framework was removed, or another
    /// scheduler took it over). The driver has stopped: the last event.
    Error(String),
    /// Not subscribed right now; the driver retries with backoff.
    Disconnected {
        reason: SubscriptionError,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("not subscribed to a Mesos master")]
    NotSubscribed,
    #[error("not the leader: {call} not sent")]
    Gated { call: &'static str },
    #[error("this update has no uuid and must not be acknowledged")]
    NothingToAcknowledge,
    #[error("this update has no agent_id, so it cannot be acknowledged")]
    MissingAgentId,
    #[error("could not encode the call: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("{call} to {url} failed: {source}")]
    Http {
        call: &'static str,
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    /// 400 (bad call or stale stream id), 403 (not subscribed), 307/503
    /// (leadership changed), ...
    #[error("{call} rejected by {url} with {status}: {message}")]
    Rejected {
        call: &'static str,
        url: Url,
        status: StatusCode,
        message: String,
    },
}

/// The live subscription, shared by every call.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub endpoint: Url,
    pub stream_id: String,
    pub framework_id: FrameworkId,
}

/// State shared between the handle and the driver task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub session: RwLock<Option<Session>>,
    pub gate: Option<CallGate>,
    /// Stops the driver (and closes the subscription).
    pub stop: CancellationToken,
    /// Set while TEARDOWN is sent, so the connection Mesos then closes is
    /// not taken for a failure to recover from.
    pub tearing_down: AtomicBool,
    /// Asks the driver to drop the connection and resubscribe.
    pub reconnect: Notify,
}

impl Shared {
    pub fn session(&self) -> Option<Session> {
        self.session
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn set_session(&self, session: Option<Session>) {
        match self.session.write() {
            Ok(mut slot) => *slot = session,
            Err(poisoned) => *poisoned.into_inner() = session,
        }
    }

    /// False once the gate (if any) has closed.
    pub fn may_act(&self) -> bool {
        self.gate.as_ref().is_none_or(CallGate::is_open)
    }

    pub fn is_tearing_down(&self) -> bool {
        self.tearing_down.load(Ordering::SeqCst)
    }
}

pub struct Scheduler;

impl Scheduler {
    /// Validates the config and starts subscribing in the background.
    /// Must be called inside a Tokio runtime.
    pub fn spawn(
        config: SchedulerConfig,
    ) -> Result<(SchedulerHandle, mpsc::Receiver<SchedulerEvent>), ConfigError> {
        config.validate()?;
        let (events, receiver) = mpsc::channel(config.event_buffer);
        let http = config
            .http_client()
            .timeout(config.call_timeout)
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let shared = Arc::new(Shared {
            session: RwLock::new(None),
            gate: config.gate.clone(),
            stop: CancellationToken::new(),
            tearing_down: AtomicBool::new(false),
            reconnect: Notify::new(),
        });
        let driver = Driver::new(config, Arc::clone(&shared), events)
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let task = tokio::spawn(driver.run());
        let handle = SchedulerHandle {
            http,
            shared,
            task: Arc::new(Mutex::new(Some(task))),
        };
        Ok((handle, receiver))
    }
}

/// Sends calls on the current subscription. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    pub(crate) http: reqwest::Client,
    pub(crate) shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl SchedulerHandle {
    /// The framework id of the live subscription, if any.
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.shared.session().map(|s| s.framework_id)
    }

    /// Drops the connection and resubscribes with the same framework id
    /// (tasks keep running). For operators and tests. A request made while
    /// not subscribed applies to the next subscription.
    pub fn reconnect(&self) {
        self.shared.reconnect.notify_one();
    }

    /// Stops the driver without tearing down the framework: Mesos keeps the
    /// tasks for `failover_timeout`, as if Stride had crashed.
    pub async fn shutdown(&self) {
        self.shared.stop.cancel();
        let task = self.task.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = task {
            // A panicking driver has already logged; nothing more to do.
            let _ = task.await;
        }
    }

    pub(crate) fn begin_teardown(&self) {
        self.shared.tearing_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn abort_teardown(&self) {
        self.shared.tearing_down.store(false, Ordering::SeqCst);
    }
}
