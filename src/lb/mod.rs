//! `stride lb haproxy`: a sidecar that keeps HAProxy serving what the log says.
pub mod config;
pub mod model;
