//! The fleet's protocol as one host's state machine. A [`Member`] is handed what the host
//! learns (its own view, a read of the fleet's keys, whether the store answered, the end of a
//! restart) with the time, and answers with what to do: store operations and restarts, as
//! [`Effect`]s. The daemon performs them against etcd and supervisord; the simulator
//! (`sim`, in tests) performs them against a model of etcd. Nothing here does I/O or reads a
//! clock.
//!
//! The rules it holds, beside the quorum rule (`kernel::quorum`):
//! - Every restart a fleet host makes (a move, in place, resumed after a crash, owed after a
//!   lease lapsed) holds one of the fleet's restart slots; a holder acts only while its lease
//!   holds ([`lease_holds`]), checked before each program it stops or starts.
//! - A host that acts alone (the store lost, `on_store_loss = "local"`) restarts nothing
//!   until a full lease has passed since it last saw another host hold a slot.
//! - An empty `active` is seeded with the latest decision a live host remembers (`lead`).
//! - The store is lost only after two leases of silence, and back as soon as a read answers
//!   (told before anything the round goes on to do, a restart included).
//! - The fleet's pause is told by every host when it changes; a move it holds, by the
//!   leader once per epoch.

mod effect;
mod follow;
mod lead;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use effect::{Effect, Owed, Why};
pub use follow::Permit;
pub use lead::seed;

use std::time::{Duration, Instant};

use crate::quorum::{Rule, View};
use crate::region::Region;

/// The fleet's active region, as `active` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub region: String,
    /// Counts the fleet's decisions; restart slots are per epoch.
    pub epoch: u64,
    /// Why it was set: `start`, `reseed`, `outage` or `manual`.
    pub reason: String,
    /// The host (or `switch --fleet`) that set it.
    pub by: String,
    /// When the fleet's automatic moves of the last hour were made (Unix seconds).
    pub moves: Vec<u64>,
}

/// The leader key: its host, its create revision (the term, a fencing token), its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub host: String,
    pub term: i64,
    pub lease: i64,
}

/// A place in the fleet's one line of restarts: the first `max_concurrent_restarts` by
/// `order` (create revision), of any epoch, hold a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub epoch: u64,
    pub host: String,
    pub order: i64,
}

/// One read of the fleet's keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub views: Vec<(String, View)>,
    pub leader: Option<Leader>,
    /// `active` and its mod revision (the compare of a fenced move).
    pub active: Option<(Active, i64)>,
    /// `pause --fleet`: by whom and since when, as the `pause` key says.
    pub paused: Option<String>,
    pub slots: Vec<Slot>,
}

impl Snapshot {
    /// The hosts that hold a slot now: the first `max` in line, whatever their epoch.
    pub fn holders(&self, max: usize) -> Vec<&str> {
        let mut line: Vec<&Slot> = self.slots.iter().collect();
        line.sort_by_key(|s| s.order);
        line.iter().take(max).map(|s| s.host.as_str()).collect()
    }
}

/// A member's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub rule: Rule,
    pub max_restarts: usize,
    pub lease_ttl: Duration,
    /// `on_store_loss = "local"`: the host follows its own rules while the store is lost.
    pub local_on_loss: bool,
}

impl Settings {
    /// How long the store must stay silent before it is lost: two leases.
    pub fn loss_after(&self) -> Duration {
        self.lease_ttl * 2
    }
}

/// Whether a lease last renewed at `renewed` (the moment its last successful keep-alive
/// was sent, or its grant) still holds at `now`, with a third of the TTL to spare: a holder
/// past it stops acting, since the store may already have given its slot to another host.
pub fn lease_holds(renewed: Instant, ttl: Duration, now: Instant) -> bool {
    now.saturating_duration_since(renewed) < ttl.saturating_sub(ttl / 3)
}

/// The host as the member needs it for a round: its region, and whether its own tunnel is
/// down (a restart in place is due).
#[derive(Debug, Clone, Copy)]
pub struct Here {
    pub at: usize,
    pub tunnel_down: bool,
}

/// One host's part of the protocol.
#[derive(Debug, Clone)]
pub struct Member {
    settings: Settings,
    regions: Vec<Region>,
    /// The view as last written to the store (`None`: write it at the next chance).
    written: Option<View>,
    /// The view as the last probe left it.
    view: Option<View>,
    /// The term this host leads, and since when it has seen no `active` while leading.
    term: Option<i64>,
    empty_since: Option<Instant>,
    /// The fleet's epoch this host executes, and when it arrived on its region.
    epoch: Option<(u64, Instant)>,
    damped: Option<u64>,
    /// The fleet's pause as last told, and the epoch whose move it held (told once).
    pause: Option<String>,
    paused_move: Option<u64>,
    unknown: Option<String>,
    /// The epoch of the slot queued for to restart in place.
    in_place: Option<u64>,
    owed: Option<Owed>,
    /// The epoch and region of the move under way.
    following: Option<(u64, usize)>,
    /// The last read in which another host held a slot.
    peer_held: Option<Instant>,
    /// Whether the last read had `active`, and when a read first had none after one that
    /// had it (the store was wiped: a holder of a slot it erased may still be restarting).
    saw_active: bool,
    wiped_at: Option<Instant>,
    /// Since when the store has not answered; whether it is lost.
    silent_since: Option<Instant>,
    lost: bool,
}

impl Member {
    /// A member of the fleet whose regions are `regions`, in order.
    pub fn new(settings: Settings, regions: Vec<Region>) -> Member {
        Member {
            settings,
            regions,
            written: None,
            view: None,
            term: None,
            empty_since: None,
            epoch: None,
            damped: None,
            pause: None,
            paused_move: None,
            unknown: None,
            in_place: None,
            owed: None,
            following: None,
            saw_active: false,
            wiped_at: None,
            peer_held: None,
            silent_since: None,
            lost: false,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The epoch this host executes (0: none yet), and when it arrived on its region.
    pub fn epoch(&self) -> (u64, Option<Instant>) {
        (
            self.epoch.map_or(0, |(e, _)| e),
            self.epoch.map(|(_, at)| at),
        )
    }

    /// Remembers the epoch executed before a restart of the handler (from the state dir):
    /// it is what this host tells a wiped store.
    pub fn remember(&mut self, epoch: u64, now: Instant) {
        if self.epoch.is_none() && epoch > 0 {
            self.epoch = Some((epoch, now));
        }
    }

    /// The host's view after a probe.
    pub fn set_view(&mut self, view: View) {
        self.view = Some(view);
    }

    /// Whether the last probe changed the view while the store answers: published at once.
    pub fn view_changed(&self) -> bool {
        !self.lost && self.view != self.written
    }

    /// Whether the store is lost.
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// Whether the host's own failover decisions are withheld: always, unless the store is
    /// lost and `on_store_loss = "local"`.
    pub fn withholds(&self) -> bool {
        !(self.lost && self.settings.local_on_loss)
    }

    /// Whether a host acting alone may restart now: not within a lease of the last read in
    /// which another host held a slot (that host may still be restarting).
    pub fn alone_may_restart(&self, now: Instant) -> bool {
        self.peer_held
            .is_none_or(|t| now.saturating_duration_since(t) >= self.settings.lease_ttl)
    }

    /// The store answered a read: true when it was lost until now.
    fn store_answered(&mut self) -> bool {
        self.silent_since = None;
        std::mem::take(&mut self.lost)
    }

    /// The store did not answer: true when it is lost from now on (two leases of silence).
    pub fn store_failed(&mut self, now: Instant) -> bool {
        self.term = None;
        let since = *self.silent_since.get_or_insert(now);
        let newly =
            !self.lost && now.saturating_duration_since(since) >= self.settings.loss_after();
        self.lost |= newly;
        newly
    }

    /// The store no longer knows the lease: the next round writes the view again and the
    /// host no longer leads. The store answered: no silence.
    pub fn lease_lost(&mut self) {
        self.silent_since = None;
        self.written = None;
        self.term = None;
    }

    /// A restart is owed (resumed after a crash, or stopped when the lease lapsed).
    pub fn owe(&mut self, owed: Owed) {
        self.owed = Some(owed);
    }

    pub fn owed(&self) -> Option<Owed> {
        self.owed
    }

    /// An owed restart made alone ended; `lapsed` never holds alone, but is kept owed.
    pub fn settle(&mut self, lapsed: bool) {
        self.owed = lapsed.then_some(Owed::Lapsed);
    }

    /// This host is on the region of `epoch` (it moved there, or was there already).
    fn arrived(&mut self, epoch: u64, now: Instant) {
        if self.epoch.map(|(e, _)| e) != Some(epoch) {
            self.epoch = Some((epoch, now));
        }
    }

    /// Notes a read of the store: a wipe, and another host holding a slot.
    fn read(&mut self, snap: &Snapshot, now: Instant) {
        let has = snap.active.is_some();
        if self.saw_active && !has {
            self.wiped_at = Some(now);
        }
        self.saw_active = has;
        if snap
            .holders(self.settings.max_restarts)
            .iter()
            .any(|h| *h != self.settings.host)
        {
            self.peer_held = Some(now);
        }
    }

    /// Whether a slot may be held now: not within a lease of seeing the store wiped (a
    /// holder of an erased slot acts until its own clock says its lease lapsed).
    fn slots_settled(&self, now: Instant) -> bool {
        self.wiped_at
            .is_none_or(|t| now.saturating_duration_since(t) >= self.settings.lease_ttl)
    }

    /// One round with a read of the store: the view, the leader's part, following.
    pub fn round(
        &mut self,
        snap: &Snapshot,
        here: Here,
        lease: i64,
        now: Instant,
        unix: u64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.store_answered() {
            effects.push(Effect::StoreBack);
        }
        if self.pause != snap.paused {
            self.pause = snap.paused.clone();
            if self.pause.is_none() {
                self.paused_move = None;
            }
            effects.push(Effect::Pause(snap.paused.clone()));
        }
        let host = self.settings.host.clone();
        let view = self.view.clone().unwrap_or_else(|| View {
            region: self
                .regions
                .get(here.at)
                .map_or(String::new(), |r| r.name.clone()),
            epoch: self.epoch().0,
            health: crate::quorum::Health::Up,
            blames_self: false,
            local_fault: false,
            standbys: Vec::new(),
        });
        self.read(snap, now);
        let stored = snap.views.iter().find(|(h, _)| *h == host).map(|(_, v)| v);
        let mut snap = snap.clone();
        if self.written.as_ref() != Some(&view) || stored != Some(&view) {
            effects.push(Effect::Publish(view.clone()));
            self.written = Some(view.clone());
            snap.views.retain(|(h, _)| *h != host);
            snap.views.push((host, view));
        }
        effects.extend(self.lead(&snap, lease, now, unix));
        effects.extend(self.follow(&snap, here, now));
        effects
    }
}
