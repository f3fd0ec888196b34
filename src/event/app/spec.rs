//! `AppSpec`: how a definition is stored in events and snapshots.

use super::AppDefinition;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// An app definition as stored in events and snapshots.
///
/// In binary formats (bincode) it is the definition's JSON text, so the
/// definition can grow fields without a log migration; in JSON it is the
/// definition object itself. Shared, because versions are kept in history.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec(pub Arc<AppDefinition>);

impl AppSpec {
    pub fn new(definition: AppDefinition) -> AppSpec {
        AppSpec(Arc::new(definition))
    }
}

impl std::ops::Deref for AppSpec {
    type Target = AppDefinition;
    fn deref(&self) -> &AppDefinition {
        &self.0
    }
}

impl Serialize for AppSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            let text = serde_json::to_string(&*self.0).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(&text)
        }
    }
}

impl<'de> Deserialize<'de> for AppSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let definition = if deserializer.is_human_readable() {
            AppDefinition::deserialize(deserializer)?
        } else {
            let text = String::deserialize(deserializer)?;
            serde_json::from_str(&text).map_err(serde::de::Error::custom)?
        };
        Ok(AppSpec::new(definition))
    }
}
