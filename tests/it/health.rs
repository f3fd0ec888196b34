//! Stride-run health checks in one process: a store seeded as the
//! reconciler leaves it (apps, tasks launched and running), the real
//! committer, health monitor and `/v2` API, and tiny HTTP servers standing
//! in for the tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stride_core::command::{Command, PortRange, Settings, TaskStatus};
use stride_log::event::app::{AppDefinition, AppSpec};
use stride_log::event::condition::Condition;
use stride_log::event::{
    Actor, AppCreated, Envelope, Event, Seq, TaskId, TaskLaunchRequested, TaskStatusRecorded,
};
use stride_log::store::{EventLog, LogWriter};
use stride_runtime::clock::now_micros;
use stride_runtime::{Clock, Supervisor};
use stride_server::api::{ServerInfo, Shared};
use stride_server::committer::Committer;
use stride_server::health::{HealthMonitor, HealthResults};
use stride_server::metrics::Metrics;
use stride_server::published::Projection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

/// Stride without Mesos: what the reconciler would have recorded, and the
/// parts that act on it.
struct Stack {
    log: Arc<EventLog>,
    projection: Arc<Projection>,
    committer: Committer,
    results: HealthResults,
    api: String,
    seeded: u64,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start(events: Vec<Event>) -> Stack {
        Stack::start_timed(events, Clock::system()).await
    }

    /// With the health monitor measuring time by `clock`.
    async fn start_timed(events: Vec<Event>, clock: Clock) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = LogWriter::open(dir.path()).expect("store opens");
        let log = writer.reader();
        let seeded = events.len() as u64;
        let now = now_micros();
        let envelopes: Vec<Arc<Envelope>> = events
            .into_iter()
            .zip(1..)
            .map(|(event, seq)| {
                Arc::new(Envelope {
                    seq: Seq(seq),
                    id: Uuid::now_v7(),
                    recorded_at: now,
                    actor: Actor::Reconciler,
                    command_id: Uuid::nil(),
                    event,
                })
            })
            .collect();
        writer.append(&envelopes, &[]).expect("append");
        writer.sync().expect("sync");
        let state = stride_server::published::load(&log, None).expect("loads");
        let projection = Arc::new(Projection::new(state.clone()));
        let settings = Settings::default();
        let supervisor = Supervisor::new();
        let metrics = Metrics::on();
        let committer = Committer::start(
            writer,
            projection.clone(),
            1_000,
            settings,
            &metrics,
            &supervisor,
        )
        .expect("committer");
        let results = HealthResults::default();
        let monitor = HealthMonitor::new(
            projection.clone(),
            committer.clone(),
            results.clone(),
            metrics.clone(),
            clock,
        )
        .expect("monitor");
        supervisor.spawn("health monitor", |stop| monitor.run(stop));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shared = Shared {
            auth: Arc::new(stride_auth::Keeper::load(None, None).expect("open")),
            log: log.clone(),
            projection: projection.clone(),
            committer: committer.clone(),
            stream: stride_server::stream::Hub::start(
                stride_server::stream::StreamConfig {
                    ping_interval: Duration::from_secs(10),
                    idle_timeout: Duration::from_secs(30),
                    progress_interval: Duration::from_secs(10),
                },
                projection.clone(),
                100,
                None,
                &supervisor,
            )
            .expect("a hub"),
            callbacks: stride_server::callbacks::Registry::default(),
            health: results.clone(),
            queue: Arc::new(stride_server::reconciler::Queue::default()),
            rendered: Default::default(),
            sidecars: Default::default(),
            readiness: Default::default(),
            server: ServerInfo {
                address,
                scheme: "http",
                service_ports: PortRange::default(),
                framework_name: "stride".into(),
                masters: Vec::new(),
                detector: None,
                mesos_user: "nobody".into(),
            },
            mesos: Default::default(),
            metrics,
        };
        let app =
            stride_server::api::router(shared).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Stack {
            log,
            projection,
            committer,
            results,
            api: format!("http://{address}"),
            seeded,
            _dir: dir,
        }
    }

    /// The events appended after the seeded ones.
    fn new_events(&self) -> Vec<Event> {
        self.log
            .iter_from(Seq(self.seeded + 1))
            .map(|e| e.expect("readable").event)
            .collect()
    }

    fn healthy(&self, task: &str) -> Option<bool> {
        self.projection.read().tasks[&TaskId::from(task)].healthy
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.api))
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }
}

fn app(id: &str, checks: Value) -> Event {
    let definition: AppDefinition = serde_json::from_value(json!({
        "id": id, "cmd": "serve", "portDefinitions": [{"port": 0}], "healthChecks": checks
    }))
    .expect("a definition");
    Event::AppCreated(AppCreated {
        app: id.into(),
        definition: AppSpec::new(definition),
    })
}

/// A task of `app` launched on `port` and running, with Mesos's `healthy`.
fn running(app: &str, task: &str, port: u32, healthy: Option<bool>) -> [Event; 2] {
    [
        Event::TaskLaunchRequested(TaskLaunchRequested {
            task: task.into(),
            app: app.into(),
            app_version: 0,
            agent: "S0".into(),
            host: "localhost".into(),
            ports: vec![port],
            offer: "O1".into(),
        }),
        Event::TaskStatusRecorded(TaskStatusRecorded {
            task: task.into(),
            app: Some(app.into()),
            condition: Condition::Running,
            mesos_state: "TASK_RUNNING".into(),
            reason: None,
            message: None,
            agent: None,
            healthy,
            status_uuid: None,
            mesos_timestamp: None,
        }),
    ]
}

/// An HTTP server answering every request with the status the test sets.
async fn http_server() -> (u32, Arc<AtomicU16>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = u32::from(listener.local_addr().expect("address").port());
    let status = Arc::new(AtomicU16::new(200));
    let answer = status.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let status = answer.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0; 1024];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 {status} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, status)
}

/// A port nothing listens on.
async fn closed_port() -> u32 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    u32::from(listener.local_addr().expect("address").port())
}

/// Polls `check` every 50 ms; a hang detector, not a timing assertion.
async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen in 15 s");
}

/// Probing every second with no grace: one event per change of health, not
/// per probe; then a kill that says why; results forgotten once the task
/// has ended.
#[tokio::test]
async fn transitions_become_events_and_repeated_failures_a_kill() {
    let (port, status) = http_server().await;
    let check = json!([{"protocol": "HTTP", "path": "/health", "gracePeriodSeconds": 0,
        "intervalSeconds": 1, "timeoutSeconds": 0, "delaySeconds": 0,
        "maxConsecutiveFailures": 2}]);
    let mut events = vec![app("/web", check)];
    events.extend(running("/web", "web.1", port, None));
    let stack = Stack::start(events).await;
    let task = TaskId::from("web.1");

    until("healthy", || stack.healthy("web.1") == Some(true)).await;
    until("two more successes", || {
        let result = &stack.results.of(&task)[&0];
        result.last_success > result.first_success.map(|t| t + 1_500_000)
    })
    .await;
    assert_eq!(stack.new_events().len(), 1, "{:?}", stack.new_events());

    status.store(503, Ordering::SeqCst);
    until("killed", || {
        stack.projection.read().tasks[&task].kill_requested
    })
    .await;
    let logged = stack.new_events();
    let [
        Event::HealthChanged(up),
        Event::HealthChanged(down),
        Event::TaskKillRequested(kill),
    ] = logged.as_slice()
    else {
        panic!("one transition each way, then the kill: {logged:?}");
    };
    assert!(up.healthy && up.cause.is_none());
    assert!(!down.healthy);
    assert_eq!(down.cause.as_deref(), Some("HTTP status 503"));
    assert_eq!(
        kill.reason,
        "health check failed 2 times in a row: HTTP status 503"
    );
    let result = &stack.results.of(&task)[&0];
    assert_eq!(result.consecutive_failures, 2);
    assert!(!result.alive());

    let killed = Command::RecordTaskStatus(TaskStatus {
        task: task.clone(),
        condition: Condition::Killed,
        mesos_state: "TASK_KILLED".into(),
        reason: None,
        message: None,
        agent: None,
        healthy: Some(false),
        uuid: None,
        timestamp: None,
    });
    stack
        .committer
        .submit(Actor::Mesos, None, killed)
        .await
        .expect("recorded");
    until("results forgotten", || stack.results.of(&task).is_empty()).await;
}

/// Marathon's `healthCheckResults` and counts, from memory for Stride-run
/// checks and from Mesos's `healthy` for Mesos-run ones. A task with no
/// result yet is neither healthy nor unhealthy.
#[tokio::test]
async fn the_api_shows_results_and_counts() {
    let (up, _) = http_server().await;
    let down = closed_port().await;
    let http = json!([{"protocol": "HTTP", "intervalSeconds": 1, "delaySeconds": 0,
        "gracePeriodSeconds": 0, "maxConsecutiveFailures": 0}]);
    let command = json!([{"protocol": "COMMAND", "command": {"value": "true"}}]);
    let mut events = vec![app("/web", http), app("/cmd", command)];
    events.extend(running("/web", "web.up", up, None));
    events.extend(running("/web", "web.down", down, None));
    events.extend(running("/cmd", "cmd.healthy", 1, Some(true)));
    events.extend(running("/cmd", "cmd.unknown", 2, None));
    let stack = Stack::start(events).await;
    until("both web tasks judged", || {
        stack.healthy("web.up") == Some(true) && stack.healthy("web.down") == Some(false)
    })
    .await;

    let apps = stack.get("/v2/apps?embed=apps.tasks").await;
    let app = |id: &str| {
        apps["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .expect("the app")
    };
    let counts = |app: &Value| {
        [
            app["tasksRunning"].clone(),
            app["tasksHealthy"].clone(),
            app["tasksUnhealthy"].clone(),
        ]
    };
    assert_eq!(counts(&app("/web")), [json!(2), json!(1), json!(1)]);
    assert_eq!(counts(&app("/cmd")), [json!(2), json!(1), json!(0)]);

    let results = |tasks: &Value, id: &str| {
        tasks
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["id"] == id)
            .expect("the task")["healthCheckResults"]
            .clone()
    };
    let web = app("/web")["tasks"].clone();
    let alive = &results(&web, "web.up")[0];
    assert_eq!(alive["alive"], true);
    assert_eq!(alive["consecutiveFailures"], 0);
    assert!(alive["firstSuccess"].is_string() && alive["lastSuccess"].is_string());
    assert_eq!(alive["lastFailure"], Value::Null);
    assert_eq!(alive["lastFailureCause"], Value::Null);
    assert_eq!(alive["instanceId"], "web.up");
    let failing = &results(&web, "web.down")[0];
    assert_eq!(failing["alive"], false);
    assert!(failing["consecutiveFailures"].as_u64() >= Some(1));
    assert_eq!(failing["firstSuccess"], Value::Null);
    assert!(failing["lastFailure"].is_string());
    let cause = failing["lastFailureCause"].as_str().expect("a cause");
    assert!(cause.contains(&format!(":{down}")), "{cause}");
    // maxConsecutiveFailures 0: never killed.
    assert!(!stack.projection.read().tasks[&TaskId::from("web.down")].kill_requested);

    let cmd = app("/cmd")["tasks"].clone();
    assert_eq!(results(&cmd, "cmd.healthy")[0]["alive"], true);
    assert_eq!(results(&cmd, "cmd.unknown"), json!([]));

    // The same results on the other task endpoints.
    let of_app = stack.get("/v2/apps/web/tasks").await;
    assert_eq!(results(&of_app["tasks"], "web.up")[0]["alive"], true);
    let all = stack.get("/v2/tasks").await;
    assert_eq!(results(&all["tasks"], "web.down")[0]["alive"], false);
    assert_eq!(results(&all["tasks"], "cmd.healthy")[0]["alive"], true);
}

/// Failures within the grace period leave no result: the task stays
/// neither healthy nor unhealthy, and nothing is logged; the first failure
/// after it counts. Five minutes of grace pass at once: tokio's time is
/// paused and the monitor's clock follows it.
#[tokio::test(start_paused = true)]
async fn failures_count_only_once_the_grace_period_is_over() {
    let down = closed_port().await;
    let check = json!([{"protocol": "TCP", "intervalSeconds": 10, "delaySeconds": 0,
        "timeoutSeconds": 1, "gracePeriodSeconds": 300, "maxConsecutiveFailures": 1}]);
    let mut events = vec![app("/web", check)];
    events.extend(running("/web", "web.1", down, None));
    let started = now_micros();
    let clock = Clock::following_tokio(started);
    let stack = Stack::start_timed(events, clock).await;
    let task = TaskId::from("web.1");
    let grace_until = started + 300_000_000;
    tokio::time::sleep(Duration::from_secs(100)).await;
    let apps = stack.get("/v2/apps").await;
    assert_eq!(apps["apps"][0]["tasksHealthy"], 0);
    assert_eq!(apps["apps"][0]["tasksUnhealthy"], 0);
    // Virtual time runs ahead while a commit syncs: a hang detector in
    // real time.
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while !stack.projection.read().tasks[&task].kill_requested {
        if clock.now_micros() < grace_until {
            assert_eq!(stack.healthy("web.1"), None);
            assert!(stack.results.of(&task).is_empty());
            assert!(stack.new_events().is_empty());
        }
        assert!(std::time::Instant::now() < give_up, "no kill after grace");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let counted = stack.results.of(&task)[&0].last_failure.expect("a failure");
    assert!(counted >= grace_until, "a failure counted in grace");
    let logged = stack.new_events();
    assert!(
        matches!(
            logged.as_slice(),
            [Event::HealthChanged(down), Event::TaskKillRequested(_)] if !down.healthy
        ),
        "{logged:?}"
    );
}
