//! The pure half of Stride-run checks: which port a check probes, what an
//! answer means, and how answers add up to a verdict, as Marathon's
//! `HealthCheckActor` does it. Times are unix microseconds.

use stride_log::event::app::HealthCheck;

const MICROS: u64 = 1_000_000;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Healthy,
    Unhealthy(String),
    /// A 1xx answer with `ignoreHttp1xx`: the result stays as it was.
    Ignored,
}

/// Marathon's HTTP rule: 200-399 is alive; 1xx counts as nothing at all
/// when the check says to ignore it.
pub fn http_outcome(status: u16, ignore_1xx: bool) -> Outcome {
    match status {
        100..=199 if ignore_1xx => Outcome::Ignored,
        200..=399 => Outcome::Healthy,
        _ => Outcome::Unhealthy(format!("HTTP status {status}")),
    }
}

/// The port a check probes: its fixed `port`, else the task's port at
/// `portIndex` (the first when neither is given). `None` when the task has
/// no such port.
pub fn target_port(check: &HealthCheck, task_ports: &[u32]) -> Option<u32> {
    if let Some(port) = check.port {
        return Some(port);
    }
    let index = usize::try_from(check.port_index.unwrap_or(0)).ok()?;
    task_ports.get(index).copied()
}

/// When failures start to count and when they kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures before this instant, while the check has never succeeded,
    /// are ignored.
    pub grace_until: u64,
    /// 0: never kill.
    pub max_consecutive_failures: u32,
}

impl Policy {
    pub fn new(check: &HealthCheck, started_at: u64) -> Policy {
        Policy {
            grace_until: started_at + u64::from(check.grace_period_seconds) * MICROS,
            max_consecutive_failures: check.max_consecutive_failures,
        }
    }
}

/// One check's raw results for one task: Marathon's `Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckResult {
    pub consecutive_failures: u32,
    pub first_success: Option<u64>,
    pub last_success: Option<u64>,
    pub last_failure: Option<u64>,
    pub last_failure_cause: Option<String>,
}

/// What recording an outcome led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The result changed (or stayed) as the outcome says.
    Counted,
    /// Nothing changed: a 1xx to ignore, or a failure within the grace period.
    Ignored,
    /// Failed `failures` times in a row, reaching the check's maximum.
    Kill { failures: u32, cause: String },
}

impl CheckResult {
    /// Marathon's rule: alive when the last success is newer than any failure.
    pub fn alive(&self) -> bool {
        self.last_success
            .is_some_and(|success| self.last_failure.is_none_or(|failure| success > failure))
    }

    pub fn record(&mut self, outcome: Outcome, now: u64, policy: &Policy) -> Recorded {
        match outcome {
            Outcome::Ignored => Recorded::Ignored,
            Outcome::Healthy => {
                self.first_success.get_or_insert(now);
                self.last_success = Some(now);
                self.consecutive_failures = 0;
                Recorded::Counted
            }
            Outcome::Unhealthy(_) if self.first_success.is_none() && now < policy.grace_until => {
                Recorded::Ignored
            }
            Outcome::Unhealthy(cause) => {
                self.last_failure = Some(now);
                self.consecutive_failures += 1;
                self.last_failure_cause = Some(cause.clone());
                let max = policy.max_consecutive_failures;
                if max > 0 && self.consecutive_failures >= max {
                    Recorded::Kill {
                        failures: self.consecutive_failures,
                        cause,
                    }
                } else {
                    Recorded::Counted
                }
            }
        }
    }
}

/// A task's health over all its Stride-run checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    /// A failing check's last failure.
    pub cause: Option<String>,
}

/// The verdict over a task's `expected` checks: unhealthy as soon as one is
/// failing; healthy once every one is alive; otherwise (some check has no
/// result yet) none.
pub fn verdict<'a>(
    results: impl IntoIterator<Item = &'a CheckResult>,
    expected: usize,
) -> Option<Verdict> {
    let mut alive = 0;
    for result in results {
        if result.alive() {
            alive += 1;
        } else if result.last_failure.is_some() {
            return Some(Verdict {
                healthy: false,
                cause: result.last_failure_cause.clone(),
            });
        }
    }
    (alive == expected).then_some(Verdict {
        healthy: true,
        cause: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: serde_json::Value) -> HealthCheck {
        serde_json::from_value(body).expect("a health check")
    }

    const S: u64 = MICROS;

    #[test]
    fn http_statuses() {
        let cases = [
            (100, false, Outcome::Unhealthy("HTTP status 100".into())),
            (101, true, Outcome::Ignored),
            (199, true, Outcome::Ignored),
            (200, true, Outcome::Healthy),
            (204, false, Outcome::Healthy),
            (302, false, Outcome::Healthy),
            (399, false, Outcome::Healthy),
            (400, true, Outcome::Unhealthy("HTTP status 400".into())),
            (503, false, Outcome::Unhealthy("HTTP status 503".into())),
        ];
        for (status, ignore, want) in cases {
            assert_eq!(
                http_outcome(status, ignore),
                want,
                "{status} ignore={ignore}"
            );
        }
    }

    #[test]
    fn port_selection() {
        let ports = [31000, 31001];
        let cases = [
            (json!({}), Some(31000)),
            (json!({"portIndex": 1}), Some(31001)),
            (json!({"portIndex": 2}), None),
            (json!({"port": 8080}), Some(8080)),
            (json!({"port": 8080, "portIndex": 1}), Some(8080)),
        ];
        for (body, want) in cases {
            assert_eq!(target_port(&check(body.clone()), &ports), want, "{body}");
        }
        assert_eq!(target_port(&check(json!({})), &[]), None);
    }

    /// Each row: outcomes at the given seconds after start, for a check with
    /// a 10 s grace period and at most 3 failures; then the last step's
    /// answer and the consecutive failures and liveness after it.
    #[test]
    fn transitions() {
        let ok = || Outcome::Healthy;
        let bad = || Outcome::Unhealthy("refused".into());
        let kill = |failures| Recorded::Kill {
            failures,
            cause: "refused".into(),
        };
        type Row = (&'static str, Vec<(u64, Outcome)>, Recorded, u32, bool);
        let rows: Vec<Row> = vec![
            (
                "a failure in grace is ignored",
                vec![(5, bad())],
                Recorded::Ignored,
                0,
                false,
            ),
            (
                "after grace it counts",
                vec![(5, bad()), (11, bad())],
                Recorded::Counted,
                1,
                false,
            ),
            (
                "after a first success grace is over",
                vec![(1, ok()), (2, bad())],
                Recorded::Counted,
                1,
                false,
            ),
            (
                "a success is alive",
                vec![(1, ok())],
                Recorded::Counted,
                0,
                true,
            ),
            (
                "the maximum kills",
                vec![(11, bad()), (12, bad()), (13, bad())],
                kill(3),
                3,
                false,
            ),
            (
                "a success resets the count",
                vec![(11, bad()), (12, bad()), (13, ok()), (14, bad())],
                Recorded::Counted,
                1,
                false,
            ),
            (
                "an ignored 1xx changes nothing",
                vec![(1, ok()), (2, Outcome::Ignored)],
                Recorded::Ignored,
                0,
                true,
            ),
            (
                "recovery is alive again",
                vec![(11, bad()), (12, ok())],
                Recorded::Counted,
                0,
                true,
            ),
        ];
        let policy = Policy::new(
            &check(json!({"gracePeriodSeconds": 10, "maxConsecutiveFailures": 3})),
            100 * S,
        );
        for (name, steps, want, failures, alive) in rows {
            let mut result = CheckResult::default();
            let mut last = Recorded::Ignored;
            for (at, outcome) in steps {
                last = result.record(outcome, (100 + at) * S, &policy);
            }
            assert_eq!(last, want, "{name}");
            assert_eq!(result.consecutive_failures, failures, "{name}");
            assert_eq!(result.alive(), alive, "{name}");
        }
    }

    #[test]
    fn zero_max_failures_never_kills() {
        let policy = Policy::new(
            &check(json!({"maxConsecutiveFailures": 0, "gracePeriodSeconds": 0})),
            0,
        );
        let mut result = CheckResult::default();
        for at in 1..100 {
            let got = result.record(Outcome::Unhealthy("x".into()), at * S, &policy);
            assert_eq!(got, Recorded::Counted);
        }
        assert_eq!(result.consecutive_failures, 99);
    }

    #[test]
    fn verdicts() {
        let alive = CheckResult {
            first_success: Some(1),
            last_success: Some(1),
            ..CheckResult::default()
        };
        let failing = CheckResult {
            last_failure: Some(2),
            last_failure_cause: Some("down".into()),
            consecutive_failures: 1,
            ..alive.clone()
        };
        let healthy = Some(Verdict {
            healthy: true,
            cause: None,
        });
        let unhealthy = Some(Verdict {
            healthy: false,
            cause: Some("down".into()),
        });
        let cases = [
            (vec![], 1, None),
            (vec![&alive], 1, healthy.clone()),
            (vec![&alive], 2, None),
            (vec![&alive, &alive], 2, healthy),
            (vec![&alive, &failing], 2, unhealthy.clone()),
            (vec![&failing], 2, unhealthy),
        ];
        for (results, expected, want) in cases {
            assert_eq!(verdict(results.clone(), expected), want, "{results:?}");
        }
    }
}
