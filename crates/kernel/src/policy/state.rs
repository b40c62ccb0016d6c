//! What the policy holds between inputs, as states that carry their own instants: the active
//! region's outage (with the throughput gate and a restart in place within it), the local
//! tunnel across a switch, and everything a switch starts afresh.

use std::mem::Discriminant;
use std::time::Instant;

use super::{Cause, Hold};

/// The active region's outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outage {
    /// The last probe answered, or none has failed since the region became active.
    Healthy,
    /// Failing since `since`; the last failure was `fault`'s.
    Failing {
        since: Instant,
        fault: Fault,
        gate: Gate,
    },
    /// Failing since `since`, and the programs were restarted in place at `at`: a full
    /// threshold runs from `at` before any switch.
    HealedInPlace {
        since: Instant,
        at: Instant,
        fault: Fault,
        gate: Gate,
    },
}

/// Whose fault the last failure of an outage was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// The region did not answer as it should.
    Region,
    /// The local tunnel refused: a fault of this host.
    Tunnel,
}

/// The throughput gate within one outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    Unmeasured,
    /// A measurement at `at` passed the gate.
    Passed {
        at: Instant,
    },
    /// The last figure was too low (kbit/s; `None` when the download failed): no new
    /// measurement before `retry_at`.
    Low {
        kbps: Option<u64>,
        retry_at: Instant,
    },
}

impl Outage {
    /// When the current run of failures began, if the region is failing.
    pub(super) fn since(self) -> Option<Instant> {
        match self {
            Outage::Healthy => None,
            Outage::Failing { since, .. } | Outage::HealedInPlace { since, .. } => Some(since),
        }
    }

    /// When the programs were restarted in place for this outage, if they were.
    pub(super) fn healed_at(self) -> Option<Instant> {
        match self {
            Outage::HealedInPlace { at, .. } => Some(at),
            _ => None,
        }
    }

    pub(super) fn fault(self) -> Option<Fault> {
        match self {
            Outage::Healthy => None,
            Outage::Failing { fault, .. } | Outage::HealedInPlace { fault, .. } => Some(fault),
        }
    }

    pub(super) fn gate(self) -> Gate {
        match self {
            Outage::Healthy => Gate::Unmeasured,
            Outage::Failing { gate, .. } | Outage::HealedInPlace { gate, .. } => gate,
        }
    }

    /// One more failure, `fault`'s, at `now`: an outage begins, or the one under way goes on.
    pub(super) fn failed(self, now: Instant, fault: Fault) -> Outage {
        match self {
            Outage::Healthy => Outage::Failing {
                since: now,
                fault,
                gate: Gate::Unmeasured,
            },
            Outage::Failing { since, gate, .. } => Outage::Failing { since, fault, gate },
            Outage::HealedInPlace {
                since, at, gate, ..
            } => Outage::HealedInPlace {
                since,
                at,
                fault,
                gate,
            },
        }
    }

    /// The outage began at `since` (remembered across a restart of the handler).
    pub(super) fn began(self, since: Instant) -> Outage {
        match self {
            Outage::Healthy => Outage::Failing {
                since,
                fault: Fault::Region,
                gate: Gate::Unmeasured,
            },
            Outage::Failing { fault, gate, .. } => Outage::Failing { since, fault, gate },
            Outage::HealedInPlace {
                at, fault, gate, ..
            } => Outage::HealedInPlace {
                since,
                at,
                fault,
                gate,
            },
        }
    }

    /// The programs were restarted in place at `at`.
    pub(super) fn healed(self, at: Instant) -> Outage {
        match self {
            Outage::Healthy => Outage::Healthy,
            Outage::Failing { since, fault, gate }
            | Outage::HealedInPlace {
                since, fault, gate, ..
            } => Outage::HealedInPlace {
                since,
                at,
                fault,
                gate,
            },
        }
    }

    /// The throughput gate measured, as `gate` says.
    pub(super) fn measured(self, gate: Gate) -> Outage {
        match self {
            Outage::Healthy => Outage::Healthy,
            Outage::Failing { since, fault, .. } => Outage::Failing { since, fault, gate },
            Outage::HealedInPlace {
                since, at, fault, ..
            } => Outage::HealedInPlace {
                since,
                at,
                fault,
                gate,
            },
        }
    }
}

/// The local tunnel across a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tunnel {
    /// Nothing holds a switch back on its account.
    Clear,
    /// It was down when the outage switched away, and every probe since found it down: no
    /// other switch until it answers.
    StayedDown,
}

/// Everything the policy holds about the region it is on: a switch starts it afresh.
#[derive(Debug, Clone)]
pub(super) struct Standing {
    pub(super) region: usize,
    pub(super) outage: Outage,
    pub(super) tunnel: Tunnel,
    /// What held the last due switch back, so it is announced once per change.
    pub(super) held: Option<(Cause, Discriminant<Hold>)>,
    /// The switch already announced (why, where to, and for an outage when it began), so a
    /// switch whose write is retried is announced once.
    pub(super) announced: Option<(Cause, usize, Option<Instant>)>,
    /// A write the env file still owes (a start whose write failed).
    pub(super) owed: Option<usize>,
}

impl Standing {
    /// On `region`, nothing failing, nothing said, nothing owed.
    pub(super) fn on(region: usize) -> Self {
        Standing {
            region,
            outage: Outage::Healthy,
            tunnel: Tunnel::Clear,
            held: None,
            announced: None,
            owed: None,
        }
    }
}

/// Whether automatic switching is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Switching {
    Automatic,
    /// Paused (`failover-handler pause`): a due switch is held, never made.
    Paused,
}
