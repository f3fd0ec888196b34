//! Every change to the tree of apps and groups becomes one deployment,
//! planned as Marathon's `DeploymentPlan` plans one: stop the apps that
//! go, start the new ones, then scale or restart the rest in dependency
//! order (an app waits for the apps it depends on, directly or through its
//! groups; those with the same longest chain of dependencies go together).

use super::deployments::unlock;
use crate::command::{FieldError, Rejection};
use crate::event::app::{AppDefinition, AppSpec};
use crate::event::{
    AppCreated, AppDeleted, AppId, AppScaled, AppUpdated, DeploymentAction, DeploymentId,
    DeploymentKind, DeploymentPlanned, DeploymentStep, Event, GroupDeleted, GroupUpdated,
};
use crate::projection::State;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A change to the tree, its definitions already accepted.
pub(super) struct Change {
    pub kind: DeploymentKind,
    /// The group the change is made at.
    pub group: AppId,
    /// Apps after the change; `None` deletes one.
    pub apps: BTreeMap<AppId, Option<AppDefinition>>,
    /// Apps whose tasks are all replaced even if their definition stays.
    pub restart: BTreeSet<AppId>,
    /// Groups after the change: their dependencies, or `None` to delete one
    /// with everything under it.
    pub groups: BTreeMap<AppId, Option<Vec<AppId>>>,
    /// Events that come first (kill requests, a deployment cancelled).
    pub prelude: Vec<Event>,
}

impl Change {
    pub fn new(kind: DeploymentKind, group: AppId) -> Change {
        Change {
            kind,
            group,
            apps: BTreeMap::new(),
            restart: BTreeSet::new(),
            groups: BTreeMap::new(),
            prelude: Vec::new(),
        }
    }
}

const CLASH: &str = "Groups and Applications may not have the same identifier.";

/// The events that make `change` and start its deployment, or why not.
pub(super) fn deploy(
    state: &State,
    deployment: DeploymentId,
    mut change: Change,
    force: bool,
) -> Result<Vec<Event>, Rejection> {
    // Apps under a deleted group go with it.
    let deleted_groups: Vec<AppId> = change
        .groups
        .iter()
        .filter(|(_, after)| after.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for group in &deleted_groups {
        for app in state.apps_under(group) {
            change.apps.entry(app.clone()).or_insert(None);
        }
    }
    let changed: BTreeMap<&AppId, Edit> = change
        .apps
        .iter()
        .filter_map(|(id, after)| {
            let before = state.apps.get(id).map(|a| &*a.definition);
            let edit = Edit::of(before, after.as_ref(), change.restart.contains(id))?;
            Some((id, edit))
        })
        .collect();
    // A partial update that only changed instances is a scale.
    let only_scales =
        !changed.is_empty() && changed.values().all(|e| matches!(e, Edit::Scale { .. }));
    if change.kind == DeploymentKind::Update && only_scales {
        change.kind = DeploymentKind::Scale;
    }
    let target = Target {
        state,
        apps: &change.apps,
        groups: &change.groups,
    };
    target.check_clashes(&change)?;
    let steps = plan(&target, &changed, &change.groups)?;

    let cancelled: HashSet<DeploymentId> = change
        .prelude
        .iter()
        .filter_map(|e| match e {
            Event::DeploymentFailed(f) => Some(f.deployment),
            _ => None,
        })
        .collect();
    let affected: BTreeSet<&AppId> = changed.keys().copied().collect();
    let mut events = std::mem::take(&mut change.prelude);
    events.extend(unlock(state, affected.iter().copied(), &cancelled, force)?);
    let mut creations = Vec::new();
    for (id, edit) in &changed {
        let app = (*id).clone();
        match edit {
            Edit::Delete => events.push(Event::AppDeleted(AppDeleted { app })),
            Edit::Create(after) => creations.push(Event::AppCreated(AppCreated {
                app,
                definition: AppSpec::new((*after).clone()),
            })),
            Edit::Scale { from, to } => creations.push(Event::AppScaled(AppScaled {
                app,
                previous: *from,
                instances: *to,
            })),
            Edit::Update(after) => creations.push(Event::AppUpdated(AppUpdated {
                previous: state.apps[*id].definition.clone(),
                app,
                definition: AppSpec::new((*after).clone()),
            })),
        }
    }
    for group in &deleted_groups {
        if state.has_group(group) {
            events.push(Event::GroupDeleted(GroupDeleted {
                group: group.clone(),
            }));
        }
    }
    for (group, after) in &change.groups {
        if let Some(dependencies) = after {
            let current = state.groups.get(group).map(|g| &g.dependencies);
            if current != Some(dependencies) && !group.is_root() {
                events.push(Event::GroupUpdated(GroupUpdated {
                    group: group.clone(),
                    dependencies: dependencies.clone(),
                }));
            }
        }
    }
    events.extend(creations);
    let subject = match affected.len() {
        1 => affected.iter().next().map(|id| (*id).clone()),
        _ => None,
    };
    events.push(Event::DeploymentPlanned(DeploymentPlanned {
        deployment,
        kind: change.kind,
        app: subject.unwrap_or_else(|| change.group.clone()),
        group: change.group,
        steps,
    }));
    Ok(events)
}

/// What happens to one app.
enum Edit<'a> {
    Create(&'a AppDefinition),
    Delete,
    Scale { from: u32, to: u32 },
    Update(&'a AppDefinition),
}

impl<'a> Edit<'a> {
    fn of(
        before: Option<&AppDefinition>,
        after: Option<&'a AppDefinition>,
        restart: bool,
    ) -> Option<Edit<'a>> {
        match (before, after) {
            (None, None) => None,
            (None, Some(after)) => Some(Edit::Create(after)),
            (Some(_), None) => Some(Edit::Delete),
            (Some(before), Some(after)) if restart || !only_scaled(before, after) => {
                Some(Edit::Update(after))
            }
            (Some(before), Some(after)) if before.instances == after.instances => None,
            (Some(before), Some(after)) => Some(Edit::Scale {
                from: before.instances,
                to: after.instances,
            }),
        }
    }

    /// Marathon's action for the app in the dependency-ordered steps.
    fn action(&self) -> Option<DeploymentAction> {
        match self {
            Edit::Delete => None,
            Edit::Create(_) | Edit::Scale { .. } => Some(DeploymentAction::Scale),
            // Scaled to zero, there is nothing to restart.
            Edit::Update(after) if after.instances == 0 => Some(DeploymentAction::Scale),
            Edit::Update(_) => Some(DeploymentAction::Restart),
        }
    }
}

/// The two differ in `instances` at most.
fn only_scaled(before: &AppDefinition, after: &AppDefinition) -> bool {
    let mut same = after.clone();
    same.instances = before.instances;
    &same == before
}

/// Marathon's `DeploymentPlan.apply`: stop, start, then the ordered steps;
/// empty steps are left out.
fn plan(
    target: &Target,
    changed: &BTreeMap<&AppId, Edit>,
    groups: &BTreeMap<AppId, Option<Vec<AppId>>>,
) -> Result<Vec<DeploymentStep>, Rejection> {
    let mut depth = Depth::default();
    // A dependency change can close a cycle through apps nobody changed.
    for (group, after) in groups {
        if after.is_some() {
            for app in target.apps_under(group) {
                depth.of(target, &app)?;
            }
        }
    }
    let mut stop = Vec::new();
    let mut start = Vec::new();
    let mut layers: BTreeMap<usize, DeploymentStep> = BTreeMap::new();
    for (id, edit) in changed {
        let id = (*id).clone();
        match edit {
            Edit::Delete => stop.push((id.clone(), DeploymentAction::Stop)),
            Edit::Create(_) => start.push((id.clone(), DeploymentAction::Start)),
            _ => {}
        }
        if let Some(action) = edit.action() {
            let layer = depth.of(target, &id)?;
            layers.entry(layer).or_default().push((id, action));
        }
    }
    Ok([stop, start]
        .into_iter()
        .chain(layers.into_values())
        .filter(|step| !step.is_empty())
        .collect())
}

/// Longest chains of dependencies, memoized; a cycle is refused.
#[derive(Default)]
struct Depth {
    known: HashMap<AppId, usize>,
    visiting: HashSet<AppId>,
}

impl Depth {
    /// How many apps the longest chain of dependencies from `app` holds
    /// (1 with none), as Marathon's `longestPathFromVertex` counts.
    fn of(&mut self, target: &Target, app: &AppId) -> Result<usize, Rejection> {
        if let Some(depth) = self.known.get(app) {
            return Ok(*depth);
        }
        if !self.visiting.insert(app.clone()) {
            return Err(Rejection::invalid_field(
                "/".into(),
                "Dependency graph has cyclic dependencies.".into(),
            ));
        }
        let mut longest = 0;
        for dependency in target.dependencies_of(app) {
            longest = longest.max(self.of(target, &dependency)?);
        }
        self.visiting.remove(app);
        self.known.insert(app.clone(), longest + 1);
        Ok(longest + 1)
    }
}

/// The tree as it will be: the state with the change laid over it.
struct Target<'a> {
    state: &'a State,
    apps: &'a BTreeMap<AppId, Option<AppDefinition>>,
    groups: &'a BTreeMap<AppId, Option<Vec<AppId>>>,
}

impl Target<'_> {
    fn app(&self, id: &AppId) -> Option<&AppDefinition> {
        match self.apps.get(id) {
            Some(after) => after.as_ref(),
            None => self.state.apps.get(id).map(|a| &*a.definition),
        }
    }

    fn deleted_group(&self, id: &AppId) -> bool {
        self.groups
            .iter()
            .any(|(group, after)| after.is_none() && id.is_in(group))
    }

    /// A group's dependencies, if the group will exist with any.
    fn group_dependencies(&self, id: &AppId) -> &[AppId] {
        if self.deleted_group(id) {
            return &[];
        }
        match self.groups.get(id) {
            Some(Some(dependencies)) => dependencies,
            Some(None) => &[],
            None => self
                .state
                .groups
                .get(id)
                .map_or(&[][..], |g| &g.dependencies[..]),
        }
    }

    fn apps_under(&self, group: &AppId) -> Vec<AppId> {
        let mut apps: BTreeSet<AppId> = self
            .state
            .apps_under(group)
            .filter(|id| self.app(id).is_some())
            .cloned()
            .collect();
        apps.extend(
            self.apps
                .iter()
                .filter(|(id, after)| after.is_some() && id.is_in(group) && *id != group)
                .map(|(id, _)| id.clone()),
        );
        apps.into_iter().collect()
    }

    /// The apps `app` waits for: those its `dependencies` name (an app, or
    /// every app in a group) and those its groups' dependencies name.
    fn dependencies_of(&self, app: &AppId) -> Vec<AppId> {
        let Some(definition) = self.app(app) else {
            return Vec::new();
        };
        let mut out: Vec<AppId> = Vec::new();
        for dependency in &definition.dependencies {
            if self.app(dependency).is_some() {
                out.push(dependency.clone());
            } else {
                out.extend(self.apps_under(dependency));
            }
        }
        for group in app.ancestors() {
            for dependency in self.group_dependencies(&group) {
                out.extend(self.apps_under(dependency));
            }
        }
        out
    }

    fn group_exists(&self, id: &AppId) -> bool {
        if self.deleted_group(id) && !matches!(self.groups.get(id), Some(Some(_))) {
            return false;
        }
        self.groups.get(id).is_some_and(Option::is_some) || self.state.has_group(id)
    }

    /// No app may share its id with a group that has anything in it, nor
    /// sit under another app (Marathon's `noAppsAndGroupsWithSameName`).
    fn check_clashes(&self, change: &Change) -> Result<(), Rejection> {
        let mut problems = Vec::new();
        for (id, after) in &change.apps {
            if after.is_none() {
                continue;
            }
            let group_with_content = self.group_exists(id)
                && (!self.apps_under(id).is_empty()
                    || self.state.subgroups(id).any(|g| !self.deleted_group(g))
                    || self.groups.keys().any(|g| g != id && g.is_in(id)));
            let app_above = id.ancestors().iter().any(|a| self.app(a).is_some());
            if group_with_content || app_above {
                problems.push(FieldError {
                    path: id.to_string(),
                    errors: vec![CLASH.to_owned()],
                });
            }
        }
        for (id, after) in &change.groups {
            if after.is_some()
                && (self.app(id).is_some() || id.ancestors().iter().any(|a| self.app(a).is_some()))
            {
                problems.push(FieldError {
                    path: id.to_string(),
                    errors: vec![CLASH.to_owned()],
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Rejection::invalid(problems))
        }
    }
}
