//! Agent ids that survive a restart, as a Mesos agent checkpoints its id
//! under its work dir: a restarted cluster on the same work dir is the same
//! agents, so the containers they started can be found and adopted, and a
//! task the agent no longer knows is TASK_GONE rather than unknown.

use std::path::Path;

use stride_mesos::types::AgentId;

const FILE: &str = "agent-ids";

/// The ids of `count` agents: those recorded under `work_dir`, then new
/// ones (`<master id>-S<index>`), all recorded for next time.
pub(crate) fn agent_ids(
    work_dir: &Path,
    master_id: &str,
    count: usize,
) -> std::io::Result<Vec<AgentId>> {
    let path = work_dir.join(FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let mut ids: Vec<String> = recorded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .take(count)
        .collect();
    for index in ids.len()..count {
        ids.push(format!("{master_id}-S{index}"));
    }
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    if text != recorded {
        std::fs::write(&path, text)?;
    }
    Ok(ids.into_iter().map(AgentId::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_across_restarts_and_grow_with_the_agent_count() {
        let dir = tempfile::tempdir().unwrap();
        let first = agent_ids(dir.path(), "m1", 1).unwrap();
        assert_eq!(first, [AgentId::new("m1-S0")]);
        let again = agent_ids(dir.path(), "m2", 2).unwrap();
        assert_eq!(again, [AgentId::new("m1-S0"), AgentId::new("m2-S1")]);
        assert_eq!(agent_ids(dir.path(), "m3", 2).unwrap(), again);
    }
}
