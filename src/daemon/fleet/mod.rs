//! Fleet mode: the hosts of a fleet keep one region through etcd. Each tick, a host renews
//! its place in the store, publishes its view when it changed, campaigns for leadership when
//! nobody leads, lets the leader move the fleet by the quorum rule (`kernel::quorum`, in
//! `lead`), and follows the fleet's `active` region, taking a restart slot to do so
//! (`follow`). While the store is lost, the host keeps its region (or, with
//! `on_store_loss = "local"`, follows its own policy). The daemon's own failover decisions
//! are withheld while the store answers.

mod claim;
mod follow;
mod lead;

pub use follow::Permit;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::adapters::etcd::{Etcd, EtcdError};
use crate::adapters::fleet_store::Store;
use crate::adapters::probe::{Probe, is_loopback};
use crate::adapters::restart::Restart;
use crate::config::ConfigError;
use crate::config::TLS_NAME_CLOUD as CLOUD;
use crate::config::fleet::{FleetSettings, StoreLoss};
use crate::daemon::Daemon;
use crate::kernel::health::Verdict as Up;
use crate::kernel::policy::{Decision, Hold};
use crate::kernel::quorum::{Health, View};
use crate::kernel::standby::Subject;
use crate::report::event::Event;

/// The longest time between two reads of the fleet's keys.
const FLEET_POLL: Duration = Duration::from_millis(500);

/// A host's membership of the fleet.
pub struct Fleet {
    settings: FleetSettings,
    store: Arc<Store>,
    /// The lease that binds the view, the leadership and the slot; renewed beside the loop.
    lease: Option<Lease>,
    /// The view as last written to the store (`None`: write it at the next chance).
    written: Option<View>,
    /// The view as the last probe left it.
    view: Option<View>,
    /// The leadership term this host holds, if it leads.
    term: Option<i64>,
    /// The store's failure being reported, if it is lost.
    lost: Option<String>,
    /// Since when the store has not answered (it is called lost after two leases of it).
    silent_since: Option<Instant>,
    /// A failover of this host's own rules was withheld (it is announced if made alone).
    withheld: bool,
    /// A region of `active` that is not in this host's list, said once.
    unknown: Option<String>,
    /// The fleet's epoch this host executes, and when it arrived on that epoch's region:
    /// its outage votes count from then.
    epoch: Option<(u64, Instant)>,
    /// The epoch whose move flap damping holds, said once.
    damped: Option<u64>,
    /// The epoch of the slot this host queued for to restart in place.
    in_place: Option<u64>,
    /// This process's random id, in `hosts/<host>`.
    instance: String,
    /// The lease on which this process holds its host name.
    claimed: Option<i64>,
}

struct Lease {
    id: i64,
    /// Set by the keep-alive task when the store no longer knows the lease.
    gone: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Fleet {
    pub fn new(settings: &FleetSettings) -> Result<Fleet, ConfigError> {
        let etcd = Etcd::new(settings)?;
        Ok(Fleet {
            store: Arc::new(Store::new(etcd, settings.prefix())),
            settings: settings.clone(),
            lease: None,
            written: None,
            view: None,
            term: None,
            lost: None,
            silent_since: None,
            withheld: false,
            unknown: None,
            epoch: None,
            damped: None,
            in_place: None,
            instance: claim::new_instance(),
            claimed: None,
        })
    }

    /// This host is on the region of `epoch` (it moved there, or was there already).
    fn arrived(&mut self, epoch: u64, now: Instant) {
        if self.epoch.map(|(e, _)| e) != Some(epoch) {
            self.epoch = Some((epoch, now));
        }
    }

    /// Whether the host's own failover decisions are withheld: always, unless the store is
    /// lost and `on_store_loss = "local"`.
    fn withholds(&self) -> bool {
        !(self.lost.is_some() && self.settings.on_store_loss == StoreLoss::Local)
    }

    /// Forgets the lease (the store no longer knows it): the next round is granted another,
    /// and writes the view and claims the host name on it.
    fn drop_lease(&mut self) {
        if let Some(l) = self.lease.take() {
            l.task.abort();
        }
        self.written = None;
        self.term = None;
        self.claimed = None;
    }

    /// A lease that is live, granted anew if needed.
    async fn lease(&mut self) -> Result<i64, EtcdError> {
        if self
            .lease
            .as_ref()
            .is_some_and(|l| l.gone.load(Ordering::Relaxed))
        {
            self.drop_lease();
        }
        if let Some(l) = &self.lease {
            return Ok(l.id);
        }
        let id = self.store.etcd().grant(self.settings.lease_ttl).await?;
        let gone = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(keep_alive(
            self.store.clone(),
            id,
            self.settings.lease_ttl / 3,
            gone.clone(),
        ));
        self.lease = Some(Lease { id, gone, task });
        Ok(id)
    }
}

/// Renews `lease` every `every` until the store no longer knows it.
async fn keep_alive(store: Arc<Store>, lease: i64, every: Duration, gone: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(every).await;
        if let Ok(false) = store.etcd().keep_alive(lease).await {
            gone.store(true, Ordering::Relaxed);
            return;
        }
    }
}

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Joins the fleet of `[fleet]`.
    pub fn with_fleet(mut self, fleet: Option<Fleet>) -> Self {
        self.fleet = fleet;
        self
    }

    /// Whether the probe of the active region is local: a loopback URL whose TLS name does
    /// not follow the region's cloud (a TLS failure there is the tunnel's setup).
    pub(super) fn probe_is_local(&self) -> bool {
        let probe = &self.config.probe;
        is_loopback(&probe.url)
            && !probe
                .tls_server_name
                .as_deref()
                .is_some_and(|n| n.contains(CLOUD))
    }

    /// After a probe: records this host's view of its region, and withholds the policy's
    /// own move while the fleet decides. `local` says the probe's failure is this host's own
    /// (`ErrorKind::is_local_fault`): the host then abstains.
    pub(super) fn fleet_view(&mut self, now: Instant, decision: Decision, local: bool) -> Decision {
        let Some(fleet) = self.fleet.as_ref() else {
            return decision;
        };
        let failing_since = self.policy.failing_since();
        let health = Health::at(
            now,
            failing_since,
            fleet.epoch.map(|(_, at)| at),
            self.config.failover.threshold,
        );
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
            epoch: fleet.epoch.map_or(0, |(e, _)| e),
            health,
            blames_self,
            local_fault,
            standbys,
        };
        let withhold = fleet.withholds();
        let Some(fleet) = self.fleet.as_mut() else {
            return decision;
        };
        fleet.view = Some(view);
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

    /// How often a host reads the fleet's keys: every probe interval, and at least twice a
    /// second, so that a decision reaches every host within a second or so of being made.
    pub(super) fn fleet_poll(&self) -> Duration {
        self.config.probe.interval.min(FLEET_POLL)
    }

    /// Whether the last probe changed this host's view: it is published at once.
    pub(super) fn fleet_view_changed(&self) -> bool {
        self.fleet
            .as_ref()
            .is_some_and(|f| f.lost.is_none() && f.view != f.written)
    }

    /// One round with the store: lease, view, leadership, the leader's decision, following.
    pub(super) async fn fleet_tick(&mut self, cancel: &CancellationToken) {
        let Some(mut fleet) = self.fleet.take() else {
            return;
        };
        let result = self.fleet_round(&mut fleet, cancel).await;
        let region = self.active().name.clone();
        match result {
            Ok(()) => {
                fleet.silent_since = None;
                if fleet.lost.take().is_some() {
                    self.obs.emit(Event::FleetStoreBack { region });
                }
            }
            // The store answered: only the lease is gone (this host was stopped or cut off
            // past it). Granted anew at the next round; no loss.
            Err(EtcdError::LeaseNotFound(_)) => {
                fleet.silent_since = None;
                fleet.drop_lease();
            }
            Err(e) => {
                fleet.term = None;
                let now = Instant::now();
                let since = *fleet.silent_since.get_or_insert(now);
                let silent = now.saturating_duration_since(since);
                if fleet.lost.is_none() && silent >= fleet.settings.store_loss_after() {
                    self.obs.emit(Event::FleetStoreLost {
                        region,
                        error: e.to_string(),
                        local: fleet.settings.on_store_loss == StoreLoss::Local,
                    });
                    fleet.lost = Some(e.to_string());
                } else if fleet.lost.is_some() {
                    fleet.lost = Some(e.to_string());
                }
            }
        }
        self.fleet = Some(fleet);
    }

    async fn fleet_round(
        &mut self,
        fleet: &mut Fleet,
        cancel: &CancellationToken,
    ) -> Result<(), EtcdError> {
        let lease = fleet.lease().await?;
        let host = fleet.settings.host.clone();
        if let Some(other) = fleet.claim().await? {
            // Another live process took this name (while the store was away): this host
            // acts as if the store were lost rather than share a view and a slot with it.
            return Err(EtcdError::Protocol(format!(
                "the host name {host} is taken by another running handler ({other})"
            )));
        }
        let mut snap = fleet.store.snapshot().await?;
        // The view: written when it changed, or when the store lost it (an expired lease).
        let view = fleet.view.clone().unwrap_or_else(|| View {
            region: self.active().name.clone(),
            epoch: 0,
            health: Health::Up,
            blames_self: false,
            local_fault: false,
            standbys: Vec::new(),
        });
        let stored = snap.views.iter().find(|(h, _)| *h == host).map(|(_, v)| v);
        if fleet.written.as_ref() != Some(&view) || stored != Some(&view) {
            fleet.store.publish_view(&host, &view, lease).await?;
            fleet.written = Some(view.clone());
            snap.views.retain(|(h, _)| *h != host);
            snap.views.push((host.clone(), view));
        }
        self.lead(fleet, &snap, lease).await?;
        self.follow(fleet, &snap, lease, cancel).await
    }

    /// A clean stop: the lease goes, and with it this host's view, slot and leadership.
    pub(super) async fn fleet_leave(&mut self) {
        if let Some(fleet) = self.fleet.as_mut()
            && let Some(lease) = fleet.lease.take()
        {
            lease.task.abort();
            let _ = fleet.store.etcd().revoke(lease.id).await;
        }
    }
}
