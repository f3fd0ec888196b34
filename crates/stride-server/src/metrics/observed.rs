//! Values read at scrape time: plain numbers the API gathers from the
//! projection, the log and the stream, encoded here.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use std::collections::BTreeMap;

/// Sidecars or callback endpoints shown by name at most; the rest are
/// summed under the name `other`, so a crowd of clients cannot grow the
/// label set without bound.
pub const MAX_NAMED: usize = 64;
/// Longer names are cut: label values are for reading.
const MAX_NAME: usize = 128;
const OTHER: &str = "other";

/// One scrape's view of what is.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The last durable seq.
    pub head_seq: u64,
    /// Filled in by `Metrics::render` from what the committer recorded.
    pub snapshot: Option<SnapshotObserved>,
    /// Unix µs, for ages.
    pub now_micros: u64,
    pub streams: Vec<StreamObserved>,
    /// Connected LB sidecars: name and the seq each has applied.
    pub sidecars: Vec<(String, u64)>,
    pub callbacks: Vec<CallbackObserved>,
    /// Tasks by condition (snake_case).
    pub tasks: BTreeMap<&'static str, u64>,
    /// Tasks by health: `healthy`, `unhealthy`, `unknown`.
    pub task_health: BTreeMap<&'static str, u64>,
    pub apps: u64,
    pub deployments: u64,
    /// Apps waiting for launches, and the instances they wait for.
    pub queue_apps: u64,
    pub queue_instances: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotObserved {
    pub seq: u64,
    /// When the last event the snapshot holds was recorded (unix µs).
    pub recorded_at: u64,
}

/// Subscribers of one protocol (`websocket` or `sse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamObserved {
    pub protocol: &'static str,
    pub subscribers: u64,
    /// Events the furthest-behind subscriber has yet to be sent.
    pub max_lag: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackObserved {
    /// The endpoint, credentials and query removed.
    pub endpoint: String,
    pub delivered: u64,
    pub failed: u64,
    /// The last seq delivered.
    pub cursor: u64,
}

type Result = std::result::Result<(), std::fmt::Error>;

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn seconds(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Result {
    let metric = ConstGauge::new(value);
    let unit = Unit::Seconds;
    metric.encode(encoder.encode_descriptor(name, help, Some(&unit), metric.metric_type())?)
}

/// A gauge or counter family with one label, its values given in order.
fn family<V: Copy>(
    encoder: &mut DescriptorEncoder,
    (name, help, metric_type): (&str, &str, MetricType),
    label: &'static str,
    values: &[(&str, V)],
    encode: impl Fn(V, prometheus_client::encoding::MetricEncoder) -> Result,
) -> Result {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (value_label, value) in values {
        let labels = [(label, *value_label)];
        encode(*value, metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn const_gauge(value: i64, encoder: prometheus_client::encoding::MetricEncoder) -> Result {
    ConstGauge::new(value).encode(encoder)
}

fn const_counter(value: u64, encoder: prometheus_client::encoding::MetricEncoder) -> Result {
    ConstCounter::new(value).encode(encoder)
}

/// At most `MAX_NAMED` names, each cut to `MAX_NAME` characters, the rest
/// folded into `other` with `fold`.
fn bounded<T: Clone>(
    named: impl IntoIterator<Item = (String, T)>,
    fold: impl Fn(&mut T, &T),
) -> Vec<(String, T)> {
    let mut kept: BTreeMap<String, T> = BTreeMap::new();
    let mut other: Option<T> = None;
    for (name, value) in named {
        let name: String = name.chars().take(MAX_NAME).collect();
        if let Some(existing) = kept.get_mut(&name) {
            fold(existing, &value);
        } else if kept.len() < MAX_NAMED && name != OTHER {
            kept.insert(name, value);
        } else {
            match &mut other {
                Some(total) => fold(total, &value),
                None => other = Some(value),
            }
        }
    }
    let mut out: Vec<(String, T)> = kept.into_iter().collect();
    out.extend(other.map(|value| (OTHER.to_owned(), value)));
    out
}

impl Observed {
    fn encode_log(&self, encoder: &mut DescriptorEncoder) -> Result {
        gauge(
            encoder,
            "stride_log_head_seq",
            "The seq of the last durable event",
            int(self.head_seq),
        )?;
        let snapshot_seq = self.snapshot.map_or(0, |s| s.seq);
        gauge(
            encoder,
            "stride_snapshot_seq",
            "The seq the newest projection snapshot holds the state at (0: none)",
            int(snapshot_seq),
        )?;
        gauge(
            encoder,
            "stride_snapshot_behind_events",
            "Events after the newest snapshot: what a restart replays",
            int(self.head_seq.saturating_sub(snapshot_seq)),
        )?;
        let Some(snapshot) = self.snapshot else {
            return Ok(());
        };
        let age = self.now_micros.saturating_sub(snapshot.recorded_at) as f64 / 1e6;
        seconds(
            encoder,
            "stride_snapshot_age",
            "Age of the state the newest snapshot holds (since its last event was recorded)",
            age,
        )
    }

    fn encode_stream(&self, encoder: &mut DescriptorEncoder) -> Result {
        let by_protocol = |pick: fn(&StreamObserved) -> u64| -> Vec<(&str, i64)> {
            self.streams
                .iter()
                .map(|s| (s.protocol, int(pick(s))))
                .collect()
        };
        family(
            encoder,
            (
                "stride_stream_subscribers",
                "Connected stream subscribers, by protocol (websocket /v1/stream, sse /v2/events)",
                MetricType::Gauge,
            ),
            "protocol",
            &by_protocol(|s| s.subscribers),
            const_gauge,
        )?;
        family(
            encoder,
            (
                "stride_stream_max_lag_events",
                "Durable events the furthest-behind subscriber has yet to be sent, by protocol",
                MetricType::Gauge,
            ),
            "protocol",
            &by_protocol(|s| s.max_lag),
            const_gauge,
        )?;
        let sidecars = bounded(
            self.sidecars.iter().map(|(name, seq)| (name.clone(), *seq)),
            // Several under one name: the one furthest behind speaks for them.
            |kept, seq| *kept = (*kept).min(*seq),
        );
        gauge(
            encoder,
            "stride_sidecars",
            "Connected load-balancer sidecars",
            self.sidecars.len() as i64,
        )?;
        let applied: Vec<(&str, i64)> = sidecars
            .iter()
            .map(|(name, seq)| (name.as_str(), int(*seq)))
            .collect();
        family(
            encoder,
            (
                "stride_sidecar_applied_seq",
                "The seq each sidecar has applied to its proxy",
                MetricType::Gauge,
            ),
            "sidecar",
            &applied,
            const_gauge,
        )?;
        let lag: Vec<(&str, i64)> = sidecars
            .iter()
            .map(|(name, seq)| (name.as_str(), int(self.head_seq.saturating_sub(*seq))))
            .collect();
        family(
            encoder,
            (
                "stride_sidecar_lag_events",
                "Durable events each sidecar has yet to apply",
                MetricType::Gauge,
            ),
            "sidecar",
            &lag,
            const_gauge,
        )
    }

    fn encode_callbacks(&self, encoder: &mut DescriptorEncoder) -> Result {
        let callbacks = bounded(
            self.callbacks
                .iter()
                .map(|c| (c.endpoint.clone(), (c.delivered, c.failed, c.cursor))),
            |kept, (delivered, failed, cursor)| {
                kept.0 += delivered;
                kept.1 += failed;
                kept.2 = kept.2.min(*cursor);
            },
        );
        let pick = |f: fn(&(u64, u64, u64)) -> u64| -> Vec<(&str, u64)> {
            callbacks.iter().map(|(n, v)| (n.as_str(), f(v))).collect()
        };
        family(
            encoder,
            (
                "stride_callback_deliveries",
                "Event callbacks delivered (answered 2xx), by subscriber endpoint",
                MetricType::Counter,
            ),
            "subscriber",
            &pick(|v| v.0),
            const_counter,
        )?;
        family(
            encoder,
            (
                "stride_callback_failures",
                "Event callback attempts that failed, by subscriber endpoint",
                MetricType::Counter,
            ),
            "subscriber",
            &pick(|v| v.1),
            const_counter,
        )?;
        let lag: Vec<(&str, i64)> = pick(|v| v.2)
            .into_iter()
            .map(|(name, cursor)| (name, int(self.head_seq.saturating_sub(cursor))))
            .collect();
        family(
            encoder,
            (
                "stride_callback_lag_events",
                "Durable events not yet delivered, by subscriber endpoint",
                MetricType::Gauge,
            ),
            "subscriber",
            &lag,
            const_gauge,
        )
    }

    fn encode_state(&self, encoder: &mut DescriptorEncoder) -> Result {
        let tasks: Vec<(&str, i64)> = self.tasks.iter().map(|(k, v)| (*k, int(*v))).collect();
        family(
            encoder,
            (
                "stride_tasks",
                "Tasks the projection knows, by condition",
                MetricType::Gauge,
            ),
            "state",
            &tasks,
            const_gauge,
        )?;
        let health: Vec<(&str, i64)> = self
            .task_health
            .iter()
            .map(|(k, v)| (*k, int(*v)))
            .collect();
        family(
            encoder,
            (
                "stride_task_health",
                "Live tasks by their last health verdict (Stride's or Mesos')",
                MetricType::Gauge,
            ),
            "health",
            &health,
            const_gauge,
        )?;
        gauge(encoder, "stride_apps", "Apps defined", int(self.apps))?;
        gauge(
            encoder,
            "stride_deployments",
            "Deployments running",
            int(self.deployments),
        )?;
        gauge(
            encoder,
            "stride_queue_apps",
            "Apps waiting for tasks to launch",
            int(self.queue_apps),
        )?;
        gauge(
            encoder,
            "stride_queue_instances",
            "Instances waiting to launch",
            int(self.queue_instances),
        )
    }
}

impl Collector for Observed {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result {
        self.encode_log(&mut encoder)?;
        self.encode_stream(&mut encoder)?;
        self.encode_callbacks(&mut encoder)?;
        self.encode_state(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beyond_the_bound_fold_into_other() {
        let named = (0..MAX_NAMED + 10).map(|i| (format!("lb-{i:03}"), 1u64));
        let kept = bounded(named, |a, b| *a += b);
        assert_eq!(kept.len(), MAX_NAMED + 1);
        assert_eq!(kept.last(), Some(&("other".to_owned(), 10)));
        let long = bounded([("x".repeat(1000), 1u64)], |a, b| *a += b);
        assert_eq!(long[0].0.len(), MAX_NAME);
    }
}
