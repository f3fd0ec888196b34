//! The planner: from the state and the offers in hand, what to launch where,
//! what to kill, what to forget and which deployments are done. Pure: no IO,
//! no clock but `now`, the same inputs give the same plan. The executor
//! (`super::executor`) records the plan's intents and carries them out.

mod agents;
mod constraints;
mod instances;
mod offers;

pub use agents::{AgentInfo, Agents};
pub use offers::RejectReason;

use constraints::Rules;
use instances::{Counted, Decision};
use offers::OfferPool;
use std::collections::{BTreeMap, HashSet};
use stride_core::command::{KillIntent, LaunchIntent, PlanIntents};
use stride_core::projection::{App, Deployment, State, Task};
use stride_log::event::app::UnreachableStrategy;
use stride_log::event::condition::Condition;
use stride_log::event::{AgentId, AppId, DeploymentAction, DeploymentId, Seq, TaskId};
use stride_mesos::types::{Offer, OfferId, Resource};

const MICROS: u64 = 1_000_000;
/// A launch Mesos has not confirmed after this long is asked about.
const STALE_LAUNCH: u64 = 60 * MICROS;

pub struct PlanInput<'a> {
    pub state: &'a State,
    pub offers: &'a [Offer],
    pub agents: &'a Agents,
    /// Unix µs.
    pub now: u64,
    pub drain: Drain,
    /// Tasks whose `readinessChecks` have passed.
    pub passed_readiness: &'a HashSet<TaskId>,
}

/// When a draining task may be killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drain {
    /// The lowest seq every load-balancer sidecar that asked to confirm
    /// drains has applied; `None` when none asked.
    pub confirmed_upto: Option<Seq>,
    /// Kill anyway this long (µs) after draining began.
    pub timeout: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub launches: Vec<Launch>,
    pub kills: Vec<Kill>,
    /// Running tasks chosen to stop: out of rotation first.
    pub drains: Vec<KillIntent>,
    pub expunges: Vec<TaskId>,
    /// Deployments whose steps are done up to the given count.
    pub finished: Vec<(DeploymentId, u32)>,
    /// Offers no launch uses.
    pub declines: Vec<OfferId>,
    /// Why the declined offers went unused: the first reason (in funnel
    /// order) any waiting app had to pass one over; `None`: no app looked.
    pub unused_because: BTreeMap<Option<RejectReason>, u32>,
    /// Launches Mesos has said nothing about for a while: ask it.
    pub stale: Vec<(TaskId, Option<AgentId>)>,
    /// Apps short of instances, and why.
    pub waiting: BTreeMap<AppId, Waiting>,
    /// When the plan would change with no new input (a backoff or an
    /// unreachable timeout running out), unix µs.
    pub wake_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub intent: LaunchIntent,
    pub offer: OfferId,
    /// Taken from the offer, roles and allocation info included.
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub task: TaskId,
    pub agent: Option<AgentId>,
    /// The owning app, if it still exists: its kill grace period applies.
    pub app: Option<AppId>,
    pub reason: String,
    /// A new decision to record; otherwise a kill already recorded (or of a
    /// task no app owns) being sent again.
    pub record: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    pub count: u32,
    /// Held back by launch backoff until then (unix µs).
    pub delayed_until: Option<u64>,
    /// Offers looked at this time, and why each was not used.
    pub offers_processed: u32,
    pub rejections: BTreeMap<RejectReason, u32>,
}

impl Plan {
    /// What the executor records before acting.
    pub fn intents(&self) -> PlanIntents {
        PlanIntents {
            launches: self.launches.iter().map(|l| l.intent.clone()).collect(),
            kills: self
                .kills
                .iter()
                .filter(|k| k.record)
                .filter_map(|k| {
                    Some(KillIntent {
                        task: k.task.clone(),
                        app: k.app.clone()?,
                        reason: k.reason.clone(),
                    })
                })
                .collect(),
            drains: self.drains.clone(),
            expunges: self.expunges.clone(),
            finished: self.finished.clone(),
        }
    }

    /// Something can use offers now.
    pub fn wants_offers(&self) -> bool {
        self.waiting.values().any(|w| w.delayed_until.is_none())
    }

    fn wake(&mut self, at: u64) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// Stops a task that may be serving traffic: drained first if it runs,
    /// killed straight away if it never got that far.
    fn stop(&mut self, id: &TaskId, task: &Task, app: &AppId, reason: String) {
        if task.condition == Condition::Running {
            self.drains.push(KillIntent {
                task: id.clone(),
                app: app.clone(),
                reason,
            });
        } else {
            self.kills.push(Kill {
                reason,
                record: true,
                ..resend(id, task, app, "")
            });
        }
    }
}

pub fn plan(input: &PlanInput) -> Plan {
    let state = input.state;
    let mut plan = Plan::default();
    let mut pool = OfferPool::new(input.offers, state);
    for (id, task) in &state.tasks {
        let owner = task.app.as_ref().and_then(|a| state.apps.get(a));
        if owner.is_none() {
            unowned(&mut plan, id, task, input);
        }
    }
    let waiting = waiting_for_their_step(state);
    let mut converged = HashSet::new();
    for (id, app) in &state.apps {
        let hold = waiting.contains(id);
        if plan_app(&mut plan, &mut pool, input, id, app, hold) {
            converged.insert(id);
        }
    }
    for (id, deployment) in &state.deployments {
        if let Some(done) = steps_done(state, deployment, &converged) {
            plan.finished.push((*id, done));
        }
    }
    for (offer, reason) in pool.unused() {
        plan.declines.push(offer);
        *plan.unused_because.entry(reason).or_insert(0) += 1;
    }
    plan
}

/// Apps a deployment acts on in a later step than the one running: they
/// keep what they run until their step comes (Marathon runs a plan's
/// steps one after another). Steps that need no planning (starting an app,
/// which Marathon does with 0 instances, or stopping one already gone)
/// count as done.
fn waiting_for_their_step(state: &State) -> HashSet<&AppId> {
    state
        .deployments
        .values()
        .flat_map(|d| {
            let running = progress(state, d, None);
            d.steps.iter().skip(running + 1)
        })
        .flatten()
        .map(|(app, _)| app)
        .collect()
}

/// How many of the deployment's steps are done, if that is more than it
/// recorded (or all of them, so that it finishes).
fn steps_done(state: &State, deployment: &Deployment, converged: &HashSet<&AppId>) -> Option<u32> {
    let recorded = deployment.steps_finished as usize;
    let done = progress(state, deployment, Some(converged));
    (done > recorded || done == deployment.steps.len())
        .then(|| u32::try_from(done).unwrap_or(u32::MAX))
}

/// The steps done, counting from those recorded; apps scaled or restarted
/// count as done when they are in `converged` (not known: not done).
fn progress(state: &State, deployment: &Deployment, converged: Option<&HashSet<&AppId>>) -> usize {
    let mut done = deployment.steps_finished as usize;
    while let Some(step) = deployment.steps.get(done) {
        let finished = step.iter().all(|(app, action)| match action {
            DeploymentAction::Start => true,
            DeploymentAction::Stop => {
                !state.apps.contains_key(app) && !state.tasks_by_app.contains_key(app)
            }
            // An app gone since has nothing left to do.
            DeploymentAction::Scale | DeploymentAction::Restart => {
                !state.apps.contains_key(app) || converged.is_some_and(|c| c.contains(app))
            }
        });
        if !finished {
            break;
        }
        done += 1;
    }
    done
}

/// A task whose app is gone (or never was ours): killed, then forgotten.
fn unowned(plan: &mut Plan, id: &TaskId, task: &Task, input: &PlanInput) {
    let ended = task.condition.is_terminal();
    if (ended || task.condition == Condition::Unknown) && task.app.is_some() {
        plan.expunges.push(id.clone());
    }
    if ended {
        return;
    }
    if task.draining && !task.kill_requested {
        drained(plan, id, task, input);
        return;
    }
    if let Some(app) = &task.app {
        if !task.kill_requested && !task.draining {
            plan.stop(id, task, app, format!("app {app} was deleted"));
            return;
        }
    }
    let (reason, record) = match &task.app {
        Some(app) => (format!("app {app} was deleted"), false),
        None => ("no app owns this task".to_owned(), false),
    };
    plan.kills.push(Kill {
        task: id.clone(),
        agent: task.agent.clone(),
        app: task.app.clone().filter(|_| record),
        reason,
        record,
    });
}

/// Plans one app; true when it runs exactly what it should (its part of a
/// deployment step is done). `hold`: its deployment step has not come yet.
fn plan_app(
    plan: &mut Plan,
    pool: &mut OfferPool,
    input: &PlanInput,
    id: &AppId,
    app: &App,
    hold: bool,
) -> bool {
    let state = input.state;
    let now = input.now;
    let mut counted = Counted::default();
    // A deployment is not done while tasks it stopped are still alive.
    let mut stopping = 0;
    for (task_id, task) in state.tasks_of(id) {
        match classify(app, task, now) {
            Class::Gone { kill } => {
                plan.expunges.push(task_id.clone());
                if kill {
                    plan.kills
                        .push(resend(task_id, task, id, "Mesos does not know it"));
                }
            }
            Class::Killing => {
                stopping += 1;
                plan.kills.push(resend(task_id, task, id, "kill requested"));
            }
            Class::Draining => {
                stopping += 1;
                drained(plan, task_id, task, input);
            }
            Class::Inactive { expunge, wake } => {
                if let Some(at) = wake {
                    plan.wake(at);
                }
                if expunge {
                    plan.expunges.push(task_id.clone());
                }
                plan.kills.push(Kill {
                    reason: "unreachable for longer than its unreachableStrategy allows".to_owned(),
                    record: true,
                    ..resend(task_id, task, id, "")
                });
            }
            Class::Live { wake } => {
                if let Some(at) = wake {
                    plan.wake(at);
                }
                if task.condition == Condition::Provisioned
                    && now.saturating_sub(task.staged_at) > STALE_LAUNCH
                {
                    plan.stale.push((task_id.clone(), task.agent.clone()));
                }
                counted.add(app, task_id, task, input.passed_readiness);
            }
        }
    }
    if hold {
        return false;
    }
    let Decision {
        launch,
        kills,
        done,
    } = instances::decide(app, &counted);
    for (task_id, reason) in kills {
        plan.stop(task_id, &state.tasks[task_id], id, reason);
    }
    let converged = done && stopping == 0;
    if launch == 0 {
        return converged;
    }
    let mut waiting = Waiting {
        count: launch,
        ..Waiting::default()
    };
    let delay = app.launch_delay.remaining(now);
    if delay > 0 {
        waiting.delayed_until = Some(app.launch_delay.until);
        plan.wake(app.launch_delay.until);
        plan.waiting.insert(id.clone(), waiting);
        return false;
    }
    let rules = Rules::new(&app.definition.constraints);
    let mut placed = counted.placements();
    for n in 0..launch {
        match pool.place(app, &rules, &placed, input.agents) {
            Ok(placement) => {
                let task = TaskId::for_app(id, task_uuid(state.seq.0, id, &placement.offer, n));
                placed.push(placement.agent.clone(), placement.host.clone());
                plan.launches.push(Launch {
                    intent: LaunchIntent {
                        task,
                        app: id.clone(),
                        app_version: app.version,
                        agent: placement.agent,
                        host: placement.host,
                        ports: placement.ports,
                        offer: placement.offer.value.clone(),
                    },
                    offer: placement.offer,
                    resources: placement.resources,
                });
                waiting.count -= 1;
            }
            Err(rejections) => {
                waiting.offers_processed = u32::try_from(input.offers.len()).unwrap_or(u32::MAX);
                waiting.rejections = rejections;
                break;
            }
        }
    }
    if waiting.count > 0 {
        plan.waiting.insert(id.clone(), waiting);
    }
    false
}

enum Class {
    /// Terminal, or unknown to Mesos: forget it (and kill it, in case).
    Gone { kill: bool },
    /// A kill is already recorded; send it again until Mesos confirms.
    Killing,
    /// Out of rotation, waiting for load balancers before its kill.
    Draining,
    /// Unreachable past `inactiveAfterSeconds`: replace it.
    Inactive { expunge: bool, wake: Option<u64> },
    /// Counts as one of the app's instances.
    Live { wake: Option<u64> },
}

fn classify(app: &App, task: &Task, now: u64) -> Class {
    if task.condition.is_terminal() {
        return Class::Gone { kill: false };
    }
    if task.condition == Condition::Unknown {
        return Class::Gone { kill: true };
    }
    if task.kill_requested {
        return Class::Killing;
    }
    if task.draining {
        return Class::Draining;
    }
    let Some(since) = task.unreachable_since else {
        return Class::Live { wake: None };
    };
    let UnreachableStrategy::Enabled {
        inactive_after_seconds,
        expunge_after_seconds,
    } = app.definition.unreachable_strategy
    else {
        return Class::Live { wake: None };
    };
    let inactive_at = since.saturating_add(inactive_after_seconds * MICROS);
    let expunge_at = since.saturating_add(expunge_after_seconds * MICROS);
    if now < inactive_at {
        return Class::Live {
            wake: Some(inactive_at),
        };
    }
    Class::Inactive {
        expunge: now >= expunge_at,
        wake: (now < expunge_at).then_some(expunge_at),
    }
}

/// A draining task is killed once every sidecar that confirms drains has
/// applied its `TaskDraining`, or once the drain timeout runs out.
fn drained(plan: &mut Plan, id: &TaskId, task: &Task, input: &PlanInput) {
    let deadline = task.drain_at.saturating_add(input.drain.timeout);
    let confirmed = input
        .drain
        .confirmed_upto
        .is_none_or(|seq| seq >= task.drain_seq);
    if !confirmed && input.now < deadline {
        plan.wake(deadline);
        return;
    }
    let reason = if confirmed {
        "drained from every load balancer"
    } else {
        "drain timed out"
    };
    let Some(app) = &task.app else {
        return;
    };
    plan.kills.push(Kill {
        reason: reason.to_owned(),
        record: true,
        ..resend(id, task, app, "")
    });
}

fn resend(id: &TaskId, task: &Task, app: &AppId, reason: &str) -> Kill {
    Kill {
        task: id.clone(),
        agent: task.agent.clone(),
        app: Some(app.clone()),
        reason: reason.to_owned(),
        record: false,
    }
}

/// Task ids come from the inputs, keeping the planner pure: the state's seq
/// changes with every plan recorded, so ids never repeat.
fn task_uuid(seq: u64, app: &AppId, offer: &OfferId, n: u32) -> uuid::Uuid {
    let name = format!("{seq}/{app}/{}/{n}", offer.value);
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes())
}

#[cfg(test)]
mod tests;
