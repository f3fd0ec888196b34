//! The gapless cursor every subscriber reads through.
//!
//! The live broadcast alone loses events (it drops the oldest for a
//! receiver that lags), and the log alone would make every subscriber poll.
//! So a feed subscribes to the broadcast *before* reading the head, replays
//! the log up to that head, then takes live events, dropping seqs it has
//! already delivered. When the broadcast reports a lag, or shows an event
//! beyond the next expected seq, the feed reads the missing range from the
//! log. It only ever reads up to a seq the projection has published, so it
//! never sends an event that is not yet durable.
//!
//! `next` is cancel-safe: state changes only after each await completes, so
//! a caller may race it against timers in `select!`.

use super::Filter;
use crate::event::{Envelope, Seq};
use crate::projection::Projection;
use crate::store::{EventLog, StoreError};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

/// Events read from the log per blocking read: large enough to amortize the
/// hop to the blocking pool, small enough to keep a slow subscriber's memory
/// bounded.
const PAGE: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("from={from} is beyond the head of the log ({head}); at most {} is allowed", head.next())]
    BeyondHead { from: Seq, head: Seq },
    #[error("reading the log failed")]
    Store(#[from] StoreError),
    #[error("the log has no event {0} although a later one is published")]
    Gap(Seq),
    #[error("a log reader failed")]
    Reader(#[from] tokio::task::JoinError),
    #[error("the server is stopping")]
    Closed,
}

/// Where a feed starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// This seq (1 for the whole log); at most one past the head.
    At(Seq),
    /// The first event appended after subscribing.
    Now,
}

pub struct Feed {
    log: Arc<EventLog>,
    projection: Arc<Projection>,
    live: broadcast::Receiver<Arc<Envelope>>,
    filter: Filter,
    /// The next seq to examine; everything before it has been delivered or
    /// filtered out.
    next: Seq,
    /// Read from the log, not yet examined; always starts at `next`.
    backlog: VecDeque<Arc<Envelope>>,
    /// A live event beyond `next`, held while the log fills the gap.
    ahead: Option<Arc<Envelope>>,
    /// The log holds published events the broadcast will not deliver.
    catching_up: bool,
    /// `Item::CaughtUp` was returned since the last catch-up began.
    reported: bool,
}

/// What a feed yields.
#[derive(Debug)]
pub enum Item {
    Event(Arc<Envelope>),
    /// Every published event up to this seq has been examined: the
    /// subscriber is live. Yielded once per catch-up (at the start, and
    /// after a lag), so a filtered subscriber learns it promptly.
    CaughtUp(Seq),
}

impl Feed {
    pub fn open(
        log: Arc<EventLog>,
        projection: Arc<Projection>,
        start: Start,
        filter: Filter,
    ) -> Result<Feed, FeedError> {
        // Subscribe first: whatever is published after this is in `live`,
        // whatever before is at or below `head` and in the log.
        let live = projection.follow();
        let head = projection.head();
        let next = match start {
            Start::Now => head.next(),
            Start::At(from) if from > head.next() => {
                return Err(FeedError::BeyondHead { from, head });
            }
            Start::At(from) => from.max(Seq(1)),
        };
        Ok(Feed {
            log,
            projection,
            live,
            filter,
            next,
            backlog: VecDeque::new(),
            ahead: None,
            catching_up: next <= head,
            reported: false,
        })
    }

    /// The last seq examined: the subscriber has seen every matching event
    /// up to here, and resumes with `from = position + 1`.
    pub fn position(&self) -> Seq {
        Seq(self.next.0 - 1)
    }

    /// The next matching durable event, or news of having caught up.
    pub async fn next(&mut self) -> Result<Item, FeedError> {
        loop {
            if let Some(envelope) = self.backlog.pop_front() {
                if let Some(found) = self.take(envelope) {
                    return Ok(Item::Event(found));
                }
                continue;
            }
            if let Some(live) = self.ahead.take() {
                if live.seq > self.next {
                    let until = Seq(live.seq.0 - 1);
                    self.ahead = Some(live);
                    self.fill(until).await?;
                } else if let Some(found) = self.take(live) {
                    return Ok(Item::Event(found));
                }
                continue;
            }
            if self.catching_up {
                let head = self.projection.head();
                if self.next <= head {
                    self.fill(head).await?;
                    continue;
                }
                self.catching_up = false;
            }
            if !self.reported {
                self.reported = true;
                return Ok(Item::CaughtUp(self.position()));
            }
            match self.live.recv().await {
                Ok(envelope) => self.ahead = Some(envelope),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, next = %self.next, "subscriber lagged; reading the log");
                    self.catching_up = true;
                    self.reported = false;
                }
                Err(RecvError::Closed) => return Err(FeedError::Closed),
            }
        }
    }

    /// The next matching event if one is at hand without waiting or reading
    /// the log, so a writer can batch what is ready before flushing.
    pub fn ready(&mut self) -> Option<Arc<Envelope>> {
        loop {
            if let Some(envelope) = self.backlog.pop_front() {
                match self.take(envelope) {
                    Some(found) => return Some(found),
                    None => continue,
                }
            }
            if let Some(live) = self.ahead.take() {
                if live.seq > self.next {
                    self.ahead = Some(live);
                    return None;
                }
                match self.take(live) {
                    Some(found) => return Some(found),
                    None => continue,
                }
            }
            if self.catching_up {
                return None;
            }
            match self.live.try_recv() {
                Ok(envelope) => self.ahead = Some(envelope),
                Err(TryRecvError::Lagged(_)) => {
                    self.catching_up = true;
                    self.reported = false;
                    return None;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return None,
            }
        }
    }

    /// Examines `envelope`: drops a seq already passed, else advances past it
    /// and returns it when it matches.
    fn take(&mut self, envelope: Arc<Envelope>) -> Option<Arc<Envelope>> {
        if envelope.seq < self.next {
            return None;
        }
        self.next = envelope.seq.next();
        self.filter.matches(&envelope).then_some(envelope)
    }

    /// Reads up to a page of `next..=until` from the log into the backlog.
    /// Every seq up to `until` is published, so it must be there.
    async fn fill(&mut self, until: Seq) -> Result<(), FeedError> {
        let from = self.next;
        let log = self.log.clone();
        let page = tokio::task::spawn_blocking(move || {
            log.iter_from(from)
                .take_while(|item| item.as_ref().map_or(true, |e| e.seq <= until))
                .take(PAGE)
                .collect::<Result<Vec<_>, _>>()
        })
        .await??;
        let mut expected = from;
        for envelope in &page {
            if envelope.seq != expected {
                return Err(FeedError::Gap(expected));
            }
            expected = expected.next();
        }
        if page.is_empty() {
            return Err(FeedError::Gap(from));
        }
        self.backlog.extend(page.into_iter().map(Arc::new));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, AppDeleted, AppId, Event};
    use crate::projection::State;

    fn envelope(seq: u64) -> Arc<Envelope> {
        let app = if seq % 2 == 0 { "/even/a" } else { "/odd/a" };
        Arc::new(Envelope {
            seq: Seq(seq),
            id: uuid::Uuid::now_v7(),
            recorded_at: seq,
            actor: Actor::Reconciler,
            command_id: uuid::Uuid::now_v7(),
            event: Event::AppDeleted(AppDeleted {
                app: AppId::from(app),
            }),
        })
    }

    /// Appends as the committer does: write, sync, then publish.
    fn append(log: &EventLog, projection: &Projection, seqs: std::ops::RangeInclusive<u64>) {
        let batch: Vec<_> = seqs.map(envelope).collect();
        log.append(&batch, &[]).unwrap();
        log.sync().unwrap();
        projection.apply(&batch);
    }

    fn setup() -> (tempfile::TempDir, Arc<EventLog>, Arc<Projection>) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(dir.path()).unwrap());
        let projection = Arc::new(Projection::new(State::default()));
        (dir, log, projection)
    }

    #[tokio::test]
    async fn a_feed_that_lags_past_the_broadcast_reads_the_log_and_skips_nothing() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=100);
        let mut feed = Feed::open(
            log.clone(),
            projection.clone(),
            Start::At(Seq(50)),
            Filter::default(),
        )
        .unwrap();
        // Far more than the broadcast buffers, while the feed reads nothing.
        let total = 40_000;
        for first in (101..=total).step_by(1_000) {
            append(&log, &projection, first..=(first + 999).min(total));
        }
        let mut expected = 50;
        while expected <= total {
            match feed.next().await.unwrap() {
                Item::Event(e) => {
                    assert_eq!(e.seq, Seq(expected));
                    expected += 1;
                }
                // Once at the start, and maybe after the lag.
                Item::CaughtUp(seq) => assert_eq!(seq, Seq(expected - 1)),
            }
        }
        assert!(matches!(
            feed.next().await.unwrap(),
            Item::CaughtUp(Seq(40_000))
        ));
        append(&log, &projection, total + 1..=total + 1);
        assert_eq!(seqs(&mut feed, 1).await, vec![total + 1]);
    }

    #[tokio::test]
    async fn a_filtered_feed_still_advances_its_position() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=10);
        let mut filter = Filter::default();
        filter.set_app("/even/").unwrap();
        let mut feed = Feed::open(log, projection, Start::At(Seq(1)), filter).unwrap();
        assert_eq!(seqs(&mut feed, 5).await, vec![2, 4, 6, 8, 10]);
        assert!(matches!(
            feed.next().await.unwrap(),
            Item::CaughtUp(Seq(10))
        ));
    }

    #[tokio::test]
    async fn ready_hands_over_live_events_without_waiting_and_never_reads_the_log() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=2);
        let mut feed = Feed::open(
            log.clone(),
            projection.clone(),
            Start::At(Seq(1)),
            Filter::default(),
        )
        .unwrap();
        assert!(feed.ready().is_none(), "seqs 1-2 need a log read");
        assert_eq!(seqs(&mut feed, 2).await, vec![1, 2]);
        assert!(matches!(feed.next().await.unwrap(), Item::CaughtUp(Seq(2))));
        append(&log, &projection, 3..=5);
        let ready: Vec<u64> = std::iter::from_fn(|| feed.ready())
            .map(|e| e.seq.0)
            .collect();
        assert_eq!(ready, vec![3, 4, 5]);
        assert_eq!(feed.position(), Seq(5));
    }

    #[tokio::test]
    async fn from_is_checked_against_the_head() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=3);
        let open = |start| Feed::open(log.clone(), projection.clone(), start, Filter::default());
        assert!(open(Start::At(Seq(4))).is_ok());
        assert!(matches!(
            open(Start::At(Seq(5))),
            Err(FeedError::BeyondHead { .. })
        ));
        assert_eq!(open(Start::Now).unwrap().position(), Seq(3));
    }

    /// The next `n` events' seqs, skipping catch-up news.
    async fn seqs(feed: &mut Feed, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while out.len() < n {
            if let Item::Event(e) = feed.next().await.unwrap() {
                out.push(e.seq.0);
            }
        }
        out
    }
}
