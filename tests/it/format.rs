//! The on-disk format is forever. Golden bytes of a canonical set of events
//! and a store written by every store format (all under `fixtures/`) must keep
//! decoding to the same events; newer formats and damaged records are
//! refused with clear messages.
//!
//! Regenerate the fixtures (only when adding a new format version, never to
//! make a failing test pass): `STRIDE_WRITE_FIXTURES=1 cargo test --test it format::`.

use crate::support::run_stride;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stride_core::projection::{self, snapshot};
use stride_log::codec;
use stride_log::event::app::{AppDefinition, AppSpec};
use stride_log::event::condition::Condition;
use stride_log::event::*;
use stride_log::store::{CommandRecord, EventLog, LogWriter, STORE_FORMAT};
use stride_server::audit::{self, AuditQuery, Bound, Order};
use stride_server::published;
use stride_server::stream::AppMatch;
use uuid::Uuid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn writing_fixtures() -> bool {
    std::env::var_os("STRIDE_WRITE_FIXTURES").is_some()
}

fn web(instances: u32, cmd: &str) -> AppSpec {
    let mut d: AppDefinition = serde_json::from_value(serde_json::json!({
        "id": "/prod/web",
        "cmd": cmd,
        "env": {"MODE": "prod"},
        "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": 10000, "name": "http"}],
        // Format 1 stored the grace period it defaulted to.
        "taskKillGracePeriodSeconds": 3
    }))
    .unwrap();
    d.instances = instances;
    AppSpec::new(d)
}

/// The kinds the format-1 fixtures hold; later kinds have their own records.
const FORMAT_1_KINDS: usize = 14;

/// One event of every kind of format 1, with fixed ids and times.
fn canonical() -> Vec<Arc<Envelope>> {
    let app = AppId::from("/prod/web");
    let task = TaskId::from("prod_web.00000000-0000-0000-0000-000000000001");
    let deployment = DeploymentId(Uuid::from_u128(0xd));
    let events = vec![
        Event::AppCreated(AppCreated {
            app: app.clone(),
            definition: web(2, "serve"),
        }),
        Event::DeploymentStarted(DeploymentStarted {
            deployment,
            app: app.clone(),
            kind: DeploymentKind::Create,
            steps: 1,
        }),
        Event::FrameworkSubscribed(FrameworkSubscribed {
            framework: FrameworkId::from("fw-1"),
            master: "http://127.0.0.1:5050".into(),
        }),
        Event::TaskLaunchRequested(TaskLaunchRequested {
            task: task.clone(),
            app: app.clone(),
            app_version: 1_700_000_000_000_000,
            agent: AgentId::from("agent-S0"),
            host: "localhost".into(),
            ports: vec![31000, 31001],
            offer: "offer-1".into(),
        }),
        Event::TaskStatusRecorded(TaskStatusRecorded {
            task: task.clone(),
            app: Some(app.clone()),
            condition: Condition::Running,
            mesos_state: "TASK_RUNNING".into(),
            reason: None,
            message: Some("started".into()),
            agent: Some(AgentId::from("agent-S0")),
            healthy: Some(true),
            status_uuid: Some(vec![1, 2, 3, 4]),
            mesos_timestamp: Some(1_700_000_000_500_000),
        }),
        Event::HealthChanged(HealthChanged {
            task: task.clone(),
            app: app.clone(),
            healthy: false,
            cause: Some("HTTP 500".into()),
        }),
        Event::DeploymentStepFinished(DeploymentStepFinished {
            deployment,
            app: app.clone(),
            step: 1,
        }),
        Event::DeploymentFinished(DeploymentFinished {
            deployment,
            app: app.clone(),
        }),
        Event::AppUpdated(AppUpdated {
            app: app.clone(),
            previous: web(2, "serve"),
            definition: web(2, "serve --v2"),
        }),
        Event::AppScaled(AppScaled {
            app: app.clone(),
            previous: 2,
            instances: 3,
        }),
        Event::DeploymentFailed(DeploymentFailed {
            deployment,
            app: app.clone(),
            reason: "superseded".into(),
        }),
        Event::TaskKillRequested(TaskKillRequested {
            task: task.clone(),
            app: app.clone(),
            reason: "scale down".into(),
        }),
        Event::TaskExpunged(TaskExpunged {
            task,
            app: app.clone(),
        }),
        Event::AppDeleted(AppDeleted { app }),
    ];
    assert_eq!(
        events.len(),
        FORMAT_1_KINDS,
        "one canonical event per kind of format 1"
    );
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let actor = match i % 3 {
                0 => Actor::Api {
                    principal: "alice".into(),
                    remote: "10.0.0.1:4242".into(),
                },
                1 => Actor::Reconciler,
                _ => Actor::Mesos,
            };
            Arc::new(Envelope {
                seq: Seq(i as u64 + 1),
                id: Uuid::from_u128(0x1000 + i as u128),
                recorded_at: 1_700_000_000_000_000 + i as u64 * 1_000,
                actor,
                command_id: Uuid::from_u128(0x2000 + i as u128 / 2),
                event,
            })
        })
        .collect()
}

/// Records as `u32 BE length, bytes`, in seq order.
fn golden_bytes(events: &[Arc<Envelope>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let record = codec::encode(e).unwrap();
        out.extend_from_slice(&(record.len() as u32).to_be_bytes());
        out.extend_from_slice(&record);
    }
    out
}

/// The records of golden bytes, decoded as seqs 1, 2, ...
fn decode_golden(golden: &[u8]) -> Vec<Envelope> {
    let mut rest = golden;
    let mut decoded = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let seq = Seq(decoded.len() as u64 + 1);
        decoded.push(codec::decode(seq, &rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    decoded
}

/// A record without its framing (format byte, and checksum since record
/// format 2): what must encode alike whatever the record format.
fn body(record: &[u8]) -> &[u8] {
    match record[0] {
        1 => &record[1..],
        _ => &record[5..],
    }
}

#[test]
fn golden_bytes_of_record_format_1_still_decode_to_the_canonical_events() {
    let golden = std::fs::read(fixtures().join("codec/events-v1.bin"))
        .expect("fixtures/codec/events-v1.bin");
    let expected: Vec<Envelope> = canonical().iter().map(|e| (**e).clone()).collect();
    assert_eq!(decode_golden(&golden), expected);
    let mut rest = &golden[..];
    for event in canonical() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(
            body(&codec::encode(&event).unwrap()),
            body(&rest[4..4 + len]),
            "encoding of seq {} changed: add a migration step instead",
            event.seq
        );
        rest = &rest[4 + len..];
    }
}

#[test]
fn golden_bytes_of_record_format_2_decode_and_encode_alike() {
    let path = fixtures().join("codec/events-record-v2.bin");
    let events = canonical();
    if writing_fixtures() && !path.exists() {
        std::fs::write(&path, golden_bytes(&events)).unwrap();
    }
    let golden = std::fs::read(&path).expect("fixtures/codec/events-record-v2.bin");
    let expected: Vec<Envelope> = events.iter().map(|e| (**e).clone()).collect();
    assert_eq!(decode_golden(&golden), expected);
    assert_eq!(
        golden_bytes(&events),
        golden,
        "encoding changed: add a migration step instead"
    );
}

/// One event of each kind added since the format-1 fixtures, with fixed ids
/// and times. A new kind adds its event here and its record under
/// `fixtures/codec/` (written once by `STRIDE_WRITE_FIXTURES=1`).
fn added_since_format_1() -> Vec<Envelope> {
    let events = [
        Event::LaunchDelayReset(LaunchDelayReset {
            app: AppId::from("/prod/web"),
        }),
        Event::CallbackSubscribed(CallbackSubscribed {
            callback_url: "http://hooks.example:8000/stride".into(),
        }),
        Event::CallbackUnsubscribed(CallbackUnsubscribed {
            callback_url: "http://hooks.example:8000/stride".into(),
        }),
        Event::TaskDraining(TaskDraining {
            task: TaskId::from("prod_web.0196f7a2-0000-7000-8000-000000000001"),
            app: AppId::from("/prod/web"),
            reason: "scaled down to 2 instances".into(),
        }),
        Event::DeploymentPlanned(DeploymentPlanned {
            deployment: DeploymentId(Uuid::from_u128(0xe)),
            kind: DeploymentKind::Group,
            app: AppId::from("/prod"),
            group: AppId::from("/prod"),
            steps: vec![
                vec![(AppId::from("/prod/web"), DeploymentAction::Start)],
                vec![(AppId::from("/prod/db"), DeploymentAction::Scale)],
                vec![(AppId::from("/prod/web"), DeploymentAction::Scale)],
            ],
        }),
        Event::GroupUpdated(GroupUpdated {
            group: AppId::from("/prod"),
            dependencies: vec![AppId::from("/infra")],
        }),
        Event::GroupDeleted(GroupDeleted {
            group: AppId::from("/prod"),
        }),
        Event::LeaderElected(LeaderElected {
            epoch: 7,
            instance: "stride-2".into(),
            url: "http://10.0.0.2:8080".into(),
        }),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Envelope {
            seq: Seq(FORMAT_1_KINDS as u64 + i as u64 + 1),
            id: Uuid::from_u128(0x3000 + i as u128),
            recorded_at: 1_700_000_100_000_000 + i as u64 * 1_000,
            actor: Actor::Api {
                principal: "bob".into(),
                remote: "10.0.0.2:4242".into(),
            },
            command_id: Uuid::from_u128(0x4000 + i as u128),
            event,
        })
        .collect()
}

#[test]
fn kinds_added_since_format_1_have_golden_records_too() {
    let added = added_since_format_1();
    assert_eq!(
        FORMAT_1_KINDS + added.len(),
        Kind::ALL.len(),
        "a new kind needs a golden record in added_since_format_1()"
    );
    for envelope in added {
        let kind = envelope.event.kind();
        let name = format!(
            "codec/kind-{}-v{}.bin",
            kind.number(),
            kind.current_version()
        );
        let path = fixtures().join(&name);
        if writing_fixtures() && !path.exists() {
            std::fs::write(&path, codec::encode(&envelope).unwrap()).unwrap();
        }
        let golden = std::fs::read(&path).expect(&name);
        assert_eq!(codec::decode(envelope.seq, &golden).unwrap(), envelope);
        assert_eq!(
            body(&codec::encode(&envelope).unwrap()),
            body(&golden),
            "encoding of {kind:?} changed: add a migration step instead"
        );
    }
}

/// Stream subscribers (the LB sidecar) fold `/v1/stream` JSON with the
/// projection's `apply`, so every kind must read back from its JSON intact.
#[test]
fn every_kind_reads_back_from_its_stream_json() {
    let all = canonical()
        .into_iter()
        .map(|e| (*e).clone())
        .chain(added_since_format_1());
    let mut kinds = std::collections::BTreeSet::new();
    for envelope in all {
        let json = stride_log::event::json::envelope_json(&envelope);
        let back = stride_log::event::json::envelope_from_json(&json)
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, envelope);
        kinds.insert(envelope.event.kind());
    }
    assert_eq!(kinds.len(), Kind::ALL.len());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the fixture store written by store format `format` (sled
/// writes on open). Only the current format's can be (re)written.
fn fixture_store(format: u32) -> tempfile::TempDir {
    let fixture = fixtures().join(format!("store-v{format}"));
    if writing_fixtures() && format == STORE_FORMAT && !fixture.exists() {
        let log = LogWriter::open(&fixture).unwrap();
        let events = canonical();
        log.append(
            &events[..6],
            &[(
                "retry-1".into(),
                CommandRecord {
                    command_id: events[0].command_id,
                    first: Seq(1),
                    last: Seq(2),
                    request: Some([0x5a; 32]),
                },
            )],
        )
        .unwrap();
        log.append(&events[6..], &[]).unwrap();
        let at_ten = published::load(&log, Some(Seq(10))).unwrap();
        log.put_snapshot(Seq(10), &snapshot::encode(&at_ten).unwrap())
            .unwrap();
        log.sync().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    dir
}

/// Audit answers (seqs) that exercise every index, windows that start and
/// end inside a batch, and both orders.
fn audit_answers(log: &EventLog) -> Vec<Vec<u64>> {
    let head = log.head().unwrap();
    let at = |seq: u64| log.get(Seq(seq)).unwrap().unwrap().recorded_at;
    let query = |edit: &dyn Fn(&mut AuditQuery)| {
        let mut query = AuditQuery::default();
        edit(&mut query);
        query
    };
    let queries = [
        query(&|q| q.app = Some(AppMatch::Exact("/prod/web".into()))),
        query(&|q| {
            q.app = Some(AppMatch::Prefix("/prod/".into()));
            q.order = Order::Desc;
        }),
        query(&|q| q.actor = Some("api:alice".into())),
        query(&|q| {
            q.actor = Some("mesos".into());
            q.order = Order::Desc;
            q.limit = 2;
        }),
        query(&|q| q.types = [Kind::AppCreated, Kind::TaskStatusRecorded].into()),
        query(&|q| q.task = Some("prod_web.00000000-0000-0000-0000-000000000001".into())),
        query(&|q| {
            q.since = Some(Bound::Time(at(3)));
            q.until = Some(Bound::Time(at(9) + 1));
        }),
        query(&|q| {
            q.since = Some(Bound::Seq(Seq(4)));
            q.until = Some(Bound::Time(at(12)));
            q.order = Order::Desc;
            q.limit = 3;
        }),
    ];
    queries
        .into_iter()
        .map(|mut query| {
            let mut seqs = Vec::new();
            loop {
                let page = audit::run(log, head, &query).unwrap();
                seqs.extend(page.events.iter().map(|e| e.seq.0));
                match page.next {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break seqs,
                }
            }
        })
        .collect()
}

#[test]
fn stores_written_by_every_format_open_verify_and_answer_audits_alike() {
    let mut answers = Vec::new();
    for format in 1..=STORE_FORMAT {
        let dir = fixture_store(format);
        {
            let log = EventLog::open(dir.path()).unwrap();
            let stored: Vec<Envelope> = log.iter_from(Seq(1)).map(Result::unwrap).collect();
            let expected: Vec<Envelope> = canonical().iter().map(|e| (**e).clone()).collect();
            assert_eq!(stored, expected, "format {format}");
            let record = log.idempotency_record("retry-1").unwrap().unwrap();
            assert_eq!((record.first, record.last), (Seq(1), Seq(2)));
            // Requests are digested since store format 3.
            assert_eq!(record.request.is_some(), format >= 3, "format {format}");
            assert_eq!(log.snapshot_seqs().unwrap(), vec![Seq(10)]);
            let mut replayed = projection::State::default();
            for e in &stored {
                replayed.apply(e);
            }
            assert_eq!(published::load(&log, None).unwrap(), replayed);
            answers.push(audit_answers(&log));
        }
        let (ok, stdout, stderr) = run_stride(&[
            "store",
            "verify",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(ok, "format {format}: {stdout}{stderr}");
        assert!(
            stdout.contains("14 records, head 14, 1 snapshots checked"),
            "{stdout}"
        );
    }
    assert!(
        answers[0].iter().all(|seqs| !seqs.is_empty()),
        "{answers:?}"
    );
    for later in &answers[1..] {
        assert_eq!(later, &answers[0]);
    }
}

#[test]
fn an_older_store_is_marked_with_the_new_format_and_keeps_growing_in_it() {
    let dir = fixture_store(1);
    let log = LogWriter::open(dir.path()).unwrap();
    // The same events again, appended in the current format after the old.
    let again: Vec<Arc<Envelope>> = canonical()
        .iter()
        .map(|e| {
            let mut e = (**e).clone();
            e.seq = Seq(e.seq.0 + 14);
            e.recorded_at += 1_000_000_000;
            Arc::new(e)
        })
        .collect();
    log.append(&again, &[]).unwrap();
    log.sync().unwrap();
    let report = stride_server::verify::verify(&log).unwrap();
    assert!(report.is_ok(), "{:?}", report.report);
    let query = AuditQuery {
        app: Some(AppMatch::Exact("/prod/web".into())),
        limit: 1000,
        ..AuditQuery::default()
    };
    let page = audit::run(&log, Seq(28), &query).unwrap();
    let seqs: Vec<u64> = page.events.iter().map(|e| e.seq.0).collect();
    let once: Vec<u64> = canonical()
        .iter()
        .filter(|e| e.event.app().is_some_and(|a| a.as_str() == "/prod/web"))
        .map(|e| e.seq.0)
        .collect();
    let twice: Vec<u64> = once
        .iter()
        .copied()
        .chain(once.iter().map(|s| s + 14))
        .collect();
    assert_eq!(seqs, twice);
    drop(log);
    let db = reopen_raw(dir.path());
    let format = db
        .open_tree("meta")
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap();
    assert_eq!(format.as_ref(), STORE_FORMAT.to_be_bytes());
}

/// The snapshot an older store kept in its `snapshots` tree: the bytes of
/// the newest complete one, read raw.
fn snapshot_in_tree(db: &sled::Db) -> (u64, Vec<u8>) {
    let tree = db.open_tree("snapshots").unwrap();
    let (marker, count) = tree
        .iter()
        .map(Result::unwrap)
        .rfind(|(key, _)| key.len() == 12 && key[8..] == [0xff; 4])
        .expect("the fixture has a snapshot");
    let seq = u64::from_be_bytes(marker[..8].try_into().unwrap());
    let count = u32::from_be_bytes(count[..4].try_into().unwrap());
    let bytes = (0..count)
        .flat_map(|chunk| {
            let mut key = marker[..8].to_vec();
            key.extend_from_slice(&chunk.to_be_bytes());
            tree.get(key).unwrap().unwrap().to_vec()
        })
        .collect();
    (seq, bytes)
}

/// Store step m0001: an older store's newest snapshot moves from sled's
/// `snapshots` tree to a file; the tree is dropped.
#[test]
fn opening_an_older_store_moves_its_snapshot_out_of_sled_into_a_file() {
    for format in 1..STORE_FORMAT {
        let dir = fixture_store(format);
        let (seq, bytes) = snapshot_in_tree(&reopen_raw(dir.path()));
        assert_eq!(seq, 10);
        let log = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.snapshot_seqs().unwrap(), vec![Seq(10)]);
        assert_eq!(log.snapshot(Seq(10)).unwrap().unwrap(), bytes);
        let file = dir.path().join("snapshots/snap-00000000000000000010.bin");
        assert!(file.is_file(), "format {format}");
        drop(log);
        let db = reopen_raw(dir.path());
        assert!(
            !db.tree_names().iter().any(|name| name == b"snapshots"),
            "format {format}: the snapshots tree is still there"
        );
    }
}

#[test]
fn a_store_from_a_newer_format_is_refused_naming_both_versions() {
    let dir = fixture_store(1);
    {
        let db = reopen_raw(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("format", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let error = EventLog::open(dir.path())
        .err()
        .expect("refused")
        .to_string();
    let ours = format!("format {STORE_FORMAT}");
    assert!(
        error.contains("format 99") && error.contains(&ours),
        "{error}"
    );
    let data_dir = dir.path().to_str().unwrap();
    let (ok, _, stderr) = run_stride(&["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    assert!(!ok);
    assert!(
        stderr.contains("format 99") && stderr.contains(&ours),
        "{stderr}"
    );
    let (ok, _, stderr) = run_stride(&["store", "verify", "--data-dir", data_dir]);
    assert!(!ok && stderr.contains("format 99"), "{stderr}");
}

#[test]
fn a_record_from_a_newer_payload_version_or_unknown_kind_is_named() {
    // Record format 1 has no checksum, so its header can be edited.
    let mut record = vec![1u8];
    record.extend_from_slice(&codec::encode(&canonical()[0]).unwrap()[5..]);
    let mut newer = record.clone();
    newer[3..5].copy_from_slice(&2u16.to_be_bytes());
    let error = codec::decode(Seq(5), &newer).unwrap_err().to_string();
    assert!(
        error.contains("record 5") && error.contains("version 2"),
        "{error}"
    );
    let mut unknown = record;
    unknown[1..3].copy_from_slice(&999u16.to_be_bytes());
    let error = codec::decode(Seq(6), &unknown).unwrap_err().to_string();
    assert!(
        error.contains("record 6") && error.contains("999"),
        "{error}"
    );
}

/// sled's background thread may hold the file lock for a moment after the
/// previous handle in this process is dropped.
fn reopen_raw(path: &Path) -> sled::Db {
    for _ in 0..100 {
        if let Ok(db) = sled::open(path) {
            return db;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sled::open(path).expect("sled reopens")
}

/// Damages record 5 of a store with no snapshot (so serve must read it).
fn damaged_store(damage: impl Fn(Vec<u8>) -> Vec<u8>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = LogWriter::open(dir.path()).unwrap();
    log.append(&canonical(), &[]).unwrap();
    log.sync().unwrap();
    drop(log);
    let db = reopen_raw(dir.path());
    let events = db.open_tree("events").unwrap();
    let key = 5u64.to_be_bytes();
    let record = events.get(key).unwrap().unwrap().to_vec();
    events.insert(key, damage(record)).unwrap();
    db.flush().unwrap();
    dir
}

#[test]
fn damaged_records_are_reported_by_verify_and_refused_by_serve() {
    let truncated = |r: Vec<u8>| r[..r.len() / 2].to_vec();
    let flipped = |mut r: Vec<u8>| {
        let n = r.len();
        r[n - 3] ^= 0xff;
        r[n - 2] ^= 0xff;
        r.push(0x7f);
        r
    };
    let header_only = |r: Vec<u8>| r[..3].to_vec();
    for (name, dir) in [
        ("truncated", damaged_store(truncated)),
        ("corrupted", damaged_store(flipped)),
        ("header cut", damaged_store(header_only)),
    ] {
        let data_dir = dir.path().to_str().unwrap();
        let (ok, stdout, stderr) = run_stride(&["store", "verify", "--data-dir", data_dir]);
        assert!(!ok, "{name}: verify must fail");
        assert!(stdout.contains("record 5"), "{name}: {stdout}");
        assert!(stderr.contains("problems found"), "{name}: {stderr}");
        let (ok, _, stderr) =
            run_stride(&["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir]);
        assert!(!ok, "{name}: serve must refuse");
        assert!(
            stderr.contains("record 5") && stderr.contains("stride store restore"),
            "{name}: {stderr}"
        );
    }
}
