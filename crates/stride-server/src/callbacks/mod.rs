//! Reliable HTTP callbacks (`/v2/eventSubscriptions`): each subscribed URL
//! gets every event from its subscription on, as Marathon's event JSON,
//! POSTed one at a time in seq order, at least once.
//!
//! Subscriptions are events in the log (`CallbackSubscribed`,
//! `CallbackUnsubscribed`) decided by the committer like any other write.
//! A part of the server's (`runtime::Supervisor`) follows those events and
//! runs one delivery task per URL, so a dead or slow endpoint only ever
//! delays itself; a delivery task that panics ends the part. Each task reads through
//! its own `Feed` from its durable cursor (the `cursors` tree), retries a
//! failed POST with capped exponential backoff, and moves the cursor only
//! after a 2xx.
//!
//! No subscriber can drive the log: a URL leading back to this server is
//! refused (`own_address`), and each endpoint gets at most `max_rate` POSTs
//! a second, so even a loop through another host grows the log slowly.

mod deliver;
mod own_address;

pub use deliver::SEQ_HEADER;
pub use own_address::reaching_listener;

use crate::published::Projection;
use crate::stream::{Feed, FeedError, Filter, Item, Start};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stride_log::event::json::timestamp;
use stride_log::event::{Event, Kind, Seq};
use stride_log::store::EventLog;
use stride_runtime::{Part, Supervisor};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Longest wait between attempts to deliver to a failing endpoint.
    pub max_backoff: Duration,
    /// How long one POST may take.
    pub timeout: Duration,
    /// POSTs per second to one endpoint at most.
    pub max_rate: u32,
    /// `--callback-ca-file`: trusted for https:// callbacks besides the
    /// public roots.
    pub ca: Option<stride_runtime::tls::CaFile>,
}

/// What `GET /v2/eventSubscriptions` shows of each delivery task.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub callback_url: String,
    /// The seq of the subscription event; delivery started there.
    pub subscribed_at: Seq,
    /// The last seq delivered (or skipped: not every event has a Marathon
    /// shape).
    pub cursor: Seq,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Events delivered (POSTs answered 2xx) since this server started.
    pub delivered: u64,
    /// Failed attempts since this server started.
    pub failed_attempts: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// The delivery tasks' status, shared with the API.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<BTreeMap<String, Status>>>);

impl Registry {
    pub fn statuses(&self) -> Vec<Status> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Status>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, url: &str, change: impl FnOnce(&mut Status)) {
        if let Some(status) = self.lock().get_mut(url) {
            change(status);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallbacksError {
    #[error("event subscriptions cannot follow the log")]
    Feed(#[source] FeedError),
    #[error("event subscriptions have no HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("a delivery task failed")]
    Delivery(#[source] tokio::task::JoinError),
}

/// Starts delivering as a part of `supervisor`'s, for a server listening
/// on `listen`.
pub fn start(
    log: Arc<EventLog>,
    projection: Arc<Projection>,
    registry: Registry,
    config: CallbackConfig,
    listen: SocketAddr,
    supervisor: &Supervisor,
) -> Part {
    supervisor.spawn("callbacks", move |stop| {
        deliver_all(log, projection, registry, config, listen, stop)
    })
}

async fn deliver_all(
    log: Arc<EventLog>,
    projection: Arc<Projection>,
    registry: Registry,
    config: CallbackConfig,
    listen: SocketAddr,
    stop: CancellationToken,
) -> Result<(), CallbacksError> {
    let mut filter = Filter::default();
    filter.types.insert(Kind::CallbackSubscribed);
    filter.types.insert(Kind::CallbackUnsubscribed);
    // Follow first, then read the state: a change in between is seen twice,
    // and both handlings below are idempotent.
    let mut feed = Feed::open(log.clone(), projection.clone(), Start::Now, filter)
        .map_err(CallbacksError::Feed)?;
    let mut http = reqwest::Client::builder().timeout(config.timeout);
    if let Some(ca) = &config.ca {
        http = ca.trust(http);
    }
    let http = http.build().map_err(CallbacksError::Client)?;
    let delivery = deliver::Delivery {
        log: log.clone(),
        projection: projection.clone(),
        registry: registry.clone(),
        config,
        http,
        listen,
    };
    let mut deliveries = JoinSet::new();
    let mut tasks = HashMap::new();
    let initial = projection.read().callbacks.clone();
    for (url, since) in initial {
        let task = delivery.spawn(&mut deliveries, url.clone(), since);
        tasks.insert(url, task);
    }
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            Some(ended) = deliveries.join_next() => match ended {
                Err(error) if error.is_panic() => return Err(CallbacksError::Delivery(error)),
                // Done (not delivering to itself) or unsubscribed.
                _ => continue,
            },
            next = feed.next() => next,
        };
        let envelope = match next {
            Ok(Item::Event(envelope)) => envelope,
            Ok(Item::CaughtUp(_)) => continue,
            Err(FeedError::Closed) => return Ok(()),
            Err(error) => return Err(CallbacksError::Feed(error)),
        };
        match &envelope.event {
            Event::CallbackSubscribed(e) if !tasks.contains_key(&e.callback_url) => {
                let url = e.callback_url.clone();
                let task = delivery.spawn(&mut deliveries, url.clone(), envelope.seq);
                tasks.insert(url, task);
            }
            Event::CallbackUnsubscribed(e) => {
                if let Some(task) = tasks.remove(&e.callback_url) {
                    task.abort();
                }
                registry.lock().remove(&e.callback_url);
                if let Err(error) = log.remove_callback_cursor(&e.callback_url) {
                    tracing::warn!(%error, "cannot drop a callback cursor");
                }
            }
            _ => {}
        }
    }
}

fn now_rfc3339() -> String {
    timestamp(stride_runtime::clock::now_micros())
}
