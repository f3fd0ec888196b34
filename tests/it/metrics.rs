//! `GET /metrics` against the real binary on the embedded cluster: read
//! by real parsers (promtool for the Prometheus text format, the
//! prometheus-client parser from PyPI for OpenMetrics) and scraped by a
//! real Prometheus, which must see the target up and a value of every
//! group move under load.

use crate::support;
use crate::support::api_tools;
use crate::support::stream_client;

use crate::support::ports::{self, ports};
use crate::support::real_parts;
use crate::support::{LocalMesos, Server, client, send_ok, wait_until};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A real Prometheus scraping one target every second.
struct Prometheus {
    child: Child,
    url: String,
    _port: ports::Ports,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(prometheus: &Path, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        let host = target.trim_start_matches("http://");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: stride\n    static_configs:\n      - targets: ['{host}']\n"
            ),
        )
        .expect("config");
        let listen = ports::port();
        let port = listen.first();
        let child = Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _port: listen,
            _dir: dir,
        }
    }

    /// The instant vector of `promql`: each series' labels and value.
    async fn query(&self, http: &reqwest::Client, promql: &str) -> Vec<(Value, f64)> {
        let Ok(response) = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let body: Value = response.json().await.unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| {
                let value = series["value"][1].as_str().unwrap_or("NaN");
                (series["metric"].clone(), value.parse().unwrap_or(f64::NAN))
            })
            .collect()
    }

    /// The one value of `promql`, 0 when it has none yet.
    async fn value(&self, http: &reqwest::Client, promql: &str) -> f64 {
        let series = self.query(http, promql).await;
        series.first().map_or(0.0, |(_, v)| *v)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A callback endpoint that refuses its first two POSTs.
async fn flaky_receiver() -> String {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                match seen.fetch_add(1, Ordering::SeqCst) < 2 {
                    true => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    false => axum::http::StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://user:secret@{}/hook?token=t0p",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Each group of the issue, with the series that must move under load.
const MUST_MOVE: &[(&str, &str)] = &[
    ("write path", "stride_commit_batch_events_sum"),
    ("write path", "stride_commit_batch_commands_count"),
    ("write path", "stride_fsync_duration_seconds_count"),
    (
        "write path",
        r#"stride_commit_ack_duration_seconds_count{result="committed"}"#,
    ),
    (
        "write path",
        r#"stride_commit_phase_duration_seconds_count{phase="queued"}"#,
    ),
    (
        "write path",
        r#"stride_commit_phase_duration_seconds_count{phase="handoff"}"#,
    ),
    (
        "write path",
        r#"stride_commit_phase_duration_seconds_count{phase="wake"}"#,
    ),
    ("write path", "stride_log_head_seq"),
    ("write path", "stride_snapshot_seq"),
    (
        "stream",
        r#"stride_stream_subscribers{protocol="websocket"}"#,
    ),
    ("stream", r#"stride_stream_subscribers{protocol="sse"}"#),
    ("stream", "sum(stride_callback_deliveries_total)"),
    ("stream", "sum(stride_callback_failures_total)"),
    ("sidecars", "stride_sidecars"),
    (
        "sidecars",
        r#"stride_sidecar_applied_seq{sidecar="lb-metrics"}"#,
    ),
    (
        "sidecars",
        r#"stride_sidecar_lag_events{sidecar="lb-metrics"}"#,
    ),
    ("reconciler", "stride_reconciler_activations_total"),
    (
        "reconciler",
        "stride_reconciler_plan_duration_seconds_count",
    ),
    ("reconciler", "stride_offers_received_total"),
    (
        "reconciler",
        r#"stride_offers_declined_total{reason="insufficient_cpus"}"#,
    ),
    (
        "reconciler",
        r#"stride_task_launches_total{result="accepted"}"#,
    ),
    ("reconciler", "stride_task_kills_total"),
    ("reconciler", r#"stride_tasks{state="running"}"#),
    ("reconciler", "stride_queue_instances"),
    ("mesos", "stride_mesos_disconnects_total"),
    ("mesos", "stride_mesos_reconnects_total"),
    (
        "health",
        r#"stride_health_checks_total{protocol="TCP",result="healthy"}"#,
    ),
    ("health", r#"stride_task_health{health="healthy"}"#),
    ("http", "sum(stride_http_requests_total)"),
    ("http", "sum(stride_http_request_duration_seconds_count)"),
];

#[tokio::test]
async fn a_real_prometheus_scrapes_every_group_moving_under_load() {
    let (Some(prometheus), Some(promtool), Some(python)) = (
        real_parts::program("prometheus", "prometheus"),
        real_parts::program("promtool", "prometheus"),
        api_tools::python(),
    ) else {
        return;
    };
    // Ports no other test uses.
    let ports = ports(100);
    let mesos = LocalMesos::start(&["--ports", &ports.arg()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_mesos(
        dir.path(),
        &["--master", &mesos.url, "--snapshot-every", "20"],
    );
    let http = client();
    let prometheus = Prometheus::start(&prometheus, &server.url);
    wait_until(
        "Prometheus to see the target up",
        Duration::from_secs(30),
        || async { prometheus.value(&http, r#"up{job="stride"}"#).await == 1.0 },
    )
    .await;
    let mut before = BTreeMap::new();
    for (_, series) in MUST_MOVE {
        before.insert(*series, prometheus.value(&http, series).await);
    }

    // Load: subscribers of each kind, writes, launches, a queue that cannot
    // drain, a kill, health probes, a callback that fails first, a new
    // Mesos subscription.
    let streams = reqwest::Client::new();
    let sse = streams
        .get(server.url("/v2/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("SSE");
    assert_eq!(sse.status(), 200);
    let ws = stream_client::subscribe(&server, "from=1").await;
    let (mut to_server, mut from_server) = ws.split();
    let hello = json!({"type": "hello", "name": "lb-metrics", "drain_confirmation": false});
    to_server
        .send(Message::Text(hello.to_string().into()))
        .await
        .expect("hello");
    tokio::spawn(async move { while from_server.next().await.is_some() {} });
    let hook = flaky_receiver().await;
    let subscribed = http
        .post(server.url("/v2/eventSubscriptions"))
        .query(&[("callbackUrl", &hook)])
        .send()
        .await
        .expect("subscribe");
    assert_eq!(subscribed.status(), 200);
    let web = json!({
        "id": "/web", "cmd": "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
        "instances": 2, "cpus": 0.1, "mem": 32, "portDefinitions": [{"port": 0}],
        "healthChecks": [{"protocol": "TCP", "intervalSeconds": 1, "timeoutSeconds": 1,
                          "delaySeconds": 0, "gracePeriodSeconds": 30}]
    });
    send_ok(&http, &server, Method::POST, "/v2/apps", Some(web)).await;
    let huge = json!({"id": "/huge", "cmd": "sleep 1000", "cpus": 1000, "mem": 16});
    send_ok(&http, &server, Method::POST, "/v2/apps", Some(huge)).await;
    wait_until(
        "two /web tasks running",
        Duration::from_secs(60),
        || async {
            let body = support::get_json(&http, &server.url("/v2/apps/web")).await;
            body["app"]["tasksRunning"] == 2
        },
    )
    .await;
    let applied = json!({"type": "applied", "seq": 3});
    to_server
        .send(Message::Text(applied.to_string().into()))
        .await
        .expect("applied");
    let scale = json!({"instances": 1});
    send_ok(
        &http,
        &server,
        Method::PUT,
        "/v2/apps/web?force=true",
        Some(scale),
    )
    .await;
    for i in 0..12 {
        let app = json!({"id": format!("/batch/a{i}"), "cmd": "sleep 1", "instances": 0});
        send_ok(&http, &server, Method::POST, "/v2/apps", Some(app)).await;
    }
    send_ok(&http, &server, Method::DELETE, "/v2/leader", None).await;

    let mut still: Vec<&str> = MUST_MOVE.iter().map(|(_, s)| *s).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !still.is_empty() && std::time::Instant::now() < deadline {
        let mut left = Vec::new();
        for series in still {
            if prometheus.value(&http, series).await <= before[series] {
                left.push(series);
            }
        }
        still = left;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        still.is_empty(),
        "these never moved in Prometheus: {still:?}"
    );
    assert_eq!(
        prometheus
            .value(
                &http,
                r#"stride_mesos_subscription_state{state="subscribed"}"#
            )
            .await,
        1.0
    );

    // Routes are templates: no app id, no secret ever became a label.
    let routes = prometheus
        .query(&http, "group by (route) (stride_http_requests_total)")
        .await;
    let routes: Vec<String> = routes
        .iter()
        .map(|(labels, _)| labels["route"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(routes.contains(&"/v2/apps/{id}".to_owned()), "{routes:?}");
    for route in &routes {
        assert!(
            !route.contains("web") && !route.contains("batch"),
            "{route}"
        );
    }
    let subscribers = prometheus
        .query(&http, "stride_callback_deliveries_total")
        .await;
    assert_eq!(subscribers.len(), 1);
    let endpoint = subscribers[0].0["subscriber"].as_str().unwrap_or_default();
    assert!(
        endpoint.ends_with("/hook") && !endpoint.contains("secret") && !endpoint.contains("t0p"),
        "{endpoint}"
    );

    // The same metrics through both real parsers.
    let text = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(
        text.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = text.text().await.expect("text");
    let (ok, out, err) = promtool_check(&promtool, &text);
    assert!(
        ok && out.is_empty() && err.is_empty(),
        "promtool: {out}{err}"
    );
    let open = http
        .get(server.url("/metrics"))
        .header("Accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let families = openmetrics_families(&python, &open);
    for (_, series) in MUST_MOVE {
        let name = series
            .trim_start_matches("sum(")
            .split(['{', ')'])
            .next()
            .unwrap_or_default();
        let family = name
            .trim_end_matches("_total")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(
            families.contains_key(family),
            "{family} not parsed from\n{open}"
        );
    }
    assert_eq!(families["stride_fsync_duration_seconds"], "histogram");
    assert_eq!(families["stride_offers_declined"], "counter");
    drop(sse);
}

/// `promtool check metrics` on `text`: (success, stdout, stderr).
fn promtool_check(promtool: &Path, text: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("promtool");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Family names and types, as prometheus-client's OpenMetrics parser reads
/// `text` (it refuses anything not OpenMetrics, `# EOF` included).
fn openmetrics_families(python: &str, text: &str) -> BTreeMap<String, String> {
    let script = "import sys, json\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        print(json.dumps({f.name: f.type for f in text_string_to_metric_families(sys.stdin.read())}))";
    let (ok, out, err) = api_tools::run_python(python, script, &[], text);
    assert!(ok, "the OpenMetrics parser refused /metrics: {err}");
    serde_json::from_str(&out).expect("family names")
}

#[tokio::test]
async fn no_metrics_serves_no_metrics_and_everything_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--no-metrics"]);
    let http = client();
    send_ok(
        &http,
        &server,
        Method::POST,
        "/v2/apps",
        Some(support::app("/a")),
    )
    .await;
    let response = http.get(server.url("/metrics")).send().await.expect("GET");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--no-metrics"),
        "{body}"
    );
}
