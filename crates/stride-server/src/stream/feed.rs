//! The gapless cursor every subscriber reads through.
//!
//! A feed keeps one number, the next seq to examine, and a view of the
//! head. Everything up to the head is durable, and is either among the
//! projection's recent events (subscribers at the live edge all share
//! those) or in the log (a subscriber that fell behind, however far, reads
//! pages of it). Nothing is ever dropped for a slow reader, and a
//! reconnecting one starts from any seq up to one past the head.
//!
//! The head a feed follows may be the projection's own or a paced copy
//! (`Hub::paced_head`), which wakes many subscribers together.
//!
//! `next` is cancel-safe: state changes only after each await completes, so
//! a caller may race it against timers in `select!`.

use super::Filter;
use crate::published::Projection;
use std::collections::VecDeque;
use std::sync::Arc;
use stride_log::event::{Envelope, Seq};
use stride_log::store::{EventLog, StoreError};
use tokio::sync::watch;

/// Events taken per read, from memory or from the log: large enough to
/// amortize the hop to the blocking pool, small enough to keep a slow
/// subscriber's memory bounded.
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
    head: watch::Receiver<Seq>,
    filter: Filter,
    /// The next seq to examine; everything before it has been delivered or
    /// filtered out.
    next: Seq,
    /// Read, not yet examined; always starts at `next`.
    backlog: VecDeque<Arc<Envelope>>,
    /// `Item::CaughtUp` was returned since the last log read began.
    reported: bool,
    /// The projection's head at open: a paced head may not have reached it
    /// yet, and the first `CaughtUp` must cover what existed then.
    opened_at: Seq,
}

/// What a feed yields.
#[derive(Debug)]
pub enum Item {
    Event(Arc<Envelope>),
    /// Every published event up to this seq has been examined: the
    /// subscriber is live. Yielded once per catch-up (at the start, and
    /// after reading the log), so a filtered subscriber learns it promptly.
    CaughtUp(Seq),
}

impl Feed {
    pub fn open(
        log: Arc<EventLog>,
        projection: Arc<Projection>,
        start: Start,
        filter: Filter,
    ) -> Result<Feed, FeedError> {
        let head = projection.head();
        let next = match start {
            Start::Now => head.next(),
            Start::At(from) if from > head.next() => {
                return Err(FeedError::BeyondHead { from, head });
            }
            Start::At(from) => from.max(Seq(1)),
        };
        Ok(Feed {
            head: projection.watch_head(),
            log,
            projection,
            filter,
            next,
            backlog: VecDeque::new(),
            reported: false,
            opened_at: head,
        })
    }

    /// Follows `head` (a paced copy of the projection's) instead of the
    /// projection's own.
    pub fn following(mut self, head: watch::Receiver<Seq>) -> Feed {
        self.head = head;
        self
    }

    /// The last seq examined: the subscriber has seen every matching event
    /// up to here, and resumes with `from = position + 1`.
    pub fn position(&self) -> Seq {
        Seq(self.next.0 - 1)
    }

    /// The next matching durable event, or news of having caught up.
    pub async fn next(&mut self) -> Result<Item, FeedError> {
        loop {
            if let Some(found) = self.examine_backlog() {
                return Ok(Item::Event(found));
            }
            let head = *self.head.borrow_and_update();
            if self.next <= head {
                if !self.take_recent(head)? {
                    self.reported = false;
                    self.read_log(head).await?;
                }
                continue;
            }
            if !self.reported && self.next > self.opened_at {
                self.reported = true;
                return Ok(Item::CaughtUp(self.position()));
            }
            self.head.changed().await.map_err(|_| FeedError::Closed)?;
        }
    }

    /// The next matching event if one is at hand without waiting or reading
    /// the log, so a writer can batch what is ready before flushing.
    pub fn ready(&mut self) -> Option<Arc<Envelope>> {
        loop {
            if let Some(found) = self.examine_backlog() {
                return Some(found);
            }
            let head = *self.head.borrow();
            if self.next > head || !matches!(self.take_recent(head), Ok(true)) {
                return None;
            }
        }
    }

    fn examine_backlog(&mut self) -> Option<Arc<Envelope>> {
        while let Some(envelope) = self.backlog.pop_front() {
            // Examined in order from `next`, so each one advances it.
            self.next = envelope.seq.next();
            if self.filter.matches(&envelope) {
                return Some(envelope);
            }
        }
        None
    }

    /// Moves a page of `next..=until` from the projection's recent events
    /// into the backlog; false when they are no longer kept in memory.
    fn take_recent(&mut self, until: Seq) -> Result<bool, FeedError> {
        let Some(page) = self.projection.recent(self.next, PAGE) else {
            return Ok(false);
        };
        let before = self.backlog.len();
        self.backlog
            .extend(page.into_iter().take_while(|e| e.seq <= until));
        if self.backlog.len() == before {
            // Published, yet neither kept nor older than what is kept.
            return Err(FeedError::Gap(self.next));
        }
        Ok(true)
    }

    /// Reads up to a page of `next..=until` from the log into the backlog.
    /// Every seq up to `until` is published, so it must be there.
    async fn read_log(&mut self, until: Seq) -> Result<(), FeedError> {
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
    use futures::FutureExt;
    use stride_core::projection::State;
    use stride_log::store::LogWriter;

    fn envelope(seq: u64) -> Arc<Envelope> {
        let app = if seq % 2 == 0 { "/even/a" } else { "/odd/a" };
        crate::stream::test_events::about(app, seq)
    }

    /// Appends as the committer does: write, sync, then publish.
    fn append(log: &LogWriter, projection: &Projection, seqs: std::ops::RangeInclusive<u64>) {
        let batch: Vec<_> = seqs.map(envelope).collect();
        log.append(&batch, &[]).unwrap();
        log.sync().unwrap();
        crate::stream::test_events::publish(projection, &batch);
    }

    fn setup() -> (tempfile::TempDir, LogWriter, Arc<Projection>) {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path()).unwrap();
        let projection = Arc::new(Projection::new(State::default()));
        (dir, log, projection)
    }

    #[tokio::test]
    async fn a_feed_left_behind_the_kept_events_reads_the_log_and_skips_nothing() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=100);
        let mut feed = Feed::open(
            log.reader(),
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
        let mut feed = Feed::open(log.reader(), projection, Start::At(Seq(1)), filter).unwrap();
        assert_eq!(seqs(&mut feed, 5).await, vec![2, 4, 6, 8, 10]);
        assert!(matches!(
            feed.next().await.unwrap(),
            Item::CaughtUp(Seq(10))
        ));
    }

    #[tokio::test]
    async fn ready_hands_over_live_events_without_waiting_and_never_reads_the_log() {
        let (_dir, log, _) = setup();
        // Durable before this projection started: in the log only.
        let batch: Vec<_> = (1..=2).map(envelope).collect();
        log.append(&batch, &[]).unwrap();
        log.sync().unwrap();
        let state = crate::published::load(&log, None).unwrap();
        let projection = Arc::new(Projection::new(state));
        let mut feed = Feed::open(
            log.reader(),
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
    async fn a_feed_following_a_paced_head_delivers_only_up_to_it() {
        let (_dir, log, projection) = setup();
        let (paced, paced_rx) = watch::channel(Seq(0));
        let mut feed = Feed::open(
            log.reader(),
            projection.clone(),
            Start::Now,
            Filter::default(),
        )
        .unwrap()
        .following(paced_rx);
        append(&log, &projection, 1..=6);
        assert!(feed.ready().is_none(), "the paced head is still 0");
        paced.send_replace(Seq(4));
        assert_eq!(seqs(&mut feed, 4).await, vec![1, 2, 3, 4]);
        assert!(feed.ready().is_none());
        paced.send_replace(Seq(6));
        assert_eq!(seqs(&mut feed, 2).await, vec![5, 6]);
    }

    #[tokio::test]
    async fn caught_up_waits_for_what_existed_at_open_even_behind_a_paced_head() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=6);
        let (paced, paced_rx) = watch::channel(Seq(4));
        let mut feed = Feed::open(
            log.reader(),
            projection,
            Start::At(Seq(1)),
            Filter::default(),
        )
        .unwrap()
        .following(paced_rx);
        assert_eq!(seqs(&mut feed, 4).await, vec![1, 2, 3, 4]);
        // Seqs 5-6 existed at open: not caught up until they are sent.
        assert!(feed.next().now_or_never().is_none());
        paced.send_replace(Seq(6));
        assert_eq!(seqs(&mut feed, 2).await, vec![5, 6]);
        assert!(matches!(feed.next().await.unwrap(), Item::CaughtUp(Seq(6))));
    }

    #[tokio::test]
    async fn from_is_checked_against_the_head() {
        let (_dir, log, projection) = setup();
        append(&log, &projection, 1..=3);
        let open = |start| Feed::open(log.reader(), projection.clone(), start, Filter::default());
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
