//! Planner scenarios (table-driven where they share a shape) and property
//! tests of its safety.

use super::{Agents, Drain, Plan, PlanInput, RejectReason, plan};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use stride_core::command::{Command, Settings, TaskStatus, decide};
use stride_core::projection::State;
use stride_log::event::app::AppDefinition;
use stride_log::event::condition::Condition;
use stride_log::event::{Actor, AgentId, AppId, Envelope, Event, Seq, TaskId};
use stride_mesos::types::{
    AgentId as MesosAgentId, Attribute, FrameworkId, Offer, OfferId, Resource, ValueRange,
    ValueText, ValueType,
};
use uuid::Uuid;

const S: u64 = 1_000_000;

/// A state built through the real `decide` and `apply`, at a clock the
/// test moves.
#[derive(Debug, Clone)]
struct World {
    state: State,
    now: u64,
    drain: Drain,
    passed: HashSet<TaskId>,
}

impl World {
    fn new() -> World {
        World {
            state: State::default(),
            now: 1_000 * S,
            drain: Drain::default(),
            passed: HashSet::new(),
        }
    }

    fn run(&mut self, command: Command) -> Vec<Event> {
        let events = decide(&self.state, &Settings::default(), &command, Uuid::now_v7())
            .unwrap_or_else(|r| panic!("{command:?} rejected: {r:?}"));
        for event in &events {
            self.now += 1;
            let seq: Seq = self.state.seq.next();
            self.state.apply(&Envelope {
                seq,
                id: Uuid::now_v7(),
                recorded_at: self.now,
                actor: Actor::Reconciler,
                command_id: Uuid::nil(),
                event: event.clone(),
            });
        }
        events
    }

    /// Creates an app; one that names nothing to run gets a command, as
    /// Marathon requires one.
    fn create(&mut self, mut body: Value) {
        if ["cmd", "args", "container"]
            .iter()
            .all(|f| body.get(f).is_none())
        {
            body["cmd"] = Value::from("sleep 1000");
        }
        let definition: AppDefinition = serde_json::from_value(body).expect("a definition");
        self.run(Command::CreateApp(definition));
    }

    fn scale(&mut self, app: &str, instances: u32) {
        let patch = serde_json::json!({ "instances": instances });
        self.run(Command::PatchApp {
            app: AppId::from(app),
            patch: patch.as_object().cloned().unwrap_or_default(),
            force: true,
            create: false,
        });
    }

    fn plan(&self, offers: &[Offer]) -> Plan {
        let mut agents = Agents::default();
        offers.iter().for_each(|o| agents.learn(o));
        self.plan_with(offers, &agents)
    }

    fn plan_with(&self, offers: &[Offer], agents: &Agents) -> Plan {
        plan(&PlanInput {
            state: &self.state,
            offers,
            agents,
            now: self.now,
            drain: self.drain,
            passed_readiness: &self.passed,
        })
    }

    /// Records the plan as the executor would.
    fn record(&mut self, plan: &Plan) -> Vec<Event> {
        self.run(Command::RecordPlan(plan.intents()))
    }

    /// Launches what the offers allow and reports every task in `condition`.
    fn launch(&mut self, offers: &[Offer], condition: Condition) -> Vec<TaskId> {
        let plan = self.plan(offers);
        self.record(&plan);
        let tasks: Vec<TaskId> = plan
            .launches
            .iter()
            .map(|l| l.intent.task.clone())
            .collect();
        for task in &tasks {
            self.report(task, condition);
        }
        tasks
    }

    fn report(&mut self, task: &TaskId, condition: Condition) {
        self.run(Command::RecordTaskStatus(TaskStatus {
            task: task.clone(),
            condition,
            mesos_state: format!("{condition:?}"),
            reason: None,
            message: None,
            agent: None,
            healthy: None,
            uuid: Some(Uuid::now_v7().as_bytes().to_vec()),
            timestamp: None,
        }));
    }

    fn tasks_of(&self, app: &str) -> Vec<TaskId> {
        let app = AppId::from(app);
        self.state
            .tasks_of(&app)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn offer(id: &str, agent: &str, cpus: f64, mem: f64, ports: (u64, u64)) -> Offer {
    Offer {
        id: OfferId::new(id),
        framework_id: FrameworkId::new("f"),
        agent_id: MesosAgentId::new(agent),
        hostname: format!("host-{agent}"),
        url: None,
        resources: vec![
            Resource::scalar("cpus", cpus),
            Resource::scalar("mem", mem),
            Resource::ranges(
                "ports",
                vec![ValueRange {
                    begin: ports.0,
                    end: ports.1,
                }],
            ),
        ],
        attributes: Vec::new(),
        executor_ids: Vec::new(),
        allocation_info: None,
    }
}

fn with_attribute(mut offer: Offer, name: &str, value: &str) -> Offer {
    offer.attributes.push(Attribute {
        name: name.to_owned(),
        kind: ValueType::Text,
        scalar: None,
        ranges: None,
        set: None,
        text: Some(ValueText {
            value: value.to_owned(),
        }),
    });
    offer
}

fn app(id: &str, instances: u32) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "instances": instances, "cpus": 0.5, "mem": 64,
        "portDefinitions": [{"port": 0}]})
}

fn launched_on(plan: &Plan) -> Vec<&str> {
    plan.launches
        .iter()
        .map(|l| l.offer.value.as_str())
        .collect()
}

#[test]
fn launches_what_is_missing_with_distinct_ports_from_the_offer() {
    let mut world = World::new();
    world.create(app("/web", 3));
    let plan = world.plan(&[offer("o1", "a1", 4.0, 1024.0, (31000, 31010))]);
    assert_eq!(launched_on(&plan), ["o1", "o1", "o1"]);
    let ports: Vec<u32> = plan
        .launches
        .iter()
        .flat_map(|l| l.intent.ports.clone())
        .collect();
    assert_eq!(ports, [31000, 31001, 31002]);
    assert!(plan.declines.is_empty() && plan.waiting.is_empty());
    assert!(!plan.wants_offers());
    let cpus: f64 = plan.launches[0]
        .resources
        .iter()
        .filter(|r| r.name == "cpus")
        .map(|r| r.scalar.unwrap().value)
        .sum();
    assert_eq!(cpus, 0.5);
}

#[test]
fn waits_with_the_reason_each_offer_gave() {
    // (offers, the app, the reason)
    let cases: Vec<(Vec<Offer>, Value, Option<RejectReason>)> = vec![
        (vec![], app("/a", 1), None),
        (
            vec![offer("o1", "a1", 0.1, 1024.0, (31000, 31010))],
            app("/a", 1),
            Some(RejectReason::InsufficientCpus),
        ),
        (
            vec![offer("o1", "a1", 4.0, 10.0, (31000, 31010))],
            app("/a", 1),
            Some(RejectReason::InsufficientMemory),
        ),
        (
            vec![offer("o1", "a1", 4.0, 1024.0, (31000, 31000))],
            json!({"id": "/a", "cmd": "run", "cpus": 0.1, "mem": 8,
                   "portDefinitions": [{"port": 0}, {"port": 0}]}),
            Some(RejectReason::InsufficientPorts),
        ),
        (
            vec![offer("o1", "a1", 4.0, 1024.0, (31000, 31010))],
            json!({"id": "/a", "cmd": "run", "cpus": 0.1, "mem": 8, "requirePorts": true,
                   "portDefinitions": [{"port": 10500}]}),
            Some(RejectReason::InsufficientPorts),
        ),
        (
            vec![offer("o1", "a1", 4.0, 1024.0, (31000, 31010))],
            json!({"id": "/a", "cmd": "run", "cpus": 0.1, "mem": 8,
                   "constraints": [["rack", "IS", "r1"]]}),
            Some(RejectReason::UnfulfilledConstraint),
        ),
    ];
    for (offers, body, reason) in cases {
        let mut world = World::new();
        world.create(body.clone());
        let plan = world.plan(&offers);
        assert!(plan.launches.is_empty(), "{body}");
        let waiting = &plan.waiting[&AppId::from("/a")];
        assert_eq!(waiting.count, 1);
        assert_eq!(waiting.rejections.keys().next().copied(), reason, "{body}");
        assert_eq!(plan.declines.len(), offers.len(), "unused offers go back");
        let because: Vec<_> = plan.unused_because.clone().into_iter().collect();
        let expected: Vec<_> = reason.map(|r| (Some(r), 1)).into_iter().collect();
        assert_eq!(because, expected, "{body}");
        assert!(plan.wants_offers());
    }
}

#[test]
fn a_port_a_live_task_holds_is_never_booked_again_even_if_offered() {
    let mut world = World::new();
    world.create(json!({"id": "/fixed", "cmd": "run", "cpus": 0.1, "mem": 8,
        "requirePorts": true, "portDefinitions": [{"port": 31005}]}));
    let offers = [offer("o1", "a1", 4.0, 1024.0, (31000, 31010))];
    world.launch(&offers, Condition::Running);
    world.scale("/fixed", 2);
    // The same agent offers the port again (a stale view): still refused.
    let plan = world.plan(&[offer("o2", "a1", 4.0, 1024.0, (31000, 31010))]);
    assert!(plan.launches.is_empty());
    let waiting = &plan.waiting[&AppId::from("/fixed")];
    assert_eq!(
        waiting.rejections,
        BTreeMap::from([(RejectReason::InsufficientPorts, 1)])
    );
    // Another agent has it free.
    let plan = world.plan(&[offer("o3", "a2", 4.0, 1024.0, (31000, 31010))]);
    assert_eq!(plan.launches[0].intent.ports, [31005]);
}

#[test]
fn constraints_choose_agents() {
    let racks = |offers: &[(&str, &str)]| -> Vec<Offer> {
        offers
            .iter()
            .map(|(agent, rack)| {
                with_attribute(
                    offer(&format!("o-{agent}"), agent, 8.0, 4096.0, (31000, 31100)),
                    "rack",
                    rack,
                )
            })
            .collect()
    };
    let offers = racks(&[("a1", "r1"), ("a2", "r1"), ("a3", "r2")]);
    // (constraints, instances, agents the launches land on)
    let cases: Vec<(Value, u32, Vec<&str>)> = vec![
        (
            json!([["hostname", "UNIQUE"]]),
            3,
            vec!["o-a1", "o-a2", "o-a3"],
        ),
        (json!([["rack", "UNIQUE"]]), 3, vec!["o-a1", "o-a3"]),
        (json!([["rack", "CLUSTER", "r2"]]), 2, vec!["o-a3", "o-a3"]),
        (json!([["rack", "IS", "r1"]]), 2, vec!["o-a1", "o-a1"]),
        (json!([["rack", "LIKE", "r[2-9]"]]), 1, vec!["o-a3"]),
        (json!([["rack", "UNLIKE", "r1"]]), 1, vec!["o-a3"]),
        (
            json!([["rack", "MAX_PER", "2"]]),
            5,
            vec!["o-a1", "o-a1", "o-a3", "o-a3"],
        ),
        (
            json!([["rack", "GROUP_BY"]]),
            4,
            vec!["o-a1", "o-a3", "o-a1", "o-a3"],
        ),
        (
            json!([["hostname", "LIKE", "host-a2"]]),
            2,
            vec!["o-a2", "o-a2"],
        ),
    ];
    for (constraints, instances, expected) in cases {
        let mut world = World::new();
        let mut body = app("/c", instances);
        body["constraints"] = constraints.clone();
        world.create(body);
        let plan = world.plan(&offers);
        assert_eq!(launched_on(&plan), expected, "{constraints}");
        let missing = instances as usize - expected.len();
        if missing > 0 {
            let waiting = &plan.waiting[&AppId::from("/c")];
            assert_eq!(waiting.count as usize, missing);
            assert!(
                waiting
                    .rejections
                    .contains_key(&RejectReason::UnfulfilledConstraint)
            );
        }
    }
}

#[test]
fn constraints_count_tasks_already_running() {
    let mut world = World::new();
    let mut body = app("/u", 1);
    body["constraints"] = json!([["hostname", "UNIQUE"]]);
    world.create(body);
    world.launch(
        &[offer("o1", "a1", 4.0, 1024.0, (31000, 31010))],
        Condition::Running,
    );
    world.scale("/u", 2);
    let offers = [
        offer("o2", "a1", 4.0, 1024.0, (31000, 31010)),
        offer("o3", "a2", 4.0, 1024.0, (31000, 31010)),
    ];
    let plan = world.plan(&offers);
    assert_eq!(launched_on(&plan), ["o3"]);
    assert_eq!(plan.declines, [OfferId::new("o2")]);
    let because: Vec<_> = plan.unused_because.into_iter().collect();
    assert_eq!(because, [(Some(RejectReason::UnfulfilledConstraint), 1)]);
}

#[test]
fn offers_nothing_waits_for_go_back_with_no_reason() {
    let mut world = World::new();
    world.create(app("/idle", 0));
    let plan = world.plan(&[offer("o1", "a1", 4.0, 1024.0, (31000, 31010))]);
    assert_eq!(plan.declines, [OfferId::new("o1")]);
    let because: Vec<_> = plan.unused_because.into_iter().collect();
    assert_eq!(because, [(None, 1)]);
}

#[test]
fn scaling_down_kills_by_kill_selection_unready_first() {
    for (selection, expect_oldest_kept) in [("YOUNGEST_FIRST", true), ("OLDEST_FIRST", false)] {
        let mut world = World::new();
        let mut body = app("/s", 1);
        body["killSelection"] = json!(selection);
        world.create(body);
        let offers = [offer("o1", "a1", 8.0, 4096.0, (31000, 31100))];
        let oldest = world.launch(&offers, Condition::Running);
        world.scale("/s", 3);
        let younger = world.launch(&offers, Condition::Running);
        world.scale("/s", 4);
        let staging = world.launch(&offers, Condition::Staging);
        world.scale("/s", 2);
        let plan = world.plan(&[]);
        let killed: BTreeSet<&TaskId> = plan.kills.iter().map(|k| &k.task).collect();
        assert_eq!(
            killed,
            BTreeSet::from([&staging[0]]),
            "not yet running goes first, at once"
        );
        let drained: BTreeSet<&TaskId> = plan.drains.iter().map(|k| &k.task).collect();
        assert_eq!(drained.len(), 1, "a running one is drained first");
        let killed: BTreeSet<&TaskId> = killed.union(&drained).copied().collect();
        assert_eq!(
            !killed.contains(&oldest[0]),
            expect_oldest_kept,
            "{selection}"
        );
        assert!(
            plan.kills
                .iter()
                .all(|k| k.record && k.reason.contains("scaled down"))
        );
        assert!(plan.drains.iter().all(|k| k.reason.contains("scaled down")));
        // Once recorded, the kill is only resent, the drained one killed;
        // nothing is launched.
        world.record(&plan);
        let again = world.plan(&offers);
        assert!(again.launches.is_empty() && again.drains.is_empty());
        let recorded: Vec<&TaskId> = again
            .kills
            .iter()
            .filter(|k| k.record)
            .map(|k| &k.task)
            .collect();
        assert_eq!(recorded, drained.into_iter().collect::<Vec<_>>());
        let _ = younger;
    }
}

#[test]
fn a_failed_task_is_forgotten_and_replaced_after_its_backoff() {
    let mut world = World::new();
    let mut body = app("/f", 1);
    body["backoffSeconds"] = json!(10);
    world.create(body);
    let offers = [offer("o1", "a1", 4.0, 1024.0, (31000, 31010))];
    let first = world.launch(&offers, Condition::Running);
    world.report(&first[0], Condition::Failed);
    let failed_at = world.now;
    let plan = world.plan(&offers);
    assert_eq!(plan.expunges, first);
    assert!(plan.launches.is_empty(), "held back by the backoff");
    let waiting = &plan.waiting[&AppId::from("/f")];
    assert_eq!(waiting.delayed_until, Some(failed_at + 10 * S));
    assert_eq!(plan.wake_at, Some(failed_at + 10 * S));
    assert!(!plan.wants_offers(), "no offers needed while backing off");
    world.record(&plan);
    world.now = failed_at + 10 * S;
    let plan = world.plan(&offers);
    assert_eq!(plan.launches.len(), 1);
}

#[test]
fn tasks_of_deleted_apps_and_unknown_tasks_are_killed() {
    let mut world = World::new();
    world.create(app("/gone", 1));
    let offers = [offer("o1", "a1", 4.0, 1024.0, (31000, 31010))];
    let task = world.launch(&offers, Condition::Running);
    world.run(Command::DeleteApp {
        app: AppId::from("/gone"),
        force: true,
    });
    // Mesos reports a task nobody launched.
    world.report(&TaskId::from("stranger.1"), Condition::Running);
    let plan = world.plan(&[]);
    let kills: BTreeMap<&TaskId, bool> = plan.kills.iter().map(|k| (&k.task, k.record)).collect();
    assert_eq!(
        kills,
        BTreeMap::from([(&TaskId::from("stranger.1"), false)])
    );
    assert_eq!(plan.drains[0].task, task[0], "drained before its kill");
    assert!(plan.finished.is_empty(), "the delete waits for the task");
    world.record(&plan);
    let plan = world.plan(&[]);
    assert!(plan.kills.iter().any(|k| k.task == task[0] && k.record));
    world.record(&plan);
    world.report(&task[0], Condition::Killed);
    world.report(&TaskId::from("stranger.1"), Condition::Killed);
    assert!(!world.state.tasks.contains_key(&TaskId::from("stranger.1")));
    let plan = world.plan(&[]);
    assert_eq!(plan.expunges, task);
    world.record(&plan);
    let plan = world.plan(&[]);
    assert_eq!(plan.finished.len(), 1, "the delete deployment is done");
    world.record(&plan);
    assert!(world.state.deployments.is_empty() && world.state.tasks.is_empty());
}

#[test]
fn unreachable_tasks_are_replaced_per_unreachable_strategy() {
    // (strategy, seconds later, expect a kill, expect an expunge)
    let cases = [
        (
            json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}),
            0,
            true,
            true,
        ),
        (
            json!({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}),
            30,
            false,
            false,
        ),
        (
            json!({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}),
            90,
            true,
            false,
        ),
        (
            json!({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}),
            150,
            true,
            true,
        ),
        (json!("disabled"), 10_000, false, false),
    ];
    for (strategy, later, kill, expunge) in cases {
        let mut world = World::new();
        let mut body = app("/u", 1);
        body["unreachableStrategy"] = strategy.clone();
        world.create(body);
        let offers = [offer("o1", "a1", 4.0, 1024.0, (31000, 31010))];
        let task = world.launch(&offers, Condition::Running);
        world.report(&task[0], Condition::Unreachable);
        world.now += later * S;
        let plan = world.plan(&offers);
        let killed = plan.kills.iter().any(|k| k.task == task[0] && k.record);
        assert_eq!(killed, kill, "{strategy} after {later}s");
        assert_eq!(plan.expunges.contains(&task[0]), expunge, "{strategy}");
        // Replaced exactly when it no longer counts.
        assert_eq!(plan.launches.len(), usize::from(kill), "{strategy}");
    }
}

#[test]
fn a_task_mesos_does_not_know_is_forgotten_and_replaced() {
    let mut world = World::new();
    world.create(app("/x", 1));
    let offers = [offer("o1", "a1", 4.0, 1024.0, (31000, 31010))];
    let task = world.launch(&offers, Condition::Unknown);
    let plan = world.plan(&offers);
    assert_eq!(plan.expunges, task);
    assert_eq!(plan.launches.len(), 1);
}

#[test]
fn a_new_version_rolls_within_the_upgrade_strategy() {
    let mut world = World::new();
    world.create(app("/r", 3));
    let offers = [offer("o1", "a1", 16.0, 8192.0, (31000, 31100))];
    let old = world.launch(&offers, Condition::Running);
    world.run(Command::RestartApp {
        app: AppId::from("/r"),
        force: true,
    });
    // Defaults (1.0, 1.0): all new ones at once, no old one stopped yet.
    let plan = world.plan(&offers);
    assert_eq!(plan.launches.len(), 3);
    assert!(plan.kills.is_empty());
    world.record(&plan);
    let new: Vec<TaskId> = plan
        .launches
        .iter()
        .map(|l| l.intent.task.clone())
        .collect();
    world.report(&new[0], Condition::Running);
    let plan = world.plan(&offers);
    assert_eq!(plan.drains.len(), 1, "one new ready: one old may go");
    assert!(old.contains(&plan.drains[0].task));
    world.record(&plan);
    for task in &new[1..] {
        world.report(task, Condition::Running);
    }
    let plan = world.plan(&offers);
    assert_eq!(plan.drains.len(), 2);
    assert_eq!(
        plan.kills.iter().filter(|k| k.record).count(),
        1,
        "the drained one"
    );
    world.record(&plan);
    let plan = world.plan(&offers);
    assert_eq!(plan.kills.iter().filter(|k| k.record).count(), 2);
    world.record(&plan);
    for task in &old {
        world.report(task, Condition::Killed);
    }
    let plan = world.plan(&offers);
    assert_eq!(plan.expunges.len(), 3);
    assert_eq!(
        plan.finished.len(),
        1,
        "all new and ready, nothing old left"
    );
    world.record(&plan);
    let left: BTreeSet<TaskId> = world.tasks_of("/r").into_iter().collect();
    assert_eq!(left, new.into_iter().collect());
}

#[test]
fn a_strategy_with_no_room_either_way_still_moves() {
    let mut world = World::new();
    let mut body = app("/tight", 2);
    body["upgradeStrategy"] = json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.0});
    world.create(body);
    let offers = [offer("o1", "a1", 16.0, 8192.0, (31000, 31100))];
    world.launch(&offers, Condition::Running);
    world.run(Command::RestartApp {
        app: AppId::from("/tight"),
        force: true,
    });
    let plan = world.plan(&offers);
    assert_eq!((plan.launches.len(), plan.kills.len()), (1, 0));
}

#[test]
fn half_capacity_stops_old_tasks_before_starting_new_ones() {
    let mut world = World::new();
    let mut body = app("/half", 4);
    body["upgradeStrategy"] = json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0});
    world.create(body);
    let offers = [offer("o1", "a1", 16.0, 8192.0, (31000, 31100))];
    world.launch(&offers, Condition::Running);
    world.run(Command::RestartApp {
        app: AppId::from("/half"),
        force: true,
    });
    let killed = |plan: &Plan| plan.kills.iter().filter(|k| k.record).count();
    let plan = world.plan(&offers);
    assert_eq!((plan.launches.len(), plan.drains.len()), (0, 2));
    world.record(&plan);
    // Out of rotation, they no longer count: two new ones start while the
    // drained two are killed.
    let plan = world.plan(&offers);
    assert_eq!(
        (plan.launches.len(), plan.drains.len(), killed(&plan)),
        (2, 0, 2)
    );
}

#[test]
fn a_plan_overtaken_by_a_scale_launches_nothing() {
    let mut world = World::new();
    world.create(app("/o", 2));
    let plan = world.plan(&[offer("o1", "a1", 4.0, 1024.0, (31000, 31010))]);
    world.scale("/o", 0);
    let events = world.record(&plan);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_draining_task_is_killed_once_every_sidecar_confirmed_or_the_timeout_ran_out() {
    let mut world = World::new();
    world.create(app("/d", 2));
    let offers = [offer("o1", "a1", 8.0, 4096.0, (31000, 31100))];
    world.launch(&offers, Condition::Running);
    world.scale("/d", 1);
    let plan = world.plan(&[]);
    world.record(&plan);
    let task = &plan.drains[0].task;
    let drain_seq = world.state.tasks[task].drain_seq;
    let drain_at = world.state.tasks[task].drain_at;
    assert!(world.state.tasks[task].draining);
    let kill_reason = |world: &World| {
        let plan = world.plan(&[]);
        assert!(plan.launches.is_empty(), "a draining task no longer counts");
        let kill = plan.kills.iter().find(|k| &k.task == task && k.record);
        (kill.map(|k| k.reason.clone()), plan.wake_at)
    };
    // (sidecars' applied seq, µs since draining began, the kill's reason)
    let cases = [
        (None, 0, Some("drained from every load balancer")),
        (Some(drain_seq.0 - 1), 0, None),
        (
            Some(drain_seq.0),
            0,
            Some("drained from every load balancer"),
        ),
        (Some(drain_seq.0 - 1), 30 * S, Some("drain timed out")),
    ];
    for (confirmed, later, expected) in cases {
        world.drain = Drain {
            confirmed_upto: confirmed.map(Seq),
            timeout: 30 * S,
        };
        world.now = drain_at + later;
        let (reason, wake) = kill_reason(&world);
        assert_eq!(reason.as_deref(), expected, "{confirmed:?} +{later}");
        if expected.is_none() {
            assert_eq!(wake, Some(drain_at + 30 * S));
        }
    }
}

#[test]
fn readiness_checks_hold_a_rolling_restart_until_new_tasks_pass() {
    let mut world = World::new();
    let mut body = app("/ready", 2);
    body["portDefinitions"] = json!([{"port": 0, "name": "http-api"}]);
    body["readinessChecks"] = json!([{"portName": "http-api", "path": "/ready"}]);
    world.create(body);
    let offers = [offer("o1", "a1", 16.0, 8192.0, (31000, 31100))];
    world.launch(&offers, Condition::Running);
    // The create itself waits for readiness.
    assert!(world.plan(&[]).finished.is_empty());
    world.passed = world.tasks_of("/ready").into_iter().collect();
    let plan = world.plan(&[]);
    assert_eq!(plan.finished.len(), 1);
    world.record(&plan);
    world.run(Command::RestartApp {
        app: AppId::from("/ready"),
        force: true,
    });
    let new = world.launch(&offers, Condition::Running);
    assert_eq!(new.len(), 2);
    let plan = world.plan(&[]);
    assert!(
        plan.drains.is_empty(),
        "running and healthy, but not ready yet"
    );
    world.passed.insert(new[0].clone());
    let plan = world.plan(&[]);
    assert_eq!(plan.drains.len(), 1, "one passed: one old may go");
    assert!(!new.contains(&plan.drains[0].task));
}

fn agent_of(launch: &super::Launch) -> AgentId {
    launch.intent.agent.clone()
}

prop_compose! {
    fn arb_app(n: usize)(
        instances in 0u32..6,
        cpus in prop::sample::select(vec![0.1, 0.5, 1.0, 3.0]),
        ports in 0usize..3,
        require in any::<bool>(),
        unique in any::<bool>(),
    ) -> Value {
        let definitions: Vec<Value> = (0..ports)
            .map(|i| json!({"port": if require { 31000 + (n * 3 + i) as u32 % 20 } else { 0 }}))
            .collect();
        let mut body = json!({"id": format!("/app{n}"), "cmd": "run", "instances": instances,
            "cpus": cpus, "mem": 32, "portDefinitions": definitions, "requirePorts": require});
        if unique {
            body["constraints"] = json!([["hostname", "UNIQUE"]]);
        }
        body
    }
}

fn arb_offers() -> impl Strategy<Value = Vec<Offer>> {
    prop::collection::vec((0usize..4, 0.0f64..4.0, 0u64..15), 0..5).prop_map(|specs| {
        let mut agents_seen = BTreeSet::new();
        specs
            .into_iter()
            .enumerate()
            // One offer per agent, as Mesos sends them.
            .filter(|(_, (agent, _, _))| agents_seen.insert(*agent))
            .map(|(i, (agent, cpus, width))| {
                offer(
                    &format!("o{i}"),
                    &format!("a{agent}"),
                    cpus,
                    256.0,
                    (31000, 31000 + width),
                )
            })
            .collect()
    })
}

/// A world with some apps, some tasks already launched in mixed states.
fn arb_world() -> impl Strategy<Value = (World, Vec<Offer>)> {
    (
        prop::collection::vec(Just(()), 1..4),
        arb_offers(),
        arb_offers(),
        prop::collection::vec(0usize..5, 0..8),
    )
        .prop_flat_map(|(apps, first, now, conditions)| {
            let bodies: Vec<_> = (0..apps.len()).map(arb_app).collect();
            (bodies, Just(first), Just(now), Just(conditions))
        })
        .prop_map(|(bodies, first, offers, conditions)| {
            let mut world = World::new();
            for body in bodies {
                world.create(body);
            }
            let plan = world.plan(&first);
            world.record(&plan);
            let states = [
                Condition::Running,
                Condition::Staging,
                Condition::Failed,
                Condition::Unreachable,
                Condition::Killed,
            ];
            for (launch, pick) in plan.launches.iter().zip(conditions) {
                world.report(&launch.intent.task, states[pick]);
            }
            (world, offers)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn plans_are_deterministic((world, offers) in arb_world()) {
        prop_assert_eq!(world.plan(&offers), world.plan(&offers));
    }

    #[test]
    fn no_port_or_resource_is_booked_twice((world, offers) in arb_world()) {
        let plan = world.plan(&offers);
        let mut booked: BTreeMap<AgentId, BTreeSet<u32>> = BTreeMap::new();
        for task in world.state.tasks.values().filter(|t| !t.condition.is_terminal()) {
            if let Some(agent) = &task.agent {
                booked.entry(agent.clone()).or_default().extend(&task.ports);
            }
        }
        let mut cpus: BTreeMap<&str, f64> = BTreeMap::new();
        for launch in &plan.launches {
            let offer = offers.iter().find(|o| o.id == launch.offer).expect("a known offer");
            let range = offer.resources[2].ranges.as_ref().unwrap().range[0];
            for port in &launch.intent.ports {
                prop_assert!(u64::from(*port) >= range.begin && u64::from(*port) <= range.end);
                prop_assert!(booked.entry(agent_of(launch)).or_default().insert(*port),
                    "port {} twice on {}", port, agent_of(launch));
            }
            *cpus.entry(&offer.id.value).or_default() += launch
                .resources.iter().filter(|r| r.name == "cpus").map(|r| r.scalar.unwrap().value).sum::<f64>();
            prop_assert!(cpus[offer.id.value.as_str()] <= offer.resources[0].scalar.unwrap().value + 1e-9);
        }
        let used: BTreeSet<&OfferId> = plan.launches.iter().map(|l| &l.offer).collect();
        for offer in &offers {
            prop_assert_eq!(used.contains(&offer.id), !plan.declines.contains(&offer.id));
        }
    }

    #[test]
    fn never_more_tasks_than_allowed_even_after_replanning((world, offers) in arb_world()) {
        let mut world = world;
        for _ in 0..2 {
            let plan = world.plan(&offers);
            world.record(&plan);
        }
        for (id, app) in &world.state.apps {
            let live = world.state.tasks_of(id)
                .filter(|(_, t)| !t.condition.is_terminal() && !t.kill_requested)
                .count();
            // No new version here: the bound is the instance count itself.
            prop_assert!(live <= app.definition.instances as usize,
                "{}: {} live for {} instances", id, live, app.definition.instances);
        }
    }
}
