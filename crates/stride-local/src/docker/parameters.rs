//! `container.docker.parameters`: Mesos passes each as `--key=value` to
//! `docker run`. The engine API has no command line, so each flag is put
//! where the docker CLI would put it. A flag this table does not know is
//! refused by name rather than silently dropped.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};

pub(crate) fn apply_parameter(
    key: &str,
    value: &str,
    body: &mut ContainerCreateBody,
    host: &mut HostConfig,
) -> Result<(), String> {
    let invalid = |why: &str| format!("invalid docker parameter '{key}={value}': {why}");
    match key {
        "label" | "l" => {
            let (name, text) = value.split_once('=').unwrap_or((value, ""));
            body.labels
                .get_or_insert_with(HashMap::new)
                .insert(name.to_string(), text.to_string());
        }
        "env" | "e" => push(&mut body.env, value),
        "user" | "u" => body.user = Some(value.to_string()),
        "workdir" | "w" => body.working_dir = Some(value.to_string()),
        "hostname" | "h" => body.hostname = Some(value.to_string()),
        "entrypoint" => body.entrypoint = Some(vec![value.to_string()]),
        "stop-signal" => body.stop_signal = Some(value.to_string()),
        "stop-timeout" => {
            body.stop_timeout = Some(number(value).ok_or_else(|| invalid("not a number"))?)
        }
        "volume" | "v" => push(&mut host.binds, value),
        "cap-add" => push(&mut host.cap_add, value),
        "cap-drop" => push(&mut host.cap_drop, value),
        "add-host" => push(&mut host.extra_hosts, &value.replacen('=', ":", 1)),
        "dns" => push(&mut host.dns, value),
        "dns-search" => push(&mut host.dns_search, value),
        "dns-opt" | "dns-option" => push(&mut host.dns_options, value),
        "security-opt" => push(&mut host.security_opt, value),
        "group-add" => push(&mut host.group_add, value),
        "ulimit" => {
            let (name, limits) = value
                .split_once('=')
                .ok_or_else(|| invalid("expected NAME=SOFT[:HARD]"))?;
            let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
            let soft = number(soft).ok_or_else(|| invalid("soft limit is not a number"))?;
            let hard = number(hard).ok_or_else(|| invalid("hard limit is not a number"))?;
            host.ulimits
                .get_or_insert_with(Vec::new)
                .push(ResourcesUlimits {
                    name: Some(name.to_string()),
                    soft: Some(soft),
                    hard: Some(hard),
                });
        }
        "sysctl" => {
            let (name, text) = value
                .split_once('=')
                .ok_or_else(|| invalid("expected NAME=VALUE"))?;
            host.sysctls
                .get_or_insert_with(HashMap::new)
                .insert(name.to_string(), text.to_string());
        }
        "tmpfs" => {
            let (path, opts) = value.split_once(':').unwrap_or((value, ""));
            host.tmpfs
                .get_or_insert_with(HashMap::new)
                .insert(path.to_string(), opts.to_string());
        }
        "log-driver" => log_config(host).typ = Some(value.to_string()),
        "log-opt" => {
            let (name, text) = value
                .split_once('=')
                .ok_or_else(|| invalid("expected NAME=VALUE"))?;
            log_config(host)
                .config
                .get_or_insert_with(HashMap::new)
                .insert(name.to_string(), text.to_string());
        }
        "memory" | "m" => host.memory = Some(bytes(value).ok_or_else(|| invalid("not a size"))?),
        "memory-reservation" => {
            host.memory_reservation = Some(bytes(value).ok_or_else(|| invalid("not a size"))?)
        }
        "memory-swap" => {
            host.memory_swap = Some(bytes(value).ok_or_else(|| invalid("not a size"))?)
        }
        "shm-size" => host.shm_size = Some(bytes(value).ok_or_else(|| invalid("not a size"))?),
        "cpu-shares" | "c" => {
            host.cpu_shares = Some(number(value).ok_or_else(|| invalid("not a number"))?)
        }
        "cpu-quota" => host.cpu_quota = Some(number(value).ok_or_else(|| invalid("not a number"))?),
        "cpu-period" => {
            host.cpu_period = Some(number(value).ok_or_else(|| invalid("not a number"))?)
        }
        "cpus" => {
            let cpus: f64 = value.parse().map_err(|_| invalid("not a number"))?;
            host.nano_cpus = Some((cpus * 1e9) as i64);
        }
        "cpuset-cpus" => host.cpuset_cpus = Some(value.to_string()),
        "pids-limit" => {
            host.pids_limit = Some(number(value).ok_or_else(|| invalid("not a number"))?)
        }
        "oom-score-adj" => {
            host.oom_score_adj = Some(number(value).ok_or_else(|| invalid("not a number"))?)
        }
        "oom-kill-disable" => {
            host.oom_kill_disable = Some(flag(value).ok_or_else(|| invalid("not a boolean"))?)
        }
        "read-only" => {
            host.readonly_rootfs = Some(flag(value).ok_or_else(|| invalid("not a boolean"))?)
        }
        "init" => host.init = Some(flag(value).ok_or_else(|| invalid("not a boolean"))?),
        "ipc" => host.ipc_mode = Some(value.to_string()),
        "pid" => host.pid_mode = Some(value.to_string()),
        "uts" => host.uts_mode = Some(value.to_string()),
        "runtime" => host.runtime = Some(value.to_string()),
        _ => {
            return Err(format!(
                "docker parameter '{key}' is not supported: the embedded cluster starts \
                 containers through the engine API, which has no `--{key}` flag"
            ));
        }
    }
    Ok(())
}

fn push(list: &mut Option<Vec<String>>, value: &str) {
    list.get_or_insert_with(Vec::new).push(value.to_string());
}

fn log_config(host: &mut HostConfig) -> &mut HostConfigLogConfig {
    host.log_config
        .get_or_insert_with(HostConfigLogConfig::default)
}

fn number(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

fn flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The docker CLI's sizes: `512m`, `1g`, `100kb`, `4096` (bytes); powers
/// of 1024.
fn bytes(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: i64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    let value: f64 = digits.parse().ok()?;
    Some((value * scale as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(pairs: &[(&str, &str)]) -> Result<(ContainerCreateBody, HostConfig), String> {
        let mut body = ContainerCreateBody::default();
        let mut host = HostConfig::default();
        for (key, value) in pairs {
            apply_parameter(key, value, &mut body, &mut host)?;
        }
        Ok((body, host))
    }

    #[test]
    fn common_flags_land_where_docker_run_puts_them() {
        let (body, host) = apply(&[
            ("label", "MESOS_TASK_ID=web.1"),
            ("env", "A=1"),
            ("user", "nobody"),
            ("ulimit", "nofile=1024:2048"),
            ("memory", "512m"),
            ("cap-add", "NET_ADMIN"),
            ("log-opt", "max-size=10m"),
            ("add-host", "db=10.0.0.1"),
        ])
        .unwrap();
        assert_eq!(body.labels.unwrap()["MESOS_TASK_ID"], "web.1");
        assert_eq!(body.env.unwrap(), ["A=1"]);
        assert_eq!(body.user.as_deref(), Some("nobody"));
        let ulimit = &host.ulimits.unwrap()[0];
        assert_eq!((ulimit.soft, ulimit.hard), (Some(1024), Some(2048)));
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.cap_add.unwrap(), ["NET_ADMIN"]);
        assert_eq!(host.log_config.unwrap().config.unwrap()["max-size"], "10m");
        assert_eq!(host.extra_hosts.unwrap(), ["db:10.0.0.1"]);
    }

    #[test]
    fn sizes_follow_the_docker_cli() {
        assert_eq!(bytes("4096"), Some(4096));
        assert_eq!(bytes("100kb"), Some(100 << 10));
        assert_eq!(bytes("1.5g"), Some(3 << 29));
        assert_eq!(bytes("12q"), None);
    }

    #[test]
    fn bad_values_and_unknown_flags_are_named() {
        let error = apply(&[("ulimit", "nofile")]).unwrap_err();
        assert!(error.contains("'ulimit=nofile'"), "{error}");
        let error = apply(&[("restart", "always")]).unwrap_err();
        assert!(error.contains("'restart' is not supported"), "{error}");
    }
}
