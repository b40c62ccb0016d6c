//! Following the fleet: a host moves to the fleet's `active` region within a restart slot,
//! and adopts the epoch it executes (its outage votes count from its arrival). Every other
//! restart it makes (in place, resumed, owed) takes a slot of the same line.

use std::time::Instant;

use crate::protocol::{Effect, Here, Member, Owed, Slot, Snapshot, Why};
use crate::region;

/// Whether the host may restart, as far as the fleet's restart slots go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// No fleet, or its store is lost: the host acts alone.
    Alone,
    /// The host holds the slot of this epoch: it gives it back after the restart.
    Held(u64),
    /// The host is in line, or must not act yet: it asks again later.
    Wait,
}

/// Where the host stands in the line for a slot of one epoch.
enum Place {
    /// Not in line: queue.
    Out,
    /// In line, behind the holders.
    Waiting,
    /// Holds a slot.
    Holds,
}

impl Member {
    /// Where this host stands in line for a slot of `epoch`: its own places for other
    /// epochs are no restart of its (they are given back), so only its place for `epoch`
    /// counts, behind every other host's.
    fn place(&self, snap: &Snapshot, epoch: u64, now: Instant) -> Place {
        let host = self.settings.host.as_str();
        let mine = |s: &&Slot| s.host == host;
        if !snap.slots.iter().any(|s| mine(&s) && s.epoch == epoch) {
            return Place::Out;
        }
        let mut line: Vec<&Slot> = snap
            .slots
            .iter()
            .filter(|s| !mine(s) || s.epoch == epoch)
            .collect();
        line.sort_by_key(|s| s.order);
        let holds = line.iter().take(self.settings.max_restarts).any(mine);
        if holds && self.slots_settled(now) {
            Place::Holds
        } else {
            Place::Waiting
        }
    }

    /// Moves this host to the fleet's `active` region within a slot, and makes an owed
    /// restart within one once there; gives back the slots it no longer needs.
    pub fn follow(&mut self, snap: &Snapshot, here: Here, now: Instant) -> Vec<Effect> {
        let Some((active, _)) = &snap.active else {
            return Vec::new();
        };
        let Some(to) = region::find(&self.regions, &active.region) else {
            if self.unknown.as_deref() == Some(active.region.as_str()) {
                return Vec::new();
            }
            self.unknown = Some(active.region.clone());
            return vec![Effect::Unknown(active.region.clone())];
        };
        let mut effects = Vec::new();
        let host = self.settings.host.clone();
        // An epoch below the one this host executes, or the same number on another region,
        // is a decision made on a wiped store: the leader renumbers it first.
        let mine = self.epoch().0;
        if active.epoch < mine || (active.epoch == mine && to != here.at) {
            return effects;
        }
        // A slot this host no longer needs is given back: one of an older epoch (the fleet
        // moved on while this host waited), one left by a release that failed, or one queued
        // for a restart in place that is no longer due (the tunnel answers again).
        let done = to == here.at;
        let in_place = self.in_place.filter(|_| done && here.tunnel_down);
        let owed = self.owed.filter(|_| done);
        for slot in snap.slots.iter().filter(|s| s.host == host) {
            let wanted = if done {
                in_place == Some(slot.epoch) || (owed.is_some() && slot.epoch == active.epoch)
            } else {
                slot.epoch == active.epoch
            };
            if !wanted {
                effects.push(Effect::Release(slot.epoch));
            }
        }
        self.in_place = in_place;
        if done {
            self.arrived(active.epoch, now);
            if let Some(owed) = owed {
                match self.place(snap, active.epoch, now) {
                    Place::Out => effects.push(Effect::Queue(active.epoch)),
                    Place::Waiting => {}
                    Place::Holds => effects.push(Effect::Restart {
                        owed,
                        epoch: active.epoch,
                    }),
                }
            }
            return effects;
        }
        match self.place(snap, active.epoch, now) {
            Place::Out => effects.push(Effect::Queue(active.epoch)),
            Place::Waiting => {}
            Place::Holds => {
                self.following = Some((active.epoch, to));
                effects.push(Effect::Follow {
                    to,
                    why: Why::of(&active.reason),
                    epoch: active.epoch,
                });
            }
        }
        effects
    }

    /// A restart of [`Effect::Follow`] or [`Effect::Restart`] for `epoch` ended, leaving
    /// the host on `here.at`; `lapsed`: it stopped when the lease lapsed, and is owed. A
    /// host that reached the region it followed executes the epoch; the slot is given back.
    pub fn restarted(&mut self, epoch: u64, here: Here, lapsed: bool, now: Instant) -> Vec<Effect> {
        if self.following.take() == Some((epoch, here.at)) {
            self.arrived(epoch, now);
        }
        self.owed = lapsed.then_some(Owed::Lapsed);
        vec![Effect::Release(epoch)]
    }

    /// Whether this host may restart its programs in place now: it queues for a slot on
    /// the fleet's current epoch while the store answers (`snap`), and acts alone only when
    /// the store is lost and no other host may be restarting.
    pub fn in_place(&mut self, snap: Option<&Snapshot>, now: Instant) -> (Permit, Vec<Effect>) {
        let Some(snap) = snap.filter(|_| !self.lost) else {
            return (self.alone(now), Vec::new());
        };
        self.read(snap, now);
        // No restart before the fleet has an active region to restart on.
        let Some((active, _)) = &snap.active else {
            return (Permit::Wait, Vec::new());
        };
        let epoch = active.epoch;
        self.in_place = Some(epoch);
        match self.place(snap, epoch, now) {
            Place::Out => (Permit::Wait, vec![Effect::Queue(epoch)]),
            Place::Waiting => (Permit::Wait, Vec::new()),
            Place::Holds => (Permit::Held(epoch), Vec::new()),
        }
    }

    /// The restart in place holding `permit` ended: its slot is given back.
    pub fn in_place_done(&mut self, permit: Permit) -> Vec<Effect> {
        self.in_place = None;
        match permit {
            Permit::Held(epoch) => vec![Effect::Release(epoch)],
            _ => Vec::new(),
        }
    }

    /// The permit of a host acting alone (the store lost).
    fn alone(&self, now: Instant) -> Permit {
        if self.alone_may_restart(now) {
            Permit::Alone
        } else {
            Permit::Wait
        }
    }

    /// An owed restart the host makes alone now: the store is lost and no other host may
    /// still be restarting.
    pub fn owed_alone(&self, now: Instant) -> Option<Owed> {
        self.owed
            .filter(|_| self.lost && self.alone(now) == Permit::Alone)
    }
}
