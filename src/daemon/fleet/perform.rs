//! Performing what the protocol answers: each store operation in order (the first that
//! fails ends the round), each event said, each restart made within the slot it holds.

use tokio_util::sync::CancellationToken;

use crate::adapters::etcd::EtcdError;
use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::daemon::fleet::Fleet;
use crate::kernel::protocol::{Effect, Owed, Why};
use crate::report::event::{Event, SwitchReason};

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Performs `effects`; true when the host queued for a slot (the caller reads again).
    pub(super) async fn perform(
        &mut self,
        fleet: &mut Fleet,
        effects: Vec<Effect>,
        lease: i64,
        cancel: &CancellationToken,
    ) -> Result<bool, EtcdError> {
        let host = fleet.settings.host.clone();
        let mut queued = false;
        for effect in effects {
            match effect {
                Effect::Publish(view) => fleet.store.publish_view(&host, &view, lease).await?,
                Effect::Campaign => {
                    // The next round reads the term of a won campaign.
                    fleet.store.campaign(&host, lease).await?;
                }
                Effect::Seed(first) => {
                    if fleet.store.init_active(&first).await? && first.reason == "reseed" {
                        self.obs.emit(Event::FleetReseeded {
                            region: first.region,
                            epoch: first.epoch,
                        });
                    }
                }
                Effect::Move {
                    term,
                    seen,
                    from,
                    next,
                    outage,
                    voters,
                } => {
                    if fleet.store.move_active(term, seen, &next).await? {
                        self.obs.emit(Event::FleetMoved {
                            from,
                            to: next.region,
                            epoch: next.epoch,
                            outage,
                            voters,
                        });
                    }
                }
                Effect::Renumber { term, seen, next } => {
                    if fleet.store.move_active(term, seen, &next).await? {
                        self.obs.emit(Event::FleetReseeded {
                            region: next.region,
                            epoch: next.epoch,
                        });
                    }
                }
                told @ (Effect::Leads { .. }
                | Effect::Damped { .. }
                | Effect::MovePaused { .. }
                | Effect::Pause(_)
                | Effect::StoreBack
                | Effect::Unknown(_)) => self.tell(fleet, told),
                Effect::Queue(epoch) => {
                    fleet.store.queue_for_slot(epoch, &host, lease).await?;
                    queued = true;
                }
                Effect::Release(epoch) => fleet.store.release_slot(epoch, &host).await?,
                Effect::Follow { to, why, epoch } => {
                    self.follow(fleet, to, why, cancel).await;
                    self.restarted(fleet, epoch, lease, cancel).await?;
                }
                Effect::Restart { owed, epoch } => {
                    self.owed_restart(fleet, owed, Some(epoch), cancel).await;
                    self.restarted(fleet, epoch, lease, cancel).await?;
                }
            }
        }
        Ok(queued)
    }

    /// Follows the fleet's active region to `to`: the env file written and the programs
    /// restarted within the slot the host holds.
    async fn follow(&mut self, fleet: &Fleet, to: usize, why: Why, cancel: &CancellationToken) {
        let reason = match why {
            Why::Start => SwitchReason::Start,
            Why::Outage => SwitchReason::Outage,
            Why::Manual => SwitchReason::Manual,
        };
        self.gate = fleet.gate();
        self.lapsed = false;
        self.apply(to, reason, cancel).await;
        self.gate = None;
    }

    /// Tells the protocol that the restart of `epoch` ended (and whether the lease lapsed on
    /// the way), and performs what it answers.
    async fn restarted(
        &mut self,
        fleet: &mut Fleet,
        epoch: u64,
        lease: i64,
        cancel: &CancellationToken,
    ) -> Result<(), EtcdError> {
        let lapsed = std::mem::take(&mut self.lapsed);
        let after = fleet
            .member
            .restarted(epoch, self.here(), lapsed, clock::now());
        Box::pin(self.perform(fleet, after, lease, cancel)).await?;
        Ok(())
    }

    /// Tells what the protocol answers only to be said: leadership, a move damped or paused,
    /// the fleet's pause, the store back, a region the store names but this host does not
    /// know. Every other effect is performed by `perform`.
    fn tell(&mut self, fleet: &Fleet, effect: Effect) {
        match effect {
            Effect::Leads { .. } => self.obs.emit(Event::FleetLeader {
                host: fleet.settings.host.clone(),
                fleet: fleet.settings.name.clone(),
            }),
            Effect::Damped {
                from,
                to,
                epoch,
                next_allowed_in,
                recent,
            } => self.obs.emit(Event::FleetMoveDamped {
                from,
                to,
                epoch,
                next_allowed_in,
                recent_moves: recent,
            }),
            Effect::MovePaused {
                from,
                to,
                epoch,
                paused,
            } => self.obs.emit(Event::FleetMovePaused {
                from,
                to,
                epoch,
                paused,
            }),
            Effect::Pause(Some(paused)) => self.obs.emit(Event::FleetPaused { paused }),
            Effect::Pause(None) => self.obs.emit(Event::FleetResumed {}),
            Effect::StoreBack => {
                let region = self.active().name.clone();
                self.obs.emit(Event::FleetStoreBack { region });
            }
            Effect::Unknown(region) => self.obs.emit(Event::FleetRegionUnknown { region }),
            _ => {}
        }
    }

    /// Makes a restart this host owes: within the slot of `epoch` (its lease checked before
    /// each program), or alone (`None`) while the store is lost.
    pub(super) async fn owed_restart(
        &mut self,
        fleet: &mut Fleet,
        owed: Owed,
        epoch: Option<u64>,
        cancel: &CancellationToken,
    ) {
        let region = self.active().name.clone();
        if owed == Owed::Resumed {
            self.obs.emit(Event::RestartResumed { region });
        }
        self.gate = epoch.and_then(|_| fleet.gate());
        self.lapsed = false;
        self.restart(cancel).await;
        self.gate = None;
        if epoch.is_none() {
            let lapsed = std::mem::take(&mut self.lapsed);
            fleet.member.settle(lapsed);
        }
    }
}
