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

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeJsonError {
    #[error("the envelope has no {0} field of the right type")]
    Missing(&'static str),
    #[error("'{0}' is not an RFC 3339 time")]
    BadTime(String),
    #[error("unknown actor {0}")]
    BadActor(Value),
    #[error("the fields of a {kind} event do not decode")]
    BadEvent {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The envelope `envelope_json` rendered, read back. What a stream
/// subscriber uses to fold events with the projection's own `apply`.
pub fn envelope_from_json(value: &Value) -> Result<Envelope, EnvelopeJsonError> {
    use EnvelopeJsonError::Missing;
    let object = value.as_object().ok_or(Missing("object"))?;
    let field = |name: &'static str| object.get(name).ok_or(Missing(name));
    let seq = field("seq")?.as_u64().ok_or(Missing("seq"))?;
    let at = field("at")?.as_str().ok_or(Missing("at"))?;
    let recorded_at = DateTime::parse_from_rfc3339(at)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_micros()).ok())
        .ok_or_else(|| EnvelopeJsonError::BadTime(at.to_owned()))?;
    let uuid = |name: &'static str| {
        field(name).and_then(|v| serde_json::from_value(v.clone()).map_err(|_| Missing(name)))
    };
    let kind = field("type")?.as_str().ok_or(Missing("type"))?;
    // The event's own fields are every key the envelope did not add.
    let fields: Map<String, Value> = object
        .iter()
        .filter(|(key, _)| !ENVELOPE_KEYS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let tagged = Value::Object(Map::from_iter([(kind.to_owned(), Value::Object(fields))]));
    let event = serde_json::from_value(tagged).map_err(|source| EnvelopeJsonError::BadEvent {
        kind: kind.to_owned(),
        source,
    })?;
    Ok(Envelope {
        seq: super::Seq(seq),
        id: uuid("id")?,
        recorded_at,
        actor: actor_from_json(field("actor")?)?,
        command_id: uuid("commandId")?,
        event,
    })
}

/// The keys `envelope_json` puts around an event's own fields.
const ENVELOPE_KEYS: [&str; 6] = ["seq", "id", "at", "actor", "commandId", "type"];

fn actor_from_json(value: &Value) -> Result<Actor, EnvelopeJsonError> {
    let text = |name: &str| value[name].as_str().map(str::to_owned);
    match value["kind"].as_str() {
        Some("api") => match (text("principal"), text("remote")) {
            (Some(principal), Some(remote)) => Ok(Actor::Api { principal, remote }),
            _ => Err(EnvelopeJsonError::BadActor(value.clone())),
        },
        Some("reconciler") => Ok(Actor::Reconciler),
        Some("mesos") => Ok(Actor::Mesos),
        _ => Err(EnvelopeJsonError::BadActor(value.clone())),
    }
}
