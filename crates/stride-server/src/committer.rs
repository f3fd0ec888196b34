//! The single write path, with group commit.
//!
//! Two threads form a pipeline. The decide thread drains every waiting
//! command, decides each against the state, folds the events it makes into
//! it (the only fold on the write path), assigns dense seqs and writes the
//! batch to sled in one transaction; the batch carries an immutable copy of
//! the state after it (persistent maps: the copy shares every node). The
//! sync thread makes everything written so far durable with one flush +
//! fdatasync, then publishes the newest of those states with their events,
//! and replies. While one batch is being synced the next is being decided,
//! so concurrent writers share fsyncs and throughput grows with
//! concurrency. Once no batch has come for `SEAL_AFTER`, the sync thread
//! seals the watermark (see `store/watermark.rs`).
//!
//! With high availability (`--zk`), the decide thread first writes each
//! batch to the replicated log (`Replicate`, fenced by the leader's epoch),
//! split at command boundaries under ZooKeeper's node limit, and only then
//! to sled: the local log stays a prefix of the replicated one. Once a
//! replicated write fails the committer is deposed: it answers every later
//! command "not the leader" and decides nothing more, since its state may
//! hold events nobody has.
//!
//! Only a failed append or sync stops the process: a read that fails (say,
//! for want of descriptors) fails the one command that needed it. Its
//! threads are parts of the process's `Supervisor`; `drain` stops it in
//! order: what was submitted is decided, synced and answered, the
//! watermark sealed, and nothing more is taken.

use crate::metrics::{Ack, Metrics, Phase};
use crate::published::Projection;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as sync_mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use stride_core::command::{Command, Outcome, Rejection, Settings, decide};
use stride_core::projection::{State, snapshot};
use stride_log::event::{Actor, Envelope, Seq};
use stride_log::store::{CommandRecord, EventLog, LogWriter, RequestDigest, StoreError, replica};
use stride_runtime::clock::now_micros;
use stride_runtime::{Part, Supervisor};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Commands decided per batch at most; bounds the latency of a batch.
const MAX_BATCH: usize = 4096;
/// Batches written but not yet synced; the decide thread waits beyond this.
const MAX_UNSYNCED_BATCHES: usize = 4;
/// Idle this long, the sync thread records in the watermark that the last
/// batch was acknowledged.
const SEAL_AFTER: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{}", .0.message)]
    Rejected(Rejection),
    #[error("the committer has stopped")]
    Stopped,
    #[error("{0}")]
    Unreadable(String),
    /// High availability: this instance does not (or no longer) lead;
    /// nothing was written, or (said so) the outcome is unknown.
    #[error("{0}")]
    NotLeader(String),
    #[error("{0}")]
    TooLarge(String),
}

/// The replicated log a leader writes each batch to before its own store.
pub trait Replicate: Send + Sync {
    /// The largest encoded batch it takes.
    fn limit(&self) -> usize;

    /// Writes the encoded batch beginning at seq `first`, fenced by the
    /// leader's epoch; blocks until ZooKeeper has it (a quorum) or refuses.
    fn replicate(&self, first: Seq, batch: &[u8]) -> Result<(), ReplicaError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Nothing was written and nothing more will be: another instance leads.
    #[error("deposed: {0}")]
    Deposed(String),
    /// The write may or may not have landed.
    #[error("{0}")]
    Unknown(String),
}

/// An `Idempotency-Key` and the digest of the request that carried it: a
/// retry must be the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub request: RequestDigest,
}

struct Submission {
    actor: Actor,
    idempotency: Option<Idempotency>,
    command: Command,
    reply: ReplyTo,
    /// When it was submitted (metrics on).
    submitted: Option<Instant>,
}

/// Where a command's answer goes, stamped when it is sent: the wait from
/// then until the writer's task runs again is the API runtime's
/// (`Phase::Wake`), not the committer's.
struct ReplyTo(oneshot::Sender<(Result<Outcome, SubmitError>, Instant)>);

impl ReplyTo {
    fn send(self, answer: Result<Outcome, SubmitError>) {
        // A writer that gave up waiting has nobody to tell.
        let _ = self.0.send((answer, Instant::now()));
    }
}

/// What a committer works on.
pub struct Parts {
    /// The log's one writer; with high availability the instance's role
    /// shares it, appending replicated batches only while no committer runs.
    pub log: Arc<LogWriter>,
    /// Its state must be the log's head.
    pub projection: Arc<Projection>,
    pub settings: Settings,
    /// With high availability the instance's own, outliving each term it
    /// leads: its standby takes snapshots of what it applies too.
    pub snapshots: Arc<Snapshotter>,
}

/// The handle every writer uses; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    /// Taken by `drain`: once every sender is gone, the decide thread has
    /// seen every submission and ends.
    tx: Arc<RwLock<Option<mpsc::Sender<Submission>>>>,
    metrics: Metrics,
    /// Its threads, in the order they end when drained.
    parts: Arc<[Part]>,
    /// A high-availability standby's handle: without a pipeline, it
    /// answers "not the leader" rather than "stopping".
    standby: bool,
}

impl Committer {
    /// Starts the pipeline from the projection's state, which must be the
    /// log's head; `settings` is what every decision may depend on. It
    /// takes the log's one writer: nothing else can append.
    pub fn start(
        log: LogWriter,
        projection: Arc<Projection>,
        snapshot_every: u64,
        settings: Settings,
        metrics: &Metrics,
        supervisor: &Supervisor,
    ) -> Result<Committer, StoreError> {
        let log = Arc::new(log);
        let (snapshots, snapshotter) = Snapshotter::start(
            log.reader(),
            projection.clone(),
            snapshot_every,
            metrics,
            supervisor,
        )?;
        let parts = Parts {
            log,
            projection,
            settings,
            snapshots: Arc::new(snapshots),
        };
        Committer::start_with(parts, None, Some(snapshotter), metrics, supervisor)
    }

    /// As `start`, for a leader whose batches go to `replica` first.
    pub fn start_replicated(
        parts: Parts,
        replica: Arc<dyn Replicate>,
        metrics: &Metrics,
        supervisor: &Supervisor,
    ) -> Result<Committer, StoreError> {
        Committer::start_with(parts, Some(replica), None, metrics, supervisor)
    }

    /// `snapshotter`: the thread of `parts.snapshots`, if this committer
    /// owns it (it then ends once the sync thread has).
    fn start_with(
        parts: Parts,
        replica: Option<Arc<dyn Replicate>>,
        snapshotter: Option<Part>,
        metrics: &Metrics,
        supervisor: &Supervisor,
    ) -> Result<Committer, StoreError> {
        let Parts {
            log,
            projection,
            settings,
            snapshots,
        } = parts;
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let (batches_tx, batches_rx) = sync_mpsc::sync_channel(MAX_UNSYNCED_BATCHES);
        let last_at = match log.head()? {
            Seq(0) => 0,
            head => log.get(head)?.map_or(0, |e| e.recorded_at),
        };
        let decider = Decider {
            log: log.clone(),
            state: State::clone(&projection.read()),
            settings,
            last_at,
            replica,
            deposed: None,
            metrics: metrics.clone(),
        };
        let path = log.path().to_owned();
        let decide = supervisor
            .spawn_thread("committer (decide)", move |_| {
                decider.run(rx, batches_tx);
                Ok::<(), Infallible>(())
            })
            .map_err(|source| thread_error(&path, "cannot start the decide thread", source))?;
        let synced = metrics.clone();
        let sync = supervisor
            .spawn_thread("committer (sync)", move |_| {
                sync_loop(&log, &projection, &snapshots, &synced, batches_rx);
                Ok::<(), Infallible>(())
            })
            .map_err(|source| thread_error(&path, "cannot start the sync thread", source))?;
        Ok(Committer {
            tx: Arc::new(RwLock::new(Some(tx))),
            metrics: metrics.clone(),
            parts: [decide, sync].into_iter().chain(snapshotter).collect(),
            standby: false,
        })
    }

    /// The handle the API of a high-availability instance holds: it takes
    /// commands only while `attach`ed to a leader's pipeline.
    pub fn standby(metrics: &Metrics) -> Committer {
        Committer {
            tx: Arc::new(RwLock::new(None)),
            metrics: metrics.clone(),
            parts: Arc::new([]),
            standby: true,
        }
    }

    /// Sends this handle's commands to `leading`'s pipeline.
    pub fn attach(&self, leading: &Committer) {
        let tx = leading.tx.read().unwrap_or_else(|p| p.into_inner()).clone();
        *self.tx.write().unwrap_or_else(|p| p.into_inner()) = tx;
    }

    /// Sends them nowhere again (before the leader's pipeline drains).
    pub fn detach(&self) {
        self.tx.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Takes no more commands; resolves once everything submitted before
    /// is durable and answered, the watermark sealed and the threads gone.
    pub async fn drain(&self) {
        for part in self.parts.iter() {
            part.stop();
        }
        self.tx.write().unwrap_or_else(|p| p.into_inner()).take();
        for part in self.parts.iter() {
            part.ended().await;
        }
    }

    /// Decides, appends and syncs `command`; returns once its events are
    /// durable and applied. A retry of the same request with the same
    /// idempotency key appends nothing and returns the first attempt's
    /// events; another request with that key is rejected.
    pub async fn submit(
        &self,
        actor: Actor,
        idempotency: Option<Idempotency>,
        command: Command,
    ) -> Result<Outcome, SubmitError> {
        let started = self.metrics.start();
        let (reply, answer) = oneshot::channel();
        let submission = Submission {
            actor,
            idempotency,
            command,
            reply: ReplyTo(reply),
            submitted: started,
        };
        let tx = self.tx.read().unwrap_or_else(|p| p.into_inner()).clone();
        let sent = match tx {
            Some(tx) => tx.send(submission).await.is_ok(),
            None => false,
        };
        let answered = match sent {
            true => match answer.await {
                Ok((answer, sent)) => {
                    self.metrics.phase(Phase::Wake, Some(sent));
                    answer
                }
                Err(_) => Err(SubmitError::Stopped),
            },
            false if self.standby => Err(SubmitError::NotLeader(
                "this instance is not the leader now; retry (standbys pass writes to the leader)"
                    .into(),
            )),
            false => Err(SubmitError::Stopped),
        };
        let ack = match &answered {
            Ok(outcome) if outcome.replayed => Ack::Replayed,
            Ok(_) => Ack::Committed,
            Err(SubmitError::Rejected(_)) => Ack::Rejected,
            Err(_) => Ack::Failed,
        };
        self.metrics.acknowledged(started, ack);
        answered
    }
}

fn thread_error(path: &std::path::Path, what: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        what,
        source,
    }
}

enum Reply {
    Committed {
        command_id: Uuid,
        events: std::ops::Range<usize>,
        tx: ReplyTo,
    },
    Replayed {
        record: CommandRecord,
        tx: ReplyTo,
    },
}

struct Batch {
    envelopes: Vec<Arc<Envelope>>,
    replies: Vec<Reply>,
    /// The state after `envelopes`, to publish once they are durable.
    state: Arc<State>,
    /// When it was written to sled (metrics on).
    written: Option<Instant>,
}

struct Decider {
    log: Arc<LogWriter>,
    state: State,
    settings: Settings,
    last_at: u64,
    replica: Option<Arc<dyn Replicate>>,
    /// Why this committer no longer decides (high availability).
    deposed: Option<String>,
    metrics: Metrics,
}

/// One command's share of a batch: its events and idempotency records.
struct Unit {
    events: std::ops::Range<usize>,
    records: std::ops::Range<usize>,
    /// Its index in the batch's replies.
    reply: usize,
}

impl Decider {
    fn run(mut self, mut rx: mpsc::Receiver<Submission>, out: sync_mpsc::SyncSender<Batch>) {
        while let Some(first) = rx.blocking_recv() {
            let mut submissions = vec![first];
            while submissions.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => submissions.push(next),
                    Err(_) => break,
                }
            }
            for submission in &submissions {
                self.metrics.phase(Phase::Queued, submission.submitted);
            }
            let batch = self.decide_batch(submissions);
            if out.send(batch).is_err() {
                return;
            }
        }
    }

    fn decide_batch(&mut self, submissions: Vec<Submission>) -> Batch {
        let deciding = self.metrics.start();
        let mut envelopes = Vec::new();
        let mut replies = Vec::new();
        let mut records: Vec<(String, CommandRecord)> = Vec::new();
        let mut in_batch: HashMap<String, CommandRecord> = HashMap::new();
        let before = self.state.clone();
        let mut units = Vec::new();
        for sub in submissions {
            if let Some(reason) = &self.deposed {
                sub.reply.send(Err(SubmitError::NotLeader(reason.clone())));
                continue;
            }
            if let Some(idempotency) = &sub.idempotency {
                let earlier = match in_batch.get(&idempotency.key) {
                    Some(record) => Ok(Some(*record)),
                    None => self.log.idempotency_record(&idempotency.key),
                };
                match earlier {
                    Ok(Some(record))
                        if record.request.is_some_and(|r| r != idempotency.request) =>
                    {
                        let reused = Rejection::reused_key();
                        sub.reply.send(Err(SubmitError::Rejected(reused)));
                        continue;
                    }
                    Ok(Some(record)) => {
                        replies.push(Reply::Replayed {
                            record,
                            tx: sub.reply,
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => {
                        sub.reply
                            .send(Err(unreadable("an idempotency record", &error)));
                        continue;
                    }
                }
            }
            let command_id = Uuid::now_v7();
            let events = match decide(&self.state, &self.settings, &sub.command, command_id) {
                Ok(events) => events,
                Err(rejection) => {
                    sub.reply.send(Err(SubmitError::Rejected(rejection)));
                    continue;
                }
            };
            let start = envelopes.len();
            let first = self.state.seq.next();
            // One time for all of a command's events: the versions it makes
            // and the deployment it starts share it, as in Marathon. Later
            // commands get later times, so a version names one change.
            self.last_at = (self.last_at + 1).max(now_micros());
            for event in events {
                let envelope = Envelope {
                    seq: self.state.seq.next(),
                    id: Uuid::now_v7(),
                    recorded_at: self.last_at,
                    actor: sub.actor.clone(),
                    command_id,
                    event,
                };
                self.state.apply(&envelope);
                envelopes.push(Arc::new(envelope));
            }
            let records_from = records.len();
            if let Some(Idempotency { key, request }) = sub.idempotency {
                let record = CommandRecord {
                    command_id,
                    first,
                    last: self.state.seq,
                    request: Some(request),
                };
                in_batch.insert(key.clone(), record);
                records.push((key, record));
            }
            units.push(Unit {
                events: start..envelopes.len(),
                records: records_from..records.len(),
                reply: replies.len(),
            });
            replies.push(Reply::Committed {
                command_id,
                events: start..envelopes.len(),
                tx: sub.reply,
            });
        }
        if let Some(replica) = self.replica.clone()
            && let Err((kept, first, rest)) =
                self.replicate(&*replica, &envelopes, &records, &units)
        {
            // Later commands were decided after the first refused one: refuse
            // them too, and fold only what the replicated log holds.
            let refused = &units[kept..];
            let failed: Vec<Uuid> = records[refused[0].records.start..]
                .iter()
                .map(|(_, record)| record.command_id)
                .collect();
            envelopes.truncate(refused[0].events.start);
            records.truncate(refused[0].records.start);
            let mut errors = std::iter::once(first).chain(std::iter::repeat_with(|| {
                SubmitError::NotLeader(rest.clone())
            }));
            let refused: Vec<usize> = refused.iter().map(|u| u.reply).collect();
            replies = replies
                .into_iter()
                .enumerate()
                .filter_map(|(i, reply)| {
                    let refuse = match &reply {
                        Reply::Committed { .. } => refused.contains(&i),
                        Reply::Replayed { record, .. } => failed.contains(&record.command_id),
                    };
                    if !refuse {
                        return Some(reply);
                    }
                    let error = errors.next().expect("an endless supply");
                    match reply {
                        Reply::Committed { tx, .. } | Reply::Replayed { tx, .. } => {
                            tx.send(Err(error));
                        }
                    }
                    None
                })
                .collect();
            self.state = before;
            for envelope in &envelopes {
                self.state.apply(envelope);
            }
        }
        self.metrics.phase(Phase::Decide, deciding);
        let appending = self.metrics.start();
        if !envelopes.is_empty() || !records.is_empty() {
            self.log
                .append(&envelopes, &records)
                .unwrap_or_else(|e| fail_stop("appending to the log", &e));
        }
        self.metrics.phase(Phase::Append, appending);
        Batch {
            envelopes,
            replies,
            state: Arc::new(self.state.clone()),
            written: self.metrics.start(),
        }
    }
}

impl Decider {
    /// Writes the batch to the replicated log in order, in chunks of whole
    /// commands under its limit. On a refusal: how many commands it holds,
    /// the error for the first refused and the one for those after it.
    fn replicate(
        &mut self,
        replica: &dyn Replicate,
        envelopes: &[Arc<Envelope>],
        records: &[(String, CommandRecord)],
        units: &[Unit],
    ) -> Result<(), (usize, SubmitError, String)> {
        let encode = |range: std::ops::Range<usize>| {
            let events = units[range.clone()].first().map_or(0, |u| u.events.start)
                ..units[range.clone()].last().map_or(0, |u| u.events.end);
            let kept = units[range.clone()].first().map_or(0, |u| u.records.start)
                ..units[range].last().map_or(0, |u| u.records.end);
            replica::encode_batch(&envelopes[events], &records[kept])
                .unwrap_or_else(|e| fail_stop("encoding a batch", &e))
        };
        // The encoding is a format byte and a checksum, then two
        // length-prefixed lists: a
        // chunk's length is this plus its commands' own.
        const FRAME: usize = 1 + 4 + 8 + 8;
        let sizes: Vec<usize> = (0..units.len())
            .map(|i| encode(i..i + 1).len() - FRAME)
            .collect();
        let limit = replica.limit();
        let mut done = 0;
        while done < units.len() {
            if sizes[done] + FRAME > limit {
                let too_large = SubmitError::TooLarge(format!(
                    "this change encodes to {} bytes; with high availability one change may hold at most {limit} (ZooKeeper's node limit): split it",
                    sizes[done] + FRAME
                ));
                let retry = "decided together with a change refused as too large; retry";
                return Err((done, too_large, retry.into()));
            }
            let mut end = done;
            let mut size = FRAME;
            while end < units.len() && size + sizes[end] <= limit {
                size += sizes[end];
                end += 1;
            }
            // A chunk without events starts where the next event will.
            let first = match envelopes.get(units[done].events.start) {
                Some(event) => event.seq,
                None => envelopes.last().map_or(self.state.seq, |e| e.seq).next(),
            };
            if let Err(error) = replica.replicate(first, &encode(done..end)) {
                let reason = match error {
                    ReplicaError::Deposed(why) => format!("not the leader ({why}); retry"),
                    ReplicaError::Unknown(why) => format!(
                        "the replicated log's answer was lost ({why}): the change may or may not be recorded; retry with the same Idempotency-Key"
                    ),
                };
                tracing::warn!(%reason, "the committer is deposed");
                self.deposed = Some(reason.clone());
                return Err((done, SubmitError::NotLeader(reason.clone()), reason));
            }
            done = end;
        }
        Ok(())
    }
}

fn unreadable(what: &str, error: &StoreError) -> SubmitError {
    tracing::error!(%error, "cannot read {what}");
    SubmitError::Unreadable(format!("cannot read {what} ({error}); retry"))
}

fn sync_loop(
    log: &LogWriter,
    projection: &Projection,
    snapshots: &Snapshotter,
    metrics: &Metrics,
    rx: sync_mpsc::Receiver<Batch>,
) {
    loop {
        let first = match rx.recv_timeout(SEAL_AFTER) {
            Ok(batch) => batch,
            Err(sync_mpsc::RecvTimeoutError::Timeout) => {
                seal(log);
                match rx.recv() {
                    Ok(batch) => batch,
                    Err(_) => return,
                }
            }
            // Drained: what was just answered is sealed too.
            Err(sync_mpsc::RecvTimeoutError::Disconnected) => return seal(log),
        };
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        for batch in &batches {
            metrics.phase(Phase::Handoff, batch.written);
        }
        let started = metrics.start();
        log.sync()
            .unwrap_or_else(|e| fail_stop("syncing the log", &e));
        if metrics.is_on() {
            let commands = batches.iter().map(|b| b.replies.len()).sum();
            let events = batches.iter().map(|b| b.envelopes.len()).sum();
            metrics.synced(started, commands, events);
        }
        let publishing = metrics.start();
        publish(projection, &batches);
        metrics.phase(Phase::Publish, publishing);
        let answering = metrics.start();
        for batch in batches {
            for reply in batch.replies {
                answer(log, &batch.envelopes, reply);
            }
        }
        metrics.phase(Phase::Answer, answering);
        snapshots.maybe_take(projection.head());
    }
}

/// Publishes the newest state of `batches` with all their events, before
/// anyone is answered: a writer reads its own writes.
fn publish(projection: &Projection, batches: &[Batch]) {
    let Some(newest) = batches.iter().rev().find(|b| !b.envelopes.is_empty()) else {
        return;
    };
    let envelopes: Vec<Arc<Envelope>> = batches
        .iter()
        .flat_map(|b| b.envelopes.iter().cloned())
        .collect();
    projection.publish(newest.state.clone(), &envelopes);
}

fn seal(log: &LogWriter) {
    if let Err(error) = log.seal() {
        tracing::warn!(%error, "cannot seal the watermark");
    }
}

fn answer(log: &EventLog, envelopes: &[Arc<Envelope>], reply: Reply) {
    match reply {
        Reply::Committed {
            command_id,
            events,
            tx,
        } => {
            let outcome = Outcome {
                command_id,
                events: envelopes[events].to_vec(),
                replayed: false,
            };
            tx.send(Ok(outcome));
        }
        Reply::Replayed { record, tx } => {
            let events = (record.first.0..=record.last.0)
                .filter_map(|seq| log.get(Seq(seq)).transpose())
                .map(|event| event.map(Arc::new))
                .collect::<Result<Vec<_>, _>>();
            let outcome = events
                .map(|events| Outcome {
                    command_id: record.command_id,
                    events,
                    replayed: true,
                })
                .map_err(|error| unreadable("the events of a retried command", &error));
            tx.send(outcome);
        }
    }
}

/// Takes snapshots off the write path, on its own thread.
pub struct Snapshotter {
    /// Events between snapshots: at least `--snapshot-every`, and at least
    /// the size of the state last snapshotted (see `spacing`).
    spacing: Arc<AtomicU64>,
    last: AtomicU64,
    tx: sync_mpsc::SyncSender<()>,
}

/// A snapshot costs time in proportion to the state, so one per as many
/// events as the state has entries keeps its cost per event bounded (a
/// fixed interval would snapshot a 100,000-app state every few seconds,
/// taking cores from the serving path). A restart replays at most that
/// many events more, which costs about as much as loading the snapshot.
fn spacing(every: u64, state: &State) -> u64 {
    let entries = state.apps.len() + state.tasks.len() + state.deployments.len();
    every.max(entries as u64)
}

impl Snapshotter {
    /// Snapshots of `projection`, at least `every` events apart.
    pub fn start(
        log: Arc<EventLog>,
        projection: Arc<Projection>,
        every: u64,
        metrics: &Metrics,
        supervisor: &Supervisor,
    ) -> Result<(Snapshotter, Part), StoreError> {
        let (tx, rx) = sync_mpsc::sync_channel::<()>(1);
        // Snapshots are a cache: an unreadable list only means taking one.
        let last = log
            .snapshot_seqs()
            .map_or(0, |seqs| seqs.last().map_or(0, |s| s.0));
        if last > 0 {
            record_snapshot(&log, Seq(last), metrics);
        }
        let metrics = metrics.clone();
        let path = log.path().to_owned();
        let every = every.max(1);
        let spacing_now = Arc::new(AtomicU64::new(spacing(every, &projection.read())));
        let spacing_seen = spacing_now.clone();
        let part = supervisor
            .spawn_thread("snapshotter", move |stop| {
                // Encoding the whole state takes a core for a while; the
                // committer and the API must not wait for it.
                stride_sched::yield_to_writers();
                for () in rx {
                    if stop.is_cancelled() {
                        break;
                    }
                    // The published state, kept as long as encoding takes
                    // without holding anything up.
                    let state = projection.read();
                    let result = snapshot::encode(&state)
                        .map_err(StoreError::from)
                        .and_then(|bytes| log.put_snapshot(state.seq, &bytes));
                    match result {
                        Ok(()) => record_snapshot(&log, state.seq, &metrics),
                        Err(error) => {
                            tracing::warn!(error = %error, "snapshot failed; the next one will retry");
                        }
                    }
                    spacing_seen.store(spacing(every, &state), Ordering::Relaxed);
                }
                Ok::<(), Infallible>(())
            })
            .map_err(|source| thread_error(&path, "cannot start the snapshot thread", source))?;
        let snapshotter = Snapshotter {
            spacing: spacing_now,
            last: last.into(),
            tx,
        };
        Ok((snapshotter, part))
    }

    /// Takes one if `head` is far enough past the last.
    pub fn maybe_take(&self, head: Seq) {
        let due = self.last.load(Ordering::Relaxed) + self.spacing.load(Ordering::Relaxed);
        if head.0 >= due && self.tx.try_send(()).is_ok() {
            self.last.store(head.0, Ordering::Relaxed);
        }
    }
}

/// Tells the metrics a snapshot holds the state at `seq`, and how old
/// that state is (when its last event was recorded).
fn record_snapshot(log: &EventLog, seq: Seq, metrics: &Metrics) {
    if metrics.is_on() {
        let recorded_at = log.get(seq).ok().flatten().map_or(0, |e| e.recorded_at);
        metrics.snapshot_taken(seq.0, recorded_at);
    }
}

/// Durability can no longer be promised: stop rather than acknowledge
/// writes that may not survive. A restart replays the log from disk.
fn fail_stop(what: &str, error: &StoreError) -> ! {
    let message = stride_runtime::error::chain(error);
    tracing::error!(error = %message, "{what} failed; stopping to keep acknowledged writes honest");
    eprintln!("stride: fatal: {what} failed: {message}");
    std::process::exit(74);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::published::load;
    use std::collections::BTreeSet;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;
    use stride_log::event::app::{AppDefinition, AppSpec};
    use stride_log::event::{AppCreated, AppId, Event};

    fn definition(id: &str) -> AppDefinition {
        serde_json::from_value(serde_json::json!({"id": id, "cmd": "sleep 1"})).expect("definition")
    }

    pub(crate) fn created(seq: u64) -> Envelope {
        let id = format!("/app{seq}");
        Envelope {
            seq: Seq(seq),
            id: Uuid::now_v7(),
            recorded_at: seq,
            actor: Actor::Reconciler,
            command_id: Uuid::now_v7(),
            event: Event::AppCreated(AppCreated {
                definition: AppSpec::new(definition(&id)),
                app: AppId(id),
            }),
        }
    }

    struct Running {
        _dir: tempfile::TempDir,
        log: Arc<EventLog>,
        projection: Arc<Projection>,
        committer: Committer,
    }

    fn start() -> Running {
        let dir = tempfile::tempdir().expect("a temp dir");
        let writer = LogWriter::open(dir.path()).expect("a store");
        let log = writer.reader();
        let projection = Arc::new(Projection::new(State::default()));
        let committer = Committer::start(
            writer,
            projection.clone(),
            1_000_000,
            Settings::default(),
            &Metrics::off(),
            &Supervisor::new(),
        )
        .expect("started");
        Running {
            _dir: dir,
            log,
            projection,
            committer,
        }
    }

    async fn create(committer: &Committer, id: &str) -> Outcome {
        let command = Command::CreateApp(definition(id));
        committer
            .submit(Actor::Reconciler, None, command)
            .await
            .expect("accepted")
    }

    #[tokio::test]
    async fn a_reader_holding_the_state_holds_up_no_write_and_sees_none() {
        let running = start();
        let held = running.projection.read();
        // Held across the whole write: were the state behind a lock, the
        // sync thread could not publish, and no acknowledgement would come.
        let outcome =
            tokio::time::timeout(Duration::from_secs(30), create(&running.committer, "/held"))
                .await
                .expect("acknowledged while a reader holds the state");
        assert!(outcome.events.len() > 1, "{:?}", outcome.events);
        assert_eq!(held.seq, Seq(0));
        assert!(held.apps.is_empty() && held.deployments.is_empty());
        let now = running.projection.read();
        assert_eq!(Some(now.seq), outcome.events.last().map(|e| e.seq));
        assert!(now.deployment_of(&AppId::from("/held")).is_some());
    }

    #[test]
    fn every_published_state_is_whole_commands_and_the_fold_of_the_log() {
        let running = start();
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let stop = AtomicBool::new(false);
        let (ends, seen) = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut seen: Vec<Arc<State>> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let state = running.projection.read();
                    if seen.last().is_none_or(|last| last.seq != state.seq) {
                        seen.push(state);
                    }
                    std::thread::yield_now();
                }
                seen
            });
            let ends: BTreeSet<Seq> = runtime.block_on(async {
                let writers = (0..8).map(|w| {
                    let committer = running.committer.clone();
                    tokio::spawn(async move {
                        let mut ends = Vec::new();
                        for n in 0..20 {
                            let outcome = create(&committer, &format!("/w{w}/a{n}")).await;
                            ends.extend(outcome.events.last().map(|e| e.seq));
                        }
                        ends
                    })
                });
                let mut ends = BTreeSet::new();
                for writer in writers.collect::<Vec<_>>() {
                    ends.extend(writer.await.expect("a writer"));
                }
                ends
            });
            stop.store(true, Ordering::Relaxed);
            (ends, reader.join().expect("the reader"))
        });
        assert!(seen.len() > 1, "the reader saw the state move");
        for state in seen.iter().filter(|s| s.seq != Seq(0)) {
            assert!(
                ends.contains(&state.seq),
                "published mid-command at {}",
                state.seq
            );
            let replayed = load(&running.log, Some(state.seq)).expect("replays");
            assert!(
                **state == replayed,
                "published at {} != the log's fold",
                state.seq
            );
        }
    }

    /// Each of this process's threads whose name starts with `prefix` (as
    /// the kernel keeps it, 15 bytes), with its nice value.
    fn nice_of_threads(prefix: &str) -> Vec<i64> {
        let tasks = std::fs::read_dir("/proc/self/task").expect("/proc");
        tasks
            .flatten()
            .filter_map(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
                if !comm.starts_with(prefix) {
                    return None;
                }
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // Fields after the name: state is field 3, nice field 19.
                let (_, fields) = stat.rsplit_once(')')?;
                fields.split_whitespace().nth(16)?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn the_snapshot_thread_yields_to_the_committers_threads() {
        let _running = start();
        // Per thread: the committer's keep the process's nice, whatever
        // the test runs at; the snapshotter's is 10 lower (19 at most).
        let committers = nice_of_threads("stride-committe");
        let process = committers[0];
        assert!(
            committers.iter().all(|nice| *nice == process),
            "{committers:?}"
        );
        let lowered = (process + 10).min(19);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let snapshotters = nice_of_threads("stride-snapshot");
            if !snapshotters.is_empty() && snapshotters.iter().all(|nice| *nice == lowered) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "snapshot threads at nice {snapshotters:?}, the committer's at {process}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn snapshots_space_out_as_the_state_grows() {
        let mut state = State::default();
        assert_eq!(spacing(10, &state), 10);
        for seq in 1..=50 {
            state.apply(&created(seq));
        }
        assert_eq!(spacing(10, &state), 50);
        assert_eq!(spacing(100, &state), 100);
    }

    /// The replicated log as the committer sees it: batches kept in
    /// memory, under a small limit, refusing once told to.
    struct Memory {
        limit: usize,
        batches: std::sync::Mutex<Vec<(Seq, Vec<u8>)>>,
        deposed: AtomicBool,
    }

    impl Replicate for Memory {
        fn limit(&self) -> usize {
            self.limit
        }

        fn replicate(&self, first: Seq, batch: &[u8]) -> Result<(), ReplicaError> {
            assert!(
                batch.len() <= self.limit,
                "{} bytes over the limit",
                batch.len()
            );
            if self.deposed.load(Ordering::SeqCst) {
                return Err(ReplicaError::Deposed("epoch 1 is over".into()));
            }
            self.batches
                .lock()
                .expect("batches")
                .push((first, batch.to_vec()));
            Ok(())
        }
    }

    fn start_replicated(limit: usize) -> (Running, Arc<Memory>) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let writer = Arc::new(LogWriter::open(dir.path()).expect("a store"));
        let log = writer.reader();
        let projection = Arc::new(Projection::new(State::default()));
        let memory = Arc::new(Memory {
            limit,
            batches: Default::default(),
            deposed: AtomicBool::new(false),
        });
        let supervisor = Supervisor::new();
        let (snapshots, _) = Snapshotter::start(
            writer.reader(),
            projection.clone(),
            1_000_000,
            &Metrics::off(),
            &supervisor,
        )
        .expect("a snapshot thread");
        let parts = Parts {
            log: writer,
            projection: projection.clone(),
            settings: Settings::default(),
            snapshots: Arc::new(snapshots),
        };
        let committer =
            Committer::start_replicated(parts, memory.clone(), &Metrics::off(), &supervisor)
                .expect("started");
        let running = Running {
            _dir: dir,
            log,
            projection,
            committer,
        };
        (running, memory)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_replicates_whole_commands_under_the_limit_and_its_log_is_their_prefix() {
        let (running, memory) = start_replicated(3_000);
        let writers = (0..8).map(|w| {
            let committer = running.committer.clone();
            tokio::spawn(async move {
                for n in 0..10 {
                    create(&committer, &format!("/w{w}/a{n}")).await;
                }
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.expect("a writer");
        }
        let batches = memory.batches.lock().expect("batches").clone();
        assert!(batches.len() > 1, "split under the limit");
        let mut replicated = Vec::new();
        for (first, bytes) in &batches {
            let batch = replica::decode_batch(*first, bytes).expect("a batch");
            // Whole commands: a batch never ends inside one.
            let ids: BTreeSet<Uuid> = batch.events.iter().map(|e| e.command_id).collect();
            for id in ids {
                let of_command = batch.events.iter().filter(|e| e.command_id == id).count();
                let in_log = running
                    .log
                    .iter_from(Seq(1))
                    .filter(|e| e.as_ref().expect("readable").command_id == id)
                    .count();
                assert_eq!(of_command, in_log, "a command split across batches");
            }
            replicated.extend(batch.events);
        }
        let local: Vec<Arc<Envelope>> = running
            .log
            .iter_from(Seq(1))
            .map(|e| Arc::new(e.expect("readable")))
            .collect();
        assert_eq!(local, replicated, "the local log is the replicated one");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_over_the_limit_is_refused_and_a_deposed_leader_appends_nothing() {
        let (running, memory) = start_replicated(3_000);
        create(&running.committer, "/small").await;
        let big = serde_json::json!({"id": "/big", "cmd": "sleep 1", "labels": {"blob": "x".repeat(4_000)}});
        let big: AppDefinition = serde_json::from_value(big).expect("definition");
        let refused = running
            .committer
            .submit(Actor::Reconciler, None, Command::CreateApp(big))
            .await;
        assert!(
            matches!(refused, Err(SubmitError::TooLarge(_))),
            "{refused:?}"
        );
        let head = running.log.head().expect("head");
        assert_eq!(running.projection.read().seq, head);
        assert_eq!(
            *running.projection.read(),
            load(&running.log, None).expect("replays"),
            "the state holds nothing the log does not"
        );
        // The next command decides against the state without the refused one.
        create(&running.committer, "/big").await;

        memory.deposed.store(true, Ordering::SeqCst);
        let head = running.log.head().expect("head");
        for id in ["/after1", "/after2"] {
            let answer = running
                .committer
                .submit(Actor::Reconciler, None, Command::CreateApp(definition(id)))
                .await;
            assert!(
                matches!(answer, Err(SubmitError::NotLeader(_))),
                "{answer:?}"
            );
        }
        assert_eq!(
            running.log.head().expect("head"),
            head,
            "nothing appended once deposed"
        );
    }
}
