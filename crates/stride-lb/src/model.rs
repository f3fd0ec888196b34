//! What the proxy should serve, read from the projection: which apps this
//! sidecar exposes, on which service ports and how, and which tasks take
//! traffic. Pure: the same state always gives the same answer.
//!
//! Labels follow marathon-lb's names where they fit: `HAPROXY_GROUP`
//! (comma-separated; `--group '*'` takes every app), and per service port
//! index N `HAPROXY_N_VHOST` (comma-separated host names, routed on the
//! shared HTTP frontend), `HAPROXY_N_MODE` (`http` or `tcp`; `http` when a
//! vhost is set, else `tcp`) and `HAPROXY_N_BALANCE` (HAProxy's `balance`).

use crate::event::condition::Condition;
use crate::event::{AppId, TaskId};
use crate::projection::{App, State, Task};
use std::collections::BTreeMap;

pub const GROUP_LABEL: &str = "HAPROXY_GROUP";
/// `--group` value that exposes every app, labelled or not.
pub const ANY_GROUP: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

/// How a task stands with the proxy. A task is in rotation iff `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Takes new traffic.
    Ready,
    /// On its way out: no new traffic, open connections may finish.
    Drain,
    /// Not served at all.
    Out,
}

/// The one rotation predicate: running, not unhealthy (healthy when the
/// app has health checks), and not on its way out. Kill-requested tasks
/// drain rather than vanish so open connections finish; the coming
/// `draining` flag belongs next to `kill_requested` here.
pub fn standing(app: &App, task: &Task) -> Standing {
    if task.condition != Condition::Running {
        return Standing::Out;
    }
    let healthy = match task.healthy {
        Some(healthy) => healthy,
        // No checks, no verdict to wait for.
        None => app.definition.health_checks.is_empty(),
    };
    if !healthy {
        return Standing::Out;
    }
    if task.kill_requested || task.draining {
        return Standing::Drain;
    }
    Standing::Ready
}

/// One exposed service port of one app: a frontend and its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub app: AppId,
    pub service_port: u16,
    pub mode: Mode,
    /// HAProxy's `balance` argument; its default (roundrobin) when absent.
    pub balance: Option<String>,
    /// Host names routed here from the shared HTTP frontend.
    pub vhosts: Vec<String>,
}

/// A task serving one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub task: TaskId,
    pub host: String,
    pub port: u16,
    /// `Ready` or `Drain`; `Out` tasks are not members.
    pub standing: Standing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredBackend {
    pub spec: BackendSpec,
    /// The app's `instances`, which sizes the server slots.
    pub instances: u32,
    /// The app's definition version (labels included), so a rejected app is
    /// retried once its definition changes.
    pub config_version: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// By backend name (`be_<app>_<service port>`), so rendering is ordered.
    pub backends: BTreeMap<String, DesiredBackend>,
    /// Apps in the group left out, with why (bad labels).
    pub skipped: BTreeMap<AppId, String>,
}

/// Which apps and how: the `--group` and `--http-port` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub group: String,
    pub http_port: u16,
}

pub fn desired(state: &State, selection: &Selection) -> Desired {
    let mut out = Desired::default();
    for (id, app) in &state.apps {
        if !in_group(app, &selection.group) {
            continue;
        }
        match backends_of(app, selection.http_port) {
            Ok(specs) => {
                for (index, spec) in specs {
                    let members = members(state, id, app, index);
                    out.backends.insert(
                        backend_name(&spec),
                        DesiredBackend {
                            spec,
                            instances: app.definition.instances,
                            config_version: app.config_version,
                            members,
                        },
                    );
                }
            }
            Err(reason) => {
                out.skipped.insert(id.clone(), reason);
            }
        }
    }
    out
}

fn in_group(app: &App, group: &str) -> bool {
    if group == ANY_GROUP {
        return true;
    }
    app.definition
        .labels
        .get(GROUP_LABEL)
        .is_some_and(|groups| groups.split(',').any(|g| g.trim() == group))
}

/// The backend name HAProxy knows: unique because service ports are unique
/// across apps, and never equal to a frontend's (`fe_`).
pub fn backend_name(spec: &BackendSpec) -> String {
    let path: String = spec
        .app
        .as_str()
        .trim_start_matches('/')
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' => c,
            _ => '_',
        })
        .collect();
    format!("be_{path}_{}", spec.service_port)
}

/// The app's exposed ports with their index (which task port serves each),
/// or why the app cannot be exposed. A bad label leaves the whole app out
/// so a typo never half-configures it.
fn backends_of(app: &App, http_port: u16) -> Result<Vec<(usize, BackendSpec)>, String> {
    let definition = &app.definition;
    let labels = &definition.labels;
    let protocols = port_protocols(app);
    let mut specs = Vec::new();
    for (index, (_, port)) in definition.service_ports().into_iter().enumerate() {
        let label = |name: &str| labels.get(&format!("HAPROXY_{index}_{name}"));
        // 0 is "unassigned", which Stride never leaves in a definition;
        // UDP cannot go through HAProxy.
        let tcp = protocols.get(index).is_none_or(|p| p.contains("tcp"));
        let Ok(service_port) = u16::try_from(port) else {
            continue;
        };
        if service_port == 0 || !tcp {
            continue;
        }
        if service_port == http_port {
            return Err(format!(
                "service port {service_port} is the sidecar's HTTP port (--http-port)"
            ));
        }
        let vhosts = match label("VHOST") {
            Some(raw) => parse_vhosts(raw).map_err(|e| format!("HAPROXY_{index}_VHOST: {e}"))?,
            None => Vec::new(),
        };
        let mode = match label("MODE").map(|m| m.trim().to_ascii_lowercase()) {
            None if vhosts.is_empty() => Mode::Tcp,
            None => Mode::Http,
            Some(m) if m == "http" => Mode::Http,
            Some(m) if m == "tcp" && vhosts.is_empty() => Mode::Tcp,
            Some(m) if m == "tcp" => {
                return Err(format!(
                    "HAPROXY_{index}_MODE is tcp but HAPROXY_{index}_VHOST needs http"
                ));
            }
            Some(other) => {
                return Err(format!(
                    "HAPROXY_{index}_MODE: '{other}' is neither http nor tcp"
                ));
            }
        };
        let balance = match label("BALANCE") {
            Some(raw) if is_config_token(raw) => Some(raw.trim().to_owned()),
            Some(raw) => {
                return Err(format!(
                    "HAPROXY_{index}_BALANCE: '{raw}' is not a balance algorithm"
                ));
            }
            None => None,
        };
        let spec = BackendSpec {
            app: definition.id.clone(),
            service_port,
            mode,
            balance,
            vhosts,
        };
        specs.push((index, spec));
    }
    Ok(specs)
}

fn port_protocols(app: &App) -> Vec<String> {
    let definition = &app.definition;
    if definition.uses_port_mappings() {
        let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
        mappings.map(|m| m.protocol.to_ascii_lowercase()).collect()
    } else {
        let ports = definition.port_definitions.iter();
        ports.map(|d| d.protocol.to_ascii_lowercase()).collect()
    }
}

fn parse_vhosts(raw: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for host in raw.split(',').map(|h| h.trim().to_ascii_lowercase()) {
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(format!("'{host}' is not a host name"));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// A value that can go into one config line as is: no comment, quote,
/// escape or line break can smuggle in other directives. Whether HAProxy
/// understands it is for `haproxy -c` to say.
fn is_config_token(raw: &str) -> bool {
    let raw = raw.trim();
    !raw.is_empty()
        && raw.len() <= 128
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:() ".contains(c))
}

/// The tasks serving service port `index`, on their port of the same index
/// (a task without one cannot serve it).
fn members(state: &State, id: &AppId, app: &App, index: usize) -> Vec<Member> {
    let mut members = Vec::new();
    for (task_id, task) in state.tasks_of(id) {
        let standing = standing(app, task);
        if standing == Standing::Out {
            continue;
        }
        let port = task.ports.get(index).and_then(|p| u16::try_from(*p).ok());
        let Some(port) = port.filter(|p| *p != 0) else {
            continue;
        };
        members.push(Member {
            task: task_id.clone(),
            host: task.host.clone(),
            port,
            standing,
        });
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::app::AppSpec;
    use crate::event::*;
    use serde_json::{Value, json};

    /// States built by applying events, as the sidecar builds them.
    #[derive(Default)]
    struct Builder {
        state: State,
    }

    impl Builder {
        fn push(&mut self, event: Event) -> &mut Self {
            let seq = self.state.seq.next();
            self.state.apply(&Envelope {
                seq,
                id: uuid::Uuid::nil(),
                recorded_at: seq.0,
                actor: Actor::Reconciler,
                command_id: uuid::Uuid::nil(),
                event,
            });
            self
        }

        fn app(&mut self, definition: Value) -> &mut Self {
            let definition: AppSpec = serde_json::from_value(definition).unwrap();
            self.push(Event::AppCreated(AppCreated {
                app: definition.id.clone(),
                definition,
            }))
        }

        fn task(&mut self, app: &str, task: &str, ports: &[u32]) -> &mut Self {
            self.push(Event::TaskLaunchRequested(TaskLaunchRequested {
                task: TaskId::from(task),
                app: AppId::from(app),
                app_version: 0,
                agent: AgentId::from("agent"),
                host: "127.0.0.1".into(),
                ports: ports.to_vec(),
                offer: "offer".into(),
            }))
        }

        fn status(&mut self, app: &str, task: &str, condition: Condition) -> &mut Self {
            self.push(Event::TaskStatusRecorded(TaskStatusRecorded {
                task: TaskId::from(task),
                app: Some(AppId::from(app)),
                condition,
                mesos_state: format!("{condition:?}"),
                reason: None,
                message: None,
                agent: None,
                healthy: None,
                status_uuid: None,
                mesos_timestamp: None,
            }))
        }

        fn running(&mut self, app: &str, task: &str, ports: &[u32]) -> &mut Self {
            self.task(app, task, ports)
                .status(app, task, Condition::Running)
        }

        fn health(&mut self, app: &str, task: &str, healthy: bool) -> &mut Self {
            self.push(Event::HealthChanged(HealthChanged {
                task: TaskId::from(task),
                app: AppId::from(app),
                healthy,
                cause: None,
            }))
        }

        fn kill(&mut self, app: &str, task: &str) -> &mut Self {
            self.push(Event::TaskKillRequested(TaskKillRequested {
                task: TaskId::from(task),
                app: AppId::from(app),
                reason: "test".into(),
            }))
        }
    }

    fn selection() -> Selection {
        Selection {
            group: "external".into(),
            http_port: 80,
        }
    }

    fn web(extra: Value) -> Value {
        let mut app = json!({"id": "/web", "instances": 2,
            "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": 10000}]});
        merge(&mut app, extra);
        app
    }

    fn merge(into: &mut Value, extra: Value) {
        if let (Value::Object(into), Value::Object(extra)) = (into, extra) {
            for (key, value) in extra {
                match (into.get_mut(&key), value) {
                    (Some(existing @ Value::Object(_)), value @ Value::Object(_)) => {
                        merge(existing, value)
                    }
                    (_, value) => {
                        into.insert(key, value);
                    }
                }
            }
        }
    }

    fn standing_of(build: impl FnOnce(&mut Builder), health_checks: bool) -> Standing {
        let mut b = Builder::default();
        let checks = if health_checks {
            json!([{"protocol": "HTTP"}])
        } else {
            json!([])
        };
        b.app(web(json!({"healthChecks": checks})));
        build(&mut b);
        let state = &b.state;
        let app = &state.apps[&AppId::from("/web")];
        standing(app, &state.tasks[&TaskId::from("web.1")])
    }

    #[test]
    fn the_rotation_predicate() {
        use Standing::*;
        type Case = (&'static str, bool, fn(&mut Builder), Standing);
        let cases: [Case; 10] = [
            (
                "launched, no status yet",
                false,
                |b| {
                    b.task("/web", "web.1", &[31000]);
                },
                Out,
            ),
            (
                "starting",
                false,
                |b| {
                    b.task("/web", "web.1", &[31000])
                        .status("/web", "web.1", Condition::Starting);
                },
                Out,
            ),
            (
                "running, no checks",
                false,
                |b| {
                    b.running("/web", "web.1", &[31000]);
                },
                Ready,
            ),
            (
                "running, checks, no verdict yet",
                true,
                |b| {
                    b.running("/web", "web.1", &[31000]);
                },
                Out,
            ),
            (
                "running, checks, healthy",
                true,
                |b| {
                    b.running("/web", "web.1", &[31000])
                        .health("/web", "web.1", true);
                },
                Ready,
            ),
            (
                "running, unhealthy",
                false,
                |b| {
                    b.running("/web", "web.1", &[31000])
                        .health("/web", "web.1", false);
                },
                Out,
            ),
            (
                "kill requested",
                false,
                |b| {
                    b.running("/web", "web.1", &[31000]).kill("/web", "web.1");
                },
                Drain,
            ),
            (
                "kill requested and unhealthy",
                false,
                |b| {
                    b.running("/web", "web.1", &[31000])
                        .health("/web", "web.1", false)
                        .kill("/web", "web.1");
                },
                Out,
            ),
            (
                "killing",
                false,
                |b| {
                    b.running("/web", "web.1", &[31000]).status(
                        "/web",
                        "web.1",
                        Condition::Killing,
                    );
                },
                Out,
            ),
            (
                "unreachable",
                false,
                |b| {
                    b.running("/web", "web.1", &[31000]).status(
                        "/web",
                        "web.1",
                        Condition::Unreachable,
                    );
                },
                Out,
            ),
        ];
        for (name, checks, build, expected) in cases {
            assert_eq!(standing_of(build, checks), expected, "{name}");
        }
    }

    fn specs(app: Value, selection: &Selection) -> Result<Vec<BackendSpec>, String> {
        let mut b = Builder::default();
        b.app(app);
        let desired = desired(&b.state, selection);
        if let Some(reason) = desired.skipped.values().next() {
            return Err(reason.clone());
        }
        Ok(desired.backends.into_values().map(|b| b.spec).collect())
    }

    #[test]
    fn labels_choose_groups_modes_vhosts_and_balance() {
        let spec = |port, mode, vhosts: &[&str], balance: Option<&str>| BackendSpec {
            app: AppId::from("/web"),
            service_port: port,
            mode,
            balance: balance.map(str::to_owned),
            vhosts: vhosts.iter().map(|h| h.to_string()).collect(),
        };
        type Case = (&'static str, Value, Result<Vec<BackendSpec>, &'static str>);
        let cases: Vec<Case> = vec![
            (
                "tcp by default",
                web(json!({})),
                Ok(vec![spec(10000, Mode::Tcp, &[], None)]),
            ),
            (
                "other group",
                web(json!({"labels": {"HAPROXY_GROUP": "internal"}})),
                Ok(vec![]),
            ),
            (
                "one of several groups",
                web(json!({"labels": {"HAPROXY_GROUP": "internal, external"}})),
                Ok(vec![spec(10000, Mode::Tcp, &[], None)]),
            ),
            (
                "no group label",
                json!({"id": "/web", "portDefinitions": [{"port": 10000}]}),
                Ok(vec![]),
            ),
            (
                "vhost means http",
                web(json!({"labels": {"HAPROXY_0_VHOST": "Web.example.com, www.example.com"}})),
                Ok(vec![spec(
                    10000,
                    Mode::Http,
                    &["web.example.com", "www.example.com"],
                    None,
                )]),
            ),
            (
                "explicit http",
                web(
                    json!({"labels": {"HAPROXY_0_MODE": "HTTP", "HAPROXY_0_BALANCE": "leastconn"}}),
                ),
                Ok(vec![spec(10000, Mode::Http, &[], Some("leastconn"))]),
            ),
            (
                "tcp with a vhost",
                web(json!({"labels": {"HAPROXY_0_MODE": "tcp", "HAPROXY_0_VHOST": "a.example"}})),
                Err("HAPROXY_0_MODE is tcp but HAPROXY_0_VHOST needs http"),
            ),
            (
                "unknown mode",
                web(json!({"labels": {"HAPROXY_0_MODE": "udp"}})),
                Err("neither http nor tcp"),
            ),
            (
                "injected directive",
                web(json!({"labels": {"HAPROXY_0_BALANCE": "roundrobin\n  bind :1"}})),
                Err("not a balance algorithm"),
            ),
            (
                "bad vhost",
                web(json!({"labels": {"HAPROXY_0_VHOST": "a b"}})),
                Err("'a b' is not a host name"),
            ),
            (
                "the http port",
                web(json!({"portDefinitions": [{"port": 80}]})),
                Err("--http-port"),
            ),
            (
                "no service port",
                web(json!({"portDefinitions": []})),
                Ok(vec![]),
            ),
            (
                "udp only",
                web(json!({"portDefinitions": [{"port": 10000, "protocol": "udp"}]})),
                Ok(vec![]),
            ),
            (
                "second port labels",
                web(
                    json!({"portDefinitions": [{"port": 10000}, {"port": 10001}],
                "labels": {"HAPROXY_1_VHOST": "api.example"}}),
                ),
                Ok(vec![
                    spec(10000, Mode::Tcp, &[], None),
                    spec(10001, Mode::Http, &["api.example"], None),
                ]),
            ),
            (
                "bridge port mappings",
                web(
                    json!({"portDefinitions": [], "container": {"type": "DOCKER",
                "docker": {"image": "nginx", "network": "BRIDGE"},
                "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10002}]}}),
                ),
                Ok(vec![spec(10002, Mode::Tcp, &[], None)]),
            ),
        ];
        for (name, app, expected) in cases {
            let got = specs(app, &selection());
            match expected {
                Ok(expected) => assert_eq!(got, Ok(expected), "{name}"),
                Err(needle) => {
                    let error = got.expect_err(name);
                    assert!(error.contains(needle), "{name}: {error}");
                }
            }
        }
        let any = Selection {
            group: ANY_GROUP.into(),
            http_port: 80,
        };
        let unlabelled = json!({"id": "/web", "portDefinitions": [{"port": 10000}]});
        assert_eq!(
            specs(unlabelled, &any).unwrap().len(),
            1,
            "--group '*' takes every app"
        );
    }

    #[test]
    fn members_are_the_ready_and_draining_tasks_on_the_matching_port() {
        let mut b = Builder::default();
        b.app(web(
            json!({"portDefinitions": [{"port": 10000}, {"port": 10001}]}),
        ))
        .running("/web", "web.1", &[31000, 31001])
        .running("/web", "web.2", &[31002, 31003])
        .kill("/web", "web.2")
        .task("/web", "web.3", &[31004, 31005])
        .running("/web", "web.4", &[31006]);
        let desired = desired(&b.state, &selection());
        let ports = |name: &str| -> Vec<(String, u16, Standing)> {
            desired.backends[name]
                .members
                .iter()
                .map(|m| (m.task.to_string(), m.port, m.standing))
                .collect()
        };
        assert_eq!(
            ports("be_web_10000"),
            [
                ("web.1".into(), 31000, Standing::Ready),
                ("web.2".into(), 31002, Standing::Drain),
                ("web.4".into(), 31006, Standing::Ready),
            ]
        );
        assert_eq!(
            ports("be_web_10001"),
            [
                ("web.1".into(), 31001, Standing::Ready),
                ("web.2".into(), 31003, Standing::Drain),
            ],
            "web.4 has no second port"
        );
        assert_eq!(desired.backends["be_web_10000"].instances, 2);
    }
}
