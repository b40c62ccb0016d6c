//! From journal records to a timeline: what the daemon was told (starts and stops, each change
//! of a region's probe outcome, pause and resume, switches by hand, and when a recorded
//! failback says the preferred region was healthy again) and what it decided (failover,
//! failback, restart in place, failover held), each at its offset from the first record. Pure:
//! records in, values out.

use std::time::{Duration, SystemTime};

use crate::kernel::policy::Outcome;
use crate::report::journal::Record;

/// Something the daemon saw that the replay feeds to the kernel.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalInput {
    /// The daemon started on `region`.
    Started { region: String },
    /// The daemon stopped.
    Stopped,
    /// `region`'s probe outcome changed (`kind`: the error kind of a failure).
    Probe {
        region: String,
        outcome: Outcome,
        kind: Option<String>,
    },
    /// Automatic switching paused (`true`) or resumed.
    Paused(bool),
    /// Somebody switched to `region` by hand: the daemon adopted it.
    Manual { region: String },
    /// The recorded daemon's env file now names `region` (a failover, failback or switch).
    Moved { region: String },
    /// The pin of a manual switch was removed (`switch --unpin`).
    Unpinned,
    /// A recorded failback says `region` has been healthy since this moment (standby checks
    /// are not journaled: this is all the journal says of a region it is not probing).
    Healthy { region: String },
}

/// The kinds of decision the replay compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Failover,
    Failback,
    TunnelRestart,
    Held,
}

impl DecisionKind {
    /// The journal's `event` name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Failover => "failover",
            DecisionKind::Failback => "failback",
            DecisionKind::TunnelRestart => "tunnel_restart",
            DecisionKind::Held => "failover_held",
        }
    }
}

/// One decision, recorded or simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// Since the timeline's first record.
    pub at: Duration,
    pub kind: DecisionKind,
    pub from: String,
    /// Where to (none for a restart in place).
    pub to: Option<String>,
    /// How long the region had failed (or, for a failback, the preferred one been healthy).
    pub took: Option<Duration>,
}

impl Decided {
    /// When what led to it began: the outage's first failure, or for a failback the start
    /// of the preferred region's health (its own time when the journal does not say).
    pub fn began(&self) -> Duration {
        self.took.map_or(self.at, |d| self.at.saturating_sub(d))
    }
}

/// A switch the daemon held back (`failover_deferred`, `failback_deferred`): for reasons the
/// journal does not replay (standby checks, reference targets, throughput, damping), so it is
/// shown as recorded, not compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Since the timeline's first record.
    pub at: Duration,
    /// The journal's `event` name.
    pub event: String,
    pub region: String,
    /// The journal's `reason`.
    pub reason: String,
}

/// The journal as the replay needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The first record's time: every offset counts from here.
    pub start: SystemTime,
    /// The last record's offset: the replay runs until then.
    pub end: Duration,
    /// What the daemon was told, in time order: the inputs the replay feeds to the kernel.
    pub inputs: Vec<(Duration, JournalInput)>,
    pub recorded: Vec<Decided>,
    /// The switches the daemon held back, as recorded.
    pub held: Vec<Held>,
    /// The probe interval and threshold of each start of the daemon, as it recorded them.
    pub ran_with: Vec<(Duration, Duration)>,
    /// Records of an unknown type, or without a readable timestamp: skipped.
    pub skipped: usize,
    /// The daemon ran as a fleet host: the fleet's leader moved it, by quorum.
    pub fleet: bool,
}

impl Timeline {
    /// The longest probe interval the daemon ran with (zero when no start is recorded).
    pub fn recorded_round(&self) -> Duration {
        self.ran_with
            .iter()
            .map(|(interval, _)| *interval)
            .max()
            .unwrap_or_default()
    }
}

/// Events the replay knows and does not need.
const IGNORED: [&str; 14] = [
    "outage_started",
    "outage_ended",
    "restarting",
    "restart_done",
    "restart_interrupted",
    "restart_gave_up",
    "restart_resumed",
    "pinned",
    "cert_expiring",
    "tunnel_misconfigured",
    "switch",
    "unpinned",
    "restart_queued",
    "restart_lease_lost",
];

/// The timeline of `records`, in the order they were written.
pub fn timeline(records: &[Record]) -> Timeline {
    let mut t = Timeline {
        start: SystemTime::UNIX_EPOCH,
        end: Duration::ZERO,
        inputs: Vec::new(),
        recorded: Vec::new(),
        held: Vec::new(),
        ran_with: Vec::new(),
        skipped: 0,
        fleet: false,
    };
    let mut first = None;
    for r in records {
        let Ok(wall) = humantime::parse_rfc3339_weak(&r.timestamp) else {
            t.skipped += 1;
            continue;
        };
        let start = *first.get_or_insert(wall);
        // A clock stepped back leaves the order of the file as it is.
        let at = wall
            .duration_since(start)
            .unwrap_or(Duration::ZERO)
            .max(t.end);
        if !read(&mut t, at, r) {
            t.skipped += 1;
            continue;
        }
        t.end = at;
    }
    t.start = first.unwrap_or(SystemTime::UNIX_EPOCH);
    // A failback's `Healthy` lies in the past of its record: put it in its place.
    t.inputs.sort_by_key(|(at, _)| *at);
    t
}

/// Adds what `r` says at `at`; false for a record the replay does not know.
fn read(t: &mut Timeline, at: Duration, r: &Record) -> bool {
    let region = || r.str_field("region").unwrap_or_default().to_string();
    let to = || r.str_field("to_region").map(str::to_string);
    let ms = |key: &str| {
        r.fields
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .map(Duration::from_millis)
    };
    let input = match r.event.as_str() {
        "daemon_started" => {
            if let (Some(interval), Some(threshold)) = (ms("interval_ms"), ms("threshold_ms"))
                && !t.ran_with.contains(&(interval, threshold))
            {
                t.ran_with.push((interval, threshold));
            }
            JournalInput::Started { region: region() }
        }
        "daemon_stopped" => JournalInput::Stopped,
        "probe_changed" => JournalInput::Probe {
            region: region(),
            outcome: match r.str_field("outcome") {
                Some("ok") => Outcome::Success,
                Some("tunnel_down") => Outcome::TunnelDown,
                Some("tunnel_misconfigured") => Outcome::TunnelMisconfigured,
                _ => Outcome::Failure,
            },
            kind: r.str_field("error_kind").map(str::to_string),
        },
        "paused" => JournalInput::Paused(true),
        "resumed" | "pause_ended" => JournalInput::Paused(false),
        "adopted" => JournalInput::Manual { region: region() },
        "unpinned" if r.str_field("reason") == Some("unpin") => JournalInput::Unpinned,
        "switch" => match to() {
            Some(region) => JournalInput::Moved { region },
            None => return true,
        },
        "failover" | "failback" | "tunnel_restart" | "failover_held" => match decided(t, at, r) {
            Some(region) => JournalInput::Moved { region },
            None => return true,
        },
        "failover_deferred" | "failback_deferred" => {
            t.held.push(Held {
                at,
                event: r.event.clone(),
                region: region(),
                reason: r.str_field("reason").unwrap_or_default().to_string(),
            });
            return true;
        }
        "fleet_leader"
        | "fleet_moved"
        | "fleet_store_lost"
        | "fleet_store_back"
        | "fleet_reseeded"
        | "fleet_move_damped"
        | "fleet_region_unknown"
        | "fleet_host_taken" => {
            t.fleet = true;
            return true;
        }
        other => return IGNORED.contains(&other),
    };
    t.inputs.push((at, input));
    true
}

/// Records the decision `r` tells (a failover, a failback, a tunnel restart or a held
/// failover), with a failback's healthy spell from where it began; answers the region a
/// failover or failback moved to.
fn decided(t: &mut Timeline, at: Duration, r: &Record) -> Option<String> {
    let ms = |key: &str| {
        r.fields
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .map(Duration::from_millis)
    };
    let to = r.str_field("to_region").map(str::to_string);
    let (kind, took) = match r.event.as_str() {
        "failover" => (DecisionKind::Failover, ms("failed_for_ms")),
        "failback" => (DecisionKind::Failback, ms("healthy_for_ms")),
        "tunnel_restart" => (DecisionKind::TunnelRestart, ms("failed_for_ms")),
        _ => (DecisionKind::Held, ms("failed_for_ms")),
    };
    t.recorded.push(Decided {
        at,
        kind,
        from: r.str_field("region").unwrap_or_default().to_string(),
        to: if kind == DecisionKind::TunnelRestart {
            None
        } else {
            to.clone()
        },
        took,
    });
    if let (DecisionKind::Failback, Some(healthy_for), Some(region)) = (kind, took, to.clone()) {
        let since = at.saturating_sub(healthy_for);
        t.inputs.push((since, JournalInput::Healthy { region }));
    }
    matches!(kind, DecisionKind::Failover | DecisionKind::Failback).then_some(to)?
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    #[test]
    fn records_become_inputs_and_decisions() {
        let records = [
            rec(0, "daemon_started", &[("region", "EU".into())]),
            rec(
                10,
                "probe_changed",
                &[
                    ("region", "EU".into()),
                    ("outcome", "failure".into()),
                    ("error_kind", "status".into()),
                ],
            ),
            rec(20, "something_new", &[]),
            rec(30, "fleet_leader", &[]),
            rec(
                1100,
                "failover",
                &[
                    ("region", "EU".into()),
                    ("to_region", "NAM".into()),
                    ("failed_for_ms", 1000.into()),
                ],
            ),
            rec(1100, "outage_ended", &[]),
            rec(1200, "daemon_stopped", &[]),
        ];
        let t = timeline(&records);
        assert_eq!(t.skipped, 1);
        assert!(t.fleet);
        assert_eq!(t.end, Duration::from_millis(1200));
        assert_eq!(
            t.inputs,
            [
                (
                    Duration::ZERO,
                    JournalInput::Started {
                        region: "EU".into()
                    }
                ),
                (
                    Duration::from_millis(10),
                    JournalInput::Probe {
                        region: "EU".into(),
                        outcome: Outcome::Failure,
                        kind: Some("status".into())
                    }
                ),
                (
                    Duration::from_millis(1100),
                    JournalInput::Moved {
                        region: "NAM".into()
                    }
                ),
                (Duration::from_millis(1200), JournalInput::Stopped),
            ]
        );
        assert_eq!(
            t.recorded,
            [Decided {
                at: Duration::from_millis(1100),
                kind: DecisionKind::Failover,
                from: "EU".into(),
                to: Some("NAM".into()),
                took: Some(Duration::from_millis(1000)),
            }]
        );
        assert_eq!(t.recorded[0].began(), Duration::from_millis(100));
    }

    #[test]
    fn a_failback_says_since_when_its_region_was_healthy() {
        let records = [
            rec(
                0,
                "daemon_started",
                &[
                    ("region", "EU".into()),
                    ("interval_ms", 10_000.into()),
                    ("threshold_ms", 240_000.into()),
                ],
            ),
            rec(100, "paused", &[]),
            rec(
                700_000,
                "failback",
                &[
                    ("region", "EU".into()),
                    ("to_region", "NAM".into()),
                    ("healthy_for_ms", 600_000.into()),
                ],
            ),
        ];
        let t = timeline(&records);
        assert_eq!(
            t.ran_with,
            [(Duration::from_secs(10), Duration::from_secs(240))]
        );
        assert_eq!(t.recorded_round(), Duration::from_secs(10));
        let healthy = JournalInput::Healthy {
            region: "NAM".into(),
        };
        let moved = JournalInput::Moved {
            region: "NAM".into(),
        };
        assert_eq!(t.inputs[2], (Duration::from_secs(100), healthy));
        assert_eq!(t.inputs[3], (Duration::from_secs(700), moved));
        assert_eq!(t.recorded[0].began(), Duration::from_secs(100));
    }
}
