//! Marathon's Server-Sent Events (`GET /v2/events`, see `api/stream.rs`),
//! on the same gapless feed as `/v1/stream`.
//!
//! Unlike Marathon, every event carries an `id:` line, so a client
//! reconnecting with `Last-Event-ID` resumes after it with no gap and no
//! duplicate. One log event can be several Marathon events: the last of
//! them has its seq as id (`42`: all of seq 42 seen), the others the seq
//! and their place (`42.0`: seq 42's first seen). The
//! `event_stream_attached` greeting has no id, so it never moves a
//! client's resume point.

use super::Sources;
use super::feed::{Feed, FeedError, Item};
use super::hub::Subscribed;
use super::marathon::{PlanFormat, marathon_events, stream_attached};
use super::revocation::Revoked;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stride_log::event::Seq;
use stride_runtime::clock::now_micros;

/// Comment lines on a quiet stream, so proxies and clients see it alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a `/v2/events` client asked for, besides where to start.
pub struct Wanted {
    pub format: PlanFormat,
    /// Marathon event types; empty means all.
    pub types: BTreeSet<String>,
    /// Events of a seq the client has partly seen: that seq and how many
    /// of its Marathon events to skip (from a `42.1` Last-Event-ID).
    pub skip: Option<(Seq, usize)>,
    /// The client's address, for the greeting.
    pub remote: String,
}

/// Serves `feed` as Marathon's event stream, counted among the hub's
/// subscribers while it lasts.
pub fn respond(
    sources: &Sources,
    feed: Feed,
    subscribed: Subscribed,
    asked: Wanted,
    revoked: Revoked,
) -> Response {
    let Wanted {
        format,
        types,
        mut skip,
        remote,
    } = asked;
    subscribed.sent(feed.position());
    let stopping = sources.hub.stopping();
    let wanted = move |kind: &str| types.is_empty() || types.contains(kind);
    let greeting = wanted("event_stream_attached").then(|| {
        let body = stream_attached(&remote, now_micros());
        Ok(SseEvent::default()
            .event("event_stream_attached")
            .data(body.to_string()))
    });
    let projection = sources.projection.clone();
    let state = (feed, wanted, subscribed, VecDeque::new());
    let events = stream::unfold(state, move |(mut feed, wanted, subscribed, mut ready)| {
        let projection = projection.clone();
        let mut skip = skip.take();
        async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((
                        Ok::<_, Infallible>(event),
                        (feed, wanted, subscribed, ready),
                    ));
                }
                // Everything examined so far has been handed to the body.
                subscribed.sent(feed.position());
                match feed.next().await {
                    Ok(Item::Event(envelope)) => {
                        let rendered = marathon_events(&envelope, &*projection, format);
                        let count = rendered.len();
                        let seen = match skip.take() {
                            Some((seq, seen)) if seq == envelope.seq => seen,
                            _ => 0,
                        };
                        ready.extend(
                            rendered
                                .into_iter()
                                .enumerate()
                                .skip(seen)
                                .filter(|(_, (kind, _))| wanted(kind))
                                .map(|(i, (kind, body))| {
                                    let id = match i + 1 == count {
                                        true => envelope.seq.to_string(),
                                        false => format!("{}.{i}", envelope.seq),
                                    };
                                    SseEvent::default()
                                        .event(kind)
                                        .id(id)
                                        .data(body.to_string())
                                }),
                        );
                    }
                    Ok(Item::CaughtUp(_)) => {}
                    Err(FeedError::Closed) => return None,
                    Err(error) => {
                        tracing::error!(error = %error, "/v2/events feed failed; ending the stream");
                        return None;
                    }
                }
            }
        }
    });
    // Ends when the server stops, so a client never holds up its shutdown,
    // or when a reload takes the stream away: then a last comment line
    // says why (SSE has no close frame; a comment is no event to clients).
    let why = Arc::new(OnceLock::new());
    let end = {
        let why = why.clone();
        async move {
            tokio::select! {
                () = stopping => {}
                reason = revoked => {
                    let _ = why.set(reason);
                }
            }
        }
    };
    let farewell = stream::once(async move {
        why.get()
            .map(|reason| Ok(SseEvent::default().comment(format!("closed: {reason}"))))
    })
    .filter_map(std::future::ready);
    let body = stream::iter(greeting)
        .chain(events)
        .take_until(end)
        .chain(farewell);
    Sse::new(body)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// `42` (all of seq 42) or `42.1` (seq 42's first two events).
pub fn parse_event_id(id: &str) -> Option<(Seq, Option<usize>)> {
    let id = id.trim();
    match id.split_once('.') {
        None => Some((Seq(id.parse().ok()?), None)),
        Some((seq, seen)) => Some((Seq(seq.parse().ok()?), Some(seen.parse().ok()?))),
    }
}
