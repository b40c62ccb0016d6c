//! One decision carried out. A decision may ask for acts: a move of the env file (and the
//! restart after it), a restart in place, a throughput measurement. Whoever performs them
//! reports each outcome back through [`Policy::done`], the one place that says which input
//! follows which act, and [`drive`] is the one sequence of acts and reports: the daemon goes
//! through it with real writes and restarts, `replay` with acts that pretend they succeeded.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::{Cause, Decision, Input, Policy};

/// What a decision asks to be done: the token its outcome is reported back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Make the env file name region `to`, then restart the programs: for `cause` (an
    /// automatic switch), or a write the env file owes (`None`).
    Move { to: usize, cause: Option<Cause> },
    /// Restart the programs on the same region, the env file untouched.
    RestartInPlace,
    /// Measure the throughput for the gate.
    MeasureThroughput,
}

/// What became of an [`Act`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// The env file names the region now.
    Written,
    /// Writing the env file failed.
    WriteFailed,
    /// The programs were restarted in place.
    Restarted,
    /// The throughput measured (kbit/s; `None` when the download failed).
    Measured(Option<u64>),
    /// Not done now (a fleet's restart slot is taken, the daemon is stopping): the policy
    /// learns nothing, and asks again at the next probe.
    Deferred,
}

impl Decision {
    /// The act this decision asks for, if any.
    pub fn act(&self) -> Option<Act> {
        match *self {
            Decision::Failover { to, .. } => Some(Act::Move {
                to,
                cause: Some(Cause::Outage),
            }),
            Decision::Failback { to, .. } => Some(Act::Move {
                to,
                cause: Some(Cause::Failback),
            }),
            Decision::Write { to } => Some(Act::Move { to, cause: None }),
            Decision::RestartInPlace { .. } => Some(Act::RestartInPlace),
            Decision::MeasureThroughput { .. } => Some(Act::MeasureThroughput),
            _ => None,
        }
    }
}

impl Policy {
    /// What became of `act`, seen at `now`, and the decision it leads to.
    pub fn done(&mut self, now: Instant, act: Act, done: Done) -> Decision {
        let input = match (act, done) {
            (Act::Move { to, cause }, Done::Written) => Input::Moved { to, cause },
            (Act::Move { to, cause }, Done::WriteFailed) => Input::WriteFailed { to, cause },
            (Act::RestartInPlace, Done::Restarted) => Input::RestartedInPlace,
            (Act::MeasureThroughput, Done::Measured(kbps)) => Input::Throughput(kbps),
            _ => return Decision::Healthy,
        };
        self.step(now, input)
    }
}

/// Whoever performs the acts: the daemon for real, `replay` by pretending.
pub trait Effects {
    /// The policy the outcomes are reported to.
    fn policy(&mut self) -> &mut Policy;
    /// The instant an outcome is seen.
    fn now(&self) -> Instant;
    /// Makes the env file name `to`, as `decision` asks: [`Done::Written`] or
    /// [`Done::WriteFailed`].
    fn write(&mut self, decision: &Decision, to: usize) -> impl Future<Output = Done>;
    /// Restarts the programs on `to`, whose move was just written.
    fn restart(&mut self, to: usize) -> impl Future<Output = ()>;
    /// Restarts the programs in place, as `decision` asks: [`Done::Restarted`] or
    /// [`Done::Deferred`].
    fn restart_in_place(&mut self, decision: &Decision) -> impl Future<Output = Done>;
    /// Measures the throughput: [`Done::Measured`] or [`Done::Deferred`].
    fn measure(&mut self) -> impl Future<Output = Done>;
}

/// Carries `decision` out through `fx`, reporting each outcome to the policy; returns the
/// last decision (after a measurement, the one the figure led to).
pub async fn drive<E: Effects>(fx: &mut E, mut decision: Decision) -> Decision {
    while let Some(act) = decision.act() {
        let (done, next) = perform(fx, &decision, act).await;
        match (act, done) {
            (Act::MeasureThroughput, Done::Measured(_)) => decision = next,
            _ => break,
        }
    }
    decision
}

/// Performs `act` for `decision` (a written move is followed by a restart), reports what
/// became of it to the policy, and returns that with the decision it led to: one step of
/// [`drive`], also taken alone for a move that no decision of the policy asked for (the
/// write at start, a move the fleet agreed on).
pub async fn perform<E: Effects>(fx: &mut E, decision: &Decision, act: Act) -> (Done, Decision) {
    let done = match act {
        Act::Move { to, .. } => fx.write(decision, to).await,
        Act::RestartInPlace => fx.restart_in_place(decision).await,
        Act::MeasureThroughput => fx.measure().await,
    };
    let now = fx.now();
    let next = fx.policy().done(now, act, done);
    if let (Act::Move { to, .. }, Done::Written) = (act, done) {
        fx.restart(to).await;
    }
    (done, next)
}

/// Runs a future whose every await is ready at once (acts that never wait, as `replay`'s):
/// its output, or `None` if it would have waited.
pub fn ready<F: Future>(future: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::{Hold, Outcome, Rules};
    use crate::standby::Standbys;

    /// Acts that answer from a script and record what was asked.
    struct Script {
        policy: Policy,
        now: Instant,
        write: Done,
        restart: Done,
        kbps: Option<Option<u64>>,
        asked: Vec<String>,
    }

    impl Effects for Script {
        fn policy(&mut self) -> &mut Policy {
            &mut self.policy
        }
        fn now(&self) -> Instant {
            self.now
        }
        async fn write(&mut self, _: &Decision, to: usize) -> Done {
            self.asked.push(format!("write {to}"));
            self.write
        }
        async fn restart(&mut self, to: usize) {
            self.asked.push(format!("restart {to}"));
        }
        async fn restart_in_place(&mut self, _: &Decision) -> Done {
            self.asked.push("restart in place".into());
            self.restart
        }
        async fn measure(&mut self) -> Done {
            self.asked.push("measure".into());
            self.kbps.map_or(Done::Deferred, Done::Measured)
        }
    }

    const T: Duration = Duration::from_secs(240);

    fn script(policy: Policy, now: Instant) -> Script {
        Script {
            policy,
            now,
            write: Done::Written,
            restart: Done::Restarted,
            kbps: Some(Some(10_000)),
            asked: Vec::new(),
        }
    }

    /// Fails the active region from `t0` to the threshold and drives what it leads to.
    fn outage(fx: &mut Script, t0: Instant, outcome: Outcome) -> Decision {
        fx.policy.observe(t0, outcome);
        let decision = fx.policy.observe(t0 + T, outcome);
        fx.now = t0 + T;
        ready(drive(fx, decision)).unwrap_or(Decision::Healthy)
    }

    #[test]
    fn each_act_is_performed_and_reported_back_as_a_table() {
        let t0 = Instant::now();
        let gated = || {
            let mut rules = Rules::plain(T);
            rules.min_kbps = Some(5_000);
            Policy::with_rules(rules, Standbys::unchecked(3), 0)
        };
        // (what happens, the policy, the probe's outcome, the script's answers (write,
        // restart in place, measurement), the acts asked, the region active after)
        type Case = (
            &'static str,
            Policy,
            Outcome,
            (Done, Done, Option<Option<u64>>),
            &'static [&'static str],
            usize,
        );
        let ok = (Done::Written, Done::Restarted, Some(Some(10_000)));
        let cases: Vec<Case> = vec![
            (
                "a failover written is followed by a restart",
                Policy::new(3, 0, T),
                Outcome::Failure,
                ok,
                &["write 1", "restart 1"],
                1,
            ),
            (
                "a failover whose write failed restarts nothing and stays",
                Policy::new(3, 0, T),
                Outcome::Failure,
                (Done::WriteFailed, Done::Restarted, None),
                &["write 1"],
                0,
            ),
            (
                "the tunnel's outage restarts in place and stays",
                Policy::new(3, 0, T),
                Outcome::TunnelDown,
                ok,
                &["restart in place"],
                0,
            ),
            (
                "a gate that passes is measured, then the failover is made",
                gated(),
                Outcome::Failure,
                ok,
                &["measure", "write 1", "restart 1"],
                1,
            ),
            (
                "a gate that fails is measured, and the failover held",
                gated(),
                Outcome::Failure,
                (Done::Written, Done::Restarted, Some(Some(1_000))),
                &["measure"],
                0,
            ),
            (
                "a measurement cut short tells the policy nothing",
                gated(),
                Outcome::Failure,
                (Done::Written, Done::Restarted, None),
                &["measure"],
                0,
            ),
        ];
        for (name, policy, outcome, (write, restart, kbps), asked, active) in cases {
            let mut fx = script(policy, t0);
            (fx.write, fx.restart, fx.kbps) = (write, restart, kbps);
            outage(&mut fx, t0, outcome);
            assert_eq!(fx.asked, asked, "{name}");
            assert_eq!(fx.policy.active(), active, "{name}");
        }
    }

    #[test]
    fn a_restart_in_place_reported_gives_a_full_threshold_and_a_deferred_one_is_asked_again() {
        let t0 = Instant::now();
        let mut fx = script(Policy::new(3, 0, T), t0);
        outage(&mut fx, t0, Outcome::TunnelDown);
        let next = fx.policy.observe(t0 + T + T / 2, Outcome::TunnelDown);
        assert!(matches!(next, Decision::Failing { .. }), "{next:?}");

        let mut fx = script(Policy::new(3, 0, T), t0);
        fx.restart = Done::Deferred;
        outage(&mut fx, t0, Outcome::TunnelDown);
        let next = fx.policy.observe(t0 + T + T / 2, Outcome::TunnelDown);
        assert!(matches!(next, Decision::RestartInPlace { .. }), "{next:?}");
    }

    #[test]
    fn a_write_owed_that_fails_stays_owed_and_one_written_is_paid() {
        let t0 = Instant::now();
        for (write, owed) in [(Done::WriteFailed, Some(2)), (Done::Written, None)] {
            let mut fx = script(Policy::new(3, 0, T), t0);
            fx.write = write;
            ready(drive(&mut fx, Decision::Write { to: 2 }));
            assert_eq!(fx.policy.owed(), owed, "{write:?}");
            let restarted = fx.asked.contains(&"restart 2".to_string());
            assert_eq!(restarted, owed.is_none(), "{write:?}");
        }
    }

    #[test]
    fn a_held_decision_and_a_healthy_one_ask_for_nothing() {
        let held = Decision::Held {
            cause: Cause::Outage,
            from: 0,
            to: Some(1),
            reason: Hold::Paused,
            announce: true,
        };
        for decision in [Decision::Healthy, held] {
            let mut fx = script(Policy::new(3, 0, T), Instant::now());
            assert_eq!(ready(drive(&mut fx, decision)), Some(decision));
            assert!(fx.asked.is_empty());
        }
    }
}
