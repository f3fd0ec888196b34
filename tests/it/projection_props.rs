//! The projection is a pure fold: applying events as they arrive, replaying
//! them from the log, and starting from a snapshot at any point then
//! replaying the tail all give the same state.

use imbl::{OrdMap, OrdSet};
use proptest::prelude::*;
use std::sync::Arc;
use stride_core::projection::{State, snapshot};
use stride_log::event::app::{AppDefinition, AppSpec};
use stride_log::event::condition::Condition;
use stride_log::event::*;
use stride_log::store::LogWriter;
use stride_server::published;
use uuid::Uuid;

fn app_id() -> impl Strategy<Value = AppId> {
    prop::sample::select(vec!["/a", "/b", "/prod/web"]).prop_map(AppId::from)
}

fn group_id() -> impl Strategy<Value = AppId> {
    prop::sample::select(vec!["/", "/prod", "/prod/db", "/x"]).prop_map(AppId::from)
}

fn task_id() -> impl Strategy<Value = TaskId> {
    prop::sample::select(vec!["a.1", "a.2", "b.1", "web.1"]).prop_map(TaskId::from)
}

fn definition() -> impl Strategy<Value = AppSpec> {
    let port = prop::sample::select(vec![0u32, 10_000, 10_001]);
    (app_id(), 0u32..10, prop::option::of("[a-z ]{0,12}"), port).prop_map(
        |(id, instances, cmd, port)| {
            let mut d: AppDefinition = serde_json::from_value(
                serde_json::json!({"id": id.0, "portDefinitions": [{"port": port}]}),
            )
            .unwrap();
            d.instances = instances;
            d.cmd = cmd;
            AppSpec::new(d)
        },
    )
}

fn condition() -> impl Strategy<Value = Condition> {
    prop::sample::select(vec![
        Condition::Staging,
        Condition::Running,
        Condition::Killing,
        Condition::Finished,
        Condition::Failed,
        Condition::Unreachable,
        Condition::Unknown,
    ])
}

fn deployment() -> impl Strategy<Value = DeploymentId> {
    (0u128..3).prop_map(|n| DeploymentId(Uuid::from_u128(n)))
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        definition().prop_map(|d| Event::AppCreated(AppCreated {
            app: d.id.clone(),
            definition: d
        })),
        (definition(), definition()).prop_map(|(previous, d)| Event::AppUpdated(AppUpdated {
            app: d.id.clone(),
            previous,
            definition: d
        })),
        (app_id(), 0u32..5, 0u32..5).prop_map(|(app, previous, instances)| Event::AppScaled(
            AppScaled {
                app,
                previous,
                instances
            }
        )),
        app_id().prop_map(|app| Event::AppDeleted(AppDeleted { app })),
        (deployment(), app_id(), 1u32..3).prop_map(|(deployment, app, steps)| {
            Event::DeploymentStarted(DeploymentStarted {
                deployment,
                app,
                kind: DeploymentKind::Scale,
                steps,
            })
        }),
        (deployment(), app_id(), app_id()).prop_map(|(deployment, first, second)| {
            Event::DeploymentPlanned(DeploymentPlanned {
                deployment,
                kind: DeploymentKind::Group,
                app: AppId::root(),
                group: AppId::root(),
                steps: vec![
                    vec![(first, DeploymentAction::Start)],
                    vec![(second, DeploymentAction::Scale)],
                ],
            })
        }),
        (group_id(), prop::collection::vec(app_id(), 0..2)).prop_map(|(group, dependencies)| {
            Event::GroupUpdated(GroupUpdated {
                group,
                dependencies,
            })
        }),
        group_id().prop_map(|group| Event::GroupDeleted(GroupDeleted { group })),
        (deployment(), app_id(), 0u32..3).prop_map(|(deployment, app, step)| {
            Event::DeploymentStepFinished(DeploymentStepFinished {
                deployment,
                app,
                step,
            })
        }),
        (deployment(), app_id()).prop_map(|(deployment, app)| Event::DeploymentFinished(
            DeploymentFinished { deployment, app }
        )),
        (deployment(), app_id()).prop_map(|(deployment, app)| Event::DeploymentFailed(
            DeploymentFailed {
                deployment,
                app,
                reason: "x".into()
            }
        )),
        (
            task_id(),
            app_id(),
            prop::collection::vec(1u32..65535, 0..3)
        )
            .prop_map(|(task, app, ports)| {
                Event::TaskLaunchRequested(TaskLaunchRequested {
                    task,
                    app,
                    app_version: 7,
                    agent: AgentId::from("agent-1"),
                    host: "localhost".into(),
                    ports,
                    offer: "offer-1".into(),
                })
            }),
        (
            task_id(),
            prop::option::of(app_id()),
            condition(),
            prop::option::of(any::<bool>()),
            prop::option::of(prop::collection::vec(any::<u8>(), 16))
        )
            .prop_map(|(task, app, condition, healthy, status_uuid)| {
                Event::TaskStatusRecorded(TaskStatusRecorded {
                    task,
                    app,
                    condition,
                    mesos_state: "TASK_RUNNING".into(),
                    reason: None,
                    message: Some("m".into()),
                    agent: None,
                    healthy,
                    status_uuid,
                    mesos_timestamp: Some(1),
                })
            }),
        (task_id(), app_id()).prop_map(|(task, app)| Event::TaskKillRequested(TaskKillRequested {
            task,
            app,
            reason: "scale".into()
        })),
        (task_id(), app_id())
            .prop_map(|(task, app)| Event::TaskExpunged(TaskExpunged { task, app })),
        (task_id(), app_id(), any::<bool>()).prop_map(|(task, app, healthy)| Event::HealthChanged(
            HealthChanged {
                task,
                app,
                healthy,
                cause: None
            }
        )),
        "[a-z0-9-]{1,8}".prop_map(|f| Event::FrameworkSubscribed(FrameworkSubscribed {
            framework: FrameworkId(f),
            master: "http://m".into()
        })),
    ]
}

fn envelopes(events: Vec<Event>) -> Vec<Arc<Envelope>> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            Arc::new(Envelope {
                seq: Seq(i as u64 + 1),
                id: Uuid::now_v7(),
                recorded_at: 1_000 + i as u64 / 2,
                actor: Actor::Reconciler,
                command_id: Uuid::from_u128(i as u128 / 3),
                event,
            })
        })
        .collect()
}

/// Who declares which service port, worked out from the apps themselves.
fn claimed_ports(state: &State) -> OrdMap<u32, OrdSet<AppId>> {
    let mut claimed: OrdMap<u32, OrdSet<AppId>> = OrdMap::new();
    for (id, app) in &state.apps {
        for (_, port) in app.definition.service_ports() {
            if port != 0 {
                claimed.entry(port).or_default().insert(id.clone());
            }
        }
    }
    claimed
}

/// Each app's deployments, worked out from the deployments themselves.
fn deployments_by_app(state: &State) -> OrdMap<AppId, OrdSet<DeploymentId>> {
    let mut by_app: OrdMap<AppId, OrdSet<DeploymentId>> = OrdMap::new();
    for (id, deployment) in &state.deployments {
        for app in deployment.affected() {
            by_app.entry(app.clone()).or_default().insert(*id);
        }
    }
    by_app
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_replay_and_snapshot_plus_tail_agree(
        events in prop::collection::vec(event(), 0..60),
        cut in any::<prop::sample::Index>(),
    ) {
        let envelopes = envelopes(events);
        let mut incremental = State::default();
        let mut at_cut = None;
        let cut = if envelopes.is_empty() { 0 } else { cut.index(envelopes.len() + 1) };
        for (i, e) in envelopes.iter().enumerate() {
            if i == cut { at_cut = Some(incremental.clone()); }
            incremental.apply(e);
        }
        let at_cut = at_cut.unwrap_or_else(|| incremental.clone());
        prop_assert_eq!(&incremental.service_ports, &claimed_ports(&incremental));
        prop_assert_eq!(&incremental.deployments_by_app, &deployments_by_app(&incremental));

        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path()).unwrap();
        // Appended in uneven batches, as group commit would.
        for chunk in envelopes.chunks(7) {
            log.append(chunk, &[]).unwrap();
        }
        log.sync().unwrap();
        let replayed = published::load(&log, None).unwrap();
        prop_assert_eq!(&replayed, &incremental);

        let bytes = snapshot::encode(&at_cut).unwrap();
        prop_assert_eq!(&snapshot::decode(&bytes).unwrap(), &at_cut);
        log.put_snapshot(at_cut.seq, &bytes).unwrap();
        let from_snapshot = published::load(&log, None).unwrap();
        prop_assert_eq!(&from_snapshot, &incremental);
        // And as of the cut itself, rebuilt from that snapshot.
        let as_of_cut = published::load(&log, Some(at_cut.seq)).unwrap();
        prop_assert_eq!(&as_of_cut, &at_cut);
    }
}
