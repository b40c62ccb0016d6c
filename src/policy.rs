//! The failover policy: a pure decision core. It is handed each probe's outcome with the time
//! it was seen (`now`, on the monotonic clock) and answers what to do. It does no I/O, reads no
//! clock and spawns nothing, so every rule is tested as a table of probe sequences.

use std::time::Duration;

use tokio::time::Instant;

/// Which region to use at start, and whether the env file must be written for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startup {
    /// Index into the failover order.
    pub active: usize,
    /// False when the env file already names `active`: nothing to write, nothing to restart.
    pub write: bool,
}

/// Rule 1 of the daemon: `--region` if given (it is first in the order), else the region the env
/// file names if it is in the list, else the first of the list.
pub fn startup(preferred_given: bool, env_region: Option<usize>) -> Startup {
    match (preferred_given, env_region) {
        (true, Some(0)) => Startup {
            active: 0,
            write: false,
        },
        (true, _) | (false, None) => Startup {
            active: 0,
            write: true,
        },
        (false, Some(i)) => Startup {
            active: i,
            write: false,
        },
    }
}

/// What a probe of the active region showed, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// What the policy asks the daemon to do after one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Healthy, and it was healthy before.
    Healthy,
    /// Healthy again after failures that did not last the threshold.
    Recovered { failed_for: Duration },
    /// Failing, for this long so far (zero on the first failure).
    Failing { failing_for: Duration },
    /// The outage lasted the threshold: move from `from` to `to` (indices into the order).
    /// The policy moves only when the daemon confirms with [`Policy::switched`].
    Failover {
        from: usize,
        to: usize,
        failed_for: Duration,
    },
}

/// The policy's state: the failover order's length, the active region, and the outage timer.
#[derive(Debug, Clone)]
pub struct Policy {
    regions: usize,
    active: usize,
    threshold: Duration,
    failing_since: Option<Instant>,
}

impl Policy {
    /// A policy over `regions` regions (at least one), starting on `active`.
    pub fn new(regions: usize, active: usize, threshold: Duration) -> Self {
        Policy {
            regions: regions.max(1),
            active: active.min(regions.saturating_sub(1)),
            threshold,
            failing_since: None,
        }
    }

    pub fn active(&self) -> usize {
        self.active
    }

    /// When the current run of failures began, if the active region is failing.
    pub fn failing_since(&self) -> Option<Instant> {
        self.failing_since
    }

    /// The region after the active one, wrapping around.
    pub fn next(&self) -> usize {
        (self.active + 1) % self.regions
    }

    /// Takes in one probe outcome seen at `now`.
    pub fn observe(&mut self, now: Instant, outcome: Outcome) -> Decision {
        match outcome {
            Outcome::Success => match self.failing_since.take() {
                Some(since) => Decision::Recovered {
                    failed_for: now.saturating_duration_since(since),
                },
                None => Decision::Healthy,
            },
            Outcome::Failure => {
                let since = *self.failing_since.get_or_insert(now);
                let failing_for = now.saturating_duration_since(since);
                if failing_for >= self.threshold && self.regions > 1 {
                    Decision::Failover {
                        from: self.active,
                        to: self.next(),
                        failed_for: failing_for,
                    }
                } else {
                    Decision::Failing { failing_for }
                }
            }
        }
    }

    /// The daemon moved to `to` (the env file now names it): a fresh threshold begins there.
    pub fn switched(&mut self, to: usize) {
        self.active = to % self.regions;
        self.failing_since = None;
    }

    /// Someone switched by hand to `region`: adopt it, never fight it.
    pub fn adopt(&mut self, region: usize) {
        self.switched(region);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(240);

    #[test]
    fn startup_table() {
        // (preferred given, env file's region index, want active, want write)
        let cases = [
            (false, None, 0, true),
            (false, Some(0), 0, false),
            (false, Some(2), 2, false),
            (true, None, 0, true),
            (true, Some(0), 0, false),
            (true, Some(1), 0, true),
        ];
        for (pref, env, active, write) in cases {
            assert_eq!(
                startup(pref, env),
                Startup { active, write },
                "preferred {pref}, env {env:?}"
            );
        }
    }

    /// Feeds `(seconds since start, outcome)` pairs and returns the decisions.
    fn run(policy: &mut Policy, steps: &[(u64, Outcome)]) -> Vec<Decision> {
        let t0 = Instant::now();
        steps
            .iter()
            .map(|&(s, o)| policy.observe(t0 + Duration::from_secs(s), o))
            .collect()
    }

    use Outcome::{Failure as F, Success as S};

    #[test]
    fn observation_table() {
        let secs = Duration::from_secs;
        // Each row: regions, active, the probe sequence, the last decision wanted.
        type Case = (usize, usize, Vec<(u64, Outcome)>, Decision);
        let cases: Vec<Case> = vec![
            (3, 0, vec![(0, S)], Decision::Healthy),
            (
                3,
                0,
                vec![(0, F)],
                Decision::Failing {
                    failing_for: secs(0),
                },
            ),
            (
                3,
                0,
                vec![(0, F), (239, F)],
                Decision::Failing {
                    failing_for: secs(239),
                },
            ),
            (
                3,
                0,
                vec![(0, F), (240, F)],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: secs(240),
                },
            ),
            (
                3,
                1,
                vec![(0, F), (250, F)],
                Decision::Failover {
                    from: 1,
                    to: 2,
                    failed_for: secs(250),
                },
            ),
            // wrap-around
            (
                3,
                2,
                vec![(0, F), (240, F)],
                Decision::Failover {
                    from: 2,
                    to: 0,
                    failed_for: secs(240),
                },
            ),
            // a single success resets the timer
            (
                3,
                0,
                vec![(0, F), (200, S), (210, F), (400, F)],
                Decision::Failing {
                    failing_for: secs(190),
                },
            ),
            (
                3,
                0,
                vec![(0, F), (200, S)],
                Decision::Recovered {
                    failed_for: secs(200),
                },
            ),
            (
                3,
                0,
                vec![(0, F), (200, S), (210, F), (450, F)],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: secs(240),
                },
            ),
            // the timer runs from the first failure, not from the start
            (
                3,
                0,
                vec![(0, S), (100, F), (330, F)],
                Decision::Failing {
                    failing_for: secs(230),
                },
            ),
            // one region: nowhere to go
            (
                1,
                0,
                vec![(0, F), (1000, F)],
                Decision::Failing {
                    failing_for: secs(1000),
                },
            ),
        ];
        for (regions, active, steps, want) in cases {
            let mut p = Policy::new(regions, active, T);
            let got = run(&mut p, &steps);
            assert_eq!(got.last(), Some(&want), "steps {steps:?}");
        }
    }

    #[test]
    fn a_switch_gives_the_new_region_a_full_threshold() {
        let mut p = Policy::new(3, 0, T);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert!(matches!(p.observe(at(0), F), Decision::Failing { .. }));
        assert!(matches!(
            p.observe(at(240), F),
            Decision::Failover { to: 1, .. }
        ));
        // Until the daemon confirms, the policy keeps asking (a failed write is retried).
        assert!(matches!(
            p.observe(at(250), F),
            Decision::Failover { to: 1, .. }
        ));
        p.switched(1);
        assert_eq!(p.active(), 1);
        assert!(
            matches!(p.observe(at(260), F), Decision::Failing { failing_for } if failing_for.is_zero())
        );
        assert!(matches!(p.observe(at(499), F), Decision::Failing { .. }));
        assert!(matches!(
            p.observe(at(500), F),
            Decision::Failover { from: 1, to: 2, .. }
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One step of a run: time since the previous probe, the outcome, and whether the
        /// daemon's env-file write succeeds if the policy asks for a failover.
        fn steps() -> impl Strategy<Value = Vec<(u64, bool, bool)>> {
            proptest::collection::vec((0u64..120_000, any::<bool>(), any::<bool>()), 1..200)
        }

        proptest! {
            #[test]
            fn never_switches_before_the_threshold_nor_while_healthy_and_lands_in_the_list(
                regions in 1usize..6,
                active in 0usize..6,
                threshold_ms in 1u64..600_000,
                steps in steps(),
            ) {
                let threshold = Duration::from_millis(threshold_ms);
                let mut p = Policy::new(regions, active, threshold);
                prop_assert!(p.active() < regions);
                let mut now = Instant::now();
                // The model: when the current run of failures began, by our own count.
                let mut run_start: Option<Instant> = None;
                for (gap, ok, write_ok) in steps {
                    now += Duration::from_millis(gap);
                    let before = p.active();
                    let outcome = if ok { Outcome::Success } else { Outcome::Failure };
                    let decision = p.observe(now, outcome);
                    if ok {
                        run_start = None;
                        prop_assert!(!matches!(decision, Decision::Failover { .. }), "switched while healthy");
                    } else {
                        let since = *run_start.get_or_insert(now);
                        if let Decision::Failover { from, to, failed_for } = decision {
                            prop_assert!(now - since >= threshold, "switched {:?} into a run, threshold {threshold:?}", now - since);
                            prop_assert_eq!(failed_for, now - since);
                            prop_assert_eq!(from, before);
                            prop_assert!(to < regions, "to {to} of {regions}");
                            prop_assert_ne!(to, from);
                            if write_ok {
                                p.switched(to);
                                run_start = None;
                            }
                        } else {
                            prop_assert!(regions == 1 || now - since < threshold);
                        }
                    }
                    prop_assert!(p.active() < regions);
                }
            }

            #[test]
            fn startup_lands_in_the_list(regions in 1usize..6, preferred: bool, env in proptest::option::of(0usize..6)) {
                let env = env.filter(|i| *i < regions);
                let s = startup(preferred, env);
                prop_assert!(s.active < regions);
                prop_assert_eq!(s.write, env != Some(s.active));
            }
        }
    }

    #[test]
    fn adopting_a_manual_switch_resets_the_timer() {
        let mut p = Policy::new(3, 0, T);
        let t0 = Instant::now();
        p.observe(t0, F);
        p.adopt(2);
        assert_eq!(p.active(), 2);
        assert_eq!(p.failing_since(), None);
        assert!(
            matches!(p.observe(t0 + T, F), Decision::Failing { failing_for } if failing_for.is_zero())
        );
    }
}
