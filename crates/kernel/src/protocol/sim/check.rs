//! The invariants, checked after every tick of a simulation:
//! - I1: one region active in the store at any time (one key), and once the faults end every
//!   live host converges to it, its restarts finished.
//! - I2: no move for an outage the region did not have: the region left was in real outage
//!   for the threshold (or its outage ended within two polls, the views' lag).
//! - I3: never more hosts inside a program call within a slot than
//!   `max_concurrent_restarts`.
//! - I4: no host moves twice for one epoch (one that failed over alone follows again).
//! - I5: wiping or losing the store causes no switch: a fleet on one region when its store
//!   is wiped is seeded with that region.

use std::collections::BTreeSet;

use crate::protocol::Active;
use crate::protocol::sim::host::Kind;
use crate::protocol::sim::{POLL, THRESHOLD, World};

pub struct Checker {
    active: Option<Active>,
    /// The last tick each region's real outage was seen.
    outage_seen: Vec<Option<(u64, u64)>>,
    /// (host, epoch) of every move begun.
    moves: BTreeSet<(String, u64)>,
    runs: Vec<Option<Kind>>,
    /// After a wipe of a fleet all on one region: that region, until `active` is set again.
    wiped_on: Option<Option<usize>>,
}

impl Checker {
    pub fn new(w: &World) -> Checker {
        Checker {
            active: None,
            outage_seen: vec![None; w.regions.len()],
            moves: BTreeSet::new(),
            runs: vec![None; w.hosts.len()],
            wiped_on: None,
        }
    }

    pub fn after_tick(&mut self, w: &World) -> Result<(), String> {
        let now = w.now;
        if let Some((r, since)) = w.outage {
            self.outage_seen[r] = Some((since, now));
        }
        // I3, over the restarts that hold a slot (a host acting alone, its store lost, is
        // outside the fleet's line by definition).
        let calling: Vec<&str> = w
            .hosts
            .iter()
            .filter(|h| h.alive(now) && h.calling(now) && h.run.is_some_and(|r| r.gated))
            .map(|h| h.name())
            .collect();
        if calling.len() > w.settings.max_restarts {
            return Err(format!(
                "I3: {} hosts restart at once ({calling:?}), max_concurrent_restarts {}",
                calling.len(),
                w.settings.max_restarts
            ));
        }
        // I4
        for (i, h) in w.hosts.iter().enumerate() {
            let kind = h.run.map(|r| r.kind);
            // A host that fails over alone leaves the fleet's epoch: it follows it again
            // once the store answers.
            if let (None, Some(Kind::Alone)) = (self.runs[i], kind) {
                self.moves.retain(|(host, _)| host != h.name());
            }
            if let (None, Some(Kind::Follow { epoch, .. })) = (self.runs[i], kind)
                && !self.moves.insert((h.name().to_string(), epoch))
            {
                return Err(format!("I4: {} moves twice for epoch {epoch}", h.name()));
            }
            self.runs[i] = kind;
        }
        // I2 and I5
        let active = w.etcd.active().map(|(a, _)| a);
        if active.is_none() && self.active.is_some() {
            // Wiped: were the live hosts all on one region?
            let mut on: Vec<usize> = w
                .hosts
                .iter()
                .filter(|h| h.alive(now))
                .map(|h| h.region)
                .collect();
            on.dedup();
            self.wiped_on = Some((on.len() == 1).then(|| on[0]));
        }
        if active != self.active
            && let Some(a) = &active
        {
            self.check_change(w, a)?;
        }
        self.active = active;
        Ok(())
    }

    fn check_change(&mut self, w: &World, a: &Active) -> Result<(), String> {
        let now = w.now;
        match a.reason.as_str() {
            "outage" => {
                let from = self
                    .active
                    .as_ref()
                    .and_then(|f| w.regions.iter().position(|r| r.name == f.region))
                    .ok_or("I2: an outage move with no active region before it")?;
                let real = self.outage_seen[from].is_some_and(|(since, last)| {
                    now >= since + THRESHOLD && now <= last + 2 * POLL
                });
                if !real {
                    return Err(format!(
                        "I2: the fleet moved off {} for an outage it did not have (epoch {})",
                        w.regions[from].name, a.epoch
                    ));
                }
            }
            "manual" => self.wiped_on = None,
            _ => {
                if let Some(Some(r)) = self.wiped_on.take()
                    && w.regions[r].name != a.region
                {
                    return Err(format!(
                        "I5: every live host was on {} when the store was wiped; it was seeded with {}",
                        w.regions[r].name, a.region
                    ));
                }
            }
        }
        Ok(())
    }

    /// I1: after the faults, every live host is on the active region, its restarts done.
    pub fn at_end(&self, w: &World) -> Result<(), String> {
        let Some(active) = &self.active else {
            return Err("I1: no active region at the end".to_string());
        };
        for h in &w.hosts {
            let on = &w.regions[h.region].name;
            if *on != active.region {
                return Err(format!(
                    "I1: {} is on {on}, the fleet on {} (epoch {})",
                    h.name(),
                    active.region,
                    active.epoch
                ));
            }
            if h.run.is_some() || h.member.owed().is_some() {
                return Err(format!("I1: {} still owes or makes a restart", h.name()));
            }
        }
        Ok(())
    }
}
