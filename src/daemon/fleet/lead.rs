//! The leader's part: it campaigns when nobody leads, sets the fleet's first `active`, and
//! moves the fleet by the quorum rule (`kernel::quorum`), damped over the fleet's own moves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::warn;

use crate::adapters::etcd::EtcdError;
use crate::adapters::fleet_store::{Active, Snapshot};
use crate::adapters::probe::Probe;
use crate::adapters::restart::Restart;
use crate::daemon::Daemon;
use crate::daemon::fleet::Fleet;
use crate::kernel::damping::WINDOW;
use crate::kernel::quorum::{self, Rule, Stay, Verdict, View};
use crate::kernel::region;
use crate::report::event::Event;

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Campaigns when nobody leads; the leader sets the first `active` and moves the fleet.
    pub(super) async fn lead(
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
                moves: Vec::new(),
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
            max_moves_per_hour: self.config.failover.max_switches_per_hour,
            hold_down: self.config.failover.threshold,
        };
        let now = unix_now();
        let moves_ago: Vec<Duration> = active
            .moves
            .iter()
            .map(|&m| Duration::from_secs(now.saturating_sub(m)))
            .collect();
        let views: Vec<View> = snap.views.iter().map(|(_, v)| v.clone()).collect();
        let verdict = rule.decide(
            &self.config.regions,
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
                    .filter(|&m| now.saturating_sub(m) < WINDOW.as_secs())
                    .collect();
                moves.push(now);
                let next = Active {
                    region: self.region(to).name.clone(),
                    epoch: active.epoch + 1,
                    reason: "outage".to_string(),
                    by: host,
                    moves,
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
            Verdict::Stay(Stay::Damped {
                to,
                next_allowed_in,
            }) if fleet.damped != Some(active.epoch) => {
                fleet.damped = Some(active.epoch);
                let to = &self.region(to).name;
                warn!(
                    event = "fleet_move_damped",
                    from_region = %active.region,
                    to_region = %to,
                    epoch = active.epoch,
                    next_allowed_in_ms = next_allowed_in.as_millis() as u64,
                    recent_moves = moves_ago.iter().filter(|a| **a < WINDOW).count(),
                    "The fleet agrees {} is in outage, but it moved {} time(s) in the last hour: \
                     the move to {to} waits {} (failover.max_switches_per_hour)",
                    active.region,
                    moves_ago.iter().filter(|a| **a < WINDOW).count(),
                    crate::config::human(next_allowed_in)
                );
            }
            Verdict::Stay(_) => {}
        }
        Ok(())
    }
}

/// The wall clock in Unix seconds: the fleet's moves are shared by hosts, so they are dated
/// in the time every host reads alike.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
