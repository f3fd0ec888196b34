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

/// Between attempts to reach ZooKeeper, growing to `RETRY_MAX`.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

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

/// Follows the group at `url` into `view` until nobody holds a receiver:
/// every change of its leading node, through disconnections and expired
/// sessions (a new one is opened). Never writes to ZooKeeper.
pub async fn follow_masters(url: ZkUrl, session_timeout: Duration, view: watch::Sender<GroupView>) {
    tokio::select! {
        () = view.closed() => {}
        () = follow(&url, session_timeout, &view) => {}
    }
}

async fn follow(url: &ZkUrl, session_timeout: Duration, view: &watch::Sender<GroupView>) {
    let mut retry = RETRY_MIN;
    loop {
        match open(url, session_timeout).await {
            Ok(client) => {
                retry = RETRY_MIN;
                let why = follow_session(&client, &url.root, view).await;
                unreachable(view, why);
            }
            Err(error) => unreachable(view, error_chain(&error)),
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

fn unreachable(view: &watch::Sender<GroupView>, why: String) {
    view.send_if_modified(|now| {
        let changed = !matches!(now, GroupView::Unreachable(was) if *was == why);
        *now = GroupView::Unreachable(why);
        changed
    });
}

fn error_chain(error: &ZkError) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

/// Reads and watches the group for one session; returns why it ended.
async fn follow_session(client: &Client, path: &str, view: &watch::Sender<GroupView>) -> String {
    let mut state = client.state_watcher();
    loop {
        let watcher = match read(client, path).await {
            Ok((leader, watcher)) => {
                view.send_if_modified(|now| {
                    let read = GroupView::Read(leader);
                    let changed = *now != read;
                    *now = read;
                    changed
                });
                watcher
            }
            Err(error) if client.state().is_terminated() => return error.to_string(),
            Err(error) => {
                unreachable(view, format!("reading {path}: {error}"));
                tokio::time::sleep(RETRY_MIN).await;
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
                        return format!("the ZooKeeper session is {:?}", event.session_state);
                    }
                    break;
                }
                now = state.changed() => match now {
                    SessionState::Disconnected => {
                        unreachable(view, "disconnected from ZooKeeper".to_owned());
                    }
                    // Read again: nothing said while away is assumed.
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => break,
                    ended => return format!("the ZooKeeper session is {ended:?}"),
                },
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
