//! Audit queries: who changed what, when, answered from the index trees.
//!
//! A query names any of app (an id or a `/`-ended prefix), task, actor and
//! types, a `since`/`until` window (a seq or a time; recorded times never go
//! backwards, so a time window is a seq range) and pages through the result
//! with an opaque cursor. `plan` picks the most selective index to walk and
//! checks the other filters by point lookups, so the log itself is only read
//! for the events returned.

pub mod diff;
mod plan;

use crate::stream::AppMatch;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::BTreeSet;
use stride_log::event::{Envelope, Kind, Seq};
use stride_log::store::{EventLog, StoreError};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1_000;

/// One end of a window, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Seq(Seq),
    /// Unix microseconds.
    Time(u64),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub app: Option<AppMatch>,
    pub task: Option<String>,
    /// An actor's index key: `api:<principal>`, `reconciler` or `mesos`.
    pub actor: Option<String>,
    /// Empty means every type.
    pub types: BTreeSet<Kind>,
    pub since: Option<Bound>,
    pub until: Option<Bound>,
    pub order: Order,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            app: None,
            task: None,
            actor: None,
            types: BTreeSet::new(),
            since: None,
            until: None,
            order: Order::Asc,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// Where the previous page stopped: the last seq it returned, in its order.
/// Stable: new events never shift a page, they only extend an ascending
/// query at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub order: Order,
    pub last: Seq,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cursor is not one this server issued")]
pub struct BadCursor;

impl Cursor {
    /// Opaque to clients; versioned so the format can change.
    pub fn encode(&self) -> String {
        let order = match self.order {
            Order::Asc => 'a',
            Order::Desc => 'd',
        };
        URL_SAFE_NO_PAD.encode(format!("v1{order}{}", self.last.0))
    }

    pub fn decode(raw: &str) -> Result<Cursor, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| BadCursor)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| BadCursor)?;
        let rest = text.strip_prefix("v1").ok_or(BadCursor)?;
        let (order, seq) = match rest.split_at_checked(1) {
            Some(("a", seq)) => (Order::Asc, seq),
            Some(("d", seq)) => (Order::Desc, seq),
            _ => return Err(BadCursor),
        };
        let last = seq.parse().map(Seq).map_err(|_| BadCursor)?;
        Ok(Cursor { order, last })
    }
}

pub struct AuditPage {
    pub events: Vec<Envelope>,
    /// Present when more events match.
    pub next: Option<Cursor>,
}

/// Runs `query` over the durable part of the log (up to `head`).
pub fn run(log: &EventLog, head: Seq, query: &AuditQuery) -> Result<AuditPage, StoreError> {
    let Some((lo, hi)) = plan::window(log, head, query)? else {
        return Ok(AuditPage {
            events: Vec::new(),
            next: None,
        });
    };
    let walk = plan::Walk::new(log, query, lo, hi)?;
    let mut events = Vec::new();
    let mut more = false;
    for seq in walk.seqs() {
        let seq = seq?;
        if !walk.passes(seq)? {
            continue;
        }
        let Some(envelope) = log.get(seq)? else {
            continue;
        };
        if !walk.passes_decoded(&envelope) {
            continue;
        }
        if events.len() == query.limit {
            more = true;
            break;
        }
        events.push(envelope);
    }
    let next = match events.last() {
        Some(last) if more => Some(Cursor {
            order: query.order,
            last: last.seq,
        }),
        _ => None,
    };
    Ok(AuditPage { events, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let cursor = Cursor {
            order: Order::Desc,
            last: Seq(42),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for bad in ["", "djE", "not base64!", &URL_SAFE_NO_PAD.encode("v1x42")] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad}");
        }
    }
}
