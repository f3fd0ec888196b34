//! Every event and call captured from a real Mesos 1.11.0 master
//! (`fixtures/mesos/`) must parse into our types and serialize back to the
//! same JSON, so nothing Stride sends or reads is lost or misspelled.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stride_mesos::types::{
    Call, CallKind, ContainerInfo, ContainerType, DockerNetwork, Event, HealthCheckType, TaskInfo,
    TaskState, VolumeMode,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mesos")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_event_round_trips(original: &Value, origin: &str) -> Event {
    let event: Event = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{origin}: event does not parse: {e}\n{original}"));
    assert!(
        !matches!(event, Event::Unknown(_)),
        "{origin}: a captured event type must be known"
    );
    let back = serde_json::to_value(&event).expect("serialize event");
    assert_eq!(&back, original, "{origin}: event changed in a round trip");
    event
}

fn assert_call_round_trips(original: &Value, origin: &str) -> Call {
    let call: Call = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{origin}: call does not parse: {e}\n{original}"));
    assert!(!matches!(call.kind, CallKind::Unknown(_)), "{origin}");
    let back = serde_json::to_value(&call).expect("serialize call");
    assert_eq!(&back, original, "{origin}: call changed in a round trip");
    call
}

#[test]
fn every_captured_event_file_round_trips() {
    let root = fixtures();
    let dirs = [
        root.join("events"),
        root.join("no-launcher-binaries"),
        root.join("restart-in-memory-registry/events"),
    ];
    let mut count = 0;
    for dir in dirs {
        for path in json_files(&dir) {
            let event = assert_event_round_trips(&read_json(&path), &path.display().to_string());
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            // The file name says the event type and whether a uuid is present.
            assert!(
                name.contains(&format!("--{}", event.type_name()))
                    || name.starts_with(event.type_name()),
                "{name}"
            );
            if let Event::Update(update) = &event {
                assert_eq!(
                    update.status.needs_acknowledgement(),
                    !name.contains("no_uuid"),
                    "{name}"
                );
                assert!(name.contains(update.status.state.as_str()), "{name}");
                assert!(
                    !matches!(update.status.state, TaskState::Other(_)),
                    "{name}"
                );
            }
            count += 1;
        }
    }
    assert!(count >= 45, "only {count} event files found");
}

#[test]
fn every_captured_call_file_round_trips() {
    let root = fixtures();
    let mut count = 0;
    for dir in [
        root.join("calls"),
        root.join("restart-in-memory-registry/calls"),
    ] {
        for path in json_files(&dir) {
            let request = read_json(&path)["request"].clone();
            if path.ends_with("malformed-json.json") {
                // The deliberately broken body is a JSON string, not a call.
                assert!(request.is_string());
                continue;
            }
            let call = assert_call_round_trips(&request, &path.display().to_string());
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !name.contains("stream-id") {
                assert!(name.starts_with(call.kind.type_name()), "{name}");
            }
            count += 1;
        }
    }
    assert!(count >= 25, "only {count} call files found");
}

#[test]
fn every_event_and_call_in_the_transcripts_round_trips() {
    let root = fixtures();
    let mut events = 0;
    let mut calls = 0;
    for transcript in [
        root.join("transcript.jsonl"),
        root.join("restart-in-memory-registry/transcript-restart.jsonl"),
    ] {
        let text = std::fs::read_to_string(&transcript).expect("read transcript");
        for (index, line) in text.lines().enumerate() {
            let record: Value = serde_json::from_str(line).expect("transcript line is JSON");
            let origin = format!("{}:{}", transcript.display(), index + 1);
            match record["kind"].as_str() {
                Some("event") => {
                    assert_event_round_trips(&record["event"], &origin);
                    events += 1;
                }
                Some("call" | "subscribe") => {
                    let body = &record["request"]["body"];
                    if body.is_object() {
                        let call = assert_call_round_trips(body, &origin);
                        let has_stream_id = record["request"]["headers"]
                            .get("Mesos-Stream-Id")
                            .is_some();
                        if matches!(call.kind, CallKind::Subscribe(_)) {
                            assert!(
                                !has_stream_id,
                                "{origin}: SUBSCRIBE never carries a stream id"
                            );
                        }
                        calls += 1;
                    }
                }
                _ => {}
            }
        }
    }
    assert!(
        events >= 60 && calls >= 55,
        "events {events}, calls {calls}"
    );
}

#[test]
fn unknown_event_types_parse_as_unknown() {
    let event: Event =
        serde_json::from_str(r#"{"type":"INVERSE_OFFERS","inverse_offers":{"inverse_offers":[]}}"#)
            .expect("unknown event types are not an error");
    assert_eq!(event, Event::Unknown("INVERSE_OFFERS".to_string()));
    let event: Event = serde_json::from_str(r#"{"type":"SOMETHING_FROM_MESOS_2"}"#).expect("parse");
    assert_eq!(event.type_name(), "SOMETHING_FROM_MESOS_2");
}

#[test]
fn a_known_event_without_its_payload_is_a_clear_error() {
    let err = serde_json::from_str::<Event>(r#"{"type":"OFFERS"}"#).expect_err("no payload");
    assert!(
        err.to_string()
            .contains("OFFERS message has no `offers` payload"),
        "{err}"
    );
}

#[test]
fn unknown_enum_values_are_kept_verbatim() {
    let json = r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_NEW_IN_2030","source":"SOURCE_ELSEWHERE"}}}"#;
    let event: Event = serde_json::from_str(json).expect("parse");
    let Event::Update(update) = &event else {
        panic!("not an update: {event:?}")
    };
    assert_eq!(
        update.status.state,
        TaskState::Other("TASK_NEW_IN_2030".into())
    );
    let back = serde_json::to_string(&event).expect("serialize");
    assert_eq!(
        serde_json::from_str::<Value>(&back).ok(),
        serde_json::from_str::<Value>(json).ok()
    );
}

#[test]
fn a_bad_base64_uuid_is_rejected() {
    let json = r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"not base64!"}}}"#;
    let err = serde_json::from_str::<Event>(json).expect_err("bad base64");
    assert!(err.to_string().contains("invalid base64"), "{err}");
}

/// Nothing in the captures uses containers or health checks over TCP, so
/// this pins their JSON to the field and enum names of `mesos.proto`.
#[test]
fn a_docker_task_uses_the_proto_names() {
    let wire = json!({
        "name": "web",
        "task_id": {"value": "web.1"},
        "agent_id": {"value": "S0"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}}
        ],
        "command": {
            "shell": false,
            "value": "nginx",
            "arguments": ["nginx", "-g", "daemon off;"],
            "environment": {"variables": [{"name": "PORT0", "value": "31000"}]},
            "uris": [{"value": "https://example.com/conf.tgz", "extract": true, "cache": false}]
        },
        "container": {
            "type": "DOCKER",
            "volumes": [{"container_path": "/data", "host_path": "/srv/data", "mode": "RO"}],
            "docker": {
                "image": "nginx:1.27",
                "network": "BRIDGE",
                "port_mappings": [{"host_port": 31000, "container_port": 80, "protocol": "tcp"}],
                "parameters": [{"key": "label", "value": "app=web"}],
                "force_pull_image": true
            }
        },
        "health_check": {
            "type": "TCP",
            "tcp": {"port": 31001},
            "interval_seconds": 10.0,
            "consecutive_failures": 3
        },
        "kill_policy": {"grace_period": {"nanoseconds": 5000000000_i64}},
        "labels": {"labels": [{"key": "owner", "value": "stride"}]}
    });
    let task: TaskInfo = serde_json::from_value(wire.clone()).expect("parse");
    let container = task.container.as_ref().expect("container");
    assert_eq!(container.kind, ContainerType::Docker);
    let docker = container.docker.as_ref().expect("docker");
    assert_eq!(docker.network, Some(DockerNetwork::Bridge));
    assert_eq!(container.volumes[0].mode, VolumeMode::ReadOnly);
    assert_eq!(
        task.health_check.as_ref().map(|h| &h.kind),
        Some(&HealthCheckType::Tcp)
    );
    assert_eq!(serde_json::to_value(&task).expect("serialize"), wire);
}

#[test]
fn a_mesos_container_with_an_image_uses_the_proto_names() {
    let wire = json!({
        "type": "MESOS",
        "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine:3"}, "cached": false}},
        "network_infos": [{"name": "cni-net"}]
    });
    let container: ContainerInfo = serde_json::from_value(wire.clone()).expect("parse");
    assert_eq!(container.kind, ContainerType::Mesos);
    assert_eq!(serde_json::to_value(&container).expect("serialize"), wire);
}

/// Events the captures do not contain, written from `scheduler.proto`.
#[test]
fn uncaptured_event_types_use_the_proto_names() {
    let events = [
        json!({"type": "RESCIND", "rescind": {"offer_id": {"value": "O7"}}}),
        json!({"type": "FAILURE", "failure": {
            "agent_id": {"value": "S0"}, "executor_id": {"value": "e1"}, "status": 137}}),
        json!({"type": "MESSAGE", "message": {
            "agent_id": {"value": "S0"}, "executor_id": {"value": "e1"}, "data": "aGVsbG8="}}),
        json!({"type": "ERROR", "error": {"message": "Framework failed over"}}),
        json!({"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": {
            "operation_id": {"value": "op1"}, "state": "OPERATION_FINISHED",
            "converted_resources": [{"name": "disk", "type": "SCALAR", "scalar": {"value": 10.0}}],
            "uuid": {"value": "AAECAwQFBgcICQoLDA0ODw=="}}}}),
    ];
    for wire in events {
        let event = assert_event_round_trips(&wire, &wire.to_string());
        assert_eq!(wire["type"], event.type_name());
        if let Event::Message(message) = &event {
            assert_eq!(message.data.0, b"hello");
        }
    }
}
