//! The one vocabulary of what happened. Each decision of the daemon is an [`Event`] value,
//! made once; the JSON log line, the journal record, `/history`, the Datadog entry, the
//! metrics and the live view are all rendered from it, under the same `event` name and with
//! the same fields. The two messages of the old script are rendered here, word for word.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::duration_text;
use crate::report::fields as f;
use crate::report::journal::Level;

#[cfg(test)]
mod catalogue;
pub mod command;
pub mod hold;
pub mod notice;
pub mod place;
mod reason;
mod render;
mod restart;
pub mod standby;
pub mod steps;

pub use command::Command;
pub use hold::{DeferReason, Deferred};
pub use notice::Notice;
pub use place::Place;
pub use reason::SwitchReason;
pub use standby::{Health, Standby};
pub use steps::Steps;

/// Whole milliseconds, as every `*_ms` field carries them.
pub fn ms(d: Duration) -> u64 {
    f::whole_ms(d)
}

/// A duration in whole milliseconds, as people read it.
pub(crate) fn human_ms(d: Duration) -> String {
    duration_text(Duration::from_millis(ms(d)))
}

/// One decision of the daemon. Its `event` name and fields are derived from the variant
/// (`serde`, `tag = "event"`): only its message (wording.rs) and its level are written by hand.
/// `None` fields are left out of every rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The daemon chose its region at start; `env_file_written`: the env file did not name it.
    DaemonStarted {
        #[serde(flatten)]
        at: Place,
        #[serde(flatten, serialize_with = "f::version_and_order")]
        order: Vec<String>,
        #[serde(serialize_with = "f::url")]
        probe_url: String,
        #[serde(rename = "interval_ms", serialize_with = "f::ms")]
        interval: Duration,
        #[serde(rename = "threshold_ms", serialize_with = "f::ms")]
        threshold: Duration,
        dry_run: bool,
        env_file_written: bool,
    },
    /// SIGTERM or SIGINT: the daemon stops and the region stays active.
    DaemonStopped {
        #[serde(flatten)]
        at: Place,
    },
    /// The first failed probe of an outage: the outage timer starts.
    OutageStarted {
        #[serde(flatten)]
        at: Place,
        error_kind: &'static str,
        http_status: Option<u16>,
        #[serde(skip)]
        error: String,
    },
    /// The active region's probe outcome changed since its previous probe, or this is the
    /// region's first probe since start or a switch: `outcome` is `ok`, `failure` or
    /// `tunnel_down`, and `error_kind` the failure's kind. The journal keeps these, not every
    /// probe, so that `replay` can rebuild what each region answered.
    ProbeChanged {
        #[serde(flatten)]
        at: Place,
        outcome: &'static str,
        error_kind: Option<&'static str>,
    },
    /// The active region answers again, or was left, after `failed_for` of failures.
    OutageEnded {
        #[serde(flatten)]
        at: Place,
        #[serde(rename = "how", serialize_with = "f::recovered")]
        recovered: bool,
        #[serde(rename = "failed_for_ms", serialize_with = "f::ms")]
        failed_for: Duration,
    },
    /// The outage lasted the threshold: moving on. For a cloud failure its message is the
    /// old script's; when the local tunnel (`tunnel`, its address) refused, it says so.
    Failover {
        #[serde(flatten, serialize_with = "place::outage_from")]
        from: Place,
        #[serde(flatten, serialize_with = "place::to")]
        to: Place,
        #[serde(rename = "failed_for_ms", serialize_with = "f::ms")]
        failed_for: Duration,
        #[serde(skip)]
        threshold: Duration,
        #[serde(flatten, serialize_with = "f::refusing_tunnel")]
        tunnel: Option<String>,
    },
    /// The local tunnel at `tunnel` refused for the threshold: the programs are restarted in
    /// place, on the same region, before any switch.
    TunnelRestart {
        #[serde(flatten)]
        at: Place,
        #[serde(flatten, serialize_with = "f::refused_at")]
        tunnel: String,
        #[serde(rename = "failed_for_ms", serialize_with = "f::ms")]
        failed_for: Duration,
    },
    /// The preferred region has been healthy long enough: moving back to it.
    Failback {
        #[serde(flatten, serialize_with = "place::failback_from")]
        from: Place,
        #[serde(flatten, serialize_with = "place::to")]
        to: Place,
        #[serde(rename = "healthy_for_ms", serialize_with = "f::ms")]
        healthy_for: Duration,
    },
    /// The env file was switched by hand: the daemon follows it.
    Adopted {
        #[serde(rename = "previous_region", serialize_with = "place::region")]
        from: Place,
        #[serde(flatten)]
        to: Place,
    },
    /// An outage lasted the threshold while automatic switching is paused.
    FailoverHeld {
        #[serde(flatten, serialize_with = "place::paused_from")]
        from: Place,
        #[serde(flatten, serialize_with = "place::to")]
        to: Place,
        #[serde(rename = "failed_for_ms", serialize_with = "f::ms")]
        failed_for: Duration,
        #[serde(skip)]
        pause: String,
        #[serde(serialize_with = "f::maybe_timestamp")]
        pause_until: Option<SystemTime>,
    },
    /// The env file now names `to`.
    Switch {
        #[serde(flatten)]
        from: Place,
        #[serde(flatten, serialize_with = "place::to")]
        to: Place,
        reason: SwitchReason,
        #[serde(rename = "failed_for_ms", serialize_with = "f::maybe_ms")]
        failed_for: Option<Duration>,
    },
    /// The programs are about to be restarted for `at`. For a move, the old script's message.
    Restarting {
        #[serde(flatten)]
        at: Place,
        reason: SwitchReason,
    },
    /// The programs were restarted; `failed_calls` supervisorctl calls were retried.
    RestartDone {
        region: String,
        #[serde(rename = "duration_ms", serialize_with = "f::ms")]
        took: Duration,
        failed_calls: u64,
    },
    /// A shutdown interrupted the restart; `stopped` are left stopped until the next start.
    RestartInterrupted {
        region: String,
        #[serde(serialize_with = "f::joined")]
        stopped: Vec<String>,
    },
    /// The restart gave up.
    RestartGaveUp { region: String, error: String },
    /// A restart interrupted before the last stop is finished at this start.
    RestartResumed { region: String },
    /// A restart was interrupted, and every program has been started since it began
    /// (supervisord restarted, or an operator): nothing is restarted again.
    RestartNotResumed { region: String },
    /// Automatic switching paused (`describe` says since when and for how long).
    Paused {
        #[serde(serialize_with = "f::timestamp")]
        since: SystemTime,
        #[serde(serialize_with = "f::maybe_timestamp")]
        until: Option<SystemTime>,
        #[serde(skip)]
        describe: String,
    },
    /// Automatic switching resumed by `resume` (`how`: `resume`).
    Resumed { how: &'static str },
    /// A timed pause ran out (`how`: `expired`).
    PauseEnded { how: &'static str },
    /// A manual switch pinned `region` (`source`: where the pin was seen).
    Pinned {
        region: String,
        source: &'static str,
    },
    /// The pin was lifted (`reason`: `unpin` or `outage`).
    Unpinned {
        region: String,
        reason: &'static str,
    },
    /// Fleet mode: the store (etcd) cannot be reached or has lost its own quorum; said once
    /// per loss. `local`: the host falls back to its own rules, else it keeps its region.
    FleetStoreLost {
        region: String,
        error: String,
        #[serde(rename = "on_store_loss", serialize_with = "f::on_store_loss")]
        local: bool,
    },
    /// Fleet mode: the store answers again.
    FleetStoreBack { region: String },
    /// Fleet mode: this host leads the fleet (it alone may move `active`).
    FleetLeader { host: String, fleet: String },
    /// Fleet mode: the leader moved the fleet, `outage` of `voters` live hosts agreeing.
    FleetMoved {
        #[serde(rename = "region")]
        from: String,
        #[serde(rename = "to_region")]
        to: String,
        epoch: u64,
        #[serde(rename = "outage_hosts")]
        outage: usize,
        voters: usize,
    },
    /// Fleet mode: the leader seeded an empty `active` (the store was wiped or lost its
    /// keys) with the latest decision a live host remembers, at the epoch above it.
    FleetReseeded { region: String, epoch: u64 },
    /// Fleet mode: the outage is agreed, but the fleet moved too often of late (flap
    /// damping): the move waits `next_allowed_in`.
    FleetMoveDamped {
        #[serde(rename = "from_region")]
        from: String,
        #[serde(rename = "to_region")]
        to: String,
        epoch: u64,
        #[serde(rename = "next_allowed_in_ms", serialize_with = "f::ms")]
        next_allowed_in: Duration,
        recent_moves: usize,
    },
    /// Fleet mode: the outage is agreed, but `pause --fleet` holds the move to `to`
    /// (`paused`: by whom and since when); told by the leader once per held move.
    FleetMovePaused {
        #[serde(rename = "region")]
        from: String,
        #[serde(rename = "to_region")]
        to: String,
        epoch: u64,
        paused: String,
    },
    /// Fleet mode: `pause --fleet` holds the fleet's automatic moves (`paused`: by whom and
    /// since when); told by every host when it sees the pause begin.
    FleetPaused { paused: String },
    /// Fleet mode: the fleet's pause is lifted (`resume --fleet`); told by every host.
    FleetResumed {},
    /// Fleet mode: at start, the host name is held by another handler (`holder`): this one
    /// waits up to `wait` for that handler's lease to end; with `former`, the holder was a
    /// handler of this machine that no longer runs, and the wait lasts until its lease ends.
    FleetHostTaken {
        host: String,
        holder: String,
        #[serde(rename = "wait_ms", serialize_with = "f::ms")]
        wait: Duration,
        former: bool,
    },
    /// Fleet mode: `active` names a region this host does not know: it stays.
    FleetRegionUnknown { region: String },
    /// Fleet mode: a restart waits in line for one of the fleet's restart slots.
    RestartQueued { max_concurrent_restarts: u32 },
    /// Fleet mode: the lease that binds this host's restart slot lapsed mid-restart (the
    /// host was stopped or cut off): it stopped acting before `step`; the restart is made
    /// again within a new slot.
    RestartLeaseLost {
        region: String,
        step: String,
        #[serde(serialize_with = "f::joined")]
        stopped: Vec<String>,
    },
    /// The certificate chain the probe saw runs out within two weeks (`left`: zero when it
    /// already has). Said at most once a day.
    CertExpiring {
        #[serde(flatten)]
        at: Place,
        #[serde(serialize_with = "f::timestamp")]
        not_after: SystemTime,
        #[serde(rename = "expires_in_s", serialize_with = "f::secs")]
        left: Duration,
    },
    /// The local tunnel presents a certificate the probe cannot verify: no failover and no
    /// restart for it. Said at most every 10 minutes while it lasts.
    TunnelMisconfigured {
        #[serde(flatten)]
        at: Place,
        #[serde(flatten, serialize_with = "f::misconfigured")]
        error: String,
    },
    /// A due failover is held back (not for a pause: `failover_held`); said once per change
    /// of what holds it.
    FailoverDeferred(Deferred),
    /// A due failback is held back.
    FailbackDeferred(Deferred),
    /// A switch by hand (`pid`) is restarting the programs for `region`: probe failures are
    /// expected until its restart ends, told at INFO and starting no outage.
    SwitchRestartBegan { region: String, pid: u32 },
    /// That restart ended after `took`: `how` is `done` (its mark removed), `abandoned` (the
    /// switch is gone, its mark left) or `overdue` (it ran past any restart's time).
    SwitchRestartEnded {
        region: String,
        pid: u32,
        how: &'static str,
        #[serde(rename = "duration_ms", serialize_with = "f::ms")]
        took: Duration,
    },
    /// What the daemon tells beside its decisions (log line only).
    #[serde(untagged)]
    Notice(Notice),
    /// What region intelligence tells beside its decisions (log line only).
    #[serde(untagged)]
    Standby(Standby),
    /// What a one-shot command tells as it acts (its stderr).
    #[serde(untagged)]
    Command(Command),
    /// What a restart's calls and the state directory report (log line only).
    #[serde(untagged)]
    Steps(Steps),
}

impl Event {
    pub fn level(&self) -> Level {
        match self {
            Event::OutageStarted { .. }
            | Event::Failover { .. }
            | Event::TunnelRestart { .. }
            | Event::FailoverHeld { .. }
            | Event::RestartInterrupted { .. }
            | Event::RestartResumed { .. }
            | Event::FleetStoreLost { .. }
            | Event::FleetMoved { .. }
            | Event::FleetReseeded { .. }
            | Event::FleetMoveDamped { .. }
            | Event::FleetMovePaused { .. }
            | Event::FleetHostTaken { .. }
            | Event::RestartLeaseLost { .. }
            | Event::CertExpiring { .. }
            | Event::SwitchRestartEnded { how: "overdue", .. } => Level::Warn,
            Event::Switch { reason, .. } if *reason == SwitchReason::Outage => Level::Warn,
            Event::RestartGaveUp { .. }
            | Event::TunnelMisconfigured { .. }
            | Event::FleetRegionUnknown { .. } => Level::Error,
            Event::FailoverDeferred(d) | Event::FailbackDeferred(d) => match d.reason {
                DeferReason::Paused { .. } => Level::Debug,
                _ => Level::Warn,
            },
            Event::Notice(n) => n.level(),
            Event::Standby(s) => s.level(),
            Event::Command(c) => c.level(),
            Event::Steps(s) => s.level(),
            _ => Level::Info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(r: &str) -> Place {
        Place {
            region: r.to_string(),
            cloud: format!("cloud.{}.ext.com", r.to_lowercase()),
        }
    }

    #[test]
    fn the_old_scripts_two_messages_word_for_word() {
        let failover = Event::Failover {
            from: place("EU"),
            to: place("NAM"),
            failed_for: Duration::from_secs(241),
            threshold: Duration::from_secs(240),
            tunnel: None,
        };
        assert_eq!(
            failover.message(),
            "Waited for 4 min. Application restarting due to failure with Ext Cloud: cloud.eu.ext.com"
        );
        assert_eq!(failover.level(), Level::Warn);
        let restarting = Event::Restarting {
            at: place("NAM"),
            reason: SwitchReason::Outage,
        };
        assert_eq!(
            restarting.message(),
            "Re-starting application with the new region NAM and cloud cloud.nam.ext.com."
        );
    }

    #[test]
    fn the_record_carries_the_same_name_and_fields() {
        let e = Event::Switch {
            from: place("EU"),
            to: place("NAM"),
            reason: SwitchReason::Outage,
            failed_for: Some(Duration::from_millis(1500)),
        };
        let r = e.record(SystemTime::UNIX_EPOCH);
        assert_eq!(r.event, "switch");
        assert_eq!(r.level, "WARN");
        assert_eq!(r.fields, e.fields());
        assert_eq!(r.fields["to_region"], "NAM");
        assert_eq!(r.fields["reason"], "outage");
        assert_eq!(r.fields["failed_for_ms"], 1500);
        assert!(!r.fields.contains_key("http_status"));
    }
}
