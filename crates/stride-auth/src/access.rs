//! What one principal may do: the union of its roles' grants.

use crate::{Prefix, Verb};
use std::collections::BTreeSet;

/// `verbs` on every app and group under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub prefix: Prefix,
    pub verbs: BTreeSet<Verb>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    grants: Vec<Grant>,
}

/// Where one verb is allowed: everywhere, or under some prefixes (none at
/// all when the list is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Under(Vec<Prefix>),
}

impl Access {
    pub fn new(grants: Vec<Grant>) -> Access {
        Access { grants }
    }

    /// Every verb on every id: Stride without an auth file, and
    /// `--http-credentials`' one user (Marathon's all-or-nothing).
    pub fn everything() -> Access {
        Access::new(vec![Grant {
            prefix: Prefix::root(),
            verbs: Verb::ALL.into_iter().collect(),
        }])
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Whether `verb` is allowed on the app or group `id`.
    pub fn allows(&self, verb: Verb, id: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.verbs.contains(&verb) && g.prefix.covers(id))
    }

    /// Whether `verb` is allowed somewhere: what a list or a stream needs
    /// before it is filtered.
    pub fn allows_anywhere(&self, verb: Verb) -> bool {
        self.grants.iter().any(|g| g.verbs.contains(&verb))
    }

    /// Whether `verb` is allowed on the group `id` or on part of it: a
    /// group read shows what lies inside it and is allowed.
    pub fn reaches(&self, verb: Verb, id: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.verbs.contains(&verb) && (g.prefix.covers(id) || g.prefix.within(id)))
    }

    pub fn scope(&self, verb: Verb) -> Scope {
        let mut prefixes: Vec<Prefix> = self
            .grants
            .iter()
            .filter(|g| g.verbs.contains(&verb))
            .map(|g| g.prefix.clone())
            .collect();
        if prefixes.iter().any(Prefix::is_root) {
            return Scope::All;
        }
        prefixes.sort();
        prefixes.dedup();
        Scope::Under(prefixes)
    }
}

impl Scope {
    pub fn covers(&self, id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Under(prefixes) => prefixes.iter().any(|p| p.covers(id)),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// Whether part of the group `id` lies in scope (the group itself, or
    /// a prefix inside it).
    pub fn reaches(&self, id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Under(prefixes) => prefixes.iter().any(|p| p.covers(id) || p.within(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(prefix: &str, verbs: &[Verb]) -> Grant {
        Grant {
            prefix: Prefix::parse(prefix).unwrap(),
            verbs: verbs.iter().copied().collect(),
        }
    }

    #[test]
    fn verbs_are_allowed_only_under_their_prefix() {
        let access = Access::new(vec![
            grant("/prod/", &[Verb::Read, Verb::Write]),
            grant("/", &[Verb::Read]),
        ]);
        assert!(access.allows(Verb::Write, "/prod/web"));
        assert!(!access.allows(Verb::Write, "/production/web"));
        assert!(!access.allows(Verb::Write, "/"));
        assert!(access.allows(Verb::Read, "/production/web"));
        assert!(!access.allows_anywhere(Verb::Admin));
        assert_eq!(access.scope(Verb::Read), Scope::All);
        assert_eq!(
            access.scope(Verb::Write),
            Scope::Under(vec![Prefix::parse("/prod/").unwrap()])
        );
        assert_eq!(access.scope(Verb::Stream), Scope::Under(vec![]));
        assert!(!access.scope(Verb::Stream).covers("/prod/web"));
    }

    #[test]
    fn a_group_is_reached_by_a_grant_inside_it() {
        let access = Access::new(vec![grant("/prod/web/", &[Verb::Read])]);
        assert!(access.reaches(Verb::Read, "/"));
        assert!(access.reaches(Verb::Read, "/prod"));
        assert!(access.reaches(Verb::Read, "/prod/web"));
        assert!(!access.reaches(Verb::Read, "/prod/db"));
        assert!(!access.allows(Verb::Read, "/prod"));
        assert!(access.scope(Verb::Read).reaches("/prod"));
    }
}
