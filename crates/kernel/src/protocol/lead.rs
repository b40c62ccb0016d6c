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
        let host = self.settings.host.clone();
        let term = match &snap.leader {
            None => {
                self.term = None;
                return vec![Effect::Campaign];
            }
            Some(l) if l.host == host && l.lease == lease => l.term,
            Some(_) => {
                self.term = None;
                return Vec::new();
            }
        };
        let mut effects = Vec::new();
        if self.term != Some(term) {
            self.term = Some(term);
            self.empty_since = None;
            effects.push(Effect::Leads { term });
        }
        let Some((active, seen)) = &snap.active else {
            // The hosts write their views again within a poll of a wiped store: the leader
            // waits a third of a lease for them before it seeds `active`.
            let since = *self.empty_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.settings.lease_ttl / 3 {
                let views: Vec<&View> = snap.views.iter().map(|(_, v)| v).collect();
                if let Some(first) = seed(&self.regions, &views, &host) {
                    effects.push(Effect::Seed(first));
                }
            }
            return effects;
        };
        self.empty_since = None;
        // An `active` set on a wiped store below an epoch a live host executes (a switch
        // by hand before the hosts wrote their views again): renumbered above it, on the
        // same region, so that no host takes one epoch number for two decisions.
        let top = snap.views.iter().map(|(_, v)| v.epoch).max().unwrap_or(0);
        let clash = snap.views.iter().any(|(_, v)| {
            v.epoch == active.epoch && !v.region.eq_ignore_ascii_case(&active.region)
        });
        if top > active.epoch || clash {
            effects.push(Effect::Renumber {
                term,
                seen: *seen,
                next: Active {
                    epoch: top + 1,
                    ..active.clone()
                },
            });
            return effects;
        }
        let Some(at) = region::find(&self.regions, &active.region) else {
            return effects;
        };
        let moves_ago: Vec<Duration> = active
            .moves
            .iter()
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
            Verdict::Move { to, outage, voters } => {
                let mut moves: Vec<u64> = active
                    .moves
                    .iter()
                    .copied()
                    .filter(|&m| unix.saturating_sub(m) < WINDOW.as_secs())
                    .collect();
                moves.push(unix);
                effects.push(Effect::Move {
                    term,
                    seen: *seen,
                    from: active.region.clone(),
                    next: Active {
                        region: self.regions[to].name.clone(),
                        epoch: active.epoch + 1,
                        reason: "outage".to_string(),
                        by: host,
                        moves,
                    },
                    outage,
                    voters,
                });
            }
            Verdict::Stay(Stay::Damped {
                to,
                next_allowed_in,
            }) if self.damped != Some(active.epoch) => {
                self.damped = Some(active.epoch);
                effects.push(Effect::Damped {
                    from: active.region.clone(),
                    to: self.regions[to].name.clone(),
                    epoch: active.epoch,
                    next_allowed_in,
                    recent: moves_ago.iter().filter(|a| **a < WINDOW).count(),
                });
            }
            Verdict::Stay(Stay::Paused { to }) if self.paused_move != Some(active.epoch) => {
                self.paused_move = Some(active.epoch);
                effects.push(Effect::MovePaused {
                    from: active.region.clone(),
                    to: self.regions[to].name.clone(),
                    epoch: active.epoch,
                    paused: snap.paused.clone().unwrap_or_default(),
                });
            }
            Verdict::Stay(_) => {}
        }
        effects
    }
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
