//! The driver task: SUBSCRIBE to the leading master, read its RecordIO
//! event stream, and resubscribe with backoff whenever the stream is lost.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode, Url};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, trace, warn};

use super::client::{STREAM_ID_HEADER, SchedulerEvent, Session, Shared};
use super::config::SchedulerConfig;
use super::endpoint::{resolve_leader, scheduler_endpoint};
use super::recordio::{RecordIoDecoder, RecordIoError};
use super::types::{Call, CallKind, Event, FrameworkId, Subscribe};
use stride_runtime::Backoff;

/// Mesos's rule: a connection silent for this many heartbeat intervals is
/// dead.
const HEARTBEAT_MISSES: u32 = 5;
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Leader redirects to follow in one attempt; more means a redirect loop.
const MAX_REDIRECTS: usize = 5;

/// Why there is no subscription right now.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("cannot reach {url}: {source}")]
    Connect {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("no answer to SUBSCRIBE from {url} within {waited:?}")]
    ConnectTimeout { url: Url, waited: Duration },
    #[error("{url} has no leading master yet (503)")]
    NoLeader { url: Url },
    #[error("{url} redirected to an unusable Location {location:?}")]
    BadRedirect { url: Url, location: String },
    #[error("more than {MAX_REDIRECTS} leader redirects, the last to {url}")]
    TooManyRedirects { url: Url },
    #[error("{url} refused SUBSCRIBE with {status}: {message}")]
    Rejected {
        url: Url,
        status: StatusCode,
        message: String,
    },
    #[error("{url} answered SUBSCRIBE with 401 Unauthorized: {}", match principal {
        Some(p) => format!("wrong framework credentials (principal '{p}' and --mesos-secret-file)"),
        None => "the master requires framework authentication (give --mesos-principal and --mesos-secret-file)".to_owned(),
    })]
    Unauthenticated { url: Url, principal: Option<String> },
    #[error(
        "{url} answered SUBSCRIBE with 400 Bad Request: the authenticated principal is not framework_info.principal ({message})"
    )]
    PrincipalMismatch { url: Url, message: String },
    #[error("{url} answered SUBSCRIBE without a Mesos-Stream-Id header")]
    MissingStreamId { url: Url },
    #[error("could not encode SUBSCRIBE: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("not the leader: SUBSCRIBE not sent")]
    Gated,
    #[error("no SUBSCRIBED event within {0:?}")]
    SubscribeTimeout(Duration),
    #[error("nothing received for {0:?} ({HEARTBEAT_MISSES} heartbeat intervals)")]
    HeartbeatTimeout(Duration),
    #[error("event stream framing broke: {0}")]
    Framing(#[from] RecordIoError),
    #[error("event stream failed: {0}")]
    Body(#[source] reqwest::Error),
    #[error("master closed the event stream")]
    StreamEnded,
    #[error("reconnect requested")]
    ReconnectRequested,
    /// `SchedulerConfig::detected` names no leading master.
    #[error("no leading Mesos master known yet; waiting for one to be detected")]
    NoMasterKnown,
    #[error("the leading Mesos master moved from {from} to {to}")]
    LeaderMoved { from: Url, to: Url },
}

impl SubscriptionError {
    /// Retrying cannot help: the operator must fix the credentials.
    fn is_fatal(&self) -> bool {
        matches!(
            self,
            SubscriptionError::Unauthenticated { .. } | SubscriptionError::PrincipalMismatch { .. }
        )
    }
}

/// How one subscription ended.
enum Outcome {
    Lost(SubscriptionError),
    /// Mesos sent ERROR: do not resubscribe.
    MesosError(String),
    /// Mesos refused the framework's credentials: do not resubscribe.
    Refused(SubscriptionError),
    /// Nobody reads events any more.
    ConsumerGone,
}

pub(crate) struct Driver {
    config: SchedulerConfig,
    shared: Arc<Shared>,
    events: mpsc::Sender<SchedulerEvent>,
    /// No overall timeout: the SUBSCRIBE response body never ends.
    http: reqwest::Client,
    endpoints: Vec<Url>,
    next_master: usize,
    /// The detected leader, when the config has a detector.
    detected: Option<watch::Receiver<Option<Url>>>,
    /// The detected leader the subscription under way went through.
    via: Option<Url>,
    /// `NoMasterKnown` was reported, and nothing since.
    told_no_master: bool,
    framework_id: Option<FrameworkId>,
    backoff: Backoff,
}

impl Driver {
    pub fn new(
        config: SchedulerConfig,
        shared: Arc<Shared>,
        events: mpsc::Sender<SchedulerEvent>,
    ) -> Result<Self, reqwest::Error> {
        let http = config.http_client().build()?;
        let endpoints = config.masters.iter().map(scheduler_endpoint).collect();
        Ok(Self {
            framework_id: config.framework_id.clone(),
            backoff: Backoff::new(config.backoff.initial, config.backoff.max),
            detected: config.detected.clone(),
            via: None,
            told_no_master: false,
            config,
            shared,
            events,
            http,
            endpoints,
            next_master: 0,
        })
    }

    pub async fn run(mut self) {
        loop {
            let stop = self.shared.stop.clone();
            let outcome = tokio::select! {
                () = stop.cancelled() => break,
                outcome = self.subscribe_and_stream() => outcome,
            };
            self.shared.set_session(None);
            if self.shared.is_tearing_down() {
                info!("framework torn down, driver stopping");
                break;
            }
            match outcome {
                Outcome::MesosError(message) => {
                    warn!(error = %message, "Mesos sent ERROR, driver stopping");
                    self.emit(SchedulerEvent::Error(message)).await;
                    break;
                }
                Outcome::Refused(reason) => {
                    warn!(%reason, "Mesos refused the subscription, driver stopping");
                    self.emit(SchedulerEvent::Error(reason.to_string())).await;
                    break;
                }
                Outcome::ConsumerGone => {
                    info!("event receiver dropped, driver stopping");
                    break;
                }
                Outcome::Lost(reason) => {
                    // No master known: wait for the detector, not a timer.
                    let delay = match reason {
                        SubscriptionError::NoMasterKnown => None,
                        SubscriptionError::LeaderMoved { .. } => Some(Duration::ZERO),
                        _ => Some(self.backoff.next_delay()),
                    };
                    let no_master = delay.is_none();
                    if !(no_master && self.told_no_master) {
                        warn!(%reason, retry_in = ?delay, "not subscribed");
                        if !self.emit(SchedulerEvent::Disconnected { reason }).await {
                            break;
                        }
                    }
                    self.told_no_master = no_master;
                    let mut detected = self.detected.clone();
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = pause(delay) => {}
                        () = named(&mut detected) => {}
                    }
                }
            }
        }
        self.shared.set_session(None);
    }

    /// Sends an event unless the driver is stopped meanwhile (a consumer
    /// that calls `shutdown` instead of reading must not block it).
    /// False if the event could not be delivered.
    async fn emit(&self, event: SchedulerEvent) -> bool {
        tokio::select! {
            () = self.shared.stop.cancelled() => false,
            sent = self.events.send(event) => sent.is_ok(),
        }
    }

    async fn subscribe_and_stream(&mut self) -> Outcome {
        match self.subscribe_to_any_master().await {
            Ok((response, endpoint, stream_id)) => {
                self.read_events(response, endpoint, stream_id).await
            }
            Err(reason) if reason.is_fatal() => Outcome::Refused(reason),
            Err(reason) => Outcome::Lost(reason),
        }
    }

    /// Tries each master once, starting with the last one that worked.
    async fn subscribe_to_any_master(
        &mut self,
    ) -> Result<(Response, Url, String), SubscriptionError> {
        if !self.shared.may_act() {
            return Err(SubscriptionError::Gated);
        }
        if let Some(detected) = &mut self.detected {
            let leader = detected.borrow_and_update().clone();
            let leader = leader.ok_or(SubscriptionError::NoMasterKnown)?;
            self.via = Some(leader.clone());
            // A master that does not answer is left as soon as another leads.
            let mut watching = self.detected.clone();
            return tokio::select! {
                subscribed = self.subscribe_via(scheduler_endpoint(&leader)) => subscribed,
                to = moved(&mut watching, Some(&leader)) => {
                    Err(SubscriptionError::LeaderMoved { from: leader.clone(), to })
                }
            };
        }
        let mut tried = 0;
        loop {
            let url = self.endpoints[self.next_master].clone();
            match self.subscribe_via(url.clone()).await {
                Ok(subscribed) => return Ok(subscribed),
                Err(error) => {
                    tried += 1;
                    debug!(master = %url, %error, "subscribe attempt failed");
                    self.next_master = (self.next_master + 1) % self.endpoints.len();
                    if tried >= self.endpoints.len() {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// SUBSCRIBE at `url`, following redirects to the leader.
    async fn subscribe_via(
        &self,
        mut url: Url,
    ) -> Result<(Response, Url, String), SubscriptionError> {
        let call = Call {
            framework_id: self.framework_id.clone(),
            kind: CallKind::Subscribe(Box::new(Subscribe {
                framework_info: self.config.framework_info(self.framework_id.clone()),
                suppressed_roles: Vec::new(),
            })),
        };
        let body = serde_json::to_vec(&call)?;
        for _ in 0..=MAX_REDIRECTS {
            // Never send Mesos-Stream-Id on SUBSCRIBE: Mesos answers 400.
            let request = self
                .http
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(body.clone())
                .send();
            let waited = self.config.subscribe_timeout;
            let response = match tokio::time::timeout(waited, request).await {
                Err(_) => return Err(SubscriptionError::ConnectTimeout { url, waited }),
                Ok(Err(source)) => return Err(SubscriptionError::Connect { url, source }),
                Ok(Ok(response)) => response,
            };
            match response.status() {
                StatusCode::OK => {
                    let stream_id = response
                        .headers()
                        .get(STREAM_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .ok_or_else(|| SubscriptionError::MissingStreamId { url: url.clone() })?;
                    return Ok((response, url, stream_id));
                }
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let leader = resolve_leader(&url, &location).ok_or_else(|| {
                        SubscriptionError::BadRedirect {
                            url: url.clone(),
                            location,
                        }
                    })?;
                    info!(from = %url, to = %leader, "following redirect to leading master");
                    url = leader;
                }
                StatusCode::SERVICE_UNAVAILABLE => return Err(SubscriptionError::NoLeader { url }),
                StatusCode::UNAUTHORIZED => {
                    let principal = self.config.credential.as_ref();
                    return Err(SubscriptionError::Unauthenticated {
                        url,
                        principal: principal.map(|c| c.principal.clone()),
                    });
                }
                StatusCode::BAD_REQUEST => {
                    let message = response.text().await.unwrap_or_default();
                    // apache/mesos validation.cpp's words (docs/compat.md).
                    if message.contains("does not match principal") {
                        return Err(SubscriptionError::PrincipalMismatch { url, message });
                    }
                    return Err(SubscriptionError::Rejected {
                        url,
                        status: StatusCode::BAD_REQUEST,
                        message,
                    });
                }
                status => {
                    let message = response.text().await.unwrap_or_default();
                    return Err(SubscriptionError::Rejected {
                        url,
                        status,
                        message,
                    });
                }
            }
        }
        Err(SubscriptionError::TooManyRedirects { url })
    }

    async fn read_events(
        &mut self,
        response: Response,
        endpoint: Url,
        stream_id: String,
    ) -> Outcome {
        let mut body = response.bytes_stream();
        let mut decoder = RecordIoDecoder::new(self.config.max_record_len);
        let mut silence_limit = self.config.subscribe_timeout;
        let mut subscribed = false;
        let mut detected = self.detected.clone();
        let via = self.via.clone();
        loop {
            loop {
                let record = match decoder.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(error) => return Outcome::Lost(error.into()),
                };
                match self.handle_record(&record, &endpoint, &stream_id).await {
                    Step::Continue => {}
                    Step::Subscribed(heartbeat) => {
                        subscribed = true;
                        silence_limit = heartbeat * HEARTBEAT_MISSES;
                    }
                    Step::End(outcome) => return outcome,
                }
            }
            let next = tokio::select! {
                () = self.shared.reconnect.notified() => {
                    return Outcome::Lost(SubscriptionError::ReconnectRequested);
                }
                to = moved(&mut detected, via.as_ref()) => {
                    let from = via.clone().unwrap_or_else(|| endpoint.clone());
                    return Outcome::Lost(SubscriptionError::LeaderMoved { from, to });
                }
                next = tokio::time::timeout(silence_limit, body.next()) => next,
            };
            match next {
                Ok(Some(Ok(chunk))) => decoder.push(&chunk),
                Ok(Some(Err(error))) => return Outcome::Lost(SubscriptionError::Body(error)),
                Ok(None) => {
                    let reason = match decoder.finish() {
                        Ok(()) => SubscriptionError::StreamEnded,
                        Err(torn) => torn.into(),
                    };
                    return Outcome::Lost(reason);
                }
                Err(_) if subscribed => {
                    return Outcome::Lost(SubscriptionError::HeartbeatTimeout(silence_limit));
                }
                Err(_) => return Outcome::Lost(SubscriptionError::SubscribeTimeout(silence_limit)),
            }
        }
    }

    async fn handle_record(&mut self, record: &[u8], endpoint: &Url, stream_id: &str) -> Step {
        let event = match serde_json::from_slice::<Event>(record) {
            Ok(event) => event,
            Err(error) => {
                // The framing is intact, so only this record is lost; an
                // unacknowledged update will be resent by the agent.
                let preview = String::from_utf8_lossy(&record[..record.len().min(200)]);
                warn!(%error, record = %preview, "skipping unparseable event");
                return Step::Continue;
            }
        };
        let forward = match event {
            Event::Subscribed(subscribed) => {
                let heartbeat = subscribed
                    .heartbeat_interval_seconds
                    .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                    .filter(|d| !d.is_zero())
                    .unwrap_or(DEFAULT_HEARTBEAT);
                let framework_id = subscribed.framework_id;
                info!(framework_id = %framework_id, master = %endpoint, ?heartbeat, "subscribed");
                self.framework_id = Some(framework_id.clone());
                self.shared.set_session(Some(Session {
                    endpoint: endpoint.clone(),
                    stream_id: stream_id.to_string(),
                    framework_id: framework_id.clone(),
                }));
                self.backoff.reset();
                self.told_no_master = false;
                let event = SchedulerEvent::Subscribed {
                    framework_id,
                    heartbeat_interval: heartbeat,
                    master: endpoint.clone(),
                };
                if self.events.send(event).await.is_err() {
                    return Step::End(Outcome::ConsumerGone);
                }
                return Step::Subscribed(heartbeat);
            }
            Event::Heartbeat => {
                trace!("heartbeat");
                // Heartbeats are not forwarded, so notice a dropped
                // receiver here rather than at the next real event.
                if self.events.is_closed() {
                    return Step::End(Outcome::ConsumerGone);
                }
                return Step::Continue;
            }
            Event::Error(error) => return Step::End(Outcome::MesosError(error.message)),
            Event::Unknown(kind) => {
                info!(event = %kind, "ignoring unknown event type");
                return Step::Continue;
            }
            Event::Offers(offers) => SchedulerEvent::Offers(offers.offers),
            Event::Rescind(rescind) => SchedulerEvent::Rescinded(rescind.offer_id),
            Event::Update(update) => SchedulerEvent::Update(update.status),
            Event::UpdateOperationStatus(update) => SchedulerEvent::OperationStatus(update.status),
            Event::Message(message) => SchedulerEvent::Message(message),
            Event::Failure(failure) => SchedulerEvent::Failure(failure),
        };
        match self.events.send(forward).await {
            Ok(()) => Step::Continue,
            Err(_) => Step::End(Outcome::ConsumerGone),
        }
    }
}

/// Sleeps `delay`; `None`: forever.
async fn pause(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the detector names a leader; never without one.
async fn named(detected: &mut Option<watch::Receiver<Option<Url>>>) {
    if let Some(detected) = detected {
        while detected.changed().await.is_ok() {
            if detected.borrow_and_update().is_some() {
                return;
            }
        }
    }
    std::future::pending().await
}

/// Resolves with the leader the detector names when it is another than
/// `via`; never without a detector. A detector that names none keeps the
/// subscription: a master that lost its place ends its streams itself,
/// while ZooKeeper's silence says nothing about the master.
async fn moved(detected: &mut Option<watch::Receiver<Option<Url>>>, via: Option<&Url>) -> Url {
    if let Some(detected) = detected {
        while detected.changed().await.is_ok() {
            let leader = detected.borrow_and_update().clone();
            if let Some(leader) = leader.filter(|l| Some(l) != via) {
                return leader;
            }
        }
    }
    std::future::pending().await
}

enum Step {
    Continue,
    Subscribed(Duration),
    End(Outcome),
}
