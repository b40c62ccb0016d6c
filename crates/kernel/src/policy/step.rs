//! The policy's front door: one [`Input`] at a time, and the [`Decision`] it leads to.

use std::time::Instant;

use super::state::Switching;
use super::{Decision, Input, Policy};

impl Policy {
    /// New rules (a reloaded configuration) for the same regions: the outage timer, the
    /// pin, damping's record and the standby view carry on under them.
    pub fn set_rules(&mut self, rules: super::Rules) {
        self.rules = rules;
        self.on.held = None;
    }

    /// The front door: one input at a time, seen at `now`, and what to do about it.
    pub fn step(&mut self, now: Instant, input: Input) -> Decision {
        match input {
            Input::Probe(outcome) => self.observe(now, outcome),
            Input::Check {
                subject,
                ok,
                latency,
            } => match self.standbys.observe(now, subject, ok, latency) {
                Some(verdict) => Decision::Flipped(verdict),
                None => Decision::Healthy,
            },
            Input::Throughput(kbps) => self.throughput(now, kbps),
            Input::Paused(paused) => {
                let switching = if paused {
                    Switching::Paused
                } else {
                    Switching::Automatic
                };
                if self.switching != switching {
                    self.switching = switching;
                    self.on.held = None;
                }
                Decision::Healthy
            }
            Input::Pin(region) => {
                self.pin(region);
                Decision::Healthy
            }
            Input::Adopt(region) => {
                self.adopt(region);
                Decision::Healthy
            }
            Input::Moved { to, cause: None } => {
                self.switched(to);
                Decision::Healthy
            }
            Input::Moved {
                to,
                cause: Some(cause),
            } => {
                self.moved(now, to, cause);
                Decision::Healthy
            }
            Input::WriteFailed { to, cause } => {
                if cause.is_none() {
                    self.on.owed = Some(to);
                }
                Decision::Healthy
            }
            Input::Tick => match self.on.owed {
                Some(to) => Decision::Write { to },
                None => Decision::Healthy,
            },
            Input::FailingFor(d) => {
                self.on.outage = self.on.outage.began(now.checked_sub(d).unwrap_or(now));
                Decision::Healthy
            }
            Input::SwitchedAgo(d) => {
                if let Some(at) = now.checked_sub(d) {
                    self.damping.record(at);
                }
                Decision::Healthy
            }
            Input::RestartedInPlace => {
                self.on.outage = self.on.outage.healed(now);
                Decision::Healthy
            }
        }
    }
}
