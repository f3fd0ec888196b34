//! Stride's pure core: `command`s validated and decided into events, and the
//! `projection`, the state those events fold into. No I/O and no async
//! runtime: the server, the LB sidecar and benchmarks call it alike.

pub mod command;
pub mod projection;

// The log's types, under the paths the core's modules name them by.
use stride_log::{codec, event};
