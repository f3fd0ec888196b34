//! `stride store verify`: the check `serve` makes on open (every
//! acknowledged seq present, every record intact, every tree readable, see
//! `store/integrity.rs`), then deeper: every record decodes, the index
//! trees hold exactly the entries the events imply, and every snapshot
//! equals a replay to its seq.

use std::collections::BTreeMap;
use stride_core::projection::{State, snapshot};
use stride_log::codec;
use stride_log::event::Seq;
use stride_log::store::{EventLog, Index, IndexKeys, Problem, Report, StoreError};

#[derive(Debug)]
pub struct Verified {
    pub report: Report,
    pub snapshots_checked: usize,
}

impl Verified {
    /// Nothing damaged, not even a cache.
    pub fn is_ok(&self) -> bool {
        self.report.problems.is_empty() && self.report.caches.is_empty()
    }
}

pub fn verify(log: &EventLog) -> Result<Verified, StoreError> {
    let mut verified = Verified {
        report: log.check()?,
        snapshots_checked: 0,
    };
    let already_damaged = |report: &Report, seq: Seq| {
        report.problems.iter().any(|p| {
            matches!(p, Problem::Damaged { first, last, .. } if (*first..=*last).contains(&seq))
        })
    };
    let snapshot_seqs = log.snapshot_seqs().unwrap_or_else(|error| {
        verified.report.caches.push(format!(
            "the snapshots cannot be listed ({error}); a cache: serve replays the log, `stride store repair` rebuilds the store"
        ));
        Vec::new()
    });
    let mut expected_index: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut state = State::default();
    let mut replay_ok = verified.report.problems.is_empty();
    let progress = crate::published::progress_bar(verified.report.head.0);
    for item in log.raw_from(Seq(0)) {
        // integrity.rs has reported what cannot be read.
        let (seq, bytes) = match item {
            Ok(entry) => entry,
            // sled's iterator repeats its error: nothing more can be read.
            Err(StoreError::Sled(_)) => break,
            Err(_) => {
                replay_ok = false;
                continue;
            }
        };
        match codec::decode(seq, &bytes) {
            Ok(envelope) => {
                check_indexes(
                    log,
                    IndexKeys::of(&envelope),
                    seq,
                    &mut verified.report,
                    &mut expected_index,
                )?;
                state.apply(&envelope);
            }
            Err(error) => {
                if !already_damaged(&verified.report, seq) {
                    verified.report.problems.push(Problem::Damaged {
                        first: seq,
                        last: seq,
                        error: error.to_string(),
                    });
                }
                replay_ok = false;
            }
        }
        if replay_ok && snapshot_seqs.contains(&seq) {
            check_snapshot(log, seq, &state, &mut verified)?;
        }
        if seq.0 % 65_536 == 0 {
            progress.set_position(seq.0);
        }
    }
    progress.finish_and_clear();
    for index in Index::ALL {
        let wanted = expected_index.get(index.name()).copied().unwrap_or(0);
        match log.indexed_count(index) {
            Ok(found) if found == wanted => {}
            Ok(found) => verified.report.problems.push(Problem::Index(format!(
                "index {} files {found} events; the events imply {wanted}",
                index.name()
            ))),
            Err(error) => verified
                .report
                .problems
                .push(Problem::Index(error.to_string())),
        }
    }
    Ok(verified)
}

fn check_indexes(
    log: &EventLog,
    keys: IndexKeys,
    seq: Seq,
    report: &mut Report,
    counts: &mut BTreeMap<&'static str, u64>,
) -> Result<(), StoreError> {
    let timed = log.is_timed(keys.recorded_at, seq);
    let filed = keys
        .prefixes()
        .map(|(index, prefix)| (index, log.is_indexed(index, &prefix, seq)))
        .chain([(Index::Time, timed)]);
    for (index, found) in filed {
        *counts.entry(index.name()).or_default() += 1;
        match found {
            Ok(true) => {}
            Ok(false) => report.problems.push(Problem::Index(format!(
                "record {seq}: missing from the {} index",
                index.name()
            ))),
            Err(error) => report
                .problems
                .push(Problem::Index(format!("record {seq}: {error}"))),
        }
    }
    Ok(())
}

fn check_snapshot(
    log: &EventLog,
    seq: Seq,
    replayed: &State,
    verified: &mut Verified,
) -> Result<(), StoreError> {
    verified.snapshots_checked += 1;
    let damage = match log.snapshot(seq).map(|b| b.map(|b| snapshot::decode(&b))) {
        Ok(Some(Ok(stored))) if &stored == replayed => return Ok(()),
        Ok(Some(Ok(_))) => format!("snapshot at seq {seq} differs from a replay to {seq}"),
        // Another state version is a cache miss, not damage.
        Ok(Some(Err(snapshot::SnapshotDecodeError::OtherVersion { .. }))) | Ok(None) => {
            return Ok(());
        }
        Ok(Some(Err(error))) => format!("snapshot at seq {seq} does not decode: {error}"),
        Err(error) => error.to_string(),
    };
    verified.report.caches.push(format!(
        "{damage} (a cache: serve drops it and replays the log)"
    ));
    Ok(())
}
