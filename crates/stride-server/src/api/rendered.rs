//! The last app list rendered, kept while nothing it shows has changed:
//! load balancers poll `GET /v2/apps?embed=apps.tasks`, and between changes
//! every poll would otherwise serialize the same tens of megabytes. After a
//! change, only the apps that changed are rendered again (`fragments.rs`).

use super::fragments::Fragments;
use axum::body::Bytes;
use std::sync::{Arc, Mutex};
use stride_log::event::Seq;

/// What a rendering depends on: the projection's seq, the health results'
/// generation, and the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub seq: Seq,
    pub health: u64,
    pub query: String,
    /// What the asker may read: two principals share a rendering only if
    /// they see the same apps.
    pub scope: stride_auth::Scope,
}

#[derive(Clone, Default)]
pub struct Rendered {
    last: Arc<Mutex<Option<(Key, Bytes)>>>,
    /// Each app's part of the lists rendered.
    pub fragments: Fragments,
}

impl Rendered {
    pub fn get(&self, key: &Key) -> Option<Bytes> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(k, _)| k == key)
            .map(|(_, body)| body.clone())
    }

    pub fn put(&self, key: Key, body: Bytes) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, body));
    }
}
