//! Task sandboxes: the directory layout of a Mesos agent work dir, and the
//! environment a command task sees.

use std::fs::File;
use std::path::{Path, PathBuf};

use stride_mesos::types::{AgentId, FrameworkId, TaskInfo};

/// Where a task runs and what identifies it, as the agent would lay it out:
/// `<work>/slaves/<agent>/frameworks/<framework>/executors/<task>/runs/<container>`.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    pub(crate) dir: PathBuf,
}

impl Sandbox {
    pub(crate) fn new(
        work_dir: &Path,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        task: &TaskInfo,
        container_id: &str,
    ) -> Self {
        let dir = work_dir
            .join("slaves")
            .join(path_safe(&agent_id.value))
            .join("frameworks")
            .join(path_safe(&framework_id.value))
            .join("executors")
            .join(path_safe(&task.task_id.value))
            .join("runs")
            .join(container_id);
        Self { dir }
    }

    /// Creates the directory and its `stdout` and `stderr` files. These are
    /// a few syscalls, cheap enough to run inline on the async runtime.
    pub(crate) fn create(&self) -> std::io::Result<(File, File)> {
        std::fs::create_dir_all(&self.dir)?;
        let stdout = File::create(self.dir.join("stdout"))?;
        let stderr = File::create(self.dir.join("stderr"))?;
        Ok((stdout, stderr))
    }
}

/// The newest run of an executor on any agent under `work_dir`: what a
/// Mesos agent's virtual path `/frameworks/<f>/executors/<e>/runs/latest`
/// points to. Executor ids are unique within a framework, so the agent
/// need not be known.
pub(crate) fn latest_run(work_dir: &Path, framework: &str, executor: &str) -> Option<PathBuf> {
    let agents = std::fs::read_dir(work_dir.join("slaves")).ok()?;
    agents
        .filter_map(Result::ok)
        .filter_map(|agent| {
            let runs = agent
                .path()
                .join("frameworks")
                .join(path_safe(framework))
                .join("executors")
                .join(path_safe(executor))
                .join("runs");
            std::fs::read_dir(runs).ok()
        })
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|run| Some((run.metadata().ok()?.modified().ok()?, run.path())))
        .max()
        .map(|(_, path)| path)
}

/// Task ids may hold `/` or `..`; a sandbox path must stay inside the work
/// dir whatever the framework sends.
fn path_safe(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

/// What a command task gets on top of the agent's own environment: the
/// Mesos variables, `HOST`, `PORT0..N`/`PORT`/`PORTS` from the task's port
/// resources, then `command.environment`, which wins.
pub(crate) fn task_environment(
    task: &TaskInfo,
    framework_id: &FrameworkId,
    agent_id: &AgentId,
    hostname: &str,
    sandbox: &Sandbox,
    ports: &[u64],
) -> Vec<(String, String)> {
    let sandbox_dir = sandbox.dir.display().to_string();
    let mut env = vec![
        ("MESOS_TASK_ID".to_string(), task.task_id.value.clone()),
        ("MESOS_EXECUTOR_ID".to_string(), task.task_id.value.clone()),
        ("MESOS_FRAMEWORK_ID".to_string(), framework_id.value.clone()),
        ("MESOS_AGENT_ID".to_string(), agent_id.value.clone()),
        ("MESOS_SLAVE_ID".to_string(), agent_id.value.clone()),
        ("MESOS_SANDBOX".to_string(), sandbox_dir.clone()),
        ("MESOS_DIRECTORY".to_string(), sandbox_dir),
        ("HOST".to_string(), hostname.to_string()),
    ];
    for (index, port) in ports.iter().enumerate() {
        env.push((format!("PORT{index}"), port.to_string()));
    }
    if let Some(first) = ports.first() {
        env.push(("PORT".to_string(), first.to_string()));
        let all: Vec<String> = ports.iter().map(u64::to_string).collect();
        env.push(("PORTS".to_string(), all.join(",")));
    }
    let task_variables = task
        .command
        .iter()
        .filter_map(|command| command.environment.as_ref())
        .flat_map(|environment| &environment.variables);
    for variable in task_variables {
        let value = variable.value.clone().unwrap_or_default();
        env.retain(|(name, _)| *name != variable.name);
        env.push((variable.name.clone(), value));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use stride_mesos::types::{CommandInfo, Environment, EnvironmentVariable, TaskId};

    fn task(variables: Vec<EnvironmentVariable>) -> TaskInfo {
        TaskInfo {
            name: "t".to_string(),
            task_id: TaskId::new("web/../1"),
            agent_id: AgentId::new("S0"),
            resources: Vec::new(),
            command: Some(CommandInfo {
                value: Some("true".to_string()),
                environment: Some(Environment { variables }),
                ..CommandInfo::default()
            }),
            container: None,
            health_check: None,
            kill_policy: None,
            labels: None,
            discovery: None,
        }
    }

    #[test]
    fn ports_become_variables_and_the_task_environment_wins() {
        let task = task(vec![EnvironmentVariable {
            name: "PORT".to_string(),
            value: Some("1".to_string()),
        }]);
        let sandbox = Sandbox::new(
            Path::new("/w"),
            &AgentId::new("S0"),
            &FrameworkId::new("F"),
            &task,
            "c",
        );
        let env = task_environment(
            &task,
            &FrameworkId::new("F"),
            &AgentId::new("S0"),
            "localhost",
            &sandbox,
            &[31000, 31005],
        );
        let get = |name: &str| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("PORT0"), Some("31000"));
        assert_eq!(get("PORT1"), Some("31005"));
        assert_eq!(get("PORTS"), Some("31000,31005"));
        assert_eq!(get("PORT"), Some("1"));
        assert_eq!(get("HOST"), Some("localhost"));
        assert_eq!(get("MESOS_TASK_ID"), Some("web/../1"));
        assert_eq!(
            sandbox.dir,
            Path::new("/w/slaves/S0/frameworks/F/executors/web_.._1/runs/c")
        );
    }
}
