//! A Mesos status update, as the command that records it.

use stride_core::command::TaskStatus;
use stride_log::event::condition::condition_of;
use stride_log::event::{AgentId, TaskId};
use stride_mesos::types;

pub fn from_mesos(update: &types::TaskStatus) -> TaskStatus {
    let state = update.state.as_str();
    TaskStatus {
        task: TaskId(update.task_id.value.clone()),
        condition: condition_of(state, update.reason.as_deref()),
        mesos_state: state.to_owned(),
        reason: update.reason.clone(),
        message: update.message.clone(),
        agent: update.agent_id.as_ref().map(|a| AgentId(a.value.clone())),
        healthy: update.healthy,
        uuid: update.uuid.as_ref().map(|u| u.0.clone()),
        timestamp: update
            .timestamp
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| (t * 1e6) as u64),
    }
}
