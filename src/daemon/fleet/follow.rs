//! The restarts a fleet host makes outside a move: in place (the policy asks), and resumed
//! after a crash. Each takes a slot of the fleet's one line through the protocol.

use crate::adapters::etcd::EtcdError;
use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::daemon::fleet::{Fleet, Permit};
use crate::kernel::protocol::{Effect, Owed};
use crate::report::event::Event;

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Whether this host may restart its programs in place now: every restart a fleet host
    /// makes holds one of the fleet's slots. It waits in line while the store answers; it
    /// acts alone only when the store is lost (or there is no fleet). A held slot's restart
    /// is checked against the lease before each program.
    pub(in crate::daemon) async fn fleet_permit(&mut self) -> Permit {
        let Some(mut fleet) = self.fleet.take() else {
            return Permit::Alone;
        };
        let permit = match in_place_slot(&mut fleet).await {
            Ok(permit) => permit,
            // The store did not answer: the next round with it says whether it is lost.
            Err(_) => Permit::Wait,
        };
        if permit == Permit::Wait && !std::mem::replace(&mut fleet.queue_said, true) {
            self.obs.emit(Event::RestartQueued {
                max_concurrent_restarts: fleet.settings.max_concurrent_restarts,
            });
        }
        if let Permit::Held(_) = permit {
            self.gate = fleet.gate();
        }
        self.fleet = Some(fleet);
        permit
    }

    /// Gives back the slot a restart held; a restart stopped when the lease lapsed is owed.
    pub(in crate::daemon) async fn fleet_release(&mut self, permit: Permit) {
        self.gate = None;
        let lapsed = std::mem::take(&mut self.lapsed);
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        fleet.queue_said = false;
        if lapsed {
            fleet.member.owe(Owed::Lapsed);
        }
        for effect in fleet.member.in_place_done(permit) {
            if let Effect::Release(epoch) = effect {
                // A release that fails is made at the next round (or the lease takes it).
                let _ = fleet.store.release_slot(epoch, &fleet.settings.host).await;
            }
        }
    }

    /// A restart interrupted by a crash is owed, in a fleet: it is made within a slot.
    /// Whether it was taken over (no fleet: the caller makes it now).
    pub(in crate::daemon) fn fleet_owe_resumed(&mut self) -> bool {
        match self.fleet.as_mut() {
            Some(fleet) => {
                fleet.member.owe(Owed::Resumed);
                true
            }
            None => false,
        }
    }
}

/// Queues this host for a restart in place on the fleet's current epoch, if it is not in
/// line yet, and says whether it holds a slot now.
async fn in_place_slot(fleet: &mut Fleet) -> Result<Permit, EtcdError> {
    let now = clock::now();
    if fleet.member.lost() {
        return Ok(fleet.member.in_place(None, now).0);
    }
    let lease = fleet.lease().await?;
    let snap = fleet.read().await?;
    let (permit, effects) = fleet.member.in_place(Some(&snap), now);
    if effects.is_empty() {
        return Ok(permit);
    }
    for effect in effects {
        if let Effect::Queue(epoch) = effect {
            fleet
                .store
                .queue_for_slot(epoch, &fleet.settings.host, lease)
                .await?;
        }
    }
    let snap = fleet.read().await?;
    Ok(fleet.member.in_place(Some(&snap), now).0)
}
