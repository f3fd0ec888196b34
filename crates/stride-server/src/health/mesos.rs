//! Mesos-run checks: the `HealthCheck` of a TaskInfo, as Marathon builds it.

use super::monitor::run_by_stride;
use stride_log::event::app::{AppDefinition, HealthCheck, HealthCheckProtocol};
use stride_mesos::types::{self, CommandInfo, HealthCheckType, HttpCheck, TcpCheck};

/// The TaskInfo `health_check` for an app's first Mesos-run check
/// (MESOS_HTTP, MESOS_HTTPS, MESOS_TCP, COMMAND; a TaskInfo holds one), for
/// a task given `host_ports`. `None` when the app has no such check or the
/// task lacks the port it names.
pub fn mesos_health_check(
    definition: &AppDefinition,
    host_ports: &[u32],
) -> Option<types::HealthCheck> {
    let check = definition
        .health_checks
        .iter()
        .find(|check| !run_by_stride(check.protocol))?;
    let mut info = types::HealthCheck {
        kind: HealthCheckType::Command,
        command: None,
        http: None,
        tcp: None,
        delay_seconds: Some(check.delay_seconds.into()),
        interval_seconds: Some(check.interval_seconds.into()),
        timeout_seconds: Some(check.timeout_seconds.into()),
        grace_period_seconds: Some(check.grace_period_seconds.into()),
        // Marathon's 0 means "never kill"; Mesos would kill at the first
        // failure, so ask for a count it never reaches.
        consecutive_failures: Some(match check.max_consecutive_failures {
            0 => u32::MAX,
            n => n,
        }),
    };
    match check.protocol {
        HealthCheckProtocol::Command => {
            info.command = Some(CommandInfo {
                value: Some(check.command.as_ref()?.value.clone()),
                ..CommandInfo::default()
            });
        }
        HealthCheckProtocol::MesosTcp => {
            info.kind = HealthCheckType::Tcp;
            info.tcp = Some(TcpCheck {
                port: port(definition, check, host_ports)?,
            });
        }
        protocol => {
            info.kind = HealthCheckType::Http;
            let scheme = match protocol {
                HealthCheckProtocol::MesosHttps => "https",
                _ => "http",
            };
            info.http = Some(HttpCheck {
                scheme: Some(scheme.to_owned()),
                port: port(definition, check, host_ports)?,
                path: Some(check.path.clone().unwrap_or_else(|| "/".to_owned())),
                statuses: Vec::new(),
            });
        }
    }
    Some(info)
}

/// Mesos checks from inside the task's network namespace, so a task with
/// port mappings is checked on the container port; otherwise on the host
/// port the task got.
fn port(definition: &AppDefinition, check: &HealthCheck, host_ports: &[u32]) -> Option<u32> {
    if let Some(port) = check.port {
        return Some(port);
    }
    let index = usize::try_from(check.port_index.unwrap_or(0)).ok()?;
    if definition.uses_port_mappings() {
        let mapping = definition.container.as_ref()?.port_mappings.get(index)?;
        return Some(mapping.container_port);
    }
    host_ports.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn definition(checks: Value, extra: Value) -> AppDefinition {
        let mut body = json!({"id": "/a", "cmd": "sleep 100", "healthChecks": checks,
            "portDefinitions": [{"port": 0}, {"port": 0}]});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        serde_json::from_value(body).expect("a definition")
    }

    fn json_of(check: Option<types::HealthCheck>) -> Value {
        serde_json::to_value(check).expect("serializes")
    }

    #[test]
    fn each_mesos_protocol_becomes_its_task_info_check() {
        let timing = json!({"delay_seconds": 15.0, "interval_seconds": 60.0,
            "timeout_seconds": 20.0, "grace_period_seconds": 300.0, "consecutive_failures": 3});
        let with = |mut extra: Value| {
            for (k, v) in timing.as_object().expect("object") {
                extra[k] = v.clone();
            }
            extra
        };
        let cases = [
            (
                json!([{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 1}]),
                json!({}),
                with(
                    json!({"type": "HTTP", "http": {"scheme": "http", "port": 31001, "path": "/health"}}),
                ),
            ),
            (
                json!([{"protocol": "MESOS_HTTPS"}]),
                json!({}),
                with(
                    json!({"type": "HTTP", "http": {"scheme": "https", "port": 31000, "path": "/"}}),
                ),
            ),
            (
                json!([{"protocol": "MESOS_TCP", "port": 9000}]),
                json!({}),
                with(json!({"type": "TCP", "tcp": {"port": 9000}})),
            ),
            (
                json!([{"protocol": "COMMAND", "command": {"value": "test -f ok"}}]),
                json!({}),
                with(json!({"type": "COMMAND", "command": {"value": "test -f ok"}})),
            ),
            (
                json!([{"protocol": "MESOS_TCP", "portIndex": 0}]),
                json!({"container": {"docker": {"image": "nginx", "network": "BRIDGE"},
                    "portMappings": [{"containerPort": 80, "hostPort": 0}]}}),
                with(json!({"type": "TCP", "tcp": {"port": 80}})),
            ),
        ];
        for (checks, extra, want) in cases {
            let got = json_of(mesos_health_check(
                &definition(checks.clone(), extra),
                &[31000, 31001],
            ));
            assert_eq!(got, want, "{checks}");
        }
    }

    #[test]
    fn the_first_mesos_check_is_passed_and_stride_checks_are_not() {
        let checks = json!([{"protocol": "HTTP"}, {"protocol": "TCP"}]);
        assert_eq!(
            mesos_health_check(&definition(checks, json!({})), &[1, 2]),
            None
        );
        let checks = json!([{"protocol": "HTTP"}, {"protocol": "MESOS_TCP", "portIndex": 1,
            "maxConsecutiveFailures": 0, "delaySeconds": 1}]);
        let got = json_of(mesos_health_check(&definition(checks, json!({})), &[1, 2]));
        assert_eq!(got["tcp"]["port"], 2);
        assert_eq!(got["delay_seconds"], 1.0);
        assert_eq!(got["consecutive_failures"], u32::MAX, "0 is never");
    }

    #[test]
    fn a_missing_port_gives_no_check() {
        let checks = json!([{"protocol": "MESOS_HTTP", "portIndex": 1}]);
        assert_eq!(
            mesos_health_check(&definition(checks, json!({})), &[31000]),
            None
        );
    }
}
