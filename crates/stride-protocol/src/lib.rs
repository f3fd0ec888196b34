//! Stride's own wire protocols, typed once for the server and its
//! followers (the LB sidecar, `stride events`): the `/v1/stream` messages
//! (`stream`) and the `/v1/state` document (`state`).
//!
//! Both are versioned apart from the types Stride keeps inside: the stream
//! by its path (`/v1/`), the state document by its `version` field. Within
//! a version a message or document only gains fields, and readers ignore
//! fields they do not know, so a server and its followers upgrade in any
//! order. `fixtures/protocol/` holds what version 1 readers read; the
//! golden tests of `stride-lb` (`golden.rs`), the reader that must not
//! break, fail on any change that would break them.

pub mod state;
pub mod stream;

pub use state::{STATE_VERSION, StateDocument};
pub use stream::{ClientMessage, ErrorCode, ServerMessage, StreamError};

// The core's types, under the paths the protocol's modules name them by.
use stride_core::projection;
use stride_log::event;
