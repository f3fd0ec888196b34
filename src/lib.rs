//! Stride: an event-sourced control plane for Apache Mesos.

pub mod local;
pub mod mesos;
