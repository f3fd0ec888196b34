//! The one wall clock: unix time in µs, what events are stamped with and
//! what grace periods, launch backoff and drain timeouts are measured in.
//!
//! Parts that wait on such times (the reconciler, the health monitor) take
//! a `Clock`: the system's in production; in tests one that moves with
//! tokio's clock, so under `tokio::time::pause` a test advances wall time
//! and timers together and sees a five-minute grace period pass at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// `None`: the system clock. Else a reading and the tokio instant it
    /// was read at.
    anchor: Option<(u64, Instant)>,
}

impl Clock {
    pub const fn system() -> Clock {
        Clock { anchor: None }
    }

    /// Reads `start` now and moves as tokio's clock does.
    pub fn following_tokio(start: u64) -> Clock {
        Clock {
            anchor: Some((start, Instant::now())),
        }
    }

    pub fn now_micros(&self) -> u64 {
        match self.anchor {
            None => now_micros(),
            Some((start, at)) => {
                let elapsed = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                start.saturating_add(elapsed)
            }
        }
    }

    /// When, on tokio's clock, this clock reads `micros` (now if it has).
    pub fn instant_at(&self, micros: u64) -> Instant {
        Instant::now() + Duration::from_micros(micros.saturating_sub(self.now_micros()))
    }
}

/// The system clock's reading.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_clock_following_tokio_moves_only_with_it() {
        let clock = Clock::following_tokio(1_000_000);
        let due = clock.instant_at(301_000_000);
        tokio::time::sleep_until(due).await;
        assert_eq!(clock.now_micros(), 301_000_000);
        assert!(Clock::system().now_micros() > 1_600_000_000_000_000);
    }
}
