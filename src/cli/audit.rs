//! `stride audit`: who changed what, when, from `GET /v1/audit`.

use super::remote::Remote;
use super::table;
use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use std::io::Write;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// An app id, or every app under a prefix ending in / (e.g. /prod/).
    #[arg(long)]
    app: Option<String>,
    #[arg(long)]
    task: Option<String>,
    /// `api:<user>`, `reconciler` or `mesos`.
    #[arg(long)]
    actor: Option<String>,
    /// Only events of this type (repeatable), e.g. AppUpdated.
    #[arg(long = "type")]
    types: Vec<String>,
    /// Start: a duration ago (2h, 30m), an RFC 3339 time, or a seq.
    #[arg(long)]
    since: Option<String>,
    /// End, inclusive: as --since.
    #[arg(long)]
    until: Option<String>,
    /// Print at most this many events.
    #[arg(long, default_value_t = 1_000)]
    limit: usize,
    /// Newest first.
    #[arg(long)]
    desc: bool,
    /// Under each change of a definition, the fields that changed, before
    /// and after (`instances: 3 -> 5`).
    #[arg(long)]
    diff: bool,
    /// Print JSON lines instead of a table (with `changes` on definition
    /// changes).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Events fetched per request.
const PAGE: usize = 500;

pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let mut base = vec![("order", if args.desc { "desc" } else { "asc" }.to_owned())];
    for (key, value) in [
        ("app", &args.app),
        ("task", &args.task),
        ("actor", &args.actor),
    ] {
        if let Some(value) = value {
            base.push((key, value.clone()));
        }
    }
    for kind in &args.types {
        base.push(("type", kind.clone()));
    }
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(value) = value {
            base.push((key, bound(key, value)?));
        }
    }
    super::remote::block_on(print_pages(args, base))
}

/// A duration means that long ago; anything else goes to the server as is.
fn bound(flag: &str, value: &str) -> anyhow::Result<String> {
    if value.bytes().all(|b| b.is_ascii_digit()) || value.contains('T') {
        return Ok(value.to_owned());
    }
    let ago = humantime::parse_duration(value).with_context(|| {
        format!("--{flag} {value}: expected a duration (2h), an RFC 3339 time or a seq")
    })?;
    let ago = chrono::Duration::from_std(ago)
        .with_context(|| format!("--{flag} {value}: too long ago"))?;
    Ok((Utc::now() - ago).to_rfc3339_opts(SecondsFormat::Micros, true))
}

async fn print_pages(args: AuditArgs, base: Vec<(&'static str, String)>) -> anyhow::Result<()> {
    let api = args.remote.api()?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{}", table::header())?;
    }
    let mut printed = 0;
    let mut cursor: Option<String> = None;
    while printed < args.limit {
        let mut url = args.remote.endpoint("/v1/audit")?;
        url.query_pairs_mut()
            .extend_pairs(&base)
            .append_pair("limit", &PAGE.min(args.limit - printed).to_string());
        if let Some(cursor) = &cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let page = api.get(url).await?;
        for event in page["events"].as_array().into_iter().flatten() {
            if args.json {
                writeln!(out, "{event}")?;
            } else {
                writeln!(out, "{}", table::row(event))?;
                if args.diff {
                    for line in table::change_lines(event) {
                        writeln!(out, "{line}")?;
                    }
                }
            }
            printed += 1;
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(())
}
