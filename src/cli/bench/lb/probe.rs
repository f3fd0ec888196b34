//! Both ends of a request through HAProxy: the task the bench launches (an
//! HTTP server answering every request with its task id) and the probes
//! that send requests through a service port back to back, noting when
//! the first request each task answered was sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Unix µs, the unit of an event's `recorded_at`.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

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
    crate::cli::remote::block_on(async move {
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

/// Probes hammering one port until dropped.
pub struct Probe {
    /// Task id -> when the first request it answered was sent (unix µs).
    first: Arc<Mutex<HashMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    /// Answered requests and the time they took, for the overhead estimate.
    answered: Arc<AtomicU64>,
    busy_micros: Arc<AtomicU64>,
}

impl Probe {
    /// `loops` clients, each with its own keep-alive connection.
    pub fn start(port: u16, loops: usize) -> Probe {
        let probe = Probe {
            first: Arc::default(),
            stop: Arc::default(),
            answered: Arc::default(),
            busy_micros: Arc::default(),
        };
        let url = format!("http://127.0.0.1:{port}/");
        for _ in 0..loops {
            let (first, stop, url) = (probe.first.clone(), probe.stop.clone(), url.clone());
            let (answered, busy) = (probe.answered.clone(), probe.busy_micros.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap_or_default();
                while !stop.load(Ordering::Relaxed) {
                    let sent = now_micros();
                    let id = match client.get(&url).send().await {
                        Ok(answer) if answer.status() == 200 => answer.text().await.ok(),
                        _ => None,
                    };
                    let Some(id) = id else {
                        // Nothing listens yet, or no server: do not spin.
                        tokio::time::sleep(Duration::from_micros(200)).await;
                        continue;
                    };
                    answered.fetch_add(1, Ordering::Relaxed);
                    busy.fetch_add(now_micros().saturating_sub(sent), Ordering::Relaxed);
                    let mut first = first.lock().unwrap_or_else(|p| p.into_inner());
                    first.entry(id).or_insert(sent);
                }
            });
        }
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
