//! How an audit query walks the index trees (key layouts in `store/mod.rs`).
//!
//! The seq window comes from `since`/`until` (times through the time index) and
//! the cursor. Then one index drives the walk, in seq order within the
//! window: the most selective one named (task, then app, then actor, then
//! an app prefix or types, which merge several index ranges), or the log's
//! own keys when nothing is named. Every other filter is a point lookup in
//! its index; only an app prefix that does not drive needs the decoded event.

use super::{AuditQuery, Bound, Order};
use crate::stream::AppMatch;
use std::iter::Peekable;
use stride_log::event::{Envelope, Seq};
use stride_log::store::{EventLog, Index, Seqs, StoreError, kind_prefix, name_prefix};

/// The inclusive seq range the query covers, or `None` when it is empty.
pub fn window(
    log: &EventLog,
    head: Seq,
    query: &AuditQuery,
) -> Result<Option<(Seq, Seq)>, StoreError> {
    let mut lo = Seq(1);
    let mut hi = head;
    match query.since {
        Some(Bound::Seq(seq)) => lo = lo.max(seq),
        Some(Bound::Time(micros)) => match log.first_at_or_after(micros)? {
            Some(first) => lo = lo.max(first),
            None => return Ok(None),
        },
        None => {}
    }
    match query.until {
        Some(Bound::Seq(seq)) => hi = hi.min(seq),
        Some(Bound::Time(micros)) => match log.last_at_or_before(micros)? {
            Some(last) => hi = hi.min(last),
            None => return Ok(None),
        },
        None => {}
    }
    match query.cursor {
        Some(cursor) if cursor.order == Order::Asc => match cursor.last.checked_next() {
            Some(after) => lo = lo.max(after),
            None => return Ok(None),
        },
        Some(cursor) if cursor.last.0 == 0 => return Ok(None),
        Some(cursor) => hi = hi.min(Seq(cursor.last.0 - 1)),
        None => {}
    }
    Ok((lo <= hi).then_some((lo, hi)))
}

/// The filters that do not drive the walk.
pub struct Walk<'a> {
    log: &'a EventLog,
    order: Order,
    lo: Seq,
    hi: Seq,
    driver: Driver,
    /// (index, key prefix): the seq must be filed under it.
    lookups: Vec<(Index, Vec<u8>)>,
    /// Any one of these kind prefixes (an empty list: any kind).
    kinds: Vec<Vec<u8>>,
    /// Checked on the decoded event.
    app_prefix: Option<AppMatch>,
}

enum Driver {
    Named(Index, Vec<u8>),
    AppPrefix(String),
    Kinds(Vec<Vec<u8>>),
    Log,
}

impl<'a> Walk<'a> {
    pub fn new(
        log: &'a EventLog,
        query: &AuditQuery,
        lo: Seq,
        hi: Seq,
    ) -> Result<Self, StoreError> {
        let mut named = Vec::new();
        if let Some(task) = &query.task {
            named.push((Index::Task, name_prefix(task)));
        }
        let mut app_prefix = None;
        match &query.app {
            Some(AppMatch::Exact(app)) => named.push((Index::App, name_prefix(app))),
            Some(prefix @ AppMatch::Prefix(_)) => app_prefix = Some(prefix.clone()),
            None => {}
        }
        if let Some(actor) = &query.actor {
            named.push((Index::Actor, name_prefix(actor)));
        }
        let mut kinds: Vec<Vec<u8>> = query.types.iter().map(|k| kind_prefix(*k)).collect();
        let driver = if !named.is_empty() {
            let (index, prefix) = named.remove(0);
            Driver::Named(index, prefix)
        } else if let Some(AppMatch::Prefix(prefix)) = app_prefix.take() {
            Driver::AppPrefix(prefix)
        } else if !kinds.is_empty() {
            Driver::Kinds(std::mem::take(&mut kinds))
        } else {
            Driver::Log
        };
        Ok(Walk {
            log,
            order: query.order,
            lo,
            hi,
            driver,
            lookups: named,
            kinds,
            app_prefix,
        })
    }

    /// Candidate seqs in the query's order.
    pub fn seqs(&self) -> Seqs<'a> {
        match &self.driver {
            Driver::Named(index, prefix) => self.indexed(*index, prefix),
            Driver::Kinds(prefixes) => self.merge(Index::Kind, prefixes.clone()),
            Driver::AppPrefix(prefix) => match self.log.apps_under(prefix) {
                Ok(names) => self.merge(Index::App, names.iter().map(|n| name_prefix(n)).collect()),
                Err(error) => Box::new(std::iter::once(Err(error))),
            },
            Driver::Log => self
                .log
                .seqs_between((self.lo, self.hi), self.order == Order::Desc),
        }
    }

    pub fn passes(&self, seq: Seq) -> Result<bool, StoreError> {
        for (index, prefix) in &self.lookups {
            if !self.log.is_indexed(*index, prefix, seq)? {
                return Ok(false);
            }
        }
        if self.kinds.is_empty() {
            return Ok(true);
        }
        for prefix in &self.kinds {
            if self.log.is_indexed(Index::Kind, prefix, seq)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn passes_decoded(&self, envelope: &Envelope) -> bool {
        match &self.app_prefix {
            Some(app) => envelope
                .event
                .app()
                .is_some_and(|id| app.matches(id.as_str())),
            None => true,
        }
    }

    fn indexed(&self, index: Index, prefix: &[u8]) -> Seqs<'a> {
        self.log
            .indexed_seqs(index, prefix, (self.lo, self.hi), self.order == Order::Desc)
    }

    fn merge(&self, index: Index, prefixes: Vec<Vec<u8>>) -> Seqs<'a> {
        let sources = prefixes
            .iter()
            .map(|prefix| self.indexed(index, prefix).peekable())
            .collect();
        Box::new(Merge {
            sources,
            order: self.order,
        })
    }
}

/// Several seq-ordered index ranges as one.
struct Merge<'a> {
    sources: Vec<Peekable<Seqs<'a>>>,
    order: Order,
}

impl Iterator for Merge<'_> {
    type Item = Result<Seq, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, Seq)> = None;
        for (i, source) in self.sources.iter_mut().enumerate() {
            match source.peek() {
                None => {}
                Some(Err(_)) => return source.next(),
                Some(Ok(seq)) => {
                    let better = match (best, self.order) {
                        (None, _) => true,
                        (Some((_, b)), Order::Asc) => *seq < b,
                        (Some((_, b)), Order::Desc) => *seq > b,
                    };
                    if better {
                        best = Some((i, *seq));
                    }
                }
            }
        }
        let (i, _) = best?;
        self.sources[i].next()
    }
}
