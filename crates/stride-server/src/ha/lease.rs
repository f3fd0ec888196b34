//! A leader's lease on acting. ZooKeeper expires a session only once it
//! has heard nothing from it for the session timeout, and only then can
//! another instance win; so an answer to a request sent at `t` proves no
//! other leader before `t + timeout`. The lease runs to `t + 2/3 timeout`
//! (room for clock-rate differences) of the last such answer and is
//! checked, on the monotonic clock, before every Mesos call: a leader
//! paused past its session (SIGSTOP, a long GC-like stall) finds it
//! expired the moment it runs again, before any of its tasks can act.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stride_mesos::CallGate;

#[derive(Clone)]
pub(super) struct Lease(Arc<Inner>);

struct Inner {
    origin: Instant,
    term: Duration,
    /// Nanoseconds after `origin` the lease runs to.
    until: AtomicU64,
    revoked: AtomicBool,
}

impl Lease {
    /// A lease proven by an answer to a request sent at `sent`.
    pub fn new(session_timeout: Duration, sent: Instant) -> Lease {
        let lease = Lease(Arc::new(Inner {
            origin: sent,
            term: session_timeout * 2 / 3,
            until: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
        }));
        lease.renew(sent);
        lease
    }

    /// ZooKeeper answered a request sent at `sent`.
    pub fn renew(&self, sent: Instant) {
        let until = (sent + self.0.term).saturating_duration_since(self.0.origin);
        self.0
            .until
            .fetch_max(until.as_nanos() as u64, Ordering::SeqCst);
    }

    pub fn deadline(&self) -> Instant {
        self.0.origin + Duration::from_nanos(self.0.until.load(Ordering::SeqCst))
    }

    pub fn is_held(&self) -> bool {
        !self.0.revoked.load(Ordering::SeqCst) && Instant::now() < self.deadline()
    }

    /// Closes the gate for good.
    pub fn revoke(&self) {
        self.0.revoked.store(true, Ordering::SeqCst);
    }

    pub fn gate(&self) -> CallGate {
        let lease = self.clone();
        CallGate::new(move || lease.is_held())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_two_thirds_of_the_session_from_the_last_answer_and_revoked_stays_closed() {
        let sent = Instant::now();
        let lease = Lease::new(Duration::from_secs(3), sent);
        assert_eq!(lease.deadline(), sent + Duration::from_secs(2));
        assert!(lease.is_held() && lease.gate().is_open());
        lease.renew(sent + Duration::from_secs(1));
        assert_eq!(lease.deadline(), sent + Duration::from_secs(3));
        // An older answer arriving late does not shorten it.
        lease.renew(sent);
        assert_eq!(lease.deadline(), sent + Duration::from_secs(3));
        lease.revoke();
        assert!(!lease.is_held() && !lease.gate().is_open());

        let stale = Lease::new(Duration::from_millis(30), Instant::now());
        std::thread::sleep(Duration::from_millis(25));
        assert!(!stale.is_held(), "expired by the monotonic clock alone");
    }
}
