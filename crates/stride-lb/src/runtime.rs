//! HAProxy's Runtime API on the stats socket: one persistent connection in
//! prompt mode, commands pipelined in chunks, each answer read up to the
//! next prompt. Server changes go this way, so they need no reload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::timeout;

/// What HAProxy prints after each answer in prompt mode.
const PROMPT: &[u8] = b"\n> ";
/// Commands written before their answers are read: HAProxy stops reading
/// while its answers wait, so an unbounded pipeline could deadlock.
const CHUNK: usize = 64;
/// Longest wait for one chunk's answers; HAProxy answers in microseconds.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Ready,
    Drain,
    Maint,
}

/// A change to one server slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCommand {
    Addr {
        backend: String,
        slot: usize,
        addr: SocketAddr,
    },
    State {
        backend: String,
        slot: usize,
        state: AdminState,
    },
}

impl ServerCommand {
    /// The command line; slot 0 is `srv1`.
    pub fn line(&self) -> String {
        match self {
            ServerCommand::Addr {
                backend,
                slot,
                addr,
            } => format!(
                "set server {backend}/srv{} addr {} port {}",
                slot + 1,
                addr.ip(),
                addr.port()
            ),
            ServerCommand::State {
                backend,
                slot,
                state,
            } => {
                let state = match state {
                    AdminState::Ready => "ready",
                    AdminState::Drain => "drain",
                    AdminState::Maint => "maint",
                };
                format!("set server {backend}/srv{} state {state}", slot + 1)
            }
        }
    }

    /// HAProxy reports failures as text ("No such server.", "Invalid
    /// addr ..."); success is silence, or for an address what changed.
    fn accepts(&self, answer: &str) -> bool {
        match self {
            ServerCommand::Addr { .. } => {
                answer.starts_with("IP changed") || answer.starts_with("no need to change")
            }
            ServerCommand::State { .. } => answer.trim().is_empty(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot talk to HAProxy's stats socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("HAProxy's stats socket {path} did not answer within {CHUNK_TIMEOUT:?}")]
    Timeout { path: PathBuf },
    #[error("HAProxy refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
}

pub struct RuntimeApi {
    path: PathBuf,
    connection: Option<Connection>,
}

struct Connection {
    stream: UnixStream,
    /// Bytes read past the last prompt.
    pending: Vec<u8>,
}

impl RuntimeApi {
    pub fn new(path: &Path) -> RuntimeApi {
        RuntimeApi {
            path: path.to_owned(),
            connection: None,
        }
    }

    /// Forgets the connection; after a reload it leads to the old worker.
    pub fn disconnect(&mut self) {
        self.connection = None;
    }

    /// Runs the commands in order. A broken connection (an idle timeout, a
    /// restarted HAProxy) is retried once on a fresh one: setting an
    /// address or a state twice is harmless.
    pub async fn run(&mut self, commands: &[ServerCommand]) -> Result<(), RuntimeError> {
        for chunk in commands.chunks(CHUNK) {
            let lines: Vec<String> = chunk.iter().map(ServerCommand::line).collect();
            let answers = self.send(&lines).await?;
            for (command, answer) in chunk.iter().zip(&answers) {
                if !command.accepts(answer) {
                    return Err(RuntimeError::Refused {
                        command: command.line(),
                        answer: answer.trim().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// One command's answer, e.g. `show servers state be_web_10000`.
    pub async fn query(&mut self, command: &str) -> Result<String, RuntimeError> {
        let mut answers = self.send(&[command.to_owned()]).await?;
        Ok(answers.pop().unwrap_or_default())
    }

    async fn send(&mut self, lines: &[String]) -> Result<Vec<String>, RuntimeError> {
        match self.send_once(lines).await {
            Err(RuntimeError::Io { .. } | RuntimeError::Timeout { .. }) => {
                self.disconnect();
                self.send_once(lines).await
            }
            other => other,
        }
    }

    async fn send_once(&mut self, lines: &[String]) -> Result<Vec<String>, RuntimeError> {
        let path = self.path.clone();
        let io = |source| RuntimeError::Io {
            path: path.clone(),
            source,
        };
        let exchange = async {
            if self.connection.is_none() {
                let stream = UnixStream::connect(&self.path).await.map_err(io)?;
                let mut connection = Connection {
                    stream,
                    pending: Vec::new(),
                };
                connection.stream.write_all(b"prompt\n").await.map_err(io)?;
                connection.answer().await.map_err(io)?;
                self.connection = Some(connection);
            }
            let connection = self.connection.as_mut().expect("connected just above");
            let mut batch = lines.join("\n");
            batch.push('\n');
            connection
                .stream
                .write_all(batch.as_bytes())
                .await
                .map_err(io)?;
            let mut answers = Vec::with_capacity(lines.len());
            for _ in lines {
                answers.push(connection.answer().await.map_err(io)?);
            }
            Ok(answers)
        };
        let result = timeout(CHUNK_TIMEOUT, exchange).await;
        match result {
            Ok(Ok(answers)) => Ok(answers),
            Ok(Err(error)) => {
                self.connection = None;
                Err(error)
            }
            Err(_) => {
                self.connection = None;
                Err(RuntimeError::Timeout { path })
            }
        }
    }
}

impl Connection {
    /// The text before the next prompt.
    async fn answer(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(end) = find(&self.pending, PROMPT) {
                let answer = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                self.pending.drain(..end + PROMPT.len());
                return Ok(answer);
            }
            let mut buffer = [0u8; 8192];
            let read = self.stream.read(&mut buffer).await?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&buffer[..read]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_how_answers_are_judged() {
        let addr = ServerCommand::Addr {
            backend: "be_web_10000".into(),
            slot: 2,
            addr: "10.0.0.1:31000".parse().unwrap(),
        };
        assert_eq!(
            addr.line(),
            "set server be_web_10000/srv3 addr 10.0.0.1 port 31000"
        );
        assert!(addr.accepts("IP changed from '127.0.0.1' to '10.0.0.1', port changed from '1' to '31000' by 'stats socket command'\n"));
        assert!(addr.accepts(
            "no need to change the addr, no need to change the port by 'stats socket command'\n"
        ));
        assert!(!addr.accepts("No such server.\n"));
        assert!(!addr.accepts("Invalid addr '10.0.0.x' by 'stats socket command'\n"));
        let state = ServerCommand::State {
            backend: "be_web_10000".into(),
            slot: 0,
            state: AdminState::Drain,
        };
        assert_eq!(state.line(), "set server be_web_10000/srv1 state drain");
        assert!(state.accepts(""));
        assert!(!state.accepts("No such backend.\n"));
    }
}
