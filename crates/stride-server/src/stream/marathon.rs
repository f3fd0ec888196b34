//! Stride events as Marathon's event bus shows them (`/v2/events` and
//! callbacks): an `eventType`, a `timestamp` and that type's fields, as
//! Marathon's `Formats.eventToJson` writes each (core/event/Events.scala).
//!
//! One envelope can be several Marathon events (a deployment starting is a
//! `group_change_success` and a `deployment_info`), and some are none.
//! What an envelope does not carry (a deployment's plan, a task's host and
//! ports) comes from the projection through `Lookup`: the plans of running
//! and recently finished deployments, and the tasks still known. The match
//! is exhaustive on purpose: a new event variant must decide what Marathon
//! clients see.

use crate::published::Projection;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use stride_core::projection::{Deployment, Task};
use stride_log::event::app::AppSpec;
use stride_log::event::condition::Condition;
use stride_log::event::json::timestamp;
use stride_log::event::{
    AppId, DeploymentId, DeploymentStep, Envelope, Event, TaskId, UNHEALTHY_KILL_REASON,
};

/// What rendering needs beyond the envelope.
pub trait Lookup {
    /// A running or recently finished deployment.
    fn deployment(&self, id: &DeploymentId) -> Option<Deployment>;
    fn task(&self, id: &TaskId) -> Option<Task>;
}

impl Lookup for Projection {
    fn deployment(&self, id: &DeploymentId) -> Option<Deployment> {
        self.read().plan_of(id).cloned()
    }

    fn task(&self, id: &TaskId) -> Option<Task> {
        self.read().tasks.get(id).map(|task| Task::clone(task))
    }
}

/// How deployment plans are shown: Marathon 1.6's default carries the root
/// group before and after (`original`, `target`), which the marathon
/// client requires; `?plan-format=light` leaves them out, as Marathon 1.8+
/// always does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlanFormat {
    #[default]
    Full,
    Light,
}

/// The Marathon events for `envelope`, in order.
pub fn marathon_events(
    envelope: &Envelope,
    lookup: &dyn Lookup,
    format: PlanFormat,
) -> Vec<(&'static str, Value)> {
    let at = envelope.recorded_at;
    let version = timestamp(at);
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    match &envelope.event {
        Event::AppCreated(e) => {
            out.push(api_post(
                envelope,
                "/v2/apps".into(),
                definition(&e.definition, at),
            ));
            health_checks_added(&mut out, &e.app, &e.definition, &version);
        }
        Event::AppUpdated(e) => {
            out.push(api_post(
                envelope,
                format!("/v2/apps{}", e.app),
                definition(&e.definition, at),
            ));
            if !e.previous.health_checks.is_empty() {
                out.push(("remove_health_check_event", json!({"appId": e.app})));
            }
            health_checks_added(&mut out, &e.app, &e.definition, &version);
        }
        // Scaling events carry the count, not the whole definition.
        Event::AppScaled(e) => out.push(api_post(
            envelope,
            format!("/v2/apps{}", e.app),
            json!({"id": e.app, "instances": e.instances, "version": version}),
        )),
        Event::AppDeleted(e) => out.push(("app_terminated_event", json!({"appId": e.app}))),
        Event::DeploymentStarted(e) => started(&mut out, lookup, &e.deployment, format),
        Event::DeploymentPlanned(e) => started(&mut out, lookup, &e.deployment, format),
        Event::DeploymentStepFinished(e) => {
            if let Some(d) = lookup.deployment(&e.deployment) {
                let plan = plan(&e.deployment, &d, format);
                let done = e.step as usize;
                if let Some(step) = done.checked_sub(1).and_then(|i| d.steps.get(i)) {
                    out.push((
                        "deployment_step_success",
                        json!({"plan": plan, "currentStep": step_json(step)}),
                    ));
                }
                if let Some(next) = d.steps.get(done) {
                    out.push((
                        "deployment_info",
                        json!({"plan": plan, "currentStep": step_json(next)}),
                    ));
                }
            }
        }
        Event::DeploymentFinished(e) => {
            let plan = plan_of(lookup, &e.deployment, format);
            out.push((
                "deployment_success",
                json!({"id": e.deployment, "plan": plan}),
            ));
        }
        Event::DeploymentFailed(e) => {
            let plan = plan_of(lookup, &e.deployment, format);
            out.push((
                "deployment_failed",
                json!({"id": e.deployment, "plan": plan, "reason": e.reason}),
            ));
        }
        Event::TaskLaunchRequested(e) => out.push((
            "instance_changed_event",
            json!({"instanceId": e.task, "condition": condition_name(Condition::Provisioned),
                   "runSpecId": e.app, "agentId": e.agent, "host": e.host,
                   "runSpecVersion": timestamp(e.app_version)}),
        )),
        Event::TaskStatusRecorded(e) => {
            let task = lookup.task(&e.task);
            let run_spec = e.app.clone().unwrap_or_else(|| run_spec_of(&e.task));
            if e.app.is_none() {
                if e.condition.is_terminal() {
                    out.push((
                        "unknown_instance_terminated_event",
                        json!({"instanceId": e.task, "runSpecId": run_spec,
                               "condition": condition_name(e.condition)}),
                    ));
                }
            } else {
                let (host, ports, task_version) = task.as_ref().map_or_else(
                    || (String::new(), Vec::new(), String::new()),
                    |t| (t.host.clone(), t.ports.clone(), timestamp(t.app_version)),
                );
                out.push((
                    "status_update_event",
                    json!({"slaveId": e.agent, "taskId": e.task, "taskStatus": e.mesos_state,
                           "message": e.message.clone().unwrap_or_default(), "appId": run_spec,
                           "host": host, "ipAddresses": [], "ports": ports,
                           "version": task_version}),
                ));
                out.push((
                    "instance_changed_event",
                    json!({"instanceId": e.task, "condition": condition_name(e.condition),
                           "runSpecId": run_spec, "agentId": e.agent, "host": host,
                           "runSpecVersion": task_version}),
                ));
            }
        }
        Event::HealthChanged(e) => {
            let version = lookup
                .task(&e.task)
                .map(|t| timestamp(t.app_version))
                .unwrap_or_default();
            out.push((
                "health_status_changed_event",
                json!({"appId": e.app, "instanceId": e.task, "version": version,
                       "alive": e.healthy}),
            ));
            out.push((
                "instance_health_changed_event",
                json!({"instanceId": e.task, "runSpecId": e.app, "healthy": e.healthy,
                       "runSpecVersion": version}),
            ));
        }
        // Marathon announces only kills for failed health checks.
        Event::TaskKillRequested(e) if e.reason.starts_with(UNHEALTHY_KILL_REASON) => {
            let task = lookup.task(&e.task);
            out.push((
                "unhealthy_instance_kill_event",
                json!({"appId": e.app, "taskId": e.task, "instanceId": e.task,
                       "version": task.as_ref().map(|t| timestamp(t.app_version)).unwrap_or_default(),
                       "reason": e.reason,
                       "host": task.as_ref().map(|t| t.host.clone()).unwrap_or_default(),
                       "slaveId": task.and_then(|t| t.agent)}),
            ));
        }
        // Marathon names the master by its host name alone.
        Event::FrameworkSubscribed(e) => out.push((
            "scheduler_registered_event",
            json!({"frameworkId": e.framework, "master": host_name(&e.master)}),
        )),
        Event::CallbackSubscribed(e) => out.push((
            "subscribe_event",
            json!({"clientIp": client_ip(envelope), "callbackUrl": e.callback_url}),
        )),
        Event::CallbackUnsubscribed(e) => out.push((
            "unsubscribe_event",
            json!({"clientIp": client_ip(envelope), "callbackUrl": e.callback_url}),
        )),
        // Other kills, drains and forgetting are intents Marathon never
        // announced: the status updates that follow are what clients watch.
        // Marathon's DELETE /v2/queue/{app}/delay publishes nothing, and
        // group changes show as the deployment's `group_change_success`.
        Event::TaskKillRequested(_)
        | Event::TaskExpunged(_)
        | Event::TaskDraining(_)
        | Event::LaunchDelayReset(_)
        | Event::GroupUpdated(_)
        | Event::GroupDeleted(_)
        // Marathon's event bus says nothing of elections (`/v2/leader` does).
        | Event::LeaderElected(_) => {}
    }
    for (kind, body) in &mut out {
        if let Value::Object(map) = body {
            stamp(map, kind, at);
        }
    }
    out
}

/// The event Marathon sends first on every `/v2/events` connection.
pub fn stream_attached(remote: &str, now_micros: u64) -> Value {
    let mut map = Map::new();
    map.insert("remoteAddress".into(), json!(remote));
    stamp(&mut map, "event_stream_attached", now_micros);
    Value::Object(map)
}

fn stamp(map: &mut Map<String, Value>, kind: &str, micros: u64) {
    map.insert("eventType".into(), json!(kind));
    map.insert("timestamp".into(), json!(timestamp(micros)));
}

fn api_post(envelope: &Envelope, uri: String, app: Value) -> (&'static str, Value) {
    (
        "api_post_event",
        json!({"clientIp": client_ip(envelope), "uri": uri, "appDefinition": app}),
    )
}

/// Marathon's `add_health_check_event`, one per check of a new version.
fn health_checks_added(
    out: &mut Vec<(&'static str, Value)>,
    app: &AppId,
    spec: &AppSpec,
    version: &str,
) {
    for check in &spec.health_checks {
        out.push((
            "add_health_check_event",
            json!({"appId": app, "version": version, "healthCheck": check}),
        ));
    }
}

/// A deployment starts: the change to the tree is accepted
/// (`group_change_success`) and its first step begins (`deployment_info`).
fn started(
    out: &mut Vec<(&'static str, Value)>,
    lookup: &dyn Lookup,
    id: &DeploymentId,
    format: PlanFormat,
) {
    let Some(deployment) = lookup.deployment(id) else {
        return;
    };
    out.push((
        "group_change_success",
        json!({"groupId": deployment.group, "version": timestamp(deployment.started_at)}),
    ));
    if let Some(first) = deployment.steps.first() {
        out.push((
            "deployment_info",
            json!({"plan": plan(id, &deployment, format), "currentStep": step_json(first)}),
        ));
    }
}

/// The host of a master's URL (MarathonScheduler.scala: `getHostname`).
fn host_name(master: &str) -> String {
    reqwest::Url::parse(master)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| master.to_owned())
}

/// The caller's IP without the port, as Marathon reports it.
fn client_ip(envelope: &Envelope) -> String {
    match &envelope.actor {
        stride_log::event::Actor::Api { remote, .. } => remote
            .rsplit_once(':')
            .map_or(remote.as_str(), |(ip, _)| ip)
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned(),
        _ => String::new(),
    }
}

/// A definition as Marathon's events show an app: its `App` with version.
fn definition(spec: &AppSpec, version: u64) -> Value {
    let mut value = serde_json::to_value(&*spec.0).unwrap_or_else(|_| json!({}));
    value["version"] = json!(timestamp(version));
    value
}

/// Marathon's condition names (core/condition/Condition.scala).
fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::Provisioned => "Provisioned",
        Condition::Staging => "Staging",
        Condition::Starting => "Starting",
        Condition::Running => "Running",
        Condition::Killing => "Killing",
        Condition::Finished => "Finished",
        Condition::Failed => "Failed",
        Condition::Killed => "Killed",
        Condition::Error => "Error",
        Condition::Dropped => "Dropped",
        Condition::Unreachable => "Unreachable",
        Condition::Gone => "Gone",
        Condition::GoneByOperator => "GoneByOperator",
        Condition::Unknown => "Unknown",
    }
}

/// The app a task id names, as Marathon's `Task.Id` parses one: the part
/// before the first dot, underscores for slashes.
fn run_spec_of(task: &TaskId) -> AppId {
    let prefix = task.as_str().split('.').next().unwrap_or_default();
    AppId(format!("/{}", prefix.replace('_', "/")))
}

fn plan_of(lookup: &dyn Lookup, id: &DeploymentId, format: PlanFormat) -> Value {
    match lookup.deployment(id) {
        Some(deployment) => plan(id, &deployment, format),
        // Older than the finished deployments the projection keeps.
        None => json!({"id": id, "steps": [], "version": "",
                       "original": empty_group(), "target": empty_group()}),
    }
}

fn empty_group() -> Value {
    json!({"id": "/", "apps": [], "groups": [], "pods": [], "dependencies": [], "version": ""})
}

/// Marathon's `DeploymentPlan`: `id`, `steps`, `version`, and in full
/// format the tree before (`original`) and after (`target`). Stride's
/// trees hold the part of the tree the deployment changes: its apps and
/// the groups on their way.
fn plan(id: &DeploymentId, deployment: &Deployment, format: PlanFormat) -> Value {
    let mut plan = json!({
        "id": id,
        "steps": steps_json(&deployment.steps),
        "version": timestamp(deployment.started_at),
    });
    if format == PlanFormat::Full {
        plan["original"] = tree(deployment, Side::Before);
        plan["target"] = tree(deployment, Side::After);
    }
    plan
}

#[derive(Clone, Copy)]
enum Side {
    Before,
    After,
}

/// A group tree holding the deployment's apps and groups as they were
/// (`Before`) or will be (`After`).
fn tree(deployment: &Deployment, side: Side) -> Value {
    let version = match side {
        Side::Before => deployment.previous_version,
        Side::After => deployment.started_at,
    };
    let mut groups: BTreeMap<AppId, (Vec<AppId>, Vec<Value>)> = BTreeMap::new();
    groups.insert(AppId::root(), (Vec::new(), Vec::new()));
    for group in &deployment.groups {
        let dependencies = match side {
            Side::Before => &group.before,
            Side::After => &group.after,
        };
        if let Some(dependencies) = dependencies {
            groups.insert(group.group.clone(), (dependencies.clone(), Vec::new()));
        }
    }
    for change in &deployment.apps {
        let app = match side {
            Side::Before => change.before.as_ref().map(|(spec, v)| definition(spec, *v)),
            Side::After => change.after.as_ref().map(|spec| definition(spec, version)),
        };
        if let Some(app) = app {
            let group = groups.entry(change.app.parent()).or_default();
            group.1.push(app);
        }
    }
    group_json(&AppId::root(), &groups, version)
}

fn group_json(
    id: &AppId,
    groups: &BTreeMap<AppId, (Vec<AppId>, Vec<Value>)>,
    version: u64,
) -> Value {
    let (dependencies, apps) = groups.get(id).cloned().unwrap_or_default();
    let children: Vec<Value> = groups
        .keys()
        .filter(|g| !g.is_root() && &g.parent() == id)
        .map(|g| group_json(g, groups, version))
        .collect();
    json!({"id": id, "apps": apps, "groups": children, "pods": [],
           "dependencies": dependencies, "version": timestamp(version)})
}

/// Marathon's `DeploymentStep`s: `{"actions": [{"action", "app"}]}`.
pub fn steps_json(steps: &[DeploymentStep]) -> Value {
    Value::Array(steps.iter().map(step_json).collect())
}

pub fn step_json(step: &DeploymentStep) -> Value {
    let actions: Vec<Value> = step
        .iter()
        .map(|(app, action)| json!({"action": action.marathon_name(), "app": app}))
        .collect();
    json!({ "actions": actions })
}
