//! Marathon's launch backoff, kept in the projection so it is a fold of the
//! log and survives restarts: the first failure delays the next launch by
//! `backoffSeconds`, each further one multiplies the delay by
//! `backoffFactor`, capped at `maxLaunchDelaySeconds`.

use crate::event::app::AppSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchDelay {
    /// The current delay, in µs; 0 when the app has no backoff.
    pub delay: u64,
    /// No launch before this (unix µs).
    pub until: u64,
}

const MICROS: f64 = 1_000_000.0;

impl LaunchDelay {
    pub fn failed(&mut self, definition: &AppSpec, at: u64) {
        let max = (definition.max_launch_delay_seconds.max(0.0) * MICROS) as u64;
        // A failure long after the last delay ran out starts afresh, so an
        // app that crashes once a week is not held back for an hour.
        let stale = self.delay == 0 || at > self.until.saturating_add(max);
        let next = if stale {
            definition.backoff_seconds.max(0.0) * MICROS
        } else {
            self.delay as f64 * definition.backoff_factor.max(1.0)
        };
        self.delay = (next as u64).min(max);
        self.until = at.saturating_add(self.delay);
    }

    /// µs left before the next launch may go, at `now`.
    pub fn remaining(&self, now: u64) -> u64 {
        self.until.saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::LaunchDelay;
    use crate::event::app::{AppDefinition, AppSpec};
    use serde_json::json;

    fn spec(backoff: f64, factor: f64, max: f64) -> AppSpec {
        let definition: AppDefinition = serde_json::from_value(json!({
            "id": "/a", "cmd": "x", "backoffSeconds": backoff,
            "backoffFactor": factor, "maxLaunchDelaySeconds": max
        }))
        .unwrap();
        AppSpec::new(definition)
    }

    const S: u64 = 1_000_000;

    #[test]
    fn grows_by_the_factor_up_to_the_cap_then_starts_afresh_when_stale() {
        let app = spec(1.0, 2.0, 5.0);
        let mut delay = LaunchDelay::default();
        let mut at = 100 * S;
        let mut seen = Vec::new();
        for _ in 0..5 {
            delay.failed(&app, at);
            seen.push(delay.delay / S);
            assert_eq!(delay.until, at + delay.delay);
            at += S / 2;
        }
        assert_eq!(seen, [1, 2, 4, 5, 5]);
        assert_eq!(delay.remaining(at), delay.until - at);
        // Long after the last delay ran out: back to the first step.
        delay.failed(&app, delay.until + 6 * S);
        assert_eq!(delay.delay, S);
    }

    #[test]
    fn zero_backoff_never_delays() {
        let app = spec(0.0, 1.15, 300.0);
        let mut delay = LaunchDelay::default();
        delay.failed(&app, 7);
        assert_eq!((delay.delay, delay.remaining(7)), (0, 0));
    }
}
