//! The sentence for people that each [`Event`] carries, in the log line, the journal and
//! Datadog alike. The old script's two messages are worded here, word for word.

use crate::config::threshold_text;
use crate::report::event::{Event, SwitchReason, human_ms, ms};

impl Event {
    /// The sentence for people, worded by the function of the variant's group (each group's
    /// function is reached only with its own variants).
    pub fn message(&self) -> String {
        match self {
            Event::DaemonStarted { .. }
            | Event::DaemonStopped { .. }
            | Event::OutageStarted { .. }
            | Event::ProbeChanged { .. }
            | Event::OutageEnded { .. }
            | Event::TunnelMisconfigured { .. }
            | Event::CertExpiring { .. } => self.outage_message(),
            Event::Failover { .. }
            | Event::TunnelRestart { .. }
            | Event::Failback { .. }
            | Event::FailoverHeld { .. }
            | Event::FailoverDeferred(..)
            | Event::FailbackDeferred(..) => self.decision_message(),
            Event::Adopted { .. } | Event::Switch { .. } => self.switched_message(),
            Event::Restarting { .. }
            | Event::RestartDone { .. }
            | Event::RestartInterrupted { .. }
            | Event::RestartGaveUp { .. }
            | Event::RestartResumed { .. }
            | Event::RestartNotResumed { .. }
            | Event::RestartQueued { .. }
            | Event::RestartLeaseLost { .. }
            | Event::SwitchRestartBegan { .. }
            | Event::SwitchRestartEnded { .. } => self.restart_message(),
            Event::Paused { .. }
            | Event::PauseEnded { .. }
            | Event::Resumed { .. }
            | Event::Pinned { .. }
            | Event::Unpinned { .. } => self.pause_message(),
            Event::FleetStoreLost { .. }
            | Event::FleetStoreBack { .. }
            | Event::FleetLeader { .. }
            | Event::FleetMoved { .. }
            | Event::FleetReseeded { .. }
            | Event::FleetMoveDamped { .. }
            | Event::FleetMovePaused { .. }
            | Event::FleetPaused { .. }
            | Event::FleetResumed { .. }
            | Event::FleetRegionUnknown { .. }
            | Event::FleetHostTaken { .. } => self.fleet_message(),
            Event::Notice(..) | Event::Steps(..) | Event::Standby(..) | Event::Command(..) => {
                self.group_message()
            }
        }
    }

    /// The daemon's start and stop, and what its probes found.
    fn outage_message(&self) -> String {
        match self {
            Event::DaemonStarted { at, order, .. } => format!(
                "failover-handler {} starting on region {} and cloud {}: failover order {}",
                env!("CARGO_PKG_VERSION"),
                at.region,
                at.cloud,
                order.join(" -> ")
            ),
            Event::DaemonStopped { at } => {
                format!("Shutting down: region {} stays active", at.region)
            }
            Event::OutageStarted { at, error, .. } => format!(
                "Region {} ({}) failing: {error}; the outage timer starts",
                at.region, at.cloud
            ),
            Event::ProbeChanged { at, error_kind, .. } => match error_kind {
                None => format!("Probe of region {} ({}) ok", at.region, at.cloud),
                Some(kind) => format!("Probe of region {} ({}) fails: {kind}", at.region, at.cloud),
            },
            Event::OutageEnded {
                at,
                recovered: true,
                failed_for,
            } => format!(
                "Probe of {} ok again after {} of failures: outage timer reset",
                at.cloud,
                human_ms(*failed_for)
            ),
            Event::OutageEnded { at, failed_for, .. } => format!(
                "Left region {} after {} of failures",
                at.region,
                human_ms(*failed_for)
            ),
            Event::TunnelMisconfigured { at, error } => format!(
                "Probes of region {} ({}) cannot reach the cloud: {error}. This host's configuration is at fault, not the region: no failover and no restart until it is fixed",
                at.region, at.cloud
            ),
            Event::CertExpiring {
                at,
                not_after,
                left,
            } => format!(
                "The certificate chain the probe of region {} ({}) sees expires at {} ({}): renew it before the probe fails",
                at.region,
                at.cloud,
                crate::config::timestamp(*not_after),
                if left.is_zero() {
                    "already expired".to_string()
                } else {
                    format!(
                        "in {}",
                        crate::config::duration_text(
                            std::time::Duration::from_secs(left.as_secs() / 3600 * 3600)
                                .max(std::time::Duration::from_secs(1))
                        )
                    )
                }
            ),
            _ => String::new(),
        }
    }

    /// A switch of region decided, deferred or held back.
    fn decision_message(&self) -> String {
        match self {
            Event::Failover {
                from,
                to,
                failed_for,
                tunnel: Some(address),
                ..
            } => format!(
                "The local tunnel at {address} still refuses {} after the programs were restarted in place: moving from {} to {} (the fault may be this host's, not the cloud's)",
                human_ms(*failed_for),
                from.region,
                to.region
            ),
            Event::TunnelRestart {
                at,
                tunnel,
                failed_for,
            } => format!(
                "The local tunnel at {tunnel} has refused connections for {}: restarting the programs in place on region {} (the cloud is not at fault; a switch follows only if this lasts another threshold)",
                human_ms(*failed_for),
                at.region
            ),
            Event::Failover {
                from, threshold, ..
            } => format!(
                "Waited for {}. Application restarting due to failure with Ext Cloud: {}",
                threshold_text(*threshold),
                from.cloud
            ),
            Event::Failback {
                from,
                to,
                healthy_for,
            } => format!(
                "The preferred region {} ({}) has been healthy for {}: failing back from {}",
                to.region,
                to.cloud,
                human_ms(*healthy_for),
                from.region
            ),
            Event::FailoverHeld {
                from,
                to,
                failed_for,
                pause,
                ..
            } => format!(
                "Outage of {} ({}) lasted {}: failover to {} held back because automatic switching is paused {pause}",
                from.region,
                from.cloud,
                human_ms(*failed_for),
                to.region
            ),
            Event::FailoverDeferred(d) | Event::FailbackDeferred(d) => d.message(),
            _ => String::new(),
        }
    }

    /// The env file naming another region: a switch made, or one made by hand and adopted.
    fn switched_message(&self) -> String {
        match self {
            Event::Adopted { from, to } => format!(
                "The env file was switched to region {} and cloud {} by hand: adopting it (was {})",
                to.region, to.cloud, from.region
            ),
            Event::Switch {
                from,
                to,
                reason,
                failed_for,
            } => {
                let why = match (reason, failed_for) {
                    (SwitchReason::Outage, Some(d)) => {
                        format!("after {} of failures", human_ms(*d))
                    }
                    (SwitchReason::Manual, _) => {
                        "switched by hand (failover-handler switch or an edit of the env file)"
                            .to_string()
                    }
                    (r, _) => format!("reason: {}", r.as_str()),
                };
                format!(
                    "Switched from {} ({}) to {} ({}): {why}",
                    from.region, from.cloud, to.region, to.cloud
                )
            }
            _ => String::new(),
        }
    }

    /// The programs' restarts: the daemon's own, a fleet host's turn, a switch's by hand.
    fn restart_message(&self) -> String {
        match self {
            Event::Restarting {
                at,
                reason: SwitchReason::Start,
            } => format!(
                "Starting on region {} and cloud {}: restarting the programs so they use it",
                at.region, at.cloud
            ),
            Event::Restarting { at, .. } => format!(
                "Re-starting application with the new region {} and cloud {}.",
                at.region, at.cloud
            ),
            Event::RestartDone {
                took, failed_calls, ..
            } => format!(
                "Programs restarted in {} ms{}",
                ms(*took),
                if *failed_calls > 0 {
                    format!(" ({failed_calls} failed supervisorctl calls retried)")
                } else {
                    String::new()
                }
            ),
            Event::RestartInterrupted { stopped, .. } => format!(
                "Restart interrupted by shutdown; left stopped: [{}]; it resumes at the next start",
                stopped.join(", ")
            ),
            Event::RestartGaveUp { region, error } => {
                format!("Restart for region {region} failed: {error}")
            }
            Event::RestartResumed { region } => format!(
                "A restart for region {region} was interrupted before it finished: restarting the programs now"
            ),
            Event::RestartNotResumed { region } => format!(
                "A restart for region {region} was interrupted before it finished, but every program has been started since it began (by supervisord or by hand), with the env file as it now reads: nothing left to restart"
            ),
            Event::RestartQueued {
                max_concurrent_restarts,
            } => format!(
                "Waiting in line for one of the fleet's {max_concurrent_restarts} restart slot(s) before restarting the programs"
            ),
            Event::RestartLeaseLost {
                region,
                step,
                stopped,
            } => format!(
                "The fleet lease lapsed during the restart for region {region} (this host was stopped or cut off): stopped before {step}, another host may hold the slot now; {} stay stopped until this host restarts them within a new slot",
                if stopped.is_empty() {
                    "no programs".to_string()
                } else {
                    stopped.join(", ")
                }
            ),
            Event::SwitchRestartBegan { region, pid } => format!(
                "A switch to region {region} (pid {pid}) is restarting the programs: probe failures are expected until its restart ends, told at INFO and starting no outage"
            ),
            Event::SwitchRestartEnded {
                region,
                pid,
                how,
                took,
            } => {
                let took = human_ms(*took);
                match *how {
                    "abandoned" => format!(
                        "The switch to region {region} (pid {pid}) is gone after {took}, before its restart ended: probe failures count again"
                    ),
                    "overdue" => format!(
                        "The switch to region {region} (pid {pid}) has been restarting the programs for {took}, longer than a restart may take: probe failures count again"
                    ),
                    _ => format!(
                        "The switch to region {region} (pid {pid}) restarted the programs in {took}: probe failures count again"
                    ),
                }
            }
            _ => String::new(),
        }
    }

    /// A pause of automatic switching, and a pin.
    fn pause_message(&self) -> String {
        match self {
            Event::Paused { describe, .. } => format!(
                "Automatic switching paused {describe}: probing and reporting continue, no automatic failover"
            ),
            Event::PauseEnded { .. } => {
                "The pause ended by itself: automatic switching resumes".to_string()
            }
            Event::Resumed { .. } => {
                "Automatic switching resumed (`failover-handler resume`)".to_string()
            }
            Event::Pinned { region, .. } => format!(
                "Region {region} is pinned by a manual switch: no automatic failback away from it until the next outage or `switch --unpin`"
            ),
            Event::Unpinned {
                region,
                reason: "outage",
            } => format!(
                "The outage ended the pin of region {region}: automatic failback may apply again"
            ),
            Event::Unpinned {
                region,
                reason: "stale",
            } => format!(
                "The pin of region {region} is stale (the env file names another region: the handler stopped before an outage's switch removed it); removed"
            ),
            Event::Unpinned { .. } => {
                "The pin of a manual switch was removed: automatic failback may apply again"
                    .to_string()
            }
            _ => String::new(),
        }
    }

    /// The fleet's store, leader, moves and pause.
    fn fleet_message(&self) -> String {
        match self {
            Event::FleetStoreLost {
                region,
                error,
                local: false,
            } => format!("The fleet's store is lost ({error}): keeping region {region}"),
            Event::FleetStoreLost { error, .. } => {
                format!("The fleet's store is lost ({error}): this host follows its own rules")
            }
            Event::FleetStoreBack { region } => {
                format!("The fleet's store answers again (this host is on region {region})")
            }
            Event::FleetLeader { host, fleet } => {
                format!("Host {host} leads fleet {fleet}")
            }
            Event::FleetMoved {
                from,
                to,
                outage,
                voters,
                ..
            } => format!(
                "{outage} of {voters} live hosts see region {from} in outage: moving the fleet to {to}"
            ),
            Event::FleetReseeded { region, epoch } => format!(
                "The fleet's store had no active region: seeded with {region}, the latest decision a live host remembers (epoch {epoch}); no host restarts for it"
            ),
            Event::FleetMoveDamped {
                from,
                to,
                next_allowed_in,
                recent_moves,
                ..
            } => format!(
                "The fleet agrees {from} is in outage, but it moved {recent_moves} time(s) in the last hour: the move to {to} waits {} (failover.max_switches_per_hour)",
                human_ms(*next_allowed_in)
            ),
            Event::FleetMovePaused {
                from, to, paused, ..
            } => format!(
                "The fleet agrees region {from} is in outage, but its automatic moves are paused ({paused}): the move to {to} waits for `resume --fleet` (or a `switch --fleet`)"
            ),
            Event::FleetPaused { paused } => format!(
                "The fleet's automatic moves are paused ({paused}) until `resume --fleet`: this host follows only a `switch --fleet`"
            ),
            Event::FleetResumed {} => {
                "The fleet's automatic moves apply again (`resume --fleet`)".to_string()
            }
            Event::FleetRegionUnknown { region } => format!(
                "The fleet's active region {region} is not in this host's failover list: staying"
            ),
            Event::FleetHostTaken {
                host,
                holder,
                former: true,
                ..
            } => format!(
                "The host name {host} is still held by a handler of this machine that no longer runs ({holder}): waiting for its lease to end"
            ),
            Event::FleetHostTaken {
                host, holder, wait, ..
            } => format!(
                "The host name {host} is held by another handler ({holder}): waiting up to {} for its lease to end",
                human_ms(*wait)
            ),
            _ => String::new(),
        }
    }

    /// The groups worded beside their own types.
    fn group_message(&self) -> String {
        match self {
            Event::Notice(n) => n.message(),
            Event::Steps(s) => s.message(),
            Event::Standby(s) => s.message(),
            Event::Command(c) => c.message(),
            _ => String::new(),
        }
    }
}
