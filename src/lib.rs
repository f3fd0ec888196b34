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
pub mod committer;
pub mod connections;
pub mod health;
pub mod metrics;
pub mod published;
pub mod reconciler;
pub mod server;
pub mod stream;
pub mod ui;
pub mod verify;

// The parts that are crates of their own, under the paths the rest of
// this crate knows them by.
pub use stride_lb as lb;
pub use stride_local as local;
pub use stride_log::{codec, event, store};
pub use stride_mesos as mesos;
pub use stride_protocol as protocol;
pub use stride_runtime as runtime;

/// The pure commands, with the committer that carries them out.
pub mod command {
    pub use crate::committer::{Committer, Idempotency, SubmitError};
    pub use stride_core::command::*;
}

/// The pure projection, with its published, loaded copy.
pub mod projection {
    pub(crate) use crate::published::progress_bar;
    pub use crate::published::{LoadError, Projection, load};
    pub use stride_core::projection::*;
}
