use crate::{ZkError, ZkUrl};
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

/// One ZooKeeper session and Stride's tree under the URL's path. A session
/// that expired is dead for good: open another.
pub struct Zk {
    pub(crate) client: Client,
    pub(crate) root: String,
}

/// A session as Stride acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Connected,
    /// No answer within the connection timeout (2/5 of the session's): the
    /// session may still live, but ZooKeeper may expire it at any moment.
    Disconnected,
    /// Terminal: ephemeral nodes are gone, another instance may lead.
    Expired,
}

pub struct SessionWatch(zookeeper_client::StateWatcher);

impl SessionWatch {
    /// The next change of the session's state.
    pub async fn changed(&mut self) -> SessionState {
        state(self.0.changed().await)
    }

    pub fn now(&self) -> SessionState {
        state(self.0.peek_state())
    }
}

fn state(state: zookeeper_client::SessionState) -> SessionState {
    use zookeeper_client::SessionState as S;
    match state {
        S::SyncConnected | S::ConnectedReadOnly => SessionState::Connected,
        S::Disconnected => SessionState::Disconnected,
        _ => SessionState::Expired,
    }
}

pub(crate) fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

pub(crate) fn ephemeral() -> CreateOptions<'static> {
    CreateMode::Ephemeral.with_acls(Acls::anyone_all())
}

/// A session with `url`'s servers, creating nothing.
pub(crate) async fn open(url: &ZkUrl, session_timeout: Duration) -> Result<Client, ZkError> {
    Client::connector()
        .with_session_timeout(session_timeout)
        .connect(&url.servers)
        .await
        .map_err(|source| ZkError::Connect {
            servers: url.servers.clone(),
            source,
        })
}

impl Zk {
    /// Opens a session (asking for `session_timeout`) and makes Stride's tree.
    pub async fn connect(url: &ZkUrl, session_timeout: Duration) -> Result<Zk, ZkError> {
        let client = open(url, session_timeout).await?;
        let zk = Zk {
            client,
            root: url.root.clone(),
        };
        for dir in ["election", "log", "members", "applied"] {
            zk.client
                .mkdir(&zk.path(dir), &persistent())
                .await
                .map_err(ZkError::request("making Stride's tree"))?;
        }
        match zk
            .client
            .create(&zk.path("epoch"), b"", &persistent())
            .await
        {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(error) => return Err(ZkError::request("creating the epoch node")(error)),
        }
        Ok(zk)
    }

    /// Ends the session now, for a clean stop: ZooKeeper drops its
    /// ephemeral nodes (the candidate, the registration) at once, so a
    /// standby is elected without waiting out the session timeout. Every
    /// handle on the session must be gone (the client closes it when its
    /// last clone drops); waits `within` at most for ZooKeeper's answer,
    /// and says whether it came (if not, the session expires as usual).
    pub async fn close(self, within: Duration) -> bool {
        let mut state = self.client.state_watcher();
        drop(self);
        let closed = async {
            while !state.peek_state().is_terminated() {
                state.changed().await;
            }
        };
        tokio::time::timeout(within, closed).await.is_ok()
    }

    /// The timeout ZooKeeper granted.
    pub fn session_timeout(&self) -> Duration {
        self.client.session_timeout()
    }

    pub fn session(&self) -> SessionWatch {
        SessionWatch(self.client.state_watcher())
    }

    pub(crate) fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.root)
    }

    /// Names this instance's URL while its session lives.
    pub async fn join(&self, id: &str, url: &str) -> Result<(), ZkError> {
        let path = self.path(&format!("members/{id}"));
        match self
            .client
            .create(&path, url.as_bytes(), &ephemeral())
            .await
        {
            Ok(_) => Ok(()),
            // Left by this session before a reconnect: ours, or an earlier
            // session's that expires with it.
            Err(zookeeper_client::Error::NodeExists) => {
                let _ = self.client.delete(&path, None).await;
                self.client
                    .create(&path, url.as_bytes(), &ephemeral())
                    .await
                    .map(drop)
                    .map_err(ZkError::request("naming this instance"))
            }
            Err(error) => Err(ZkError::request("naming this instance")(error)),
        }
    }

    /// Every live instance: (id, URL), as the ensemble holds them now (a
    /// sync first: a lagging server still lists one just gone).
    pub async fn members(&self) -> Result<Vec<(String, String)>, ZkError> {
        let dir = self.path("members");
        self.client
            .sync(&dir)
            .await
            .map_err(ZkError::request("syncing"))?;
        let ids = self
            .client
            .list_children(&dir)
            .await
            .map_err(ZkError::request("listing the instances"))?;
        let mut members = Vec::new();
        for id in ids {
            match self.client.get_data(&format!("{dir}/{id}")).await {
                Ok((url, _)) => members.push((id, String::from_utf8_lossy(&url).into_owned())),
                Err(zookeeper_client::Error::NoNode) => {}
                Err(error) => return Err(ZkError::request("reading an instance")(error)),
            }
        }
        members.sort();
        Ok(members)
    }
}
