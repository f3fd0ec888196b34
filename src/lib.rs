//! Stride: an event-sourced control plane for Apache Mesos.

pub mod mesos;
