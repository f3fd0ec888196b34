//! What every Stride process runs on, whichever part it is: supervision of
//! its long-running parts, TCP options for accepted connections, network
//! probes, a client's credentials and the CA it trusts, the shutdown signal, the one retry backoff, the one clock and
//! error chains. It knows nothing of Stride's domain.

pub mod backoff;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod probe;
mod signal;
pub mod subtasks;
pub mod supervisor;
pub mod tcp;
pub mod tls;

pub use backoff::Backoff;
pub use clock::Clock;
pub use credentials::Credentials;
pub use signal::shutdown_signal;
pub use subtasks::{SubtaskPanicked, Subtasks};
pub use supervisor::{Death, Part, Supervisor};
