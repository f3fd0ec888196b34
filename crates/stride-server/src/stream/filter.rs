//! Which events a subscriber wants: by type, by app (an id or a `/`-ended
//! prefix) and by task. An event passes when it matches every given part.

use std::collections::BTreeSet;
use stride_log::event::{Envelope, Kind};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("unknown event type '{given}'; known types: {known}")]
    UnknownType { given: String, known: String },
    #[error("app must be an absolute id such as /prod/web, or a prefix ending in / such as /prod/")]
    BadApp,
    #[error("task must not be empty")]
    EmptyTask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMatch {
    Exact(String),
    /// Every app under this group; always ends in `/`.
    Prefix(String),
}

impl AppMatch {
    pub fn parse(raw: &str) -> Result<AppMatch, FilterError> {
        if !raw.starts_with('/') || raw.contains('\0') {
            return Err(FilterError::BadApp);
        }
        Ok(if raw.ends_with('/') {
            AppMatch::Prefix(raw.to_owned())
        } else {
            AppMatch::Exact(raw.to_owned())
        })
    }

    pub fn matches(&self, app: &str) -> bool {
        match self {
            AppMatch::Exact(id) => app == id,
            AppMatch::Prefix(prefix) => app.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Empty means every type.
    pub types: BTreeSet<Kind>,
    pub app: Option<AppMatch>,
    pub task: Option<String>,
    /// What the subscriber may see (`stride-auth`); `None`: everything.
    pub scope: Option<stride_auth::Scope>,
}

impl Filter {
    pub fn add_type(&mut self, name: &str) -> Result<(), FilterError> {
        let kind = parse_kind(name)?;
        self.types.insert(kind);
        Ok(())
    }

    pub fn set_app(&mut self, raw: &str) -> Result<(), FilterError> {
        self.app = Some(AppMatch::parse(raw)?);
        Ok(())
    }

    pub fn set_task(&mut self, raw: &str) -> Result<(), FilterError> {
        if raw.is_empty() {
            return Err(FilterError::EmptyTask);
        }
        self.task = Some(raw.to_owned());
        Ok(())
    }

    pub fn matches(&self, envelope: &Envelope) -> bool {
        if let Some(scope) = &self.scope {
            if !in_scope(scope, envelope) {
                return false;
            }
        }
        let event = &envelope.event;
        if !self.types.is_empty() && !self.types.contains(&event.kind()) {
            return false;
        }
        if let Some(app) = &self.app {
            if !event.app().is_some_and(|id| app.matches(id.as_str())) {
                return false;
            }
        }
        if let Some(task) = &self.task {
            if event.task().map(|t| t.as_str()) != Some(task.as_str()) {
                return false;
            }
        }
        true
    }
}

/// Whether a principal whose scope is `scope` may see `envelope`: with a
/// scope short of everything, only events of apps it covers (an event of
/// no app, such as the framework's subscription, is not shown).
pub fn in_scope(scope: &stride_auth::Scope, envelope: &Envelope) -> bool {
    scope.is_all()
        || envelope
            .event
            .app()
            .is_some_and(|id| scope.covers(id.as_str()))
}

/// An event type by its name, as `type` fields show it (`AppCreated`).
pub fn parse_kind(name: &str) -> Result<Kind, FilterError> {
    Kind::from_name(name).ok_or_else(|| FilterError::UnknownType {
        given: name.to_owned(),
        known: Kind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_prefixes_match_whole_segments_only() {
        let prefix = AppMatch::parse("/prod/").unwrap();
        assert!(prefix.matches("/prod/web"));
        assert!(!prefix.matches("/production/web"));
        let exact = AppMatch::parse("/prod/web").unwrap();
        assert!(exact.matches("/prod/web"));
        assert!(!exact.matches("/prod/web2"));
        assert_eq!(AppMatch::parse("prod"), Err(FilterError::BadApp));
    }

    #[test]
    fn unknown_types_name_the_known_ones() {
        let error = Filter::default().add_type("AppCreate").unwrap_err();
        assert!(error.to_string().contains("AppCreated"));
    }
}
