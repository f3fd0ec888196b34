//! How many tasks an app should launch or lose, and which: scaling, and
//! replacing an old version within `upgradeStrategy`'s capacity bounds.

use super::constraints::Placed;
use crate::event::TaskId;
use crate::event::app::KillSelection;
use crate::mesos::condition::Condition;
use crate::projection::{App, Task};

/// An app's live tasks, split by whether they run its current definition.
#[derive(Default)]
pub(super) struct Counted<'a> {
    current: Vec<(&'a TaskId, &'a Task)>,
    old: Vec<(&'a TaskId, &'a Task)>,
}

pub(super) struct Decision<'a> {
    pub launch: u32,
    pub kills: Vec<(&'a TaskId, String)>,
    /// Exactly the wanted instances run the current definition, all ready.
    pub done: bool,
}

impl<'a> Counted<'a> {
    pub fn add(&mut self, app: &App, id: &'a TaskId, task: &'a Task) {
        // A scale makes a new `version` but not a new definition: tasks
        // launched since the last config change are current.
        if task.app_version >= app.config_version {
            self.current.push((id, task));
        } else {
            self.old.push((id, task));
        }
    }

    /// Where the app's tasks run, for constraints.
    pub fn placements(&self) -> Placed {
        let mut placed = Placed::default();
        for (_, task) in self.current.iter().chain(&self.old) {
            if let Some(agent) = &task.agent {
                placed.push(agent.clone(), task.host.clone());
            }
        }
        placed
    }
}

/// Ready: running, and healthy if the app checks health (or at least not
/// known to be unhealthy if it does not).
pub(super) fn is_ready(app: &App, task: &Task) -> bool {
    let healthy = if app.definition.health_checks.is_empty() {
        task.healthy != Some(false)
    } else {
        task.healthy == Some(true)
    };
    task.condition == Condition::Running && healthy
}

pub(super) fn decide<'a>(app: &App, counted: &Counted<'a>) -> Decision<'a> {
    let wanted = app.definition.instances as usize;
    let current = counted.current.len();
    if counted.old.is_empty() {
        if current > wanted {
            let kills = kill_order(app, &counted.current)
                .into_iter()
                .take(current - wanted)
                .map(|id| (id, format!("scaled down to {wanted} instances")))
                .collect();
            return Decision {
                launch: 0,
                kills,
                done: false,
            };
        }
        let ready = counted.current.iter().all(|(_, t)| is_ready(app, t));
        return Decision {
            launch: count(wanted - current),
            kills: Vec::new(),
            done: current == wanted && ready,
        };
    }
    replace(app, counted, wanted)
}

/// A rolling replacement: at most `n * (1 + maximumOverCapacity)` tasks at
/// once, and at least `n * minimumHealthCapacity` ready ones throughout.
fn replace<'a>(app: &App, counted: &Counted<'a>, wanted: usize) -> Decision<'a> {
    let strategy = &app.definition.upgrade_strategy;
    let max_total = ((wanted as f64) * (1.0 + strategy.maximum_over_capacity)).floor() as usize;
    let min_ready = ((wanted as f64) * strategy.minimum_health_capacity).ceil() as usize;
    let current = counted.current.len();
    let total = current + counted.old.len();
    let mut launch = wanted
        .saturating_sub(current)
        .min(max_total.max(wanted).saturating_sub(total));
    let ready = counted
        .current
        .iter()
        .chain(&counted.old)
        .filter(|(_, t)| is_ready(app, t))
        .count();
    let current_ready = counted
        .current
        .iter()
        .filter(|(_, t)| is_ready(app, t))
        .count();
    // Once the new version is fully ready, nothing old needs keeping.
    let mut may_stop_ready = if current_ready >= wanted {
        usize::MAX
    } else {
        ready.saturating_sub(min_ready)
    };
    let mut kills = Vec::new();
    for id in kill_order(app, &counted.old) {
        let task = counted
            .old
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, t)| *t)
            .expect("an old task");
        if is_ready(app, task) {
            if may_stop_ready == 0 {
                continue;
            }
            may_stop_ready -= 1;
        }
        kills.push((id, "replaced by a new version".to_owned()));
    }
    // Both bounds at their limit (minimumHealthCapacity 1, no over
    // capacity) would wait forever: go one over, as the only way forward.
    if launch == 0 && kills.is_empty() && current < wanted {
        launch = 1;
    }
    Decision {
        launch: count(launch),
        kills,
        done: false,
    }
}

/// Which tasks go first: those not yet ready, then by `killSelection`.
fn kill_order<'a>(app: &App, tasks: &[(&'a TaskId, &'a Task)]) -> Vec<&'a TaskId> {
    let mut order: Vec<_> = tasks.to_vec();
    let youngest_first = app.definition.kill_selection == KillSelection::YoungestFirst;
    order.sort_by(|(a_id, a), (b_id, b)| {
        let by_age = if youngest_first {
            b.staged_at.cmp(&a.staged_at)
        } else {
            a.staged_at.cmp(&b.staged_at)
        };
        is_ready(app, a)
            .cmp(&is_ready(app, b))
            .then(by_age)
            .then(a_id.cmp(b_id))
    });
    order.into_iter().map(|(id, _)| id).collect()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
