use crate::committer::{ReplicaError, Replicate};
use std::sync::Arc;
use std::time::Duration;
use stride_log::event::Seq;
use stride_zk::{Leadership, Zk, ZkError};
use tokio::sync::Notify;

/// The leader's side of the replicated log: each batch is one ZooKeeper
/// multi-op that checks the epoch and creates the batch's node.
pub(super) struct ZkReplica {
    pub zk: Arc<Zk>,
    pub leadership: Leadership,
    /// The decide thread is not a runtime thread: it blocks on this one.
    pub runtime: tokio::runtime::Handle,
    /// Told when a write fails: the leader steps down.
    pub failed: Arc<Notify>,
    /// How long a write may wait for ZooKeeper (the session timeout).
    pub timeout: Duration,
}

impl Replicate for ZkReplica {
    fn limit(&self) -> usize {
        stride_zk::NODE_LIMIT
    }

    fn replicate(&self, first: Seq, batch: &[u8]) -> Result<(), ReplicaError> {
        // Built inside the runtime: a timer needs its context.
        let outcome = self.runtime.block_on(async {
            let append = self.zk.append(&self.leadership, first.0, batch);
            tokio::time::timeout(self.timeout, append).await
        });
        let error = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error @ (ZkError::Fenced { .. } | ZkError::Request { .. }))) => {
                ReplicaError::Deposed(error.to_string())
            }
            Ok(Err(error)) => ReplicaError::Unknown(error.to_string()),
            Err(_) => ReplicaError::Unknown(format!(
                "ZooKeeper did not answer within {:?}",
                self.timeout
            )),
        };
        self.failed.notify_one();
        Err(error)
    }
}
