//! Reconciliation and KILL: the master answers from its task table, with
//! a real master's states and wording (TASK_GONE for an unknown task on a
//! registered agent, TASK_UNKNOWN otherwise, TASK_LOST for frameworks that
//! are not partition-aware).

use stride_mesos::types::{
    FrameworkCapabilityType, FrameworkId, Kill, ReconcileTask, TaskState, TaskStatus,
};

use super::master::{Framework, Master};
use super::tasks::{is_terminal, master_status, update_event};

impl Framework {
    /// The answer to RECONCILE (and to KILL of an unknown task).
    fn reconcile_status(&self, request: &ReconcileTask, agent_known: bool) -> TaskStatus {
        if let Some(task) = self.tasks.get(&request.task_id) {
            let mut status = master_status(
                task.info.task_id.clone(),
                task.state.clone(),
                "Reconciliation: Latest task state".to_string(),
                "REASON_RECONCILIATION",
                Some(task.agent_id.clone()),
            );
            status.container_status = task.container_status();
            return status;
        }
        let partition_aware = self.has_capability(&FrameworkCapabilityType::PartitionAware);
        let (state, message, agent_id) = match (&request.agent_id, agent_known) {
            (Some(agent_id), true) => (
                TaskState::Gone,
                "Reconciliation: Task is unknown to the agent",
                Some(agent_id.clone()),
            ),
            _ => (TaskState::Unknown, "Reconciliation: Task is unknown", None),
        };
        let state = if partition_aware {
            state
        } else {
            TaskState::Lost
        };
        master_status(
            request.task_id.clone(),
            state,
            message.to_string(),
            "REASON_RECONCILIATION",
            agent_id,
        )
    }
}

impl Master {
    /// KILL: signals a known task; an unknown one gets a reconciliation
    /// answer instead, as a real master does.
    pub(crate) fn kill(&self, framework_id: &FrameworkId, kill: &Kill) {
        let mut state = self.lock();
        let agent_known = kill
            .agent_id
            .as_ref()
            .is_some_and(|id| state.agents.iter().any(|a| a.id == *id));
        let Some(framework) = state.frameworks.get_mut(framework_id) else {
            return;
        };
        match framework.tasks.get_mut(&kill.task_id) {
            Some(task) if !is_terminal(&task.state) => {
                let grace = task.kill_grace(Some(kill), self.settings.default_kill_grace);
                if let Some(sender) = task.kill.take() {
                    tracing::info!(task_id = %kill.task_id, ?grace, "killing task");
                    let _ = sender.send(grace);
                }
            }
            Some(_) => {}
            None => {
                let request = ReconcileTask {
                    task_id: kill.task_id.clone(),
                    agent_id: kill.agent_id.clone(),
                };
                let status = framework.reconcile_status(&request, agent_known);
                framework.send(&update_event(status));
            }
        }
    }

    /// RECONCILE: explicit for the listed tasks, implicit (every task the
    /// master knows for this framework) for an empty list.
    pub(crate) fn reconcile(&self, framework_id: &FrameworkId, requests: &[ReconcileTask]) {
        let state = self.lock();
        let Some(framework) = state.frameworks.get(framework_id) else {
            return;
        };
        let statuses: Vec<TaskStatus> = if requests.is_empty() {
            framework
                .tasks
                .values()
                .map(|task| {
                    let request = ReconcileTask {
                        task_id: task.info.task_id.clone(),
                        agent_id: Some(task.agent_id.clone()),
                    };
                    framework.reconcile_status(&request, true)
                })
                .collect()
        } else {
            requests
                .iter()
                .map(|request| {
                    let agent_known = request
                        .agent_id
                        .as_ref()
                        .is_some_and(|id| state.agents.iter().any(|a| a.id == *id));
                    framework.reconcile_status(request, agent_known)
                })
                .collect()
        };
        for status in statuses {
            framework.send(&update_event(status));
        }
    }
}
