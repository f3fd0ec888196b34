//! Stride: an event-sourced control plane for Apache Mesos.
//!
//! Data flows one way: `api` turns requests into `command`s; the committer
//! decides their `event`s, appends them to the `store` (encoded by `codec`),
//! makes them durable, and applies them to the `projection`, which
//! publishes them to followers.

pub mod api;
pub mod audit;
pub mod callbacks;
pub mod cli;
pub mod command;
pub mod connections;
pub mod health;
pub mod lb;
pub mod local;
pub mod metrics;
pub mod projection;
pub mod protocol;
pub mod reconciler;
pub mod server;
pub mod stream;
pub mod ui;
pub mod verify;

// The parts that are crates of their own, under the paths the rest of
// this crate knows them by.
pub use stride_log::{codec, event, store};
pub use stride_mesos as mesos;
pub use stride_runtime as runtime;
