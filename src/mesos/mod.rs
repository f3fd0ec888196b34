//! Mesos v1 scheduler HTTP API: wire types, RecordIO framing, and the
//! driver that keeps a subscription alive.

mod backoff;
mod calls;
pub mod client;
pub mod condition;
pub mod config;
mod endpoint;
pub mod recordio;
mod subscription;
pub mod types;

pub use client::{CallError, Scheduler, SchedulerEvent, SchedulerHandle};
pub use config::{BackoffConfig, ConfigError, SchedulerConfig};
pub use subscription::SubscriptionError;
