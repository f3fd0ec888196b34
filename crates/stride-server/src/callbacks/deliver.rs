//! One endpoint's delivery task: in seq order, one POST at a time, the
//! cursor moved only after a 2xx.

use super::{CallbackConfig, Registry, Status, now_rfc3339, own_address};
use crate::published::Projection;
use crate::stream::marathon::{PlanFormat, marathon_events};
use crate::stream::{Feed, FeedError, Filter, Item, Start};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stride_log::event::{Envelope, Seq};
use stride_log::store::EventLog;
use stride_runtime::Backoff;
use stride_runtime::error::chain;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Interval, MissedTickBehavior};

/// First wait after a failure; doubles up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Header carrying the event's seq, so a receiver can drop redeliveries.
pub const SEQ_HEADER: &str = "X-Stride-Seq";

#[derive(Clone)]
pub(super) struct Delivery {
    pub log: Arc<EventLog>,
    pub projection: Arc<Projection>,
    pub registry: Registry,
    pub config: CallbackConfig,
    pub http: reqwest::Client,
    /// This server's listen address: callbacks never go there.
    pub listen: SocketAddr,
}

impl Delivery {
    /// Starts delivering to `url` as one of `deliveries`.
    pub fn spawn(
        &self,
        deliveries: &mut JoinSet<()>,
        url: String,
        subscribed_at: Seq,
    ) -> AbortHandle {
        // A cursor left by an earlier subscription of the same URL is older
        // than this subscription; start at whichever is later.
        let cursor = match self.log.callback_cursor(&url) {
            Ok(cursor) => cursor.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, url, "cannot read a callback cursor; starting at the subscription");
                Seq(0)
            }
        };
        let cursor = cursor.max(Seq(subscribed_at.0.saturating_sub(1)));
        self.registry.lock().insert(
            url.clone(),
            Status {
                callback_url: url.clone(),
                subscribed_at,
                cursor,
                failures: 0,
                delivered: 0,
                failed_attempts: 0,
                last_error: None,
                last_error_at: None,
            },
        );
        deliveries.spawn(self.clone().run(url, cursor))
    }

    async fn run(self, url: String, mut cursor: Seq) {
        // Subscriptions recorded before the check at subscribe time, or a
        // name that has come to resolve here since: never delivered.
        if let Ok(parsed) = reqwest::Url::parse(&url) {
            if let Some(address) = own_address::reaching_listener(&parsed, self.listen).await {
                tracing::warn!(url, %address, "not delivering callbacks to this server itself");
                self.registry.update(&url, |s| {
                    s.last_error = Some(format!(
                        "{address} is this server: not delivering (unsubscribe this URL)"
                    ));
                    s.last_error_at = Some(now_rfc3339());
                });
                return;
            }
        }
        let mut pace = tokio::time::interval(Duration::from_secs(1) / self.config.max_rate.max(1));
        pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let opened = Feed::open(
                self.log.clone(),
                self.projection.clone(),
                Start::At(cursor.next()),
                Filter::default(),
            );
            let mut feed = match opened {
                Ok(feed) => feed,
                Err(error) => {
                    tracing::error!(%error, url, "callback delivery cannot start");
                    return;
                }
            };
            loop {
                match feed.next().await {
                    Ok(Item::Event(envelope)) => {
                        self.deliver(&url, &envelope, &mut pace).await;
                        cursor = envelope.seq;
                        if let Err(error) = self.log.set_callback_cursor(&url, cursor) {
                            tracing::warn!(%error, url, "cannot save a callback cursor");
                        }
                        self.registry.update(&url, |s| s.cursor = cursor);
                    }
                    Ok(Item::CaughtUp(_)) => {}
                    Err(FeedError::Closed) => return,
                    Err(error) => {
                        tracing::error!(%error, url, "callback feed failed; reopening");
                        break;
                    }
                }
            }
            tokio::time::sleep(self.config.max_backoff).await;
        }
    }

    /// Returns once the endpoint took every Marathon event of the envelope
    /// (none for some); retries forever otherwise, since skipping would
    /// break order. Every attempt waits for `pace`: at most `max_rate` a
    /// second.
    async fn deliver(&self, url: &str, envelope: &Envelope, pace: &mut Interval) {
        for (_, body) in marathon_events(envelope, &*self.projection, PlanFormat::Full) {
            self.post(url, envelope, &body, pace).await;
        }
    }

    async fn post(
        &self,
        url: &str,
        envelope: &Envelope,
        body: &serde_json::Value,
        pace: &mut Interval,
    ) {
        let mut backoff = Backoff::new(FIRST_BACKOFF, self.config.max_backoff);
        loop {
            pace.tick().await;
            let sent = self
                .http
                .post(url)
                .header(SEQ_HEADER, envelope.seq.to_string())
                .json(body)
                .send()
                .await;
            let error = match sent {
                Ok(response) if response.status().is_success() => {
                    self.registry.update(url, |s| {
                        s.failures = 0;
                        s.delivered += 1;
                    });
                    return;
                }
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => chain(&error),
            };
            tracing::debug!(url, seq = %envelope.seq, error, "callback failed; retrying");
            self.registry.update(url, |s| {
                s.failures = s.failures.saturating_add(1);
                s.failed_attempts += 1;
                s.last_error = Some(format!("seq {}: {error}", envelope.seq));
                s.last_error_at = Some(now_rfc3339());
            });
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
