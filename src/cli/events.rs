//! `stride events`: the log as it is streamed by `GET /v1/stream`.
//!
//! Without `--follow` it prints what exists and stops at the server's first
//! `progress` message (sent once the stream has caught up). With `--follow`
//! it keeps going and, if the connection drops, resumes from the last seq it
//! saw, so nothing is printed twice or skipped.

use super::follow::{Followed, Follower};
use super::remote::Remote;
use super::table;
use std::io::Write;

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

pub fn run(args: EventsArgs) -> anyhow::Result<()> {
    super::remote::block_on(follow(args))
}

async fn follow(args: EventsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{}", table::header())?;
    }
    let mut filters: Vec<(&'static str, String)> = args
        .types
        .iter()
        .map(|kind| ("type", kind.clone()))
        .collect();
    filters.extend(args.app.clone().map(|app| ("app", app)));
    filters.extend(args.task.clone().map(|task| ("task", task)));
    let mut follower = Follower::new(&args.remote, args.from.clone(), filters, args.follow);
    loop {
        match follower.next().await? {
            Followed::CaughtUp if !args.follow => return Ok(()),
            Followed::CaughtUp => {}
            Followed::Event(_, text) if args.json => writeln!(out, "{text}")?,
            Followed::Event(event, _) => writeln!(out, "{}", table::row(&event))?,
        }
        out.flush()?;
    }
}
