//! Applying the replicated log to the local one: batches after the local
//! head, in seq order, each checked (its checksums, its seqs continuing the
//! head), synced, then published; so a standby's projection, stream and
//! reads follow the leader's seqs exactly. A store behind the oldest batch
//! ZooKeeper still holds (a new instance, or one long gone) first copies
//! the seqs before it from a peer (`GET /v1/replica`), up to exactly the
//! seq before that batch, so the replicated log continues it.

use crate::committer::Snapshotter;
use crate::published::Projection;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use stride_log::event::Seq;
use stride_log::store::replica::{self, ReplicatedBatch};
use stride_log::store::{LogWriter, StoreError};
use stride_zk::{BatchId, Zk, ZkError};

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Zk(#[from] ZkError),
    #[error("cannot apply the replicated log to the local store")]
    Store(#[from] StoreError),
    /// The batches this store needs next were trimmed, and no peer had them.
    #[error(
        "the replicated log was trimmed past this store (it holds seq {head}, the oldest batch starts at {oldest}) and no other instance could serve the seqs between"
    )]
    Trimmed { head: Seq, oldest: Seq },
}

/// A pause when ZooKeeper's answer was lost: the session may recover.
const RETRY: Duration = Duration::from_millis(200);

/// What applies the replicated log to this instance's store.
pub(super) struct Follower<'a> {
    pub zk: &'a Zk,
    /// This instance's id and URL (not a peer to copy from).
    pub instance: &'a str,
    pub url: &'a str,
    /// Sends `--peer-token-file`'s token (if `peer_token`), trusts `--ca-file`.
    pub peers: &'a reqwest::Client,
    pub peer_token: bool,
    pub log: &'a Arc<LogWriter>,
    pub projection: &'a Arc<Projection>,
    /// Held while a batch is written and published (see `write`); holds
    /// the generation of the follower that may write (`supersede`).
    pub applying: &'a Arc<std::sync::Mutex<u64>>,
    /// This follower's generation.
    pub generation: u64,
    /// Told of each new head, as the leader's committer tells it.
    pub snapshots: &'a Arc<Snapshotter>,
}

/// Seqs asked of a peer at a time.
const PEER_PAGE: u64 = 10_000;

impl Follower<'_> {
    /// Applies every batch the replicated log holds after the local head;
    /// returns the head after them.
    pub async fn catch_up(&self) -> Result<Seq, FollowError> {
        let batches = self.zk.batches().await?;
        self.apply(&batches).await
    }

    /// Follows the replicated log (ends only with an error), recording
    /// after each step how far this instance has applied.
    pub async fn follow(&self) -> FollowError {
        let zk = self.zk;
        loop {
            let (batches, watch) = match zk.watch_batches().await {
                Ok(watched) => watched,
                Err(ZkError::Unknown { .. }) => {
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
                Err(error) => return error.into(),
            };
            let applied = match self.apply(&batches).await {
                Ok(head) => record(zk, self.instance, head)
                    .await
                    .map_err(FollowError::from),
                Err(error) => Err(error),
            };
            match applied {
                Ok(()) => watch.changed().await,
                Err(FollowError::Zk(ZkError::Unknown { .. })) => tokio::time::sleep(RETRY).await,
                Err(error) => return error,
            }
        }
    }

    async fn apply(&self, held: &[BatchId]) -> Result<Seq, FollowError> {
        let (zk, log) = (self.zk, self.log);
        let mut head = blocking(log, |log| log.head()).await?;
        // Batches are applied whole, so the next one starts at head + 1. One
        // of idempotency records alone starts there too, and is applied again
        // until the head passes it (the same records: no change).
        let Some(from) = held.iter().position(|batch| batch.first > head.0) else {
            return Ok(head);
        };
        if held[from].first > head.next().0 {
            head = self
                .copy_from_peers(head, Seq(held[from].first - 1))
                .await?;
        }
        let mut batches = Vec::new();
        for id in &held[from..] {
            let trimmed = FollowError::Trimmed {
                head,
                oldest: Seq(id.first),
            };
            if id.first != head.next().0 {
                return Err(trimmed);
            }
            let Some(bytes) = zk.batch(id).await? else {
                return Err(trimmed);
            };
            let batch = replica::decode_batch(Seq(id.first), &bytes)?;
            head = batch.last().unwrap_or(head);
            batches.push(batch);
        }
        // What the store holds once written, not what was read: the mark
        // trimming trusts must never run ahead of the store.
        Ok(write(self, batches).await?)
    }

    /// Copies seqs after `head` through `until` from another instance;
    /// returns `until`, or `Trimmed` if none could serve them.
    async fn copy_from_peers(&self, mut head: Seq, until: Seq) -> Result<Seq, FollowError> {
        tracing::warn!(%head, %until, "the replicated log no longer holds what this store needs next; copying it from a peer");
        for (id, url) in self.zk.members().await? {
            if id == self.instance || url == self.url {
                continue;
            }
            while head < until {
                let page = Seq(until.0.min(head.0 + PEER_PAGE));
                match fetch(self, &url, head.next(), page).await {
                    Ok(batch) if batch.last().is_some() => {
                        head = write(self, vec![batch]).await?;
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(peer = %url, %error, "cannot copy the log from a peer");
                        break;
                    }
                }
            }
            if head == until {
                return Ok(head);
            }
        }
        Err(FollowError::Trimmed {
            head,
            oldest: until.next(),
        })
    }
}

/// `GET {url}/v1/replica`: seqs `from` through `to` as the peer has them,
/// checked (checksums, seqs dense from `from`).
async fn fetch(
    follower: &Follower<'_>,
    url: &str,
    from: Seq,
    to: Seq,
) -> Result<ReplicatedBatch, String> {
    let answer = follower
        .peers
        .get(format!("{url}/v1/replica?from={}&to={}", from.0, to.0))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let sent = match follower.peer_token {
            true => "it refused the token of --peer-token-file",
            false => {
                "it refused a request without a token (this instance has no --peer-token-file)"
            }
        };
        return Err(format!(
            "{sent} ({status}): give every instance --peer-token-file naming a token \
             the auth file grants admin on / (docs/security.md)"
        ));
    }
    if !status.is_success() {
        return Err(format!("it answered {status}"));
    }
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    replica::decode_batch(from, &bytes).map_err(|e| e.to_string())
}

/// Writes batches that continue the local log, syncs, then publishes them,
/// as one unit on a blocking thread under `applying`; returns the store's
/// head after them. A follower dropped midway (a new session, a win) never
/// leaves a batch written but not published, and two never interleave.
/// The write of a follower superseded meanwhile does nothing: once an
/// instance leads, its committer alone writes and publishes, and a stale
/// publish would take the projection back. Batches the log already holds
/// are skipped.
async fn write(follower: &Follower<'_>, batches: Vec<ReplicatedBatch>) -> Result<Seq, StoreError> {
    let target = Target {
        projection: follower.projection.clone(),
        applying: follower.applying.clone(),
        snapshots: follower.snapshots.clone(),
        generation: follower.generation,
    };
    blocking(follower.log, move |log| write_now(log, &target, batches)).await
}

/// What `write` publishes to, and the generation it writes as.
struct Target {
    projection: Arc<Projection>,
    applying: Arc<std::sync::Mutex<u64>>,
    snapshots: Arc<Snapshotter>,
    generation: u64,
}

fn write_now(
    log: &LogWriter,
    target: &Target,
    batches: Vec<ReplicatedBatch>,
) -> Result<Seq, StoreError> {
    let current = target.applying.lock().unwrap_or_else(|p| p.into_inner());
    let head = log.head()?;
    let fresh: Vec<ReplicatedBatch> = batches
        .into_iter()
        .filter(|b| b.first().is_none_or(|first| first > head))
        .collect();
    if *current != target.generation || fresh.is_empty() {
        return Ok(head);
    }
    for batch in &fresh {
        log.append_replicated(batch)?;
    }
    log.sync()?;
    log.seal()?;
    publish(&target.projection, &fresh);
    target.snapshots.maybe_take(target.projection.head());
    log.head()
}

/// Makes every follower made before this call write nothing more; returns
/// the generation of the next one.
pub(super) fn supersede(applying: &std::sync::Mutex<u64>) -> u64 {
    let mut current = applying.lock().unwrap_or_else(|p| p.into_inner());
    *current += 1;
    *current
}

fn publish(projection: &Projection, batches: &[ReplicatedBatch]) {
    let mut state = stride_core::projection::State::clone(&projection.read());
    let events: Vec<_> = batches
        .iter()
        .flat_map(|b| b.events.iter().cloned())
        .collect();
    for event in &events {
        state.apply(event);
    }
    projection.publish(Arc::new(state), &events);
}

async fn blocking<T: Send + 'static>(
    log: &Arc<LogWriter>,
    work: impl FnOnce(&LogWriter) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || work(&log))
        .await
        .expect("a store task does not panic")
}

/// Tells ZooKeeper how far this store has applied (trimming waits for it).
pub(super) async fn record(zk: &Zk, instance: &str, head: Seq) -> Result<(), ZkError> {
    match zk.mark_applied(instance, head.0).await {
        Err(ZkError::Unknown { .. }) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committer::tests::created;
    use crate::metrics::Metrics;
    use stride_runtime::Supervisor;

    #[test]
    fn a_follower_superseded_by_a_win_writes_and_publishes_nothing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = LogWriter::open(dir.path()).expect("a store");
        let projection = Arc::new(Projection::new(Default::default()));
        let (snapshots, _thread) = Snapshotter::start(
            log.reader(),
            projection.clone(),
            1_000_000,
            &Metrics::off(),
            &Supervisor::new(),
        )
        .expect("a snapshotter");
        let snapshots = Arc::new(snapshots);
        let applying = Arc::new(std::sync::Mutex::new(0));
        let target = |generation| Target {
            projection: projection.clone(),
            applying: applying.clone(),
            snapshots: snapshots.clone(),
            generation,
        };
        let batch = || ReplicatedBatch {
            events: vec![Arc::new(created(1))],
            idempotency: Vec::new(),
        };
        let standby = supersede(&applying);
        // Won: the leader's follower supersedes the standby's, whose batch
        // read before the win may still be on its way to the store.
        let leading = supersede(&applying);
        let published = projection.watch_head();
        let head = write_now(&log, &target(standby), vec![batch()]).expect("no error");
        assert_eq!(head, Seq(0));
        assert_eq!(log.head().expect("a head"), Seq(0), "written");
        assert_eq!(projection.head(), Seq(0), "published");
        assert!(!published.has_changed().expect("a head"), "published");
        let head = write_now(&log, &target(leading), vec![batch()]).expect("written");
        assert_eq!(head, Seq(1));
        assert_eq!(projection.head(), Seq(1));
    }
}
