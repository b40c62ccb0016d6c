//! `switch REGION` and `switch --unpin`: a manual switch that pins its region. Switches queue
//! on their own lock for the whole switch; the env file's lock, which the daemon also takes,
//! is held only around the write and the pin.

use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::adapters::preflight;
use crate::adapters::restart::Restart;
use crate::adapters::restart_path::Restarter;
use crate::adapters::state::StateDir;
use crate::adapters::switch_mark::Mark;
use crate::config::{Config, ConfigError};
use crate::report::event::{Command, Event, Place, SwitchReason};
use crate::report::{logging, told};

/// Attempts per supervisorctl call for a manual switch before it reports failure.
const SWITCH_ATTEMPTS: u32 = 3;

/// `switch REGION`: write the env file, restart, exit.
pub async fn switch(config: &Config, name: &str) -> Result<ExitCode> {
    let region = config
        .region(name)
        .ok_or_else(|| {
            let known: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
            ConfigError::new(
                "switch",
                format!("unknown region '{name}' (known: {})", known.join(", ")),
            )
        })?
        .clone();
    let env_file = &config.env_file;
    let active = |current: &Option<String>| {
        current
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(&region.name))
    };
    let already = || {
        println!(
            "{} (cloud {}) is already the active region: nothing written, nothing restarted.",
            region.name, region.cloud
        );
    };
    let current = env_file.read().ok().flatten().and_then(|c| c.region);
    if config.dry_run {
        if active(&current) {
            already();
        } else {
            println!(
                "Dry run: would write region {} and cloud {} to {}{}.",
                region.name,
                region.cloud,
                config.env_file.path.display(),
                if config.restart.enabled {
                    " and restart the programs"
                } else {
                    ""
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Checked before the lock is taken: supervisord may be slow to answer (each call has its
    // deadline), and the daemon's own failover must never wait for that.
    if config.restart.enabled && !active(&current) {
        preflight::ready(&config.restart).await.map_err(|why| {
            anyhow::anyhow!(
                "switch to {} refused before writing anything: {why}; the env file still names {}, nothing was restarted",
                region.name,
                current.as_deref().unwrap_or("no region")
            )
        })?;
    }
    // Held across the write and the restart, so that two switches run one after the other
    // and the last one wins whole; a killed switch releases it with its process. The daemon
    // never takes it: a restart that hangs here holds up no failover.
    let turn = match env_file.try_switch_turn()? {
        Some(turn) => turn,
        None => {
            logging::event(&Event::Command(Command::SwitchWaiting {
                region: region.name.clone(),
                lock: env_file.switch_lock_path().display().to_string(),
                env_file: env_file.path.display().to_string(),
            }));
            env_file.switch_turn()?
        }
    };
    let state = StateDir::open(&config.state_dir);
    told::state_dir(&state, &config.state_dir);
    // The env file's lock: the daemon holds it only while it writes, so this wait is short.
    let lock = env_file.lock()?;
    let current = env_file.read().ok().flatten().and_then(|c| c.region);
    if active(&current) {
        already();
        pin_region(config, &state, &region.name);
        return Ok(ExitCode::SUCCESS);
    }
    lock.write(&region)?;
    logging::event(&Event::Command(Command::ManualSwitch {
        at: Place {
            region: region.name.clone(),
            cloud: region.cloud.clone(),
        },
        previous_region: current.clone(),
        path: config.env_file.path.display().to_string(),
    }));
    pin_region(config, &state, &region.name);
    drop(lock);
    if !config.restart.enabled {
        println!(
            "Wrote region {} and cloud {} to {}; restarted nothing (--no-restart).",
            region.name,
            region.cloud,
            config.env_file.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    logging::event(&Event::Restarting {
        at: Place {
            region: region.name.clone(),
            cloud: region.cloud.clone(),
        },
        reason: SwitchReason::Manual,
    });
    let restarter = Restarter::new(config.restart.clone(), Some(SWITCH_ATTEMPTS))
        .telling(told::restart_steps());
    let cancel = CancellationToken::new();
    // A running daemon reads this mark: the tunnel's refusals until it is removed, when the
    // restart ends however it ends, are this switch's own doing.
    let mark = mark_restart(config, &state, &region.name);
    let took = restarter.restart(&cancel).await;
    drop(mark);
    let took = took.with_context(|| {
        format!(
            "the env file names {} now, but restarting the programs failed; run the switch again or restart them with supervisorctl",
            region.name
        )
    })?;
    println!(
        "Switched to region {} (cloud {}): env file written, {} programs restarted in {} ms.",
        region.name,
        region.cloud,
        config.restart.programs.len(),
        took.as_millis()
    );
    drop(turn);
    Ok(ExitCode::SUCCESS)
}

/// Marks the state dir while this switch restarts the programs for `name`; without it a
/// running daemon tells the tunnel's restart as an outage, and the switch goes on all the same.
fn mark_restart(config: &Config, state: &StateDir, name: &str) -> Option<Mark> {
    // An unusable state dir was said when it was opened.
    state.path()?;
    match Mark::begin(state, name) {
        Ok(mark) => Some(mark),
        Err(e) => {
            logging::event(&Event::Command(Command::SwitchMarkFailed {
                region: name.to_string(),
                error: e.to_string(),
                dir: config.state_dir.display().to_string(),
            }));
            None
        }
    }
}

/// Pins `name` in the state dir, so that no automatic failback moves away from it.
fn pin_region(config: &Config, state: &StateDir, name: &str) {
    if state.path().is_none() {
        println!("Could not pin {name}: the state directory is not usable.");
        return;
    }
    match crate::adapters::pin::write(state, name) {
        Ok(()) => {
            logging::event(&Event::Command(Command::Pinned {
                region: name.to_string(),
                source: "switch",
            }));
            println!(
                "Pinned {name}: no automatic failback away from it until the next outage or `failover-handler switch --unpin`."
            );
        }
        Err(e) => println!(
            "Could not pin {name} in {}: {e}",
            config.state_dir.display()
        ),
    }
}

/// `switch --unpin`: removes the pin of a manual switch, so automatic failback may apply again.
pub fn unpin(config: &Config) -> Result<ExitCode> {
    let state = StateDir::read_only(&config.state_dir);
    match crate::adapters::pin::read(&state) {
        None => println!("No region is pinned."),
        Some(name) => {
            crate::adapters::pin::clear(&state)
                .with_context(|| format!("removing the pin in {}", config.state_dir.display()))?;
            logging::event(&Event::Command(Command::Unpinned {
                region: name.clone(),
                reason: "unpin",
            }));
            println!(
                "Unpinned {name}: automatic failback may apply again (a running daemon sees it at its next probe)."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
