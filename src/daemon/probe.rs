//! The daemon's probe of the active region, built from the configuration: the one `check`
//! makes its single probe with.

use crate::adapters::http::{HttpProbe, Probe, TlsSettings};
use crate::config::{Config, ConfigError};

/// Builds the main probe from the config; a bad CA file is a configuration error.
pub fn main_probe(config: &Config) -> Result<HttpProbe, ConfigError> {
    if let Some(e) = &config.probe.missing_id {
        return Err(e.clone());
    }
    let tls = TlsSettings {
        ca_cert: config.probe.ca_cert.clone(),
        insecure: config.probe.insecure,
        server_name: config.probe.tls_server_name.clone(),
        ..TlsSettings::default()
    };
    let probe = HttpProbe::new(
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
    })?;
    if let Some(region) = starting_region(config) {
        probe.set_region(&region);
    }
    Ok(probe)
}

/// The region a probe starts on: the one the env file names, else the one a daemon would write
/// (the front of the order: the preferred region, else the first of the list). The daemon
/// tells the probe of every change with `Probe::set_region`.
fn starting_region(config: &Config) -> Option<crate::kernel::region::Region> {
    let current = config.env_file.read().ok().flatten();
    current
        .and_then(|c| c.region)
        .and_then(|name| config.region(&name).cloned())
        .or_else(|| config.regions.first().cloned())
}
