//! What every Stride process runs on, whichever part it is: TCP options
//! for accepted connections, network probes, and the shutdown signal. It
//! knows nothing of Stride's domain.

pub mod probe;
mod signal;
pub mod tcp;

pub use signal::shutdown_signal;
