/// What can go wrong talking to ZooKeeper, as Stride needs to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error(
        "invalid ZooKeeper URL {url:?}: {reason} (expected zk://host:port[,host:port...]/path)"
    )]
    Url { url: String, reason: &'static str },
    #[error("cannot open a ZooKeeper session with {servers}")]
    Connect {
        servers: String,
        #[source]
        source: zookeeper_client::Error,
    },
    /// The epoch moved on: another instance won since. Nothing was written.
    #[error("fenced: epoch {epoch} is no longer the leader's; nothing was written")]
    Fenced { epoch: u64 },
    #[error("a batch of {bytes} bytes exceeds ZooKeeper's node limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// The connection dropped with the request in flight: it may or may not
    /// have been applied.
    #[error("ZooKeeper connection lost during {what}; its outcome is unknown")]
    Unknown { what: &'static str },
    #[error("the ZooKeeper session expired")]
    SessionExpired,
    /// Seen by a watcher of the session: expired, closed, or its
    /// authentication failed.
    #[error("the ZooKeeper session is {state:?}")]
    Ended {
        state: zookeeper_client::SessionState,
    },
    #[error("ZooKeeper {what} failed")]
    Request {
        what: &'static str,
        #[source]
        source: zookeeper_client::Error,
    },
    #[error("unexpected node {path} in ZooKeeper")]
    Stray { path: String },
}

impl ZkError {
    pub(crate) fn request(what: &'static str) -> impl FnOnce(zookeeper_client::Error) -> ZkError {
        move |source| match source {
            zookeeper_client::Error::ConnectionLoss => ZkError::Unknown { what },
            zookeeper_client::Error::SessionExpired => ZkError::SessionExpired,
            source => ZkError::Request { what, source },
        }
    }
}
