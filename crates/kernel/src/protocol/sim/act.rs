//! What a simulated host does with the store and its programs: rounds, the member's
//! effects performed, restarts call by call, restarts in place, and acting alone.

use crate::protocol::sim::World;
use crate::protocol::sim::host::{Kind, Run, keep_alive, set_view};
use crate::protocol::sim::store::{Fail, Val};
use crate::protocol::sim::{KEEP_ALIVE, POLL, STEP, THRESHOLD, TTL};
use crate::protocol::{Effect, Owed, Permit, Snapshot, lease_holds};

/// One tick of host `h`.
pub fn step(w: &mut World, h: usize) {
    let now = w.now;
    if !w.hosts[h].alive(now) {
        return;
    }
    if now == w.hosts[h].down_until && w.hosts[h].pending && now > 0 {
        w.hosts[h].member.owe(Owed::Resumed);
        w.say(format!(
            "h{h} starts again; its interrupted restart is owed"
        ));
    }
    if now < w.hosts[h].paused_until {
        return;
    }
    keep_alive(w, h);
    if w.hosts[h].run.is_some() {
        restart_step(w, h);
        return;
    }
    if now < w.hosts[h].next_round {
        return;
    }
    // A delayed round: the scheduler holds it a tick or two.
    if w.rng.chance(w.loss) {
        w.hosts[h].next_round = now + w.rng.range(1, 3);
        return;
    }
    w.hosts[h].next_round = now + POLL;
    set_view(w, h);
    let answered = round(w, h);
    let instant = w.instant();
    let host = &mut w.hosts[h];
    match answered {
        // The store's return is told by the round that read it (`Effect::StoreBack`).
        Ok(()) => {}
        Err(Fail::LeaseNotFound) => {
            host.lease = None;
            host.member.lease_lost();
        }
        Err(Fail::Silent) => {
            if host.member.store_failed(instant) {
                w.say(format!("h{h}: the store is lost"));
            }
        }
    }
    in_place(w, h);
    alone(w, h);
}

/// One round: a lease, a read, the member's answer performed.
pub(super) fn round(w: &mut World, h: usize) -> Result<(), Fail> {
    let now = w.now;
    if !w.reaches(h) {
        return Err(Fail::Silent);
    }
    // The host name is still held by the process before a crash: no round until its lease
    // ends (the name claim fails, as if the store were silent).
    if let Some(old) = w.hosts[h].old_lease {
        if w.etcd.has_lease(old) {
            return Err(Fail::Silent);
        }
        w.hosts[h].old_lease = None;
    }
    let lease = match w.hosts[h].lease {
        Some(l) => l,
        None => {
            let l = w.etcd.grant(now, TTL);
            w.hosts[h].lease = Some(l);
            w.hosts[h].renewed = now;
            w.hosts[h].next_keep_alive = now + KEEP_ALIVE;
            l
        }
    };
    let snap = read(w, h)?;
    let (instant, unix) = (w.instant(), w.unix());
    let here = w.hosts[h].here();
    let effects = w.hosts[h].member.round(&snap, here, lease, instant, unix);
    if perform(w, h, effects, lease)? {
        let snap = read(w, h)?;
        let effects = w.hosts[h].member.follow(&snap, here, instant);
        perform(w, h, effects, lease)?;
    }
    Ok(())
}

pub(super) fn read(w: &mut World, h: usize) -> Result<Snapshot, Fail> {
    if !w.reaches(h) {
        return Err(Fail::Silent);
    }
    Ok(w.etcd.snapshot())
}

/// Performs `effects` against the store; true when the host queued for a slot.
pub(super) fn perform(
    w: &mut World,
    h: usize,
    effects: Vec<Effect>,
    lease: i64,
) -> Result<bool, Fail> {
    let name = w.hosts[h].name().to_string();
    let mut queued = false;
    for effect in effects {
        if !matches!(
            effect,
            Effect::Leads { .. }
                | Effect::Damped { .. }
                | Effect::MovePaused { .. }
                | Effect::Pause(_)
                | Effect::StoreBack
                | Effect::Unknown(_)
        ) && !w.reaches(h)
        {
            return Err(Fail::Silent);
        }
        match effect {
            Effect::Publish(v) => w.etcd.put(&format!("views/{name}"), Val::View(v), lease)?,
            Effect::Campaign => {
                w.etcd
                    .put_if_absent("leader", Val::Leader(name.clone()), lease)?;
            }
            Effect::Leads { term } => w.say(format!("{name} leads (term {term})")),
            Effect::Seed(a) => {
                if w.etcd.active().is_none() {
                    w.say(format!(
                        "{name} seeds active {} epoch {} ({})",
                        a.region, a.epoch, a.reason
                    ));
                    w.etcd.put("active", Val::Active(a), 0)?;
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
                let to = next.region.clone();
                if w.etcd.move_active(term, seen, next) {
                    w.say(format!(
                        "{name} moves the fleet {from} -> {to} ({outage} of {voters})"
                    ));
                }
            }
            Effect::Renumber { term, seen, next } => {
                let (region, epoch) = (next.region.clone(), next.epoch);
                if w.etcd.move_active(term, seen, next) {
                    w.say(format!("{name} renumbers active {region} to epoch {epoch}"));
                }
            }
            Effect::Damped { .. } | Effect::Unknown(_) => {}
            Effect::StoreBack => w.say(format!("{name}: the store answers again")),
            Effect::MovePaused {
                from, to, epoch, ..
            } => w.say(format!(
                "{name}: the pause holds {from} -> {to} (epoch {epoch})"
            )),
            Effect::Pause(p) => w.say(format!("{name} sees the pause: {p:?}")),
            Effect::Queue(epoch) => {
                w.etcd
                    .put_if_absent(&format!("restarts/{epoch}/{name}"), Val::Slot, lease)?;
                w.say(format!("{name} queues for a slot of epoch {epoch}"));
                queued = true;
            }
            Effect::Release(epoch) => {
                w.etcd.delete(&format!("restarts/{epoch}/{name}"));
                w.say(format!("{name} gives back its slot of epoch {epoch}"));
            }
            Effect::Follow { to, epoch, .. } => {
                // The env file is written first, then the programs are restarted.
                w.hosts[h].region = to;
                begin(w, h, Kind::Follow { to, epoch });
                return Ok(queued);
            }
            Effect::Restart { epoch, .. } => {
                begin(w, h, Kind::Owed { epoch });
                return Ok(queued);
            }
        }
    }
    Ok(queued)
}

pub(super) fn begin(w: &mut World, h: usize, kind: Kind) {
    let gated = !matches!(kind, Kind::Alone | Kind::InPlace(Permit::Alone));
    let host = &mut w.hosts[h];
    host.pending = true;
    host.run = Some(Run {
        kind,
        calls: 0,
        busy_until: w.now,
        gated,
    });
    if let Kind::InPlace(_) = kind {
        host.in_place_done = true;
    }
    w.say(format!("h{h} restarts ({kind:?})"));
}

/// The next call of the restart under way, if the last one is done and the lease holds.
pub(super) fn restart_step(w: &mut World, h: usize) {
    let now = w.now;
    let Some(run) = w.hosts[h].run else {
        return;
    };
    if now < run.busy_until {
        return;
    }
    let instant = w.instant();
    let renewed = w.base + super::TICK * w.hosts[h].renewed as u32;
    let done = run.calls == 6;
    let lapsed = !done && run.gated && !lease_holds(renewed, w.settings.lease_ttl, instant);
    if !done && !lapsed {
        w.hosts[h].run = Some(Run {
            calls: run.calls + 1,
            busy_until: now + STEP,
            ..run
        });
        return;
    }
    w.hosts[h].run = None;
    if done {
        w.hosts[h].pending = false;
    } else {
        w.say(format!(
            "h{h}: the lease lapsed mid-restart: it stops acting"
        ));
    }
    let here = w.hosts[h].here();
    let effects = match run.kind {
        Kind::Follow { epoch, .. } | Kind::Owed { epoch } => {
            w.hosts[h].member.restarted(epoch, here, lapsed, instant)
        }
        Kind::InPlace(permit) => {
            if lapsed {
                w.hosts[h].member.owe(Owed::Lapsed);
            }
            w.hosts[h].member.in_place_done(permit)
        }
        Kind::Alone => {
            w.hosts[h].member.settle(lapsed);
            Vec::new()
        }
    };
    if let Some(lease) = w.hosts[h].lease {
        let _ = perform(w, h, effects, lease);
    }
}

/// While the store is lost: an owed restart made alone, and, with `on_store_loss =
/// "local"`, the host's own failover after the threshold.
pub(super) fn alone(w: &mut World, h: usize) {
    let now = w.now;
    let instant = w.instant();
    if w.hosts[h].run.is_some() {
        return;
    }
    if w.hosts[h].member.owed_alone(instant).is_some() {
        begin(w, h, Kind::Alone);
        return;
    }
    let host = &w.hosts[h];
    if host.member.withholds() || !host.member.alone_may_restart(instant) {
        return;
    }
    let Some((r, since)) = w.outage else {
        return;
    };
    if r != host.region || now < since + THRESHOLD || host.local_fault.is_some() {
        return;
    }
    let to = (r + 1) % w.regions.len();
    w.say(format!("h{h} fails over alone to {}", w.regions[to].name));
    w.hosts[h].region = to;
    begin(w, h, Kind::Alone);
}

/// A restart in place, once per local fault held for the threshold: within a slot while
/// the store answers, alone while it is lost.
pub(super) fn in_place(w: &mut World, h: usize) {
    let now = w.now;
    let instant = w.instant();
    let host = &w.hosts[h];
    if host.local_fault.is_none() {
        w.hosts[h].in_place_done = false;
        return;
    }
    let due = host
        .local_fault
        .is_some_and(|since| now >= since + THRESHOLD && !host.in_place_done);
    if !due || host.run.is_some() {
        return;
    }
    let permit = if host.member.lost() {
        w.hosts[h].member.in_place(None, instant).0
    } else {
        let (Some(lease), Ok(snap)) = (w.hosts[h].lease, read(w, h)) else {
            return;
        };
        let (permit, effects) = w.hosts[h].member.in_place(Some(&snap), instant);
        if perform(w, h, effects, lease) == Ok(true) {
            let Ok(snap) = read(w, h) else {
                return;
            };
            w.hosts[h].member.in_place(Some(&snap), instant).0
        } else {
            permit
        }
    };
    if permit != Permit::Wait {
        begin(w, h, Kind::InPlace(permit));
    }
}
