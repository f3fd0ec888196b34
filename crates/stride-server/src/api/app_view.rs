//! Marathon's `AppInfo`: an app's definition, its version, and the parts
//! `embed` asks for (InfoEmbedResolver.scala, AppInfoBaseData.scala).

use super::extract::Params;
use super::tasks;
use crate::health::{HealthResults, Readiness};
use serde::Serialize;
use serde_json::{Value, json};
use stride_core::projection::{App, State as ProjectionState};
use stride_log::event::AppId;
use stride_log::event::app::AppDefinition;
use stride_log::event::condition::Condition;
use stride_log::event::json::timestamp;

/// Which optional parts of `AppInfo` to include.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Embed {
    pub tasks: bool,
    pub counts: bool,
    pub deployments: bool,
    pub last_task_failure: bool,
    pub readiness: bool,
    pub task_stats: bool,
}

impl Embed {
    /// Reads `embed` values as Marathon does: with or without the
    /// `group.apps.`, `apps.` or `app.` prefix; unknown values are ignored.
    pub fn from_params(params: &Params, mut embed: Embed) -> Embed {
        for value in params.all("embed") {
            let name = ["group.apps.", "apps.", "app."]
                .iter()
                .find_map(|prefix| value.strip_prefix(prefix))
                .unwrap_or(value);
            match name {
                // `tasks` brings the deployments along, for older clients.
                "tasks" => {
                    embed.tasks = true;
                    embed.deployments = true;
                }
                "failures" => {
                    embed.tasks = true;
                    embed.last_task_failure = true;
                    embed.deployments = true;
                }
                "deployments" => embed.deployments = true,
                "readiness" => embed.readiness = true,
                "lastTaskFailure" => embed.last_task_failure = true,
                "counts" => embed.counts = true,
                "taskStats" => embed.task_stats = true,
                _ => {}
            }
        }
        embed
    }

    /// What `GET /v2/apps` always shows.
    pub fn list() -> Embed {
        Embed {
            counts: true,
            deployments: true,
            ..Embed::default()
        }
    }

    /// What `GET /v2/apps/{id}` always shows.
    pub fn single() -> Embed {
        Embed {
            tasks: true,
            counts: true,
            deployments: true,
            last_task_failure: true,
            ..Embed::default()
        }
    }

    /// Parts that change with time or outside the log: not cacheable.
    pub fn is_live(self) -> bool {
        self.readiness || self.task_stats
    }
}

/// What an `AppInfo` is made from besides the app.
#[derive(Clone, Copy)]
pub(super) struct Sources<'a> {
    pub state: &'a ProjectionState,
    pub health: &'a HealthResults,
    pub readiness: &'a Readiness,
    /// Unix µs, for task life times.
    pub now: u64,
}

/// `AppInfo` serialized straight from the projection, with no JSON tree in
/// between: a list of 10,000 apps with their tasks is tens of megabytes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AppView<'a> {
    #[serde(flatten)]
    definition: &'a AppDefinition,
    version: String,
    version_info: VersionInfo,
    #[serde(flatten)]
    counts: Option<CountsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployments: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness_check_results: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<tasks::TaskView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_task_failure: Option<Value>,
    /// Marathon 1.4-1.6's name, which the marathon client reads; 1.7+
    /// writes `tasksStats`, which that client refuses.
    #[serde(rename = "taskStats", skip_serializing_if = "Option::is_none")]
    tasks_stats: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    last_scaling_at: String,
    last_config_change_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountsView {
    tasks_staged: usize,
    tasks_running: usize,
    tasks_healthy: usize,
    tasks_unhealthy: usize,
}

impl<'a> AppView<'a> {
    pub fn new(app: &'a App, embed: Embed, sources: Sources<'a>) -> Self {
        let state = sources.state;
        let id = &app.definition.id;
        AppView {
            definition: &app.definition,
            version: timestamp(app.version),
            version_info: VersionInfo {
                last_scaling_at: timestamp(app.version),
                last_config_change_at: timestamp(app.config_version),
            },
            counts: embed.counts.then(|| {
                let counts = tasks::Counts::of(state, id);
                CountsView {
                    tasks_staged: counts.staged,
                    tasks_running: counts.running,
                    tasks_healthy: counts.healthy,
                    tasks_unhealthy: counts.unhealthy,
                }
            }),
            deployments: embed.deployments.then(|| {
                let running = state.deployment_of(id).into_iter();
                running.map(|(d, _)| json!({ "id": d })).collect()
            }),
            readiness_check_results: embed
                .readiness
                .then(|| readiness_results(state, id, sources.readiness)),
            tasks: embed.tasks.then(|| {
                let ports = tasks::service_ports(state, Some(id));
                state
                    .tasks_of(id)
                    .map(|(task_id, task)| {
                        tasks::TaskView::new(task_id, task, state, sources.health, ports.clone())
                    })
                    .collect()
            }),
            last_task_failure: embed
                .last_task_failure
                .then(|| tasks::last_failure(state, id))
                .flatten(),
            tasks_stats: embed
                .task_stats
                .then(|| task_stats(app, state, sources.now)),
        }
    }

    pub fn json(app: &'a App, embed: Embed, sources: Sources<'a>) -> Value {
        serde_json::to_value(AppView::new(app, embed, sources)).unwrap_or_default()
    }
}

/// Marathon's `readinessCheckResults` (TaskReadinessCheckResult): the
/// verdict of each readiness check of the app's tasks. Stride keeps the
/// status code, not the response, so `lastResponse` is left out.
pub(super) fn readiness_results(
    state: &ProjectionState,
    app: &AppId,
    readiness: &Readiness,
) -> Vec<Value> {
    let mut results = Vec::new();
    for (task, _) in state.tasks_of(app) {
        for (name, answer) in readiness.results_of(task) {
            results.push(json!({"name": name, "taskId": task, "ready": answer.ready}));
        }
    }
    results
}

/// Marathon's `taskStats` (TaskStatsByVersion.scala): counts and life
/// times of the app's tasks, overall and by how they relate to its latest
/// scaling and configuration. A group with no tasks is left out.
fn task_stats(app: &App, state: &ProjectionState, now: u64) -> Value {
    let live: Vec<&stride_core::projection::Task> = state
        .tasks_of(&app.definition.id)
        .map(|(_, task)| task)
        .filter(|task| !task.condition.is_terminal())
        .collect();
    let stats = |pick: &dyn Fn(&stride_core::projection::Task) -> bool| -> Option<Value> {
        let tasks: Vec<&stride_core::projection::Task> =
            live.iter().copied().filter(|t| pick(t)).collect();
        if tasks.is_empty() {
            return None;
        }
        let counts = tasks::Counts::of_tasks(tasks.iter().copied());
        let mut lives: Vec<f64> = tasks
            .iter()
            .filter(|t| t.condition == Condition::Running)
            .filter_map(|t| t.started_at)
            .map(|started| now.saturating_sub(started) as f64 / 1_000_000.0)
            .collect();
        lives.sort_by(f64::total_cmp);
        let mut stats = json!({"counts": {"staged": counts.staged, "running": counts.running,
            "healthy": counts.healthy, "unhealthy": counts.unhealthy}});
        if !lives.is_empty() {
            let average = lives.iter().sum::<f64>() / lives.len() as f64;
            let median = match lives.len() % 2 {
                0 => (lives[lives.len() / 2 - 1] + lives[lives.len() / 2]) / 2.0,
                _ => lives[lives.len() / 2],
            };
            stats["lifeTime"] = json!({"averageSeconds": average, "medianSeconds": median});
        }
        Some(json!({ "stats": stats }))
    };
    let mut out = serde_json::Map::new();
    for (name, value) in [
        (
            "startedAfterLastScaling",
            stats(&|t| t.staged_at >= app.version),
        ),
        (
            "withLatestConfig",
            stats(&|t| t.app_version >= app.config_version),
        ),
        (
            "withOutdatedConfig",
            stats(&|t| t.app_version < app.config_version),
        ),
        ("totalSummary", stats(&|_| true)),
    ] {
        if let Some(value) = value {
            out.insert(name.to_owned(), value);
        }
    }
    Value::Object(out)
}
