//! Fleet mode: the hosts of a fleet keep one region through etcd. Each tick, a host renews
//! its place in the store, publishes its view when it changed, campaigns for leadership when
//! nobody leads, lets the leader move the fleet by the quorum rule (`kernel::quorum`), and
//! follows the fleet's `active` region, taking a restart slot to do so. While the store is
//! lost, the host keeps its region (or, with `on_store_loss = "local"`, follows its own
//! policy). The daemon's own failover decisions are withheld while the store answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::adapters::etcd::{Etcd, EtcdError};
use crate::adapters::fleet_store::{Active, Snapshot, Store};
use crate::adapters::probe::Probe;
use crate::adapters::restart::Restart;
use crate::config::ConfigError;
use crate::config::fleet::{FleetSettings, StoreLoss};
use crate::daemon::Daemon;
use crate::kernel::health::Verdict as Up;
use crate::kernel::policy::{Decision, Hold};
use crate::kernel::quorum::{Health, Rule, Verdict, View};
use crate::kernel::region;
use crate::kernel::standby::Subject;
use crate::report::event::{Event, SwitchReason};

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
    /// A region of `active` that is not in this host's list, said once.
    unknown: Option<String>,
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
            unknown: None,
        })
    }

    /// Whether the host's own failover decisions are withheld: always, unless the store is
    /// lost and `on_store_loss = "local"`.
    fn withholds(&self) -> bool {
        !(self.lost.is_some() && self.settings.on_store_loss == StoreLoss::Local)
    }

    /// A lease that is live, granted anew if needed.
    async fn lease(&mut self) -> Result<i64, EtcdError> {
        if let Some(l) = &self.lease {
            if !l.gone.load(Ordering::Relaxed) {
                return Ok(l.id);
            }
            l.task.abort();
            self.lease = None;
            self.written = None;
            self.term = None;
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

    /// After a probe: records this host's view of its region, and withholds the policy's
    /// own move while the fleet decides.
    pub(super) fn fleet_view(&mut self, now: Instant, decision: Decision) -> Decision {
        let Some(fleet) = self.fleet.as_ref() else {
            return decision;
        };
        let health = match self.policy.failing_since() {
            None => Health::Up,
            Some(s) if now.saturating_duration_since(s) >= self.config.failover.threshold => {
                Health::Outage
            }
            Some(_) => Health::Failing,
        };
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
            health,
            blames_self,
            standbys,
        };
        let withhold = fleet.withholds();
        if let Some(fleet) = self.fleet.as_mut() {
            fleet.view = Some(view);
        }
        match decision {
            Decision::Failover { failed_for, .. } if withhold => Decision::Failing {
                failing_for: failed_for,
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
                if fleet.lost.take().is_some() {
                    self.obs.emit(Event::FleetStoreBack { region });
                }
            }
            Err(e) => {
                if fleet.lost.is_none() {
                    self.obs.emit(Event::FleetStoreLost {
                        region,
                        error: e.to_string(),
                        local: fleet.settings.on_store_loss == StoreLoss::Local,
                    });
                }
                fleet.lost = Some(e.to_string());
                fleet.term = None;
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
        let mut snap = fleet.store.snapshot().await?;
        // The view: written when it changed, or when the store lost it (an expired lease).
        let view = fleet.view.clone().unwrap_or_else(|| View {
            region: self.active().name.clone(),
            health: Health::Up,
            blames_self: false,
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

    /// Campaigns when nobody leads; the leader sets the first `active` and moves the fleet.
    async fn lead(
        &mut self,
        fleet: &mut Fleet,
        snap: &Snapshot,
        lease: i64,
    ) -> Result<(), EtcdError> {
        let host = fleet.settings.host.clone();
        let term = match &snap.leader {
            None => {
                // The next round reads the term of a won campaign.
                fleet.store.campaign(&host, lease).await?;
                return Ok(());
            }
            Some(l) if l.host == host && l.lease == lease => l.term,
            Some(_) => {
                fleet.term = None;
                return Ok(());
            }
        };
        if fleet.term != Some(term) {
            fleet.term = Some(term);
            self.obs.emit(Event::FleetLeader {
                host: host.clone(),
                fleet: fleet.settings.name.clone(),
            });
        }
        let Some((active, seen)) = &snap.active else {
            let first = Active {
                region: self.active().name.clone(),
                epoch: 1,
                reason: "start".to_string(),
                by: host,
            };
            fleet.store.init_active(&first).await?;
            return Ok(());
        };
        let Some(at) = region::find(&self.config.regions, &active.region) else {
            return Ok(());
        };
        let rule = Rule {
            quorum: fleet.settings.quorum,
            min_voters: fleet.settings.min_voters as usize,
        };
        let views: Vec<View> = snap.views.iter().map(|(_, v)| v.clone()).collect();
        let verdict = rule.decide(&self.config.regions, at, &views, snap.paused.is_some());
        if let Verdict::Move { to, outage, voters } = verdict {
            let next = Active {
                region: self.region(to).name.clone(),
                epoch: active.epoch + 1,
                reason: "outage".to_string(),
                by: host,
            };
            if fleet.store.move_active(term, *seen, &next).await? {
                self.obs.emit(Event::FleetMoved {
                    from: active.region.clone(),
                    to: next.region,
                    epoch: next.epoch,
                    outage,
                    voters,
                });
            }
        }
        Ok(())
    }

    /// Moves this host to the fleet's `active` region, within a restart slot.
    async fn follow(
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
        fleet.store.release_slot(active.epoch, &host).await
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
