//! One simulated host: the real [`Member`] with what the daemon does around it (a lease
//! kept alive beside the loop, rounds with the store, restarts of six program calls each
//! checked against the lease), and what survives a crash (the env file, the restart
//! marker).

use crate::protocol::sim::{KEEP_ALIVE, THRESHOLD, TTL, World};
use crate::protocol::{Here, Member, Permit, Settings};
use crate::quorum::{Health, View};
use crate::region::Region;

/// What a restart is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A move to region `to` for `epoch`.
    Follow { to: usize, epoch: u64 },
    /// An owed restart within the slot of `epoch`.
    Owed { epoch: u64 },
    /// A restart in place holding `permit`.
    InPlace(Permit),
    /// A host's own failover while the store is lost (`on_store_loss = "local"`).
    Alone,
}

/// A restart under way: six calls (three stops, three starts), one every `STEP` ticks.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub kind: Kind,
    /// Calls made so far; the current one ends at `busy_until`.
    pub calls: u8,
    pub busy_until: u64,
    /// Whether the lease is checked before each call (it holds a slot).
    pub gated: bool,
}

pub struct Host {
    pub member: Member,
    pub(super) settings: Settings,
    pub(super) regions: Vec<Region>,
    /// The region the env file names.
    pub region: usize,
    pub lease: Option<i64>,
    /// The lease of the process before a crash: its host name (and its slot) are held on
    /// it until it ends, and the new process claims the name only then.
    pub(super) old_lease: Option<i64>,
    /// The tick the last successful keep-alive (or the grant) was sent.
    pub(super) renewed: u64,
    pub(super) next_keep_alive: u64,
    pub(super) next_round: u64,
    pub down_until: u64,
    pub paused_until: u64,
    pub cut_until: u64,
    /// A local fault (the tunnel), since when.
    pub local_fault: Option<u64>,
    /// The restart marker in the state dir.
    pub(super) pending: bool,
    pub run: Option<Run>,
    /// The epoch of the last restart in place for the current local fault.
    pub(super) in_place_done: bool,
}

impl Host {
    pub fn new(settings: Settings, regions: Vec<Region>) -> Host {
        Host {
            member: Member::new(settings.clone(), regions.clone()),
            settings,
            regions,
            region: 0,
            lease: None,
            old_lease: None,
            renewed: 0,
            next_keep_alive: 0,
            next_round: 0,
            down_until: 0,
            paused_until: 0,
            cut_until: 0,
            local_fault: None,
            pending: false,
            run: None,
            in_place_done: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.host
    }

    pub fn alive(&self, now: u64) -> bool {
        now >= self.down_until
    }

    /// Whether a program call of this host is in flight at `now`.
    pub fn calling(&self, now: u64) -> bool {
        self.run.is_some_and(|r| now < r.busy_until)
    }

    pub(super) fn here(&self) -> Here {
        Here {
            at: self.region,
            tunnel_down: self.local_fault.is_some(),
        }
    }
}

/// A crash (kill -9) until `until`: the process's state is gone; the env file and the
/// restart marker stay.
pub fn crash(w: &mut World, h: usize, until: u64) {
    let host = &mut w.hosts[h];
    host.member = Member::new(host.settings.clone(), host.regions.clone());
    host.old_lease = host.lease.take().or(host.old_lease);
    host.run = None;
    host.down_until = until;
    host.next_round = until;
    host.in_place_done = false;
    w.say(format!("h{h} crashes (kill -9) until {until}"));
}

pub(super) fn keep_alive(w: &mut World, h: usize) {
    let now = w.now;
    let Some(lease) = w.hosts[h].lease else {
        return;
    };
    if now < w.hosts[h].next_keep_alive {
        return;
    }
    w.hosts[h].next_keep_alive = now + KEEP_ALIVE;
    if !w.reaches(h) {
        return;
    }
    if w.etcd.keep_alive(lease, now, TTL) {
        w.hosts[h].renewed = now;
    } else {
        w.hosts[h].lease = None;
        w.hosts[h].member.lease_lost();
    }
}

/// The view this host publishes, from what is true: its region's real outage since it
/// began or since the host arrived, its local fault, the standbys' health.
pub(super) fn set_view(w: &mut World, h: usize) {
    let now = w.now;
    let instant = w.instant();
    let at = |t: u64| w.base + super::TICK * t as u32;
    let host = &w.hosts[h];
    let (epoch, arrived) = host.member.epoch();
    let failing = match (host.local_fault, w.outage) {
        (Some(since), _) => Some(since),
        (None, Some((r, since))) if r == host.region => Some(since),
        _ => None,
    };
    let health = Health::at(
        instant,
        failing.map(at),
        arrived,
        super::TICK * THRESHOLD as u32,
    );
    let standbys = (0..w.regions.len())
        .filter(|&r| r != host.region)
        .map(|r| {
            (
                w.regions[r].name.clone(),
                w.outage.is_none_or(|(o, _)| o != r),
            )
        })
        .collect();
    let view = View {
        region: w.regions[host.region].name.clone(),
        epoch,
        health,
        blames_self: false,
        local_fault: host.local_fault.is_some() && failing.is_some(),
        standbys,
    };
    let _ = now;
    w.hosts[h].member.set_view(view);
}
