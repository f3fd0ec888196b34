//! App definitions as the API reads them: older layouts normalized
//! (`event::app::legacy`), Marathon fields Stride does not implement
//! refused by name, ids resolved against the group they are posted in, and
//! a whole definition given Marathon's default ports.

use super::ApiError;
use super::extract::from_json;
use serde_json::{Map, Value};
use stride_core::command::{FieldError, Rejection};
use stride_log::event::AppId;
use stride_log::event::app::{AppDefinition, Container, PortDefinition, PortMapping, legacy};

/// A whole definition, its id and dependencies resolved against `base`.
pub fn definition(mut fields: Map<String, Value>, base: &AppId) -> Result<AppDefinition, ApiError> {
    prepare(&mut fields, base)?;
    let declares_ports = fields.contains_key("portDefinitions");
    let declares_mappings = fields
        .get("container")
        .is_some_and(|c| c.get("portMappings").is_some());
    let mut definition = from_json::<AppDefinition>(Value::Object(fields))?.canonical();
    // Marathon's `applyDefaultPortDefinitions` / `applyDefaultPortMappings`:
    // a definition that says nothing about ports gets one.
    if definition.uses_port_mappings() {
        // Off the host network a task needs a container; Marathon assumes
        // a Mesos one.
        let container = definition.container.get_or_insert_with(Container::mesos);
        if !declares_mappings {
            container.port_mappings = vec![PortMapping::default_mapping()];
        }
    } else if !declares_ports {
        definition.port_definitions = vec![PortDefinition::default_port()];
    }
    Ok(definition.canonical())
}

/// Fields to merge into a definition (a partial update).
pub fn patch(mut fields: Map<String, Value>, base: &AppId) -> Result<Map<String, Value>, ApiError> {
    prepare(&mut fields, base)?;
    Ok(fields)
}

fn prepare(fields: &mut Map<String, Value>, base: &AppId) -> Result<(), ApiError> {
    let mut problems: Vec<(String, String)> = unsupported(fields);
    if let Err(legacy) = legacy::normalize(fields) {
        problems.extend(legacy);
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if let Some(Value::String(id)) = fields.get("id") {
        let resolved = AppId::resolve(id, base);
        fields.insert("id".into(), Value::String(resolved.0));
    }
    if let Some(Value::Array(dependencies)) = fields.get_mut("dependencies") {
        for dependency in dependencies.iter_mut() {
            if let Value::String(raw) = dependency {
                *raw = AppId::resolve(raw, base).0;
            }
        }
    }
    Ok(())
}

/// Marathon app fields Stride does not implement: refused by name rather
/// than silently dropped.
fn unsupported(fields: &Map<String, Value>) -> Vec<(String, String)> {
    let given = |value: Option<&Value>| {
        value.is_some_and(|v| match v {
            Value::Null => false,
            Value::Object(o) => !o.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        })
    };
    let mut problems = Vec::new();
    let mut refuse = |path: &str, why: &str| problems.push((path.to_owned(), why.to_owned()));
    for (field, why) in [
        (
            "secrets",
            "secrets need a secret store, which Stride does not have",
        ),
        (
            "check",
            "Mesos checks (`check`) are not supported; use healthChecks",
        ),
        ("tty", "TTYs for tasks are not supported"),
        ("resourceLimits", "resource limits are not supported"),
        (
            "executorResources",
            "custom executor resources are not supported",
        ),
        ("residency", "resident tasks are not supported"),
    ] {
        if given(fields.get(field)) {
            refuse(&format!("/{field}"), why);
        }
    }
    let container = fields.get("container");
    if given(container.and_then(|c| c.get("linuxInfo"))) {
        refuse("/container/linuxInfo", "linuxInfo is not supported");
    }
    let docker = container.and_then(|c| c.get("docker"));
    if given(docker.and_then(|d| d.get("pullConfig"))) {
        refuse(
            "/container/docker/pullConfig",
            "pullConfig needs a secret store, which Stride does not have",
        );
    }
    let volumes = container
        .and_then(|c| c.get("volumes"))
        .and_then(Value::as_array);
    for (i, volume) in volumes.into_iter().flatten().enumerate() {
        for kind in ["persistent", "external", "secret"] {
            if given(volume.get(kind)) {
                refuse(
                    &format!("/container/volumes/{i}/{kind}"),
                    "only host volumes (containerPath, hostPath, mode) are supported",
                );
            }
        }
    }
    let env = fields.get("env").and_then(Value::as_object);
    for (name, value) in env.into_iter().flatten() {
        if value.is_object() {
            refuse(
                &format!("/env/{name}"),
                "use of secret-references in the environment requires the secrets feature to be enabled",
            );
        }
    }
    problems
}

/// Problems with the input as Marathon's 422.
pub fn invalid(problems: Vec<(String, String)>) -> ApiError {
    let mut details: Vec<FieldError> = Vec::new();
    for (path, error) in problems {
        match details.iter_mut().find(|d| d.path == path) {
            Some(detail) => detail.errors.push(error),
            None => details.push(FieldError {
                path,
                errors: vec![error],
            }),
        }
    }
    ApiError::Rejected(Rejection::invalid(details))
}
