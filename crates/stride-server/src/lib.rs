//! `stride serve`: the server around the log.
//!
//! Data flows one way: `api` turns requests into commands; the `committer`
//! decides their events, appends them to the log, makes them durable and
//! `published` hands the state after them to readers (the api, `stream`,
//! `reconciler`, `health`, `callbacks`, `audit`).

pub mod api;
pub mod audit;
pub mod callbacks;
pub mod committer;
pub mod connections;
pub mod ha;
pub mod health;
pub mod master_detector;
pub mod metrics;
pub mod published;
pub mod reconciler;
pub mod server;
pub mod stream;
pub mod tls;
pub mod ui;
pub mod verify;
