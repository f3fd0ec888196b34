//! `stride store verify`: every record decodes, seqs are dense from 1, the
//! index trees hold exactly the entries the events imply, and every
//! snapshot equals a replay to its seq.

use crate::codec;
use crate::event::Seq;
use crate::projection::{State, snapshot};
use crate::store::{EventLog, Index, IndexKeys, StoreError};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    pub head: Seq,
    pub snapshots_checked: usize,
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn verify(log: &EventLog) -> Result<Report, StoreError> {
    let mut report = Report {
        head: log.head()?,
        ..Report::default()
    };
    let snapshot_seqs = log.snapshot_seqs()?;
    let mut expected_index: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut state = State::default();
    let mut replay_ok = true;
    let mut expected = Seq(1);
    let progress = crate::projection::progress_bar(report.head.0);
    for item in log.raw_from(Seq(0)) {
        let (seq, bytes) = item?;
        report.records += 1;
        if seq != expected {
            report
                .problems
                .push(format!("gap: expected seq {expected}, found {seq}"));
            replay_ok = false;
        }
        expected = seq.next();
        match codec::decode(seq, &bytes) {
            Ok(envelope) => {
                check_indexes(
                    log,
                    IndexKeys::of(&envelope),
                    seq,
                    &mut report,
                    &mut expected_index,
                )?;
                state.apply(&envelope);
            }
            Err(error) => {
                report.problems.push(format!("{error}"));
                replay_ok = false;
            }
        }
        if replay_ok && snapshot_seqs.contains(&seq) {
            check_snapshot(log, seq, &state, &mut report)?;
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
            Ok(found) => report.problems.push(format!(
                "index {} files {found} events; the events imply {wanted}",
                index.name()
            )),
            Err(error) => report.problems.push(error.to_string()),
        }
    }
    Ok(report)
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
            Ok(false) => report.problems.push(format!(
                "record {seq}: missing from the {} index",
                index.name()
            )),
            Err(StoreError::Sled(error)) => return Err(error.into()),
            Err(error) => report.problems.push(format!("record {seq}: {error}")),
        }
    }
    Ok(())
}

fn check_snapshot(
    log: &EventLog,
    seq: Seq,
    replayed: &State,
    report: &mut Report,
) -> Result<(), StoreError> {
    report.snapshots_checked += 1;
    match log.snapshot(seq)?.map(|bytes| snapshot::decode(&bytes)) {
        Some(Ok(stored)) if &stored == replayed => {}
        Some(Ok(_)) => report.problems.push(format!(
            "snapshot at seq {seq} differs from a replay to {seq}"
        )),
        // Another state version is a cache miss, not damage.
        Some(Err(snapshot::SnapshotDecodeError::OtherVersion { .. })) => {}
        Some(Err(error)) => report
            .problems
            .push(format!("snapshot at seq {seq} does not decode: {error}")),
        None => {}
    }
    Ok(())
}
