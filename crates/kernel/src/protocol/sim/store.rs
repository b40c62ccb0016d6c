//! A model of etcd as the fleet uses it: a linearizable key-value store with a revision,
//! leases that end unless kept alive, create and mod revisions, and the compare of a
//! transaction. It can be down (no quorum, an election) and be wiped (a new cluster: no
//! keys, no leases, the revision back at zero).

use std::collections::BTreeMap;

use crate::protocol::{Active, Leader, Slot, Snapshot};
use crate::quorum::View;

/// A value under the fleet's prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    View(View),
    Leader(String),
    Active(Active),
    Pause,
    Slot,
}

#[derive(Debug, Clone)]
struct Kv {
    val: Val,
    create: i64,
    modified: i64,
    lease: i64,
}

/// Why an operation did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// No answer (down, cut off, the message lost).
    Silent,
    /// The lease is not known (it ended).
    LeaseNotFound,
}

#[derive(Debug, Default)]
pub struct Etcd {
    kvs: BTreeMap<String, Kv>,
    rev: i64,
    /// Lease id -> the tick it ends at.
    leases: BTreeMap<i64, u64>,
    next_lease: i64,
    /// Until which tick it answers nobody.
    pub down_until: u64,
    /// The last read, until the next write.
    cache: Option<Snapshot>,
}

impl Etcd {
    pub fn up(&self, now: u64) -> bool {
        now >= self.down_until
    }

    /// Ends the leases due by `now`, and their keys.
    pub fn expire(&mut self, now: u64) {
        let ended: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, end)| **end <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            self.leases.remove(&id);
            self.kvs.retain(|_, kv| kv.lease != id);
            self.cache = None;
        }
    }

    pub fn wipe(&mut self) {
        self.cache = None;
        self.kvs.clear();
        self.leases.clear();
        self.rev = 0;
    }

    pub fn grant(&mut self, now: u64, ttl: u64) -> i64 {
        self.next_lease += 1;
        self.leases.insert(self.next_lease, now + ttl);
        self.next_lease
    }

    pub fn has_lease(&self, lease: i64) -> bool {
        self.leases.contains_key(&lease)
    }

    pub fn keep_alive(&mut self, lease: i64, now: u64, ttl: u64) -> bool {
        match self.leases.get_mut(&lease) {
            Some(end) => {
                *end = now + ttl;
                true
            }
            None => false,
        }
    }

    fn check(&self, lease: i64) -> Result<(), Fail> {
        if lease != 0 && !self.leases.contains_key(&lease) {
            return Err(Fail::LeaseNotFound);
        }
        Ok(())
    }

    pub fn put(&mut self, key: &str, val: Val, lease: i64) -> Result<(), Fail> {
        self.check(lease)?;
        self.cache = None;
        self.rev += 1;
        let create = self.kvs.get(key).map_or(self.rev, |kv| kv.create);
        let kv = Kv {
            val,
            create,
            modified: self.rev,
            lease,
        };
        self.kvs.insert(key.to_string(), kv);
        Ok(())
    }

    pub fn put_if_absent(&mut self, key: &str, val: Val, lease: i64) -> Result<bool, Fail> {
        self.check(lease)?;
        if self.kvs.contains_key(key) {
            return Ok(false);
        }
        self.put(key, val, lease).map(|()| true)
    }

    pub fn delete(&mut self, key: &str) {
        if self.kvs.remove(key).is_some() {
            self.cache = None;
            self.rev += 1;
        }
    }

    /// The fenced move: applied while the leader key is of `term` and `active` at `seen`.
    pub fn move_active(&mut self, term: i64, seen: i64, to: Active) -> bool {
        let leads = self.kvs.get("leader").is_some_and(|kv| kv.create == term);
        let unmoved = self.kvs.get("active").is_some_and(|kv| kv.modified == seen);
        if !(leads && unmoved) {
            return false;
        }
        self.put("active", Val::Active(to), 0).is_ok()
    }

    /// `switch --fleet`: the next epoch on `region`, whoever leads, counted from `active`
    /// as the command does (on a wiped store, from zero: the leader renumbers it).
    pub fn switch(&mut self, region: &str) -> Active {
        let current = self.active();
        let to = Active {
            region: region.to_string(),
            epoch: current.as_ref().map_or(0, |(a, _)| a.epoch) + 1,
            reason: "manual".to_string(),
            by: "switch".to_string(),
            moves: current.map(|(a, _)| a.moves).unwrap_or_default(),
        };
        let _ = self.put("active", Val::Active(to.clone()), 0);
        to
    }

    pub fn active(&self) -> Option<(Active, i64)> {
        match self.kvs.get("active") {
            Some(Kv {
                val: Val::Active(a),
                modified,
                ..
            }) => Some((a.clone(), *modified)),
            _ => None,
        }
    }

    /// One read of every key.
    pub fn snapshot(&mut self) -> Snapshot {
        if let Some(s) = &self.cache {
            return s.clone();
        }
        let s = self.read_all();
        self.cache = Some(s.clone());
        s
    }

    fn read_all(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for (key, kv) in &self.kvs {
            let parts: Vec<&str> = key.split('/').collect();
            match (&kv.val, parts.as_slice()) {
                (Val::View(v), ["views", host]) => s.views.push((host.to_string(), v.clone())),
                (Val::Leader(host), _) => {
                    s.leader = Some(Leader {
                        host: host.clone(),
                        term: kv.create,
                        lease: kv.lease,
                    })
                }
                (Val::Active(a), _) => s.active = Some((a.clone(), kv.modified)),
                (Val::Pause, _) => s.paused = Some("paused by the simulator".to_string()),
                (Val::Slot, ["restarts", epoch, host]) => s.slots.push(Slot {
                    epoch: epoch.parse().unwrap_or(0),
                    host: host.to_string(),
                    order: kv.create,
                }),
                _ => {}
            }
        }
        s
    }
}
