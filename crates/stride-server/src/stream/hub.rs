//! What every stream connection shares: a paced view of the head, so that
//! many subscribers wake together and write more per wakeup; the JSON
//! text of recent events, so fanning one event out to N subscribers
//! serializes it once instead of N times; a bounded number of places for
//! subscribers; the threads websocket sessions run on; the signal that
//! the server is stopping, and the one that the auth file was reloaded.

use super::StreamConfig;
use crate::published::Projection;
use axum::extract::ws::Utf8Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use stride_log::event::{Envelope, Seq};
use stride_protocol::stream::event_text;
use stride_runtime::Supervisor;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// Recent events kept rendered; subscribers at the live edge all hit.
const RENDERED: usize = 4_096;
/// Subscriber wakeups per second the pacing aims at, across all of them:
/// each costs a task switch and a socket write on both ends, which is what
/// saturates the cores when every event wakes every subscriber.
const WAKEUPS_PER_SECOND: u64 = 100_000;
/// The pace never delays an event by more than this.
const MAX_PACE: Duration = Duration::from_millis(10);

pub struct Hub {
    pub config: StreamConfig,
    rendered: RwLock<Rendered>,
    paced: watch::Sender<Seq>,
    subscribers: AtomicUsize,
    /// How far each subscriber has been sent, by subscription number.
    positions: Mutex<Positions>,
    /// A place per websocket or SSE subscriber.
    places: Arc<Semaphore>,
    max_subscribers: usize,
    /// Cancelled when the server stops: every stream ends (websockets with
    /// close code 1001).
    stopping: CancellationToken,
    /// The subscribers still open, so a stopping server can wait for them.
    open: TaskTracker,
    /// Bumped on each reload of the auth file: open streams check their
    /// grant again (`Revocation`).
    auth_reloads: watch::Sender<u64>,
    /// The runtime websocket sessions run on, when not the caller's.
    sessions: Option<tokio::runtime::Handle>,
}

/// The JSON text of a contiguous run of recent events.
#[derive(Default)]
struct Rendered {
    first: Seq,
    texts: VecDeque<Utf8Bytes>,
}

/// Which endpoint a subscriber follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `/v1/stream`.
    Websocket,
    /// `/v2/events`.
    Sse,
}

#[derive(Default)]
struct Positions {
    next: u64,
    sent: BTreeMap<u64, (Protocol, Arc<AtomicU64>)>,
}

/// A connected subscriber's place, held while it lives.
pub struct Subscribed {
    hub: Arc<Hub>,
    number: u64,
    /// The last seq it has been sent (or passed over).
    sent: Arc<AtomicU64>,
    _place: OwnedSemaphorePermit,
    _open: TaskTrackerToken,
}

impl Subscribed {
    /// The subscriber has been sent everything up to `seq`: what its lag
    /// is measured from. A plain store, no lock: it runs per write.
    pub fn sent(&self, seq: Seq) {
        self.sent.store(seq.0, Ordering::Relaxed);
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.hub.subscribers.fetch_sub(1, Ordering::Relaxed);
        self.hub.lock_positions().sent.remove(&self.number);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0} stream subscribers are connected, the most this server takes; try again later")]
pub struct Full(pub usize);

impl Hub {
    /// Starts pacing the projection's head (the pacer is a part of
    /// `supervisor`'s). Websocket sessions run on `sessions`: threads of
    /// their own, so that fanning events out to a thousand subscribers
    /// queues behind itself, not in front of the API's requests (writers
    /// wait there for their acknowledgements).
    pub fn start(
        config: StreamConfig,
        projection: Arc<Projection>,
        max_subscribers: usize,
        sessions: Option<tokio::runtime::Handle>,
        supervisor: &Supervisor,
    ) -> std::io::Result<Arc<Hub>> {
        let head = projection.head();
        let hub = Arc::new(Hub {
            config,
            rendered: RwLock::new(Rendered {
                first: head.next(),
                texts: VecDeque::new(),
            }),
            paced: watch::channel(head).0,
            subscribers: AtomicUsize::new(0),
            positions: Mutex::default(),
            places: Arc::new(Semaphore::new(max_subscribers)),
            max_subscribers,
            stopping: CancellationToken::new(),
            open: TaskTracker::new(),
            auth_reloads: watch::channel(0).0,
            sessions,
        });
        let weak = Arc::downgrade(&hub);
        // A thread of its own: as a task it would queue behind the very
        // subscribers it wakes, and tokio's timer rounds waits up to 1 ms.
        supervisor.spawn_thread("stream pacer", move |stop| {
            pace(weak, projection, stop);
            Ok::<(), Infallible>(())
        })?;
        Ok(hub)
    }

    /// A place for one more subscriber, if any is left.
    pub fn subscribe(self: &Arc<Hub>, protocol: Protocol) -> Result<Subscribed, Full> {
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full(self.max_subscribers))?;
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        let sent = Arc::new(AtomicU64::new(0));
        let number = {
            let mut positions = self.lock_positions();
            positions.next += 1;
            let number = positions.next;
            positions.sent.insert(number, (protocol, sent.clone()));
            number
        };
        Ok(Subscribed {
            hub: self.clone(),
            number,
            sent,
            _place: place,
            _open: self.open.token(),
        })
    }

    /// Runs a websocket session where sessions run. One that panics ends
    /// alone (its client sees the connection drop), said in the log.
    pub fn run_session<F>(&self, session: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let session = async move {
            if let Err(panic) =
                futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(session)).await
            {
                let message = stride_runtime::supervisor::panic_message(&*panic);
                tracing::error!(%message, "a stream session panicked");
            }
        };
        match &self.sessions {
            Some(runtime) => drop(runtime.spawn(session)),
            None => drop(tokio::spawn(session)),
        }
    }

    /// Each connected subscriber's protocol and the last seq it was sent.
    pub fn positions(&self) -> Vec<(Protocol, Seq)> {
        self.lock_positions()
            .sent
            .values()
            .map(|(protocol, sent)| (*protocol, Seq(sent.load(Ordering::Relaxed))))
            .collect()
    }

    fn lock_positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once the server is stopping.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stopping.clone().cancelled_owned()
    }

    /// The auth file was reloaded: every open stream checks its grant.
    pub fn auth_reloaded(&self) {
        self.auth_reloads.send_modify(|reloads| *reloads += 1);
    }

    /// Changes with every reload of the auth file.
    pub fn auth_reloads(&self) -> watch::Receiver<u64> {
        self.auth_reloads.subscribe()
    }

    /// Tells every subscriber to end; `stopped` resolves once they all have.
    pub fn stop(&self) {
        self.stopping.cancel();
        self.open.close();
    }

    pub async fn stopped(&self) {
        self.open.wait().await;
    }

    /// The head as subscribers are told it: at most one update per pace
    /// interval, which grows with the number of subscribers.
    pub fn paced_head(&self) -> watch::Receiver<Seq> {
        self.paced.subscribe()
    }

    /// The envelopes' stream messages (`event_text`), each rendered once for
    /// all subscribers when recent; one look at the rendered ones for all.
    pub fn render_all<E: std::ops::Deref<Target = Envelope>>(
        &self,
        envelopes: &[E],
    ) -> Vec<Utf8Bytes> {
        let rendered = self.rendered.read().unwrap_or_else(|p| p.into_inner());
        envelopes
            .iter()
            .map(|envelope| {
                envelope
                    .seq
                    .0
                    .checked_sub(rendered.first.0)
                    .and_then(|index| rendered.texts.get(usize::try_from(index).ok()?))
                    .cloned()
                    .unwrap_or_else(|| render(envelope))
            })
            .collect()
    }

    /// How long to gather events before waking the subscribers again.
    fn pace(&self) -> Duration {
        let subscribers = self.subscribers.load(Ordering::Relaxed) as u64;
        Duration::from_micros(subscribers * 1_000_000 / WAKEUPS_PER_SECOND).min(MAX_PACE)
    }

    /// Renders the events after the last rendered one, up to `head`.
    fn render_up_to(&self, projection: &Projection, head: Seq) {
        let from = {
            let rendered = self.rendered.read().unwrap_or_else(|p| p.into_inner());
            Seq(rendered.first.0 + rendered.texts.len() as u64)
        };
        // Absent from memory (a burst outran this task): subscribers render
        // those themselves.
        let fresh: Vec<Arc<Envelope>> = projection
            .recent(from, RENDERED)
            .unwrap_or_default()
            .into_iter()
            .take_while(|e| e.seq <= head)
            .collect();
        let Some(first_fresh) = fresh.first().map(|e| e.seq) else {
            return;
        };
        let texts: Vec<Utf8Bytes> = fresh.iter().map(|e| render(e)).collect();
        let mut rendered = self.rendered.write().unwrap_or_else(|p| p.into_inner());
        if first_fresh != from {
            rendered.first = first_fresh;
            rendered.texts.clear();
        }
        rendered.texts.extend(texts);
        let excess = rendered.texts.len().saturating_sub(RENDERED);
        rendered.texts.drain(..excess);
        rendered.first = Seq(rendered.first.0 + excess as u64);
    }
}

fn render(envelope: &Envelope) -> Utf8Bytes {
    Utf8Bytes::from(event_text(envelope))
}

/// Follows the projection's head, renders what is new and passes the head
/// on, no more often than the pace. An event arriving after a quiet spell
/// goes out at once. Ends when told, or with the hub or the projection.
fn pace(hub: std::sync::Weak<Hub>, projection: Arc<Projection>, stop: CancellationToken) {
    let mut head = projection.watch_head();
    let mut last_wake = Instant::now();
    let changed = |head: &mut watch::Receiver<Seq>| {
        futures::executor::block_on(async {
            tokio::select! {
                changed = head.changed() => changed.is_ok(),
                () = stop.cancelled() => false,
            }
        })
    };
    while changed(&mut head) {
        let Some(hub) = hub.upgrade() else { return };
        std::thread::sleep((last_wake + hub.pace()).saturating_duration_since(Instant::now()));
        let seq = *head.borrow_and_update();
        hub.render_up_to(&projection, seq);
        hub.paced.send_replace(seq);
        last_wake = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stride_core::projection::State;

    fn envelope(seq: u64) -> Arc<Envelope> {
        crate::stream::test_events::about("/a", seq)
    }

    fn config() -> StreamConfig {
        StreamConfig {
            ping_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            progress_interval: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn the_paced_head_follows_and_recent_events_come_rendered() {
        let projection = Arc::new(Projection::new(State::default()));
        let hub = Hub::start(config(), projection.clone(), 500, None, &Supervisor::new()).unwrap();
        let subscribers: Vec<_> = (0..500)
            .map(|_| hub.subscribe(Protocol::Websocket).unwrap())
            .collect();
        assert!(hub.subscribe(Protocol::Sse).is_err(), "500 is the most");
        subscribers[7].sent(Seq(3));
        let positions = hub.positions();
        assert_eq!(positions.len(), 500);
        assert_eq!(positions[7], (Protocol::Websocket, Seq(3)));
        assert_eq!(hub.pace(), Duration::from_millis(5));
        let mut paced = hub.paced_head();
        for seq in 1..=30 {
            crate::stream::test_events::publish(&projection, &[envelope(seq)]);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Thirty events a millisecond apart reach the subscribers in a few
        // wakeups, the last one with every event.
        let mut wakeups = 0;
        while *paced.borrow_and_update() < Seq(30) {
            paced.changed().await.unwrap();
            wakeups += 1;
        }
        assert!(wakeups <= 10, "{wakeups} wakeups for 30 events");
        let rendered = hub.rendered.read().unwrap();
        assert_eq!((rendered.first, rendered.texts.len()), (Seq(1), 30));
        drop(rendered);
        // The applied envelope's text, not this look-alike's (its id differs).
        let cached = hub.render_all(&[envelope(7)]).remove(0);
        assert!(cached.as_str().contains("\"seq\":7"));
        assert_ne!(cached.as_str(), render(&envelope(7)).as_str());
        drop(subscribers);
        assert!(hub.positions().is_empty(), "a gone subscriber is forgotten");
    }
}
