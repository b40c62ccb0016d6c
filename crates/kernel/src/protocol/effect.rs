//! What a member answers: the store operations, restarts and tellings the host performs, in
//! order, and the reasons they carry.

use std::time::Duration;

use crate::protocol::Active;
use crate::quorum::View;

/// Why a host moves to the fleet's region, from `active`'s reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The fleet's first region, or a re-seed: no outage, no switch by hand.
    Start,
    Outage,
    Manual,
}

impl Why {
    pub fn of(reason: &str) -> Why {
        match reason {
            "outage" => Why::Outage,
            "manual" => Why::Manual,
            _ => Why::Start,
        }
    }
}

/// A restart this host owes outside a move: it makes it within a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// A restart interrupted by a crash, resumed at start.
    Resumed,
    /// A restart stopped when the lease lapsed, made again.
    Lapsed,
}

/// What the host does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Writes this view on the lease.
    Publish(View),
    /// Creates the leader key on the lease, if absent.
    Campaign,
    /// This host leads, from term `term` on (said once per term).
    Leads { term: i64 },
    /// Sets `active` if absent.
    Seed(Active),
    /// Moves `active`, fenced by the term and the revision `seen`.
    Move {
        term: i64,
        seen: i64,
        from: String,
        next: Active,
        outage: usize,
        voters: usize,
    },
    /// Sets `active` again at epoch `next.epoch`, fenced like a move: its epoch was below
    /// one a live host executes.
    Renumber { term: i64, seen: i64, next: Active },
    /// The outage is agreed, but flap damping holds the move (said once per epoch).
    Damped {
        from: String,
        to: String,
        epoch: u64,
        next_allowed_in: Duration,
        recent: usize,
    },
    /// The outage is agreed, but `pause --fleet` (`paused`: by whom and since when) holds
    /// the move (said once per epoch).
    MovePaused {
        from: String,
        to: String,
        epoch: u64,
        paused: String,
    },
    /// The fleet's pause changed: `Some` (by whom and since when) holds the fleet's
    /// automatic moves, `None` lifts it.
    Pause(Option<String>),
    /// The store answers again after it was lost: told first in the round that reads it.
    StoreBack,
    /// `active` names a region this host does not know (said once).
    Unknown(String),
    /// Queues for a slot of this epoch, on the lease.
    Queue(u64),
    /// Gives a slot back.
    Release(u64),
    /// Moves to region `to` (an index into the order) and restarts, holding the slot of
    /// `epoch`; then [`Member::restarted`].
    Follow { to: usize, why: Why, epoch: u64 },
    /// Makes the owed restart, holding the slot of `epoch`; then [`Member::restarted`].
    Restart { owed: Owed, epoch: u64 },
}
