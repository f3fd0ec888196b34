//! Both ends of a request through HAProxy: the task the bench launches (an
//! HTTP server answering every request with its task id) and the probes
//! that send requests through a service port, noting when each task's
//! first answer arrived.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use stride_runtime::clock::now_micros;

/// `stride bench lb-task`: what each task runs. Serves `$MESOS_TASK_ID` on
/// 127.0.0.1:`$PORT0`, keep-alive, in microseconds: a Python server would
/// make the probes slow enough to blur what they measure.
pub fn serve_task_id() -> anyhow::Result<()> {
    use anyhow::Context;
    let port: u16 = std::env::var("PORT0")
        .context("PORT0 is not set")?
        .parse()
        .context("PORT0 is not a port")?;
    let id = std::env::var("MESOS_TASK_ID").context("MESOS_TASK_ID is not set")?;
    let answer: Arc<[u8]> = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{id}",
        id.len()
    )
    .into_bytes()
    .into();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (socket, _) = listener.accept().await?;
            tokio::spawn(answer_each_request(socket, answer.clone()));
        }
    })
}

/// Answers every request head on the connection; the probes and health
/// checks send no bodies.
async fn answer_each_request(mut socket: tokio::net::TcpStream, answer: Arc<[u8]>) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if socket.write_all(&answer).await.is_err() {
                return;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A probe on one port until dropped: an OS thread with one keep-alive
/// connection, a request every `pace` (plus its round trip). A thread and
/// raw HTTP keep the probe cheap and its timing fine-grained; the CPU it
/// takes is CPU the measured processes lack.
pub struct Probe {
    /// Task id -> when its first answer arrived (unix µs).
    first: Arc<Mutex<HashMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    /// Answered requests and the time they took, for the overhead estimate.
    answered: Arc<AtomicU64>,
    busy_micros: Arc<AtomicU64>,
}

impl Probe {
    pub fn start(port: u16, pace: Duration) -> Probe {
        let probe = Probe {
            first: Arc::default(),
            stop: Arc::default(),
            answered: Arc::default(),
            busy_micros: Arc::default(),
        };
        let (first, stop) = (probe.first.clone(), probe.stop.clone());
        let (answered, busy) = (probe.answered.clone(), probe.busy_micros.clone());
        std::thread::spawn(move || {
            let mut connection = None;
            while !stop.load(Ordering::Relaxed) {
                let sent = now_micros();
                match ask(&mut connection, port) {
                    Some(id) => {
                        // Arrival, not sending: a request HAProxy held
                        // (retrying a dead server) was routed late.
                        let arrived = now_micros();
                        answered.fetch_add(1, Ordering::Relaxed);
                        busy.fetch_add(arrived.saturating_sub(sent), Ordering::Relaxed);
                        let mut first = first.lock().unwrap_or_else(|p| p.into_inner());
                        first.entry(id).or_insert(arrived);
                    }
                    None => connection = None,
                }
                std::thread::sleep(pace);
            }
        });
        probe
    }

    /// When `task` first answered, if it has.
    pub fn first(&self, task: &str) -> Option<u64> {
        self.lock().get(task).copied()
    }

    /// When any task first answered, if one has.
    pub fn first_any(&self) -> Option<u64> {
        self.lock().values().min().copied()
    }

    /// Mean time an answered request took (µs).
    pub fn mean_round_trip(&self) -> f64 {
        let answered = self.answered.load(Ordering::Relaxed).max(1);
        self.busy_micros.load(Ordering::Relaxed) as f64 / answered as f64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.first.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One `GET /` on the kept connection (opened if need be): the body of a
/// 200, else `None` (nothing listening, HAProxy's 503, a closed connection).
fn ask(connection: &mut Option<TcpStream>, port: u16) -> Option<String> {
    if connection.is_none() {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_nodelay(true).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        *connection = Some(stream);
    }
    let stream = connection.as_mut()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let (head, length) = loop {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        answer.extend_from_slice(&chunk[..read]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse::<usize>().ok())?;
            answer.drain(..end + 4);
            break (head, length);
        }
    };
    while answer.len() < length {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        answer.extend_from_slice(&chunk[..read]);
    }
    if !head.starts_with("http/1.1 200") {
        return None;
    }
    String::from_utf8(answer[..length].to_vec()).ok()
}

/// A `/v1/stream` subscriber following the events a change starts from,
/// as the sidecar does: when each arrived (by seq, unix µs), to tell
/// Stride's part (durable commit, delivery) from the sidecar's.
pub struct Subscriber {
    arrived: Arc<Mutex<HashMap<u64, u64>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub async fn start(stride: &str) -> anyhow::Result<Subscriber> {
        use futures::StreamExt;
        let url = format!(
            "{}/v1/stream?from=now&type=HealthChanged&type=AppUpdated",
            stride.replacen("http", "ws", 1)
        );
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await?;
        let arrived: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
        let seen = arrived.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let now = now_micros();
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let seq = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .filter(|v| v["type"] != "progress")
                    .and_then(|v| v["seq"].as_u64());
                if let Some(seq) = seq {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(seq, now);
                }
            }
        });
        Ok(Subscriber { arrived, reader })
    }

    /// When the event `seq` arrived, if it has.
    pub fn arrived(&self, seq: u64) -> Option<u64> {
        let arrived = self.arrived.lock().unwrap_or_else(|p| p.into_inner());
        arrived.get(&seq).copied()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
