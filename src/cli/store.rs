//! `stride store verify|export|backup|restore|repair`: checks, dumps, copies
//! and repairs of a store.

use anyhow::{Context, bail};
use clap::Subcommand;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stride_log::event::Seq;
use stride_log::event::json::envelope_json;
use stride_log::store::backup::{self, Summary};
use stride_log::store::{Acknowledged, EventLog, restore};
use stride_runtime::clock::now_micros;

use super::remote::{ClientAuth, Remote, block_on};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Check every record, the seqs against the watermark, the indexes and
    /// the snapshots; exit non-zero naming whatever is lost or damaged.
    Verify {
        #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
        data_dir: PathBuf,
    },
    /// Print the log as JSON lines.
    Export {
        #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
        data_dir: PathBuf,
        /// First seq to print.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Copy the store to a file: the log up to its acknowledged head, with
    /// its idempotency records and callback cursors. While `stride serve`
    /// runs on the store, the copy comes from it, and it keeps serving.
    Backup {
        #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
        data_dir: PathBuf,
        /// The backup file to write (replaced only once complete).
        #[arg(long)]
        to: PathBuf,
        /// How to reach the server running on the store, if one is.
        #[command(flatten)]
        auth: ClientAuth,
    },
    /// Replace the store with a backup, rebuilding its indexes; the store
    /// it replaces is kept in a `replaced-<time>` directory beside it.
    Restore {
        #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
        data_dir: PathBuf,
        /// A backup written by `stride store backup`.
        #[arg(long)]
        from: PathBuf,
    },
    /// Rebuild a damaged store from its own log (indexes and all); the
    /// store it replaces is kept beside it.
    Repair {
        #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
        data_dir: PathBuf,
        /// When acknowledged events (or idempotency records) are lost, keep
        /// the intact part of the log and give up the rest.
        #[arg(long)]
        accept_loss: bool,
    },
}

pub fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Verify { data_dir } => verify(&data_dir),
        StoreCommand::Export { data_dir, from } => export(&data_dir, Seq(from)),
        StoreCommand::Backup { data_dir, to, auth } => write_backup(&data_dir, &to, &auth),
        StoreCommand::Restore { data_dir, from } => restore_backup(&data_dir, &from),
        StoreCommand::Repair {
            data_dir,
            accept_loss,
        } => repair(&data_dir, accept_loss),
    }
}

/// Opening creates a store where there is none; these commands must not.
fn open_existing(data_dir: &Path) -> anyhow::Result<EventLog> {
    if !data_dir.join("db").exists() {
        bail!("--data-dir {}: no Stride store there", data_dir.display());
    }
    EventLog::open(data_dir).with_context(|| format!("--data-dir {}", data_dir.display()))
}

/// Whether a process (a running `stride serve`) holds the store's lock.
fn in_use(data_dir: &Path) -> anyhow::Result<bool> {
    use nix::fcntl::{Flock, FlockArg};
    let db = data_dir.join("db");
    let file = match File::open(&db) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(e).with_context(|| format!("--data-dir: cannot open {}", db.display()));
        }
    };
    Ok(Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err())
}

/// sled closes a store's files a moment after its handle is dropped.
fn wait_until_closed(dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_use(dir)? {
        if Instant::now() > deadline {
            bail!("{}: the store is still open", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn refuse_if_served(data_dir: &Path) -> anyhow::Result<()> {
    if in_use(data_dir)? {
        bail!(
            "--data-dir {}: the store is in use (is `stride serve` running on it?); stop it first",
            data_dir.display()
        );
    }
    Ok(())
}

fn verify(data_dir: &Path) -> anyhow::Result<()> {
    let log = open_existing(data_dir)?;
    let verified = stride_server::verify::verify(&log).context("the store could not be read")?;
    let report = &verified.report;
    println!(
        "{} records, head {}, {} snapshots checked",
        report.records, report.head, verified.snapshots_checked
    );
    match report.acknowledged {
        Acknowledged::Mark(mark) => println!("watermark: seqs up to {} acknowledged", mark.durable),
        Acknowledged::Created => println!("watermark: created on this open"),
        Acknowledged::Missing => println!("watermark: missing"),
        Acknowledged::Damaged => println!("watermark: damaged"),
    }
    if report.unchecked > 0 {
        println!(
            "{} records predate checksums (store format 1 or 2): checked by decoding them",
            report.unchecked
        );
    }
    for cache in &report.caches {
        println!("cache: {cache}");
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if !report.problems.is_empty() {
        println!("{}", report.refusal(data_dir));
    }
    if !verified.is_ok() {
        bail!(
            "{}: {} problems found{}",
            data_dir.display(),
            report.problems.len() + report.caches.len(),
            if report.problems.is_empty() {
                " (damaged caches only; nothing was lost)"
            } else {
                ""
            }
        );
    }
    println!("ok");
    Ok(())
}

fn export(data_dir: &Path, from: Seq) -> anyhow::Result<()> {
    let log = open_existing(data_dir)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for envelope in log.iter_from(from) {
        let envelope = envelope.context("the log could not be read")?;
        serde_json::to_writer(&mut out, &envelope_json(&envelope))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn write_backup(data_dir: &Path, to: &Path, auth: &ClientAuth) -> anyhow::Result<()> {
    if !data_dir.join("db").exists() {
        bail!("--data-dir {}: no Stride store there", data_dir.display());
    }
    let partial = PathBuf::from(format!("{}.partial", to.display()));
    let file = File::create(&partial)
        .with_context(|| format!("--to {}: cannot create {}", to.display(), partial.display()))?;
    let written = if in_use(data_dir)? {
        backup_from_server(data_dir, &file, auth).and_then(|()| {
            let copy = File::open(&partial).context("cannot read the backup back")?;
            backup::inspect(BufReader::new(copy)).context("the server's backup does not check out")
        })
    } else {
        backup_offline(data_dir, &file)
    };
    let summary = written
        .and_then(|summary| {
            file.sync_all().context("cannot fsync the backup")?;
            std::fs::rename(&partial, to).context("cannot rename the backup into place")?;
            let parent = to.parent().filter(|p| !p.as_os_str().is_empty());
            File::open(parent.unwrap_or(Path::new(".")))
                .and_then(|dir| dir.sync_all())
                .context("cannot fsync the backup's directory")?;
            Ok(summary)
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("--to {}", to.display()))?;
    println!(
        "backup of seqs 1..={} ({} events, {} idempotency records, {} callback cursors) written to {}",
        summary.head,
        summary.events,
        summary.idempotency,
        summary.cursors,
        to.display()
    );
    Ok(())
}

fn backup_offline(data_dir: &Path, file: &File) -> anyhow::Result<Summary> {
    let log = open_existing(data_dir)?;
    let report = log.check().context("the store could not be read")?;
    if !report.problems.is_empty() {
        bail!(
            "--data-dir {}: refusing to back up a damaged store: {}",
            data_dir.display(),
            report.refusal(data_dir)
        );
    }
    let head = log.head()?;
    Ok(log.backup(head, now_micros(), false, BufWriter::new(file))?)
}

/// Streams `GET /v1/backup` from the server running on the store, as any
/// client of it does (token, CA file).
fn backup_from_server(data_dir: &Path, file: &File, auth: &ClientAuth) -> anyhow::Result<()> {
    let serving = data_dir.join(backup::SERVING_FILE);
    let Some(url) = backup::serving_url(data_dir) else {
        bail!(
            "--data-dir {}: the store is in use, but no server names itself in {} (is it an older stride serve?)",
            data_dir.display(),
            serving.display()
        );
    };
    let remote = Remote {
        url: url
            .parse()
            .with_context(|| format!("{}: not a URL: {url}", serving.display()))?,
        auth: auth.clone(),
    };
    let endpoint = remote.endpoint("/v1/backup")?;
    let api = remote.api()?;
    block_on(async {
        let mut response = api
            .get_streamed(endpoint.clone())
            .await
            .with_context(|| format!("cannot get a backup from {endpoint}"))?;
        let mut out = BufWriter::new(file);
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("the backup from {endpoint} broke off"))?
        {
            out.write_all(&chunk).context("cannot write the backup")?;
        }
        out.flush().context("cannot write the backup")?;
        Ok(())
    })
}

fn restore_backup(data_dir: &Path, from: &Path) -> anyhow::Result<()> {
    refuse_if_served(data_dir)?;
    let input = File::open(from).with_context(|| format!("--from {}", from.display()))?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("--data-dir {}: cannot create it", data_dir.display()))?;
    let summary = rebuild(data_dir, BufReader::new(input))
        .with_context(|| format!("--from {}", from.display()))?;
    println!(
        "restored seqs 1..={} ({} events, {} idempotency records, {} callback cursors) from {}",
        summary.0.head,
        summary.0.events,
        summary.0.idempotency,
        summary.0.cursors,
        from.display()
    );
    if let Some(aside) = summary.1 {
        println!("the store it replaced is kept in {}", aside.display());
    }
    Ok(())
}

/// Restores `input` beside the store in `data_dir`, then puts it in place.
fn rebuild(
    data_dir: &Path,
    input: impl std::io::Read,
) -> anyhow::Result<(Summary, Option<PathBuf>)> {
    let staged = data_dir.join(format!(".restoring-{}", std::process::id()));
    let summary = restore::restore(input, &staged)?;
    wait_until_closed(&staged)?;
    let aside = restore::install(data_dir, &staged).with_context(|| {
        format!(
            "cannot put the restored store in place in {}",
            data_dir.display()
        )
    })?;
    Ok((summary, aside))
}

fn repair(data_dir: &Path, accept_loss: bool) -> anyhow::Result<()> {
    refuse_if_served(data_dir)?;
    let log = open_existing(data_dir)?;
    let report = log.check().context("the store could not be read")?;
    for cache in &report.caches {
        println!("cache: {cache}");
    }
    if report.problems.is_empty() {
        println!("the store is intact; nothing else to repair");
        return Ok(());
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    let keep = report.intact_through();
    if report.loses_history() && !accept_loss {
        bail!(
            "--data-dir {}: repairing gives up acknowledged history (it keeps seqs 1..={keep}); \
             pass --accept-loss to do so, or restore a backup instead",
            data_dir.display()
        );
    }
    let copy = data_dir.join(format!(".repair-{}.backup", std::process::id()));
    let written = File::create(&copy)
        .map_err(anyhow::Error::from)
        .and_then(|file| Ok(log.backup(keep, now_micros(), true, BufWriter::new(file))?));
    drop(log);
    let rebuilt = written
        .and_then(|_| {
            wait_until_closed(data_dir)?;
            rebuild(data_dir, BufReader::new(File::open(&copy)?))
        })
        .with_context(|| format!("--data-dir {}: the repair failed", data_dir.display()));
    let _ = std::fs::remove_file(&copy);
    let (summary, aside) = rebuilt?;
    println!(
        "rebuilt the store from seqs 1..={} ({} idempotency records, {} callback cursors)",
        summary.head, summary.idempotency, summary.cursors
    );
    if let Some(aside) = aside {
        println!("the damaged store is kept in {}", aside.display());
    }
    Ok(())
}
