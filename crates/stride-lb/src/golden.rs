//! Golden tests: what a version-1 follower reads (`fixtures/protocol/`)
//! must still be what Stride writes, field for field (new fields may be
//! added), and what Stride wrote must still read here.
//!
//! The fixtures are written once, when missing, by
//! `STRIDE_WRITE_FIXTURES=1 cargo test -p stride-lb golden`, and never again: a
//! failure means a change would break a follower already deployed.

use crate::event::app::AppSpec;
use crate::event::condition::Condition;
use crate::event::*;
use crate::model::{Selection, desired};
use crate::projection::{State, TasksOfApp};
use crate::protocol::stream::MessageError;
use crate::protocol::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// Events of every type the LB sidecar follows, with fixed ids and times.
fn events() -> Vec<Arc<Envelope>> {
    let web = |instances: u32, cmd: &str| -> AppSpec {
        serde_json::from_value(json!({
            "id": "/prod/web", "cmd": cmd, "instances": instances,
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example"},
            "portDefinitions": [{"port": 10000, "name": "http"}],
            "healthChecks": [{"protocol": "HTTP", "path": "/health"}]
        }))
        .expect("a definition")
    };
    let api: AppSpec = serde_json::from_value(json!({
        "id": "/prod/api", "cmd": "api", "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": 10001}]
    }))
    .expect("a definition");
    let launched = |task: &str, app: &str, port: u32| {
        Event::TaskLaunchRequested(TaskLaunchRequested {
            task: TaskId::from(task),
            app: AppId::from(app),
            app_version: 1_700_000_000_000_001,
            agent: AgentId::from("agent-1"),
            host: "10.0.0.7".into(),
            ports: vec![port],
            offer: "offer-1".into(),
        })
    };
    let running = |task: &str, app: &str| {
        Event::TaskStatusRecorded(TaskStatusRecorded {
            task: TaskId::from(task),
            app: Some(AppId::from(app)),
            condition: Condition::Running,
            mesos_state: "TASK_RUNNING".into(),
            reason: None,
            message: Some("running".into()),
            agent: Some(AgentId::from("agent-1")),
            healthy: None,
            status_uuid: Some(vec![1, 2, 3]),
            mesos_timestamp: Some(1_700_000_000_500_000),
        })
    };
    let events = [
        Event::AppCreated(AppCreated {
            app: AppId::from("/prod/web"),
            definition: web(2, "serve v1"),
        }),
        Event::AppCreated(AppCreated {
            app: AppId::from("/prod/api"),
            definition: api,
        }),
        launched("prod_web.1", "/prod/web", 31001),
        launched("prod_web.2", "/prod/web", 31002),
        launched("prod_api.1", "/prod/api", 31003),
        running("prod_web.1", "/prod/web"),
        running("prod_web.2", "/prod/web"),
        Event::HealthChanged(HealthChanged {
            task: TaskId::from("prod_web.1"),
            app: AppId::from("/prod/web"),
            healthy: true,
            cause: None,
        }),
        Event::TaskDraining(TaskDraining {
            task: TaskId::from("prod_web.2"),
            app: AppId::from("/prod/web"),
            reason: "scaled down".into(),
        }),
        // The state fixture is the state here, after the events above.
        Event::AppScaled(AppScaled {
            app: AppId::from("/prod/web"),
            previous: 2,
            instances: 1,
        }),
        Event::TaskKillRequested(TaskKillRequested {
            task: TaskId::from("prod_web.2"),
            app: AppId::from("/prod/web"),
            reason: "scaled down".into(),
        }),
        Event::TaskExpunged(TaskExpunged {
            task: TaskId::from("prod_web.2"),
            app: AppId::from("/prod/web"),
        }),
        running("prod_api.1", "/prod/api"),
        Event::AppUpdated(AppUpdated {
            app: AppId::from("/prod/web"),
            previous: web(1, "serve v1"),
            definition: web(1, "serve v2"),
        }),
        Event::AppDeleted(AppDeleted {
            app: AppId::from("/prod/api"),
        }),
    ];
    events
        .into_iter()
        .zip(1u64..)
        .map(|(event, seq)| {
            let actor = match &event {
                Event::AppCreated(_) | Event::AppUpdated(_) | Event::AppScaled(_) => Actor::Api {
                    principal: "alice".into(),
                    remote: "10.1.2.3:5555".into(),
                },
                Event::AppDeleted(_) | Event::TaskKillRequested(_) => Actor::Reconciler,
                _ => Actor::Mesos,
            };
            Arc::new(Envelope {
                seq: Seq(seq),
                id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + seq as u128),
                recorded_at: 1_700_000_000_000_000 + seq * 1_000,
                actor,
                command_id: uuid::Uuid::from_u128(
                    0x0190_0000_0000_7000_9000_0000_0000_0000 + seq as u128,
                ),
                event,
            })
        })
        .collect()
}

/// How many of `events()` the state fixture holds.
const IN_STATE: usize = 9;

fn fold(events: &[Arc<Envelope>], mut state: State) -> State {
    for envelope in events {
        state.apply(envelope);
    }
    state
}

/// The server messages of version 1: every event above, then the control
/// messages.
fn server_messages() -> Vec<ServerMessage> {
    let mut messages: Vec<ServerMessage> = events().into_iter().map(ServerMessage::Event).collect();
    messages.extend([
        ServerMessage::Progress {
            seq: Seq(15),
            head: Seq(20),
        },
        ServerMessage::Error(StreamError {
            error: ErrorCode::FromBeyondHead,
            message: "from 99 is beyond the head of the log (20) + 1".into(),
            head: Some(Seq(20)),
        }),
        ServerMessage::Error(StreamError {
            error: ErrorCode::Internal,
            message: "cannot read the log".into(),
            head: None,
        }),
    ]);
    messages
}

fn client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello {
            name: "haproxy@lb1".into(),
            drain_confirmation: true,
        },
        ClientMessage::Applied { seq: Seq(42) },
    ]
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/protocol")
        .join(name)
}

/// The fixture's JSON values (one per line for `.jsonl`); written from
/// `current` first if missing and `STRIDE_WRITE_FIXTURES` is set.
fn golden(name: &str, current: &[Value]) -> Vec<Value> {
    let path = fixture(name);
    if !path.exists() && std::env::var_os("STRIDE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        let text = match current {
            [one] if !name.ends_with(".jsonl") => {
                serde_json::to_string_pretty(one).expect("JSON") + "\n"
            }
            _ => current.iter().map(|v| format!("{v}\n")).collect(),
        };
        std::fs::write(&path, text).expect("write the fixture");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (STRIDE_WRITE_FIXTURES=1 writes it)",
            path.display()
        )
    });
    if name.ends_with(".jsonl") {
        text.lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    } else {
        vec![serde_json::from_str(&text).expect("JSON")]
    }
}

/// Whether `current` says everything `golden` says: every field with the
/// same value, recursively; `current` may have more fields.
fn covers(current: &Value, golden: &Value, path: &str) -> Result<(), String> {
    match (current, golden) {
        (Value::Object(current), Value::Object(golden)) => {
            for (key, expected) in golden {
                let path = format!("{path}/{key}");
                let actual = current.get(key).ok_or(format!("{path} is gone"))?;
                covers(actual, expected, &path)?;
            }
            Ok(())
        }
        (Value::Array(current), Value::Array(golden)) if current.len() == golden.len() => current
            .iter()
            .zip(golden)
            .enumerate()
            .try_for_each(|(i, (c, g))| covers(c, g, &format!("{path}/{i}"))),
        _ if current == golden => Ok(()),
        _ => Err(format!("{path} was {golden}, is {current}")),
    }
}

fn to_value(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

#[test]
fn the_server_still_writes_every_v1_message() {
    let current: Vec<Value> = server_messages()
        .iter()
        .map(|m| to_value(&m.to_text()))
        .collect();
    let golden = golden("server-messages-v1.jsonl", &current);
    assert_eq!(current.len(), golden.len());
    for (current, golden) in current.iter().zip(&golden) {
        if let Err(change) = covers(current, golden, "") {
            panic!("a v1 follower reads {golden} and would break: {change}");
        }
    }
    // And the hub's rendering of an event is the message's.
    let first = &events()[0];
    assert_eq!(
        to_value(&stream::event_text(first)),
        to_value(&ServerMessage::Event(first.clone()).to_text())
    );
}

#[test]
fn every_v1_server_message_still_reads_as_typed_and_as_json() {
    let expected = server_messages();
    let current: Vec<Value> = expected.iter().map(|m| to_value(&m.to_text())).collect();
    for (golden, expected) in golden("server-messages-v1.jsonl", &current)
        .iter()
        .zip(&expected)
    {
        let typed = ServerMessage::parse(&golden.to_string()).expect("reads");
        assert_eq!(&typed, expected);
        let loose = ServerMessage::<Value>::parse(&golden.to_string()).expect("reads");
        if let ServerMessage::Event(event) = loose {
            assert_eq!(&event, golden);
        }
    }
}

#[test]
fn messages_of_a_newer_server_are_told_apart() {
    let unknown = ServerMessage::<Value>::parse(r#"{"type":"heartbeat","seq":3}"#);
    assert!(matches!(unknown, Err(MessageError::Unknown(kind)) if kind == "heartbeat"));
    let code =
        ServerMessage::<Value>::parse(r#"{"type":"error","error":"overloaded","message":"m"}"#);
    assert!(matches!(
        code,
        Ok(ServerMessage::Error(StreamError {
            error: ErrorCode::Other,
            ..
        }))
    ));
    // A newer event type: as JSON it prints; typed it is refused, saying so.
    let event = r#"{"type":"TaskTeleported","seq":9}"#;
    assert!(matches!(
        ServerMessage::<Value>::parse(event),
        Ok(ServerMessage::Event(_))
    ));
    assert!(matches!(
        ServerMessage::<Arc<Envelope>>::parse(event),
        Err(MessageError::Event(_))
    ));
    for bad in ["hello", "{}", r#"{"type":"progress","seq":"x"}"#] {
        assert!(ServerMessage::<Value>::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn client_messages_are_exactly_v1() {
    let current: Vec<Value> = client_messages()
        .iter()
        .map(|m| to_value(&m.to_text()))
        .collect();
    let golden = golden("client-messages-v1.jsonl", &current);
    // The server reads these from sidecars already deployed: exactly.
    assert_eq!(current, golden);
    for (golden, expected) in golden.iter().zip(client_messages()) {
        let read: ClientMessage = serde_json::from_value(golden.clone()).expect("reads");
        assert_eq!(read, expected);
    }
    let without_flag: ClientMessage =
        serde_json::from_str(r#"{"type":"hello","name":"lb"}"#).expect("reads");
    assert_eq!(
        without_flag,
        ClientMessage::Hello {
            name: "lb".into(),
            drain_confirmation: false
        }
    );
    for other in [
        r#"{"type":"applied","seq":-1}"#,
        r#"{"type":"bye"}"#,
        "hello",
    ] {
        assert!(
            serde_json::from_str::<ClientMessage>(other).is_err(),
            "{other}"
        );
    }
}

fn state_document() -> Value {
    let state = fold(&events()[..IN_STATE], State::default());
    serde_json::to_value(StateDocument::of(&state)).expect("JSON")
}

#[test]
fn the_server_still_writes_the_v1_state_document() {
    let current = state_document();
    let golden = golden("state-v1.json", std::slice::from_ref(&current)).remove(0);
    assert_eq!(golden["version"], 1);
    if let Err(change) = covers(&current, &golden, "") {
        panic!("a v1 sidecar would break: {change}");
    }
}

/// A sidecar that read the v1 document (of an older server, say) and folds
/// the rest of the stream into it serves what one that folded the whole
/// log serves.
#[test]
fn an_older_servers_state_still_folds() {
    let golden = golden("state-v1.json", &[state_document()]).remove(0);
    let document: StateDocument = serde_json::from_value(golden).expect("reads");
    let read = document.into_state().expect("version 1");
    let all = events();
    let followed = fold(&all[IN_STATE..], read);
    let replayed = fold(&all, State::default());
    let selection = Selection {
        group: "external".into(),
        http_port: 80,
    };
    assert_eq!(
        desired(&followed, &selection),
        desired(&replayed, &selection)
    );
    assert!(!desired(&replayed, &selection).backends.is_empty());
    assert_eq!(StateDocument::of(&followed), StateDocument::of(&replayed));
    assert_eq!(followed.service_ports, replayed.service_ports);
    // The document leaves out what followers do not read (status uuids),
    // so the index is compared by ids.
    let by_app = |state: &State| -> Vec<(AppId, Vec<TaskId>)> {
        let ids = |tasks: &TasksOfApp| tasks.keys().cloned().collect();
        state
            .tasks_by_app
            .iter()
            .map(|(app, tasks)| (app.clone(), ids(tasks)))
            .collect()
    };
    assert_eq!(by_app(&followed), by_app(&replayed));
}

#[test]
fn state_documents_of_other_versions_are_refused_and_new_conditions_read_as_unknown() {
    let mut golden = golden("state-v1.json", &[state_document()]).remove(0);
    golden["state"]["tasks"]["prod_web.1"]["condition"] = json!("Hibernating");
    golden["state"]["tasks"]["prod_web.1"]["newerField"] = json!(true);
    let document: StateDocument = serde_json::from_value(golden.clone()).expect("reads");
    let state = document.into_state().expect("version 1");
    assert_eq!(
        state.tasks[&TaskId::from("prod_web.1")].condition,
        Condition::Unknown
    );
    golden["version"] = json!(2);
    let document: StateDocument = serde_json::from_value(golden).expect("reads");
    let refused = document.into_state().expect_err("version 2");
    assert!(refused.to_string().contains("version 2"), "{refused}");
}
