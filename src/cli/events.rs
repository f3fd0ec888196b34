//! `stride events`: the log as it is streamed by `GET /v1/stream`.
//!
//! Without `--follow` it prints what exists and stops at the server's first
//! `progress` message (sent once the stream has caught up). With `--follow`
//! it keeps going and, if the connection drops, resumes from the last seq it
//! saw, so nothing is printed twice or skipped.

use super::remote::Remote;
use super::table;
use crate::protocol::ServerMessage;
use crate::protocol::stream::MessageError;
use crate::runtime::Backoff;
use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Url;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct EventsArgs {
    /// First seq to print, or `now` for only new events.
    #[arg(long, default_value = "1")]
    from: String,
    /// Only events of this type (repeatable), e.g. AppUpdated.
    #[arg(long = "type")]
    types: Vec<String>,
    /// Only events of this app, or of every app under a prefix ending in /.
    #[arg(long)]
    app: Option<String>,
    /// Only events of this task.
    #[arg(long)]
    task: Option<String>,
    /// Keep printing new events as they are appended.
    #[arg(long)]
    follow: bool,
    /// Print JSON lines (the stream's messages) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Longest wait between reconnection attempts with `--follow`.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub fn run(args: EventsArgs) -> anyhow::Result<()> {
    super::remote::block_on(follow(args))
}

async fn follow(args: EventsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{}", table::header())?;
    }
    let mut from = args.from.clone();
    let mut backoff = Backoff::new(Duration::from_millis(250), MAX_BACKOFF);
    loop {
        let url = stream_url(&args, &from)?;
        let (mut ws, _) =
            match tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await {
                Ok(connected) => connected,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    let body = response.body().as_deref().unwrap_or_default();
                    bail!(
                        "{url}: {} {}",
                        response.status(),
                        String::from_utf8_lossy(body)
                    );
                }
                Err(error) if args.follow && from != args.from => {
                    eprintln!("stride: reconnecting after {error}");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot connect to {url}"));
                }
            };
        backoff.reset();
        while let Some(message) = ws.next().await {
            let text = match message {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(frame)) => {
                    // A stopping server (1001) or an idle cut (4408) is
                    // worth a reconnect when following; the rest is not.
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    if args.follow && matches!(code, None | Some(1001) | Some(4408)) {
                        eprintln!("stride: the server closed the stream; resuming from {from}");
                        break;
                    }
                    if let Some(frame) = frame {
                        bail!(
                            "the server closed the stream: {} {}",
                            frame.code,
                            frame.reason
                        );
                    }
                    break;
                }
                Ok(_) => continue,
                Err(error) if args.follow => {
                    eprintln!("stride: stream interrupted ({error}); resuming from {from}");
                    break;
                }
                Err(error) => return Err(error).context("the stream failed"),
            };
            // Events as JSON, so every event type prints, a newer server's too.
            match ServerMessage::<Value>::parse(&text) {
                Ok(ServerMessage::Progress { seq, .. }) => {
                    from = (seq.0 + 1).to_string();
                    if !args.follow {
                        return Ok(());
                    }
                }
                Ok(ServerMessage::Error(error)) => bail!("{}", error.message),
                Ok(ServerMessage::Event(event)) => {
                    from = (event["seq"].as_u64().unwrap_or(0) + 1).to_string();
                    if args.json {
                        writeln!(out, "{text}")?;
                    } else {
                        writeln!(out, "{}", table::row(&event))?;
                    }
                    out.flush()?;
                }
                Err(MessageError::Unknown(_)) => {}
                Err(error) => return Err(error).context("the server sent a bad message"),
            }
        }
        if !args.follow {
            bail!("the stream ended before catching up");
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn stream_url(args: &EventsArgs, from: &str) -> anyhow::Result<Url> {
    let mut url = args.remote.endpoint("/v1/stream")?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    if url.set_scheme(scheme).is_err() {
        bail!("--stride {}: not an http(s) URL", args.remote.url);
    }
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("from", from);
        for kind in &args.types {
            query.append_pair("type", kind);
        }
        if let Some(app) = &args.app {
            query.append_pair("app", app);
        }
        if let Some(task) = &args.task {
            query.append_pair("task", task);
        }
    }
    Ok(url)
}
