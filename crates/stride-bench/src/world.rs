//! A synthetic cluster for the planner and API benchmarks: `apps` apps of
//! `per_app` running tasks each, spread over `agents` agents, as the events
//! that would have built it.

use serde_json::json;
use std::sync::Arc;
use stride_log::event::app::{AppDefinition, AppSpec};
use stride_log::event::condition::Condition;
use stride_log::event::{
    Actor, AgentId, AppCreated, AppId, Envelope, Event, Seq, TaskId, TaskLaunchRequested,
    TaskStatusRecorded,
};
use stride_mesos::types::{
    AgentId as MesosAgentId, FrameworkId, Offer, OfferId, Resource, ValueRange,
};

pub const FIRST_HOST_PORT: u32 = 31_000;
const START: u64 = 1_700_000_000_000_000;

pub struct World {
    pub apps: usize,
    pub per_app: usize,
    pub agents: usize,
}

impl World {
    pub fn events(&self) -> Vec<Arc<Envelope>> {
        let mut events = Vec::with_capacity(self.apps * (1 + 2 * self.per_app));
        let mut push = |event: Event| {
            let seq = events.len() as u64 + 1;
            events.push(Arc::new(Envelope {
                seq: Seq(seq),
                id: uuid::Uuid::now_v7(),
                recorded_at: START + seq,
                actor: Actor::Reconciler,
                command_id: uuid::Uuid::nil(),
                event,
            }));
            START + seq
        };
        let mut task_number = 0usize;
        for n in 0..self.apps {
            let app = AppId(format!("/bench/app-{n}"));
            let definition: AppDefinition = serde_json::from_value(json!({
                "id": app, "cmd": "sleep 1000", "instances": self.per_app, "cpus": 0.1,
                "mem": 32, "portDefinitions": [{"port": 10_000 + n}]
            }))
            .expect("a valid definition");
            let version = push(Event::AppCreated(AppCreated {
                app: app.clone(),
                definition: AppSpec::new(definition),
            }));
            for _ in 0..self.per_app {
                let agent = task_number % self.agents;
                let port = FIRST_HOST_PORT + (task_number / self.agents) as u32;
                let task = TaskId::for_app(&app, uuid::Uuid::now_v7());
                task_number += 1;
                push(Event::TaskLaunchRequested(TaskLaunchRequested {
                    task: task.clone(),
                    app: app.clone(),
                    app_version: version,
                    agent: AgentId(format!("agent-{agent}")),
                    host: format!("host-{agent}"),
                    ports: vec![port],
                    offer: String::new(),
                }));
                push(Event::TaskStatusRecorded(TaskStatusRecorded {
                    task,
                    app: Some(app.clone()),
                    condition: Condition::Running,
                    mesos_state: "TASK_RUNNING".into(),
                    reason: None,
                    message: None,
                    agent: Some(AgentId(format!("agent-{agent}"))),
                    healthy: None,
                    status_uuid: Some(task_number.to_be_bytes().to_vec()),
                    mesos_timestamp: None,
                }));
            }
        }
        events
    }

    /// One offer per agent: 8 cpus, 32 GiB and 1001 ports, minus nothing
    /// (the planner itself must leave out the ports its tasks hold).
    pub fn offers(&self) -> Vec<Offer> {
        (0..self.agents)
            .map(|agent| Offer {
                id: OfferId::new(format!("offer-{agent}")),
                framework_id: FrameworkId::new("bench"),
                agent_id: MesosAgentId::new(format!("agent-{agent}")),
                hostname: format!("host-{agent}"),
                url: None,
                resources: vec![
                    Resource::scalar("cpus", 8.0),
                    Resource::scalar("mem", 32_768.0),
                    Resource::ranges(
                        "ports",
                        vec![ValueRange {
                            begin: u64::from(FIRST_HOST_PORT),
                            end: u64::from(FIRST_HOST_PORT) + 1_000,
                        }],
                    ),
                ],
                attributes: Vec::new(),
                executor_ids: Vec::new(),
                allocation_info: None,
            })
            .collect()
    }
}
