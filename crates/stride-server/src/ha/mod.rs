//! High availability on ZooKeeper (`stride serve --zk`, issue 15): several
//! instances, one fenced leader, a replicated log.
//!
//! - `role.rs`: each instance contends (`stride-zk`'s election); a standby
//!   follows the replicated log; the winner catches up, records its epoch
//!   and starts what only a leader runs; on losing its session, its lease
//!   or a replicated write, it stops all of that and starts over as a
//!   standby.
//! - `replica.rs`: the leader's committer writes each batch to ZooKeeper,
//!   fenced by the epoch, before its own store.
//! - `follower.rs`: every instance applies the replicated batches to its
//!   store in seq order, so each local log is a prefix of the replicated one.
//! - `lease.rs`: the gate every Mesos call passes while leading.
//! - `proxy.rs`: a standby passes writes to the leader.

mod follower;
mod lease;
mod proxy;
mod replica;
mod role;

pub use proxy::{Proxy, pass_writes_to_leader};
pub use role::{Ha, HaError, Lead};

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use stride_zk::ZkUrl;

/// `--zk-session-timeout`'s default. A leader killed outright is replaced
/// once ZooKeeper expires its session, so this bounds failover from below
/// (`stride bench ha`): 2 s keeps it under 3 s where the ensemble grants
/// it (its least is 2 x tickTime), while a leader still rides out a pause
/// of a second (its lease runs 2/3 of it). Marathon's is 10 s.
pub const DEFAULT_SESSION_TIMEOUT: &str = "2s";

/// `--zk` and what goes with it.
#[derive(Debug, Clone)]
pub struct HaConfig {
    pub zk: ZkUrl,
    /// What Stride asks ZooKeeper for; a leader stops acting within 2/3 of
    /// it once ZooKeeper no longer answers.
    pub session_timeout: Duration,
    /// How this instance reaches the others: the token it shows when it
    /// copies the log from one (`--peer-token-file`), and the CA file it
    /// trusts their certificates by (`--ca-file`), also when passing a
    /// client's write to the leader (with that client's credentials only).
    pub peers: stride_runtime::credentials::Credentials,
}

/// Who leads, as an instance knows it: what `/v2/leader`, `/v2/info` and
/// `/v1/leader` show and where a standby sends writes.
#[derive(Clone, Default)]
pub struct RoleView(Arc<RwLock<View>>, Arc<tokio::sync::Notify>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// This instance's id and URL.
    pub instance: String,
    pub url: String,
    /// Whether this instance leads now.
    pub leading: bool,
    /// The last leader ZooKeeper named: (epoch, instance, URL).
    pub leader: Option<(u64, String, String)>,
    /// Whether this instance has a ZooKeeper session now.
    pub connected: bool,
    /// `--zk` and its session timeout, as `/v2/info` shows them.
    pub zk: String,
    pub session_timeout: Duration,
}

impl RoleView {
    pub fn new(instance: String, url: String, config: &HaConfig) -> RoleView {
        let view = View {
            instance,
            url,
            zk: config.zk.to_string(),
            session_timeout: config.session_timeout,
            ..View::default()
        };
        RoleView(Arc::new(RwLock::new(view)), Arc::default())
    }

    pub fn now(&self) -> View {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut View)) {
        change(&mut self.0.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// `DELETE /v2/leader`: the leader steps down (another instance, or
    /// this one again with a new epoch, wins the next election).
    pub fn abdicate(&self) {
        self.1.notify_one();
    }

    async fn abdication(&self) {
        self.1.notified().await;
    }
}

/// This instance's id: kept in its data directory, so the replicated log
/// knows how far it applied across restarts.
pub fn instance_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, format!("{id}\n"))?;
            Ok(id)
        }
    }
}

/// The client an instance copies the log from a peer with.
pub fn peer_client(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client builds")
}

/// A leader without Mesos (`--no-mesos`): the API and the log only.
pub struct NoMesos;

impl Lead for NoMesos {
    fn start(
        &self,
        _: &crate::committer::Committer,
        _: stride_mesos::CallGate,
    ) -> Result<Vec<stride_runtime::Part>, String> {
        Ok(Vec::new())
    }
}
