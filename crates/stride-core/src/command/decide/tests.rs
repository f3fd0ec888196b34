use super::decide;
use crate::command::{Command, PortRange, Rejection, RejectionKind, Settings, TaskSelection};
use crate::event::app::AppDefinition;
use crate::event::{Actor, AppId, DeploymentId, Envelope, Event, Seq, TaskLaunchRequested};
use crate::projection::State;
use serde_json::json;
use uuid::Uuid;

struct World {
    state: State,
    settings: Settings,
}

impl World {
    fn new() -> World {
        World {
            state: State::default(),
            settings: Settings {
                service_ports: PortRange {
                    first: 10_000,
                    last: 10_002,
                },
            },
        }
    }

    fn try_run(&mut self, command: Command) -> Result<Vec<Event>, Rejection> {
        let events = decide(&self.state, &self.settings, &command, Uuid::now_v7())?;
        for event in &events {
            self.record(event.clone());
        }
        Ok(events)
    }

    fn record(&mut self, event: Event) {
        let seq = self.state.seq.next();
        self.state.apply(&Envelope {
            seq,
            id: Uuid::now_v7(),
            recorded_at: seq.0 * 1_000,
            actor: Actor::Reconciler,
            command_id: Uuid::nil(),
            event,
        });
    }

    fn run(&mut self, command: Command) -> Vec<Event> {
        self.try_run(command).expect("accepted")
    }

    fn definition(&self, id: &str) -> AppDefinition {
        (*self.state.apps[&AppId::from(id)].definition).clone()
    }
}

/// A definition from JSON; one that names nothing to run gets a command,
/// as Marathon requires one.
fn app(mut body: serde_json::Value) -> AppDefinition {
    let runs = ["cmd", "args", "container"]
        .iter()
        .any(|field| body.get(field).is_some());
    if !runs {
        body["cmd"] = json!("sleep 1000");
    }
    serde_json::from_value(body).expect("a valid shape")
}

fn create(body: serde_json::Value) -> Command {
    Command::CreateApp(app(body))
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

fn deployment_of(events: &[Event]) -> DeploymentId {
    events
        .iter()
        .find_map(|e| match e {
            Event::DeploymentPlanned(d) => Some(d.deployment),
            _ => None,
        })
        .expect("a deployment started")
}

#[test]
fn port_zero_gets_the_lowest_free_service_port() {
    let mut world = World::new();
    world.run(create(
        json!({"id": "/a", "portDefinitions": [{"port": 0}, {"port": 10000}]}),
    ));
    let ports: Vec<u32> = world
        .definition("/a")
        .port_definitions
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [10001, 10000]);
    world.run(create(
        json!({"id": "/b", "portDefinitions": [{"port": 0}]}),
    ));
    assert_eq!(world.definition("/b").port_definitions[0].port, 10002);
    let exhausted = world
        .try_run(create(
            json!({"id": "/c", "portDefinitions": [{"port": 0}]}),
        ))
        .unwrap_err();
    assert_eq!(exhausted.details[0].path, "/portDefinitions/0/port");
}

#[test]
fn a_service_port_another_app_uses_is_rejected_with_its_path() {
    let mut world = World::new();
    world.run(create(
        json!({"id": "/a", "portDefinitions": [{"port": 12345}]}),
    ));
    let rejection = world
        .try_run(create(json!({
            "id": "/b", "container": {"docker": {"image": "nginx", "network": "BRIDGE"},
            "portMappings": [{"containerPort": 80, "servicePort": 12345}]}
        })))
        .unwrap_err();
    assert_eq!(rejection.kind, RejectionKind::Invalid);
    assert_eq!(
        rejection.details[0].path,
        "/container/portMappings/0/servicePort"
    );
    // The app keeps its own port across an update.
    world.run(Command::UpdateApp {
        definition: app(json!({"id": "/a", "portDefinitions": [{"port": 12345}], "cmd": "run"})),
        force: true,
    });
}

#[test]
fn a_running_deployment_locks_the_app_unless_forced() {
    let mut world = World::new();
    world.run(create(json!({"id": "/a"})));
    let scale = |force| Command::PatchApp {
        app: AppId::from("/a"),
        patch: json!({"instances": 3})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        force,
        create: false,
    };
    assert_eq!(
        world.try_run(scale(false)).unwrap_err().kind,
        RejectionKind::Conflict
    );
    let events = world.run(scale(true));
    assert_eq!(
        names(&events),
        ["DeploymentFailed", "AppScaled", "DeploymentPlanned"]
    );
    assert_eq!(world.definition("/a").instances, 3);
}

#[test]
fn patch_merges_fields_into_the_current_definition() {
    let mut world = World::new();
    world.run(create(json!({"id": "/a", "cmd": "sleep 1", "mem": 64})));
    let patch = json!({"mem": 256, "labels": {"team": "web"}});
    world.run(Command::PatchApp {
        app: AppId::from("/a"),
        patch: patch.as_object().cloned().unwrap_or_default(),
        force: true,
        create: false,
    });
    let definition = world.definition("/a");
    assert_eq!(
        (definition.mem, definition.cmd.as_deref()),
        (256.0, Some("sleep 1"))
    );
    assert_eq!(definition.labels["team"], "web");
    let bad = json!({"cpus": "lots"});
    let rejection = world
        .try_run(Command::PatchApp {
            app: AppId::from("/a"),
            patch: bad.as_object().cloned().unwrap_or_default(),
            force: true,
            create: false,
        })
        .unwrap_err();
    assert_eq!(rejection.details[0].path, "/cpus");
}

#[test]
fn restart_deploys_a_new_version_of_the_same_definition() {
    let mut world = World::new();
    world.run(create(json!({"id": "/a"})));
    let before = world.definition("/a");
    let events = world.run(Command::RestartApp {
        app: AppId::from("/a"),
        force: true,
    });
    assert_eq!(
        names(&events),
        ["DeploymentFailed", "AppUpdated", "DeploymentPlanned"]
    );
    assert_eq!(world.definition("/a"), before);
    assert_eq!(world.state.apps[&AppId::from("/a")].versions.len(), 2);
}

#[test]
fn cancelling_rolls_back_to_the_previous_version_or_just_stops() {
    let mut world = World::new();
    let created = world.run(create(json!({"id": "/a", "mem": 64})));
    let update = world.run(Command::UpdateApp {
        definition: app(json!({"id": "/a", "mem": 512})),
        force: true,
    });
    let events = world.run(Command::CancelDeployment {
        deployment: deployment_of(&update),
        force: false,
    });
    assert_eq!(
        names(&events),
        ["DeploymentFailed", "AppUpdated", "DeploymentPlanned"]
    );
    assert_eq!(world.definition("/a").mem, 64.0);
    let rollback = deployment_of(&events);
    let events = world.run(Command::CancelDeployment {
        deployment: rollback,
        force: true,
    });
    assert_eq!(names(&events), ["DeploymentFailed"]);
    assert!(world.state.deployments.is_empty());
    let gone = world
        .try_run(Command::CancelDeployment {
            deployment: deployment_of(&created),
            force: true,
        })
        .unwrap_err();
    assert_eq!(gone.kind, RejectionKind::NotFound);
}

#[test]
fn cancelling_a_create_deletes_the_app() {
    let mut world = World::new();
    let created = world.run(create(json!({"id": "/a"})));
    world.run(Command::CancelDeployment {
        deployment: deployment_of(&created),
        force: false,
    });
    assert!(world.state.apps.is_empty());
}

#[test]
fn killing_an_unknown_task_is_not_found_and_a_delay_reset_needs_the_app() {
    let mut world = World::new();
    world.run(create(json!({"id": "/a"})));
    let kill = world
        .try_run(Command::KillTasks {
            app: AppId::from("/a"),
            which: TaskSelection::One("a.1".into()),
            scale: true,
            force: false,
        })
        .unwrap_err();
    assert_eq!(kill.kind, RejectionKind::NotFound);
    let reset = world.run(Command::ResetLaunchDelay {
        app: AppId::from("/a"),
    });
    assert_eq!(names(&reset), ["LaunchDelayReset"]);
    let missing = world
        .try_run(Command::ResetLaunchDelay {
            app: AppId::from("/nope"),
        })
        .unwrap_err();
    assert_eq!(missing.kind, RejectionKind::NotFound);
    assert_eq!(world.state.seq, Seq(3));
}

#[test]
fn killing_all_tasks_on_a_host_with_scale_shrinks_the_app_by_as_many() {
    let mut world = World::new();
    world.run(create(json!({"id": "/a", "instances": 3})));
    for (task, host) in [("a.1", "h1"), ("a.2", "h1"), ("a.3", "h2")] {
        world.record(Event::TaskLaunchRequested(TaskLaunchRequested {
            task: task.into(),
            app: "/a".into(),
            app_version: 0,
            agent: "agent".into(),
            host: host.to_owned(),
            ports: Vec::new(),
            offer: "offer".to_owned(),
        }));
    }
    let events = world.run(Command::KillTasks {
        app: AppId::from("/a"),
        which: TaskSelection::All {
            host: Some("h1".to_owned()),
        },
        scale: true,
        force: true,
    });
    assert_eq!(
        names(&events),
        [
            "TaskKillRequested",
            "TaskKillRequested",
            "DeploymentFailed",
            "AppScaled",
            "DeploymentPlanned"
        ]
    );
    assert_eq!(world.definition("/a").instances, 1);
    let none = world.run(Command::KillTasks {
        app: AppId::from("/a"),
        which: TaskSelection::All {
            host: Some("h9".to_owned()),
        },
        scale: true,
        force: false,
    });
    assert!(none.is_empty(), "nothing to kill locks nothing");
}

#[test]
fn a_rollback_onto_a_service_port_taken_since_is_rejected() {
    let mut world = World::new();
    world.run(create(
        json!({"id": "/a", "portDefinitions": [{"port": 10000}]}),
    ));
    let update = world.run(Command::UpdateApp {
        definition: app(json!({"id": "/a", "portDefinitions": [{"port": 10001}]})),
        force: true,
    });
    world.run(create(
        json!({"id": "/b", "portDefinitions": [{"port": 10000}]}),
    ));
    let rejection = world
        .try_run(Command::CancelDeployment {
            deployment: deployment_of(&update),
            force: false,
        })
        .unwrap_err();
    assert_eq!(rejection.kind, RejectionKind::Invalid);
    assert_eq!(rejection.details[0].path, "/portDefinitions/0/port");
}
