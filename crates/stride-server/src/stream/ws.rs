//! `GET /v1/stream` (see `api/stream.rs`): the log over a websocket, one JSON text message per
//! event (see `docs/stream.md`).
//!
//! Each connection runs two tasks: a reader that watches the client (pongs,
//! close, protocol errors, oversized messages, and the sidecar messages
//! `hello` and `applied`, see `sidecars`) and a writer that pulls from its
//! own `Feed`. Nothing is queued per subscriber beyond the
//! socket's buffers, so a slow client costs only its own connection; one
//! that stops reading is cut off after `idle_timeout`.

use super::feed::{Feed, FeedError, Item, Start};
use super::hub::Subscribed;
use super::revocation::Revoked;
use super::sidecars::Registration;
use super::{Filter, Hub, Sidecars, Sources, StreamConfig};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures::stream::{SplitSink, SplitStream};
use futures::{FutureExt, SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use stride_log::event::{Envelope, Seq};
use stride_protocol::{ClientMessage, ErrorCode, ServerMessage, StreamError};
use stride_runtime::supervisor::panic_message;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, timeout};

/// Clients send only small messages; anything bigger is refused (1009).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// `from` is beyond the head of the log (like HTTP 416).
pub const CLOSE_BEYOND_HEAD: u16 = 4416;
/// No pong within the idle timeout, or a send stuck that long (like 408).
pub const CLOSE_IDLE: u16 = 4408;
/// Events written per flush at most; bounds the time between ping checks.
const BATCH: usize = 256;
/// How long a close frame of ours may take to go out.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// How long the answer to a client's close may take: a client still
/// reading what was buffered before it gets it; one that stopped is let go.
const CLOSE_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A parsed `/v1/stream` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    pub start: Start,
    pub filter: Filter,
}

/// A query `/v1/stream` cannot serve; the API answers it with a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(String);

impl StreamQuery {
    /// `from` (a seq or `now`, default `now`), repeatable `type`, `app`,
    /// `task`. Anything else is an error, so a typo never widens a stream.
    pub fn parse(pairs: &[(String, String)]) -> Result<StreamQuery, BadQuery> {
        let bad = BadQuery;
        let mut start = None;
        let mut filter = Filter::default();
        let mut seen = std::collections::BTreeSet::new();
        for (key, value) in pairs {
            if key != "type" && !seen.insert(key.as_str()) {
                return Err(bad(format!("{key} is given twice")));
            }
            match key.as_str() {
                "from" => start = Some(parse_from(value)?),
                "type" => filter.add_type(value).map_err(|e| bad(e.to_string()))?,
                "app" => filter.set_app(value).map_err(|e| bad(e.to_string()))?,
                "task" => filter.set_task(value).map_err(|e| bad(e.to_string()))?,
                // A bearer token as RFC 6750 2.3 sends it, for browsers (the
                // web UI), which cannot set headers on a websocket; for the
                // authentication layer, not the stream.
                "access_token" => {}
                other => {
                    return Err(bad(format!(
                        "unknown query parameter '{other}'; expected from, type, app or task"
                    )));
                }
            }
        }
        Ok(StreamQuery {
            start: start.unwrap_or(Start::Now),
            filter,
        })
    }
}

fn parse_from(raw: &str) -> Result<Start, BadQuery> {
    if raw == "now" {
        return Ok(Start::Now);
    }
    raw.parse::<u64>()
        .map(|seq| Start::At(Seq(seq)))
        .map_err(|_| BadQuery(format!("from must be a seq or 'now', not '{raw}'")))
}

/// Upgrades to a websocket serving `query`, counted among the hub's
/// subscribers while it lasts.
pub fn accept(
    upgrade: WebSocketUpgrade,
    sources: Sources,
    query: StreamQuery,
    subscribed: Subscribed,
    revoked: Revoked,
) -> Response {
    upgrade
        // Clients say little; the default (128 KiB, zeroed before every
        // read) costs a thousand subscribers more than their messages.
        .read_buffer_size(4 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            let hub = sources.hub.clone();
            hub.run_session(serve(socket, sources, query, subscribed, revoked));
            std::future::ready(())
        })
}

/// Why the reader stopped.
enum ClientGone {
    /// EOF or a broken connection: nothing more to say.
    Left,
    /// A close frame: answer it (tungstenite has queued the reply).
    Closed,
    /// The client broke the rules; answer with this close code.
    Refused(u16, &'static str),
}

enum Step {
    Ping,
    Progress,
    Feed(Result<Item, FeedError>),
}

/// How a subscription ends.
enum Ending {
    Stopping,
    Client(ClientGone),
    /// No pong within the idle timeout.
    Silent,
    /// A reload of the auth file took the stream away (the reason).
    Revoked(&'static str),
    Failed(FeedError),
    /// A write failed or stalled: the connection is unusable.
    Broken,
    /// The task reading the client panicked (its message).
    ReaderPanicked(String),
}

/// What one step writes.
enum Write {
    One(Message),
    Batch(Arc<Envelope>),
}

type Sink = SplitSink<WebSocket, Message>;

async fn serve(
    socket: WebSocket,
    sources: Sources,
    query: StreamQuery,
    subscribed: Subscribed,
    mut revoked: Revoked,
) {
    let config = sources.hub.config;
    let (mut sink, source) = socket.split();
    let opened = Feed::open(
        sources.log.clone(),
        sources.projection.clone(),
        query.start,
        query.filter,
    );
    let mut feed = match opened {
        Ok(feed) => feed.following(sources.hub.paced_head()),
        Err(error) => {
            let message = ServerMessage::Error(StreamError {
                error: ErrorCode::FromBeyondHead,
                message: error.to_string(),
                head: Some(sources.projection.head()),
            });
            let _ = send(&mut sink, text(&message), &config).await;
            close(
                &mut sink,
                CLOSE_BEYOND_HEAD,
                "from is beyond the head",
                &config,
            )
            .await;
            return;
        }
    };
    subscribed.sent(feed.position());
    let started = Instant::now();
    let last_pong = Arc::new(AtomicU64::new(0));
    let (gone_tx, mut gone_rx) = oneshot::channel();
    let mut reader = tokio::spawn(read_client(
        source,
        started,
        last_pong.clone(),
        sources.sidecars.clone(),
        gone_tx,
    ));
    let mut ping = interval_at(started + config.ping_interval, config.ping_interval);
    let mut progress = interval_at(started + config.progress_interval, config.progress_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopping = std::pin::pin!(sources.hub.stopping());
    let ending = 'serve: loop {
        let step = tokio::select! {
            biased;
            () = &mut stopping => break 'serve Ending::Stopping,
            reason = &mut revoked => break 'serve Ending::Revoked(reason),
            gone = &mut gone_rx => break 'serve client_gone(gone, &mut reader).await,
            _ = ping.tick() => Step::Ping,
            _ = progress.tick() => Step::Progress,
            item = feed.next() => Step::Feed(item),
        };
        let write = match step {
            Step::Ping => {
                // Saturating: a pong may land between the two reads.
                let silent_ms = (started.elapsed().as_millis() as u64)
                    .saturating_sub(last_pong.load(Ordering::Relaxed));
                if silent_ms > config.idle_timeout.as_millis() as u64 {
                    tracing::info!(silent_ms, "stream subscriber stopped answering pings");
                    break Ending::Silent;
                }
                Write::One(Message::Ping(Default::default()))
            }
            // Also sent on catching up, so a filtered subscriber (and
            // `stride events` without --follow) learns it at once.
            Step::Progress | Step::Feed(Ok(Item::CaughtUp(_))) => {
                Write::One(progress_message(&feed, &sources))
            }
            Step::Feed(Ok(Item::Event(envelope))) => Write::Batch(envelope),
            Step::Feed(Err(FeedError::Closed)) => break Ending::Stopping,
            Step::Feed(Err(error)) => break Ending::Failed(error),
        };
        // A write may wait on a slow client: the client and the server
        // stopping are still heard meanwhile. Dropping a write midway is
        // safe: what the sink took stays queued ahead of any close frame.
        let written = tokio::select! {
            biased;
            () = &mut stopping => break 'serve Ending::Stopping,
            reason = &mut revoked => break 'serve Ending::Revoked(reason),
            gone = &mut gone_rx => break 'serve client_gone(gone, &mut reader).await,
            written = async {
                match write {
                    Write::One(message) => send(&mut sink, message, &config).await,
                    Write::Batch(first) => send_batch(&mut sink, &mut feed, &sources.hub, first).await,
                }
            } => written,
        };
        if !written {
            // tungstenite refuses to send once the reader has taken the
            // client's close: answer that close rather than drop the line.
            break match timeout(CLOSE_WAIT, &mut gone_rx).await {
                Ok(gone) => client_gone(gone, &mut reader).await,
                Err(_) => Ending::Broken,
            };
        }
        subscribed.sent(feed.position());
    };
    end(&mut sink, ending, &config).await;
    reader.abort();
}

/// Says goodbye as the ending calls for (best effort: a client that
/// stopped reading may never take it).
async fn end(sink: &mut Sink, ending: Ending, config: &StreamConfig) {
    match ending {
        Ending::Stopping => close(sink, close_code::AWAY, "the server is stopping", config).await,
        Ending::Client(ClientGone::Closed) => {
            // The reply tungstenite queued goes out with the next flush;
            // the flush then reports the connection closed.
            let _ = timeout(CLOSE_REPLY_WAIT.min(config.idle_timeout), sink.flush()).await;
        }
        Ending::Client(ClientGone::Refused(code, reason)) => {
            close(sink, code, reason, config).await;
        }
        Ending::Silent => close(sink, CLOSE_IDLE, "no pong within the idle timeout", config).await,
        Ending::Revoked(reason) => close(sink, close_code::POLICY, reason, config).await,
        Ending::Failed(error) => {
            tracing::error!(error = %error, "stream feed failed");
            let message = ServerMessage::Error(StreamError {
                error: ErrorCode::Internal,
                message: error.to_string(),
                head: None,
            });
            let _ = timeout(CLOSE_WAIT, sink.send(text(&message))).await;
            close(sink, close_code::ERROR, "reading the log failed", config).await;
        }
        Ending::ReaderPanicked(message) => {
            tracing::error!(%message, "a stream subscriber's reader panicked; closing its stream");
            close(sink, close_code::ERROR, "the server failed", config).await;
        }
        Ending::Client(ClientGone::Left) | Ending::Broken => {}
    }
}

/// Why the reader stopped: it says so, unless it panicked (the session
/// owns it, so the panic is reported, not taken for the client leaving).
async fn client_gone(
    said: Result<ClientGone, oneshot::error::RecvError>,
    reader: &mut JoinHandle<()>,
) -> Ending {
    match said {
        Ok(gone) => Ending::Client(gone),
        Err(_) => match reader.await {
            Err(error) if error.is_panic() => {
                Ending::ReaderPanicked(panic_message(&*error.into_panic()))
            }
            _ => Ending::Client(ClientGone::Left),
        },
    }
}

fn progress_message(feed: &Feed, sources: &Sources) -> Message {
    text(&ServerMessage::Progress {
        seq: feed.position(),
        head: sources.projection.head(),
    })
}

fn text(message: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(message.to_text()))
}

/// Sends one message; false when the client is gone or has not taken it
/// within the idle timeout (it stopped reading: cut it off).
async fn send(sink: &mut Sink, message: Message, config: &StreamConfig) -> bool {
    match timeout(config.idle_timeout, sink.send(message)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::info!("stream subscriber stopped reading; disconnecting it");
            false
        }
    }
}

/// Sends `first` and whatever else the feed has at hand (up to `BATCH`),
/// flushing once: one write for a burst instead of one per event.
async fn send_batch(sink: &mut Sink, feed: &mut Feed, hub: &Hub, first: Arc<Envelope>) -> bool {
    let mut envelopes = vec![first];
    while envelopes.len() < BATCH {
        let Some(envelope) = feed.ready() else { break };
        envelopes.push(envelope);
    }
    let more_waiting = envelopes.len() == BATCH;
    let texts = hub.render_all(&envelopes);
    let write = async {
        for text in texts {
            sink.feed(Message::Text(text)).await?;
        }
        sink.flush().await
    };
    // Most writes fit the socket buffer at once; only one that waits needs
    // the idle timer (a timer per write is a cost per subscriber per event).
    let mut write = std::pin::pin!(write);
    let outcome = match (&mut write).now_or_never() {
        Some(done) => {
            // A client taking a backlog as fast as it is written never makes
            // this task wait, so without a turn given back the reader (woken
            // onto this worker, maybe into its LIFO slot, which no other
            // worker may steal from) and the I/O driver would not run until
            // the whole backlog was sent: a close or a ping heard only then.
            if more_waiting {
                tokio::task::yield_now().await;
            }
            Ok(done)
        }
        None => timeout(hub.config.idle_timeout, write).await,
    };
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::info!("stream subscriber stopped reading; disconnecting it");
            false
        }
    }
}

/// Best effort: a client that stopped reading may never take the frame.
async fn close(sink: &mut Sink, code: u16, reason: &'static str, config: &StreamConfig) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let wait = CLOSE_WAIT.min(config.idle_timeout);
    let _ = timeout(wait, sink.send(Message::Close(Some(frame)))).await;
}

async fn read_client(
    mut source: SplitStream<WebSocket>,
    started: Instant,
    last_pong: Arc<AtomicU64>,
    sidecars: Sidecars,
    gone: oneshot::Sender<ClientGone>,
) {
    // Dropped with this task, which unregisters the sidecar.
    let mut sidecar: Option<Registration> = None;
    let why = loop {
        match source.next().await {
            Some(Ok(Message::Close(_))) => break ClientGone::Closed,
            None => break ClientGone::Left,
            Some(Ok(Message::Pong(_))) => {
                last_pong.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            Some(Ok(Message::Text(text))) => sidecar_message(&text, &sidecars, &mut sidecar),
            // Pings are answered by the library; other data messages mean
            // nothing here and are ignored (the size limit still applies).
            Some(Ok(_)) => {}
            Some(Err(error)) => break refusal(error),
        }
    };
    let _ = gone.send(why);
}

/// `hello` registers the connection as a sidecar (again: a second hello
/// replaces the first); `applied` moves its seq. Other text is ignored, as
/// it always was.
fn sidecar_message(text: &str, sidecars: &Sidecars, sidecar: &mut Option<Registration>) {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Hello {
            name,
            drain_confirmation,
        }) => {
            tracing::info!(%name, drain_confirmation, "sidecar connected");
            let now = stride_runtime::clock::now_micros();
            *sidecar = Some(sidecars.register(name, drain_confirmation, now));
        }
        Ok(ClientMessage::Applied { seq }) => {
            if let Some(registration) = sidecar {
                registration.applied(seq);
            }
        }
        Err(_) => tracing::debug!("ignoring a client message that is not hello or applied"),
    }
}

fn refusal(error: axum::Error) -> ClientGone {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match error.into_inner().downcast::<WsError>().map(|e| *e) {
        Ok(WsError::Capacity(_)) => ClientGone::Refused(
            close_code::SIZE,
            "message too big: the stream takes no messages",
        ),
        Ok(WsError::Protocol(_)) | Ok(WsError::Utf8(_)) => {
            ClientGone::Refused(close_code::PROTOCOL, "websocket protocol error")
        }
        _ => ClientGone::Left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_that_panicked_is_reported_not_taken_for_the_client_leaving() {
        let (said, heard) = oneshot::channel::<ClientGone>();
        let mut reader = tokio::spawn(async move {
            let _said = said;
            panic!("a frame it could not take");
        });
        let ending = client_gone(heard.await, &mut reader).await;
        assert!(
            matches!(&ending, Ending::ReaderPanicked(message) if message == "a frame it could not take")
        );

        let (said, heard) = oneshot::channel::<ClientGone>();
        let mut reader = tokio::spawn(async move { drop(said) });
        let ending = client_gone(heard.await, &mut reader).await;
        assert!(matches!(ending, Ending::Client(ClientGone::Left)));
    }
}
