//! What the policy is told and what it answers: the start rule, a probe's outcome, why a
//! switch is made, what holds one back, and the decision after one observation.

use std::time::Duration;

use crate::health::Verdict;
use crate::standby::Subject;

/// What the daemon knows at start, as far as the start rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartFacts {
    /// The region the env file names, if it is in the list (index into the order).
    pub env_region: Option<usize>,
    /// Whether the env file names that region together with the region's own cloud.
    pub env_consistent: bool,
    /// The preferred region (index 0) differs from the one the handler last started with:
    /// an operator's new intent.
    pub preferred_changed: bool,
    /// A standby check already knows the preferred region is down.
    pub preferred_down: bool,
}

/// Why the start rule chose its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWhy {
    /// The env file is the record: its region stays active.
    Kept,
    /// The preferred region changed since the last start: moved there, as `switch` would.
    NewPreference,
    /// The env file names no region of the list (missing, unreadable or unrecognised).
    NoRecord,
    /// The env file names a region with another region's cloud, or without its cloud.
    Inconsistent,
}

impl StartWhy {
    pub fn as_str(self) -> &'static str {
        match self {
            StartWhy::Kept => "kept",
            StartWhy::NewPreference => "new_preference",
            StartWhy::NoRecord => "no_record",
            StartWhy::Inconsistent => "inconsistent",
        }
    }
}

/// Which region to use at start, and whether the env file must be written for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startup {
    /// Index into the failover order.
    pub active: usize,
    /// False when the env file already names `active`: nothing to write, nothing to restart.
    pub write: bool,
    pub why: StartWhy,
}

/// Rule 1 of the daemon: the env file is the record and a restart of the handler changes
/// nothing. A changed preferred region is acted on like `switch` (unless it is known down).
/// Only an env file that names no region of the list, or names one inconsistently, is written
/// whole, to the first of the order (the preferred region, else the list's first).
pub fn startup(f: StartFacts) -> Startup {
    let current = |i| f.env_region == Some(i) && f.env_consistent;
    if f.preferred_changed && !f.preferred_down {
        return Startup {
            active: 0,
            write: !current(0),
            why: StartWhy::NewPreference,
        };
    }
    match f.env_region {
        Some(i) if f.env_consistent => Startup {
            active: i,
            write: false,
            why: StartWhy::Kept,
        },
        Some(_) => Startup {
            active: 0,
            write: true,
            why: StartWhy::Inconsistent,
        },
        None => Startup {
            active: 0,
            write: true,
            why: StartWhy::NoRecord,
        },
    }
}

/// What the policy is told, one at a time, each with the instant it was seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// A probe of the active region.
    Probe(Outcome),
    /// A standby check of a region or a reference target.
    Check {
        subject: Subject,
        ok: bool,
        latency: Duration,
    },
    /// The throughput measured after [`Decision::MeasureThroughput`] (kbit/s; `None` when the
    /// download failed).
    Throughput(Option<u64>),
    /// Automatic switching was paused (`true`) or resumed.
    Paused(bool),
    /// The pin file names this region, or none.
    Pin(Option<usize>),
    /// Somebody switched by hand to this region: adopt it and pin it.
    Adopt(usize),
    /// The env file now names `to`: for `cause` (an automatic switch), or at start (`None`).
    Moved { to: usize, cause: Option<Cause> },
    /// Writing `to` into the env file failed; at start (`cause` `None`) the write is owed.
    WriteFailed { to: usize, cause: Option<Cause> },
    /// A tick before the probe: a write still owed is asked for again.
    Tick,
    /// The programs were restarted in place after [`Decision::RestartInPlace`].
    RestartedInPlace,
    /// Remembered across a restart of the handler: the active region has been failing this
    /// long (the outage clock resumes).
    FailingFor(Duration),
    /// Remembered across a restart of the handler: an automatic switch this long ago (damping).
    SwitchedAgo(Duration),
}

/// What a probe of the active region showed, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// The local tunnel refused: a fault of this host, healed in place first.
    TunnelDown,
    /// The local tunnel presents a certificate the probe cannot verify: the probe never
    /// reached the region, so it says nothing of it. No outage, no restart, no switch.
    TunnelMisconfigured,
}

/// Why an automatic switch is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The active region's outage lasted the threshold.
    Outage,
    /// The preferred region has been healthy for `failback_after`.
    Failback,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Outage => "outage",
            Cause::Failback => "failback",
        }
    }
}

/// What holds a due switch back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hold {
    /// Every standby is down (or not known to be up): stay and keep probing.
    AllRegionsDown,
    /// Is-it-me: the active region, every standby and every reference target fail together.
    HostNetwork,
    /// Flap damping: the next automatic switch is allowed only after this long.
    Damped { next_allowed_in: Duration },
    /// The throughput gate: the measured figure (kbit/s; `None` when the download failed) is
    /// below `network.min_mbps`.
    LowThroughput { kbps: Option<u64> },
    /// Automatic switching is paused (`failover-handler pause`).
    Paused,
    /// The local tunnel stayed down across a switch: no other switch until it answers.
    TunnelDown,
}

impl Hold {
    /// The `reason` field of the log line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Hold::AllRegionsDown => "all_regions_down",
            Hold::HostNetwork => "host_network",
            Hold::Damped { .. } => "damped",
            Hold::LowThroughput { .. } => "low_throughput",
            Hold::Paused => "paused",
            Hold::TunnelDown => "tunnel_down",
        }
    }
}

/// What the policy asks the daemon to do after one observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Healthy, and it was healthy before.
    Healthy,
    /// Healthy again after failures that did not last the threshold.
    Recovered { failed_for: Duration },
    /// Failing, for this long so far (zero on the first failure).
    Failing { failing_for: Duration },
    /// The outage lasted the threshold: move from `from` to `to` (indices into the order).
    /// The policy moves only when the daemon confirms with [`Input::Moved`]; until then the
    /// decision repeats at each probe, with `announce` true only the first time.
    Failover {
        from: usize,
        to: usize,
        failed_for: Duration,
        announce: bool,
    },
    /// A failover to `to` is due, but the throughput gate needs a measurement first: measure
    /// and hand the figure to [`Policy::throughput`].
    MeasureThroughput { from: usize, to: usize },
    /// The preferred region (`to`) has been healthy for `healthy_for`: go back to it;
    /// `announce` as for `Failover`.
    Failback {
        from: usize,
        to: usize,
        healthy_for: Duration,
        announce: bool,
    },
    /// The env file still owes region `to` (a write at start that failed): write it now.
    Write { to: usize },
    /// A standby check made its subject's verdict flip to this.
    Flipped(Verdict),
    /// The local tunnel has refused for the threshold: restart the programs in place (same
    /// region, env file untouched) before any switch; `announce` as for `Failover`.
    RestartInPlace {
        failed_for: Duration,
        announce: bool,
    },
    /// A switch is due but held back; `announce` is true once per change of what holds it.
    Held {
        cause: Cause,
        from: usize,
        to: Option<usize>,
        reason: Hold,
        announce: bool,
    },
}
