//! `check`: one probe now, made with the daemon's own probe.

use std::process::ExitCode;

use anyhow::Result;

use crate::adapters::http::Probe;
use crate::config::{Config, redact};
use crate::daemon::main_probe;

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
                redact::url(&config.probe.url_template)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "unhealthy: {label} {}: {}; failed after {took} ms ({})",
                e.kind,
                e.detail,
                redact::url(&config.probe.url_template)
            );
            Ok(ExitCode::from(1))
        }
    }
}
