//! The TOML config file as written by users: every key optional, unknown keys refused.
//! Values are kept raw here (durations as text) and validated when merged into `Config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::config::cli::LogFormat;

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
