//! The election: each instance creates an ephemeral sequential candidate
//! node; the lowest leads. The winner bumps the epoch node in one multi-op
//! with a check that its candidate node still exists, so only a live
//! candidate can bump it; the node's new data version is its epoch. Every
//! later write of the leader checks that version (`log.rs`), so once
//! another instance has won, a deposed leader's writes fail whatever it
//! believes.

use crate::session::Zk;
use crate::{Watch, ZkError};
use zookeeper_client::{Acls, CreateMode};

/// A node contending for leadership; gone with its session.
#[derive(Debug, Clone)]
pub struct Candidate {
    name: String,
}

/// Won leadership: every write checks the epoch node is still at `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    /// Grows with every win, across the ensemble's life.
    pub epoch: u64,
    pub(crate) version: i32,
}

/// Who leads, as the epoch node names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub epoch: u64,
    /// What the winner wrote: Stride's instance id and URL.
    pub identity: Vec<u8>,
}

const CANDIDATE: &str = "c-";

impl Zk {
    pub async fn nominate(&self, identity: &[u8]) -> Result<Candidate, ZkError> {
        let path = self.path(&format!("election/{CANDIDATE}"));
        let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let (_, sequence) = self
            .client
            .create(&path, identity, &options)
            .await
            .map_err(ZkError::request("nominating a candidate"))?;
        Ok(Candidate {
            name: format!("{CANDIDATE}{sequence}"),
        })
    }

    /// Waits until `candidate` is the lowest, then bumps the epoch naming
    /// `identity`. Resolves only as leader, or with an error (an expired
    /// session: nominate again with a new one).
    pub async fn lead(
        &self,
        candidate: &Candidate,
        identity: &[u8],
    ) -> Result<Leadership, ZkError> {
        let dir = self.path("election");
        loop {
            let mut names = self
                .client
                .list_children(&dir)
                .await
                .map_err(ZkError::request("listing candidates"))?;
            names.retain(|name| name.starts_with(CANDIDATE));
            names.sort_by_key(|name| sequence(name));
            let Some(at) = names.iter().position(|name| *name == candidate.name) else {
                // Our node is gone: only an expired session removes it.
                return Err(ZkError::SessionExpired);
            };
            if at == 0 {
                return self
                    .bump(&format!("{dir}/{}", candidate.name), identity)
                    .await;
            }
            // Watch only the one just ahead (no herd when the leader goes).
            let ahead = format!("{dir}/{}", names[at - 1]);
            match self.client.check_and_watch_stat(&ahead).await {
                Ok((Some(_), watcher)) => {
                    watcher.changed().await;
                }
                Ok((None, _)) => {}
                Err(error) => return Err(ZkError::request("watching a candidate")(error)),
            }
        }
    }

    async fn bump(&self, candidate: &str, identity: &[u8]) -> Result<Leadership, ZkError> {
        let mut multi = self.client.new_multi_writer();
        let epoch = self.path("epoch");
        multi
            .add_check_version(candidate, 0)
            .and_then(|()| multi.add_set_data(&epoch, identity, None))
            .map_err(ZkError::request("building the epoch bump"))?;
        match multi.commit().await {
            Ok(results) => match results.last() {
                Some(zookeeper_client::MultiWriteResult::SetData { stat }) => Ok(Leadership {
                    epoch: stat.version as u64,
                    version: stat.version,
                }),
                _ => Err(ZkError::Stray { path: epoch }),
            },
            Err(zookeeper_client::MultiWriteError::OperationFailed { index: 0, .. }) => {
                Err(ZkError::SessionExpired)
            }
            Err(zookeeper_client::MultiWriteError::OperationFailed { source, .. })
            | Err(zookeeper_client::MultiWriteError::RequestFailed { source }) => {
                Err(ZkError::request("bumping the epoch")(source))
            }
        }
    }

    /// The epoch and identity the last winner wrote; `None` before any win.
    pub async fn leader(&self) -> Result<Option<Leader>, ZkError> {
        let (identity, stat) = self
            .client
            .get_data(&self.path("epoch"))
            .await
            .map_err(ZkError::request("reading the epoch"))?;
        Ok((stat.version > 0).then_some(Leader {
            epoch: stat.version as u64,
            identity,
        }))
    }

    /// As `leader`, with a watch that fires when another instance wins.
    pub async fn watch_leader(&self) -> Result<(Option<Leader>, Watch), ZkError> {
        let (identity, stat, watcher) = self
            .client
            .get_and_watch_data(&self.path("epoch"))
            .await
            .map_err(ZkError::request("watching the epoch"))?;
        let leader = (stat.version > 0).then_some(Leader {
            epoch: stat.version as u64,
            identity,
        });
        Ok((leader, Watch(watcher)))
    }

    /// Whether `leadership` is still the current one, asked of ZooKeeper
    /// now (a sync first, so a lagging server answers nothing stale).
    pub async fn still_leads(&self, leadership: &Leadership) -> Result<bool, ZkError> {
        let epoch = self.path("epoch");
        self.client
            .sync(&epoch)
            .await
            .map_err(ZkError::request("syncing"))?;
        let stat = self
            .client
            .check_stat(&epoch)
            .await
            .map_err(ZkError::request("reading the epoch"))?;
        Ok(stat.is_some_and(|stat| stat.version == leadership.version))
    }
}

fn sequence(name: &str) -> i64 {
    name[CANDIDATE.len()..].parse().unwrap_or(i64::MAX)
}
