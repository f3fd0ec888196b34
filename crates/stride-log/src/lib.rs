//! Stride's event log: the `event`s (past-tense facts and their envelope),
//! their on-disk encoding (`codec`, the only module that names bincode),
//! the numbered steps of the top-level `migrations/` (payload upcasts, and
//! store layout changes), and the `store` on sled that appends, indexes,
//! snapshots and makes them durable. It knows nothing of commands, the
//! projection or Mesos.

pub mod codec;
pub mod event;
#[path = "../../../migrations/mod.rs"]
mod migrations;
#[cfg(feature = "store")]
pub mod store;
