//! Fleet mode: the hosts of a fleet keep one region through etcd. The protocol is the
//! kernel's (`kernel::protocol::Member`): each tick, the daemon renews its lease and claims
//! its host name, reads the fleet's keys, hands them to the member with the host's state,
//! and performs what it answers (`perform`): views, campaigns, the leader's decisions, slots
//! and restarts. Every restart a fleet host makes holds a slot, and is checked against the
//! lease before each program it stops or starts (`Gate`). While the store is lost, the host
//! keeps its region (or, with `on_store_loss = "local"`, follows its own policy). The
//! daemon's own failover decisions are withheld while the store answers.

mod claim;
mod follow;
mod perform;
mod view;

pub use crate::kernel::protocol::Permit;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::adapters::etcd::fleet_store::Store;
use crate::adapters::etcd::{Etcd, EtcdError};
use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::config::fleet::{FleetSettings, StoreLoss};
use crate::config::{Config, ConfigError};
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::kernel::protocol::{self, Member, Snapshot};
use crate::kernel::quorum::Rule;
use crate::report::event::Event;

/// The state dir's file of the last epoch this host executed, and its region.
const EPOCH_FILE: &str = "fleet-epoch";

/// The longest time between two reads of the fleet's keys.
const FLEET_POLL: Duration = Duration::from_millis(500);

/// A host's membership of the fleet.
pub struct Fleet {
    settings: FleetSettings,
    store: Arc<Store>,
    /// The lease that binds the view, the leadership and the slot; renewed beside the loop.
    lease: Option<Lease>,
    /// The protocol's state.
    member: Member,
    /// A failover of this host's own rules was withheld (it is announced if made alone).
    withheld: bool,
    /// `restart_queued` was said for the restart in place waiting now.
    queue_said: bool,
    /// The epoch last written to the state dir (`None`: not read from it yet).
    kept: Option<u64>,
    /// This process's random id, in `hosts/<host>`.
    instance: String,
    /// The lease on which this process holds its host name.
    claimed: Option<i64>,
}

struct Lease {
    id: i64,
    /// Set by the keep-alive task when the store no longer knows the lease.
    gone: Arc<AtomicBool>,
    /// When the last successful keep-alive (or the grant) was sent.
    renewed: Arc<Mutex<Instant>>,
    task: JoinHandle<()>,
}

/// What a restart holding a slot asks before each program: whether the lease still holds.
pub struct Gate {
    renewed: Arc<Mutex<Instant>>,
    ttl: Duration,
}

impl Gate {
    pub fn holds(&self) -> bool {
        self.renewed
            .lock()
            .is_ok_and(|at| protocol::lease_holds(*at, self.ttl, clock::now()))
    }
}

impl Fleet {
    pub fn new(settings: &FleetSettings, config: &Config) -> Result<Fleet, ConfigError> {
        let etcd = Etcd::new(settings)?;
        let rule = Rule {
            quorum: settings.quorum,
            min_voters: settings.min_voters as usize,
            max_moves_per_hour: config.failover.max_switches_per_hour,
            hold_down: config.failover.threshold,
        };
        let member = Member::new(
            protocol::Settings {
                host: settings.host.clone(),
                rule,
                max_restarts: settings.max_concurrent_restarts as usize,
                lease_ttl: settings.lease_ttl,
                local_on_loss: settings.on_store_loss == StoreLoss::Local,
            },
            config.regions.clone(),
        );
        Ok(Fleet {
            store: Arc::new(Store::new(etcd, settings.prefix())),
            settings: settings.clone(),
            lease: None,
            member,
            withheld: false,
            queue_said: false,
            kept: None,
            instance: claim::new_instance(),
            claimed: None,
        })
    }

    /// Forgets the lease (the store no longer knows it): the next round is granted another,
    /// and writes the view and claims the host name on it.
    fn drop_lease(&mut self) {
        if let Some(l) = self.lease.take() {
            l.task.abort();
        }
        self.member.lease_lost();
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
        let sent = clock::now();
        let id = self.store.etcd().grant(self.settings.lease_ttl).await?;
        let gone = Arc::new(AtomicBool::new(false));
        let renewed = Arc::new(Mutex::new(sent));
        let task = tokio::spawn(keep_alive(
            self.store.clone(),
            id,
            self.settings.lease_ttl / 3,
            gone.clone(),
            renewed.clone(),
        ));
        self.lease = Some(Lease {
            id,
            gone,
            renewed,
            task,
        });
        Ok(id)
    }

    /// The gate of a restart that holds a slot on the current lease.
    fn gate(&self) -> Option<Gate> {
        self.lease.as_ref().map(|l| Gate {
            renewed: l.renewed.clone(),
            ttl: self.settings.lease_ttl,
        })
    }

    /// One read of the fleet's keys, as the protocol takes it.
    async fn read(&self) -> Result<Snapshot, EtcdError> {
        self.store.snapshot().await
    }
}

/// Renews `lease` every `every` until the store no longer knows it; each renewal records
/// when it was sent.
async fn keep_alive(
    store: Arc<Store>,
    lease: i64,
    every: Duration,
    gone: Arc<AtomicBool>,
    renewed: Arc<Mutex<Instant>>,
) {
    loop {
        tokio::time::sleep(every).await;
        let sent = clock::now();
        match store.etcd().keep_alive(lease).await {
            Ok(false) => {
                gone.store(true, Ordering::Relaxed);
                return;
            }
            Ok(true) => {
                if let Ok(mut at) = renewed.lock() {
                    *at = sent;
                }
            }
            Err(_) => {}
        }
    }
}

/// The wall clock in Unix seconds: the fleet's moves are shared by hosts, so they are dated
/// in the time every host reads alike.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Joins the fleet of `[fleet]`.
    pub fn with_fleet(mut self, fleet: Option<Fleet>) -> Self {
        self.fleet = fleet;
        self
    }

    /// How often a host reads the fleet's keys: every probe interval, and at least twice a
    /// second, so that a decision reaches every host within a second or so of being made.
    pub(super) fn fleet_poll(&self) -> Duration {
        self.config.probe.interval.min(FLEET_POLL)
    }

    /// Whether the last probe changed this host's view: it is published at once.
    pub(super) fn fleet_view_changed(&self) -> bool {
        self.fleet.as_ref().is_some_and(|f| f.member.view_changed())
    }

    /// One round with the store: lease, name, a read, the member's answer performed.
    pub(super) async fn fleet_tick(&mut self, cancel: &CancellationToken) {
        let Some(mut fleet) = self.fleet.take() else {
            return;
        };
        self.keep_epoch(&mut fleet);
        let result = self.fleet_round(&mut fleet, cancel).await;
        let region = self.active().name.clone();
        match result {
            // The store's return is told by the round that read it (`Effect::StoreBack`),
            // before any restart the round goes on to make.
            Ok(()) => {}
            // The store answered: only the lease is gone (this host was stopped or cut off
            // past it). Granted anew at the next round; no loss.
            Err(EtcdError::LeaseNotFound(_)) => fleet.drop_lease(),
            Err(e) => {
                if fleet.member.store_failed(clock::now()) {
                    self.obs.emit(Event::FleetStoreLost {
                        region,
                        error: e.to_string(),
                        local: fleet.settings.on_store_loss == StoreLoss::Local,
                    });
                }
            }
        }
        // A restart owed while the store is lost is made alone, once no other host may be
        // restarting.
        if let Some(owed) = fleet.member.owed_alone(clock::now()) {
            self.owed_restart(&mut fleet, owed, None, cancel).await;
        }
        self.fleet = Some(fleet);
    }

    /// Keeps the last epoch this host executed, and its region, in the state dir
    /// (`fleet-epoch`): a handler started again tells a wiped store the fleet's latest
    /// decision. Read once at the first round, and taken only while the host is still on
    /// that region.
    fn keep_epoch(&mut self, fleet: &mut Fleet) {
        let region = self.active().name.clone();
        let Some(kept) = fleet.kept else {
            let text = self.state.read(EPOCH_FILE).unwrap_or_default();
            let mut words = text.split_whitespace();
            let epoch = words
                .next()
                .and_then(|e| e.parse::<u64>().ok())
                .unwrap_or(0);
            if words
                .next()
                .is_some_and(|r| r.eq_ignore_ascii_case(&region))
            {
                fleet.member.remember(epoch, clock::now());
            }
            fleet.kept = Some(fleet.member.epoch().0);
            return;
        };
        let epoch = fleet.member.epoch().0;
        if epoch != kept && !self.config.dry_run {
            // A state dir that cannot be written loses only this memory.
            let _ = self
                .state
                .write(EPOCH_FILE, format!("{epoch} {region}\n").as_bytes());
            fleet.kept = Some(epoch);
        }
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
        let snap = fleet.read().await?;
        let effects = fleet
            .member
            .round(&snap, self.here(), lease, clock::now(), unix_now());
        if self.perform(fleet, effects, lease, cancel).await? {
            // Queued for a slot: read again, and restart at once if it is held.
            let snap = fleet.read().await?;
            let effects = fleet.member.follow(&snap, self.here(), clock::now());
            self.perform(fleet, effects, lease, cancel).await?;
        }
        Ok(())
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
