//! One instance's life under high availability: a ZooKeeper session at a
//! time; in each, follow the replicated log while contending; on winning,
//! lead until the session, the lease or a replicated write says otherwise;
//! then stop everything a leader runs and start over with a new session.

use super::follower::{self, FollowError, Follower};
use super::lease::Lease;
use super::replica::ZkReplica;
use super::{HaConfig, RoleView, View};
use crate::committer::{Committer, Parts, Snapshotter};
use crate::metrics::Metrics;
use crate::published::Projection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stride_core::command::{Command, Settings};
use stride_log::event::{Actor, LeaderElected};
use stride_log::store::{LogWriter, StoreError};
use stride_mesos::CallGate;
use stride_runtime::{Backoff, Part, Supervisor};
use stride_zk::{Leadership, SessionState, Zk, ZkError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What only a leader runs: started on winning, stopped on losing.
pub trait Lead: Send + Sync {
    /// Starts the Mesos subscription (with the framework id the log
    /// records), the reconciler and the monitors, writing through
    /// `committer`, every Mesos call passing `gate`.
    fn start(&self, committer: &Committer, gate: CallGate) -> Result<Vec<Part>, String>;

    /// The parts `start` returned have been told to stop.
    fn stopped(&self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("the local store cannot follow the replicated log")]
    Follow(#[source] FollowError),
    #[error("cannot start the snapshot thread")]
    Snapshots(#[source] StoreError),
    #[error("cannot start the leader's committer")]
    Committer(#[source] StoreError),
    #[error("cannot start what a leader runs: {0}")]
    Lead(String),
}

/// Why a session ended.
enum Ended {
    /// Start over with a new session.
    Session(String),
    /// Stop the process.
    Fatal(HaError),
}

impl From<ZkError> for Ended {
    fn from(error: ZkError) -> Ended {
        Ended::Session(stride_runtime::error::chain(&error))
    }
}

impl From<FollowError> for Ended {
    fn from(error: FollowError) -> Ended {
        match error {
            FollowError::Zk(error) => error.into(),
            error => Ended::Fatal(HaError::Follow(error)),
        }
    }
}

/// How often the leader trims batches every instance has applied.
const TRIM_EVERY: Duration = Duration::from_secs(5);
/// Batches kept whatever the instances that registered have applied, so
/// one that is gone for good does not hold the whole log in ZooKeeper's
/// memory; one that comes back later catches up from a peer.
const RETAINED_BATCHES: usize = 20_000;
const RETRY: Duration = Duration::from_millis(200);

pub struct Ha {
    pub config: HaConfig,
    pub view: RoleView,
    pub log: Arc<LogWriter>,
    pub projection: Arc<Projection>,
    /// The API's handle, attached to the pipeline while leading.
    pub committer: Committer,
    pub snapshot_every: u64,
    pub settings: Settings,
    pub metrics: Metrics,
    pub supervisor: Supervisor,
    pub lead: Box<dyn Lead>,
    /// Serializes applying replicated batches across sessions (see
    /// `follower::supersede`).
    pub applying: Arc<std::sync::Mutex<u64>>,
    /// `config.peers` as a client, for copying the log from a peer.
    pub peers: reqwest::Client,
}

impl Ha {
    /// Runs until `stop`; returns an error only when the local store
    /// cannot go on.
    pub async fn run(self, stop: CancellationToken) -> Result<(), HaError> {
        // One for the process: a standby snapshots what it applies, as a
        // leader what it commits, so a promotion or restart replays little.
        let (snapshots, _thread) = Snapshotter::start(
            self.log.reader(),
            self.projection.clone(),
            self.snapshot_every,
            &self.metrics,
            &self.supervisor,
        )
        .map_err(HaError::Snapshots)?;
        let snapshots = Arc::new(snapshots);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            let connecting = Zk::connect(&self.config.zk, self.config.session_timeout);
            let connected = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                connected = connecting => connected,
            };
            let zk = match connected {
                Ok(zk) => Arc::new(zk),
                Err(error) => {
                    let error = stride_runtime::error::chain(&error);
                    tracing::warn!(%error, "no ZooKeeper session; serving reads from the local log");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(backoff.next_delay()) => continue,
                    }
                }
            };
            backoff.reset();
            let granted = zk.session_timeout();
            if granted != self.config.session_timeout {
                // The ensemble bounds it (2 and 20 x its tickTime): failover
                // and the lease follow what it granted.
                tracing::warn!(asked = ?self.config.session_timeout, ?granted, "ZooKeeper granted another session timeout than --zk-session-timeout");
            }
            self.view.update(|v| v.connected = true);
            let ended = self.session(&zk, &snapshots, &stop).await;
            self.view.update(|v| {
                v.connected = false;
                v.leading = false;
            });
            match ended {
                Ok(()) => {
                    close(zk).await;
                    return Ok(());
                }
                Err(Ended::Fatal(error)) => return Err(error),
                Err(Ended::Session(why)) => {
                    tracing::warn!(%why, "the ZooKeeper session ended; starting another")
                }
            }
        }
    }

    fn identity(&self) -> (String, String) {
        let View { instance, url, .. } = self.view.now();
        (instance, url)
    }

    async fn session(
        &self,
        zk: &Arc<Zk>,
        snapshots: &Arc<Snapshotter>,
        stop: &CancellationToken,
    ) -> Result<(), Ended> {
        let (instance, url) = self.identity();
        let identity = format!("{instance}\n{url}");
        zk.join(&instance, &url).await?;
        // Registered before contending, so no leader trims what this store
        // still needs.
        follower::record(zk, &instance, self.projection.head()).await?;
        let candidate = zk.nominate(identity.as_bytes()).await?;
        let mut session = zk.session();
        let follower = Follower {
            zk,
            instance: &instance,
            url: &url,
            peers: &self.peers,
            peer_token: self.config.peers.has_token(),
            log: &self.log,
            projection: &self.projection,
            applying: &self.applying,
            generation: follower::supersede(&self.applying),
            snapshots,
        };
        let leadership = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            error = follower.follow() => {
                return Err(error.into());
            }
            error = self.watch_leader(zk) => return Err(error.into()),
            () = expired(&mut session) => return Err(Ended::Session("the session expired".into())),
            won = zk.lead(&candidate, identity.as_bytes()) => won?,
        };
        tracing::info!(epoch = leadership.epoch, "won the election");
        let sent = Instant::now();
        if !zk.still_leads(&leadership).await? {
            return Err(Ended::Session("deposed as soon as elected".into()));
        }
        let lease = Lease::new(zk.session_timeout(), sent);
        // Everything written under earlier epochs, before this one writes;
        // the dropped follower's write, if still queued, does nothing.
        let follower = Follower {
            generation: follower::supersede(&self.applying),
            ..follower
        };
        follower.catch_up().await?;
        let failed = Arc::new(Notify::new());
        let replica = ZkReplica {
            zk: zk.clone(),
            leadership,
            runtime: tokio::runtime::Handle::current(),
            failed: failed.clone(),
            timeout: zk.session_timeout(),
        };
        let parts = Parts {
            log: self.log.clone(),
            projection: self.projection.clone(),
            settings: self.settings,
            snapshots: snapshots.clone(),
        };
        let leading =
            Committer::start_replicated(parts, Arc::new(replica), &self.metrics, &self.supervisor)
                .map_err(|error| Ended::Fatal(HaError::Committer(error)))?;
        let mut running = Vec::new();
        let held = self
            .hold(
                zk,
                &leadership,
                &leading,
                &lease,
                &failed,
                &mut session,
                &mut running,
                stop,
            )
            .await;
        // Stepping down: nothing acts from here on, whatever it holds.
        lease.revoke();
        self.view.update(|v| v.leading = false);
        for part in &running {
            part.stop();
        }
        self.lead.stopped();
        self.committer.detach();
        leading.drain().await;
        for part in &running {
            part.ended().await;
        }
        tracing::warn!(epoch = leadership.epoch, "stepped down; a standby now");
        held
    }

    /// Leads: records the epoch, starts the leader's parts, and holds
    /// until something says this instance may no longer lead.
    #[allow(clippy::too_many_arguments)]
    async fn hold(
        &self,
        zk: &Zk,
        leadership: &Leadership,
        leading: &Committer,
        lease: &Lease,
        failed: &Notify,
        session: &mut stride_zk::SessionWatch,
        running: &mut Vec<Part>,
        stop: &CancellationToken,
    ) -> Result<(), Ended> {
        let (instance, url) = self.identity();
        let elected = LeaderElected {
            epoch: leadership.epoch,
            instance: instance.clone(),
            url: url.clone(),
        };
        leading
            .submit(Actor::Reconciler, None, Command::RecordElection(elected))
            .await
            .map_err(|error| Ended::Session(format!("cannot record the election: {error}")))?;
        self.committer.attach(leading);
        self.view.update(|v| {
            v.leading = true;
            v.leader = Some((leadership.epoch, instance, url));
        });
        *running = self
            .lead
            .start(&self.committer, lease.gate())
            .map_err(|error| Ended::Fatal(HaError::Lead(error)))?;
        tracing::info!(epoch = leadership.epoch, "leading");
        let timeout = zk.session_timeout();
        let mut renew = tokio::time::interval(timeout / 6);
        let mut trim = tokio::time::interval(TRIM_EVERY);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(lease.deadline().into()) => {
                    return Err(Ended::Session("the lease ran out: ZooKeeper did not answer in time".into()));
                }
                state = session.changed() => if state != SessionState::Connected {
                    return Err(Ended::Session(format!("the session is {state:?}")));
                },
                () = failed.notified() => {
                    return Err(Ended::Session("a replicated write failed".into()));
                }
                () = self.view.abdication() => {
                    return Err(Ended::Session("abdicated (DELETE /v2/leader)".into()));
                }
                _ = renew.tick() => {
                    let sent = Instant::now();
                    match tokio::time::timeout(timeout / 3, zk.still_leads(leadership)).await {
                        Ok(Ok(true)) => lease.renew(sent),
                        Ok(Ok(false)) => return Err(Ended::Session("deposed: the epoch moved on".into())),
                        // The lease runs out by itself if this goes on.
                        Ok(Err(_)) | Err(_) => {}
                    }
                }
                _ = trim.tick() => self.trim(zk, leadership).await,
            }
        }
    }

    /// Records how far the leader's store is, then drops the batches every
    /// registered instance has applied (or past the retention).
    async fn trim(&self, zk: &Zk, leadership: &Leadership) {
        let (instance, _) = self.identity();
        let trimmed = async {
            follower::record(zk, &instance, self.projection.head()).await?;
            let applied = zk.applied().await?;
            let mut through = applied.iter().map(|(_, seq)| *seq).min().unwrap_or(0);
            let batches = zk.batches().await?;
            if let Some(kept) = batches.len().checked_sub(RETAINED_BATCHES)
                && let Some(oldest_kept) = batches.get(kept)
            {
                through = through.max(oldest_kept.first.saturating_sub(1));
            }
            zk.trim(leadership, through).await
        };
        match trimmed.await {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "trimmed the replicated log"),
            Err(error) => {
                tracing::warn!(error = %stride_runtime::error::chain(&error), "cannot trim the replicated log")
            }
        }
    }

    /// Keeps the view's leader current (ends only with an error).
    async fn watch_leader(&self, zk: &Zk) -> ZkError {
        loop {
            match zk.watch_leader().await {
                Ok((leader, watch)) => {
                    let leader = leader.map(|leader| {
                        let identity = String::from_utf8_lossy(&leader.identity).into_owned();
                        let (instance, url) = identity.split_once('\n').unwrap_or((&identity, ""));
                        (leader.epoch, instance.to_owned(), url.to_owned())
                    });
                    self.view.update(|v| v.leader = leader);
                    watch.changed().await;
                }
                Err(ZkError::Unknown { .. }) => tokio::time::sleep(RETRY).await,
                Err(error) => return error,
            }
        }
    }
}

/// A clean stop, once this instance no longer acts (a leader has stopped
/// its parts and drained its committer): closes the session, so its
/// candidate and registration go now and a standby is elected at once
/// rather than when the session would expire.
async fn close(zk: Arc<Zk>) {
    let within = zk.session_timeout();
    let Ok(zk) = Arc::try_unwrap(zk) else {
        tracing::warn!("shutdown: the ZooKeeper session is still held; it expires by itself");
        return;
    };
    match zk.close(within).await {
        true => tracing::info!("shutdown: ZooKeeper session closed"),
        false => tracing::warn!(
            "shutdown: ZooKeeper did not answer the close in time; the session expires by itself"
        ),
    }
}

/// Resolves once the session has expired (a standby rides out
/// disconnections: its requests are retried).
async fn expired(session: &mut stride_zk::SessionWatch) {
    while session.changed().await != SessionState::Expired {}
}
