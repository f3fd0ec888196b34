//! A batch as the replicated log carries it (high availability, issue 15):
//! `[format=1][CRC-32 of the rest, u32 BE]` + bincode of the batch's
//! records exactly as the store
//! writes them (checksummed, with kind and payload version, so upcasting
//! applies to them as to the local log) and its idempotency records. Every
//! instance applies these bytes to its own store, so every local log is a
//! prefix of the replicated one.

use super::write::{Batch, CommandRecord, Postings};
use super::{EventLog, LogWriter, StoreError};
use crate::codec;
use crate::event::{Envelope, Seq};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const BATCH_FORMAT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Wire {
    records: Vec<(Seq, Vec<u8>)>,
    idempotency: Vec<(String, CommandRecord)>,
}

/// A batch read back from the replicated log, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicatedBatch {
    pub events: Vec<Arc<Envelope>>,
    pub idempotency: Vec<(String, CommandRecord)>,
}

impl ReplicatedBatch {
    pub fn first(&self) -> Option<Seq> {
        self.events.first().map(|e| e.seq)
    }

    pub fn last(&self) -> Option<Seq> {
        self.events.last().map(|e| e.seq)
    }
}

/// Encodes a batch for the replicated log: `events` hold dense seqs.
pub fn encode_batch(
    events: &[Arc<Envelope>],
    idempotency: &[(String, CommandRecord)],
) -> Result<Vec<u8>, StoreError> {
    let wire = Wire {
        records: events
            .iter()
            .map(|e| Ok((e.seq, codec::encode(e)?)))
            .collect::<Result<_, StoreError>>()?,
        idempotency: idempotency.to_vec(),
    };
    let body = codec::encode_value(&wire)?;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(BATCH_FORMAT);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend(body);
    Ok(out)
}

/// Decodes and checks a batch that the replicated log holds at `first`:
/// each record's checksum, and seqs dense from `first`.
pub fn decode_batch(first: Seq, bytes: &[u8]) -> Result<ReplicatedBatch, StoreError> {
    let bad = |reason| StoreError::BadBatch { first, reason };
    let (&format, rest) = bytes.split_first().ok_or(bad("it is empty"))?;
    if format != BATCH_FORMAT {
        return Err(bad("its format is not one this build reads"));
    }
    let (sum, body) = rest.split_at_checked(4).ok_or(bad("it is truncated"))?;
    if sum != crc32fast::hash(body).to_be_bytes() {
        return Err(bad("its checksum does not match"));
    }
    let wire: Wire = codec::decode_value(body)?;
    let mut events = Vec::with_capacity(wire.records.len());
    for (i, (seq, record)) in wire.records.iter().enumerate() {
        if seq.0 != first.0 + i as u64 {
            return Err(bad("its seqs are not dense from its name"));
        }
        events.push(Arc::new(codec::decode(*seq, record)?));
    }
    Ok(ReplicatedBatch {
        events,
        idempotency: wire.idempotency,
    })
}

impl EventLog {
    /// Seqs `from` through `to` (at most `limit` of them), with the
    /// idempotency records of their commands, encoded as a replicated
    /// batch: what an instance behind the replicated log's oldest batch
    /// copies from a peer. Records are found by a scan: catching up is rare.
    pub fn replica_range(&self, from: Seq, to: Seq, limit: usize) -> Result<Vec<u8>, StoreError> {
        let events = self
            .iter_from(from)
            .take_while(|e| e.as_ref().map_or(true, |e| e.seq <= to))
            .take(limit)
            .map(|e| e.map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        // A command without events records the seq after the last one.
        let last = events.last().map_or(from, |e| e.seq.next());
        let mut records = Vec::new();
        for entry in self.idempotency.iter() {
            let (key, value) = entry?;
            let record = CommandRecord::decode(&value)?;
            if (from..=last).contains(&record.first) {
                records.push((String::from_utf8_lossy(&key).into_owned(), record));
            }
        }
        encode_batch(&events, &records)
    }
}

impl LogWriter {
    /// Writes a replicated batch that continues this log (not yet durable:
    /// call `sync`).
    pub fn append_replicated(&self, batch: &ReplicatedBatch) -> Result<(), StoreError> {
        let head = self.head()?;
        if let Some(first) = batch.first()
            && first != head.next()
        {
            return Err(StoreError::Gap {
                expected: head.next(),
                found: first,
            });
        }
        let records = batch
            .events
            .iter()
            .map(|e| Ok((e.seq, codec::encode(e)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let idempotency = batch
            .idempotency
            .iter()
            .map(|(key, record)| Ok((key.as_bytes().to_vec(), codec::encode_value(record)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(Batch {
            records,
            postings: Postings::of(&batch.events),
            idempotency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Event, LeaderElected};
    use uuid::Uuid;

    fn elected(seq: u64) -> Arc<Envelope> {
        Arc::new(Envelope {
            seq: Seq(seq),
            id: Uuid::now_v7(),
            recorded_at: seq,
            actor: Actor::Reconciler,
            command_id: Uuid::now_v7(),
            event: Event::LeaderElected(LeaderElected {
                epoch: seq,
                instance: "a".into(),
                url: "http://a".into(),
            }),
        })
    }

    #[test]
    fn a_batch_round_trips_and_applies_only_at_the_head() {
        let record = CommandRecord {
            command_id: Uuid::now_v7(),
            first: Seq(1),
            last: Seq(2),
            request: Some([7; 32]),
        };
        let events = vec![elected(1), elected(2)];
        let bytes = encode_batch(&events, &[("k".into(), record)]).expect("encoded");
        let batch = decode_batch(Seq(1), &bytes).expect("decoded");
        assert_eq!(batch.events, events);
        assert_eq!(batch.idempotency, vec![("k".to_owned(), record)]);
        assert!(matches!(
            decode_batch(Seq(2), &bytes),
            Err(StoreError::BadBatch { .. })
        ));
        let mut damaged = bytes.clone();
        let at = damaged.len() - 40;
        damaged[at] ^= 0xff;
        assert!(
            decode_batch(Seq(1), &damaged).is_err(),
            "a flipped byte is caught"
        );

        let dir = tempfile::tempdir().expect("a dir");
        let log = LogWriter::open(dir.path()).expect("a store");
        let later = decode_batch(Seq(3), &encode_batch(&[elected(3)], &[]).expect("encoded"))
            .expect("decoded");
        assert!(matches!(
            log.append_replicated(&later),
            Err(StoreError::Gap { .. })
        ));
        log.append_replicated(&batch).expect("applied");
        log.append_replicated(&later).expect("applied");
        assert_eq!(log.head().expect("head"), Seq(3));
        assert_eq!(log.idempotency_record("k").expect("read"), Some(record));
        // What a peer copies: the range, with its commands' records.
        let copied = decode_batch(
            Seq(1),
            &log.replica_range(Seq(1), Seq(2), 10).expect("read"),
        )
        .expect("decoded");
        assert_eq!(copied, batch);
        let capped = decode_batch(Seq(2), &log.replica_range(Seq(2), Seq(3), 1).expect("read"))
            .expect("decoded");
        assert_eq!(capped.events, vec![batch.events[1].clone()]);
        assert!(
            capped.idempotency.is_empty(),
            "k's command starts before the range"
        );
    }
}
