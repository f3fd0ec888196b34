//! `GET /v2/events`: Marathon's Server-Sent Events endpoint, on the same
//! gapless feed as `/v1/stream`.
//!
//! Unlike Marathon, every event carries an `id:` line, so a client
//! reconnecting with `Last-Event-ID` resumes after it with no gap and no
//! duplicate. One log event can be several Marathon events: the last of
//! them has its seq as id (`42`: all of seq 42 seen), the others the seq
//! and their place (`42.0`: seq 42's first seen). The
//! `event_stream_attached` greeting has no id, so it never moves a
//! client's resume point.

use super::Protocol;
use super::feed::{Feed, FeedError, Item, Start};
use super::marathon::{PlanFormat, marathon_events, stream_attached};
use crate::api::{ApiError, Caller, Shared};
use crate::event::{Actor, Seq};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Comment lines on a quiet stream, so proxies and clients see it alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn handler(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accepts = headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !accepts {
        return Err(ApiError::NotAcceptable(
            "/v2/events serves Server-Sent Events: send 'Accept: text/event-stream'".into(),
        ));
    }
    // Marathon ignores parameters it does not know, so this does too.
    let format = match pairs.iter().find(|(key, _)| key == "plan-format") {
        Some((_, value)) if value == "light" => PlanFormat::Light,
        _ => PlanFormat::Full,
    };
    let types: BTreeSet<String> = pairs
        .into_iter()
        .filter(|(key, _)| key == "event_type")
        .map(|(_, value)| value)
        .collect();
    let (start, mut skip) = match headers.get("last-event-id") {
        None => (Start::Now, None),
        Some(value) => {
            let last = value
                .to_str()
                .ok()
                .and_then(parse_event_id)
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be an id this server sent".into())
                })?;
            match last {
                (seq, None) => {
                    // u64::MAX has no successor; it is as far beyond the
                    // head as any.
                    let after = seq.checked_next().ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "Last-Event-ID: {seq} is beyond the head of the log ({})",
                            shared.projection.head()
                        ))
                    })?;
                    (Start::At(after), None)
                }
                (seq, Some(seen)) => (Start::At(seq), Some((seq, seen + 1))),
            }
        }
    };
    let feed = Feed::open(
        shared.log.clone(),
        shared.projection.clone(),
        start,
        Default::default(),
    )
    .map_err(|error| ApiError::BadRequest(format!("Last-Event-ID: {error}")))?
    .following(shared.stream.paced_head());
    // Counted among the subscribers the hub paces for, while it streams.
    let subscribed = shared
        .stream
        .subscribe(Protocol::Sse)
        .map_err(|full| ApiError::Busy(full.to_string()))?;
    subscribed.sent(feed.position());
    let stopping = shared.stream.stopping();
    let wanted = move |kind: &str| types.is_empty() || types.contains(kind);
    let remote = match &actor {
        Actor::Api { remote, .. } => remote.clone(),
        _ => String::new(),
    };
    let greeting = wanted("event_stream_attached").then(|| {
        let body = stream_attached(&remote, now_micros());
        Ok(SseEvent::default()
            .event("event_stream_attached")
            .data(body.to_string()))
    });
    let projection = shared.projection.clone();
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
    // Ends when the server stops, so a client never holds up its shutdown.
    let body = stream::iter(greeting).chain(events).take_until(stopping);
    Ok(Sse::new(body)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// `42` (all of seq 42) or `42.1` (seq 42's first two events).
fn parse_event_id(id: &str) -> Option<(Seq, Option<usize>)> {
    let id = id.trim();
    match id.split_once('.') {
        None => Some((Seq(id.parse().ok()?), None)),
        Some((seq, seen)) => Some((Seq(seq.parse().ok()?), Some(seen.parse().ok()?))),
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
