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

use crate::command::{KillIntent, LaunchIntent, PlanIntents};
use crate::event::app::UnreachableStrategy;
use crate::event::{AgentId, AppId, DeploymentId, TaskId};
use crate::mesos::condition::Condition;
use crate::mesos::types::{Offer, OfferId, Resource};
use crate::projection::{App, State, Task};
use constraints::Rules;
use instances::{Counted, Decision};
use offers::OfferPool;
use std::collections::BTreeMap;

const MICROS: u64 = 1_000_000;
/// A launch Mesos has not confirmed after this long is asked about.
const STALE_LAUNCH: u64 = 60 * MICROS;

pub struct PlanInput<'a> {
    pub state: &'a State,
    pub offers: &'a [Offer],
    pub agents: &'a Agents,
    /// Unix µs.
    pub now: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub launches: Vec<Launch>,
    pub kills: Vec<Kill>,
    pub expunges: Vec<TaskId>,
    pub finished: Vec<DeploymentId>,
    /// Offers no launch uses.
    pub declines: Vec<OfferId>,
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
}

pub fn plan(input: &PlanInput) -> Plan {
    let state = input.state;
    let mut plan = Plan::default();
    let mut pool = OfferPool::new(input.offers, state);
    for (id, task) in &state.tasks {
        let owner = task.app.as_ref().and_then(|a| state.apps.get(a));
        if owner.is_none() {
            unowned(&mut plan, id, task);
        }
    }
    for (id, app) in &state.apps {
        plan_app(&mut plan, &mut pool, input, id, app);
    }
    for (id, deployment) in &state.deployments {
        let gone = !state.apps.contains_key(&deployment.app)
            && !state.tasks_by_app.contains_key(&deployment.app);
        if gone {
            plan.finished.push(*id);
        }
    }
    plan.declines = pool.unused();
    plan
}

/// A task whose app is gone (or never was ours): killed, then forgotten.
fn unowned(plan: &mut Plan, id: &TaskId, task: &Task) {
    let ended = task.condition.is_terminal();
    if (ended || task.condition == Condition::Unknown) && task.app.is_some() {
        plan.expunges.push(id.clone());
    }
    if ended {
        return;
    }
    let (reason, record) = match &task.app {
        Some(app) => (format!("app {app} was deleted"), !task.kill_requested),
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

fn plan_app(plan: &mut Plan, pool: &mut OfferPool, input: &PlanInput, id: &AppId, app: &App) {
    let state = input.state;
    let now = input.now;
    let mut counted = Counted::default();
    for (task_id, task) in state.tasks_of(id) {
        match classify(app, task, now) {
            Class::Gone { kill } => {
                plan.expunges.push(task_id.clone());
                if kill {
                    plan.kills
                        .push(resend(task_id, task, id, "Mesos does not know it"));
                }
            }
            Class::Killing => plan.kills.push(resend(task_id, task, id, "kill requested")),
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
                counted.add(app, task_id, task);
            }
        }
    }
    let Decision {
        launch,
        kills,
        done,
    } = instances::decide(app, &counted);
    for (task_id, reason) in kills {
        let task = &state.tasks[task_id];
        plan.kills.push(Kill {
            reason,
            record: true,
            ..resend(task_id, task, id, "")
        });
    }
    if done {
        if let Some((deployment, _)) = state.deployment_of(id) {
            plan.finished.push(*deployment);
        }
    }
    if launch == 0 {
        return;
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
        return;
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
}

enum Class {
    /// Terminal, or unknown to Mesos: forget it (and kill it, in case).
    Gone { kill: bool },
    /// A kill is already recorded; send it again until Mesos confirms.
    Killing,
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
