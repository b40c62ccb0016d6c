//! The TOML config file as written by users: every key optional, unknown keys refused.
//! Values are kept raw here (durations as text) and validated when merged into `Config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::config::cli::LogFormat;
use crate::config::redact;

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub service: Option<String>,
    pub region: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub dry_run: Option<bool>,
    pub regions: Option<Vec<FileRegion>>,
    pub env_file: Option<FileEnvFile>,
    pub probe: Option<FileProbe>,
    pub failover: Option<FileFailover>,
    pub region_checks: Option<FileRegionChecks>,
    pub network: Option<FileNetwork>,
    pub restart: Option<FileRestart>,
    pub log: Option<FileLog>,
    pub metrics: Option<FileMetrics>,
    pub fleet: Option<crate::config::fleet::FileFleet>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegion {
    pub name: String,
    pub cloud: String,
    pub health_url: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileEnvFile {
    pub path: Option<PathBuf>,
    pub cloud_var: Option<String>,
    pub region_var: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileProbe {
    pub url: Option<String>,
    pub interval: Option<String>,
    pub fail_interval: Option<String>,
    pub timeout: Option<String>,
    pub startup_grace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub insecure: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileFailover {
    pub threshold: Option<String>,
    pub choose: Option<String>,
    pub failback: Option<String>,
    pub failback_after: Option<String>,
    pub max_switches_per_hour: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegionChecks {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileNetwork {
    pub reference: Option<Vec<String>>,
    pub latency_file: Option<PathBuf>,
    pub throughput_url: Option<String>,
    pub min_mbps: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileRestart {
    pub via: Option<String>,
    pub supervisorctl: Option<String>,
    pub args: Option<Vec<String>>,
    pub programs: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub no_restart: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    pub format: Option<LogFormat>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetrics {
    pub addr: Option<String>,
}

impl FileConfig {
    /// Reads and parses `path`; errors are one line naming the file and the key.
    pub fn load(path: &Path, origin: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                origin,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        Self::parse(&text)
            .map_err(|message| ConfigError::new(format!("config file {}", path.display()), message))
    }

    /// Parses TOML text; the error is one line with the line number and the offending key.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = e.message().replace('\n', " ");
            match line {
                Some(n) => format!("line {n}: {message}"),
                None => message,
            }
        })
    }
}

/// The effective configuration written back as a config file (secrets left out).
pub fn effective(c: &crate::config::Config) -> Result<String, toml::ser::Error> {
    let d = |d: std::time::Duration| Some(crate::config::human(d));
    let file = FileConfig {
        service: Some(c.service.clone()),
        region: c.preferred.clone(),
        state_dir: Some(c.state_dir.clone()),
        dry_run: Some(c.dry_run),
        regions: Some(
            c.regions
                .iter()
                .map(|r| FileRegion {
                    name: r.name.clone(),
                    cloud: r.cloud.clone(),
                    health_url: r.health_url.as_ref().map(|t| redact::url(&t.to_string())),
                })
                .collect(),
        ),
        env_file: Some(FileEnvFile {
            path: Some(c.env_file.path.clone()),
            cloud_var: Some(c.env_file.cloud_var.clone()),
            region_var: Some(c.env_file.region_var.clone()),
        }),
        probe: Some(FileProbe {
            url: Some(redact::url(&c.probe.url_template)),
            interval: d(c.probe.interval),
            fail_interval: d(c.probe.fail_interval),
            timeout: d(c.probe.timeout),
            startup_grace: d(c.probe.startup_grace),
            ca_cert: c.probe.ca_cert.clone(),
            tls_server_name: c.probe.tls_server_name.clone(),
            insecure: Some(c.probe.insecure),
            headers: Some(
                c.probe
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        // Only the well-known default (the hash of an empty body) is shown:
                        // any value a user set may be a credential.
                        let default = crate::config::DEFAULT_SIG_HEADER.1;
                        let shown = if v.to_str().is_ok_and(|v| v == default) {
                            default.to_string()
                        } else {
                            "<redacted>".to_string()
                        };
                        (k.to_string(), shown)
                    })
                    .collect(),
            ),
        }),
        failover: Some(FileFailover {
            threshold: d(c.failover.threshold),
            choose: Some(match c.failover.choose {
                crate::config::Choose::Order => "order".into(),
                crate::config::Choose::Latency => "latency".into(),
            }),
            failback: Some(match c.failover.failback {
                crate::config::Failback::Never => "never".into(),
                crate::config::Failback::Auto => "auto".into(),
            }),
            failback_after: d(c.failover.failback_after),
            max_switches_per_hour: Some(c.failover.max_switches_per_hour),
        }),
        region_checks: Some(FileRegionChecks {
            interval: d(c.region_checks.interval),
            timeout: d(c.region_checks.timeout),
            rise: Some(c.region_checks.rise),
            fall: Some(c.region_checks.fall),
        }),
        network: Some(FileNetwork {
            // None set: left out, as the example file leaves it (a placeholder that cannot
            // answer would make every outage look local).
            reference: (!c.network.reference.is_empty()).then(|| {
                c.network
                    .reference
                    .iter()
                    .map(|t| redact::url(&t.to_string()))
                    .collect()
            }),
            latency_file: c.network.latency_file.clone(),
            throughput_url: c
                .network
                .throughput_url
                .as_ref()
                .map(|u| redact::url(u.as_str())),
            min_mbps: Some(c.network.min_mbps),
        }),
        restart: Some(FileRestart {
            via: Some(c.restart.via.as_str().to_string()),
            supervisorctl: Some(c.restart.supervisorctl.clone()),
            args: Some(redact::args(&c.restart.args)),
            programs: Some(c.restart.programs.clone()),
            timeout: d(c.restart.timeout),
            no_restart: Some(!c.restart.enabled),
        }),
        log: Some(FileLog {
            format: Some(c.log_format),
        }),
        metrics: Some(FileMetrics {
            addr: c.metrics_addr.map(|a| a.to_string()),
        }),
        fleet: c.fleet.as_ref().map(crate::config::fleet::effective),
    };
    toml::to_string(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = FileConfig::parse("[probe]\nbogus = 1\n").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(!err.contains('\n'));
        let err = FileConfig::parse("colour = \"red\"").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn wrong_types_are_named() {
        let err = FileConfig::parse("[failover]\nmax_switches_per_hour = \"six\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = FileConfig::parse("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn not_toml_is_an_error() {
        assert!(FileConfig::parse("this is { not toml").is_err());
    }

    mod properties {
        use super::*;
        use crate::config::Config;
        use crate::kernel::region::is_safe_token;
        use proptest::prelude::*;

        /// A TOML basic string holding `v` (JSON escapes are TOML escapes).
        fn quoted(v: &str) -> String {
            serde_json::Value::String(v.to_string()).to_string()
        }

        /// Config files built from the contract's keys with arbitrary values.
        fn config_text() -> impl Strategy<Value = String> {
            let value = prop_oneof!["[A-Za-z0-9._:-]{1,12}", ".{0,12}", "[0-9]{1,4}(ms|s|m|h)?"];
            let region = (value.clone(), value.clone()).prop_map(|(n, c)| {
                format!(
                    "[[regions]]\nname = {}\ncloud = {}\n",
                    quoted(&n),
                    quoted(&c)
                )
            });
            let table = (
                prop_oneof![
                    Just("probe"),
                    Just("failover"),
                    Just("restart"),
                    Just("env_file")
                ],
                prop_oneof![
                    Just("interval"),
                    Just("timeout"),
                    Just("threshold"),
                    Just("fail_interval"),
                    Just("cloud_var"),
                    Just("region_var"),
                    Just("url")
                ],
                value.clone(),
            )
                .prop_map(|(t, k, v)| format!("[{t}]\n{k} = {}\n", quoted(&v)));
            let top = value.prop_map(|v| format!("region = {}\n", quoted(&v)));
            proptest::collection::vec(prop_oneof![region, table, top], 0..6)
                .prop_map(|parts| parts.concat())
        }

        proptest! {
            #[test]
            fn parsing_any_text_never_panics(text in "(?s).{0,400}") {
                let _ = FileConfig::parse(&text);
            }

            #[test]
            fn an_accepted_config_holds_only_safe_regions_and_workable_timings(text in config_text()) {
                let Ok(file) = FileConfig::parse(&text) else {
                    return Ok(());
                };
                let opts = crate::config::cli::Options::default();
                let env = |k: &str| {
                    k.starts_with("CONNECTION_KEEPALIVE_").then(|| "x".to_string())
                };
                if let Ok(c) = Config::from_file(&opts, file, &env) {
                    prop_assert!(!c.regions.is_empty());
                    for r in &c.regions {
                        prop_assert!(is_safe_token(&r.name, 64) && is_safe_token(&r.cloud, 253));
                    }
                    prop_assert!(c.failover.threshold >= c.probe.interval);
                    prop_assert!(c.probe.timeout <= c.failover.threshold);
                }
            }
        }
    }
}
