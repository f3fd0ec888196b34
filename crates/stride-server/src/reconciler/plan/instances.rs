//! How many tasks an app should launch or lose, and which: scaling, and
//! replacing an old version within `upgradeStrategy`'s capacity bounds.

use super::constraints::Placed;
use std::collections::HashSet;
use stride_core::projection::{App, Task};
use stride_log::event::TaskId;
use stride_log::event::app::KillSelection;
use stride_log::event::condition::Condition;

/// An app's live tasks, split by whether they run its current definition.
#[derive(Default)]
pub(super) struct Counted<'a> {
    current: Vec<Live<'a>>,
    old: Vec<Live<'a>>,
}

#[derive(Clone, Copy)]
struct Live<'a> {
    id: &'a TaskId,
    task: &'a Task,
    ready: bool,
}

pub(super) struct Decision<'a> {
    pub launch: u32,
    pub kills: Vec<(&'a TaskId, String)>,
    /// Exactly the wanted instances run the current definition, all ready.
    pub done: bool,
}

impl<'a> Counted<'a> {
    /// `passed`: tasks whose readiness checks have passed.
    pub fn add(&mut self, app: &App, id: &'a TaskId, task: &'a Task, passed: &HashSet<TaskId>) {
        // A scale makes a new `version` but not a new definition: tasks
        // launched since the last config change are current.
        let current = task.app_version >= app.config_version;
        // Readiness gates only the tasks a deployment starts; old ones
        // proved themselves (and lose their results on a restart).
        let checked = !current || app.definition.readiness_checks.is_empty();
        let live = Live {
            id,
            task,
            ready: is_healthy(app, task) && (checked || passed.contains(id)),
        };
        if current {
            self.current.push(live);
        } else {
            self.old.push(live);
        }
    }

    /// Where the app's tasks run, for constraints.
    pub fn placements(&self) -> Placed {
        let mut placed = Placed::default();
        for live in self.current.iter().chain(&self.old) {
            if let Some(agent) = &live.task.agent {
                placed.push(agent.clone(), live.task.host.clone());
            }
        }
        placed
    }
}

/// Running, and healthy if the app checks health (or at least not known to
/// be unhealthy if it does not).
fn is_healthy(app: &App, task: &Task) -> bool {
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
        let ready = counted.current.iter().all(|t| t.ready);
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
        .filter(|t| t.ready)
        .count();
    let current_ready = counted.current.iter().filter(|t| t.ready).count();
    // Once the new version is fully ready, nothing old needs keeping.
    let mut may_stop_ready = if current_ready >= wanted {
        usize::MAX
    } else {
        ready.saturating_sub(min_ready)
    };
    let mut kills = Vec::new();
    for live in kill_order_live(app, &counted.old) {
        if live.ready {
            if may_stop_ready == 0 {
                continue;
            }
            may_stop_ready -= 1;
        }
        kills.push((live.id, "replaced by a new version".to_owned()));
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

fn kill_order<'a>(app: &App, tasks: &[Live<'a>]) -> Vec<&'a TaskId> {
    kill_order_live(app, tasks)
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// Which tasks go first: those not yet ready, then by `killSelection`.
fn kill_order_live<'a>(app: &App, tasks: &[Live<'a>]) -> Vec<Live<'a>> {
    let mut order: Vec<Live> = tasks.to_vec();
    let youngest_first = app.definition.kill_selection == KillSelection::YoungestFirst;
    order.sort_by(|a, b| {
        let by_age = if youngest_first {
            b.task.staged_at.cmp(&a.task.staged_at)
        } else {
            a.task.staged_at.cmp(&b.task.staged_at)
        };
        a.ready.cmp(&b.ready).then(by_age).then(a.id.cmp(b.id))
    });
    order
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
