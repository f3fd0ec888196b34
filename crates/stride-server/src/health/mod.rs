//! Marathon's `healthChecks`. HTTP, HTTPS and TCP checks are run by Stride
//! (`HealthMonitor`); MESOS_HTTP, MESOS_HTTPS, MESOS_TCP and COMMAND checks
//! go to Mesos in the TaskInfo (`mesos_health_check`) and come back as the
//! `healthy` flag of status updates.
//!
//! Raw results live in memory (`HealthResults`), where the API reads them;
//! only transitions reach the log (`HealthChanged`), or it would fill with
//! noise. After `maxConsecutiveFailures` the monitor asks for a kill
//! (`TaskKillRequested`, saying why); the reconciler kills and replaces.

mod mesos;
mod monitor;
pub mod probe;
mod readiness;
mod results;
pub mod rules;

pub use mesos::mesos_health_check;
pub use monitor::{HealthMonitor, definition_of, run_by_stride};
pub use readiness::{CheckAnswer, Readiness, ReadinessMonitor};
pub use results::{HealthResults, Update};

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("cannot build the HTTP client for health checks")]
    Client(#[source] reqwest::Error),
}
