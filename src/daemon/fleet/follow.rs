//! Following the fleet: a host moves to the fleet's `active` region within a restart slot,
//! and adopts the epoch it executes (its outage votes count from its arrival).

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::adapters::etcd::EtcdError;
use crate::adapters::fleet_store::Snapshot;
use crate::adapters::probe::Probe;
use crate::adapters::restart::Restart;
use crate::daemon::Daemon;
use crate::daemon::fleet::Fleet;
use crate::kernel::region;
use crate::report::event::SwitchReason;

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Moves this host to the fleet's `active` region, within a restart slot.
    pub(super) async fn follow(
        &mut self,
        fleet: &mut Fleet,
        snap: &Snapshot,
        lease: i64,
        cancel: &CancellationToken,
    ) -> Result<(), EtcdError> {
        let Some((active, _)) = &snap.active else {
            return Ok(());
        };
        let Some(to) = region::find(&self.config.regions, &active.region) else {
            if fleet.unknown.as_deref() != Some(active.region.as_str()) {
                error!(
                    event = "fleet_region_unknown",
                    region = %active.region,
                    "The fleet's active region {} is not in this host's failover list: staying",
                    active.region
                );
                fleet.unknown = Some(active.region.clone());
            }
            return Ok(());
        };
        let host = fleet.settings.host.clone();
        // A slot this host no longer needs is given back: one of an older epoch (the fleet
        // moved on while this host waited), one left by a release that failed, or one queued
        // for a restart in place that is no longer due (the tunnel answers again).
        let done = to == self.policy.active();
        let in_place = fleet.in_place.filter(|_| done && self.policy.tunnel_down());
        for slot in snap.slots.iter().filter(|s| s.host == host) {
            let wanted = if done {
                in_place == Some(slot.epoch)
            } else {
                slot.epoch == active.epoch
            };
            if !wanted {
                fleet.store.release_slot(slot.epoch, &host).await?;
            }
        }
        fleet.in_place = in_place;
        if done {
            fleet.arrived(active.epoch, Instant::now());
            return Ok(());
        }
        if !take_slot(fleet, snap, active.epoch, lease).await? {
            return Ok(());
        }
        let reason = if active.reason == "manual" {
            SwitchReason::Manual
        } else {
            SwitchReason::Outage
        };
        self.apply(to, reason, cancel).await;
        if self.policy.active() == to {
            fleet.arrived(active.epoch, Instant::now());
        }
        fleet.store.release_slot(active.epoch, &host).await
    }

    /// Whether this host may restart its programs in place now: every restart a fleet host
    /// makes holds one of the fleet's slots. It waits in line while the store answers; it
    /// acts alone only when the store is lost (or there is no fleet).
    pub(in crate::daemon) async fn fleet_permit(&mut self) -> Permit {
        let Some(mut fleet) = self.fleet.take() else {
            return Permit::Alone;
        };
        let permit = if fleet.lost.is_some() {
            Permit::Alone
        } else {
            let first = fleet.in_place.is_none();
            match in_place_slot(&mut fleet).await {
                Ok(Some(epoch)) => Permit::Held(epoch),
                Ok(None) => {
                    if first {
                        info!(
                            event = "restart_queued",
                            max_concurrent_restarts = fleet.settings.max_concurrent_restarts,
                            "Waiting in line for one of the fleet's {} restart slot(s) before \
                             restarting the programs in place",
                            fleet.settings.max_concurrent_restarts
                        );
                    }
                    Permit::Wait
                }
                // The store did not answer: the next round with it says whether it is lost.
                Err(_) => Permit::Wait,
            }
        };
        self.fleet = Some(fleet);
        permit
    }

    /// Gives back the slot a restart held.
    pub(in crate::daemon) async fn fleet_release(&mut self, permit: Permit) {
        let (Permit::Held(epoch), Some(fleet)) = (permit, self.fleet.as_mut()) else {
            return;
        };
        fleet.in_place = None;
        // A release that fails is made at the next round (or the lease takes the slot).
        let _ = fleet.store.release_slot(epoch, &fleet.settings.host).await;
    }
}

/// Whether this host may restart, as far as the fleet's restart slots go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// No fleet, or its store is lost: the host acts alone.
    Alone,
    /// The host holds the slot of this epoch: it gives it back after the restart.
    Held(u64),
    /// The host is in line: it asks again at its next probe.
    Wait,
}

/// Takes this host's place in the fleet's one line of restarts (`restarts/<epoch>/<host>`):
/// whether it holds a slot now.
async fn take_slot(
    fleet: &Fleet,
    snap: &Snapshot,
    epoch: u64,
    lease: i64,
) -> Result<bool, EtcdError> {
    let host = &fleet.settings.host;
    let max = fleet.settings.max_concurrent_restarts as usize;
    let queued = snap
        .slots
        .iter()
        .any(|s| s.epoch == epoch && s.host == *host);
    let holders = if queued {
        snap.holders(max)
    } else {
        fleet.store.queue_for_slot(epoch, host, lease).await?;
        fleet.store.snapshot().await?.holders(max)
    };
    Ok(holders.contains(host))
}

/// Queues this host for a restart in place on the fleet's current epoch: the epoch of the
/// slot it holds, if it holds one now.
async fn in_place_slot(fleet: &mut Fleet) -> Result<Option<u64>, EtcdError> {
    let lease = fleet.lease().await?;
    let snap = fleet.store.snapshot().await?;
    let epoch = snap.active.as_ref().map_or(0, |(a, _)| a.epoch);
    fleet.in_place = Some(epoch);
    Ok(take_slot(fleet, &snap, epoch, lease)
        .await?
        .then_some(epoch))
}
