//! Health and readiness checks, which must point at ports the app has.

use super::Problems;
use crate::event::app::{AppDefinition, ContainerType, IpProtocol};

/// The ports an app's tasks expose, with their names: what checks can refer to.
fn declared_ports(definition: &AppDefinition) -> Vec<Option<&str>> {
    if definition.uses_port_mappings() {
        definition
            .container
            .iter()
            .flat_map(|c| &c.port_mappings)
            .map(|m| m.name.as_deref())
            .collect()
    } else {
        definition
            .port_definitions
            .iter()
            .map(|d| d.name.as_deref())
            .collect()
    }
}

pub(super) fn check_health_checks(definition: &AppDefinition, problems: &mut Problems) {
    let ports = declared_ports(definition).len();
    for (i, check) in definition.health_checks.iter().enumerate() {
        let path = |field: &str| format!("/healthChecks/{i}/{field}");
        if check.protocol.checks_a_port() {
            match (check.port_index, check.port) {
                (Some(_), Some(_)) => {
                    problems.add(path("port"), "give port or portIndex, not both")
                }
                (Some(index), None) if index as usize >= ports => problems.add(
                    path("portIndex"),
                    format!("the app declares {ports} port(s); index {index} is out of range"),
                ),
                (None, None) if ports == 0 => problems.add(
                    path("portIndex"),
                    "the app declares no ports; give a port to check",
                ),
                _ => {}
            }
        } else if check
            .command
            .as_ref()
            .is_none_or(|c| c.value.trim().is_empty())
        {
            problems.add(path("command"), "a COMMAND check needs a command");
        }
        // Marathon allows 0, which would probe without pause; deliberately
        // stricter. Unlike readiness checks, a timeout as long as the
        // interval or longer is fine: the next probe waits for this one.
        if check.interval_seconds == 0 {
            problems.add(path("intervalSeconds"), "must be at least 1");
        }
        let mesos_docker = check.protocol.is_mesos_network_check()
            && definition
                .container
                .as_ref()
                .is_some_and(|c| c.kind == ContainerType::Docker);
        if check.ip_protocol == IpProtocol::Ipv6 && !mesos_docker {
            problems.add(
                path("ipProtocol"),
                "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks",
            );
        }
    }
    // AppValidation `haveAtMostOneMesosHealthCheck`: COMMAND checks given as
    // commands are not counted, as older Marathons allowed several.
    let mesos_checks = definition
        .health_checks
        .iter()
        .filter(|c| c.protocol.is_mesos_network_check())
        .count();
    if mesos_checks > 1 {
        problems.add(
            "/healthChecks",
            "AppDefinition can contain at most one Mesos health check",
        );
    }
}

pub(super) fn check_readiness_checks(definition: &AppDefinition, problems: &mut Problems) {
    let names = declared_ports(definition);
    if definition.readiness_checks.len() > 1 {
        problems.add("/readinessChecks", "got more than 1, expected at most 1");
    }
    for (i, check) in definition.readiness_checks.iter().enumerate() {
        let path = |field: &str| format!("/readinessChecks/{i}/{field}");
        if !names.contains(&Some(check.port_name.as_str())) {
            problems.add(
                path("portName"),
                format!("no port is named '{}'", check.port_name),
            );
        }
        if check.timeout_seconds >= check.interval_seconds {
            problems.add(path("timeoutSeconds"), "must be less than intervalSeconds");
        }
        if check
            .http_status_codes_for_ready
            .iter()
            .any(|code| !(100..=599).contains(code))
        {
            problems.add(
                path("httpStatusCodesForReady"),
                "HTTP status codes are 100 to 599",
            );
        }
    }
}
