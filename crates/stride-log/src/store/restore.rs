//! Restoring a backup (`backup.rs`) into a new store, whose indexes are
//! rebuilt from the log; and putting a rebuilt store in place of the one
//! in a data directory, which is kept aside, never deleted.

use super::backup::{BackupError, Frame, Reader, Summary};
use super::write::{Batch, Postings};
use super::{CommandRecord, EventLog, LogWriter, StoreError};
use crate::codec;
use crate::event::{Envelope, Seq};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Events restored per transaction.
const RESTORE_BATCH: usize = 1024;

/// Restores the backup read from `input` into a new store at `into`, which
/// must not exist yet. Everything is checked (frames, records, counts,
/// the rebuilt store) before this returns; on error `into` is removed.
pub fn restore(input: impl Read, into: &Path) -> Result<Summary, BackupError> {
    if into.exists() {
        return Err(BackupError::Io {
            what: format!("{}: already exists", into.display()),
            source: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    let result = restore_into(input, into);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(into);
    }
    result
}

fn restore_into(input: impl Read, into: &Path) -> Result<Summary, BackupError> {
    let mut reader = Reader::open(input)?;
    let Frame::Header { head } = reader.next()? else {
        return Err(reader.damaged("it does not start with its header"));
    };
    let log = LogWriter::open(into)?;
    let mut restored = Summary {
        head,
        ..Summary::default()
    };
    let mut events = Vec::new();
    let mut idempotency = Vec::new();
    let trailer = loop {
        let frame = reader.next()?;
        if !matches!(frame, Frame::Event { .. }) && !events.is_empty() {
            flush_events(&log, &mut events)?;
        }
        match frame {
            Frame::Event { seq, record } => {
                if seq != Seq(restored.events + 1) {
                    return Err(reader.damaged(format!("seq {seq} out of order")));
                }
                let envelope = codec::decode(seq, &record).map_err(|e| BackupError::Record {
                    seq,
                    error: e.to_string(),
                })?;
                events.push((Arc::new(envelope), record));
                restored.events += 1;
                if events.len() == RESTORE_BATCH {
                    flush_events(&log, &mut events)?;
                }
            }
            Frame::Idempotency { key, value } => {
                CommandRecord::decode(&value)?;
                idempotency.push((key, value));
                restored.idempotency += 1;
            }
            Frame::Cursor { url, seq } => {
                log.cursors.insert(url, seq).map_err(StoreError::from)?;
                restored.cursors += 1;
            }
            Frame::Trailer(summary) => break summary,
            Frame::Header { .. } => return Err(reader.damaged("a second header")),
        }
    };
    if trailer != restored || restored.head != Seq(restored.events) {
        return Err(reader.damaged(format!(
            "its trailer says {trailer:?}, but it holds {restored:?}"
        )));
    }
    log.write(Batch {
        records: Vec::new(),
        postings: Postings::of(&[]),
        idempotency,
    })?;
    log.sync()?;
    let report = log.check()?;
    if !report.problems.is_empty() || report.head != head {
        return Err(BackupError::Damaged {
            offset: reader.offset,
            what: format!(
                "the restored store does not check out: {:?}",
                report.problems
            ),
        });
    }
    Ok(restored)
}

fn flush_events(
    log: &EventLog,
    events: &mut Vec<(Arc<Envelope>, Vec<u8>)>,
) -> Result<(), StoreError> {
    let envelopes: Vec<_> = events.iter().map(|(e, _)| e.clone()).collect();
    let records = events
        .drain(..)
        .map(|(e, record)| (e.seq, record))
        .collect();
    log.write(Batch {
        records,
        postings: Postings::of(&envelopes),
        idempotency: Vec::new(),
    })
}

/// The files of a store in a data directory: sled's, the watermark and
/// the snapshot files (a restored store must not pick up the replaced
/// store's snapshots: they are of another log).
fn is_store_file(name: &str) -> bool {
    matches!(
        name,
        "conf" | "db" | "blobs" | "watermark" | "watermark.partial" | super::snapshot::DIR
    ) || name.starts_with("snap.")
        || name.starts_with("damaged-snap.")
}

/// Moves the store in `data_dir` (if any) aside into a new
/// `replaced-<time>` directory there, then the store in `staged` (a
/// directory inside `data_dir`) into its place. Neither may be open.
/// Returns where the replaced store went.
pub fn install(data_dir: &Path, staged: &Path) -> std::io::Result<Option<PathBuf>> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let mut aside = data_dir.join(format!("replaced-{stamp}"));
    for n in 1.. {
        if !aside.exists() {
            break;
        }
        aside = data_dir.join(format!("replaced-{stamp}-{n}"));
    }
    let mut replaced = false;
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        if is_store_file(&entry.file_name().to_string_lossy()) {
            std::fs::create_dir_all(&aside)?;
            std::fs::rename(entry.path(), aside.join(entry.file_name()))?;
            replaced = true;
        }
    }
    for entry in std::fs::read_dir(staged)? {
        let entry = entry?;
        std::fs::rename(entry.path(), data_dir.join(entry.file_name()))?;
    }
    std::fs::remove_dir(staged)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(replaced.then_some(aside))
}
