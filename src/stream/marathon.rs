//! Stride events as Marathon's `/v2/events` shows them: an `eventType`, a
//! `timestamp` and that type's fields (see the Marathon event bus docs).
//!
//! The mapping is a pure function of one envelope, so a resumed stream shows
//! the same thing as a live one. Events Marathon has no word for map to
//! `None` and are not sent. The match is exhaustive on purpose: a new event
//! variant must decide what Marathon clients see.

use crate::event::json::timestamp;
use crate::event::{DeploymentId, DeploymentKind, Envelope, Event};
use serde_json::{Map, Value, json};

/// The Marathon event type and body for `envelope`, if Marathon has one.
pub fn marathon_event(envelope: &Envelope) -> Option<(&'static str, Value)> {
    let (kind, mut body) = match &envelope.event {
        Event::AppCreated(e) => api_post(envelope, "/v2/apps".into(), definition(&e.definition)),
        Event::AppUpdated(e) => api_post(
            envelope,
            format!("/v2/apps{}", e.app),
            definition(&e.definition),
        ),
        // Scaling events carry the count, not the whole definition.
        Event::AppScaled(e) => api_post(
            envelope,
            format!("/v2/apps{}", e.app),
            json!({"id": e.app, "instances": e.instances}),
        ),
        Event::AppDeleted(e) => ("app_terminated_event", json!({"appId": e.app})),
        Event::DeploymentStarted(e) => {
            let plan = plan(envelope, &e.deployment, e.app.as_str(), Some(e.kind));
            let step = plan["steps"][0].clone();
            (
                "deployment_info",
                json!({"plan": plan, "currentStep": step}),
            )
        }
        Event::DeploymentStepFinished(e) => {
            let plan = plan(envelope, &e.deployment, e.app.as_str(), None);
            let step = plan["steps"][0].clone();
            (
                "deployment_step_success",
                json!({"plan": plan, "currentStep": step}),
            )
        }
        Event::DeploymentFinished(e) => (
            "deployment_success",
            json!({"id": e.deployment, "plan": plan(envelope, &e.deployment, e.app.as_str(), None)}),
        ),
        Event::DeploymentFailed(e) => (
            "deployment_failed",
            json!({"id": e.deployment, "reason": e.reason,
                   "plan": plan(envelope, &e.deployment, e.app.as_str(), None)}),
        ),
        Event::TaskLaunchRequested(e) => (
            "instance_changed_event",
            json!({"instanceId": e.task, "condition": "Provisioned", "runSpecId": e.app,
                   "runSpecVersion": timestamp(e.app_version), "agentId": e.agent,
                   "host": e.host}),
        ),
        Event::TaskStatusRecorded(e) => (
            "status_update_event",
            json!({"taskId": e.task, "appId": e.app, "taskStatus": e.mesos_state,
                   "message": e.message.clone().unwrap_or_default(), "slaveId": e.agent,
                   "host": "", "ipAddresses": [], "ports": [], "version": ""}),
        ),
        Event::HealthChanged(e) => (
            "health_status_changed_event",
            json!({"appId": e.app, "instanceId": e.task, "taskId": e.task,
                   "alive": e.healthy, "version": ""}),
        ),
        Event::FrameworkSubscribed(e) => (
            "scheduler_registered_event",
            json!({"frameworkId": e.framework, "master": e.master}),
        ),
        Event::CallbackSubscribed(e) => (
            "subscribe_event",
            json!({"clientIp": client_ip(envelope), "callbackUrl": e.callback_url}),
        ),
        Event::CallbackUnsubscribed(e) => (
            "unsubscribe_event",
            json!({"clientIp": client_ip(envelope), "callbackUrl": e.callback_url}),
        ),
        // Intents Marathon never announced; the status updates that follow
        // them are what its clients watch.
        Event::TaskKillRequested(_) | Event::TaskExpunged(_) | Event::TaskDraining(_) => {
            return None;
        }
        // Marathon's DELETE /v2/queue/{app}/delay publishes nothing.
        Event::LaunchDelayReset(_) => return None,
    };
    if let Value::Object(map) = &mut body {
        stamp(map, kind, envelope.recorded_at);
    }
    Some((kind, body))
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

/// The caller's IP without the port, as Marathon reports it.
fn client_ip(envelope: &Envelope) -> String {
    match &envelope.actor {
        crate::event::Actor::Api { remote, .. } => remote
            .rsplit_once(':')
            .map_or(remote.as_str(), |(ip, _)| ip)
            .to_owned(),
        _ => String::new(),
    }
}

fn definition(spec: &crate::event::app::AppSpec) -> Value {
    serde_json::to_value(&*spec.0).unwrap_or_else(|_| json!({}))
}

/// Marathon's "light" plan: one step with one action on the app. The action
/// is known where the deployment starts; later events name only the app.
fn plan(
    envelope: &Envelope,
    deployment: &DeploymentId,
    app: &str,
    kind: Option<DeploymentKind>,
) -> Value {
    let mut action = json!({"app": app});
    if let Some(kind) = kind {
        action["action"] = json!(match kind {
            DeploymentKind::Create => "StartApplication",
            DeploymentKind::Scale => "ScaleApplication",
            DeploymentKind::Delete => "StopApplication",
            DeploymentKind::Update | DeploymentKind::Restart | DeploymentKind::Rollback => {
                "RestartApplication"
            }
        });
    }
    json!({
        "id": deployment,
        "steps": [{"actions": [action]}],
        "version": timestamp(envelope.recorded_at),
    })
}
