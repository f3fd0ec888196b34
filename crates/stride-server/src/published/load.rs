//! Rebuilding the projection at start: newest usable snapshot, then the tail.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::mpsc::SyncSender;
use stride_core::projection::{State, snapshot};
use stride_log::event::{Envelope, Seq};
use stride_log::store::{EventLog, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("seq {at} is beyond the head of the log ({head})")]
    BeyondHead { at: Seq, head: Seq },
}

/// The state as of `at` (the head when `None`): from the newest snapshot at
/// or before it, then replaying the log, checking that seqs are dense.
pub fn load(log: &EventLog, at: Option<Seq>) -> Result<State, LoadError> {
    let head = log.head()?;
    let target = at.unwrap_or(head);
    if target > head {
        return Err(LoadError::BeyondHead { at: target, head });
    }
    let mut state = newest_snapshot(log, target)?;
    let replay = target.0 - state.seq.0;
    let progress = progress_bar(replay);
    let start = state.seq.next();
    // Decoding and applying each take about half the time: overlap them.
    std::thread::scope(|scope| {
        let (chunks, decoded) = std::sync::mpsc::sync_channel(8);
        scope.spawn(move || decode_chunks(log, start, target, &chunks));
        let mut expected = start;
        for chunk in decoded {
            for envelope in chunk? {
                if envelope.seq != expected {
                    return Err(StoreError::Gap {
                        expected,
                        found: envelope.seq,
                    });
                }
                state.apply(&envelope);
                expected = expected.next();
            }
            progress.set_position(expected.0 - start.0);
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    if state.seq != target {
        return Err(StoreError::Gap {
            expected: state.seq.next(),
            found: target,
        }
        .into());
    }
    Ok(state)
}

type Chunk = Result<Vec<Envelope>, StoreError>;

/// Sends the log from `start` to `target` in decoded chunks; stops at the
/// first error (sent on) or when the receiver has gone.
fn decode_chunks(log: &EventLog, start: Seq, target: Seq, out: &SyncSender<Chunk>) {
    const CHUNK: usize = 4096;
    let mut chunk = Vec::with_capacity(CHUNK);
    for item in log.iter_from(start) {
        match item {
            Ok(envelope) if envelope.seq > target => break,
            Ok(envelope) => chunk.push(envelope),
            Err(error) => {
                let _ = out.send(Err(error));
                return;
            }
        }
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if out.send(Ok(full)).is_err() {
                return;
            }
        }
    }
    let _ = out.send(Ok(chunk));
}

fn newest_snapshot(log: &EventLog, at: Seq) -> Result<State, StoreError> {
    let seqs = log.snapshot_seqs().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot list the snapshots; replaying the log instead");
        Vec::new()
    });
    for seq in seqs.into_iter().rev().filter(|s| *s <= at) {
        let decoded = log
            .snapshot(seq)
            .map(|bytes| bytes.map(|b| snapshot::decode(&b)));
        let damage = match decoded {
            Ok(Some(Ok(state))) if state.seq == seq => {
                tracing::info!(%seq, "state loaded from a snapshot; replaying the log after it");
                return Ok(state);
            }
            Ok(Some(Ok(_))) => "its state is of another seq".to_owned(),
            // Another build's state: a cache miss, not damage.
            Ok(Some(Err(snapshot::SnapshotDecodeError::OtherVersion { .. }))) | Ok(None) => {
                continue;
            }
            Ok(Some(Err(error))) => error.to_string(),
            Err(error) => error.to_string(),
        };
        // A cache: drop it (when the store may be written) and replay.
        tracing::warn!(%seq, %damage, "snapshot damaged; dropping it and replaying the log instead");
        if let Err(error) = log.drop_snapshot(seq) {
            tracing::warn!(%seq, %error, "cannot drop the damaged snapshot");
        }
    }
    Ok(State::default())
}

/// A progress bar on stderr; indicatif hides it when stderr is no terminal.
pub(crate) fn progress_bar(len: u64) -> ProgressBar {
    if len < 100_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} events ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("replaying");
    bar
}
