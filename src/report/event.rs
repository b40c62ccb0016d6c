//! The one vocabulary of what happened. Each decision of the daemon is an [`Event`] value,
//! made once; the JSON log line, the journal record, `/history`, the Datadog entry, the
//! metrics and the live view are all rendered from it, under the same `event` name and with
//! the same fields. The two messages of the old script are rendered here, word for word.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::config::human;
use crate::report::journal::{Level, Record, timestamp};

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
    /// The certificate chain the probe saw runs out within two weeks (`left`: zero when it
    /// already has). Said at most once a day.
    CertExpiring {
        at: Place,
        not_after: SystemTime,
        left: Duration,
    },
}

impl Event {
    /// The `event` name, the same in every rendering.
    pub fn name(&self) -> &'static str {
        match self {
            Event::DaemonStarted { .. } => "daemon_started",
            Event::DaemonStopped { .. } => "daemon_stopped",
            Event::OutageStarted { .. } => "outage_started",
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
            Event::CertExpiring { .. } => "cert_expiring",
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
            | Event::CertExpiring { .. } => Level::Warn,
            Event::Switch { reason, .. } if *reason == SwitchReason::Outage => Level::Warn,
            Event::RestartGaveUp { .. } => Level::Error,
            _ => Level::Info,
        }
    }

    /// The structured fields, beside `event`, in every rendering.
    pub fn fields(&self) -> Map<String, Value> {
        let mut f = Fields::default();
        match self {
            Event::DaemonStarted {
                at,
                order,
                probe_url,
                interval,
                threshold,
                dry_run,
                env_file_written,
            } => {
                f.place("", at);
                f.put("version", env!("CARGO_PKG_VERSION"));
                f.put("order", order.join(","));
                f.put("probe_url", probe_url.as_str());
                f.put("interval_ms", ms(*interval));
                f.put("threshold_ms", ms(*threshold));
                f.put("dry_run", *dry_run);
                f.put("env_file_written", *env_file_written);
            }
            Event::DaemonStopped { at } => f.place("", at),
            Event::OutageStarted {
                at,
                error_kind,
                http_status,
                ..
            } => {
                f.place("", at);
                f.put("error_kind", *error_kind);
                f.put("http_status", *http_status);
            }
            Event::OutageEnded {
                at,
                recovered,
                failed_for,
            } => {
                f.place("", at);
                f.put("how", if *recovered { "recovered" } else { "switched" });
                f.put("failed_for_ms", ms(*failed_for));
            }
            Event::Failover {
                from,
                to,
                failed_for,
                tunnel,
                ..
            } => {
                f.moving(from, to, "outage");
                f.put("failed_for_ms", ms(*failed_for));
                if let Some(address) = tunnel {
                    f.put("error_kind", "tunnel_down");
                    f.put("tunnel", address.as_str());
                }
            }
            Event::TunnelRestart {
                at,
                tunnel,
                failed_for,
            } => {
                f.place("", at);
                f.put("error_kind", "tunnel_down");
                f.put("tunnel", tunnel.as_str());
                f.put("failed_for_ms", ms(*failed_for));
            }
            Event::Failback {
                from,
                to,
                healthy_for,
            } => {
                f.moving(from, to, "failback");
                f.put("healthy_for_ms", ms(*healthy_for));
            }
            Event::Adopted { from, to } => {
                f.place("", to);
                f.put("previous_region", from.region.as_str());
            }
            Event::FailoverHeld {
                from,
                to,
                failed_for,
                pause_until,
                ..
            } => {
                f.moving(from, to, "paused");
                f.put("failed_for_ms", ms(*failed_for));
                f.put("pause_until", pause_until.map(timestamp));
            }
            Event::Switch {
                from,
                to,
                reason,
                failed_for,
            } => {
                f.moving(from, to, reason.as_str());
                f.put("failed_for_ms", failed_for.map(ms));
            }
            Event::Restarting { at, reason } => {
                f.place("", at);
                f.put("reason", reason.as_str());
            }
            Event::RestartDone {
                region,
                took,
                failed_calls,
            } => {
                f.put("region", region.as_str());
                f.put("duration_ms", ms(*took));
                f.put("failed_calls", *failed_calls);
            }
            Event::RestartInterrupted { region, stopped } => {
                f.put("region", region.as_str());
                f.put("stopped", stopped.join(","));
            }
            Event::RestartGaveUp { region, error } => {
                f.put("region", region.as_str());
                f.put("error", error.as_str());
            }
            Event::RestartResumed { region } | Event::RestartNotResumed { region } => {
                f.put("region", region.as_str())
            }
            Event::Paused { since, until, .. } => {
                f.put("since", timestamp(*since));
                f.put("until", until.map(timestamp));
            }
            Event::Resumed { expired } => f.put("how", if *expired { "expired" } else { "resume" }),
            Event::Pinned { region, source } => {
                f.put("region", region.as_str());
                f.put("source", *source);
            }
            Event::Unpinned { region, reason } => {
                f.put("region", region.as_str());
                f.put("reason", *reason);
            }
            Event::CertExpiring {
                at,
                not_after,
                left,
            } => {
                f.place("", at);
                f.put("not_after", timestamp(*not_after));
                f.put("expires_in_s", left.as_secs());
            }
        }
        f.0
    }

    /// The journal record (also what `/history` and Datadog carry).
    pub fn record(&self, at: SystemTime) -> Record {
        let mut record = Record::new(at, self.level(), self.name(), self.message());
        record.fields = self.fields();
        record
    }
}

/// Fields in the making; `None` values are left out.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        if !value.is_null() {
            self.0.insert(key.to_string(), value);
        }
    }

    /// `region` and `cloud`, or `<prefix>region` and `<prefix>cloud`.
    fn place(&mut self, prefix: &str, p: &Place) {
        self.put(&format!("{prefix}region"), p.region.as_str());
        self.put(&format!("{prefix}cloud"), p.cloud.as_str());
    }

    /// A move: where from (`region`, `cloud`), where to (`to_region`, `to_cloud`), and why.
    fn moving(&mut self, from: &Place, to: &Place, reason: &str) {
        self.place("", from);
        self.place("to_", to);
        self.put("reason", reason);
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
