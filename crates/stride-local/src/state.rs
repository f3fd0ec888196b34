//! `GET /master/state`: a subset of the real master's JSON with the same
//! key names (frameworks, agents as `slaves`, tasks, completed tasks).

use serde_json::{Value, json};

use super::agent::{ResourceSet, attributes_json};
use super::master::{Framework, MESOS_VERSION, Master};
use super::tasks::Task;

fn task_json(task: &Task, role: &str) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|(state, timestamp, healthy)| {
            let mut status = json!({"state": state.as_str(), "timestamp": timestamp});
            if let Some(healthy) = healthy {
                status["healthy"] = json!(healthy);
            }
            status
        })
        .collect();
    json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework_id.value,
        "executor_id": "",
        "slave_id": task.agent_id.value,
        "state": task.state.as_str(),
        "resources": task.resources.state_json(),
        "role": role,
        "statuses": statuses,
    })
}

fn framework_json(framework: &Framework, offered: &ResourceSet) -> Value {
    let role = framework.role();
    let mut used = ResourceSet::default();
    let mut tasks = Vec::new();
    for task in framework.tasks.values() {
        if !super::tasks::is_terminal(&task.state) {
            used.add(&task.resources);
        }
        tasks.push(task_json(task, role));
    }
    let mut total = used.clone();
    total.add(offered);
    let capabilities: Vec<&str> = framework
        .info
        .capabilities
        .iter()
        .map(|c| c.kind.as_str())
        .collect();
    let completed: Vec<Value> = framework
        .completed_tasks
        .iter()
        .map(|task| task_json(task, role))
        .collect();
    let mut json = json!({
        "id": framework.id.value,
        "name": framework.info.name,
        "user": framework.info.user,
        "hostname": framework.info.hostname.clone().unwrap_or_default(),
        "webui_url": framework.info.webui_url.clone().unwrap_or_default(),
        "capabilities": capabilities,
        "active": framework.is_connected(),
        "connected": framework.is_connected(),
        "recovered": false,
        "failover_timeout": framework.info.failover_timeout.unwrap_or(0.0),
        "checkpoint": framework.info.checkpoint.unwrap_or(false),
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time,
        "roles": [role],
        "resources": total.state_json(),
        "used_resources": used.state_json(),
        "offered_resources": offered.state_json(),
        "tasks": tasks,
        "unreachable_tasks": [],
        "completed_tasks": completed,
    });
    // As a real master: only when the framework has one.
    if let Some(principal) = &framework.info.principal {
        json["principal"] = json!(principal);
    }
    json
}

impl Master {
    pub(crate) fn state_json(&self) -> Value {
        let state = self.lock();
        let slaves: Vec<Value> = state
            .agents
            .iter()
            .map(|agent| {
                json!({
                    "id": agent.id.value,
                    "hostname": agent.hostname,
                    "port": self.identity.address.port(),
                    "pid": format!("{}@{}", agent.pid_name, self.identity.address),
                    "attributes": attributes_json(&agent.attributes),
                    "registered_time": agent.registered_time,
                    "resources": agent.total.state_json(),
                    "unreserved_resources": agent.total.state_json(),
                    "reserved_resources": {},
                    "used_resources": agent.used.state_json(),
                    "offered_resources": agent.offered.state_json(),
                    "active": true,
                    "deactivated": false,
                    "version": MESOS_VERSION,
                })
            })
            .collect();
        let mut frameworks = Vec::new();
        let mut completed_frameworks = Vec::new();
        for framework in state.frameworks.values() {
            let mut offered = ResourceSet::default();
            for offer in state.offers.values() {
                if offer.framework_id == framework.id {
                    offered.add(&offer.resources);
                }
            }
            let json = framework_json(framework, &offered);
            if framework.removed {
                completed_frameworks.push(json);
            } else {
                frameworks.push(json);
            }
        }
        let address = self.identity.address;
        json!({
            "version": MESOS_VERSION,
            "id": self.identity.id,
            "pid": format!("master@{address}"),
            "hostname": self.identity.hostname,
            "start_time": self.identity.start_time,
            "elected_time": self.identity.start_time,
            "activated_slaves": state.agents.len(),
            "deactivated_slaves": 0,
            "unreachable_slaves": 0,
            "leader": format!("master@{address}"),
            "leader_info": self.master_info(),
            "flags": {},
            "slaves": slaves,
            "recovered_slaves": [],
            "frameworks": frameworks,
            "completed_frameworks": completed_frameworks,
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        })
    }
}
