//! The replicated log's batches: `log/b-<first seq, 20 digits>-<ZooKeeper's
//! sequence>`, each created by the leader in one multi-op with a check of
//! the epoch's version. ZooKeeper's sequence orders them; a batch of only
//! idempotency records (a command that changed nothing) starts where the
//! next one does. The next batch's first seq bounds a batch's last.

use crate::session::{Zk, persistent};
use crate::{Leadership, ZkError};
use zookeeper_client::{Acls, CreateMode, Error, MultiWriteError, OneshotWatcher};

/// The most a batch may hold: ZooKeeper refuses a request over
/// `jute.maxbuffer` (1 MiB less one byte by default); the multi's headers
/// and the path fit in what is left.
pub const NODE_LIMIT: usize = 1_000_000;

const BATCH: &str = "b-";
/// Deletes per multi-op when trimming, so no request nears the limit.
const TRIM_PER_REQUEST: usize = 500;

/// Fires once, at the next change of what was read.
pub struct Watch(pub(crate) OneshotWatcher);

impl Watch {
    pub async fn changed(self) {
        self.0.changed().await;
    }
}

/// One batch's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId {
    /// The seq of its first event (or of the next event, if it has none).
    pub first: u64,
    name: String,
    sequence: u64,
}

fn parse(name: &str) -> Option<BatchId> {
    let (first, sequence) = name.strip_prefix(BATCH)?.split_once('-')?;
    Some(BatchId {
        first: first.parse().ok()?,
        sequence: sequence.parse().ok()?,
        name: name.to_owned(),
    })
}

impl Zk {
    /// Writes the batch starting at seq `first`, if and only if
    /// `leadership` is still current.
    pub async fn append(
        &self,
        leadership: &Leadership,
        first: u64,
        batch: &[u8],
    ) -> Result<(), ZkError> {
        if batch.len() > NODE_LIMIT {
            return Err(ZkError::TooLarge {
                bytes: batch.len(),
                limit: NODE_LIMIT,
            });
        }
        let mut multi = self.client.new_multi_writer();
        let path = self.path(&format!("log/{BATCH}{first:020}-"));
        let sequential = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
        multi
            .add_check_version(&self.path("epoch"), leadership.version)
            .and_then(|()| multi.add_create(&path, batch, &sequential))
            .map_err(ZkError::request("building an append"))?;
        match multi.commit().await {
            Ok(_) => Ok(()),
            Err(error) => Err(refused(error, leadership, "an append")),
        }
    }

    /// Every batch held, in order.
    pub async fn batches(&self) -> Result<Vec<BatchId>, ZkError> {
        let names = self
            .client
            .list_children(&self.path("log"))
            .await
            .map_err(ZkError::request("listing batches"))?;
        self.firsts(names)
    }

    /// As `batches`, with a watch that fires on the next change.
    pub async fn watch_batches(&self) -> Result<(Vec<BatchId>, Watch), ZkError> {
        let (names, watcher) = self
            .client
            .list_and_watch_children(&self.path("log"))
            .await
            .map_err(ZkError::request("watching batches"))?;
        Ok((self.firsts(names)?, Watch(watcher)))
    }

    fn firsts(&self, names: Vec<String>) -> Result<Vec<BatchId>, ZkError> {
        let mut batches = names
            .into_iter()
            .map(|name| {
                parse(&name).ok_or_else(|| ZkError::Stray {
                    path: self.path(&format!("log/{name}")),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        batches.sort_unstable_by_key(|batch| batch.sequence);
        Ok(batches)
    }

    /// A batch's bytes; `None` once trimmed.
    pub async fn batch(&self, batch: &BatchId) -> Result<Option<Vec<u8>>, ZkError> {
        match self
            .client
            .get_data(&self.path(&format!("log/{}", batch.name)))
            .await
        {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(Error::NoNode) => Ok(None),
            Err(error) => Err(ZkError::request("reading a batch")(error)),
        }
    }

    /// Records that instance `id` has applied (and synced) through `seq`.
    pub async fn mark_applied(&self, id: &str, seq: u64) -> Result<(), ZkError> {
        let path = self.path(&format!("applied/{id}"));
        let data = seq.to_string();
        match self.client.set_data(&path, data.as_bytes(), None).await {
            Ok(_) => Ok(()),
            Err(Error::NoNode) => match self
                .client
                .create(&path, data.as_bytes(), &persistent())
                .await
            {
                Ok(_) | Err(Error::NodeExists) => Ok(()),
                Err(error) => Err(ZkError::request("recording progress")(error)),
            },
            Err(error) => Err(ZkError::request("recording progress")(error)),
        }
    }

    /// How far each instance that ever joined has applied.
    pub async fn applied(&self) -> Result<Vec<(String, u64)>, ZkError> {
        let dir = self.path("applied");
        let ids = self
            .client
            .list_children(&dir)
            .await
            .map_err(ZkError::request("listing progress"))?;
        let mut marks = Vec::new();
        for id in ids {
            match self.client.get_data(&format!("{dir}/{id}")).await {
                Ok((data, _)) => {
                    let seq = std::str::from_utf8(&data)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| ZkError::Stray {
                            path: format!("{dir}/{id}"),
                        })?;
                    marks.push((id, seq));
                }
                Err(Error::NoNode) => {}
                Err(error) => return Err(ZkError::request("reading progress")(error)),
            }
        }
        Ok(marks)
    }

    /// Deletes every batch that ends at or before `through` (its successor
    /// starts at or before `through + 1`) and starts there too, checking
    /// the epoch with each request. A batch of idempotency records alone
    /// at `through + 1` stays: a store at `through` may not have read it
    /// yet (it goes once a mark passes the events after it). The newest
    /// batch stays: it names the replicated head.
    pub async fn trim(&self, leadership: &Leadership, through: u64) -> Result<usize, ZkError> {
        let batches = self.batches().await?;
        let done: Vec<&BatchId> = batches
            .windows(2)
            .take_while(|pair| pair[0].first <= through && pair[1].first <= through + 1)
            .map(|pair| &pair[0])
            .collect();
        for chunk in done.chunks(TRIM_PER_REQUEST) {
            let mut multi = self.client.new_multi_writer();
            multi
                .add_check_version(&self.path("epoch"), leadership.version)
                .map_err(ZkError::request("building a trim"))?;
            for batch in chunk {
                multi
                    .add_delete(&self.path(&format!("log/{}", batch.name)), None)
                    .map_err(ZkError::request("building a trim"))?;
            }
            multi
                .commit()
                .await
                .map_err(|error| refused(error, leadership, "a trim"))?;
        }
        Ok(done.len())
    }
}

/// A failed multi-op that began with the epoch check.
fn refused(error: MultiWriteError, leadership: &Leadership, what: &'static str) -> ZkError {
    match error {
        MultiWriteError::OperationFailed { index: 0, .. } => ZkError::Fenced {
            epoch: leadership.epoch,
        },
        MultiWriteError::OperationFailed { source, .. }
        | MultiWriteError::RequestFailed { source } => ZkError::request(what)(source),
    }
}
