//! Groups: the folders of Marathon's tree. Every group above an app exists
//! (created with the app, as Marathon does); empty ones come from
//! `/v2/groups`. The root is implicit. Each has its dependencies.

use super::State;
use crate::event::{AppId, Envelope, Seq};
use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Apps or groups every app in this group waits for in a deployment.
    pub dependencies: Vec<AppId>,
    /// When this group (as it is now) came to be, unix µs: its versions are
    /// the tree's versions since.
    pub since: u64,
}

impl State {
    /// The tree's current version: when it last changed (unix µs), 0 before.
    pub fn version(&self) -> u64 {
        self.tree_versions.last().map_or(0, |(at, _)| *at)
    }

    /// The tree's versions that `group` has been part of, oldest first, with
    /// the seq that made each.
    pub fn group_versions(&self, group: &AppId) -> Vector<(u64, Seq)> {
        let since = if group.is_root() {
            0
        } else {
            match self.groups.get(group) {
                Some(g) => g.since,
                None => return Vector::new(),
            }
        };
        let first = self
            .tree_versions
            .binary_search_by(|(at, _)| at.cmp(&since).then(Ordering::Greater))
            .unwrap_or_else(|first| first);
        self.tree_versions.skip(first)
    }

    /// Whether `id` names a group (the root always does).
    pub fn has_group(&self, id: &AppId) -> bool {
        id.is_root() || self.groups.contains_key(id)
    }

    /// The groups directly in `group`.
    pub fn subgroups<'a>(&'a self, group: &'a AppId) -> impl Iterator<Item = &'a AppId> + 'a {
        self.under(&self.groups, group)
            .filter(move |id| &id.parent() == group)
    }

    /// The apps directly in `group`.
    pub fn apps_in<'a>(&'a self, group: &'a AppId) -> impl Iterator<Item = &'a AppId> + 'a {
        self.under(&self.apps, group)
            .filter(move |id| &id.parent() == group)
    }

    /// The apps anywhere under `group`.
    pub fn apps_under<'a>(&'a self, group: &'a AppId) -> impl Iterator<Item = &'a AppId> + 'a {
        self.under(&self.apps, group)
    }

    /// Keys of `map` strictly under `group`, in order, found by range.
    fn under<'a, V>(
        &self,
        map: &'a OrdMap<AppId, V>,
        group: &'a AppId,
    ) -> impl Iterator<Item = &'a AppId> + 'a {
        let prefix = if group.is_root() {
            "/".to_owned()
        } else {
            format!("{group}/")
        };
        map.range(AppId(prefix.clone())..)
            .map(|(id, _)| id)
            .take_while(move |id| id.as_str().starts_with(&prefix))
    }

    /// Creates the groups above `id` that are missing, as Marathon's
    /// `putGroup` does.
    pub(super) fn ensure_ancestors(&mut self, envelope: &Envelope, id: &AppId) {
        for ancestor in id.ancestors() {
            if !self.groups.contains_key(&ancestor) {
                self.note_group(envelope, &ancestor, Some(Vec::new()));
                self.groups.insert(
                    ancestor,
                    Group {
                        dependencies: Vec::new(),
                        since: envelope.recorded_at,
                    },
                );
            }
        }
    }

    pub(super) fn update_group(&mut self, envelope: &Envelope, id: &AppId, dependencies: &[AppId]) {
        if id.is_root() {
            return;
        }
        self.ensure_ancestors(envelope, id);
        self.note_group(envelope, id, Some(dependencies.to_vec()));
        let group = self.groups.entry(id.clone()).or_insert_with(|| Group {
            dependencies: Vec::new(),
            since: envelope.recorded_at,
        });
        group.dependencies = dependencies.to_vec();
    }

    /// Removes `id` and every group under it (the root only loses those
    /// under it).
    pub(super) fn delete_group(&mut self, envelope: &Envelope, id: &AppId) {
        let doomed: Vec<AppId> = self
            .groups
            .keys()
            .filter(|g| g.is_in(id))
            .cloned()
            .collect();
        for group in doomed {
            self.note_group(envelope, &group, None);
            self.groups.remove(&group);
        }
    }
}
