//! How a client command failed, as its exit code tells scripts
//! (`docs/cli.md`). Anything not named here exits 1; clap exits 2 on a
//! usage error.

/// A failure a script may want to tell apart from the rest.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No answer from the server: not running, wrong `--stride`.
    #[error("{0}")]
    Unreachable(String),
    /// What was named does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The input was refused: a bad file here, or a 400 or 422 there.
    #[error("{0}")]
    Refused(String),
    /// Another deployment holds the app (HTTP 409; `--force` overrides).
    #[error("{0}")]
    Conflict(String),
    /// The deployment waited for failed or was cancelled.
    #[error("{0}")]
    DeploymentFailed(String),
    /// The deployment waited for was still running at `--timeout`.
    #[error("{0}")]
    TimedOut(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Unreachable(_) => 3,
            Failure::NotFound(_) => 4,
            Failure::Refused(_) => 5,
            Failure::Conflict(_) => 6,
            Failure::DeploymentFailed(_) => 7,
            Failure::TimedOut(_) => 8,
        }
    }
}

/// The exit code for `error`: its `Failure`'s, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map_or(1, Failure::exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_failure_keeps_its_code_under_context() {
        let failure: anyhow::Result<()> = Err(Failure::Conflict("held".into()).into());
        let wrapped = failure.context("scaling /web").unwrap_err();
        assert_eq!(exit_code(&wrapped), 6);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }
}
