//! The structured fields of each [`Event`], beside `event`: the same keys in the log line,
//! the journal, `/history` and Datadog.

use serde_json::{Map, Value};

use crate::report::event::{Event, Place, ms};
use crate::report::journal::timestamp;

impl Event {
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
                f.put("probe_url", crate::config::redact::url(probe_url));
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
            Event::ProbeChanged {
                at,
                outcome,
                error_kind,
            } => {
                f.place("", at);
                f.put("outcome", *outcome);
                f.put("error_kind", *error_kind);
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
            Event::FleetStoreLost {
                region,
                error,
                local,
            } => {
                f.put("region", region.as_str());
                f.put("error", error.as_str());
                f.put("on_store_loss", if *local { "local" } else { "keep" });
            }
            Event::FleetStoreBack { region } => f.put("region", region.as_str()),
            Event::FleetLeader { host, fleet } => {
                f.put("host", host.as_str());
                f.put("fleet", fleet.as_str());
            }
            Event::FleetMoved {
                from,
                to,
                epoch,
                outage,
                voters,
            } => {
                f.put("region", from.as_str());
                f.put("to_region", to.as_str());
                f.put("epoch", *epoch);
                f.put("outage_hosts", *outage as u64);
                f.put("voters", *voters as u64);
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
            Event::TunnelMisconfigured { at, error } => {
                f.place("", at);
                f.put("error_kind", "tunnel_misconfigured");
                f.put("error", error.as_str());
            }
            Event::SwitchRestartBegan { region, pid } => {
                f.put("region", region.as_str());
                f.put("pid", *pid);
            }
            Event::SwitchRestartEnded {
                region,
                pid,
                how,
                took,
            } => {
                f.put("region", region.as_str());
                f.put("pid", *pid);
                f.put("how", *how);
                f.put("duration_ms", ms(*took));
            }
        }
        f.0
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
