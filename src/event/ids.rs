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
