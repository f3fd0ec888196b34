//! Is the store intact? Opening reads the watermark and repairs sled's
//! caches (`engine.rs`); `check` then walks the whole store: every seq from
//! 1 to the acknowledged head present, every record passing its checksum
//! (records from before checksums, store formats 1 and 2, must decode),
//! every other tree readable.
//!
//! What damage means, and what serve does about it:
//! - acknowledged seqs missing, or records damaged: history is lost; serve
//!   refuses; restore a backup, or keep the intact prefix (`store repair
//!   --accept-loss`);
//! - the watermark missing or unreadable: whether anything was lost cannot
//!   be told; serve refuses; if the log checks out, `repair --accept-loss`
//!   trusts it;
//! - an index or the cursors unreadable: rebuilt from the log by `repair`,
//!   nothing lost;
//! - idempotency records unreadable: a retried request could apply twice;
//!   `repair --accept-loss` keeps the records that read;
//! - a snapshot failing its checksum: a cache, dropped on load and the log
//!   replayed (`stride`'s `published/load.rs`); sled's `conf` and page-table snapshot
//!   likewise (`engine.rs`).

use super::keys::seq_of;
use super::watermark::Mark;
use super::{EventLog, StoreError};
use crate::codec;
use crate::event::Seq;
use std::fmt;
use std::path::Path;

/// What the watermark said when the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledged {
    Mark(Mark),
    /// Created at open: a new store, or one from before watermarks.
    Created,
    /// A watermarked store's watermark file is gone.
    Missing,
    /// Neither of its slots is intact.
    Damaged,
}

pub(crate) struct Opened {
    pub acknowledged: Acknowledged,
    /// Caches found damaged and rewritten or set aside while opening.
    pub repairs: Vec<String>,
    /// What opening could not read.
    pub problems: Vec<Problem>,
}

/// Something lost or unreadable. Ranges are inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Acknowledged seqs absent from the log.
    Missing { first: Seq, last: Seq, why: String },
    /// Records present but failing their checksum or decoding.
    Damaged {
        first: Seq,
        last: Seq,
        error: String,
    },
    /// The watermark is missing (`missing`) or unreadable.
    Watermark { missing: bool },
    /// A tree other than the log, or the log past some seq, cannot be read.
    Tree { tree: &'static str, error: String },
    /// An index disagrees with the log (found by `stride store verify`).
    Index(String),
}

impl Problem {
    /// Whether fixing it gives up history (events or idempotency records),
    /// as opposed to rebuilding an index from the log.
    pub fn loses_history(&self) -> bool {
        match self {
            Problem::Tree { tree, .. } => !tree.starts_with("idx_") && *tree != "cursors",
            Problem::Index(_) => false,
            _ => true,
        }
    }
}

fn range(first: Seq, last: Seq) -> String {
    match last.0 - first.0 {
        0 => format!("seq {first}"),
        n => format!("seqs {first}..={last} ({} events)", n + 1),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { first, last, why } => {
                write!(f, "{} missing: {why}", range(*first, *last))
            }
            Problem::Damaged { first, last, error } => {
                write!(f, "{} damaged: {error}", range(*first, *last))
            }
            Problem::Watermark { missing } => write!(
                f,
                "the watermark file is {}: whether acknowledged events were lost cannot be told",
                if *missing { "missing" } else { "damaged" }
            ),
            Problem::Tree { tree, error } => write!(f, "the {tree} tree cannot be read: {error}"),
            Problem::Index(detail) => write!(f, "{detail}"),
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct Report {
    /// Records in the log, and the last seq.
    pub records: u64,
    pub head: Seq,
    pub acknowledged: Acknowledged,
    /// Records from before checksums (checked by decoding only).
    pub unchecked: u64,
    pub problems: Vec<Problem>,
    /// Caches found damaged: rewritten, set aside or dropped.
    pub caches: Vec<String>,
}

impl Report {
    /// The last seq before the first missing or damaged one.
    pub fn intact_through(&self) -> Seq {
        self.problems
            .iter()
            .filter_map(|p| match p {
                Problem::Missing { first, .. } | Problem::Damaged { first, .. } => {
                    Some(Seq(first.0 - 1))
                }
                _ => None,
            })
            .min()
            .unwrap_or(self.head)
    }

    pub fn loses_history(&self) -> bool {
        self.problems.iter().any(Problem::loses_history)
    }

    /// What is wrong and what to do, for `serve` to refuse with.
    pub fn refusal(&self, data_dir: &Path) -> String {
        let dir = data_dir.display();
        let mut text = String::from("the store is damaged:\n");
        for problem in &self.problems {
            text.push_str(&format!("  - {problem}\n"));
        }
        if self.loses_history() {
            text.push_str(&format!(
                "Restore the last backup (taken with `stride store backup`):\n  \
                 stride store restore --data-dir {dir} --from BACKUP_FILE\n\
                 or keep what is intact (seqs 1..={}) and give up the rest:\n  \
                 stride store repair --data-dir {dir} --accept-loss",
                self.intact_through()
            ));
        } else {
            text.push_str(&format!(
                "The log is intact; rebuild the rest from it:\n  stride store repair --data-dir {dir}"
            ));
        }
        text
    }
}

impl EventLog {
    /// Walks the whole store (see the module's comment). Reads only. The
    /// log and the other trees are walked at once, on two threads.
    pub fn check(&self) -> Result<Report, StoreError> {
        let mut report = Report {
            records: 0,
            head: Seq(0),
            acknowledged: self.opened.acknowledged,
            unchecked: 0,
            problems: self.opened.problems.clone(),
            caches: self.opened.repairs.clone(),
        };
        let unreadable = std::thread::scope(|scope| {
            let trees = scope.spawn(|| self.unreadable_trees());
            self.check_log(&mut report);
            trees.join().expect("walking the trees does not panic")
        });
        match report.acknowledged {
            Acknowledged::Mark(mark) if mark.durable > report.head => {
                report.problems.push(Problem::Missing {
                    first: report.head.next(),
                    last: mark.durable,
                    why: format!(
                        "the log ends at seq {}, but the watermark says seqs up to {} were acknowledged",
                        report.head, mark.durable
                    ),
                })
            }
            Acknowledged::Missing => report.problems.push(Problem::Watermark { missing: true }),
            Acknowledged::Damaged => report.problems.push(Problem::Watermark { missing: false }),
            _ => {}
        }
        report.problems.extend(unreadable);
        Ok(report)
    }

    fn unreadable_trees(&self) -> Vec<Problem> {
        [
            ("idempotency", &self.idempotency),
            ("idx_app", &self.idx_app),
            ("idx_task", &self.idx_task),
            ("idx_actor", &self.idx_actor),
            ("idx_kind", &self.idx_kind),
            ("idx_time", &self.idx_time),
            ("cursors", &self.cursors),
        ]
        .into_iter()
        .filter_map(|(tree, contents)| {
            walk(tree, contents)
                .err()
                .map(|error| Problem::Tree { tree, error })
        })
        .collect()
    }

    /// Every record present, in order, and intact.
    fn check_log(&self, report: &mut Report) {
        let mut expected = Seq(1);
        for item in self.events.iter() {
            let (key, value) = match item {
                Ok(entry) => entry,
                Err(error) => {
                    report.problems.push(Problem::Tree {
                        tree: "events",
                        error: format!("after seq {}: {error}", report.head),
                    });
                    return;
                }
            };
            let seq = seq_of(&key);
            if seq > expected {
                report.problems.push(Problem::Missing {
                    first: expected,
                    last: Seq(seq.0 - 1),
                    why: "a gap in the log".into(),
                });
            }
            report.records += 1;
            report.head = seq;
            expected = seq.next();
            let checked = self
                .assemble(seq, value)
                .and_then(|record| Ok(codec::check(seq, &record)?));
            match checked {
                Ok(true) => {}
                Ok(false) => report.unchecked += 1,
                Err(error) => match report.problems.last_mut() {
                    Some(Problem::Damaged { last, .. }) if last.next() == seq => *last = seq,
                    _ => report.problems.push(Problem::Damaged {
                        first: seq,
                        last: seq,
                        error: error.to_string(),
                    }),
                },
            }
        }
    }
}

/// Reads every entry of a tree; idempotency records must decode too.
fn walk(name: &str, tree: &sled::Tree) -> Result<(), String> {
    for item in tree.iter() {
        let (key, value) = item.map_err(|e| e.to_string())?;
        if name == "idempotency" && super::CommandRecord::decode(&value).is_err() {
            return Err(format!(
                "the record of Idempotency-Key {:?} is malformed",
                String::from_utf8_lossy(&key)
            ));
        }
    }
    Ok(())
}
