//! The one vocabulary of what happened. Each decision of the daemon is an [`Event`] value,
//! made once; the JSON log line, the journal record, `/history`, the Datadog entry, the
//! metrics and the live view are all rendered from it, under the same `event` name and with
//! the same fields. The two messages of the old script are rendered here, word for word.

use std::time::{Duration, SystemTime};

use crate::config::human;
use crate::report::journal::{Level, Record};

/// Whole milliseconds, as every `*_ms` field carries them.
pub fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// A duration in whole milliseconds, as people read it.
pub(crate) fn human_ms(d: Duration) -> String {
    human(Duration::from_millis(ms(d)))
}

/// A region as events name it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    pub region: String,
    pub cloud: String,
}

/// Why the env file names a new region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchReason {
    /// The handler started and the env file did not name the region to use.
    Start,
    /// The active region's outage lasted the threshold.
    Outage,
    /// The preferred region has been healthy for `failback_after`.
    Failback,
    /// Somebody switched by hand (`failover-handler switch` or an edit of the env file).
    Manual,
}

impl SwitchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Start => "start",
            SwitchReason::Outage => "outage",
            SwitchReason::Failback => "failback",
            SwitchReason::Manual => "manual",
        }
    }
}

/// One decision of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The daemon chose its region at start; `env_file_written`: the env file did not name it.
    DaemonStarted {
        at: Place,
        order: Vec<String>,
        probe_url: String,
        interval: Duration,
        threshold: Duration,
        dry_run: bool,
        env_file_written: bool,
    },
    /// SIGTERM or SIGINT: the daemon stops and the region stays active.
    DaemonStopped { at: Place },
    /// The first failed probe of an outage: the outage timer starts.
    OutageStarted {
        at: Place,
        error_kind: &'static str,
        http_status: Option<u16>,
        error: String,
    },
    /// The active region's probe outcome changed since its previous probe, or this is the
    /// region's first probe since start or a switch: `outcome` is `ok`, `failure` or
    /// `tunnel_down`, and `error_kind` the failure's kind. The journal keeps these, not every
    /// probe, so that `replay` can rebuild what each region answered.
    ProbeChanged {
        at: Place,
        outcome: &'static str,
        error_kind: Option<&'static str>,
    },
    /// The active region answers again, or was left, after `failed_for` of failures.
    OutageEnded {
        at: Place,
        recovered: bool,
        failed_for: Duration,
    },
    /// The outage lasted the threshold: moving on. For a cloud failure its message is the
    /// old script's; when the local tunnel (`tunnel`, its address) refused, it says so.
    Failover {
        from: Place,
        to: Place,
        failed_for: Duration,
        threshold: Duration,
        tunnel: Option<String>,
    },
    /// The local tunnel at `tunnel` refused for the threshold: the programs are restarted in
    /// place, on the same region, before any switch.
    TunnelRestart {
        at: Place,
        tunnel: String,
        failed_for: Duration,
    },
    /// The preferred region has been healthy long enough: moving back to it.
    Failback {
        from: Place,
        to: Place,
        healthy_for: Duration,
    },
    /// The env file was switched by hand: the daemon follows it.
    Adopted { from: Place, to: Place },
    /// An outage lasted the threshold while automatic switching is paused.
    FailoverHeld {
        from: Place,
        to: Place,
        failed_for: Duration,
        pause: String,
        pause_until: Option<SystemTime>,
    },
    /// The env file now names `to`.
    Switch {
        from: Place,
        to: Place,
        reason: SwitchReason,
        failed_for: Option<Duration>,
    },
    /// The programs are about to be restarted for `at`. For a move, the old script's message.
    Restarting { at: Place, reason: SwitchReason },
    /// The programs were restarted; `failed_calls` supervisorctl calls were retried.
    RestartDone {
        region: String,
        took: Duration,
        failed_calls: u64,
    },
    /// A shutdown interrupted the restart; `stopped` are left stopped until the next start.
    RestartInterrupted {
        region: String,
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
        since: SystemTime,
        until: Option<SystemTime>,
        describe: String,
    },
    /// Automatic switching resumed: by `resume`, or by the end of a timed pause.
    Resumed { expired: bool },
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
        local: bool,
    },
    /// Fleet mode: the store answers again.
    FleetStoreBack { region: String },
    /// Fleet mode: this host leads the fleet (it alone may move `active`).
    FleetLeader { host: String, fleet: String },
    /// Fleet mode: the leader moved the fleet, `outage` of `voters` live hosts agreeing.
    FleetMoved {
        from: String,
        to: String,
        epoch: u64,
        outage: usize,
        voters: usize,
    },
    /// The certificate chain the probe saw runs out within two weeks (`left`: zero when it
    /// already has). Said at most once a day.
    CertExpiring {
        at: Place,
        not_after: SystemTime,
        left: Duration,
    },
    /// The local tunnel presents a certificate the probe cannot verify: no failover and no
    /// restart for it. Said at most every 10 minutes while it lasts.
    TunnelMisconfigured { at: Place, error: String },
    /// A switch by hand (`pid`) is restarting the programs for `region`: probe failures are
    /// expected until its restart ends, told at INFO and starting no outage.
    SwitchRestartBegan { region: String, pid: u32 },
    /// That restart ended after `took`: `how` is `done` (its mark removed), `abandoned` (the
    /// switch is gone, its mark left) or `overdue` (it ran past any restart's time).
    SwitchRestartEnded {
        region: String,
        pid: u32,
        how: &'static str,
        took: Duration,
    },
}

impl Event {
    /// The `event` name, the same in every rendering.
    pub fn name(&self) -> &'static str {
        match self {
            Event::DaemonStarted { .. } => "daemon_started",
            Event::DaemonStopped { .. } => "daemon_stopped",
            Event::OutageStarted { .. } => "outage_started",
            Event::ProbeChanged { .. } => "probe_changed",
            Event::OutageEnded { .. } => "outage_ended",
            Event::Failover { .. } => "failover",
            Event::TunnelRestart { .. } => "tunnel_restart",
            Event::Failback { .. } => "failback",
            Event::Adopted { .. } => "adopted",
            Event::FailoverHeld { .. } => "failover_held",
            Event::Switch { .. } => "switch",
            Event::Restarting { .. } => "restarting",
            Event::RestartDone { .. } => "restart_done",
            Event::RestartInterrupted { .. } => "restart_interrupted",
            Event::RestartGaveUp { .. } => "restart_gave_up",
            Event::RestartResumed { .. } => "restart_resumed",
            Event::RestartNotResumed { .. } => "restart_not_resumed",
            Event::Paused { .. } => "paused",
            Event::Resumed { expired: false } => "resumed",
            Event::Resumed { expired: true } => "pause_ended",
            Event::Pinned { .. } => "pinned",
            Event::Unpinned { .. } => "unpinned",
            Event::FleetStoreLost { .. } => "fleet_store_lost",
            Event::FleetStoreBack { .. } => "fleet_store_back",
            Event::FleetLeader { .. } => "fleet_leader",
            Event::FleetMoved { .. } => "fleet_moved",
            Event::CertExpiring { .. } => "cert_expiring",
            Event::TunnelMisconfigured { .. } => "tunnel_misconfigured",
            Event::SwitchRestartBegan { .. } => "switch_restart_began",
            Event::SwitchRestartEnded { .. } => "switch_restart_ended",
        }
    }

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
            | Event::CertExpiring { .. }
            | Event::SwitchRestartEnded { how: "overdue", .. } => Level::Warn,
            Event::Switch { reason, .. } if *reason == SwitchReason::Outage => Level::Warn,
            Event::RestartGaveUp { .. } | Event::TunnelMisconfigured { .. } => Level::Error,
            _ => Level::Info,
        }
    }

    /// The journal record (also what `/history` and Datadog carry).
    pub fn record(&self, at: SystemTime) -> Record {
        let mut record = Record::new(at, self.level(), self.name(), self.message());
        record.fields = self.fields();
        record
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
