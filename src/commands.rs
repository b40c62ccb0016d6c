//! The one-shot commands an operator runs by hand: `switch`, `status`, `check`, `config`.
//! Each returns the process exit code; their output is for people (or JSON where asked).

use anyhow::{Context, Result};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{Config, ConfigError, Failback, human};
use crate::daemon::threshold_text;
use crate::net::TlsSettings;
use crate::probe::{HttpProbe, Probe};
use crate::restart::{Restart, Supervisorctl};

/// Attempts per supervisorctl call for a manual switch before it reports failure.
const SWITCH_ATTEMPTS: u32 = 3;

/// Builds the main probe from the config; a bad CA file is a configuration error.
pub fn main_probe(config: &Config) -> Result<HttpProbe, ConfigError> {
    let tls = TlsSettings {
        ca_cert: config.probe.ca_cert.clone(),
        insecure: config.probe.insecure,
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
    if !config.restart.enabled {
        println!(
            "Wrote region {} and cloud {} to {}; restarted nothing (--no-restart).",
            region.name,
            region.cloud,
            config.env_file.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    info!(
        event = "restarting",
        region = %region.name,
        cloud = %region.cloud,
        "Re-starting application with the new region {} and cloud {}.",
        region.name,
        region.cloud
    );
    let restarter = Supervisorctl::new(config.restart.clone(), Some(SWITCH_ATTEMPTS));
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

/// `status`: what the env file says.
pub fn status(config: &Config, json: bool) -> Result<ExitCode> {
    let path = config.env_file.path.display().to_string();
    let (region, cloud, problem) = match config.env_file.read() {
        Ok(Some(c)) if c.region.is_some() => (c.region, c.cloud, None),
        Ok(Some(_)) => (None, None, Some(format!("{path} names no region"))),
        Ok(None) => (None, None, Some(format!("{path} does not exist"))),
        Err(e) => (None, None, Some(e.to_string())),
    };
    if json {
        let v = serde_json::json!({
            "region": region,
            "cloud": cloud,
            "env_file": path,
            "source": "env_file",
            "problem": problem,
        });
        println!("{v}");
    } else {
        match (&region, &problem) {
            (Some(r), _) => {
                let known = config.region(r).is_some();
                println!(
                    "Active region: {r} (cloud {})",
                    cloud.as_deref().unwrap_or("unknown")
                );
                println!("Env file:      {path}");
                if !known {
                    println!("Warning:       {r} is not in the failover list");
                }
            }
            (None, Some(p)) => println!("No active region: {p}"),
            (None, None) => println!("No active region"),
        }
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

/// Worst-case timings for the effective settings, as lines for `config`.
pub fn timing_budget(config: &Config) -> Vec<String> {
    let p = &config.probe;
    let cadence = p.fail_interval.max(p.timeout);
    let detect = p.interval + p.timeout + config.failover.threshold + cadence;
    let restart = config.restart.timeout * (2 * config.restart.programs.len() as u32);
    let mut lines = vec![
        format!(
            "outage detected at worst {} after it begins (interval {} + timeout {} + threshold {} + one more probe {})",
            human(detect),
            human(p.interval),
            human(p.timeout),
            threshold_text(config.failover.threshold),
            human(cadence)
        ),
        format!(
            "switched at worst {} after it begins, if every supervisorctl call succeeds first time within restart.timeout ({} calls of at most {})",
            human(detect + restart),
            2 * config.restart.programs.len(),
            human(config.restart.timeout)
        ),
    ];
    lines.push(match (config.failover.failback, &config.preferred) {
        (Failback::Auto, Some(pref)) => {
            let c = &config.region_checks;
            let healthy = c.interval * c.rise + c.timeout;
            format!(
                "failback to {pref} at worst {} after it recovers (rise {} x interval {} + timeout {} + failback_after {})",
                human(healthy + config.failover.failback_after),
                c.rise,
                human(c.interval),
                human(c.timeout),
                human(config.failover.failback_after)
            )
        }
        _ => "failback: never automatic (failover.failback = \"never\" or no preferred region)".to_string(),
    });
    lines
}

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
