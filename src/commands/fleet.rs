//! `switch --fleet`, `pause --fleet`, `resume --fleet` and `status --fleet`: the whole fleet,
//! through the store. The handlers do the rest: each follows `active` within a restart slot.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::adapters::etcd::{Etcd, Snapshot, Store};
use crate::config::fleet::FleetSettings;
use crate::config::{Config, ConfigError};

fn settings(config: &Config) -> Result<&FleetSettings> {
    config.fleet.as_ref().ok_or_else(|| {
        ConfigError::new(
            "--fleet",
            "needs a [fleet] section in the config file (see docs/fleet.md)",
        )
        .into()
    })
}

fn store(s: &FleetSettings) -> Result<Store> {
    Ok(Store::new(Etcd::new(s)?, s.prefix()))
}

/// Moves every host of the fleet to `region`.
pub async fn switch_fleet(config: &Config, region: &str) -> Result<ExitCode> {
    let s = settings(config)?;
    let Some(target) = config.region(region) else {
        return Err(
            ConfigError::new("REGION", format!("'{region}' is not in the failover list")).into(),
        );
    };
    let active = store(s)?
        .switch(&target.name, &format!("switch --fleet on {}", s.host))
        .await
        .context("cannot set the fleet's active region")?;
    println!(
        "Fleet {} moves to region {} (epoch {}): every handler follows, at most {} restarting at once.",
        s.name, active.region, active.epoch, s.max_concurrent_restarts
    );
    Ok(ExitCode::SUCCESS)
}

/// Holds (or resumes) automatic moves of the whole fleet.
pub async fn pause_fleet(config: &Config, pause: bool) -> Result<ExitCode> {
    let s = settings(config)?;
    let by = format!(
        "paused by {} at {}",
        s.host,
        crate::config::timestamp(std::time::SystemTime::now())
    );
    store(s)?
        .set_pause(pause.then_some(by.as_str()))
        .await
        .context("cannot reach the fleet's store")?;
    if pause {
        println!(
            "Fleet {} paused: no automatic move until `resume --fleet` (a switch --fleet still moves it).",
            s.name
        );
    } else {
        println!("Fleet {} resumed: automatic moves apply again.", s.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every host's view, the leader, the epoch and the slots.
pub async fn status_fleet(config: &Config, as_json: bool) -> Result<ExitCode> {
    let s = settings(config)?;
    let snap = store(s)?
        .snapshot()
        .await
        .context("cannot reach the fleet's store")?;
    let v = describe(s, &snap);
    if as_json {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("fleet:   {}", s.name);
    match &snap.active {
        Some((a, _)) => println!(
            "active:  {} (epoch {}, {} by {})",
            a.region, a.epoch, a.reason, a.by
        ),
        None => println!("active:  none yet"),
    }
    println!("leader:  {}", v["leader"].as_str().unwrap_or("none"));
    println!("paused:  {}", v["paused"].as_str().unwrap_or("no"));
    println!("hosts:");
    for h in v["hosts"].as_array().into_iter().flatten() {
        if let Some(to) = h["moving_to"].as_str() {
            let how = h["restart"].as_str().map(|r| format!(", {r}"));
            println!(
                "  {:<20} {:<8} -> {to}{}",
                h["host"].as_str().unwrap_or_default(),
                h["region"].as_str().unwrap_or_default(),
                how.unwrap_or_default()
            );
            continue;
        }
        println!(
            "  {:<20} {:<8} {:<8}{}",
            h["host"].as_str().unwrap_or_default(),
            h["region"].as_str().unwrap_or_default(),
            h["health"].as_str().unwrap_or_default(),
            if h["blames_self"] == true {
                " (blames its own network: abstains)"
            } else if h["local_fault"] == true {
                " (a fault of its own: abstains)"
            } else {
                ""
            }
        );
    }
    let slots = v["slots"].as_array().cloned().unwrap_or_default();
    if !slots.is_empty() {
        println!("restart slots:");
        for slot in slots {
            println!(
                "  epoch {} {} {}",
                slot["epoch"],
                slot["host"].as_str().unwrap_or_default(),
                if slot["holds"] == true {
                    "restarting"
                } else {
                    "waiting"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(s: &FleetSettings, snap: &Snapshot) -> Value {
    let max = s.max_concurrent_restarts as usize;
    let holders = snap.holders(max);
    let active = snap.active.as_ref().map(|(a, _)| a);
    let hosts: Vec<Value> = snap
        .views
        .iter()
        .map(|(host, v)| {
            // A host behind the fleet's epoch on another region is on its way there: its
            // view (health included) is of the region it leaves.
            let moving_to = active
                .filter(|a| v.epoch < a.epoch && !v.region.eq_ignore_ascii_case(&a.region))
                .map(|a| a.region.as_str());
            let slot = snap.slots.iter().find(|slot| slot.host == *host);
            let restart = slot.map(|_| {
                if holders.contains(&host.as_str()) {
                    "restarting"
                } else {
                    "waiting"
                }
            });
            json!({
                "moving_to": moving_to,
                "restart": restart,
                "host": host,
                "region": v.region,
                "health": v.health.as_str(),
                "epoch": v.epoch,
                "blames_self": v.blames_self,
                "local_fault": v.local_fault,
                "standbys": v.standbys.iter().map(|(r, up)| json!({"region": r, "up": up})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let slots: Vec<Value> = snap
        .slots
        .iter()
        .map(|slot| {
            let holds = holders.contains(&slot.host.as_str());
            json!({"epoch": slot.epoch, "host": slot.host, "holds": holds})
        })
        .collect();
    json!({
        "fleet": s.name,
        "active": snap.active.as_ref().map(|(a, _)| json!({"region": a.region, "epoch": a.epoch, "reason": a.reason, "by": a.by})),
        "leader": snap.leader.as_ref().map(|l| l.host.clone()),
        "paused": snap.paused,
        "hosts": hosts,
        "slots": slots,
        "max_concurrent_restarts": s.max_concurrent_restarts,
    })
}
