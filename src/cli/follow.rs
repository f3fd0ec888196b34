//! Following the log on `GET /v1/stream`, for `stride events` and for
//! `--wait`. With `resume`, a dropped connection (a restarting server, an
//! idle cut) is opened again from the seq after the last event seen, so
//! nothing is missed or seen twice.

use super::exit::Failure;
use super::remote::Remote;
use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Url;
use serde_json::Value;
use std::time::Duration;
use stride_protocol::ServerMessage;
use stride_protocol::stream::MessageError;
use stride_runtime::Backoff;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub enum Followed {
    /// An event, as JSON (so every type reads, a newer server's too), and
    /// the text it came in.
    Event(Value, String),
    /// Every matching event up to the log's head so far has been given.
    CaughtUp,
}

pub struct Follower {
    remote: Remote,
    /// `type`, `app`, `task` filters, as `/v1/stream` takes them.
    filters: Vec<(&'static str, String)>,
    /// Where the next connection starts: a seq, or `now`.
    from: String,
    resume: bool,
    /// Whether a connection was ever made: after that, with `resume`, a
    /// server that went away is waited for.
    connected: bool,
    ws: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    backoff: Backoff,
}

impl Follower {
    pub fn new(
        remote: &Remote,
        from: String,
        filters: Vec<(&'static str, String)>,
        resume: bool,
    ) -> Follower {
        Follower {
            remote: remote.clone(),
            filters,
            from,
            resume,
            connected: false,
            ws: None,
            backoff: Backoff::new(Duration::from_millis(250), MAX_BACKOFF),
        }
    }

    /// The next event or catch-up; an error when the stream cannot go on
    /// (without `resume`, whenever it breaks).
    pub async fn next(&mut self) -> anyhow::Result<Followed> {
        loop {
            let Some(ws) = self.ws.as_mut() else {
                self.ws = self.connect().await?;
                continue;
            };
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    // A stopping server (1001) or an idle cut (4408) is
                    // worth a reconnect; the rest is not.
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    if !(self.resume && matches!(code, None | Some(1001) | Some(4408))) {
                        match frame {
                            Some(frame) => bail!(
                                "the server closed the stream: {} {}",
                                frame.code,
                                frame.reason
                            ),
                            None => bail!("the server closed the stream"),
                        }
                    }
                    eprintln!(
                        "stride: the server closed the stream; resuming from {}",
                        self.from
                    );
                    self.drop_connection().await;
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) if self.resume => {
                    eprintln!(
                        "stride: stream interrupted ({error}); resuming from {}",
                        self.from
                    );
                    self.drop_connection().await;
                    continue;
                }
                Some(Err(error)) => return Err(error).context("the stream failed"),
                None if self.resume => {
                    self.drop_connection().await;
                    continue;
                }
                None => bail!("the stream ended before catching up"),
            };
            match ServerMessage::<Value>::parse(&text) {
                Ok(ServerMessage::Progress { seq, .. }) => {
                    self.from = (seq.0 + 1).to_string();
                    return Ok(Followed::CaughtUp);
                }
                Ok(ServerMessage::Error(error)) => bail!("{}", error.message),
                Ok(ServerMessage::Event(event)) => {
                    self.from = (event["seq"].as_u64().unwrap_or(0) + 1).to_string();
                    return Ok(Followed::Event(event, text.to_string()));
                }
                Err(MessageError::Unknown(_)) => {}
                Err(error) => return Err(error).context("the server sent a bad message"),
            }
        }
    }

    async fn drop_connection(&mut self) {
        self.ws = None;
        tokio::time::sleep(self.backoff.next_delay()).await;
    }

    async fn connect(
        &mut self,
    ) -> anyhow::Result<Option<WebSocketStream<MaybeTlsStream<TcpStream>>>> {
        let url = self.url()?;
        let request = self.remote.websocket_request(&url)?;
        let connector = self.remote.credentials()?.websocket_connector();
        match tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector).await
        {
            Ok((ws, _)) => {
                self.connected = true;
                self.backoff.reset();
                Ok(Some(ws))
            }
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                bail!(
                    "{url}: {} {}",
                    response.status(),
                    String::from_utf8_lossy(body)
                );
            }
            Err(error) if self.resume && self.connected => {
                eprintln!("stride: reconnecting after {error}");
                tokio::time::sleep(self.backoff.next_delay()).await;
                Ok(None)
            }
            Err(error) => Err(Failure::Unreachable(format!(
                "cannot reach Stride at {} (--stride or STRIDE_URL): {error}{}",
                self.remote.url,
                super::remote::untrusted_hint(&error)
            ))
            .into()),
        }
    }

    fn url(&self) -> anyhow::Result<Url> {
        let mut url = self.remote.endpoint("/v1/stream")?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        if url.set_scheme(scheme).is_err() {
            bail!("--stride {}: not an http(s) URL", self.remote.url);
        }
        url.query_pairs_mut()
            .append_pair("from", &self.from)
            .extend_pairs(&self.filters);
        Ok(url)
    }
}
