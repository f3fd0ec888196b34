//! Test harness for one framework on a real (or local) Mesos master:
//! waits for events while acknowledging updates and declining offers it
//! does not want, builds small command tasks, and probes their HTTP ports.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;
use stride_log::event::condition::condition_of;
use stride_mesos::types::{
    CommandInfo, DurationInfo, Environment, EnvironmentVariable, FrameworkId, KillPolicy, Offer,
    Resource, TaskId, TaskInfo, TaskState, TaskStatus, ValueRange,
};
use stride_mesos::{
    BackoffConfig, CallError, Scheduler, SchedulerConfig, SchedulerEvent, SchedulerHandle,
};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, timeout};

pub const STEP_TIMEOUT: Duration = Duration::from_secs(40);

/// Tears down (operator endpoint) every active framework called `name`;
/// returns how many there were.
pub async fn teardown_frameworks_named(master: &Url, name: &str) -> usize {
    let http = reqwest::Client::new();
    let Ok(state) = http
        .get(master.join("master/frameworks").expect("URL"))
        .send()
        .await
    else {
        return 0;
    };
    let state: serde_json::Value = state.json().await.unwrap_or_default();
    let ids: Vec<String> = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"] == name)
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect();
    for id in &ids {
        let _ = http
            .post(master.join("master/teardown").expect("URL"))
            .form(&[("frameworkId", id)])
            .send()
            .await;
    }
    ids.len()
}

/// A framework under test: its handle, its event stream, and what it has
/// seen so far.
pub struct Framework {
    pub handle: SchedulerHandle,
    pub events: Receiver<SchedulerEvent>,
    pub framework_id: FrameworkId,
    /// Reliable updates acknowledged so far.
    pub acknowledged: usize,
}

impl Framework {
    pub async fn subscribe(config: SchedulerConfig) -> Self {
        let (handle, mut events) = Scheduler::spawn(config).expect("valid config");
        let framework_id = loop {
            match next(&mut events).await {
                SchedulerEvent::Subscribed { framework_id, .. } => break framework_id,
                SchedulerEvent::Offers(_) => {}
                other => panic!("before SUBSCRIBED: {other:?}"),
            }
        };
        Self {
            handle,
            events,
            framework_id,
            acknowledged: 0,
        }
    }

    /// Runs until `want` returns `Some`. Acknowledges reliable updates and
    /// declines offers along the way; hands every update to `want` first.
    pub async fn until<T>(&mut self, mut want: impl FnMut(&SchedulerEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let event = timeout(deadline - Instant::now(), self.events.recv())
                .await
                .expect("step timed out")
                .expect("driver stopped");
            if let Some(found) = want(&event) {
                // A wanted offer is the caller's to use (and to decline the rest).
                if !matches!(event, SchedulerEvent::Offers(_)) {
                    self.settle(&event).await;
                }
                return found;
            }
            self.settle(&event).await;
        }
    }

    async fn settle(&mut self, event: &SchedulerEvent) {
        match event {
            SchedulerEvent::Update(status) if status.needs_acknowledgement() => {
                self.handle.acknowledge(status).await.expect("ACKNOWLEDGE");
                self.acknowledged += 1;
            }
            SchedulerEvent::Update(status) => {
                // Answers without uuid must not (and cannot) be acknowledged.
                let err = self.handle.acknowledge(status).await.expect_err("no uuid");
                assert!(matches!(err, CallError::NothingToAcknowledge), "{err}");
            }
            SchedulerEvent::Offers(offers) => {
                let ids = offers.iter().map(|o| o.id.clone()).collect();
                self.handle
                    .decline(ids, Some(Duration::from_secs(1)))
                    .await
                    .expect("DECLINE");
            }
            _ => {}
        }
    }

    /// Waits for an offer with room for `tasks` tasks of 0.1 cpu, 32 MB
    /// and one port each; declines any other.
    pub async fn offer_for(&mut self, tasks: usize) -> Offer {
        self.handle.revive(vec![]).await.expect("REVIVE");
        let (chosen, others) = self
            .until(|event| match event {
                SchedulerEvent::Offers(offers) => {
                    let chosen = offers.iter().find(|o| fits(o, tasks))?.clone();
                    let others: Vec<_> = offers
                        .iter()
                        .filter(|o| o.id != chosen.id)
                        .map(|o| o.id.clone())
                        .collect();
                    Some((chosen, others))
                }
                _ => None,
            })
            .await;
        if !others.is_empty() {
            self.handle.decline(others, None).await.expect("DECLINE");
        }
        chosen
    }

    /// Waits until each task reaches one of `states`; returns the statuses.
    pub async fn states(
        &mut self,
        tasks: &[&TaskId],
        states: &[TaskState],
    ) -> HashMap<TaskId, TaskStatus> {
        let mut reached = HashMap::new();
        while reached.len() < tasks.len() {
            let status = self
                .until(|event| match event {
                    SchedulerEvent::Update(s)
                        if tasks.contains(&&s.task_id) && states.contains(&s.state) =>
                    {
                        Some(s.clone())
                    }
                    SchedulerEvent::Update(s)
                        if tasks.contains(&&s.task_id)
                            && condition_of(s.state.as_str(), s.reason.as_deref())
                                .is_terminal() =>
                    {
                        panic!("unexpected terminal update {s:?}, wanted {states:?}")
                    }
                    _ => None,
                })
                .await;
            reached.insert(status.task_id.clone(), status);
        }
        reached
    }
}

pub async fn next(events: &mut Receiver<SchedulerEvent>) -> SchedulerEvent {
    timeout(STEP_TIMEOUT, events.recv())
        .await
        .expect("no event in time")
        .expect("driver stopped")
}

pub fn scalar(offer: &Offer, name: &str) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.map(|s| s.value))
        .sum()
}

pub fn ports(offer: &Offer) -> Vec<u64> {
    offer
        .resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|ranges| ranges.range.iter().flat_map(|r| r.begin..=r.end))
        .collect()
}

pub fn fits(offer: &Offer, tasks: usize) -> bool {
    let n = tasks as f64;
    scalar(offer, "cpus") >= 0.1 * n
        && scalar(offer, "mem") >= 32.0 * n
        && ports(offer).len() >= tasks
}

pub fn task(offer: &Offer, name: &str, command: &str, port: Option<u64>) -> TaskInfo {
    let mut resources = vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)];
    let mut environment = None;
    if let Some(port) = port {
        resources.push(Resource::ranges(
            "ports",
            vec![ValueRange {
                begin: port,
                end: port,
            }],
        ));
        // Mesos does not set PORT0; the scheduler must, as Marathon does.
        environment = Some(Environment {
            variables: vec![EnvironmentVariable {
                name: "PORT0".into(),
                value: Some(port.to_string()),
            }],
        });
    }
    TaskInfo {
        name: name.into(),
        task_id: TaskId::new(format!("{name}.{}", uuid::Uuid::new_v4())),
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(CommandInfo {
            value: Some(command.into()),
            environment,
            ..CommandInfo::default()
        }),
        container: None,
        health_check: None,
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo::from_duration(Duration::from_secs(2))),
        }),
        labels: None,
        discovery: None,
    }
}

pub fn config(master: &Url, name: &str) -> SchedulerConfig {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut config = SchedulerConfig::new(vec![master.clone()], name, user);
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    config
}
