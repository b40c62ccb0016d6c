//! `config`: the effective configuration, its worst-case timings and its warnings.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;

pub use crate::config::budget::timing_budget;

/// `config`: the effective configuration as TOML, its timing budget and its warnings.
pub fn print_config(config: &Config) -> Result<ExitCode> {
    println!(
        "# failover-handler effective configuration (flags > environment > config file > defaults)"
    );
    println!("{}", crate::config::show::effective(config)?);
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
