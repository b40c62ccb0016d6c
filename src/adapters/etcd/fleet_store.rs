//! The fleet's keys in etcd, under `/failover-handler/<fleet>/`:
//! `views/<host>` (each host's view, on its lease), `leader` (created if absent, on the
//! leader's lease), `active` (region and epoch, changed only by a fenced transaction),
//! `pause`, `restarts/<epoch>/<host>` (restart slots, on leases) and `hosts/<host>` (the
//! process that holds each host name, on its lease). The daemon's rounds read them from a
//! mirror the watch stream keeps (`etcd::Mirror`), not from the store.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Compare, Etcd, EtcdError, Mirror, Op};
pub use crate::kernel::protocol::{Active, Leader, Slot, Snapshot};
use crate::kernel::quorum::{Health, View};

/// The fleet's keys on one etcd cluster.
pub struct Store {
    etcd: Arc<Etcd>,
    mirror: Mirror,
    prefix: String,
}

impl Store {
    pub fn new(etcd: Etcd, prefix: String) -> Store {
        let etcd = Arc::new(etcd);
        Store {
            mirror: Mirror::new(etcd.clone(), prefix.clone()),
            etcd,
            prefix,
        }
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Every key of the fleet as the store holds them now (this host's own writes included),
    /// or an error when the store does not answer.
    pub async fn snapshot(&self) -> Result<Snapshot, EtcdError> {
        let kvs = self.mirror.current().await?;
        let mut s = Snapshot::default();
        for kv in kvs {
            let Some(rest) = kv.key.strip_prefix(&self.prefix) else {
                continue;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                ["views", host] => {
                    if let Some(v) = parse_view(&kv.value) {
                        s.views.push((host.to_string(), v));
                    }
                }
                ["leader"] => {
                    s.leader = Some(Leader {
                        host: kv.value.clone(),
                        term: kv.create_revision,
                        lease: kv.lease,
                    })
                }
                ["active"] => {
                    if let Some(a) = parse_active(&kv.value) {
                        s.active = Some((a, kv.mod_revision));
                    }
                }
                ["pause"] => s.paused = Some(kv.value.clone()),
                ["restarts", epoch, host] => {
                    if let Ok(epoch) = epoch.parse() {
                        s.slots.push(Slot {
                            epoch,
                            host: host.to_string(),
                            order: kv.create_revision,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Publishes `host`'s view on `lease`.
    pub async fn publish_view(&self, host: &str, view: &View, lease: i64) -> Result<(), EtcdError> {
        let key = self.key(&format!("views/{host}"));
        self.etcd.put(&key, &view_json(view), lease).await
    }

    /// Becomes the leader if there is none; true when `host` now leads.
    pub async fn campaign(&self, host: &str, lease: i64) -> Result<bool, EtcdError> {
        self.put_if_absent(self.key("leader"), host, lease).await
    }

    /// Sets `active` if absent (the fleet's first region).
    pub async fn init_active(&self, active: &Active) -> Result<bool, EtcdError> {
        let key = self.key("active");
        self.etcd
            .txn(
                &[Compare::Created(key.clone(), 0)],
                &[put(key, active_json(active))],
            )
            .await
    }

    /// Moves the fleet: applied only while the leader key is still of term `term` (the
    /// writer still leads) and `active` is still at `seen` (nobody moved it since).
    pub async fn move_active(&self, term: i64, seen: i64, to: &Active) -> Result<bool, EtcdError> {
        let key = self.key("active");
        self.etcd
            .txn(
                &[
                    Compare::Created(self.key("leader"), term),
                    Compare::Modified(key.clone(), seen),
                ],
                &[put(key, active_json(to))],
            )
            .await
    }

    /// Sets `active` to `region` by hand, whoever leads; retried if it moved meanwhile.
    pub async fn switch(&self, region: &str, by: &str) -> Result<Active, EtcdError> {
        let key = self.key("active");
        loop {
            let current = self.etcd.get(&key).await?;
            let (epoch, seen) = match &current {
                Some(kv) => (
                    parse_active(&kv.value).map_or(0, |a| a.epoch),
                    kv.mod_revision,
                ),
                None => (0, 0),
            };
            let moves = current
                .as_ref()
                .and_then(|kv| parse_active(&kv.value))
                .map(|a| a.moves)
                .unwrap_or_default();
            let to = Active {
                region: region.to_string(),
                epoch: epoch + 1,
                reason: "manual".to_string(),
                by: by.to_string(),
                moves,
            };
            let compare = [Compare::Modified(key.clone(), seen)];
            if self
                .etcd
                .txn(&compare, &[put(key.clone(), active_json(&to))])
                .await?
            {
                return Ok(to);
            }
        }
    }

    /// Holds (`Some(who)`) or resumes (`None`) automatic moves of the whole fleet.
    pub async fn set_pause(&self, by: Option<&str>) -> Result<(), EtcdError> {
        let key = self.key("pause");
        match by {
            Some(by) => self.etcd.put(&key, by, 0).await,
            None => self.etcd.delete(&key).await,
        }
    }

    /// Queues `host` for a restart slot of `epoch` (on `lease`).
    pub async fn queue_for_slot(
        &self,
        epoch: u64,
        host: &str,
        lease: i64,
    ) -> Result<(), EtcdError> {
        let key = self.key(&format!("restarts/{epoch}/{host}"));
        self.put_if_absent(key, host, lease).await.map(drop)
    }

    /// Claims the name `host` for this process (`hosts/<host>` on `lease`, holding
    /// `claim`, whose `instance` is this process's random id): `None` when it is this
    /// process's, else what another live process left there.
    pub async fn claim_host(
        &self,
        host: &str,
        claim: &Value,
        lease: i64,
    ) -> Result<Option<Value>, EtcdError> {
        let key = self.key(&format!("hosts/{host}"));
        let text = claim.to_string();
        if self.put_if_absent(key.clone(), &text, lease).await? {
            return Ok(None);
        }
        let Some(kv) = self.etcd.get(&key).await? else {
            // Gone meanwhile (its lease ended): the next round claims it.
            return Ok(Some(Value::Null));
        };
        let held: Value = serde_json::from_str(&kv.value).unwrap_or(Value::Null);
        if held["instance"] == claim["instance"] {
            self.etcd.put(&key, &text, lease).await?;
            return Ok(None);
        }
        Ok(Some(held))
    }

    /// Puts `value` at `key` on `lease` unless the key exists; true when it was put.
    async fn put_if_absent(&self, key: String, value: &str, lease: i64) -> Result<bool, EtcdError> {
        self.etcd
            .txn(
                &[Compare::Created(key.clone(), 0)],
                &[Op::Put {
                    key,
                    value: value.to_string(),
                    lease,
                }],
            )
            .await
    }

    /// Gives the slot back.
    pub async fn release_slot(&self, epoch: u64, host: &str) -> Result<(), EtcdError> {
        self.etcd
            .delete(&self.key(&format!("restarts/{epoch}/{host}")))
            .await
    }
}

fn put(key: String, value: String) -> Op {
    Op::Put {
        key,
        value,
        lease: 0,
    }
}

pub fn view_json(v: &View) -> String {
    let standbys: serde_json::Map<String, Value> = v
        .standbys
        .iter()
        .map(|(r, up)| (r.clone(), Value::Bool(*up)))
        .collect();
    json!({
        "region": v.region,
        "epoch": v.epoch,
        "health": v.health.as_str(),
        "blames_self": v.blames_self,
        "local_fault": v.local_fault,
        "standbys": standbys,
    })
    .to_string()
}

pub fn parse_view(text: &str) -> Option<View> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(View {
        region: v["region"].as_str()?.to_string(),
        epoch: v["epoch"].as_u64().unwrap_or(0),
        health: Health::parse(v["health"].as_str()?)?,
        blames_self: v["blames_self"].as_bool().unwrap_or(false),
        local_fault: v["local_fault"].as_bool().unwrap_or(false),
        standbys: v["standbys"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(r, up)| Some((r.clone(), up.as_bool()?)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn active_json(a: &Active) -> String {
    json!({ "region": a.region, "epoch": a.epoch, "reason": a.reason, "by": a.by, "moves": a.moves })
        .to_string()
}

pub fn parse_active(text: &str) -> Option<Active> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(Active {
        region: v["region"].as_str()?.to_string(),
        epoch: v["epoch"].as_u64()?,
        reason: v["reason"].as_str().unwrap_or_default().to_string(),
        by: v["by"].as_str().unwrap_or_default().to_string(),
        moves: v["moves"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_and_active_round_trip() {
        let view = View {
            region: "EU".into(),
            epoch: 4,
            health: Health::Outage,
            blames_self: true,
            local_fault: true,
            standbys: vec![("APAC".into(), false), ("NAM".into(), true)],
        };
        assert_eq!(parse_view(&view_json(&view)), Some(view));
        let a = Active {
            region: "NAM".into(),
            epoch: 3,
            reason: "outage".into(),
            by: "web-1".into(),
            moves: vec![1_700_000_000, 1_700_000_600],
        };
        assert_eq!(parse_active(&active_json(&a)), Some(a));
    }

    #[test]
    fn the_first_in_line_of_any_epoch_hold_the_slots() {
        let slot = |epoch, host: &str, order| Slot {
            epoch,
            host: host.into(),
            order,
        };
        let s = Snapshot {
            slots: vec![
                slot(2, "c", 30),
                slot(2, "a", 10),
                slot(1, "z", 5),
                slot(2, "b", 20),
            ],
            ..Snapshot::default()
        };
        assert_eq!(s.holders(2), ["z", "a"]);
        assert_eq!(s.holders(3), ["z", "a", "b"]);
    }
}
