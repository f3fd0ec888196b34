//! Identifier newtypes, so an app id is never passed where a task id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A Marathon app id: an absolute slash path such as `/prod/web`.
    AppId
);
string_id!(
    /// A Mesos task id, Marathon-style: `prod_web.<uuid>`.
    TaskId
);
string_id!(
    /// A Mesos agent id.
    AgentId
);
string_id!(
    /// The framework id Mesos assigned to Stride.
    FrameworkId
);

/// A deployment id (a UUID, rendered as Marathon renders it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(pub uuid::Uuid);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TaskId {
    /// Marathon's task id shape: the app path without its leading slash, slashes
    /// turned into underscores, then a dot and a unique suffix.
    pub fn for_app(app: &AppId, unique: uuid::Uuid) -> TaskId {
        let path = app.as_str().trim_start_matches('/').replace('/', "_");
        TaskId(format!("{path}.{unique}"))
    }
}

/// App and group ids are the same kind of path: these walk the tree.
impl AppId {
    /// The root group, `/`.
    pub fn root() -> AppId {
        AppId("/".to_owned())
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The group this path is in; the root's parent is the root.
    pub fn parent(&self) -> AppId {
        match self.0.rfind('/') {
            Some(0) | None => AppId::root(),
            Some(i) => AppId(self.0[..i].to_owned()),
        }
    }

    /// Every group above this path, nearest first, without the root.
    pub fn ancestors(&self) -> Vec<AppId> {
        let mut out = Vec::new();
        let mut current = self.parent();
        while !current.is_root() {
            let next = current.parent();
            out.push(current);
            current = next;
        }
        out
    }

    /// Whether `self` is `group` or lies under it.
    pub fn is_in(&self, group: &AppId) -> bool {
        group.is_root()
            || self == group
            || self
                .0
                .strip_prefix(group.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// A path as Marathon resolves one given relative to `base`: absolute
    /// paths stand; `..` climbs; others go under `base`.
    pub fn resolve(raw: &str, base: &AppId) -> AppId {
        let mut segments: Vec<&str> = if raw.starts_with('/') {
            Vec::new()
        } else {
            base.0.split('/').filter(|s| !s.is_empty()).collect()
        };
        for segment in raw.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                name => segments.push(name),
            }
        }
        AppId(format!("/{}", segments.join("/")))
    }
}

#[cfg(test)]
mod tests {
    use super::AppId;

    #[test]
    fn paths_walk_the_tree() {
        let app = AppId::from("/prod/db/main");
        assert_eq!(app.parent(), AppId::from("/prod/db"));
        assert_eq!(
            app.ancestors(),
            [AppId::from("/prod/db"), AppId::from("/prod")]
        );
        assert_eq!(AppId::from("/a").parent(), AppId::root());
        assert!(app.is_in(&AppId::from("/prod")));
        assert!(app.is_in(&AppId::root()));
        assert!(!AppId::from("/production/x").is_in(&AppId::from("/prod")));
        let base = AppId::from("/prod/web");
        assert_eq!(AppId::resolve("db", &base), AppId::from("/prod/web/db"));
        assert_eq!(AppId::resolve("../db", &base), AppId::from("/prod/db"));
        assert_eq!(AppId::resolve("/x/y/", &base), AppId::from("/x/y"));
        assert_eq!(AppId::resolve("", &AppId::root()), AppId::root());
    }
}
