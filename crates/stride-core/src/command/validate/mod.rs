//! Checks on an app definition that need no state. Every problem is
//! collected, so one 422 names every bad field by its JSON pointer.

mod checks;
mod container;
mod placement;

use super::FieldError;
use crate::event::app::{AppDefinition, ContainerType, UnreachableStrategy};

/// Problems found so far; several messages for one path share an entry.
#[derive(Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    pub(crate) fn add(&mut self, path: impl Into<String>, error: impl Into<String>) {
        let path = path.into();
        let error = error.into();
        match self.0.iter_mut().find(|e| e.path == path) {
            Some(entry) => entry.errors.push(error),
            None => self.0.push(FieldError {
                path,
                errors: vec![error],
            }),
        }
    }

    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// Adds every stateless problem with `definition`, as Marathon reports them.
pub(crate) fn check_definition(definition: &AppDefinition, problems: &mut Problems) {
    if let Err(error) = check_id(definition.id.as_str()) {
        problems.add("/id", error);
    }
    check_command(definition, problems);
    check_numbers(definition, problems);
    check_roles(definition, problems);
    check_labels(definition, problems);
    check_unreachable(definition.unreachable_strategy, problems);
    placement::check_constraints(&definition.constraints, problems);
    placement::check_port_definitions(definition, problems);
    container::check_networks(definition, problems);
    container::check_container(definition, problems);
    checks::check_health_checks(definition, problems);
    checks::check_readiness_checks(definition, problems);
    for (i, fetch) in definition.fetch.iter().enumerate() {
        if fetch.uri.trim().is_empty() {
            problems.add(format!("/fetch/{i}/uri"), "must not be empty");
        }
    }
    for (i, dependency) in definition.dependencies.iter().enumerate() {
        if let Err(error) = check_id(dependency.as_str()) {
            problems.add(format!("/dependencies/{i}"), error);
        }
    }
}

fn check_numbers(definition: &AppDefinition, problems: &mut Problems) {
    for (path, value, min) in [
        ("/cpus", definition.cpus, 0.001),
        ("/mem", definition.mem, 0.0),
        ("/disk", definition.disk, 0.0),
        ("/backoffSeconds", definition.backoff_seconds, 0.0),
        ("/backoffFactor", definition.backoff_factor, 1.0),
        (
            "/maxLaunchDelaySeconds",
            definition.max_launch_delay_seconds,
            0.0,
        ),
        (
            "/taskKillGracePeriodSeconds",
            definition.task_kill_grace_period_seconds.unwrap_or(0.0),
            0.0,
        ),
    ] {
        if !value.is_finite() || value < min {
            problems.add(path, format!("got {value}, expected {min} or more"));
        }
    }
    let strategy = &definition.upgrade_strategy;
    for (path, value) in [
        (
            "/upgradeStrategy/minimumHealthCapacity",
            strategy.minimum_health_capacity,
        ),
        (
            "/upgradeStrategy/maximumOverCapacity",
            strategy.maximum_over_capacity,
        ),
    ] {
        if !(0.0..=1.0).contains(&value) {
            problems.add(path, format!("got {value}, expected between 0.0 and 1.0"));
        }
    }
}

/// What to run (AppValidation `containsCmdArgsOrContainer`, and `cmd`
/// "must not be an empty string", which Marathon takes as longer than one
/// character), and how: only the command executor runs tasks here.
fn check_command(definition: &AppDefinition, problems: &mut Problems) {
    let cmd = definition.cmd.is_some();
    let args = definition.args.is_some();
    let container = definition
        .container
        .as_ref()
        .is_some_and(|c| c.docker.is_some() || c.kind == ContainerType::Mesos);
    if !((cmd ^ args) || (!(cmd && args) && container)) {
        problems.add(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        );
    }
    if definition.cmd.as_deref().is_some_and(|c| c.len() <= 1) {
        problems.add("/cmd", "must not be an empty string");
    }
    if !matches!(definition.executor.as_str(), "" | "//cmd") {
        problems.add(
            "/executor",
            "only the command executor ('' or '//cmd') runs tasks in Stride",
        );
    }
}

/// Stride runs every task under its framework role, `*`; so may an app
/// (AppValidation `validWithRoleEnforcement`, the default role being the
/// only valid one without group role enforcement).
fn check_roles(definition: &AppDefinition, problems: &mut Problems) {
    let role = definition.role.as_str();
    if role != "*" {
        problems.add("/role", format!("got {role}, expected one of: [*]"));
    }
    if let Some(roles) = &definition.accepted_resource_roles {
        if roles.is_empty() {
            problems.add("/acceptedResourceRoles", "must not be empty");
        }
        for (i, accepted) in roles.iter().enumerate() {
            if accepted != "*" && accepted != role {
                problems.add(
                    format!("/acceptedResourceRoles/{i}"),
                    format!("role {accepted} is neither '*' nor the app's role {role}"),
                );
            }
        }
    }
}

/// Labels Marathon gives a meaning (`MARATHON_SINGLE_INSTANCE_APP`, DC/OS
/// migration): their rules from AppDefinition.scala.
fn check_labels(definition: &AppDefinition, problems: &mut Problems) {
    let label = |name: &str| definition.labels.get(name).map(String::as_str);
    if label("MARATHON_SINGLE_INSTANCE_APP") == Some("true") {
        if definition.instances > 1 {
            problems.add("/", "Single instance app may only have one instance");
        }
        let strategy = &definition.upgrade_strategy;
        if strategy.minimum_health_capacity != 0.0 || strategy.maximum_over_capacity != 0.0 {
            problems.add(
                "/upgradeStrategy",
                "a single instance app needs minimumHealthCapacity and maximumOverCapacity of 0",
            );
        }
    }
    if label("DCOS_MIGRATION_API_VERSION").is_some_and(|v| !v.is_empty()) {
        let complies = label("DCOS_MIGRATION_API_VERSION") == Some("v1")
            && label("DCOS_PACKAGE_FRAMEWORK_NAME").is_some_and(|v| !v.is_empty())
            && label("DCOS_MIGRATION_API_PATH").is_some_and(|v| !v.is_empty());
        if !complies {
            problems.add(
                "/labels",
                "DCOS_PACKAGE_FRAMEWORK_NAME and DCOS_MIGRATION_API_PATH must be defined when using DCOS_MIGRATION_API_VERSION",
            );
        }
    }
}

fn check_unreachable(strategy: UnreachableStrategy, problems: &mut Problems) {
    if let UnreachableStrategy::Enabled {
        inactive_after_seconds,
        expunge_after_seconds,
    } = strategy
    {
        if expunge_after_seconds < inactive_after_seconds {
            problems.add(
                "/unreachableStrategy/expungeAfterSeconds",
                "must be greater than or equal to inactiveAfterSeconds",
            );
        }
    }
}

/// The last path segments Marathon reserves (PathId.scala), since
/// `/v2/apps/{id}/tasks` and the like would be ambiguous.
const RESERVED: [&str; 3] = ["restart", "tasks", "versions"];

/// Marathon's path rules (PathId.scala): absolute, `/`-separated segments
/// of lowercase letters, digits, dashes and dots, not starting or ending
/// with a dash, the last not a reserved word.
/// Mesos refuses task ids over 255 bytes (`NAME_MAX`); a task id is the app
/// id without its leading slash, a dot and a 36-character UUID.
pub const MAX_ID_LENGTH: usize = 255 - 36;
/// Stride's own bound (Marathon has none): groups nest this deep at most.
pub const MAX_ID_DEPTH: usize = 32;

pub(crate) fn check_id(id: &str) -> Result<(), String> {
    // Checked first, and the id not quoted: it may be megabytes.
    if id.len() > MAX_ID_LENGTH {
        return Err(format!(
            "must be at most {MAX_ID_LENGTH} characters (Mesos task ids are at most 255), not {}",
            id.len()
        ));
    }
    if id.split('/').filter(|s| !s.is_empty()).count() > MAX_ID_DEPTH {
        return Err(format!("must be at most {MAX_ID_DEPTH} segments deep"));
    }
    let Some(path) = id.strip_prefix('/') else {
        return Err(format!("'{id}' must be an absolute path starting with /"));
    };
    if path.is_empty() {
        return Err("the root path is not an app id".into());
    }
    for segment in path.split('/') {
        let valid_chars = segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let valid_ends = !segment.starts_with(['-', '.']) && !segment.ends_with(['-', '.']);
        if segment.is_empty() || !valid_chars || !valid_ends || segment == ".." {
            return Err(format!(
                "'{id}': path segments must be lowercase letters, digits, '-' and '.', not starting or ending with '-' or '.'"
            ));
        }
    }
    if path
        .rsplit('/')
        .next()
        .is_some_and(|last| RESERVED.contains(&last))
    {
        return Err(format!(
            "'{id}' must not end with any of the following reserved keywords: restart, tasks, versions"
        ));
    }
    Ok(())
}

/// Where a JSON shape error is, as a JSON pointer (`/portDefinitions/0/port`),
/// the form Marathon's error details use. serde reports a missing field at
/// its parent, so the field's name is added to point at what is missing.
pub fn error_pointer<E: std::fmt::Display>(error: &serde_path_to_error::Error<E>) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in error.path().iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(key),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => out.push('?'),
        }
    }
    let message = error.inner().to_string();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        out.push('/');
        out.push_str(field);
    }
    if out.is_empty() { "/".to_owned() } else { out }
}

/// Ports are 16-bit, though the JSON shape allows any unsigned number.
pub(crate) const MAX_PORT: u32 = 65_535;

pub(crate) fn valid_protocol(protocol: &str) -> bool {
    matches!(protocol, "tcp" | "udp" | "udp,tcp" | "tcp,udp")
}

#[cfg(test)]
mod tests;
