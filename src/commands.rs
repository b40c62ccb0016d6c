//! The one-shot commands an operator runs by hand: `switch`, `status`, `check`, `config`,
//! `pause`, `resume`.
//! Each returns the process exit code; their output is for people (or JSON where asked).

use anyhow::{Context, Result};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{Config, ConfigError};
use crate::journal::timestamp;
use crate::net::TlsSettings;
use crate::probe::{HttpProbe, Probe};
use crate::restart::Restart;
use crate::restart_path::Restarter;
use crate::state::StateDir;

/// Attempts per supervisorctl call for a manual switch before it reports failure.
const SWITCH_ATTEMPTS: u32 = 3;

/// Builds the main probe from the config; a bad CA file is a configuration error.
pub fn main_probe(config: &Config) -> Result<HttpProbe, ConfigError> {
    if let Some(e) = &config.probe.missing_id {
        return Err(e.clone());
    }
    let tls = TlsSettings {
        ca_cert: config.probe.ca_cert.clone(),
        insecure: config.probe.insecure,
        ..TlsSettings::default()
    };
    HttpProbe::new(
        config.probe.url.clone(),
        config.probe.headers.clone(),
        config.probe.timeout,
        &tls,
    )
    .map_err(|e| {
        let origin = if config.probe.ca_cert.is_some() {
            "--ca-cert"
        } else {
            "--probe-url"
        };
        ConfigError::new(origin, e)
    })
}

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
    // Held until the restart is done, so that two switches run one after the other and the
    // last one wins whole; a killed switch releases it with its process.
    let lock = if config.dry_run {
        None
    } else {
        Some(match env_file.try_lock()? {
            Some(lock) => lock,
            None => {
                info!(
                    event = "switch_waiting",
                    region = %region.name,
                    lock = %env_file.lock_path().display(),
                    "Another switch of {} is in progress: waiting for it to finish",
                    env_file.path.display()
                );
                env_file.lock()?
            }
        })
    };
    let current = env_file.read().ok().flatten().and_then(|c| c.region);
    if current
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case(&region.name))
    {
        println!(
            "{} (cloud {}) is already the active region: nothing written, nothing restarted.",
            region.name, region.cloud
        );
        if !config.dry_run {
            pin_region(config, &region.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(lock) = lock else {
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
        return Ok(ExitCode::SUCCESS);
    };
    lock.write(&region)?;
    info!(
        event = "manual_switch",
        region = %region.name,
        cloud = %region.cloud,
        previous_region = current.as_deref().unwrap_or(""),
        "Switched by hand to region {} and cloud {} in {}",
        region.name,
        region.cloud,
        config.env_file.path.display()
    );
    pin_region(config, &region.name);
    if !config.restart.enabled {
        println!(
            "Wrote region {} and cloud {} to {}; restarted nothing (--no-restart).",
            region.name,
            region.cloud,
            config.env_file.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::restart::announce(&region);
    let restarter = Restarter::new(config.restart.clone(), Some(SWITCH_ATTEMPTS));
    let cancel = CancellationToken::new();
    let took = restarter.restart(&cancel).await.with_context(|| {
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
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// Pins `name` in the state dir, so that no automatic failback moves away from it.
fn pin_region(config: &Config, name: &str) {
    let state = StateDir::open(&config.state_dir);
    if state.path().is_none() {
        println!("Could not pin {name}: the state directory is not usable.");
        return;
    }
    match crate::pin::write(&state, name) {
        Ok(()) => {
            info!(event = "pinned", region = %name, source = "switch", "Pinned region {name}");
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
    match crate::pin::read(&state) {
        None => println!("No region is pinned."),
        Some(name) => {
            crate::pin::clear(&state)
                .with_context(|| format!("removing the pin in {}", config.state_dir.display()))?;
            info!(event = "unpinned", region = %name, reason = "unpin", "Unpinned region {name}");
            println!(
                "Unpinned {name}: automatic failback may apply again (a running daemon sees it at its next probe)."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`: the daemon's live view when it runs, else what the env file says.
pub async fn status(config: &Config, json: bool) -> Result<ExitCode> {
    crate::status::run(config, json).await
}

/// `pause [--for DUR]`: stops automatic switching, for good or for `DUR`.
pub fn pause(config: &Config, duration: Option<Duration>) -> Result<ExitCode> {
    if duration.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::new("--for", "must be greater than zero").into());
    }
    let now = SystemTime::now();
    let p = crate::pause::pause(&config.state_dir, now, duration)?;
    let path = config.state_dir.join(crate::pause::PAUSE_FILE);
    info!(
        event = "pause_requested",
        until = p.until.map(timestamp),
        "Pause requested {}",
        p.describe(now)
    );
    println!(
        "Automatic switching paused {}.\nPause file: {}\nA running daemon obeys at its next probe: it keeps probing and reporting but makes no automatic switch. `failover-handler resume` ends the pause.",
        p.describe(now),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `resume`: restarts automatic switching.
pub fn resume(config: &Config) -> Result<ExitCode> {
    let now = SystemTime::now();
    match crate::pause::resume(&config.state_dir, now)? {
        Some(p) => {
            info!(event = "resume_requested", "Resume requested");
            println!(
                "Automatic switching resumed (the pause was {}).\nA running daemon obeys at its next probe.",
                p.describe(now)
            );
        }
        None => println!("Automatic switching was not paused: nothing to do."),
    }
    Ok(ExitCode::SUCCESS)
}

/// `check`: one probe now; exit 0 healthy, 1 unhealthy.
pub async fn check(config: &Config) -> Result<ExitCode> {
    let probe = main_probe(config)?;
    let active = config
        .env_file
        .read()
        .ok()
        .flatten()
        .and_then(|c| c.region)
        .and_then(|r| config.region(&r).cloned());
    let label = match &active {
        Some(r) => format!("{} {}", r.name, r.cloud),
        None => "(no active region)".to_string(),
    };
    let report = probe.probe().await;
    let took = report.latency.as_millis();
    match report.result {
        Ok(code) => {
            println!(
                "healthy: {label} HTTP {code} in {took} ms ({})",
                config.probe.url_template
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "unhealthy: {label} {}: {} after {took} ms ({})",
                e.kind, e.detail, config.probe.url_template
            );
            Ok(ExitCode::from(1))
        }
    }
}

pub use crate::budget::timing_budget;

/// `config`: the effective configuration as TOML, its timing budget and its warnings.
pub fn print_config(config: &Config) -> Result<ExitCode> {
    println!(
        "# failover-handler effective configuration (flags > environment > config file > defaults)"
    );
    println!("{}", crate::config_file::effective(config)?);
    println!("# Timing budget");
    for line in timing_budget(config) {
        println!("#   {line}");
    }
    for w in &config.warnings {
        println!("# warning: {w}");
    }
    if config.datadog.is_some() {
        println!(
            "# Datadog: events also go to the log intake of DD_SITE (the API key is set; not shown)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
