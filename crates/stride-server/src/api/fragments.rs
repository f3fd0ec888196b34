//! Each app's part of `GET /v2/apps`, rendered once and reused while what
//! it shows is unchanged, so that a list rendered afresh after a change
//! renders only the apps that changed. The published state shares every
//! value it did not change, so "unchanged" is a pointer comparison: the same
//! `Arc<App>`, the same map of its tasks (`TasksOfApp`), the same running
//! deployment, and (only for tasks with Stride-run health checks, whose
//! results live outside the state) the same health results' generation.

use super::app_view::{AppView, Embed, Sources};
use crate::health::run_by_stride;
use axum::body::Bytes;
use std::sync::{Arc, Mutex};
use stride_core::projection::{App, State, TasksOfApp};
use stride_log::event::{AppId, DeploymentId};

/// The embeds whose fragments are kept; pollers use one or two.
const EMBEDS_KEPT: usize = 4;

/// Cheap to clone; every clone is the same cache.
#[derive(Clone, Default)]
pub struct Fragments {
    kept: Arc<Mutex<Vec<Kept>>>,
}

/// The fragments of one embed.
type Kept = (Embed, ByApp);
/// Persistent: keeping a few fresh fragments copies no others.
type ByApp = imbl::HashMap<AppId, Arc<Fragment>>;

struct Fragment {
    app: Arc<App>,
    tasks: Option<TasksOfApp>,
    deployment: Option<DeploymentId>,
    /// The health results' generation shown, if its tasks' checks are run
    /// by Stride.
    health: Option<u64>,
    json: Bytes,
}

impl Fragment {
    fn still_shows(&self, app: &Arc<App>, sources: &Sources) -> bool {
        Arc::ptr_eq(&self.app, app)
            && self
                .health
                .is_none_or(|shown| shown == sources.health.generation())
            && self.deployment == running_deployment(sources.state, app)
            && same_tasks(self.tasks.as_ref(), tasks_of(sources.state, app))
    }
}

impl Fragments {
    /// `{"apps":[...]}` with each of `apps` as an `AppInfo` with `embed`,
    /// byte for byte what serializing the list whole would give.
    pub(super) fn render(
        &self,
        apps: &[&Arc<App>],
        embed: Embed,
        sources: Sources,
    ) -> Result<Bytes, serde_json::Error> {
        if embed.is_live() {
            let views: Vec<AppView> = apps
                .iter()
                .map(|app| AppView::new(app, embed, sources))
                .collect();
            return Ok(Bytes::from(serde_json::to_vec(&AppList { apps: views })?));
        }
        let kept = self.kept_for(embed);
        let mut fresh: Vec<(AppId, Fragment)> = Vec::new();
        let mut parts: Vec<Bytes> = Vec::with_capacity(apps.len());
        for app in apps {
            match kept.get(&app.definition.id) {
                Some(fragment) if fragment.still_shows(app, &sources) => {
                    parts.push(fragment.json.clone());
                }
                _ => {
                    let fragment = render_one(app, embed, &sources)?;
                    parts.push(fragment.json.clone());
                    fresh.push((app.definition.id.clone(), fragment));
                }
            }
        }
        if !fresh.is_empty() {
            self.keep(embed, kept, fresh, sources.state);
        }
        Ok(join(&parts))
    }

    fn kept_for(&self, embed: Embed) -> ByApp {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .find(|(e, _)| *e == embed)
            .map(|(_, by_app)| by_app.clone())
            .unwrap_or_default()
    }

    /// The fragments kept for `embed` become `kept` with `fresh`, less
    /// those of apps that no longer exist.
    fn keep(&self, embed: Embed, mut kept: ByApp, fresh: Vec<(AppId, Fragment)>, state: &State) {
        for (id, fragment) in fresh {
            kept.insert(id, Arc::new(fragment));
        }
        if kept.len() > state.apps.len() {
            kept.retain(|id, _| state.apps.contains_key(id));
        }
        let mut all = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(e, _)| *e != embed);
        if all.len() == EMBEDS_KEPT {
            all.remove(0);
        }
        all.push((embed, kept));
    }
}

#[derive(serde::Serialize)]
struct AppList<'a> {
    apps: Vec<AppView<'a>>,
}

fn render_one(
    app: &Arc<App>,
    embed: Embed,
    sources: &Sources,
) -> Result<Fragment, serde_json::Error> {
    let tasks = tasks_of(sources.state, app).cloned();
    let checked_by_stride = embed.tasks
        && tasks.iter().flat_map(|of_app| of_app.values()).any(|task| {
            crate::health::definition_of(sources.state, task)
                .is_some_and(|d| d.health_checks.iter().any(|c| run_by_stride(c.protocol)))
        });
    // Read before rendering: a result recorded meanwhile makes the
    // fragment stale, never wrongly fresh.
    let health = checked_by_stride.then(|| sources.health.generation());
    let json = serde_json::to_vec(&AppView::new(app, embed, *sources))?;
    Ok(Fragment {
        app: app.clone(),
        tasks,
        deployment: running_deployment(sources.state, app),
        health,
        json: Bytes::from(json),
    })
}

fn tasks_of<'a>(state: &'a State, app: &App) -> Option<&'a TasksOfApp> {
    state.tasks_by_app.get(&app.definition.id)
}

/// Changing any task of an app makes its map another.
fn same_tasks(shown: Option<&TasksOfApp>, now: Option<&TasksOfApp>) -> bool {
    match (shown, now) {
        (Some(shown), Some(now)) => shown.ptr_eq(now),
        (shown, now) => shown.is_none() && now.is_none(),
    }
}

fn running_deployment(state: &State, app: &App) -> Option<DeploymentId> {
    state.deployment_of(&app.definition.id).map(|(id, _)| *id)
}

/// `{"apps":[` + the parts, comma-separated + `]}`.
fn join(parts: &[Bytes]) -> Bytes {
    let size: usize = parts.iter().map(|p| p.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 16);
    body.extend_from_slice(br#"{"apps":["#);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(part);
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::rules::{Outcome, Policy};
    use crate::health::{HealthResults, Readiness};
    use serde_json::json;
    use stride_log::event::app::{AppDefinition, AppSpec};
    use stride_log::event::condition::Condition;
    use stride_log::event::{
        Actor, AgentId, AppCreated, AppScaled, Envelope, Event, TaskId, TaskLaunchRequested,
        TaskStatusRecorded,
    };

    type Change<'a> = Box<dyn Fn(&mut World) + 'a>;

    struct World {
        state: State,
        health: HealthResults,
        readiness: Readiness,
    }

    impl World {
        fn record(&mut self, event: Event) {
            let seq = self.state.seq.next();
            self.state.apply(&Envelope {
                seq,
                id: uuid::Uuid::now_v7(),
                recorded_at: 1_000 + seq.0,
                actor: Actor::Reconciler,
                command_id: uuid::Uuid::now_v7(),
                event,
            });
        }

        fn create(&mut self, id: &str, definition: serde_json::Value) -> Vec<TaskId> {
            let app = AppId::from(id);
            let definition: AppDefinition = serde_json::from_value(definition).expect("valid");
            self.record(Event::AppCreated(AppCreated {
                app: app.clone(),
                definition: AppSpec::new(definition),
            }));
            let version = self.state.apps[&app].version;
            (0..2)
                .map(|_| {
                    let task = TaskId::for_app(&app, uuid::Uuid::now_v7());
                    self.record(Event::TaskLaunchRequested(TaskLaunchRequested {
                        task: task.clone(),
                        app: app.clone(),
                        app_version: version,
                        agent: AgentId("agent".into()),
                        host: "host".into(),
                        ports: vec![31_000],
                        offer: String::new(),
                    }));
                    self.status(&task, Condition::Running);
                    task
                })
                .collect()
        }

        fn status(&mut self, task: &TaskId, condition: Condition) {
            self.record(Event::TaskStatusRecorded(TaskStatusRecorded {
                task: task.clone(),
                app: None,
                condition,
                mesos_state: format!("{condition:?}"),
                reason: None,
                message: None,
                agent: None,
                healthy: None,
                status_uuid: None,
                mesos_timestamp: None,
            }));
        }

        fn sources(&self) -> Sources<'_> {
            Sources {
                state: &self.state,
                health: &self.health,
                readiness: &self.readiness,
                now: 0,
            }
        }

        /// Through `fragments`, and serialized whole: they must agree.
        fn list(&self, fragments: &Fragments, embed: Embed) -> String {
            let apps: Vec<&Arc<App>> = self.state.apps.values().collect();
            let kept = fragments
                .render(&apps, embed, self.sources())
                .expect("renders");
            let whole = AppList {
                apps: apps
                    .iter()
                    .map(|app| AppView::new(app, embed, self.sources()))
                    .collect(),
            };
            let whole = serde_json::to_vec(&whole).expect("serializes");
            assert_eq!(
                String::from_utf8_lossy(&kept),
                String::from_utf8_lossy(&whole)
            );
            String::from_utf8(whole).expect("utf-8")
        }
    }

    #[test]
    fn a_list_from_kept_fragments_is_the_list_rendered_whole_after_every_change() {
        let mut world = World {
            state: State::default(),
            health: HealthResults::default(),
            readiness: Readiness::default(),
        };
        let fragments = Fragments::default();
        let embed = Embed {
            tasks: true,
            counts: true,
            deployments: true,
            ..Embed::default()
        };
        let plain = world.create("/plain", json!({"id": "/plain", "cmd": "sleep 1"}));
        let checked = world.create(
            "/checked",
            json!({"id": "/checked", "cmd": "sleep 1",
                "healthChecks": [{"protocol": "HTTP", "path": "/"}]}),
        );
        let mut shown = world.list(&fragments, embed);
        let changes: Vec<Change> = vec![
            Box::new(|w| w.status(&plain[0], Condition::Killing)),
            Box::new(|w| {
                w.record(Event::AppScaled(AppScaled {
                    app: AppId::from("/plain"),
                    previous: 1,
                    instances: 3,
                }))
            }),
            Box::new(|w| {
                let check = w.state.apps[&AppId::from("/checked")]
                    .definition
                    .health_checks[0]
                    .clone();
                let policy = Policy::new(&check, 0);
                w.health
                    .record(&checked[1], 0, Outcome::Healthy, 5_000_000, &policy, 1);
            }),
            Box::new(|w| w.status(&checked[0], Condition::Failed)),
        ];
        for (n, change) in changes.iter().enumerate() {
            change(&mut world);
            let now = world.list(&fragments, embed);
            assert_ne!(now, shown, "change {n} shows");
            shown = now;
        }
        // Nothing changed: the same list.
        assert_eq!(world.list(&fragments, embed), shown);
    }
}
