//! The Docker engine, reached through its HTTP API on a unix socket
//! (`bollard`), with errors sorted into what a task failure must say: the
//! engine is not there, or it answered no.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::{Stream, StreamExt};
use tokio::sync::OnceCell;

use stride_runtime::error::causes;

/// Seconds bollard waits for one API answer. Pulls and waits stream for
/// longer; this bounds only a silent engine.
const REQUEST_TIMEOUT_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EngineError {
    /// Nothing answers on the socket (no engine, or it died).
    #[error("no Docker engine answers at {endpoint}: {cause}")]
    Unreachable { endpoint: String, cause: String },
    /// The engine answered with an error status.
    #[error("{message}")]
    Refused { status: u16, message: String },
}

impl EngineError {
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Refused { status: 404, .. })
    }
}

/// One engine, shared by every agent of the cluster. The API version is
/// negotiated on first use, so an engine that starts after the cluster is
/// found as soon as a task needs it.
pub(crate) struct Engine {
    socket: PathBuf,
    client: OnceCell<Docker>,
}

impl Engine {
    pub(crate) fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
            client: OnceCell::new(),
        }
    }

    /// `unix:///var/run/docker.sock`, as Mesos' `--docker_socket` names it.
    pub(crate) fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    async fn client(&self) -> Result<&Docker, EngineError> {
        self.client
            .get_or_try_init(|| async {
                let socket = self.socket.to_string_lossy();
                let docker = Docker::connect_with_unix(
                    &socket,
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| self.sort(e))?;
                // bollard speaks a newer API than Debian's 20.10 engine.
                docker.negotiate_version().await.map_err(|e| self.sort(e))
            })
            .await
    }

    fn sort(&self, error: BollardError) -> EngineError {
        match error {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Refused {
                status: status_code,
                message,
            },
            BollardError::DockerStreamError { error } => EngineError::Refused {
                status: 500,
                message: error,
            },
            other => EngineError::Unreachable {
                endpoint: self.endpoint(),
                cause: describe(&other),
            },
        }
    }

    pub(crate) async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        match self.client().await?.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(error) => match self.sort(error) {
                e if e.is_not_found() => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Pulls `image` (`name:tag` or `name@digest`); fails with the engine's
    /// own words when the pull does.
    pub(crate) async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut progress = self.client().await?.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            let step = step.map_err(|e| self.sort(e))?;
            if let Some(detail) = step.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Refused {
                    status: 500,
                    message: detail,
                });
            }
        }
        Ok(())
    }

    pub(crate) async fn create(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .client()
            .await?
            .create_container(Some(options), body)
            .await
            .map_err(|e| self.sort(e))?;
        Ok(created.id)
    }

    /// The container's output from its first byte, until it stops. Attach
    /// before start, so nothing is missed (docker/docker#7020).
    pub(crate) async fn attach(
        &self,
        name: &str,
    ) -> Result<impl Stream<Item = Result<LogOutput, BollardError>> + use<>, EngineError> {
        let options = AttachContainerOptionsBuilder::default()
            .stream(true)
            .logs(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self
            .client()
            .await?
            .attach_container(name, Some(options))
            .await
            .map_err(|e| self.sort(e))?;
        Ok(attached.output)
    }

    /// The output written since `since` (seconds since the epoch), each
    /// frame prefixed with its RFC 3339 timestamp, until the container stops.
    pub(crate) async fn follow_logs(
        &self,
        name: &str,
        since: i32,
    ) -> Result<impl Stream<Item = Result<LogOutput, BollardError>> + use<>, EngineError> {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since)
            .build();
        Ok(self.client().await?.logs(name, Some(options)))
    }

    pub(crate) async fn start(&self, name: &str) -> Result<(), EngineError> {
        self.client()
            .await?
            .start_container(name, None)
            .await
            .map_err(|e| self.sort(e))
    }

    pub(crate) async fn inspect(
        &self,
        name: &str,
    ) -> Result<ContainerInspectResponse, EngineError> {
        self.client()
            .await?
            .inspect_container(name, None)
            .await
            .map_err(|e| self.sort(e))
    }

    /// Waits until the container is not running; its exit code.
    pub(crate) async fn wait(&self, name: &str) -> Result<i64, EngineError> {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut waits = self.client().await?.wait_container(name, Some(options));
        match waits.next().await {
            Some(Ok(exit)) => Ok(exit.status_code),
            // bollard reports a non-zero exit as an error.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(self.sort(error)),
            None => Err(EngineError::Unreachable {
                endpoint: self.endpoint(),
                cause: "the wait ended without an exit code".to_string(),
            }),
        }
    }

    /// `docker stop -t SECS`: SIGTERM (or the image's stop signal), then
    /// SIGKILL after `grace_secs`.
    pub(crate) async fn stop(&self, name: &str, grace_secs: i32) -> Result<(), EngineError> {
        let options = StopContainerOptionsBuilder::default().t(grace_secs).build();
        match self
            .client()
            .await?
            .stop_container(name, Some(options))
            .await
        {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(error) => Err(self.sort(error)),
        }
    }

    /// `docker rm -f -v`: the container and its anonymous volumes.
    pub(crate) async fn remove(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .client()
            .await?
            .remove_container(name, Some(options))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) => match self.sort(error) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Every container, running or not, carrying `label` (`key` or
    /// `key=value`).
    pub(crate) async fn list_labelled(
        &self,
        label: &str,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.client()
            .await?
            .list_containers(Some(options))
            .await
            .map_err(|e| self.sort(e))
    }
}

/// The innermost cause, which is where "No such file or directory" or
/// "Connection refused" lives.
fn describe(error: &BollardError) -> String {
    causes(error)
        .last()
        .map_or_else(String::new, |cause| cause.to_string())
}
