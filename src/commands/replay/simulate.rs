//! The recorded history run through the kernel under other settings. The replay probes at the
//! settings' cadence (`interval`, `fail_interval` while failing), and also whenever the journal
//! records a change of the region it is on: a change is seen when the daemon saw it. Each probe
//! is answered with what the journal says the probed region answered then. Standby checks are
//! not journaled: standbys are taken as usable, and the preferred region's health (for
//! failback) is what its own probes and the recorded failbacks say. Pure: the instants are
//! made from offsets, nothing waits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::answers::{Answers, Assumed, RegionAnswer};
use super::timeline::{Decided, DecisionKind, JournalInput, Timeline};
use crate::kernel::policy::{self, Cause, Decision, Done, Effects, Hold, Input, Policy};
use crate::kernel::standby::Subject;

/// The timings the replay probes at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub interval: Duration,
    pub fail_interval: Duration,
    /// A probe that timed out answers after this long.
    pub timeout: Duration,
    /// How closely the journal places a probe: an assumption about a region this close to
    /// the journal's word on it is not worth a note.
    pub precision: Duration,
}

/// The decisions of the replay, and how many probes of each region rested on an assumption.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Simulation {
    pub decisions: Vec<Decided>,
    pub assumed: BTreeMap<(String, Assumed), usize>,
    /// A failover waited for the throughput gate: the measurement is assumed to pass.
    pub gate_assumed: bool,
    /// The journal begins while the daemon ran (its start rotated away): the replay starts at
    /// the first probe it records.
    pub joined_midway: bool,
    pub probes: usize,
}

struct Run<'a, F> {
    regions: &'a [String],
    policy_for: F,
    cadence: Cadence,
    base: Instant,
    policy: Option<Policy>,
    running: bool,
    next: Duration,
    /// What the journal says each region answered, and where the recorded daemon is.
    answers: Answers<'a>,
    /// The region the recorded daemon was on when it stopped.
    stopped_on: Option<&'a str>,
    /// The preferred region's health as last told to the policy.
    told: Option<bool>,
    sim: Simulation,
}

/// Replays `t` over `regions` (the failover order); `policy_for(active)` makes the policy
/// under the replay's settings.
pub fn simulate(
    t: &Timeline,
    regions: &[String],
    policy_for: impl FnMut(usize) -> Policy,
    cadence: Cadence,
) -> Simulation {
    let mut run = Run {
        regions,
        policy_for,
        cadence,
        base: Instant::now(),
        policy: None,
        running: false,
        next: Duration::ZERO,
        answers: Answers::new(t, cadence.precision),
        stopped_on: None,
        told: None,
        sim: Simulation::default(),
    };
    for (at, h) in &t.inputs {
        run.probe_until(*at);
        run.feed(*at, h);
        run.tell_health(*at);
    }
    run.probe_until(t.end);
    run.sim
}

impl<'a, F: FnMut(usize) -> Policy> Run<'a, F> {
    fn index(&self, region: &str) -> Option<usize> {
        self.regions.iter().position(|r| r == region)
    }

    fn name(&self, i: usize) -> &'a str {
        self.regions.get(i).map_or("", String::as_str)
    }

    fn active(&self) -> Option<&'a str> {
        self.policy.as_ref().map(|p| self.name(p.active()))
    }

    fn step(&mut self, at: Duration, input: Input) -> Decision {
        let now = self.base + at;
        match &mut self.policy {
            Some(p) => p.step(now, input),
            None => Decision::Healthy,
        }
    }

    fn start(&mut self, at: Duration, region: &'a str) {
        let i = self.index(region).unwrap_or(0);
        match self.policy {
            None => self.policy = Some((self.policy_for)(i)),
            // The env file is the record: a restart keeps the replay's own region, unless the
            // recorded one was changed while the daemon was down.
            Some(_) if self.stopped_on.is_some_and(|s| s != region) => {
                self.step(at, Input::Moved { to: i, cause: None });
            }
            Some(_) => {}
        }
        self.running = true;
        self.answers.arrive(at, region);
        self.next = at;
    }

    fn feed(&mut self, at: Duration, h: &'a JournalInput) {
        match h {
            JournalInput::Started { region } => self.start(at, region.as_str()),
            JournalInput::Stopped => {
                self.running = false;
                self.stopped_on = self.answers.stop();
            }
            JournalInput::Probe {
                region,
                outcome,
                kind,
            } => {
                let region = region.as_str();
                if !self.running {
                    self.sim.joined_midway |= self.policy.is_none();
                    self.start(at, region);
                }
                let kind = kind.as_deref();
                let outcome = *outcome;
                self.answers
                    .probed(RegionAnswer { at, outcome, kind }, region);
                if self.active() == Some(region) {
                    // The daemon probed this region now: so does the replay.
                    let round = match kind {
                        Some("timeout") => at.saturating_sub(self.cadence.timeout),
                        _ => at,
                    };
                    self.round(round, Some(at));
                }
            }
            JournalInput::Paused(p) => {
                self.step(at, Input::Paused(*p));
            }
            JournalInput::Manual { region } => {
                if let Some(i) = self.index(region) {
                    self.step(at, Input::Adopt(i));
                }
                self.answers.arrive(at, region);
            }
            JournalInput::Moved { region } => self.answers.arrive(at, region),
            JournalInput::Unpinned => {
                self.step(at, Input::Pin(None));
            }
            JournalInput::Healthy { region } => self.answers.healthy(at, region),
        }
    }

    /// Tells the policy the preferred region's health when the journal's word on it changed
    /// (it counts only where failback is on: the replay checks no other region).
    fn tell_health(&mut self, at: Duration) {
        if self.policy.is_none() {
            return;
        }
        let ok = self.answers.health(self.name(0), at);
        if self.told != Some(ok) {
            self.told = Some(ok);
            let check = Input::Check {
                subject: Subject::Region(0),
                ok,
                latency: Duration::ZERO,
            };
            self.step(at, check);
        }
    }

    /// Runs the probes due up to `until`.
    fn probe_until(&mut self, until: Duration) {
        while self.running && self.next <= until {
            self.round(self.next, None);
        }
    }

    /// One round of probing started at `round` (answered at `answered` when the journal says
    /// when), and the next one scheduled as the daemon schedules it.
    fn round(&mut self, round: Duration, answered: Option<Duration>) {
        let at = self.probe(round, answered);
        let failing = self
            .policy
            .as_ref()
            .is_some_and(|p| p.failing_since().is_some());
        let cadence = if failing {
            self.cadence.fail_interval
        } else {
            self.cadence.interval
        };
        self.next = (round + cadence)
            .max(at)
            .max(round + Duration::from_millis(1));
    }

    /// One probe started at `round`; returns when it was answered.
    fn probe(&mut self, round: Duration, answered: Option<Duration>) -> Duration {
        let Some(name) = self.active() else {
            return round;
        };
        let (w, assumed) = self.answers.answer(name, round);
        if let Some(a) = assumed {
            *self.sim.assumed.entry((name.to_string(), a)).or_default() += 1;
        }
        self.sim.probes += 1;
        let at = answered.unwrap_or(match w.kind {
            Some("timeout") => round + self.cadence.timeout,
            _ => round,
        });
        let decision = self.step(at, Input::Probe(w.outcome));
        let decision = self.carry_out(at, decision);
        self.tell_held(at, decision);
        at
    }

    /// Carries `decision` out through the kernel's driver, every act pretending it succeeded.
    fn carry_out(&mut self, at: Duration, decision: Decision) -> Decision {
        let Some(policy) = self.policy.as_mut() else {
            return decision;
        };
        let mut pretend = Pretend {
            policy,
            regions: self.regions,
            sim: &mut self.sim,
            at,
            now: self.base + at,
        };
        // Pretended acts never wait: the driver is done at its first poll.
        policy::ready(policy::drive(&mut pretend, decision)).unwrap_or(decision)
    }

    /// Records a failover held by the pause, once per change of what holds it.
    fn tell_held(&mut self, at: Duration, decision: Decision) {
        if let Decision::Held {
            cause: Cause::Outage,
            from,
            to: Some(to),
            reason: Hold::Paused,
            announce: true,
        } = decision
        {
            let since = self.policy.as_ref().and_then(Policy::failing_since);
            let took = since.map_or(Duration::ZERO, |s| {
                (self.base + at).saturating_duration_since(s)
            });
            record(
                &mut self.sim,
                self.regions,
                at,
                DecisionKind::Held,
                from,
                Some(to),
                took,
            );
        }
    }
}

/// The replay's side of the kernel's driver: each act succeeds at once, and what the daemon
/// would have said is recorded.
struct Pretend<'p> {
    policy: &'p mut Policy,
    regions: &'p [String],
    sim: &'p mut Simulation,
    at: Duration,
    now: Instant,
}

impl Effects for Pretend<'_> {
    fn policy(&mut self) -> &mut Policy {
        self.policy
    }

    fn now(&self) -> Instant {
        self.now
    }

    async fn write(&mut self, decision: &Decision, _: usize) -> Done {
        let said = match *decision {
            Decision::Failover {
                from,
                to,
                failed_for,
                announce: true,
            } => Some((DecisionKind::Failover, from, to, failed_for)),
            Decision::Failback {
                from,
                to,
                healthy_for,
                announce: true,
            } => Some((DecisionKind::Failback, from, to, healthy_for)),
            _ => None,
        };
        if let Some((kind, from, to, took)) = said {
            record(self.sim, self.regions, self.at, kind, from, Some(to), took);
        }
        Done::Written
    }

    async fn restart(&mut self, _: usize) {}

    async fn restart_in_place(&mut self, decision: &Decision) -> Done {
        if let Decision::RestartInPlace {
            failed_for,
            announce: true,
        } = *decision
        {
            let from = self.policy.active();
            let (sim, regions, at) = (&mut *self.sim, self.regions, self.at);
            record(
                sim,
                regions,
                at,
                DecisionKind::TunnelRestart,
                from,
                None,
                failed_for,
            );
        }
        Done::Restarted
    }

    async fn measure(&mut self) -> Done {
        self.sim.gate_assumed = true;
        Done::Measured(Some(u64::MAX))
    }
}

/// Records a decision the daemon would have said at `at`.
fn record(
    sim: &mut Simulation,
    regions: &[String],
    at: Duration,
    kind: DecisionKind,
    from: usize,
    to: Option<usize>,
    took: Duration,
) {
    let name = |i: usize| regions.get(i).map_or("", String::as_str).to_string();
    sim.decisions.push(Decided {
        at,
        kind,
        from: name(from),
        to: to.map(name),
        took: Some(took),
    });
}
