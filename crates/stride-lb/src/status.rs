//! `GET /status` on the sidecar's own HTTP port: how far it has applied the
//! log, whether it follows Stride, what HAProxy runs, and how long changes
//! take to reach HAProxy.

use super::master::Processes;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Latency samples kept per kind; percentiles are over the newest ones.
const SAMPLES: usize = 1_000;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub group: String,
    pub stride: String,
    /// Following Stride's stream right now.
    pub connected: bool,
    /// HAProxy serves every change up to this seq.
    pub applied_seq: u64,
    /// The last seq received (applied or waiting to be).
    pub seen_seq: u64,
    pub reconnects: u64,
    /// Full `/v1/state` reads: at start, and when the stream cannot resume.
    pub state_fetches: u64,
    pub backends: usize,
    /// Tasks in server slots.
    pub servers: usize,
    pub reloads: u64,
    pub runtime_batches: u64,
    /// Apps left out because HAProxy rejected their part of the config.
    pub rejected: Vec<AppNote>,
    /// Apps left out because of their labels.
    pub skipped: Vec<AppNote>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppNote {
    pub app: String,
    pub reason: String,
}

#[derive(Clone)]
pub struct StatusHandle {
    inner: Arc<Mutex<Inner>>,
    haproxy: watch::Receiver<Option<Processes>>,
}

#[derive(Default)]
struct Inner {
    status: Status,
    runtime: VecDeque<Duration>,
    reload: VecDeque<Duration>,
}

/// Which latency a sample is.
#[derive(Debug, Clone, Copy)]
pub enum Took {
    /// One batch of Runtime API commands.
    Runtime,
    /// Check, rename, reload and re-applying the server state.
    Reload,
}

impl StatusHandle {
    pub fn new(status: Status, haproxy: watch::Receiver<Option<Processes>>) -> StatusHandle {
        StatusHandle {
            inner: Arc::new(Mutex::new(Inner {
                status,
                ..Inner::default()
            })),
            haproxy,
        }
    }

    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.lock().status);
    }

    pub fn record(&self, took: Took, duration: Duration) {
        let mut inner = self.lock();
        let samples = match took {
            Took::Runtime => {
                inner.status.runtime_batches += 1;
                &mut inner.runtime
            }
            Took::Reload => {
                inner.status.reloads += 1;
                &mut inner.reload
            }
        };
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(duration);
    }

    pub fn json(&self) -> Value {
        let inner = self.lock();
        let mut value = serde_json::to_value(&inner.status).unwrap_or_default();
        let haproxy = self.haproxy.borrow().clone();
        value["haproxy"] = json!({
            "running": haproxy.is_some(),
            "masterPid": haproxy.as_ref().map(|p| p.master_pid),
            "workerPid": haproxy.as_ref().and_then(Processes::worker_pid),
        });
        value["latency"] = json!({
            "runtime": percentiles(&inner.runtime),
            "reload": percentiles(&inner.reload),
        });
        value
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn percentiles(samples: &VecDeque<Duration>) -> Value {
    let mut sorted: Vec<Duration> = samples.iter().copied().collect();
    sorted.sort();
    let at = |q: f64| {
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(index).map(|d| d.as_secs_f64() * 1000.0)
    };
    json!({"count": sorted.len(), "p50Ms": at(0.5), "p99Ms": at(0.99)})
}

pub fn router(status: StatusHandle) -> Router {
    Router::new()
        .route("/status", get(serve))
        .with_state(status)
}

async fn serve(State(status): State<StatusHandle>) -> Json<Value> {
    Json(status.json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_recent_samples() {
        let (_, haproxy) = watch::channel(None);
        let status = StatusHandle::new(Status::default(), haproxy);
        for ms in 1..=100 {
            status.record(Took::Runtime, Duration::from_millis(ms));
        }
        let json = status.json();
        assert_eq!(json["runtimeBatches"], 100);
        assert_eq!(json["latency"]["runtime"]["count"], 100);
        assert_eq!(json["latency"]["runtime"]["p50Ms"], 51.0);
        assert_eq!(json["latency"]["runtime"]["p99Ms"], 99.0);
        assert_eq!(json["latency"]["reload"]["p50Ms"], Value::Null);
        assert_eq!(json["haproxy"]["running"], false);
    }
}
