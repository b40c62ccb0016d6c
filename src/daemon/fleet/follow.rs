//! Following the fleet: a host moves to the fleet's `active` region within a restart slot,
//! and adopts the epoch it executes (its outage votes count from its arrival).

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::error;

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
        // A slot of an older epoch (the fleet moved on while this host waited), or one left
        // by a release that failed, is given back.
        let done = to == self.policy.active();
        for slot in snap.slots.iter().filter(|s| s.host == host) {
            if slot.epoch != active.epoch || done {
                fleet.store.release_slot(slot.epoch, &host).await?;
            }
        }
        if done {
            fleet.arrived(active.epoch, Instant::now());
            return Ok(());
        }
        let max = fleet.settings.max_concurrent_restarts as usize;
        let mut holders = snap.holders(active.epoch, max);
        if !snap
            .slots
            .iter()
            .any(|s| s.epoch == active.epoch && s.host == host)
        {
            fleet
                .store
                .queue_for_slot(active.epoch, &host, lease)
                .await?;
            holders = fleet.store.snapshot().await?.holders(active.epoch, max);
        }
        if !holders.contains(&host) {
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
}
