//! The one table that turns a Mesos task state (and, for `TASK_LOST`, its
//! reason) into Stride's task condition. Everything else in Stride reasons
//! about `Condition`, never about raw Mesos states.

use serde::{Deserialize, Serialize};

/// What Stride believes about a task. Stored in events: add variants only at
/// the end, never reorder (bincode encodes the variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// Launch requested, no word from Mesos yet.
    Provisioned,
    Staging,
    Starting,
    Running,
    Killing,
    Finished,
    Failed,
    Killed,
    Error,
    /// Never started; safe to retry.
    Dropped,
    /// The agent is partitioned; the task may still run and may come back.
    Unreachable,
    /// Definitely gone.
    Gone,
    /// An operator said the agent is gone; it might be wrong.
    GoneByOperator,
    /// Mesos has no record of it; it may or may not run.
    Unknown,
}

impl Condition {
    /// A terminal task will never run again and frees its instance slot.
    /// `Unreachable` and `Unknown` are not terminal: the task may come back.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Condition::Finished
                | Condition::Failed
                | Condition::Killed
                | Condition::Error
                | Condition::Dropped
                | Condition::Gone
                | Condition::GoneByOperator
        )
    }

    /// Counts toward an app's running capacity.
    pub fn is_active(self) -> bool {
        matches!(self, Condition::Running | Condition::Killing)
    }
}

/// Maps a Mesos `TaskState` name and optional `Reason` name to a condition.
/// Unknown future states map to `Unknown`, so Stride asks Mesos again rather
/// than guessing.
pub fn condition_of(state: &str, reason: Option<&str>) -> Condition {
    match state {
        "TASK_STAGING" => Condition::Staging,
        "TASK_STARTING" => Condition::Starting,
        "TASK_RUNNING" => Condition::Running,
        "TASK_KILLING" => Condition::Killing,
        "TASK_FINISHED" => Condition::Finished,
        "TASK_FAILED" => Condition::Failed,
        "TASK_KILLED" => Condition::Killed,
        "TASK_ERROR" => Condition::Error,
        "TASK_DROPPED" => Condition::Dropped,
        "TASK_UNREACHABLE" => Condition::Unreachable,
        "TASK_GONE" => Condition::Gone,
        "TASK_GONE_BY_OPERATOR" => Condition::GoneByOperator,
        "TASK_UNKNOWN" => Condition::Unknown,
        // Non-partition-aware masters fold four situations into TASK_LOST;
        // the reason tells them apart (as Marathon's TaskConditionMapping does).
        "TASK_LOST" => match reason {
            Some(
                "REASON_RECONCILIATION"
                | "REASON_SLAVE_DISCONNECTED"
                | "REASON_AGENT_DISCONNECTED"
                | "REASON_SLAVE_REMOVED"
                | "REASON_AGENT_REMOVED",
            ) => Condition::Unreachable,
            Some("REASON_TASK_UNKNOWN") => Condition::Unknown,
            _ => Condition::Gone,
        },
        _ => Condition::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mesos_task_state_has_a_condition() {
        let table = [
            ("TASK_STAGING", None, Condition::Staging, false),
            ("TASK_STARTING", None, Condition::Starting, false),
            ("TASK_RUNNING", None, Condition::Running, false),
            ("TASK_KILLING", None, Condition::Killing, false),
            ("TASK_FINISHED", None, Condition::Finished, true),
            ("TASK_FAILED", None, Condition::Failed, true),
            ("TASK_KILLED", None, Condition::Killed, true),
            ("TASK_ERROR", None, Condition::Error, true),
            ("TASK_DROPPED", None, Condition::Dropped, true),
            ("TASK_UNREACHABLE", None, Condition::Unreachable, false),
            ("TASK_GONE", None, Condition::Gone, true),
            (
                "TASK_GONE_BY_OPERATOR",
                None,
                Condition::GoneByOperator,
                true,
            ),
            ("TASK_UNKNOWN", None, Condition::Unknown, false),
            ("TASK_LOST", None, Condition::Gone, true),
            (
                "TASK_LOST",
                Some("REASON_RECONCILIATION"),
                Condition::Unreachable,
                false,
            ),
            (
                "TASK_LOST",
                Some("REASON_SLAVE_DISCONNECTED"),
                Condition::Unreachable,
                false,
            ),
            (
                "TASK_LOST",
                Some("REASON_AGENT_DISCONNECTED"),
                Condition::Unreachable,
                false,
            ),
            (
                "TASK_LOST",
                Some("REASON_SLAVE_REMOVED"),
                Condition::Unreachable,
                false,
            ),
            (
                "TASK_LOST",
                Some("REASON_AGENT_REMOVED"),
                Condition::Unreachable,
                false,
            ),
            (
                "TASK_LOST",
                Some("REASON_TASK_UNKNOWN"),
                Condition::Unknown,
                false,
            ),
            (
                "TASK_LOST",
                Some("REASON_EXECUTOR_TERMINATED"),
                Condition::Gone,
                true,
            ),
            ("TASK_SOMETHING_NEW", None, Condition::Unknown, false),
        ];
        for (state, reason, want, terminal) in table {
            let got = condition_of(state, reason);
            assert_eq!(got, want, "{state} {reason:?}");
            assert_eq!(got.is_terminal(), terminal, "{state} {reason:?}");
        }
    }
}
