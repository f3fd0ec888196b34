//! A task's sandbox files, read as Mesos' own web UI reads them: the
//! master's `/master/slaves` gives the agent's address (its libprocess
//! `pid`), and the agent's `/files/read` serves each executor's newest run
//! under the virtual path `/frameworks/<framework>/executors/<executor>/runs/latest`.
//! A command task's executor id is its task id.

use super::SchedulerHandle;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

/// The most an agent's `/files/read` answers at once: 16 pages
/// (apache/mesos `src/files/files.cpp`), whatever `length` asks.
pub const MAX_READ: u64 = 16 * 4096;

/// Where a file is: the task's agent, framework and executor, and its name
/// in the sandbox (`stdout`, `stderr`).
#[derive(Debug, Clone)]
pub struct SandboxFile<'a> {
    pub agent: &'a str,
    pub framework: &'a str,
    pub executor: &'a str,
    pub name: &'a str,
}

/// Which bytes: from `offset`, or the last `length` bytes when `None`;
/// `length` is at most `MAX_READ`.
#[derive(Debug, Clone, Copy)]
pub struct ByteRange {
    pub offset: Option<u64>,
    pub length: u64,
}

/// Bytes `offset..next` of a file `size` bytes long (when it was read),
/// as text: bytes that are not UTF-8 (a character cut at either end of
/// the range, or binary output) read as U+FFFD, so `next` and not the
/// text's length says where the following read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub next: u64,
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
    #[error("{url} answered what is not the JSON expected: {message}")]
    Body { url: Url, message: String },
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
    // Within the size just read and the agent's cap, so it answers exactly
    // `length` bytes (an output file only grows).
    let length = range.length.min(MAX_READ).min(size.saturating_sub(offset));
    let data = match length {
        0 => String::new(),
        _ => {
            let start = i64::try_from(offset).unwrap_or(i64::MAX);
            files_read(mesos, &agent, &path, start, length).await?.data
        }
    };
    Ok(Chunk {
        offset,
        next: offset + length,
        size,
        data,
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
    let body = match get(mesos, url.clone()).await {
        Err(SandboxError::Mesos { status, .. }) if status == StatusCode::NOT_FOUND => {
            return Err(SandboxError::NoFile(path.to_owned()));
        }
        other => other?,
    };
    // The agent writes the file's bytes into its JSON string unescaped
    // (stout's `JSON::StringWriter`), so the body is UTF-8 only when the
    // chunk is.
    serde_json::from_str(&String::from_utf8_lossy(&body)).map_err(|error| SandboxError::Body {
        url,
        message: error.to_string(),
    })
}

async fn get_json<T: serde::de::DeserializeOwned>(
    mesos: &SchedulerHandle,
    url: Url,
) -> Result<T, SandboxError> {
    let body = get(mesos, url.clone()).await?;
    serde_json::from_slice(&body).map_err(|error| SandboxError::Body {
        url,
        message: error.to_string(),
    })
}

/// The body of a 2xx answer.
async fn get(mesos: &SchedulerHandle, url: Url) -> Result<bytes::Bytes, SandboxError> {
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
    response.bytes().await.map_err(http)
}
