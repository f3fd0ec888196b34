//! Load balancer sidecars following `/v1/stream`, and how far each has
//! applied the log.
//!
//! A sidecar says `hello` once, then `applied` whenever its proxy has taken
//! every change up to a seq (`protocol::ClientMessage`). A drained task is killed only once
//! `confirmed_upto()` reaches its drain event, so no confirming proxy still
//! routes new traffic to it.
//! Kept in memory only: after a restart Stride learns it again as sidecars
//! reconnect, and a disconnected sidecar is not waited for.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use stride_log::event::Seq;
use stride_log::event::json::timestamp;
use tokio::sync::Notify;

/// One connected sidecar, as `GET /v1/sidecars` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarInfo {
    pub name: String,
    pub applied_seq: Seq,
    /// When it said hello, RFC 3339.
    pub connected_since: String,
    pub drain_confirmation: bool,
}

#[derive(Clone, Default)]
pub struct Sidecars {
    registry: Arc<Mutex<Registry>>,
    /// Woken whenever `confirmed_upto` may have moved, so the reconciler
    /// (its one waiter; a wake with nobody waiting is kept for it) kills a
    /// drained task as soon as it may.
    moved: Arc<Notify>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    connected: BTreeMap<u64, SidecarInfo>,
}

/// A registered connection; dropping it (the connection ended) forgets it.
pub struct Registration {
    sidecars: Sidecars,
    id: u64,
}

impl Sidecars {
    pub fn register(
        &self,
        name: String,
        drain_confirmation: bool,
        now_micros: u64,
    ) -> Registration {
        let mut registry = self.lock();
        registry.next_id += 1;
        let id = registry.next_id;
        registry.connected.insert(
            id,
            SidecarInfo {
                name,
                applied_seq: Seq(0),
                connected_since: timestamp(now_micros),
                drain_confirmation,
            },
        );
        Registration {
            sidecars: self.clone(),
            id,
        }
    }

    /// Connected sidecars, in connection order.
    pub fn all(&self) -> Vec<SidecarInfo> {
        self.lock().connected.values().cloned().collect()
    }

    /// The seq every connected sidecar that asked for drain confirmation
    /// has applied; `None` when there is no such sidecar to wait for.
    pub fn confirmed_upto(&self) -> Option<Seq> {
        self.lock()
            .connected
            .values()
            .filter(|s| s.drain_confirmation)
            .map(|s| s.applied_seq)
            .min()
    }

    /// Resolves the next time a sidecar applies more, comes or goes.
    pub async fn moved(&self) {
        self.moved.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Registration {
    /// Never moves backwards: a late or repeated message changes nothing.
    pub fn applied(&self, seq: Seq) {
        if let Some(info) = self.sidecars.lock().connected.get_mut(&self.id) {
            info.applied_seq = info.applied_seq.max(seq);
        }
        self.sidecars.moved.notify_one();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sidecars.lock().connected.remove(&self.id);
        self.sidecars.moved.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_applied(sidecars: &Sidecars, seq: Seq) -> bool {
        sidecars.confirmed_upto().is_none_or(|upto| upto >= seq)
    }

    #[test]
    fn only_connected_confirming_sidecars_hold_back_drains() {
        let sidecars = Sidecars::default();
        assert!(all_applied(&sidecars, Seq(10)), "nobody to wait for");
        let confirming = sidecars.register("lb-a".into(), true, 0);
        let observer = sidecars.register("lb-b".into(), false, 0);
        assert!(!all_applied(&sidecars, Seq(10)));
        confirming.applied(Seq(12));
        confirming.applied(Seq(11));
        assert!(all_applied(&sidecars, Seq(12)));
        assert!(
            !all_applied(&sidecars, Seq(13)),
            "observers are not waited for"
        );
        let late = sidecars.register("lb-c".into(), true, 0);
        assert!(!all_applied(&sidecars, Seq(12)));
        drop(late);
        assert!(
            all_applied(&sidecars, Seq(12)),
            "a gone sidecar is not waited for"
        );
        observer.applied(Seq(1));
        let names: Vec<_> = sidecars
            .all()
            .into_iter()
            .map(|s| (s.name, s.applied_seq))
            .collect();
        assert_eq!(names, [("lb-a".into(), Seq(12)), ("lb-b".into(), Seq(1))]);
    }
}
