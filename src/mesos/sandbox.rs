//! A task's sandbox files, read as Mesos' own web UI reads them: the
//! master's `/master/slaves` gives the agent's address (its libprocess
//! `pid`), and the agent's `/files/read` serves each executor's newest run
//! under the virtual path `/frameworks/<framework>/executors/<executor>/runs/latest`.
//! A command task's executor id is its task id.

use super::SchedulerHandle;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

/// Where a file is: the task's agent, framework and executor, and its name
/// in the sandbox (`stdout`, `stderr`).
#[derive(Debug, Clone)]
pub struct SandboxFile<'a> {
    pub agent: &'a str,
    pub framework: &'a str,
    pub executor: &'a str,
    pub name: &'a str,
}

/// Which bytes: from `offset`, or the last `length` bytes when `None`.
#[derive(Debug, Clone, Copy)]
pub struct ByteRange {
    pub offset: Option<u64>,
    pub length: u64,
}

/// Bytes `offset..offset + data.len()` of a file `size` bytes long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub size: u64,
    pub data: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("Stride is not subscribed to a Mesos master")]
    NotSubscribed,
    #[error("the master does not know agent {0}")]
    UnknownAgent(String),
    #[error("the agent has no file {0} (the sandbox may have been garbage-collected)")]
    NoFile(String),
    #[error("{url} answered {status}: {message}")]
    Mesos {
        url: Url,
        status: StatusCode,
        message: String,
    },
    #[error("{url}: {source}")]
    Http {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
}

#[derive(Deserialize)]
struct Agents {
    slaves: Vec<AgentInfo>,
}

#[derive(Deserialize)]
struct AgentInfo {
    id: String,
    pid: String,
}

/// `/files/read`'s answer: `offset` is the file's size when asked at `-1`.
#[derive(Deserialize)]
struct Read {
    data: String,
    offset: u64,
}

pub async fn read(
    mesos: &SchedulerHandle,
    file: &SandboxFile<'_>,
    range: ByteRange,
) -> Result<Chunk, SandboxError> {
    let master = mesos
        .shared
        .session()
        .ok_or(SandboxError::NotSubscribed)?
        .endpoint;
    let agent = agent_url(mesos, &master, file.agent).await?;
    let path = format!(
        "/frameworks/{}/executors/{}/runs/latest/{}",
        file.framework, file.executor, file.name
    );
    let size = files_read(mesos, &agent, &path, -1, 0).await?.offset;
    let offset = range
        .offset
        .unwrap_or_else(|| size.saturating_sub(range.length));
    let chunk = match offset >= size || range.length == 0 {
        true => String::new(),
        false => {
            let start = i64::try_from(offset).unwrap_or(i64::MAX);
            files_read(mesos, &agent, &path, start, range.length)
                .await?
                .data
        }
    };
    Ok(Chunk {
        offset,
        size,
        data: chunk,
    })
}

/// The agent's base URL, from its pid `slave(1)@10.0.0.5:5051`.
async fn agent_url(
    mesos: &SchedulerHandle,
    master: &Url,
    agent: &str,
) -> Result<Url, SandboxError> {
    let url = master
        .join("/master/slaves")
        .expect("an absolute path joins");
    let agents: Agents = get_json(mesos, url).await?;
    let address = agents
        .slaves
        .iter()
        .find(|a| a.id == agent)
        .and_then(|a| a.pid.split_once('@'))
        .map(|(_, address)| address.to_owned())
        .ok_or_else(|| SandboxError::UnknownAgent(agent.to_owned()))?;
    Url::parse(&format!("{}://{address}/", master.scheme()))
        .map_err(|_| SandboxError::UnknownAgent(agent.to_owned()))
}

async fn files_read(
    mesos: &SchedulerHandle,
    agent: &Url,
    path: &str,
    offset: i64,
    length: u64,
) -> Result<Read, SandboxError> {
    let mut url = agent.join("/files/read").expect("an absolute path joins");
    url.query_pairs_mut()
        .append_pair("path", path)
        .append_pair("offset", &offset.to_string())
        .append_pair("length", &length.to_string());
    match get_json(mesos, url).await {
        Err(SandboxError::Mesos { status, .. }) if status == StatusCode::NOT_FOUND => {
            Err(SandboxError::NoFile(path.to_owned()))
        }
        other => other,
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    mesos: &SchedulerHandle,
    url: Url,
) -> Result<T, SandboxError> {
    let http = |source| SandboxError::Http {
        url: url.clone(),
        source,
    };
    let response = mesos.http.get(url.clone()).send().await.map_err(http)?;
    let status = response.status();
    if !status.is_success() {
        let message = response.text().await.unwrap_or_default();
        return Err(SandboxError::Mesos {
            url,
            status,
            message: message.trim().to_owned(),
        });
    }
    response.json().await.map_err(http)
}
