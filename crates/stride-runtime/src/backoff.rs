//! The one retry delay: capped exponential backoff with jitter, so that
//! many clients (sidecars, callbacks, schedulers, one scheduler across
//! several masters) that failed together do not retry in lockstep.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Steps from `initial`, doubling up to `max` (`initial` is capped by
    /// `max` too).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.min(max);
        Backoff {
            initial,
            max,
            step: initial,
        }
    }

    /// The delay before the next attempt: between half and all of the
    /// current step, at random. Each call doubles the step up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=step - half)
    }

    /// After a success, start again from the initial step.
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn each_delay_is_half_to_all_of_a_doubling_capped_step(
            initial_ms in 0u64..100_000,
            max_ms in 0u64..u64::MAX / 1_000_000,
            attempts in 1usize..80,
            reset_after in 0usize..80,
        ) {
            let (initial, max) = (Duration::from_millis(initial_ms), Duration::from_millis(max_ms));
            let mut backoff = Backoff::new(initial, max);
            let mut step = initial.min(max);
            for attempt in 0..attempts {
                if attempt == reset_after {
                    backoff.reset();
                    step = initial.min(max);
                }
                let delay = backoff.next_delay();
                prop_assert!(delay >= step / 2 && delay <= step, "{delay:?} outside {step:?}");
                prop_assert!(delay <= max);
                step = step.saturating_mul(2).min(max);
            }
        }
    }

    #[test]
    fn clients_that_fail_together_do_not_retry_together() {
        let delays: std::collections::BTreeSet<Duration> = (0..100)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).next_delay())
            .collect();
        // 100 draws from half a second of nanoseconds: all but a few differ.
        assert!(delays.len() > 90, "{} distinct delays", delays.len());
    }
}
