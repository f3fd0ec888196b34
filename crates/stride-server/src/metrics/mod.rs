//! Prometheus metrics (`GET /metrics`), with the `prometheus-client` crate.
//!
//! Two kinds of values. What happens (a commit synced, a plan made, an
//! offer declined, a request answered) is recorded as it happens through a
//! `Metrics` handle that each part is given; with `--no-metrics` the handle
//! is off and recording costs a branch. What is (the head of the log,
//! subscribers and their lag, tasks by state) is read at scrape time into
//! an `Observed` by the API and rendered with the rest, so nothing on the
//! write path keeps it up to date.
//!
//! Every label has a bounded set of values: route templates (never raw
//! paths), status codes, fixed reason and state names, and at most
//! `MAX_NAMED` sidecars or callback endpoints by name.

mod http;
mod observed;
mod recorded;

pub use http::{Refine, Tracking, track};
pub use observed::{CallbackObserved, MAX_NAMED, Observed, SnapshotObserved, StreamObserved};
pub use recorded::{Ack, MesosState, Phase};

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;
use recorded::Recorded;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The handle every part records through; cheap to clone. Off (the
/// default) records nothing and renders nothing.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Recorded>>);

/// The exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`application/openmetrics-text`), what
    /// Prometheus asks for first.
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for everyone else.
    Text,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, else the plain text
    /// format every Prometheus parser reads.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => prometheus_text::CONTENT_TYPE,
        }
    }
}

impl Metrics {
    /// A handle that records.
    pub fn on() -> Metrics {
        Metrics(Some(Arc::new(Recorded::new())))
    }

    /// A handle that records nothing (`--no-metrics`).
    pub fn off() -> Metrics {
        Metrics(None)
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The start of something to time; `None` when off, so an off handle
    /// does not even read the clock.
    pub fn start(&self) -> Option<Instant> {
        self.0.as_ref().map(|_| Instant::now())
    }

    fn with(&self, record: impl FnOnce(&Recorded)) {
        if let Some(recorded) = &self.0 {
            record(recorded);
        }
    }

    /// One group commit: `commands` answered and `events` made durable by
    /// one fsync that began at `started`.
    pub fn synced(&self, started: Option<Instant>, commands: usize, events: usize) {
        self.with(|r| r.synced(elapsed(started), commands, events));
    }

    /// A projection snapshot now holds the state at `seq`, whose last
    /// event was recorded at `recorded_at` (unix µs).
    pub fn snapshot_taken(&self, seq: u64, recorded_at: u64) {
        self.with(|r| r.snapshot_taken(seq, recorded_at));
    }

    /// A step of the committer that began at `started` ended now.
    pub fn phase(&self, phase: Phase, started: Option<Instant>) {
        self.with(|r| r.phase(phase, elapsed(started)));
    }

    /// A command answered, `started` when it was submitted.
    pub fn acknowledged(&self, started: Option<Instant>, ack: Ack) {
        self.with(|r| r.acknowledged(elapsed(started), ack));
    }

    /// A reconciler activation whose plan took from `started` until now.
    pub fn planned(&self, started: Option<Instant>) {
        self.with(|r| r.planned(elapsed(started)));
    }

    pub fn offers_received(&self, count: usize) {
        self.with(|r| r.offers_received(count));
    }

    /// Offers declined, and why (a fixed, snake_case name).
    pub fn offers_declined(&self, reason: &'static str, count: usize) {
        self.with(|r| r.offers_declined(reason, count));
    }

    /// Tasks sent to Mesos in ACCEPTs that it took (`accepted`) or not.
    pub fn launches(&self, accepted: bool, count: usize) {
        self.with(|r| r.launches(accepted, count));
    }

    pub fn kill_sent(&self) {
        self.with(Recorded::kill_sent);
    }

    pub fn mesos(&self, state: MesosState) {
        self.with(|r| r.mesos(state));
    }

    /// One health probe by Stride (`protocol` as in the definition).
    pub fn health_probed(&self, protocol: &'static str, healthy: bool) {
        self.with(|r| r.health_probed(protocol, healthy));
    }

    fn http_request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        self.with(|r| r.http_request(method, route, status, took));
    }

    /// Everything recorded and `observed` in `format`; `None` when off.
    pub fn render(&self, observed: &Observed, format: Format) -> Option<String> {
        let recorded = self.0.as_ref()?;
        let mut observed = observed.clone();
        observed.snapshot = recorded.snapshot();
        let mut scraped = Registry::default();
        scraped.register_collector(Box::new(observed));
        let mut out = String::new();
        let written = match format {
            Format::OpenMetrics => text::encode_registry(&mut out, &recorded.registry)
                .and_then(|()| text::encode_registry(&mut out, &scraped))
                .and_then(|()| text::encode_eof(&mut out)),
            Format::Text => prometheus_text::encode(&mut out, &recorded.registry)
                .and_then(|()| prometheus_text::encode(&mut out, &scraped)),
        };
        // Writing to a String cannot fail; an encoder refusing a value
        // would be a bug worth seeing, not a reason to answer nothing.
        if let Err(error) = written {
            tracing::error!(%error, "encoding metrics failed");
        }
        Some(out)
    }
}

fn elapsed(started: Option<Instant>) -> Duration {
    started.map_or(Duration::ZERO, |s| s.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_renders_nothing_and_on_renders_every_group() {
        assert!(
            Metrics::off()
                .render(&Observed::default(), Format::Text)
                .is_none()
        );
        let metrics = Metrics::on();
        metrics.synced(metrics.start(), 3, 7);
        metrics.acknowledged(metrics.start(), Ack::Committed);
        metrics.offers_declined("insufficient_cpus", 2);
        let text = metrics.render(&Observed::default(), Format::Text).unwrap();
        for line in [
            "stride_commit_batch_events_sum 7",
            "stride_commit_batch_commands_count 1",
            "stride_offers_declined_total{reason=\"insufficient_cpus\"} 2",
            "stride_log_head_seq 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let open = metrics
            .render(&Observed::default(), Format::OpenMetrics)
            .unwrap();
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        let prometheus =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
        assert_eq!(Format::from_accept(None), Format::Text);
    }
}
