//! `stride store verify|export`: offline checks and dumps of a store.

use crate::event::Seq;
use crate::event::json::envelope_json;
use crate::store::EventLog;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Check every record, the seqs, the indexes and the snapshots.
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
}

pub fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Verify { data_dir } => verify(&data_dir),
        StoreCommand::Export { data_dir, from } => export(&data_dir, Seq(from)),
    }
}

/// Opening creates a store where there is none; verify and export must not.
fn open_existing(data_dir: &Path) -> anyhow::Result<EventLog> {
    if !data_dir.join("db").exists() {
        bail!("--data-dir {}: no Stride store there", data_dir.display());
    }
    EventLog::open(data_dir).with_context(|| format!("--data-dir {}", data_dir.display()))
}

fn verify(data_dir: &Path) -> anyhow::Result<()> {
    let log = open_existing(data_dir)?;
    let report = crate::verify::verify(&log).context("the store could not be read")?;
    println!(
        "{} records, head {}, {} snapshots checked",
        report.records, report.head, report.snapshots_checked
    );
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if !report.is_ok() {
        bail!(
            "{}: {} problems found",
            data_dir.display(),
            report.problems.len()
        );
    }
    println!("ok");
    Ok(())
}

fn export(data_dir: &Path, from: Seq) -> anyhow::Result<()> {
    let log = open_existing(data_dir)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for envelope in log.iter_from(from) {
        let envelope = envelope.context("the log could not be read")?;
        serde_json::to_writer(&mut out, &envelope_json(&envelope))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
