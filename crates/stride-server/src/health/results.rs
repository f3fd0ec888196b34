//! Raw check results, in memory only: the log gets transitions, the API
//! reads these. Lost on restart, as Marathon's are.

use super::rules::{CheckResult, Outcome, Policy, Recorded, Verdict, verdict};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use stride_log::event::TaskId;

/// Per task, per check (its index in the app's `healthChecks`). Cheap to
/// clone; every clone is the same table.
#[derive(Debug, Clone, Default)]
pub struct HealthResults {
    tasks: Arc<RwLock<HashMap<TaskId, BTreeMap<usize, CheckResult>>>>,
    /// Bumped on every change, so rendered answers know when they are stale.
    generation: Arc<AtomicU64>,
}

/// What recording one probe's outcome means for its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub recorded: Recorded,
    /// `None` while some check of the task has no result.
    pub verdict: Option<Verdict>,
}

impl HealthResults {
    /// Records `outcome` for check `index` of `task`, which has `expected`
    /// Stride-run checks.
    pub fn record(
        &self,
        task: &TaskId,
        index: usize,
        outcome: Outcome,
        now: u64,
        policy: &Policy,
        expected: usize,
    ) -> Update {
        let mut tasks = self.tasks.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::Relaxed);
        let checks = tasks.entry(task.clone()).or_default();
        let mut result = checks.get(&index).cloned().unwrap_or_default();
        let recorded = result.record(outcome, now, policy);
        // A failure ignored in the grace period leaves no result behind, so
        // such a task stays neither healthy nor unhealthy.
        if result != CheckResult::default() {
            checks.insert(index, result);
        }
        Update {
            recorded,
            verdict: verdict(checks.values(), expected),
        }
    }

    /// The results of one task's checks, by check index.
    pub fn of(&self, task: &TaskId) -> BTreeMap<usize, CheckResult> {
        let tasks = self.tasks.read().unwrap_or_else(|p| p.into_inner());
        tasks.get(task).cloned().unwrap_or_default()
    }

    /// Forgets every task `keep` rejects.
    pub fn retain(&self, keep: impl Fn(&TaskId) -> bool) {
        let mut tasks = self.tasks.write().unwrap_or_else(|p| p.into_inner());
        let before = tasks.len();
        tasks.retain(|task, _| keep(task));
        if tasks.len() != before {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Changes whenever any result does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}
