//! Following Stride: the state document from `GET /v1/state`, then
//! `/v1/stream` from the seq after it (both typed in `protocol`), folded
//! into a local copy by the projection's own `apply`, so the sidecar reads
//! the state exactly as Stride does.
//!
//! A dropped connection is retried with capped, jittered exponential
//! backoff (`runtime::Backoff`) and
//! resumes right after the last seq held (events received but not yet
//! applied are in the local copy already), so nothing is missed or folded
//! twice; meanwhile HAProxy keeps serving what it has. Only when the stream
//! cannot resume (Stride's log is now behind it, or an event does not
//! decode) is the whole state read again. After each apply the sidecar
//! tells Stride how far it has applied (`ClientMessage::Applied`).

use super::apply::Applier;
use super::status::StatusHandle;
use crate::event::{Envelope, Seq};
use crate::projection::State;
use crate::protocol::stream::MessageError;
use crate::protocol::{ClientMessage, ServerMessage, StateDocument};
use futures::{SinkExt, StreamExt};
use reqwest::Url;
use std::sync::Arc;
use std::time::Duration;
use stride_runtime::error::chain;
use stride_runtime::{Backoff, Credentials};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The event types that change what the proxy serves; the rest of the log
/// is not sent to the sidecar at all.
pub const FOLLOWED: [&str; 10] = [
    "AppCreated",
    "AppUpdated",
    "AppScaled",
    "AppDeleted",
    "TaskLaunchRequested",
    "TaskStatusRecorded",
    "TaskKillRequested",
    "TaskDraining",
    "TaskExpunged",
    "HealthChanged",
];

const FIRST_BACKOFF: Duration = Duration::from_millis(250);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("--stride {0}: cannot build the Stride URLs from it")]
    Url(Url),
    #[error("--token (or STRIDE_TOKEN)")]
    Token(#[source] stride_runtime::credentials::InvalidToken),
    #[error("cannot make an HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("GET {url} failed")]
    Fetch {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}")]
    Version {
        url: Url,
        #[source]
        source: crate::protocol::state::UnknownVersion,
    },
    #[error("cannot open {url}")]
    Connect {
        url: Url,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
}

/// How the sidecar reaches Stride.
#[derive(Debug, Clone)]
pub struct Follower {
    pub stride: Url,
    /// For a Stride with an auth file: the sidecar needs `read` and
    /// `stream` on the apps it routes (docs/security.md).
    pub credentials: Credentials,
    /// Sent in `hello`; `/v1/sidecars` lists it.
    pub name: String,
    /// How long changes gather before they are applied together; zero
    /// applies what the stream has delivered at once (changes arriving
    /// during an apply gather for the next one anyway).
    pub debounce: Duration,
    pub max_backoff: Duration,
}

/// What a stream message means to the sidecar.
enum Incoming {
    Event(Arc<Envelope>),
    Progress(Seq),
    /// Cannot go on from here: read the whole state again.
    Resync(String),
    Ignored,
}

/// Why following the stream stopped.
enum Ended {
    /// The connection is gone: reconnect and resume.
    Lost,
    /// The stream cannot resume: read the whole state again.
    Resync(String),
}

/// The local copy and where applying it stands.
struct Work {
    state: Option<State>,
    /// When the pending changes are due to be applied; `None` when HAProxy
    /// has everything.
    due: Option<Instant>,
    retry: Backoff,
    /// HAProxy serves everything up to here.
    applied: Seq,
}

impl Follower {
    /// The HTTP client for Stride's API.
    pub fn client(&self) -> Result<reqwest::Client, FollowError> {
        self.credentials
            .http_client()
            .map_err(FollowError::Token)?
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(FollowError::Client)
    }

    /// The state as Stride serves it now (`protocol::state`), ready to
    /// fold the stream into.
    pub async fn fetch_state(&self, client: &reqwest::Client) -> Result<State, FollowError> {
        let url = self
            .stride
            .join("/v1/state")
            .map_err(|_| FollowError::Url(self.stride.clone()))?;
        let fetch = |source| FollowError::Fetch {
            url: url.clone(),
            source,
        };
        let answer = client.get(url.clone()).send().await.map_err(fetch)?;
        let document: StateDocument = answer
            .error_for_status()
            .map_err(fetch)?
            .json()
            .await
            .map_err(fetch)?;
        document
            .into_state()
            .map_err(|source| FollowError::Version { url, source })
    }

    /// Follows Stride forever, keeping HAProxy in line. `generation` moves
    /// when HAProxy restarted, which calls for setting every server again.
    pub async fn run(
        &self,
        mut applier: Applier,
        mut generation: watch::Receiver<u64>,
        status: StatusHandle,
    ) {
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(error = %chain(&error), "Cannot reach Stride at all.");
                return;
            }
        };
        let mut work = Work {
            state: None,
            due: None,
            retry: Backoff::new(FIRST_BACKOFF, self.max_backoff),
            applied: Seq(0),
        };
        let mut backoff = Backoff::new(FIRST_BACKOFF, self.max_backoff);
        loop {
            let ws = loop {
                if work.state.is_none() {
                    match self.fetch_state(&client).await {
                        Ok(state) => {
                            tracing::info!(seq = %state.seq, apps = state.apps.len(), "Read Stride's state.");
                            status.update(|s| {
                                s.state_fetches += 1;
                                s.seen_seq = state.seq.0;
                            });
                            work.state = Some(state);
                            work.due = Some(Instant::now());
                        }
                        Err(error) => {
                            tracing::warn!(error = %chain(&error), "Cannot read Stride's state; HAProxy keeps serving.")
                        }
                    }
                }
                if let Some(state) = &work.state {
                    match self.connect(state.seq.next()).await {
                        Ok(ws) => break ws,
                        Err(error) => {
                            tracing::warn!(error = %chain(&error), "Cannot follow Stride; HAProxy keeps serving.")
                        }
                    }
                }
                let until = Instant::now() + backoff.next_delay();
                self.idle(until, &mut work, &mut applier, &mut generation, &status)
                    .await;
            };
            backoff.reset();
            status.update(|s| s.connected = true);
            let ended = self
                .stream(ws, &mut work, &mut applier, &mut generation, &status)
                .await;
            status.update(|s| {
                s.connected = false;
                s.reconnects += 1;
            });
            match ended {
                Ended::Resync(why) => {
                    tracing::warn!(reason = %why, "Reading Stride's whole state again.");
                    work.state = None;
                }
                Ended::Lost => tracing::warn!("The stream from Stride ended; reconnecting."),
            }
        }
    }

    async fn connect(&self, from: Seq) -> Result<Ws, FollowError> {
        let mut url = self
            .stride
            .join("/v1/stream")
            .map_err(|_| FollowError::Url(self.stride.clone()))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|_| FollowError::Url(self.stride.clone()))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("from", &from.to_string());
            for kind in FOLLOWED {
                query.append_pair("type", kind);
            }
        }
        let mut request =
            url.as_str()
                .into_client_request()
                .map_err(|source| FollowError::Connect {
                    url: url.clone(),
                    source: Box::new(source),
                })?;
        request
            .headers_mut()
            .extend(self.credentials.headers().map_err(FollowError::Token)?);
        let connector = self.credentials.websocket_connector();
        let (ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector)
                .await
                .map_err(|source| FollowError::Connect {
                    url,
                    source: Box::new(source),
                })?;
        Ok(ws)
    }

    /// Disconnected until `until`: HAProxy still gets pending changes and
    /// is set again if it restarts.
    async fn idle(
        &self,
        until: Instant,
        work: &mut Work,
        applier: &mut Applier,
        generation: &mut watch::Receiver<u64>,
        status: &StatusHandle,
    ) {
        loop {
            // Nothing to apply before there is a state.
            let wake = match (work.due, &work.state) {
                (Some(due), Some(_)) => due.min(until),
                _ => until,
            };
            tokio::select! {
                _ = sleep_until(wake) => {}
                Ok(()) = generation.changed() => {
                    applier.invalidate();
                    work.due = Some(Instant::now());
                }
            }
            self.apply_if_due(work, applier, status).await;
            if Instant::now() >= until {
                return;
            }
        }
    }

    /// Connected: fold events in, apply them after the debounce, report.
    async fn stream(
        &self,
        mut ws: Ws,
        work: &mut Work,
        applier: &mut Applier,
        generation: &mut watch::Receiver<u64>,
        status: &StatusHandle,
    ) -> Ended {
        let hello = ClientMessage::Hello {
            name: self.name.clone(),
            drain_confirmation: true,
        };
        if ws.send(Message::text(hello.to_text())).await.is_err() {
            return Ended::Lost;
        }
        let mut reported = None;
        loop {
            if reported != Some(work.applied) {
                let seq = work.applied;
                status.update(|s| s.applied_seq = seq.0);
                let applied = ClientMessage::Applied { seq };
                if ws.send(Message::text(applied.to_text())).await.is_err() {
                    return Ended::Lost;
                }
                reported = Some(seq);
            }
            let due = work.due;
            tokio::select! {
                // Messages already here are folded before an apply, so one
                // apply takes all of them; with no debounce, that is the
                // only wait. (A backlog is finite: the log is caught up.)
                biased;
                message = ws.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => {
                            tracing::info!(?frame, "Stride closed the stream.");
                            return Ended::Lost;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(error)) => {
                            tracing::info!(%error, "The stream from Stride failed.");
                            return Ended::Lost;
                        }
                        None => return Ended::Lost,
                    };
                    let Some(state) = work.state.as_mut() else {
                        return Ended::Resync("no state to resume from".into());
                    };
                    match decode(&text) {
                        Incoming::Event(envelope) if envelope.seq > state.seq => {
                            state.apply(&envelope);
                            work.due.get_or_insert_with(|| Instant::now() + self.debounce);
                        }
                        Incoming::Progress(seq) => {
                            state.seq = state.seq.max(seq);
                            // Nothing pending: HAProxy has everything up to here.
                            if work.due.is_none() {
                                work.applied = state.seq;
                            }
                        }
                        Incoming::Resync(why) => return Ended::Resync(why),
                        Incoming::Event(_) | Incoming::Ignored => {}
                    }
                    let seen = state.seq.0;
                    status.update(|s| s.seen_seq = seen);
                }
                () = until(due), if due.is_some() => {
                    self.apply_if_due(work, applier, status).await;
                }
                Ok(()) = generation.changed() => {
                    applier.invalidate();
                    work.due = Some(Instant::now());
                }
            }
        }
    }

    async fn apply_if_due(&self, work: &mut Work, applier: &mut Applier, status: &StatusHandle) {
        let (Some(due), Some(state)) = (work.due, &work.state) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        match applier.apply(state).await {
            Ok(()) => {
                work.due = None;
                work.retry.reset();
                work.applied = state.seq;
                status.update(|s| s.applied_seq = state.seq.0);
            }
            Err(error) => {
                let retry_in = work.retry.next_delay();
                tracing::error!(error = %chain(&error), ?retry_in, "Cannot apply the state to HAProxy.");
                work.due = Some(Instant::now() + retry_in);
            }
        }
    }
}

/// Sleeps until `due`; one already due is ready at once, where a timer
/// would round up to the next millisecond tick.
async fn until(due: Option<Instant>) {
    if let Some(due) = due.filter(|d| *d > Instant::now()) {
        sleep_until(due).await;
    }
}

fn decode(text: &str) -> Incoming {
    match ServerMessage::parse(text) {
        Ok(ServerMessage::Event(envelope)) => Incoming::Event(envelope),
        Ok(ServerMessage::Progress { seq, .. }) => Incoming::Progress(seq),
        // `from_beyond_head`: Stride's log is behind what we hold (restored
        // from an older copy); its state is the truth now.
        Ok(ServerMessage::Error(error)) => Incoming::Resync(format!("Stride: {}", error.message)),
        Err(MessageError::Unknown(_)) => Incoming::Ignored,
        Err(error) => Incoming::Resync(chain(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followed_types_are_event_types() {
        for name in FOLLOWED {
            assert!(crate::event::Kind::from_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn stream_messages_decode() {
        assert!(matches!(
            decode(r#"{"type":"progress","seq":7,"head":9}"#),
            Incoming::Progress(Seq(7))
        ));
        assert!(matches!(
            decode(r#"{"type":"error","error":"from_beyond_head"}"#),
            Incoming::Resync(_)
        ));
        assert!(matches!(
            decode(r#"{"type":"AppDeleted","seq":1}"#),
            Incoming::Resync(_)
        ));
        // A control message of a newer server.
        assert!(matches!(
            decode(r#"{"type":"heartbeat"}"#),
            Incoming::Ignored
        ));
        let event = r#"{"seq":3,"id":"01a21501-1165-72a4-9f7b-66ace6d81255","at":"2026-11-25T23:18:41.253718Z",
            "actor":{"kind":"reconciler"},"commandId":"01a21501-1165-72a4-9f7b-66ab9524ca4a",
            "type":"AppDeleted","app":"/web"}"#;
        let Incoming::Event(envelope) = decode(event) else {
            panic!("an event");
        };
        assert_eq!(envelope.seq, Seq(3));
    }
}
