//! What waits to launch and why, as the last plans saw it: the reconciler
//! writes it, `GET /v2/queue` reads it. Memory only: it is derived from
//! the state and the offers of the moment, never a fact worth storing.

use super::plan::{Plan, RejectReason};
use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use stride_log::event::AppId;
use stride_runtime::clock::now_micros;

#[derive(Default)]
pub struct Queue {
    /// A reconciler keeps this queue up to date.
    active: AtomicBool,
    waiting: RwLock<BTreeMap<AppId, Entry>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub count: u32,
    /// Waiting since (unix µs).
    pub since: u64,
    pub delayed_until: Option<u64>,
    /// From the last plan that had offers to look at.
    pub offers_processed: u32,
    pub rejections: BTreeMap<RejectReason, u32>,
    pub offers_looked_at: Option<u64>,
}

impl Queue {
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn get(&self, app: &AppId) -> Option<Entry> {
        self.waiting.read().ok()?.get(app).cloned()
    }

    pub(super) fn update(&self, plan: &Plan, had_offers: bool) {
        self.active.store(true, Ordering::Relaxed);
        let Ok(mut waiting) = self.waiting.write() else {
            return;
        };
        let now = now_micros();
        let next = plan
            .waiting
            .iter()
            .map(|(app, w)| {
                let mut entry = waiting.remove(app).unwrap_or(Entry {
                    since: now,
                    ..Entry::default()
                });
                entry.count = w.count;
                entry.delayed_until = w.delayed_until;
                // Without offers this time, the last verdict still stands.
                if had_offers && w.offers_processed > 0 {
                    entry.offers_processed = w.offers_processed;
                    entry.rejections = w.rejections.clone();
                    entry.offers_looked_at = Some(now);
                }
                (app.clone(), entry)
            })
            .collect();
        *waiting = next;
    }
}

impl Entry {
    /// Why the app waits, in a sentence.
    pub fn reason(&self, now: u64) -> String {
        if let Some(until) = self.delayed_until.filter(|u| *u > now) {
            let seconds = (until - now).div_ceil(1_000_000);
            return format!("launch backoff after task failures: next launch in {seconds} s");
        }
        if self.offers_looked_at.is_none() {
            return "waiting for offers".to_owned();
        }
        let reasons: Vec<String> = self
            .rejections
            .iter()
            .map(|(reason, n)| format!("{} ({n} of {})", reason.name(), self.offers_processed))
            .collect();
        format!("no offer fits: {}", reasons.join(", "))
    }
}
