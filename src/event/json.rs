//! The JSON shape of an envelope, as the API, the stream and `store export`
//! show it: `seq`, `id`, `at`, `actor`, `type`, then the event's own fields.

use super::{Actor, Envelope};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

pub fn envelope_json(envelope: &Envelope) -> Value {
    let mut object = Map::new();
    object.insert("seq".into(), json!(envelope.seq.0));
    object.insert("id".into(), json!(envelope.id));
    object.insert("at".into(), json!(timestamp(envelope.recorded_at)));
    object.insert("actor".into(), actor_json(&envelope.actor));
    object.insert("commandId".into(), json!(envelope.command_id));
    object.insert("type".into(), json!(envelope.event.type_name()));
    // Externally tagged: {"AppCreated": {...fields}}; lift the fields up.
    if let Ok(Value::Object(tagged)) = serde_json::to_value(&envelope.event) {
        if let Some((_, Value::Object(fields))) = tagged.into_iter().next() {
            for (key, value) in fields {
                object.entry(key).or_insert(value);
            }
        }
    }
    Value::Object(object)
}

pub fn actor_json(actor: &Actor) -> Value {
    match actor {
        Actor::Api { principal, remote } => {
            json!({"kind": "api", "principal": principal, "remote": remote})
        }
        Actor::Reconciler => json!({"kind": "reconciler"}),
        Actor::Mesos => json!({"kind": "mesos"}),
    }
}

/// RFC 3339 in UTC with microseconds, the precision versions are kept in.
pub fn timestamp(micros: u64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}
