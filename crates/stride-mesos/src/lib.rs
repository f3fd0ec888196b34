//! Mesos v1 scheduler HTTP API: wire types, RecordIO framing, and the
//! driver that keeps a subscription alive.
//!
//! Typical use: build a [`SchedulerConfig`] (set `framework_id` to the id
//! stored from a previous run), call [`Scheduler::spawn`], then loop over
//! the [`SchedulerEvent`] receiver. Persist `Subscribed.framework_id` and
//! each `Update` before acknowledging it with [`SchedulerHandle::acknowledge`]
//! (only when `status.needs_acknowledgement()`). The driver resubscribes on
//! its own after `Disconnected`; `Error` is final.

mod calls;
pub mod client;
pub mod config;
mod endpoint;
pub mod recordio;
pub mod sandbox;
mod subscription;
pub mod types;

pub use client::{CallError, Scheduler, SchedulerEvent, SchedulerHandle};
pub use config::{BackoffConfig, CallGate, ConfigError, MesosCredential, SchedulerConfig};
pub use subscription::SubscriptionError;
