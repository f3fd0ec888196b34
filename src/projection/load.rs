//! Rebuilding the projection at start: newest usable snapshot, then the tail.

use super::{State, snapshot};
use crate::event::Seq;
use crate::store::{EventLog, StoreError};
use indicatif::{ProgressBar, ProgressStyle};

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
    let mut expected = state.seq.next();
    for item in log.iter_from(expected) {
        let envelope = item?;
        if envelope.seq > target {
            break;
        }
        if envelope.seq != expected {
            return Err(StoreError::Gap {
                expected,
                found: envelope.seq,
            }
            .into());
        }
        state.apply(&envelope);
        expected = expected.next();
        if expected.0 % 65_536 == 0 {
            progress.set_position(expected.0 - 1 - (target.0 - replay));
        }
    }
    progress.finish_and_clear();
    if state.seq != target {
        return Err(StoreError::Gap {
            expected,
            found: target,
        }
        .into());
    }
    Ok(state)
}

fn newest_snapshot(log: &EventLog, at: Seq) -> Result<State, StoreError> {
    for seq in log.snapshot_seqs()?.into_iter().rev().filter(|s| *s <= at) {
        let decoded = log
            .snapshot(seq)
            .map(|bytes| bytes.map(|b| snapshot::decode(&b)));
        match decoded {
            Ok(Some(Ok(state))) if state.seq == seq => return Ok(state),
            Ok(Some(Ok(_))) => tracing::warn!(%seq, "snapshot seq mismatch; ignoring it"),
            Ok(Some(Err(error))) => {
                tracing::info!(%seq, %error, "snapshot not usable; replaying instead")
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%seq, %error, "snapshot unreadable; replaying instead"),
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
