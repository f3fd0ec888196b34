//! The Mesos masters' group under a `zk://` path (`--master zk://h:2181/mesos`),
//! read only. Mesos 1.11 masters contend by creating ephemeral sequential
//! `json.info_<seq>` nodes, each holding a JSON `MasterInfo`; the lowest
//! sequence leads (apache/mesos `src/master/contender/zookeeper.cpp`,
//! `src/zookeeper/group.cpp`, `src/zookeeper/detector.cpp`; docs/compat.md).
//! Other children (`log_replicas`, the protobuf `info_` nodes of masters
//! before 0.24) are not masters Stride can read and are passed over. The
//! data stays opaque here: stride-mesos reads the `MasterInfo`.

use crate::session::open;
use crate::{ZkError, ZkUrl};
use std::time::Duration;
use tokio::sync::watch;
use zookeeper_client::{Client, Error, OneshotWatcher, SessionState};

/// The label before `_<seq>` on the nodes of masters that write JSON.
pub const MASTER_LABEL: &str = "json.info";

/// Between reads that failed while the session lives (a reconnect is
/// under way, or the request timed out).
const REREAD: Duration = Duration::from_millis(200);

/// The leading master's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `json.info_0000000007`
    pub name: String,
    /// Its JSON `MasterInfo`, as the master wrote it.
    pub data: Vec<u8>,
}

/// What the group's follower knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupView {
    /// The first session is being opened.
    Connecting,
    /// Read, and watched for the next change: the leading master's node,
    /// or none (no master registered, or no such path yet).
    Read(Option<Member>),
    /// ZooKeeper is out of reach (why): what was read last may still hold.
    Unreachable(String),
}

/// The lowest sequence among the `json.info_<seq>` children, as Mesos's
/// group numbers them (the digits after the last `_`).
pub fn leading_member(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| {
            let digits = name.strip_prefix(MASTER_LABEL)?.strip_prefix('_')?;
            let sequence = digits.parse::<i32>().ok()?;
            Some((sequence, name.as_str()))
        })
        .min()
        .map(|(_, name)| name)
}

/// Shows `now` in `view`, waking its receivers only on a change.
pub fn update_view(view: &watch::Sender<GroupView>, now: GroupView) {
    view.send_if_modified(|was| {
        let changed = *was != now;
        *was = now;
        changed
    });
}

/// One session with the group at a `zk://` URL, read only. A session that
/// ended is dead for good: the caller opens another, at its own pace.
pub struct MastersSession {
    client: Client,
    path: String,
}

impl MastersSession {
    pub async fn open(url: &ZkUrl, session_timeout: Duration) -> Result<MastersSession, ZkError> {
        let client = open(url, session_timeout).await?;
        let path = url.root.clone();
        Ok(MastersSession { client, path })
    }

    /// Reads and watches the group into `view`, every change of its
    /// leading node, through disconnections, until the session ends;
    /// returns why it ended. Never writes to ZooKeeper.
    pub async fn follow(self, view: &watch::Sender<GroupView>) -> ZkError {
        let (client, path) = (&self.client, self.path.as_str());
        let mut state = client.state_watcher();
        loop {
            let watcher = match read(client, path).await {
                Ok((leader, watcher)) => {
                    update_view(view, GroupView::Read(leader));
                    watcher
                }
                Err(_) if client.state().is_terminated() => {
                    return ZkError::Ended {
                        state: client.state(),
                    };
                }
                Err(error) => {
                    update_view(
                        view,
                        GroupView::Unreachable(format!("reading {path}: {error}")),
                    );
                    tokio::time::sleep(REREAD).await;
                    continue;
                }
            };
            // The watch survives a disconnection (ZooKeeper resets it on
            // reconnecting and delivers what was missed); the session's end
            // fires it.
            let changed = watcher.changed();
            tokio::pin!(changed);
            loop {
                tokio::select! {
                    event = &mut changed => {
                        if event.session_state.is_terminated() {
                            return ZkError::Ended { state: event.session_state };
                        }
                        break;
                    }
                    now = state.changed() => match now {
                        SessionState::Disconnected => {
                            let why = "disconnected from ZooKeeper".to_owned();
                            update_view(view, GroupView::Unreachable(why));
                        }
                        // Read again: nothing said while away is assumed.
                        SessionState::SyncConnected | SessionState::ConnectedReadOnly => break,
                        ended => return ZkError::Ended { state: ended },
                    },
                }
            }
        }
    }
}

/// The leading master's node now, and a watch that fires at the group's
/// next change (or the path's creation, when it does not exist yet).
async fn read(client: &Client, path: &str) -> Result<(Option<Member>, OneshotWatcher), Error> {
    loop {
        let (children, watcher) = match client.list_and_watch_children(path).await {
            Ok(listed) => listed,
            Err(Error::NoNode) => match client.check_and_watch_stat(path).await? {
                (None, watcher) => return Ok((None, watcher)),
                // Created in between: list it.
                (Some(_), _) => continue,
            },
            Err(error) => return Err(error),
        };
        let Some(name) = leading_member(&children) else {
            return Ok((None, watcher));
        };
        match client.get_data(&format!("{path}/{name}")).await {
            Ok((data, _)) => {
                let name = name.to_owned();
                return Ok((Some(Member { name, data }), watcher));
            }
            // The leader left between the two reads: list again.
            Err(Error::NoNode) => continue,
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_lowest_json_sequence_leads_whatever_else_is_there() {
        let children = names(&[
            "json.info_0000000012",
            "log_replicas",
            "info_0000000001",
            "json.info_0000000009",
            "json.info_0000000010",
            "json.info_x",
            "json.infos_0000000002",
        ]);
        assert_eq!(leading_member(&children), Some("json.info_0000000009"));
    }

    #[test]
    fn no_json_member_means_no_leader() {
        assert_eq!(leading_member(&names(&[])), None);
        assert_eq!(
            leading_member(&names(&["log_replicas", "info_0000000003"])),
            None
        );
    }

    #[test]
    fn sequences_compare_as_numbers() {
        let children = names(&["json.info_100", "json.info_0000000099"]);
        assert_eq!(leading_member(&children), Some("json.info_0000000099"));
    }
}
