//! The scheduler driver against a real Mesos 1.11 master.
//!
//! `scenario` takes the master URL so the same body can run against any
//! target. It only looks at its own framework (unique name, its own offers
//! and tasks), so other tests may share the master, and it tears its
//! framework down at the end so no task outlives it.
//!
//! Target: `STRIDE_MESOS_MASTER` if set, else the real master that
//! `../shared/real-mesos/up.sh` starts on 127.0.0.1:5050.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crate::support::mesos_framework::{
    Framework, STEP_TIMEOUT, config, ports, task, teardown_frameworks_named,
};
use crate::support::{answers_http, holds_within, real_master};
use futures::FutureExt;
use reqwest::Url;
use stride_mesos::types::{Operation, ReconcileTask, TaskId, TaskInfo, TaskState};
use stride_mesos::{CallError, SchedulerEvent, SubscriptionError};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_lifecycle_against_a_real_master() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("stride=debug")
        .try_init();
    let Some(real) = real_master().await else {
        return;
    };
    let master = Url::parse(&real.url).expect("a master URL");
    let name = format!("stride-test-{}", uuid::Uuid::new_v4());
    let outcome = AssertUnwindSafe(scenario(master.clone(), &name))
        .catch_unwind()
        .await;
    // The scenario tears down on success; after a failure this keeps its
    // tasks from running for the whole failover timeout.
    let leaked = teardown_frameworks_named(&master, &name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(leaked, 0, "the scenario left its framework registered");
}

/// The same lifecycle against the embedded local cluster, which must answer
/// as the real master does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_lifecycle_against_the_local_cluster() {
    let work = tempfile::tempdir().expect("temp dir");
    // Its own ports: tasks share this host with the real master's.
    let ports = crate::support::ports::ports(500);
    let config = stride_local::LocalClusterConfig {
        work_dir: Some(work.path().to_owned()),
        ports: ports.arg().parse().expect("a port range"),
        ..Default::default()
    };
    let cluster = stride_local::LocalCluster::start(config)
        .await
        .expect("the local cluster starts");
    let master = Url::parse(&cluster.url()).expect("URL");
    let name = format!("stride-test-{}", uuid::Uuid::new_v4());
    let outcome = AssertUnwindSafe(scenario(master, &name))
        .catch_unwind()
        .await;
    cluster.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The whole lifecycle, for any master. `name` must be unique to this run.
pub async fn scenario(master: Url, name: &str) {
    let mut fw = Framework::subscribe(config(&master, name)).await;
    assert!(
        fw.framework_id
            .value
            .ends_with(|c: char| c.is_ascii_digit())
    );
    assert_eq!(fw.handle.framework_id(), Some(fw.framework_id.clone()));

    // Three HTTP servers, each on a port from the offer.
    let offer = fw.offer_for(3).await;
    let offered_ports = ports(&offer);
    let servers: Vec<(TaskInfo, u64)> = (0..3)
        .map(|i| {
            let port = offered_ports[i];
            let info = task(
                &offer,
                &format!("http{i}"),
                "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
                Some(port),
            );
            (info, port)
        })
        .collect();
    let launch = Operation::launch(servers.iter().map(|(t, _)| t.clone()).collect());
    fw.handle
        .accept(vec![offer.id.clone()], vec![launch], None)
        .await
        .expect("ACCEPT");
    let ids: Vec<&TaskId> = servers.iter().map(|(t, _)| &t.task_id).collect();
    let running = fw.states(&ids, &[TaskState::Running]).await;
    assert_eq!(running.len(), 3);
    for (_, port) in &servers {
        assert!(
            serves_http(*port).await,
            "task on port {port} does not answer HTTP"
        );
    }
    let acked_after_launch = fw.acknowledged;
    assert!(
        acked_after_launch >= 3,
        "STARTING/RUNNING updates were acknowledged"
    );

    // Kill one: KILLING (we have TASK_KILLING_STATE), then KILLED.
    let (victim, victim_port) = &servers[0];
    fw.handle
        .kill(
            victim.task_id.clone(),
            Some(victim.agent_id.clone()),
            Some(Duration::from_secs(1)),
        )
        .await
        .expect("KILL");
    let killed = fw.states(&[&victim.task_id], &[TaskState::Killed]).await;
    assert!(killed[&victim.task_id].uuid.is_some());
    assert!(
        stops_serving_http(*victim_port).await,
        "killed task still serves"
    );

    // A task that exits 1 fails, and says so.
    let offer = fw.offer_for(1).await;
    let failing = task(&offer, "exit1", "echo bye >&2; exit 1", None);
    fw.handle
        .accept(
            vec![offer.id.clone()],
            vec![Operation::launch(vec![failing.clone()])],
            None,
        )
        .await
        .expect("ACCEPT");
    let failed = fw.states(&[&failing.task_id], &[TaskState::Failed]).await;
    let message = failed[&failing.task_id].message.clone().unwrap_or_default();
    assert!(
        message.contains("status 1"),
        "exit code missing from {message:?}"
    );

    // Explicit reconciliation: live tasks answer RUNNING, the rest are
    // gone or unknown; no answer carries a uuid.
    let live: Vec<&TaskId> = vec![&servers[1].0.task_id, &servers[2].0.task_id];
    let unknown = TaskId::new(format!("never-launched.{}", uuid::Uuid::new_v4()));
    let acked_before = fw.acknowledged;
    fw.handle
        .reconcile(vec![
            ReconcileTask {
                task_id: live[0].clone(),
                agent_id: Some(servers[1].0.agent_id.clone()),
            },
            ReconcileTask {
                task_id: live[1].clone(),
                agent_id: None,
            },
            ReconcileTask {
                task_id: unknown.clone(),
                agent_id: None,
            },
        ])
        .await
        .expect("RECONCILE");
    let answers = fw
        .states(
            &[live[0], live[1], &unknown],
            &[TaskState::Running, TaskState::Unknown],
        )
        .await;
    assert_eq!(answers[live[0]].state, TaskState::Running);
    assert_eq!(answers[live[1]].state, TaskState::Running);
    assert_eq!(answers[&unknown].state, TaskState::Unknown);
    for answer in answers.values() {
        assert_eq!(answer.reason.as_deref(), Some("REASON_RECONCILIATION"));
        assert!(!answer.needs_acknowledgement());
    }
    assert_eq!(
        fw.acknowledged, acked_before,
        "reconciliation answers are never acknowledged"
    );

    // Implicit reconciliation: exactly our two live tasks.
    implicit_reconcile_finds(&mut fw, &live).await;

    // Drop the connection: the driver resubscribes with the same id and
    // the tasks keep running.
    fw.handle.reconnect();
    let reason = fw
        .until(|event| match event {
            SchedulerEvent::Disconnected { reason } => Some(reason.to_string()),
            _ => None,
        })
        .await;
    assert_eq!(reason, SubscriptionError::ReconnectRequested.to_string());
    let same_id = fw
        .until(|event| match event {
            SchedulerEvent::Subscribed { framework_id, .. } => Some(framework_id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(same_id, fw.framework_id);
    implicit_reconcile_finds(&mut fw, &live).await;
    assert!(serves_http(servers[1].1).await && serves_http(servers[2].1).await);

    // A restarted Stride: a new driver with the stored framework id takes
    // the framework (and its running tasks) back; the old handle is done.
    fw.handle.shutdown().await;
    let old_handle = fw.handle.clone();
    let mut restarted_config = config(&master, name);
    restarted_config.framework_id = Some(fw.framework_id.clone());
    let mut restarted = Framework::subscribe(restarted_config).await;
    assert_eq!(restarted.framework_id, fw.framework_id);
    let err = old_handle.revive(vec![]).await.expect_err("stopped driver");
    assert!(matches!(err, CallError::NotSubscribed), "{err}");
    implicit_reconcile_finds(&mut restarted, &live).await;

    // Tear down: Mesos kills the tasks and the driver stops.
    restarted.handle.teardown().await.expect("TEARDOWN");
    for (_, port) in &servers[1..] {
        assert!(
            stops_serving_http(*port).await,
            "port {port} still served after TEARDOWN"
        );
    }
    let ended = timeout(STEP_TIMEOUT, async {
        while let Some(event) = restarted.events.recv().await {
            assert!(
                !matches!(event, SchedulerEvent::Subscribed { .. }),
                "driver resubscribed after TEARDOWN"
            );
        }
    })
    .await;
    assert!(ended.is_ok(), "event channel still open after TEARDOWN");
}

async fn implicit_reconcile_finds(fw: &mut Framework, live: &[&TaskId]) {
    fw.handle.reconcile(vec![]).await.expect("RECONCILE");
    let mut seen = HashSet::new();
    while seen.len() < live.len() {
        let status = fw
            .until(|event| match event {
                SchedulerEvent::Update(s)
                    if s.reason.as_deref() == Some("REASON_RECONCILIATION") =>
                {
                    Some(s.clone())
                }
                _ => None,
            })
            .await;
        assert!(
            live.contains(&&status.task_id),
            "implicit reconcile reported {status:?}"
        );
        assert_eq!(status.state, TaskState::Running);
        assert!(!status.needs_acknowledgement());
        seen.insert(status.task_id);
    }
}

/// True once `port` answers HTTP (a task's server needs a moment after
/// TASK_RUNNING to bind).
async fn serves_http(port: u64) -> bool {
    holds_within(Duration::from_secs(15), || answers_http(port)).await
}

async fn stops_serving_http(port: u64) -> bool {
    holds_within(Duration::from_secs(20), || async move {
        !answers_http(port).await
    })
    .await
}
