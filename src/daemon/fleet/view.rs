//! This host's view of its region, as the fleet reads it, and the policy's own moves
//! withheld while the fleet decides.

use std::time::Instant;

use crate::adapters::http::{Probe, is_loopback};
use crate::adapters::supervisor::Restart;
use crate::config::TLS_NAME_CLOUD as CLOUD;
use crate::daemon::Daemon;
use crate::kernel::health::Verdict as Up;
use crate::kernel::policy::{Decision, Hold};
use crate::kernel::protocol::Here;
use crate::kernel::quorum::{Health, View};
use crate::kernel::standby::Subject;

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Whether the probe of the active region is local: a loopback URL whose TLS name does
    /// not follow the region's cloud (a TLS failure there is the tunnel's setup).
    pub(in crate::daemon) fn probe_is_local(&self) -> bool {
        let probe = &self.config.probe;
        is_loopback(&probe.url)
            && !probe
                .tls_server_name
                .as_deref()
                .is_some_and(|n| n.contains(CLOUD))
    }

    /// The host as the protocol sees it.
    pub(super) fn here(&self) -> Here {
        Here {
            at: self.policy.active(),
            tunnel_down: self.policy.tunnel_down(),
        }
    }

    /// After a probe: records this host's view of its region, and withholds the policy's
    /// own move while the fleet decides. `local` says the probe's failure is this host's own
    /// (`ErrorKind::is_local_fault`): the host then abstains.
    pub(in crate::daemon) fn fleet_view(
        &mut self,
        now: Instant,
        decision: Decision,
        local: bool,
    ) -> Decision {
        let Some(fleet) = self.fleet.as_ref() else {
            return decision;
        };
        let (epoch, arrived) = fleet.member.epoch();
        let failing_since = self.policy.failing_since();
        let health = Health::at(now, failing_since, arrived, self.config.failover.threshold);
        let local_fault =
            failing_since.is_some() && (local || self.policy.standbys().references_down());
        let active = self.policy.active();
        // Sorted by name, as the store gives them back: an unchanged view compares equal.
        let mut standbys: Vec<(String, bool)> = (0..self.config.regions.len())
            .filter(|&i| i != active)
            .filter_map(|i| {
                let up = match self.policy.standbys().verdict(Subject::Region(i))? {
                    Up::Up => true,
                    Up::Down => false,
                    Up::Unknown => return None,
                };
                Some((self.region(i).name.clone(), up))
            })
            .collect();
        standbys.sort();
        let blames_self = matches!(
            decision,
            Decision::Held {
                reason: Hold::HostNetwork,
                ..
            }
        );
        let view = View {
            region: self.active().name.clone(),
            epoch,
            health,
            blames_self,
            local_fault,
            standbys,
        };
        // A host acting alone still waits out a lease after the last slot it saw held.
        let withhold = fleet.member.withholds() || !fleet.member.alone_may_restart(now);
        let Some(fleet) = self.fleet.as_mut() else {
            return decision;
        };
        fleet.member.set_view(view);
        match decision {
            Decision::Failover { failed_for, .. } if withhold => {
                fleet.withheld = true;
                Decision::Failing {
                    failing_for: failed_for,
                }
            }
            // A failover withheld while the store answered is announced when the host
            // makes it alone.
            Decision::Failover {
                from,
                to,
                failed_for,
                announce,
            } => Decision::Failover {
                from,
                to,
                failed_for,
                announce: announce || std::mem::take(&mut fleet.withheld),
            },
            Decision::Failback { .. } | Decision::MeasureThroughput { .. } if withhold => {
                Decision::Healthy
            }
            d => d,
        }
    }
}
