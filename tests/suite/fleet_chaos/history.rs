//! The history of a chaos run and the fleet's invariants checked on it.
//!
//! - I1: one region active in the store at a time (each `active` write a new, higher epoch of
//!   its cluster), and once the faults are healed every running host converges to it;
//! - I2: no host switches without a fleet decision, and no automatic decision without a quorum
//!   of the live non-abstaining hosts' views (nor while the fleet is paused);
//! - I3: never more than `max_concurrent_restarts` restarts at once;
//! - I4: no host moves (env write and restart) twice for one epoch;
//! - I5: losing or wiping the store never causes a switch.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// One thing that happened, `at` seconds after the run began.
#[derive(Clone, Debug)]
pub struct Entry {
    pub at: f64,
    pub what: What,
}

#[derive(Clone, Debug)]
pub enum What {
    /// A write the store's watch saw, relative to the fleet's prefix (`active`, `views/h1`);
    /// `value` is `None` for a delete. `cluster` names the store: a wipe makes a new one.
    Store {
        cluster: String,
        revision: i64,
        key: String,
        value: Option<String>,
    },
    /// Host `host` wrote `to` into its env file (its `switch` line) and restarts for it.
    EnvWrite {
        host: usize,
        from: String,
        to: String,
    },
    /// A restart of host `host`'s programs, from its first supervisorctl call to its last,
    /// with the region its env file named.
    Restart {
        host: usize,
        end: f64,
        region: String,
    },
    /// A fault injected, or healed.
    Fault(String),
    Heal(String),
    /// A handler exited by itself (and was started again, as supervisord does): no
    /// invariant, but a finding.
    Exit(String),
    /// The store cannot answer from now (its quorum killed, or a wipe), or can again.
    StoreDown,
    StoreUp,
    /// The faults healed, the runner waited for every running host to reach the store's
    /// `active`: each running host's region, and `active`'s.
    Settled {
        regions: Vec<(usize, Option<String>)>,
        active: Option<String>,
        converged: bool,
    },
}

/// The fleet's settings the invariants depend on.
pub struct Rules {
    pub cap: usize,
    pub quorum: f64,
    pub min_voters: usize,
    /// How long after the store is back a switch still counts as caused by its loss.
    pub after_loss: f64,
    /// How late the watch may see a write a host acted on.
    pub lag: f64,
    /// How long before its move a leader may have read the views it decided on (its lease:
    /// a leader stopped longer has lost its term, and its move fails).
    pub decision_window: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub at: f64,
    pub invariant: &'static str,
    pub what: String,
}

/// `active`'s value, as far as the invariants go.
#[derive(Clone, Debug)]
struct Active {
    at: f64,
    cluster: String,
    region: String,
    epoch: u64,
    reason: String,
}

fn active_of(at: f64, cluster: &str, value: &str) -> Option<Active> {
    let v: Value = serde_json::from_str(value).ok()?;
    Some(Active {
        at,
        cluster: cluster.to_owned(),
        region: v["region"].as_str()?.to_owned(),
        epoch: v["epoch"].as_u64()?,
        reason: v["reason"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Every violation of I1-I5 in `history`, in time order.
pub fn check(history: &[Entry], rules: &Rules) -> Vec<Violation> {
    let mut entries: Vec<&Entry> = history.iter().collect();
    entries.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut out = Vec::new();
    let actives = store_rules(&entries, rules, &mut out);
    env_rules(&entries, &actives, rules, &mut out);
    restart_cap(&entries, rules, &mut out);
    for e in &entries {
        if let What::Settled {
            regions,
            active,
            converged: false,
        } = &e.what
        {
            out.push(Violation {
                at: e.at,
                invariant: "I1",
                what: format!(
                    "after the faults healed, the hosts did not converge on active {active:?}: \
                     {regions:?}"
                ),
            });
        }
    }
    out.sort_by(|a, b| a.at.total_cmp(&b.at));
    for v in &mut out {
        let during = in_effect(&entries, v.at);
        if !during.is_empty() {
            v.what
                .push_str(&format!(" [faults in effect: {}]", during.join("; ")));
        }
    }
    out
}

/// The faults injected and not yet healed at `at`.
fn in_effect(entries: &[&Entry], at: f64) -> Vec<String> {
    let mut on: Vec<String> = Vec::new();
    for e in entries.iter().take_while(|e| e.at <= at) {
        match &e.what {
            What::Fault(f) => on.push(f.clone()),
            What::Heal(f) => {
                if let Some(i) = on.iter().position(|x| x == f) {
                    on.remove(i);
                }
            }
            _ => {}
        }
    }
    on
}

/// I1 on the store's `active` (epochs grow), I2 on automatic moves (a quorum of views, no
/// pause). Returns every `active` written, in time order.
fn store_rules(entries: &[&Entry], rules: &Rules, out: &mut Vec<Violation>) -> Vec<Active> {
    struct Cluster {
        keys: BTreeMap<String, String>,
        active: Option<Active>,
        /// Whether the views hold a quorum against `active` now, and when they last did.
        quorum: bool,
        quorum_until: Option<f64>,
    }
    let mut clusters: HashMap<String, Cluster> = HashMap::new();
    // Each cluster's writes in its own revision order.
    let mut writes: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| matches!(e.what, What::Store { .. }))
        .collect();
    let mut first: HashMap<&str, f64> = HashMap::new();
    for e in writes.iter().copied() {
        if let What::Store { cluster, .. } = &e.what {
            first.entry(cluster.as_str()).or_insert(e.at);
        }
    }
    let order = |e: &Entry| match &e.what {
        What::Store {
            cluster, revision, ..
        } => (
            first.get(cluster.as_str()).copied().unwrap_or(f64::MAX),
            *revision,
        ),
        _ => (f64::MAX, 0),
    };
    writes.sort_by(|a, b| {
        let (fa, ra) = order(a);
        let (fb, rb) = order(b);
        fa.total_cmp(&fb).then(ra.cmp(&rb))
    });
    let mut actives = Vec::new();
    for e in writes {
        let What::Store {
            cluster,
            key,
            value,
            ..
        } = &e.what
        else {
            continue;
        };
        let c = clusters.entry(cluster.clone()).or_insert(Cluster {
            keys: BTreeMap::new(),
            active: None,
            quorum: false,
            quorum_until: None,
        });
        match value {
            Some(v) => c.keys.insert(key.clone(), v.clone()),
            None => c.keys.remove(key),
        };
        if key == "active" {
            let Some(next) = value.as_deref().and_then(|v| active_of(e.at, cluster, v)) else {
                continue;
            };
            if let Some(prev) = &c.active
                && next.epoch <= prev.epoch
            {
                out.push(Violation {
                    at: e.at,
                    invariant: "I1",
                    what: format!(
                        "active went from {} (epoch {}) to {} (epoch {}): not a new epoch",
                        prev.region, prev.epoch, next.region, next.epoch
                    ),
                });
            }
            if next.reason == "outage" {
                let recent = c
                    .quorum_until
                    .is_some_and(|t| e.at - t <= rules.decision_window);
                if !c.quorum && !recent {
                    out.push(Violation {
                        at: e.at,
                        invariant: "I2",
                        what: format!(
                            "the fleet moved to {} (epoch {}) with no quorum of outage votes \
                             in the views in the {:.0} s before",
                            rules.decision_window, next.region, next.epoch
                        ),
                    });
                }
                if c.keys.contains_key("pause") {
                    out.push(Violation {
                        at: e.at,
                        invariant: "I2",
                        what: format!(
                            "the fleet moved to {} (epoch {}) while paused",
                            next.region, next.epoch
                        ),
                    });
                }
            }
            c.active = Some(next.clone());
            c.quorum = false;
            c.quorum_until = None;
            actives.push(next);
        } else if let Some(active) = &c.active {
            let now = has_quorum(&c.keys, active, rules);
            if c.quorum && !now {
                c.quorum_until = Some(e.at);
            }
            c.quorum = now;
        }
    }
    actives.sort_by(|a, b| a.at.total_cmp(&b.at));
    actives
}

/// Whether the live views hold a quorum of outage votes against `active`.
fn has_quorum(keys: &BTreeMap<String, String>, active: &Active, rules: &Rules) -> bool {
    let views: Vec<Value> = keys
        .iter()
        .filter(|(k, _)| k.starts_with("views/"))
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    let voters: Vec<&Value> = views
        .iter()
        .filter(|v| v["blames_self"] != true && v["local_fault"] != true)
        .collect();
    let votes = voters
        .iter()
        .filter(|v| {
            v["health"] == "outage"
                && v["region"] == active.region.as_str()
                && v["epoch"].as_u64() == Some(active.epoch)
        })
        .count();
    let needed = rules
        .min_voters
        .max((rules.quorum * voters.len() as f64).floor() as usize + 1);
    votes >= needed
}

/// I2, I4 and I5 on the hosts' env writes: each follows an `active` of the store (not one
/// re-created after a wipe with another region than the last decision, nor while the store is
/// lost), once per epoch.
fn env_rules(entries: &[&Entry], actives: &[Active], rules: &Rules, out: &mut Vec<Violation>) {
    let mut down: Vec<(f64, f64)> = Vec::new();
    for e in entries {
        match e.what {
            What::StoreDown => down.push((e.at, f64::MAX)),
            What::StoreUp => {
                if let Some(last) = down.last_mut()
                    && last.1 == f64::MAX
                {
                    last.1 = e.at + rules.after_loss;
                }
            }
            _ => {}
        }
    }
    let mut epochs: HashMap<(usize, String, u64), f64> = HashMap::new();
    for e in entries {
        let What::EnvWrite { host, from, to } = &e.what else {
            continue;
        };
        let t = e.at;
        let before = actives.iter().rev().find(|a| a.at <= t - rules.lag);
        let around = actives
            .iter()
            .filter(|a| a.at > t - rules.lag && a.at <= t + rules.lag);
        let matched = before.into_iter().chain(around).rfind(|a| a.region == *to);
        let lost = down.iter().any(|(a, b)| *a <= t && t <= *b);
        let Some(active) = matched else {
            let now = actives.iter().rev().find(|a| a.at <= t);
            out.push(Violation {
                at: t,
                invariant: if lost { "I5" } else { "I2" },
                what: format!(
                    "h{host} switched {from} -> {to} with no fleet decision for {to} \
                     (active then: {}){}",
                    now.map_or("none".to_owned(), |a| format!(
                        "{} epoch {}",
                        a.region, a.epoch
                    )),
                    if lost {
                        ", while the store was lost"
                    } else {
                        ""
                    }
                ),
            });
            continue;
        };
        if !decided(&active.reason) && !carries_last_decision(actives, active) {
            out.push(Violation {
                at: t,
                invariant: "I5",
                what: format!(
                    "h{host} switched {from} -> {to} to follow an active re-created by the \
                     store (reason {}, epoch {}), not a fleet decision",
                    active.reason, active.epoch
                ),
            });
        }
        let key = (*host, active.cluster.clone(), active.epoch);
        if let Some(first) = epochs.insert(key, t) {
            out.push(Violation {
                at: t,
                invariant: "I4",
                what: format!(
                    "h{host} moved to {to} a second time for epoch {} (first at {first:.1}s)",
                    active.epoch
                ),
            });
        }
    }
}

/// Whether an `active` was written by a fleet decision: an outage's quorum or an operator.
fn decided(reason: &str) -> bool {
    reason == "outage" || reason == "manual"
}

/// Whether a re-created `active` (re-seeded after a wipe) names the region of the last fleet
/// decision before it: following it carries that decision out for the hosts that had not yet
/// moved when the store was wiped, as they would have without the wipe.
fn carries_last_decision(actives: &[Active], active: &Active) -> bool {
    (actives.iter())
        .rfind(|a| a.at < active.at && decided(&a.reason))
        .is_some_and(|last| last.region == active.region)
}

/// I3: the restarts running at once.
fn restart_cap(entries: &[&Entry], rules: &Rules, out: &mut Vec<Violation>) {
    let spans: Vec<(f64, f64, usize, &str)> = entries
        .iter()
        .filter_map(|e| match &e.what {
            What::Restart { host, end, region } => Some((e.at, *end, *host, region.as_str())),
            _ => None,
        })
        .collect();
    let mut over_until = f64::MIN;
    for &(start, ..) in &spans {
        let running: Vec<&(f64, f64, usize, &str)> = spans
            .iter()
            .filter(|(s, e, ..)| *s <= start && start < *e)
            .collect();
        if running.len() > rules.cap && start >= over_until {
            over_until = running.iter().map(|r| r.1).fold(f64::MIN, f64::max);
            let hosts: Vec<String> = running
                .iter()
                .map(|(s, e, h, r)| format!("h{h} for {r} {s:.2}-{e:.2}s"))
                .collect();
            out.push(Violation {
                at: start,
                invariant: "I3",
                what: format!(
                    "{} restarts at once (max_concurrent_restarts {}): {}",
                    running.len(),
                    rules.cap,
                    hosts.join(", ")
                ),
            });
        }
    }
}

/// The most restarts running at the same moment.
pub fn peak(history: &[Entry]) -> usize {
    let spans: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|e| match &e.what {
            What::Restart { end, .. } => Some((e.at, *end)),
            _ => None,
        })
        .collect();
    spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}
