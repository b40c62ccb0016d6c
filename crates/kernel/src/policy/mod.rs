//! The failover policy: a pure decision core. It is handed each probe's outcome with the time
//! it was seen (`now`, on the monotonic clock), and each standby check's result, and answers
//! what to do. It does no I/O, reads no clock and spawns nothing, so every rule is tested as a
//! table of probe sequences: the outage threshold, the order and its wrap-around, the choice of
//! a healthy standby, the all-down and is-it-me guards, the throughput gate, failback, the pin
//! of a manual switch and flap damping.

use std::time::{Duration, Instant};

use crate::damping::Damping;
pub use crate::decision::{
    Cause, Decision, Hold, Input, Outcome, StartFacts, StartWhy, Startup, startup,
};
pub use crate::rules::{Choose, Failback, Rules};
use crate::standby::Standbys;
use state::{Fault, Gate, Outage, Standing, Switching, Tunnel};

mod driver;
mod state;
mod step;

pub use driver::{Act, Done, Effects, drive, perform, ready};

/// The policy's state: the order's length, where it stands on the active region (its outage
/// and what was said of it), what the standby checks say, the recent automatic switches, the
/// pin of a manual switch and whether switching is paused.
#[derive(Debug, Clone)]
pub struct Policy {
    regions: usize,
    rules: Rules,
    on: Standing,
    standbys: Standbys,
    damping: Damping,
    /// The region a manual switch pinned: no automatic failback away from it.
    pinned: Option<usize>,
    /// When an outage last moved away from the preferred region.
    left_preferred_at: Option<Instant>,
    switching: Switching,
}

impl Policy {
    /// A policy over `regions` regions (at least one) under the plain rule, starting on `active`.
    pub fn new(regions: usize, active: usize, threshold: Duration) -> Self {
        Policy::with_rules(
            Rules::plain(threshold),
            Standbys::unchecked(regions.max(1)),
            active,
        )
    }

    pub fn with_rules(rules: Rules, standbys: Standbys, active: usize) -> Self {
        let regions = standbys.len().max(1);
        Policy {
            regions,
            on: Standing::on(active.min(regions - 1)),
            damping: Damping::new(rules.max_switches_per_hour, rules.threshold),
            rules,
            standbys,
            pinned: None,
            left_preferred_at: None,
            switching: Switching::Automatic,
        }
    }

    /// The region a write is still owed for, if any.
    pub fn owed(&self) -> Option<usize> {
        self.on.owed
    }

    /// Whether automatic switching is paused.
    pub fn paused(&self) -> bool {
        self.switching == Switching::Paused
    }

    /// Marks a due switch announced; true the first time for this cause, target and outage.
    fn announce(&mut self, cause: Cause, to: usize) -> bool {
        let since = match cause {
            Cause::Outage => self.on.outage.since(),
            Cause::Failback => None,
        };
        let key = Some((cause, to, since));
        let first = self.on.announced != key;
        self.on.announced = key;
        first
    }

    pub fn active(&self) -> usize {
        self.on.region
    }

    /// When the current run of failures began, if the active region is failing.
    pub fn failing_since(&self) -> Option<Instant> {
        self.on.outage.since()
    }

    /// The region after the active one, wrapping around.
    pub fn next(&self) -> usize {
        (self.on.region + 1) % self.regions
    }

    /// What the standby checks say.
    pub fn standbys(&self) -> &Standbys {
        &self.standbys
    }

    /// Takes in one probe outcome seen at `now`.
    pub fn observe(&mut self, now: Instant, outcome: Outcome) -> Decision {
        // The tunnel answered: it is no longer a reason to hold a switch.
        if outcome != Outcome::TunnelDown {
            self.on.tunnel = Tunnel::Clear;
        }
        let decision = match outcome {
            Outcome::Success => match self.on.outage.since() {
                Some(since) => {
                    self.on.outage = Outage::Healthy;
                    Decision::Recovered {
                        failed_for: now.saturating_duration_since(since),
                    }
                }
                None => self.failback(now).unwrap_or(Decision::Healthy),
            },
            // Nothing is known of the region: no outage runs on it, and what ran is forgotten.
            Outcome::TunnelMisconfigured => {
                self.on.outage = Outage::Healthy;
                Decision::Healthy
            }
            Outcome::Failure => self.failed(now, Fault::Region),
            Outcome::TunnelDown => self.failed(now, Fault::Tunnel),
        };
        self.settle(decision)
    }

    /// A failure, `fault`'s, seen at `now`: failing, or past the threshold what to do.
    fn failed(&mut self, now: Instant, fault: Fault) -> Decision {
        self.on.outage = self.on.outage.failed(now, fault);
        let since = self.on.outage.since().unwrap_or(now);
        let failing_for = now.saturating_duration_since(since);
        // A restart in place gives another full threshold, whatever fails after it.
        let healing = (self.on.outage.healed_at())
            .is_some_and(|at| now.saturating_duration_since(at) < self.rules.threshold);
        let due = failing_for >= self.rules.threshold;
        if due && fault == Fault::Tunnel {
            self.local_outage(now, failing_for)
        } else if due && self.regions > 1 && !healing {
            self.outage(now, failing_for)
        } else {
            self.failback(now)
                .unwrap_or(Decision::Failing { failing_for })
        }
    }

    /// The throughput measured after [`Decision::MeasureThroughput`] (kbit/s; `None` when the
    /// download failed): the failover goes ahead, or is held back until a later measurement.
    pub fn throughput(&mut self, now: Instant, kbps: Option<u64>) -> Decision {
        let Some(since) = self.on.outage.since() else {
            return Decision::Healthy;
        };
        let passed = match self.rules.min_kbps {
            None => true,
            Some(min) => kbps.is_some_and(|k| k >= min),
        };
        let gate = if passed {
            Gate::Passed { at: now }
        } else {
            Gate::Low {
                kbps,
                retry_at: now + self.rules.gate_retry,
            }
        };
        self.on.outage = self.on.outage.measured(gate);
        let decision = self.outage(now, now.saturating_duration_since(since));
        self.settle(decision)
    }

    /// Forgets what held a switch back once nothing does.
    fn settle(&mut self, decision: Decision) -> Decision {
        if !matches!(
            decision,
            Decision::Held { .. } | Decision::MeasureThroughput { .. }
        ) {
            self.on.held = None;
        }
        decision
    }

    /// The outage lasted the threshold: where to, unless a guard holds it back.
    fn outage(&mut self, now: Instant, failed_for: Duration) -> Decision {
        let from = self.on.region;
        if self.standbys.host_at_fault(from) {
            return self.hold(Cause::Outage, None, Hold::HostNetwork);
        }
        let Some(to) = self.standbys.choose(from, self.rules.choose) else {
            return self.hold(Cause::Outage, None, Hold::AllRegionsDown);
        };
        if let Some(at) = self.damping.next_allowed(now) {
            let next_allowed_in = at.saturating_duration_since(now);
            return self.hold(Cause::Outage, Some(to), Hold::Damped { next_allowed_in });
        }
        let gate = self.on.outage.gate();
        if self.rules.min_kbps.is_some() && gate != (Gate::Passed { at: now }) {
            if let Gate::Low { kbps, retry_at } = gate
                && now < retry_at
            {
                return self.hold(Cause::Outage, Some(to), Hold::LowThroughput { kbps });
            }
            return Decision::MeasureThroughput { from, to };
        }
        if self.paused() {
            return self.hold(Cause::Outage, Some(to), Hold::Paused);
        }
        Decision::Failover {
            from,
            to,
            failed_for,
            announce: self.announce(Cause::Outage, to),
        }
    }

    /// The outage is the local tunnel's: restart in place first; switch only if it lasts
    /// another threshold after that, and never again while it stays down across a switch.
    fn local_outage(&mut self, now: Instant, failed_for: Duration) -> Decision {
        if self.standbys.host_at_fault(self.on.region) {
            return self.hold(Cause::Outage, None, Hold::HostNetwork);
        }
        if self.on.tunnel == Tunnel::StayedDown {
            return self.hold(Cause::Outage, None, Hold::TunnelDown);
        }
        match self.on.outage.healed_at() {
            None if self.paused() => self.hold(Cause::Outage, None, Hold::Paused),
            None => Decision::RestartInPlace {
                failed_for,
                announce: true,
            },
            Some(at) if now.saturating_duration_since(at) < self.rules.threshold => {
                Decision::Failing {
                    failing_for: failed_for,
                }
            }
            Some(_) if self.regions > 1 => self.outage(now, failed_for),
            Some(_) => Decision::Failing {
                failing_for: failed_for,
            },
        }
    }

    /// Whether the failures of the current outage are the local tunnel's refusals.
    pub fn tunnel_down(&self) -> bool {
        self.on.outage.fault() == Some(Fault::Tunnel)
    }

    /// Failback is due when it is on, the active region is not the preferred one nor pinned,
    /// and the preferred region has been up for `failback_after` since the outage that left it.
    fn failback(&mut self, now: Instant) -> Option<Decision> {
        let after = self.rules.failback_after?;
        let active = self.on.region;
        if active == 0 || self.pinned == Some(active) {
            return None;
        }
        let up_since = self.standbys.up_since(0)?;
        let since = self
            .left_preferred_at
            .map_or(up_since, |left| left.max(up_since));
        let healthy_for = now.saturating_duration_since(since);
        if healthy_for < after {
            return None;
        }
        if let Some(at) = self.damping.next_allowed(now) {
            let next_allowed_in = at.saturating_duration_since(now);
            return Some(self.hold(Cause::Failback, Some(0), Hold::Damped { next_allowed_in }));
        }
        if self.paused() {
            return Some(self.hold(Cause::Failback, Some(0), Hold::Paused));
        }
        Some(Decision::Failback {
            from: active,
            to: 0,
            healthy_for,
            announce: self.announce(Cause::Failback, 0),
        })
    }

    fn hold(&mut self, cause: Cause, to: Option<usize>, reason: Hold) -> Decision {
        let key = (cause, std::mem::discriminant(&reason));
        let announce = self.on.held != Some(key);
        self.on.held = Some(key);
        Decision::Held {
            cause,
            from: self.on.region,
            to,
            reason,
            announce,
        }
    }

    /// The daemon moved to `to` (the env file now names it): a fresh threshold begins there.
    /// Not an automatic switch: nothing is counted (start-up).
    pub fn switched(&mut self, to: usize) {
        self.on = Standing::on(to % self.regions);
    }

    /// The daemon made the automatic switch it was asked for, at `now`: it counts for damping,
    /// and an outage ends the pin of a manual switch. True when a pin was dropped.
    pub fn moved(&mut self, now: Instant, to: usize, cause: Cause) -> bool {
        self.damping.record(now);
        let tunnel = if cause == Cause::Outage && self.tunnel_down() {
            Tunnel::StayedDown
        } else {
            Tunnel::Clear
        };
        if cause == Cause::Outage && self.on.region == 0 {
            self.left_preferred_at = Some(now);
        }
        let unpinned = cause == Cause::Outage && self.pinned.take().is_some();
        self.on = Standing {
            tunnel,
            ..Standing::on(to % self.regions)
        };
        unpinned
    }

    /// Someone switched by hand to `region`: adopt it, never fight it, and pin it.
    pub fn adopt(&mut self, region: usize) {
        self.switched(region);
        self.pinned = Some(self.on.region);
    }

    /// Sets or clears the pin (from the state dir: `switch` and `switch --unpin`).
    pub fn pin(&mut self, region: Option<usize>) {
        self.pinned = region.filter(|&r| r < self.regions);
    }

    pub fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// How long ago each automatic switch of the last hour was (for the handler's memory).
    pub fn switch_ages(&self, now: Instant) -> Vec<Duration> {
        self.damping.ages(now)
    }

    /// When flap damping next allows an automatic switch, if it holds one back now.
    pub fn hold_down_until(&mut self, now: Instant) -> Option<Instant> {
        self.damping.next_allowed(now)
    }

    /// Automatic switches within the last hour.
    pub fn recent_switches(&self) -> usize {
        self.damping.recent()
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standby::Subject;

    const T: Duration = Duration::from_secs(240);

    #[test]
    fn startup_table() {
        use StartWhy::*;
        // (env file's region, consistent, preferred changed, preferred known down) ->
        // (active, write, why)
        let cases = [
            ((None, false, false, false), (0, true, NoRecord)),
            ((Some(0), true, false, false), (0, false, Kept)),
            ((Some(2), true, false, false), (2, false, Kept)),
            // a restart of the handler after a failover keeps the region it failed over to
            ((Some(1), true, false, false), (1, false, Kept)),
            ((Some(1), false, false, false), (0, true, Inconsistent)),
            ((Some(0), false, false, false), (0, true, Inconsistent)),
            // an operator's new --region is acted on like a switch
            ((Some(1), true, true, false), (0, true, NewPreference)),
            ((Some(0), true, true, false), (0, false, NewPreference)),
            ((None, false, true, false), (0, true, NewPreference)),
            // unless it is known down: the record stands
            ((Some(1), true, true, true), (1, false, Kept)),
        ];
        for (
            (env_region, env_consistent, preferred_changed, preferred_down),
            (active, write, why),
        ) in cases
        {
            let facts = StartFacts {
                env_region,
                env_consistent,
                preferred_changed,
                preferred_down,
            };
            assert_eq!(startup(facts), Startup { active, write, why }, "{facts:?}");
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
                    announce: true,
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
                    announce: true,
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
                    announce: true,
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
                    announce: true,
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
                        if let Decision::Failover { from, to, failed_for, .. } = decision {
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
                let s = startup(StartFacts {
                    env_region: env,
                    env_consistent: true,
                    preferred_changed: preferred,
                    preferred_down: false,
                });
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

    // Region intelligence: standby checks, guards, failback, pin and damping, as tables of
    // timed events fed to the policy the way the daemon feeds it.

    /// One timed input: a probe of the active region, a standby check (subject, ok, latency
    /// ms), a pin from the state dir, a manual switch adopted.
    #[derive(Clone, Copy, Debug)]
    enum Ev {
        P(Outcome),
        /// A probe of whichever region is active: failing when it is marked down here.
        D([bool; 3]),
        C(Subject, bool, u64),
        Pin(Option<usize>),
        Adopt(usize),
    }

    use Subject::{Reference as Ref, Region as Reg};

    /// `ev` every `step` seconds from `from` until before `to`.
    fn every(from: u64, to: u64, step: u64, ev: Ev) -> Vec<(u64, Ev)> {
        (from..to).step_by(step as usize).map(|s| (s, ev)).collect()
    }

    /// Merges timed events (stable: at equal times, earlier lists first).
    fn merge(lists: Vec<Vec<(u64, Ev)>>) -> Vec<(u64, Ev)> {
        let mut all: Vec<(u64, Ev)> = lists.into_iter().flatten().collect();
        all.sort_by_key(|(s, _)| *s);
        all
    }

    /// Feeds the events; makes every switch asked for, as the daemon does; returns the
    /// decisions with their times.
    fn sim(p: &mut Policy, steps: &[(u64, Ev)]) -> Vec<(u64, Decision)> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        for &(s, ev) in steps {
            let now = t0 + Duration::from_secs(s);
            let d = match ev {
                Ev::P(o) => Some(p.observe(now, o)),
                Ev::D(down) => {
                    let o = if down[p.active()] { F } else { S };
                    Some(p.observe(now, o))
                }
                Ev::C(subject, ok, ms) => {
                    p.step(
                        now,
                        Input::Check {
                            subject,
                            ok,
                            latency: Duration::from_millis(ms),
                        },
                    );
                    None
                }
                Ev::Pin(r) => {
                    p.pin(r);
                    None
                }
                Ev::Adopt(r) => {
                    p.adopt(r);
                    None
                }
            };
            if let Some(d) = d {
                match d {
                    Decision::Failover { to, .. } => {
                        p.moved(now, to, Cause::Outage);
                    }
                    Decision::Failback { to, .. } => {
                        p.moved(now, to, Cause::Failback);
                    }
                    _ => {}
                }
                out.push((s, d));
            }
        }
        out
    }

    /// The switches made: (time, from, to, cause).
    fn switches(out: &[(u64, Decision)]) -> Vec<(u64, usize, usize, Cause)> {
        out.iter()
            .filter_map(|&(s, d)| match d {
                Decision::Failover { from, to, .. } => Some((s, from, to, Cause::Outage)),
                Decision::Failback { from, to, .. } => Some((s, from, to, Cause::Failback)),
                _ => None,
            })
            .collect()
    }

    /// The announced holds: (time, cause, reason).
    fn announced(out: &[(u64, Decision)]) -> Vec<(u64, Cause, &'static str)> {
        out.iter()
            .filter_map(|&(s, d)| match d {
                Decision::Held {
                    cause,
                    reason,
                    announce: true,
                    ..
                } => Some((s, cause, reason.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Three regions (0 preferred), each checked unless told, `refs` reference targets,
    /// rise = fall = 1, threshold 240 s.
    fn policy(checked: [bool; 3], refs: usize, rules: Rules) -> Policy {
        Policy::with_rules(rules, Standbys::new(&checked, refs, 1, 1), 0)
    }

    fn rules() -> Rules {
        Rules::plain(T)
    }

    const ALL: [bool; 3] = [true, true, true];

    #[test]
    fn an_outage_moves_to_the_next_healthy_standby() {
        // (health of regions 1 and 2, wanted target); active 0 fails from t=0
        let cases = [
            ((false, true), Some(2)),
            ((true, true), Some(1)),
            ((true, false), Some(1)),
            ((false, false), None),
        ];
        for ((nam, apac), want) in cases {
            let mut p = policy(ALL, 0, rules());
            let steps = merge(vec![
                every(0, 300, 10, Ev::C(Reg(1), nam, 10)),
                every(0, 300, 10, Ev::C(Reg(2), apac, 10)),
                every(0, 300, 10, Ev::P(F)),
            ]);
            let got = switches(&sim(&mut p, &steps));
            let want: Vec<_> = want
                .map(|to| (240, 0, to, Cause::Outage))
                .into_iter()
                .collect();
            assert_eq!(got, want, "NAM up {nam}, APAC up {apac}");
        }
    }

    #[test]
    fn a_standby_without_a_verdict_yet_is_not_chosen() {
        let mut p = Policy::with_rules(rules(), Standbys::new(&ALL, 0, 3, 3), 0);
        // NAM has had two good checks of the three it needs; APAC three.
        let steps = merge(vec![
            vec![(100, Ev::C(Reg(1), true, 5)), (110, Ev::C(Reg(1), true, 5))],
            every(100, 130, 10, Ev::C(Reg(2), true, 5)),
            every(0, 250, 10, Ev::P(F)),
        ]);
        assert_eq!(switches(&sim(&mut p, &steps)), [(240, 0, 2, Cause::Outage)]);
    }

    #[test]
    fn latency_choice_takes_the_fastest_healthy_standby() {
        // (latency ms of region 1, of region 2, wanted target)
        for (l1, l2, want) in [(80, 20, 2), (20, 80, 1), (30, 30, 1)] {
            let mut p = policy(
                ALL,
                0,
                Rules {
                    choose: Choose::Latency,
                    ..rules()
                },
            );
            let steps = merge(vec![
                every(0, 250, 10, Ev::C(Reg(1), true, l1)),
                every(0, 250, 10, Ev::C(Reg(2), true, l2)),
                every(0, 250, 10, Ev::P(F)),
            ]);
            assert_eq!(
                switches(&sim(&mut p, &steps)),
                [(240, 0, want, Cause::Outage)],
                "latencies {l1} {l2}"
            );
        }
    }

    #[test]
    fn all_down_stays_says_so_once_and_moves_when_one_comes_back() {
        let mut p = policy(ALL, 0, rules());
        let steps = merge(vec![
            every(0, 2000, 10, Ev::C(Reg(1), false, 0)),
            every(0, 1500, 10, Ev::C(Reg(2), false, 0)),
            every(1500, 2000, 10, Ev::C(Reg(2), true, 9)),
            every(0, 2000, 10, Ev::D([true, true, false])),
        ]);
        let out = sim(&mut p, &steps);
        assert_eq!(
            announced(&out),
            [(240, Cause::Outage, "all_regions_down")],
            "once, not every tick"
        );
        assert_eq!(switches(&out), [(1500, 0, 2, Cause::Outage)]);
    }

    #[test]
    fn is_it_me_table() {
        // (checked regions, reference results, standby 1 and 2 up, wanted announced reasons,
        //  wanted switch target)
        type Case = (
            [bool; 3],
            &'static [bool],
            (bool, bool),
            &'static [&'static str],
            Option<usize>,
        );
        let cases: &[Case] = &[
            (ALL, &[false], (false, false), &["host_network"], None),
            (
                ALL,
                &[false, false],
                (false, false),
                &["host_network"],
                None,
            ),
            (
                ALL,
                &[false, true],
                (false, false),
                &["all_regions_down"],
                None,
            ),
            (ALL, &[], (false, false), &["all_regions_down"], None),
            (ALL, &[false], (false, true), &[], Some(2)),
            // without standby checks the references alone say it is the host
            (
                [false; 3],
                &[false],
                (false, false),
                &["host_network"],
                None,
            ),
            ([false; 3], &[true], (false, false), &[], Some(1)),
        ];
        for (checked, refs, (nam, apac), want_reasons, want_to) in cases {
            let mut p = policy(*checked, refs.len(), rules());
            let mut lists = vec![
                every(0, 400, 10, Ev::C(Reg(1), *nam, 10)),
                every(0, 400, 10, Ev::C(Reg(2), *apac, 10)),
                every(0, 400, 10, Ev::P(F)),
            ];
            for (i, ok) in refs.iter().enumerate() {
                lists.push(every(0, 400, 10, Ev::C(Ref(i), *ok, 10)));
            }
            let out = sim(&mut p, &merge(lists));
            let reasons: Vec<_> = announced(&out).iter().map(|a| a.2).collect();
            assert_eq!(&reasons, want_reasons, "{checked:?} refs {refs:?}");
            let to: Vec<_> = switches(&out).iter().map(|s| s.2).collect();
            assert_eq!(to, want_to.iter().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_change_of_what_holds_the_failover_is_announced_again() {
        let mut p = policy(ALL, 1, rules());
        let steps = merge(vec![
            every(0, 800, 10, Ev::C(Reg(1), false, 0)),
            every(0, 800, 10, Ev::C(Reg(2), false, 0)),
            every(0, 500, 10, Ev::C(Ref(0), false, 0)),
            every(500, 800, 10, Ev::C(Ref(0), true, 0)),
            every(0, 800, 10, Ev::P(F)),
        ]);
        assert_eq!(
            announced(&sim(&mut p, &steps)),
            [
                (240, Cause::Outage, "host_network"),
                (500, Cause::Outage, "all_regions_down")
            ]
        );
    }

    /// A policy with the throughput gate at 1 Mbit/s, and the instant `s` seconds from now.
    fn gated() -> (Policy, impl Fn(u64) -> Instant) {
        let p = policy(
            [false; 3],
            0,
            Rules {
                min_kbps: Some(1000),
                ..rules()
            },
        );
        let t0 = Instant::now();
        (p, move |s| t0 + Duration::from_secs(s))
    }

    #[test]
    fn throughput_gate_measures_only_when_a_failover_is_due() {
        let (mut p, at) = gated();
        for s in (0..240).step_by(10) {
            assert!(
                matches!(p.observe(at(s), F), Decision::Failing { .. }),
                "{s}"
            );
        }
        assert_eq!(
            p.observe(at(240), F),
            Decision::MeasureThroughput { from: 0, to: 1 }
        );
        let held = |kbps, announce| Decision::Held {
            cause: Cause::Outage,
            from: 0,
            to: Some(1),
            reason: Hold::LowThroughput { kbps },
            announce,
        };
        assert_eq!(p.throughput(at(241), Some(400)), held(Some(400), true));
        // not measured again for a minute (threshold 4m > 1m), and not announced again
        assert_eq!(p.observe(at(250), F), held(Some(400), false));
        assert_eq!(p.observe(at(300), F), held(Some(400), false));
        assert_eq!(
            p.observe(at(301), F),
            Decision::MeasureThroughput { from: 0, to: 1 }
        );
        assert_eq!(p.throughput(at(302), None), held(None, false));
        assert_eq!(
            p.observe(at(362), F),
            Decision::MeasureThroughput { from: 0, to: 1 }
        );
        assert!(matches!(
            p.throughput(at(363), Some(1000)),
            Decision::Failover { from: 0, to: 1, .. }
        ));
    }

    #[test]
    fn a_recovery_resets_the_throughput_gate() {
        let (mut p, at) = gated();
        p.observe(at(0), F);
        assert!(matches!(
            p.observe(at(240), F),
            Decision::MeasureThroughput { .. }
        ));
        assert!(matches!(
            p.throughput(at(241), Some(1)),
            Decision::Held { .. }
        ));
        assert!(matches!(p.observe(at(250), S), Decision::Recovered { .. }));
        p.observe(at(260), F);
        assert!(matches!(
            p.observe(at(500), F),
            Decision::MeasureThroughput { .. }
        ));
    }

    fn failback_rules(after: u64) -> Rules {
        Rules {
            failback_after: Some(Duration::from_secs(after)),
            ..rules()
        }
    }

    #[test]
    fn failback_table() {
        // The preferred region 0 fails (main probe) from 0 to `down_until`, its check says down
        // until `check_down_until`; NAM is up. (down_until, check_down_until, failback_after,
        // wanted failback time)
        let cases = [
            // failback 600 s after the check says up again
            (1000, 1000, 600, Some(1600)),
            (1000, 1000, 100, Some(1100)),
            // the check never said down: 600 s counted from the outage that left it
            (1000, 0, 600, Some(840)),
            // down for the whole run
            (3000, 3000, 600, None),
        ];
        for (down_until, check_down_until, after, want) in cases {
            let mut p = policy(ALL, 0, failback_rules(after));
            let steps = merge(vec![
                every(0, check_down_until, 10, Ev::C(Reg(0), false, 0)),
                every(check_down_until, 3000, 10, Ev::C(Reg(0), true, 5)),
                every(0, 3000, 10, Ev::C(Reg(1), true, 5)),
                every(0, down_until, 10, Ev::D([true, false, false])),
                every(down_until, 3000, 10, Ev::P(S)),
            ]);
            let got = switches(&sim(&mut p, &steps));
            let mut wanted = vec![(240, 0, 1, Cause::Outage)];
            wanted.extend(want.map(|s| (s, 1, 0, Cause::Failback)));
            assert_eq!(
                got, wanted,
                "down until {down_until}, check {check_down_until}"
            );
        }
    }

    #[test]
    fn no_failback_without_a_check_on_the_preferred_region_or_when_off() {
        for (checked, rules) in [([false, true, true], failback_rules(60)), (ALL, rules())] {
            let mut p = policy(checked, 0, rules);
            let steps = merge(vec![
                every(0, 3000, 10, Ev::C(Reg(0), true, 5)),
                every(0, 3000, 10, Ev::C(Reg(1), true, 5)),
                every(0, 300, 10, Ev::P(F)),
                every(300, 3000, 10, Ev::P(S)),
            ]);
            assert_eq!(switches(&sim(&mut p, &steps)), [(240, 0, 1, Cause::Outage)]);
        }
    }

    #[test]
    fn a_manual_switch_pins_its_region_until_unpin_or_the_next_outage() {
        // Preferred region 0 is up all along; the operator switches to 1 by hand at 100.
        let mut p = policy(ALL, 0, failback_rules(60));
        let base = vec![
            every(0, 5000, 10, Ev::C(Reg(0), true, 5)),
            every(0, 5000, 10, Ev::C(Reg(1), true, 5)),
            every(0, 5000, 10, Ev::C(Reg(2), true, 5)),
            vec![(100, Ev::Adopt(1))],
        ];
        // 1. pinned: never fails back
        let mut lists = base.clone();
        lists.push(every(0, 5000, 10, Ev::P(S)));
        assert_eq!(switches(&sim(&mut p, &merge(lists))), []);
        assert_eq!(p.pinned(), Some(1));

        // 2. unpinned at 1000: fails back at the next probe
        let mut p = policy(ALL, 0, failback_rules(60));
        let mut lists = base.clone();
        lists.push(vec![(1000, Ev::Pin(None))]);
        lists.push(every(0, 5000, 10, Ev::P(S)));
        assert_eq!(
            switches(&sim(&mut p, &merge(lists))),
            [(1000, 1, 0, Cause::Failback)]
        );

        // 3. an outage of the pinned region ends the pin; the region it moves to is not pinned,
        // and the failback waits for the hold-down after the outage (240 s)
        let mut p = policy(ALL, 0, failback_rules(60));
        let mut lists = base;
        lists.push(every(0, 1000, 10, Ev::P(S)));
        lists.push(every(1000, 5000, 10, Ev::D([false, true, false])));
        let got = switches(&sim(&mut p, &merge(lists)));
        assert_eq!(
            got,
            [(1240, 1, 2, Cause::Outage), (1480, 2, 0, Cause::Failback)]
        );
        assert_eq!(p.pinned(), None);
    }

    #[test]
    fn moved_says_when_an_outage_dropped_the_pin() {
        let t0 = Instant::now();
        let mut p = policy(ALL, 0, rules());
        p.pin(Some(0));
        assert!(!p.moved(t0, 0, Cause::Failback));
        assert_eq!(p.pinned(), Some(0));
        assert!(p.moved(t0, 1, Cause::Outage));
        assert_eq!(p.pinned(), None);
        p.pin(Some(9));
        assert_eq!(p.pinned(), None, "a pin outside the list is ignored");
    }

    #[test]
    fn a_flapping_preferred_region_is_damped() {
        // At most 2 automatic switches an hour. The preferred region fails, comes back, fails
        // again: the outage, the failback, then the third switch waits for the hour.
        let mut p = policy(
            ALL,
            0,
            Rules {
                max_switches_per_hour: 2,
                ..failback_rules(60)
            },
        );
        let steps = merge(vec![
            every(0, 300, 10, Ev::C(Reg(0), false, 0)),
            every(300, 600, 10, Ev::C(Reg(0), true, 5)),
            every(600, 5000, 10, Ev::C(Reg(0), false, 0)),
            every(0, 5000, 10, Ev::C(Reg(1), true, 5)),
            every(0, 5000, 10, Ev::C(Reg(2), true, 5)),
            every(0, 300, 10, Ev::P(F)),
            every(300, 600, 10, Ev::P(S)),
            every(600, 5000, 10, Ev::D([true, false, false])),
        ]);
        let out = sim(&mut p, &steps);
        // outage at 240; failback due at 360 (the check is up from 300, failback_after 60) but
        // held by the hold-down after the first switch (240 s) until 480; the next outage is
        // held until 240 + 1 h.
        assert_eq!(
            switches(&out),
            [
                (240, 0, 1, Cause::Outage),
                (480, 1, 0, Cause::Failback),
                (3840, 0, 1, Cause::Outage)
            ]
        );
        assert_eq!(
            announced(&out),
            [
                (360, Cause::Failback, "damped"),
                (840, Cause::Outage, "damped")
            ]
        );
        let first_hold = out
            .iter()
            .find_map(|(s, d)| match d {
                Decision::Held {
                    cause: Cause::Outage,
                    reason: Hold::Damped { next_allowed_in },
                    ..
                } => Some((*s, *next_allowed_in)),
                _ => None,
            })
            .unwrap();
        assert_eq!(first_hold, (840, Duration::from_secs(3000)));
    }

    #[test]
    fn a_failback_held_by_damping_is_announced_once() {
        let mut p = policy(ALL, 0, failback_rules(10));
        let steps = merge(vec![
            every(250, 2000, 10, Ev::C(Reg(0), true, 5)),
            every(0, 2000, 10, Ev::C(Reg(1), true, 5)),
            every(0, 250, 10, Ev::P(F)),
            every(250, 2000, 10, Ev::P(S)),
        ]);
        let out = sim(&mut p, &steps);
        // up from 250, due at 260, but the hold-down after the outage lasts until 480
        assert_eq!(announced(&out), [(260, Cause::Failback, "damped")]);
        assert_eq!(
            switches(&out),
            [(240, 0, 1, Cause::Outage), (480, 1, 0, Cause::Failback)]
        );
    }

    #[test]
    fn failback_needs_a_preferred_region_failing_probes_can_fail_back() {
        // Active 1 is failing (below the threshold) while the preferred region is up.
        let mut p = policy(ALL, 0, failback_rules(30));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        p.adopt(1);
        p.pin(None);
        p.step(
            at(0),
            Input::Check {
                subject: Reg(0),
                ok: true,
                latency: Duration::from_millis(5),
            },
        );
        assert!(matches!(p.observe(at(10), F), Decision::Failing { .. }));
        assert!(matches!(
            p.observe(at(30), F),
            Decision::Failback { from: 1, to: 0, .. }
        ));
    }

    #[test]
    fn the_kernel_rules_beyond_the_threshold_as_a_table() {
        // (inputs at seconds, the decision after the last)
        let s = |n| Duration::from_secs(n);
        let fail = Input::Probe(Outcome::Failure);
        let ok = Input::Probe(Outcome::Success);
        let down = Input::Probe(Outcome::TunnelDown);
        let misconfigured = Input::Probe(Outcome::TunnelMisconfigured);
        let healed = Input::RestartedInPlace;
        let moved = |to| Input::Moved {
            to,
            cause: Some(Cause::Outage),
        };
        type Case = (&'static str, Vec<(u64, Input)>, Decision);
        let cases: Vec<Case> = vec![
            (
                "a due failover is announced once while its write is retried",
                vec![(0, fail), (240, fail), (250, fail)],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: s(250),
                    announce: false,
                },
            ),
            (
                "a new outage after a recovery is announced again",
                vec![(0, fail), (240, fail), (245, ok), (300, fail), (540, fail)],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: s(240),
                    announce: true,
                },
            ),
            (
                "paused: the failover is held and said once",
                vec![(0, Input::Paused(true)), (0, fail), (240, fail)],
                Decision::Held {
                    cause: Cause::Outage,
                    from: 0,
                    to: Some(1),
                    reason: Hold::Paused,
                    announce: true,
                },
            ),
            (
                "paused: the second due probe is quiet",
                vec![
                    (0, Input::Paused(true)),
                    (0, fail),
                    (240, fail),
                    (250, fail),
                ],
                Decision::Held {
                    cause: Cause::Outage,
                    from: 0,
                    to: Some(1),
                    reason: Hold::Paused,
                    announce: false,
                },
            ),
            (
                "resumed: the held failover is made at the next probe",
                vec![
                    (0, Input::Paused(true)),
                    (0, fail),
                    (240, fail),
                    (250, Input::Paused(false)),
                    (251, fail),
                ],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: s(251),
                    announce: true,
                },
            ),
            (
                "a start write that failed is owed at the next tick",
                vec![
                    (0, Input::WriteFailed { to: 2, cause: None }),
                    (10, Input::Tick),
                ],
                Decision::Write { to: 2 },
            ),
            (
                "a write that succeeded owes nothing",
                vec![
                    (0, Input::WriteFailed { to: 2, cause: None }),
                    (5, Input::Moved { to: 2, cause: None }),
                    (10, Input::Tick),
                ],
                Decision::Healthy,
            ),
            (
                "an automatic switch's failed write is not owed: the decision repeats",
                vec![
                    (
                        0,
                        Input::WriteFailed {
                            to: 1,
                            cause: Some(Cause::Outage),
                        },
                    ),
                    (10, Input::Tick),
                ],
                Decision::Healthy,
            ),
            (
                "a tunnel whose certificate cannot be verified moves nothing, however long",
                vec![
                    (0, misconfigured),
                    (240, misconfigured),
                    (4800, misconfigured),
                ],
                Decision::Healthy,
            ),
            (
                "a misconfigured tunnel ends the outage clock: the next failure starts anew",
                vec![(0, fail), (200, misconfigured), (230, fail), (250, fail)],
                Decision::Failing { failing_for: s(20) },
            ),
            (
                "the local tunnel refused for the threshold: restart in place, no switch",
                vec![(0, down), (240, down)],
                Decision::RestartInPlace {
                    failed_for: s(240),
                    announce: true,
                },
            ),
            (
                "after the restart in place, no switch within another threshold",
                vec![
                    (0, down),
                    (240, down),
                    (241, healed),
                    (400, down),
                    (480, down),
                ],
                Decision::Failing {
                    failing_for: s(480),
                },
            ),
            (
                "a tunnel still down another threshold after the restart: the switch",
                vec![(0, down), (240, down), (241, healed), (481, down)],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: s(481),
                    announce: true,
                },
            ),
            (
                "a tunnel that stayed down across the switch moves nothing again",
                vec![
                    (0, down),
                    (240, down),
                    (241, healed),
                    (481, down),
                    (482, moved(1)),
                    (490, down),
                    (2000, down),
                ],
                Decision::Held {
                    cause: Cause::Outage,
                    from: 1,
                    to: None,
                    reason: Hold::TunnelDown,
                    announce: true,
                },
            ),
            (
                "once the tunnel answers, a cloud outage moves on again",
                vec![
                    (0, down),
                    (240, down),
                    (241, healed),
                    (481, down),
                    (482, moved(1)),
                    (490, down),
                    (2000, fail),
                ],
                Decision::Failover {
                    from: 1,
                    to: 2,
                    failed_for: s(1510),
                    announce: true,
                },
            ),
            (
                "after the restart in place any failure waits for another threshold",
                vec![
                    (0, down),
                    (240, down),
                    (241, healed),
                    (250, fail),
                    (400, fail),
                ],
                Decision::Failing {
                    failing_for: s(400),
                },
            ),
            (
                "a cloud failure lasting another threshold after the restart: the switch",
                vec![
                    (0, down),
                    (240, down),
                    (241, healed),
                    (250, fail),
                    (481, fail),
                ],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: s(481),
                    announce: true,
                },
            ),
            (
                "a cloud failure at the threshold is not the tunnel's",
                vec![(0, down), (240, fail)],
                Decision::Failover {
                    from: 0,
                    to: 1,
                    failed_for: s(240),
                    announce: true,
                },
            ),
            (
                "after a switch the new region gets a full threshold",
                vec![
                    (0, fail),
                    (240, fail),
                    (
                        241,
                        Input::Moved {
                            to: 1,
                            cause: Some(Cause::Outage),
                        },
                    ),
                    (250, fail),
                ],
                Decision::Failing { failing_for: s(0) },
            ),
        ];
        for (name, inputs, want) in cases {
            let mut p = Policy::new(3, 0, T);
            let t0 = Instant::now();
            let mut got = Decision::Healthy;
            for (at, input) in inputs {
                got = p.step(t0 + s(at), input);
            }
            assert_eq!(got, want, "{name}");
        }
    }
}
