//! `--master zk://h1:2181,h2:2181/mesos`: the leading Mesos master, found
//! in the masters' ZooKeeper group (`stride_zk::MastersSession`) and
//! followed as it changes, one session after another. The scheduler
//! subscribes to whichever master this names; while ZooKeeper is out of
//! reach the last master read stays named, so a working subscription is not
//! dropped for a ZooKeeper blip.

use std::time::Duration;
use stride_mesos::types::MasterInfo;
use stride_runtime::{Backoff, Part, Supervisor};
use stride_zk::{GroupView, MastersSession, ZkUrl, update_view};
use tokio::sync::watch;

/// Mesos's own detector asks for this session timeout
/// (`MASTER_DETECTOR_ZK_SESSION_TIMEOUT`, docs/compat.md).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Between attempts to open a session: from soon after one that worked,
/// growing to a few seconds while ZooKeeper stays out of reach.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the API shows, and the scheduler follows.
#[derive(Debug, Clone)]
pub struct MasterDetector {
    /// The flag, as `/v2/info` echoes it.
    pub flag: String,
    detected: watch::Receiver<Detected>,
    leader: watch::Receiver<Option<reqwest::Url>>,
}

/// The detector's knowledge now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detected {
    /// The leading master last read; kept while ZooKeeper is unreachable.
    pub leading: Option<Leading>,
    pub state: DetectorState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leading {
    /// Its node: `json.info_<seq>`.
    pub node: String,
    /// Its scheduler API's base URL.
    pub url: reqwest::Url,
    /// Its web UI, as Marathon's `mesos_leader_ui_url` names it.
    pub ui: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DetectorState {
    #[default]
    Connecting,
    /// Read and watched.
    Watching,
    /// ZooKeeper answers, but no master has registered.
    NoMaster,
    /// The leading node holds no usable `MasterInfo` (why).
    Unusable(String),
    /// ZooKeeper is out of reach (why).
    Unreachable(String),
}

impl std::fmt::Display for DetectorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectorState::Connecting => f.write_str("connecting to ZooKeeper"),
            DetectorState::Watching => f.write_str("watching"),
            DetectorState::NoMaster => f.write_str("no Mesos master registered; waiting for one"),
            DetectorState::Unusable(why) => {
                write!(f, "the leading master's node is unusable: {why}")
            }
            DetectorState::Unreachable(why) => {
                write!(
                    f,
                    "ZooKeeper unreachable ({why}); keeping the last known master"
                )
            }
        }
    }
}

impl MasterDetector {
    /// Starts following the group at `url`.
    pub fn start(url: ZkUrl, supervisor: &Supervisor) -> (MasterDetector, Part) {
        let (group_tx, group) = watch::channel(GroupView::Connecting);
        let (detected_tx, detected) = watch::channel(Detected::default());
        let (leader_tx, leader) = watch::channel(None);
        let flag = url.to_string();
        let detector = MasterDetector {
            flag: flag.clone(),
            detected,
            leader,
        };
        let part = supervisor.spawn("Mesos master detector", move |stop| async move {
            tokio::select! {
                () = stop.cancelled() => {}
                never = follow(&url, &group_tx) => match never {},
                () = publish(group, &flag, &detected_tx, &leader_tx) => {}
            }
            Ok::<(), std::convert::Infallible>(())
        });
        (detector, part)
    }

    pub fn now(&self) -> Detected {
        self.detected.borrow().clone()
    }

    /// The leading master's base URL, for `SchedulerConfig::detected`.
    pub fn leader(&self) -> watch::Receiver<Option<reqwest::Url>> {
        self.leader.clone()
    }
}

/// Follows the group at `url` into `view`, a session after another. Each
/// session's end shows in `view` as unreachable, with why: the master read
/// last stays named (`detect`).
async fn follow(url: &ZkUrl, view: &watch::Sender<GroupView>) -> std::convert::Infallible {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    loop {
        let ended = match MastersSession::open(url, SESSION_TIMEOUT).await {
            Ok(session) => {
                backoff.reset();
                session.follow(view).await
            }
            Err(error) => error,
        };
        let why = stride_runtime::error::chain(&ended);
        update_view(view, GroupView::Unreachable(why));
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn publish(
    mut group: watch::Receiver<GroupView>,
    flag: &str,
    detected: &watch::Sender<Detected>,
    leader: &watch::Sender<Option<reqwest::Url>>,
) {
    while group.changed().await.is_ok() {
        let view = group.borrow_and_update().clone();
        let before = detected.borrow().clone();
        let now = detect(&before, view);
        say(flag, &before, &now);
        let url = now.leading.as_ref().map(|l| l.url.clone());
        // Unreachable keeps the last leader named; only a read names another.
        if !matches!(now.state, DetectorState::Unreachable(_)) {
            leader.send_if_modified(|was| {
                let changed = *was != url;
                *was = url;
                changed
            });
        }
        detected.send_replace(now);
    }
}

/// What `view` makes of what was known `before`.
fn detect(before: &Detected, view: GroupView) -> Detected {
    let kept = |state| Detected {
        leading: before.leading.clone(),
        state,
    };
    match view {
        GroupView::Connecting => kept(DetectorState::Connecting),
        GroupView::Unreachable(why) => kept(DetectorState::Unreachable(why)),
        GroupView::Read(None) => Detected {
            leading: None,
            state: DetectorState::NoMaster,
        },
        GroupView::Read(Some(member)) => {
            let read = MasterInfo::from_json(&member.data)
                .and_then(|info| info.url().map(|url| (url, info.ui_url())));
            match read {
                Ok((url, ui)) => Detected {
                    leading: Some(Leading {
                        node: member.name,
                        url,
                        ui,
                    }),
                    state: DetectorState::Watching,
                },
                Err(error) => Detected {
                    leading: None,
                    state: DetectorState::Unusable(format!("{}: {error}", member.name)),
                },
            }
        }
    }
}

/// One log line for each change worth an operator's notice.
fn say(flag: &str, before: &Detected, now: &Detected) {
    if before.state == now.state && before.leading == now.leading {
        return;
    }
    let master = now.leading.as_ref().map(|l| l.url.as_str());
    match &now.state {
        DetectorState::Watching => {
            if let Some(leading) = now
                .leading
                .as_ref()
                .filter(|_| before.leading != now.leading)
            {
                tracing::info!(%flag, master = %leading.url, node = %leading.node, "leading Mesos master detected");
            } else {
                tracing::info!(%flag, master, "ZooKeeper reached again; watching the Mesos masters");
            }
        }
        DetectorState::Connecting => {}
        state => tracing::warn!(%flag, master, "{state}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stride_zk::Member;

    fn member(name: &str, port: u16) -> GroupView {
        let data = format!(
            r#"{{"id":"m","ip":16777343,"port":{port},"hostname":"localhost",
                "address":{{"hostname":"localhost","ip":"127.0.0.1","port":{port}}}}}"#
        );
        GroupView::Read(Some(Member {
            name: name.into(),
            data: data.into_bytes(),
        }))
    }

    #[test]
    fn a_read_names_the_leader_and_unreachable_keeps_it() {
        let read = detect(&Detected::default(), member("json.info_0000000001", 5050));
        let leading = read.leading.clone().expect("a leader");
        assert_eq!(leading.url.as_str(), "http://127.0.0.1:5050/");
        assert_eq!(leading.ui, "http://localhost:5050/");
        assert_eq!(read.state, DetectorState::Watching);
        let away = detect(&read, GroupView::Unreachable("down".into()));
        assert_eq!(away.leading, Some(leading));
        assert_eq!(away.state, DetectorState::Unreachable("down".into()));
    }

    #[test]
    fn no_master_and_an_unusable_node_name_none() {
        let read = detect(&Detected::default(), member("json.info_0000000001", 5050));
        let gone = detect(&read, GroupView::Read(None));
        assert_eq!(gone.leading, None);
        assert_eq!(gone.state, DetectorState::NoMaster);
        let garbled = GroupView::Read(Some(Member {
            name: "json.info_0000000002".into(),
            data: b"master@127.0.0.1:5050".to_vec(),
        }));
        let unusable = detect(&read, garbled);
        assert_eq!(unusable.leading, None);
        assert!(
            unusable.state.to_string().contains("json.info_0000000002"),
            "{}",
            unusable.state
        );
    }
}
