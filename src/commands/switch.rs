//! `switch REGION` and `switch --unpin`: a manual switch that pins its region. Switches queue
//! on their own lock for the whole switch; the env file's lock, which the daemon also takes,
//! is held only around the write and the pin.

use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::adapters::files::StateDir;
use crate::adapters::files::envfile::SwitchTurn;
use crate::adapters::supervisor::Restart;
use crate::adapters::supervisor::Restarter;
use crate::adapters::supervisor::preflight;
use crate::config::{Config, ConfigError};
use crate::daemon::actuator::{Actuator, Marker};
use crate::kernel::region::Region;
use crate::report::event::{Command, Event, Place, SwitchReason};
use crate::report::{logging, told};

/// Attempts per supervisorctl call for a manual switch before it reports failure.
const SWITCH_ATTEMPTS: u32 = 3;

/// `switch REGION`: write the env file, pin, restart, exit.
pub async fn switch(config: &Config, name: &str) -> Result<ExitCode> {
    let region = known_region(config, name)?;
    let current = config.env_file.read().ok().flatten().and_then(|c| c.region);
    if config.dry_run {
        dry_run(config, &region, &current);
        return Ok(ExitCode::SUCCESS);
    }
    // Checked before the lock is taken: supervisord may be slow to answer (each call has its
    // deadline), and the daemon's own failover must never wait for that.
    if config.restart.enabled && !names(&current, &region) {
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
    let turn = take_turn(config, &region)?;
    let state = StateDir::open(&config.state_dir);
    told::state_dir(&state, &config.state_dir);
    let restarter = Restarter::new(config.restart.clone(), Some(SWITCH_ATTEMPTS))
        .telling(told::restart_steps());
    let actuator = Actuator::new(config.env_file.clone(), state, restarter);
    if !write_and_pin(config, &actuator, &region)? {
        return Ok(ExitCode::SUCCESS);
    }
    if !config.restart.enabled {
        println!(
            "Wrote region {} and cloud {} to {}; restarted nothing (--no-restart).",
            region.name,
            region.cloud,
            config.env_file.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    restart(config, &actuator, &region).await?;
    drop(turn);
    Ok(ExitCode::SUCCESS)
}

/// The region named `name`, or a configuration error naming the known ones.
fn known_region(config: &Config, name: &str) -> Result<Region, ConfigError> {
    let region = config.region(name).ok_or_else(|| {
        let known: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
        ConfigError::new(
            "switch",
            format!("unknown region '{name}' (known: {})", known.join(", ")),
        )
    })?;
    Ok(region.clone())
}

/// Whether the env file's region (`current`) is `region` already.
fn names(current: &Option<String>, region: &Region) -> bool {
    (current.as_deref()).is_some_and(|c| c.eq_ignore_ascii_case(&region.name))
}

fn say_already(region: &Region) {
    println!(
        "{} (cloud {}) is already the active region: nothing written, nothing restarted.",
        region.name, region.cloud
    );
}

/// `--dry-run`: what the switch would do.
fn dry_run(config: &Config, region: &Region, current: &Option<String>) {
    if names(current, region) {
        say_already(region);
        return;
    }
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

/// Waits for this switch's turn, saying so when another switch holds it.
fn take_turn(config: &Config, region: &Region) -> Result<SwitchTurn> {
    let env_file = &config.env_file;
    if let Some(turn) = env_file.try_switch_turn()? {
        return Ok(turn);
    }
    logging::event(&Event::Command(Command::SwitchWaiting {
        region: region.name.clone(),
        lock: env_file.switch_lock_path().display().to_string(),
        env_file: env_file.path.display().to_string(),
    }));
    Ok(env_file.switch_turn()?)
}

/// Writes `region` under the env file's lock (the daemon holds it only while it writes, so
/// this wait is short) and pins it; false when it was active already (pinned all the same).
fn write_and_pin<R: Restart>(
    config: &Config,
    actuator: &Actuator<R>,
    region: &Region,
) -> Result<bool> {
    let lock = config.env_file.lock()?;
    let current = config.env_file.read().ok().flatten().and_then(|c| c.region);
    if names(&current, region) {
        say_already(region);
        pin_region(config, actuator, &region.name);
        return Ok(false);
    }
    actuator.write_locked(&lock, region)?;
    logging::event(&Event::Command(Command::ManualSwitch {
        at: place(region),
        previous_region: current,
        path: config.env_file.path.display().to_string(),
    }));
    pin_region(config, actuator, &region.name);
    Ok(true)
}

/// Restarts the programs for `region` under the switch's mark: a running daemon reads it,
/// and takes the tunnel's refusals until it is removed, when the restart ends however it
/// ends, for this switch's own doing.
async fn restart<R: Restart>(
    config: &Config,
    actuator: &Actuator<R>,
    region: &Region,
) -> Result<()> {
    logging::event(&Event::Restarting {
        at: place(region),
        reason: SwitchReason::Manual,
    });
    let cancel = CancellationToken::new();
    let took = actuator.restart(&region.name, Marker::Switch, &cancel, None);
    let took = took.await.with_context(|| {
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
    Ok(())
}

fn place(region: &Region) -> Place {
    Place {
        region: region.name.clone(),
        cloud: region.cloud.clone(),
    }
}

/// Pins `name` in the state dir, so that no automatic failback moves away from it.
fn pin_region<R: Restart>(config: &Config, actuator: &Actuator<R>, name: &str) {
    if actuator.state().path().is_none() {
        println!("Could not pin {name}: the state directory is not usable.");
        return;
    }
    match actuator.pin(name) {
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
    match crate::adapters::files::pin::read(&state) {
        None => println!("No region is pinned."),
        Some(name) => {
            crate::adapters::files::pin::clear(&state)
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
