//! What a grant allows.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// Apps, groups, tasks, deployments, the queue, the log and the state.
    Read,
    /// Deployable calls (create, update, scale, delete), task kills,
    /// restarts, deployment cancels and queue resets.
    Write,
    /// `/v1/stream` and `/v2/events`: watching is not reading once.
    Stream,
    /// `/v1/audit`: who changed what.
    Audit,
    /// Callbacks, the leader, store operations (backup).
    Admin,
}

impl Verb {
    pub const ALL: [Verb; 5] = [
        Verb::Read,
        Verb::Write,
        Verb::Stream,
        Verb::Audit,
        Verb::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::Stream => "stream",
            Verb::Audit => "audit",
            Verb::Admin => "admin",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
