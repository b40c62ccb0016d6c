//! The leader's part: it campaigns when nobody leads, seeds an absent `active` with the
//! latest decision a live host remembers, and moves the fleet by the quorum rule, damped
//! over the fleet's own moves.

use std::time::{Duration, Instant};

use crate::damping::WINDOW;
use crate::protocol::{Active, Effect, Member, Snapshot};
use crate::quorum::{self, Stay, Verdict, View};
use crate::region::{self, Region};

impl Member {
    pub(super) fn lead(
        &mut self,
        snap: &Snapshot,
        lease: i64,
        now: Instant,
        unix: u64,
    ) -> Vec<Effect> {
        let term = match self.term_held(snap, lease) {
            Ok(term) => term,
            Err(effects) => return effects,
        };
        let mut effects = Vec::new();
        if self.term != Some(term) {
            self.term = Some(term);
            self.empty_since = None;
            effects.push(Effect::Leads { term });
        }
        let Some((active, seen)) = &snap.active else {
            effects.extend(self.seed_empty(snap, now));
            return effects;
        };
        self.empty_since = None;
        if let Some(renumber) = renumbered(snap, active, term, *seen) {
            effects.push(renumber);
            return effects;
        }
        effects.extend(self.judge(snap, active, term, *seen, unix));
        effects
    }

    /// The term this host leads in, or what it does when it does not lead: campaign when
    /// nobody leads, nothing when another host does.
    fn term_held(&mut self, snap: &Snapshot, lease: i64) -> Result<i64, Vec<Effect>> {
        match &snap.leader {
            None => {
                self.term = None;
                Err(vec![Effect::Campaign])
            }
            Some(l) if l.host == self.settings.host && l.lease == lease => Ok(l.term),
            Some(_) => {
                self.term = None;
                Err(Vec::new())
            }
        }
    }

    /// An absent `active` (a wiped store): the hosts write their views again within a poll,
    /// so the leader waits a third of a lease for them before it seeds it.
    fn seed_empty(&mut self, snap: &Snapshot, now: Instant) -> Option<Effect> {
        let since = *self.empty_since.get_or_insert(now);
        if now.saturating_duration_since(since) < self.settings.lease_ttl / 3 {
            return None;
        }
        let views: Vec<&View> = snap.views.iter().map(|(_, v)| v).collect();
        seed(&self.regions, &views, &self.settings.host).map(Effect::Seed)
    }

    /// The quorum rule on the fleet's views of `active`'s region: a move, or a hold told
    /// once per epoch.
    fn judge(
        &mut self,
        snap: &Snapshot,
        active: &Active,
        term: i64,
        seen: i64,
        unix: u64,
    ) -> Option<Effect> {
        let at = region::find(&self.regions, &active.region)?;
        let moves_ago: Vec<Duration> = (active.moves.iter())
            .map(|&m| Duration::from_secs(unix.saturating_sub(m)))
            .collect();
        let views: Vec<View> = snap.views.iter().map(|(_, v)| v.clone()).collect();
        let verdict = self.settings.rule.decide(
            &self.regions,
            quorum::Fleet {
                active: at,
                epoch: active.epoch,
                views: &views,
                paused: snap.paused.is_some(),
                moves_ago: &moves_ago,
            },
        );
        match verdict {
            Verdict::Move { to, outage, voters } => Some(Effect::Move {
                term,
                seen,
                from: active.region.clone(),
                next: self.moved(active, to, unix),
                outage,
                voters,
            }),
            Verdict::Stay(Stay::Damped {
                to,
                next_allowed_in,
            }) if self.damped != Some(active.epoch) => {
                self.damped = Some(active.epoch);
                Some(Effect::Damped {
                    from: active.region.clone(),
                    to: self.regions[to].name.clone(),
                    epoch: active.epoch,
                    next_allowed_in,
                    recent: moves_ago.iter().filter(|a| **a < WINDOW).count(),
                })
            }
            Verdict::Stay(Stay::Paused { to }) if self.paused_move != Some(active.epoch) => {
                self.paused_move = Some(active.epoch);
                Some(Effect::MovePaused {
                    from: active.region.clone(),
                    to: self.regions[to].name.clone(),
                    epoch: active.epoch,
                    paused: snap.paused.clone().unwrap_or_default(),
                })
            }
            Verdict::Stay(_) => None,
        }
    }

    /// The `active` of a move to region `to`: the next epoch, by this host, with the fleet's
    /// moves within the damping window and this one.
    fn moved(&self, active: &Active, to: usize, unix: u64) -> Active {
        let mut moves: Vec<u64> = (active.moves.iter().copied())
            .filter(|&m| unix.saturating_sub(m) < WINDOW.as_secs())
            .collect();
        moves.push(unix);
        Active {
            region: self.regions[to].name.clone(),
            epoch: active.epoch + 1,
            reason: "outage".to_string(),
            by: self.settings.host.clone(),
            moves,
        }
    }
}

/// An `active` set on a wiped store below an epoch a live host executes (a switch by hand
/// before the hosts wrote their views again), or at one a host executes for another region:
/// renumbered above it, on the same region, so that no host takes one epoch number for two
/// decisions.
fn renumbered(snap: &Snapshot, active: &Active, term: i64, seen: i64) -> Option<Effect> {
    let top = snap.views.iter().map(|(_, v)| v.epoch).max().unwrap_or(0);
    let clash = (snap.views.iter())
        .any(|(_, v)| v.epoch == active.epoch && !v.region.eq_ignore_ascii_case(&active.region));
    (top > active.epoch || clash).then(|| Effect::Renumber {
        term,
        seen,
        next: Active {
            epoch: top + 1,
            ..active.clone()
        },
    })
}

/// The `active` that seeds an empty store, from the live hosts' views: the region of the
/// highest epoch a host remembers executing, at the epoch above it (`reseed`); when no host
/// remembers one, the region most hosts are on (`start`, epoch 1); the earlier in the
/// order on a tie. `None` without a view naming a known region.
pub fn seed(order: &[Region], views: &[&View], by: &str) -> Option<Active> {
    let known: Vec<&View> = views
        .iter()
        .copied()
        .filter(|v| region::find(order, &v.region).is_some())
        .collect();
    let top = known.iter().map(|v| v.epoch).max()?;
    // The region most of the hosts at the top epoch are on (a host that failed over alone
    // keeps the epoch it executed); on a tie, the earlier in the order.
    let at_top: Vec<&View> = known.iter().copied().filter(|v| v.epoch == top).collect();
    let count = |r: &Region| {
        at_top
            .iter()
            .filter(|v| v.region.eq_ignore_ascii_case(&r.name))
            .count()
    };
    // max_by_key keeps the last of equals: the order is walked backwards.
    let best = order
        .iter()
        .rev()
        .filter(|r| count(r) > 0)
        .max_by_key(|r| count(r))?;
    let (epoch, reason) = if top > 0 {
        (top + 1, "reseed")
    } else {
        (1, "start")
    };
    Some(Active {
        region: best.name.clone(),
        epoch,
        reason: reason.to_string(),
        by: by.to_string(),
        moves: Vec::new(),
    })
}
