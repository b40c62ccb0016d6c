//! Flags > environment > config file > defaults, merged once into a `Config`, one section at a
//! time, each value read through the table of settings (`config::table`). Every error names
//! the flag, variable or key it came from.

use crate::config::cli::Options;
use crate::config::duration_text;
use crate::config::file::FileConfig;
use crate::config::probe::build_probe;
use crate::config::sections::{build_network, build_regions, build_restart};
use crate::config::setting::Sources;
use crate::config::settings::*;
use crate::config::table;

/// Reads the process environment; tests hand in a closure instead.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Merges flags, environment (through `env`), the config file and defaults.
    pub fn build(
        opts: &Options,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = match opts.config.as_deref() {
            Some(p) if !p.as_os_str().is_empty() => {
                let origin = if env("FAILOVER_HANDLER_CONFIG")
                    .is_some_and(|v| std::path::Path::new(&v) == p)
                {
                    "FAILOVER_HANDLER_CONFIG"
                } else {
                    "--config"
                };
                FileConfig::load(p, origin)?
            }
            _ => FileConfig::default(),
        };
        Config::from_file(opts, file, env)
    }

    /// Merges flags, environment and an already parsed config file (the file may hold
    /// anything a user can write: fuzzed as such).
    pub fn from_file(
        opts: &Options,
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let src = Sources {
            opts,
            file: &file,
            env,
        };
        let mut warnings = Vec::new();
        let service = src.value(&table::SERVICE)?;
        let (regions, preferred) = build_regions(&src, &mut warnings)?;
        let env_file = build_env_file(&src)?;
        let probe = build_probe(&src, &regions, &mut warnings)?;
        let failover = build_failover(&src, &probe, preferred.is_some(), &mut warnings)?;
        let region_checks = RegionChecks {
            interval: src.value(&table::CHECK_INTERVAL)?,
            timeout: src.value(&table::CHECK_TIMEOUT)?,
            rise: src.value(&table::RISE)?,
            fall: src.value(&table::FALL)?,
        };
        let network = build_network(&src)?;
        let restart = build_restart(&src)?;
        let log_format = src.get(&table::LOG_FORMAT)?;
        let metrics_addr = src.value(&table::METRICS_ADDR)?;
        if let Some(addr) = metrics_addr.filter(|a| !a.ip().is_loopback()) {
            warnings.push(format!("the metrics listener {addr} is not on loopback: anyone who can reach it can read the status"));
        }
        let datadog = crate::config::datadog::build(env)?;
        if probe.insecure {
            warnings.push("TLS verification of the probe is off (--insecure)".to_string());
        }
        let dry_run = src.value(&table::DRY_RUN)?;
        let state_dir = src.value(&table::STATE_DIR)?;
        let fleet = crate::config::fleet::build(file.fleet, &crate::config::fleet::hostname, env)?;
        let mut config = Config {
            service,
            regions,
            preferred,
            env_file,
            probe,
            failover,
            region_checks,
            network,
            restart,
            dry_run,
            log_format: log_format.value,
            log_format_explicit: !log_format.default,
            state_dir,
            metrics_addr,
            datadog,
            fleet,
            warnings,
        };
        if let Some(w) = config.fleet.as_ref().and_then(|f| f.plaintext_warning()) {
            config.warnings.push(w);
        }
        let doubtful = crate::config::budget::doubtful(&config);
        config.warnings.extend(doubtful);
        Ok(config)
    }
}

/// `[env_file]`: where the env file is and the names of its two variables.
fn build_env_file(src: &Sources) -> Result<EnvFile, ConfigError> {
    let env_file = EnvFile {
        path: src.value(&table::ENV_FILE)?,
        cloud_var: src.value(&table::CLOUD_VAR)?,
        region_var: src.value(&table::REGION_VAR)?,
    };
    if env_file.cloud_var == env_file.region_var {
        return Err(ConfigError::new(
            "env_file.region_var",
            "must differ from env_file.cloud_var",
        ));
    }
    Ok(env_file)
}

/// `[failover]`, with the threshold checked against the probe's timings.
fn build_failover(
    src: &Sources,
    probe: &ProbeSettings,
    has_preferred: bool,
    warnings: &mut Vec<String>,
) -> Result<FailoverSettings, ConfigError> {
    let threshold = src.get(&table::THRESHOLD)?;
    if threshold.value < probe.interval {
        return Err(ConfigError::new(
            threshold.origin,
            format!(
                "threshold {} is below the probe interval {}: an outage could never be confirmed",
                duration_text(threshold.value),
                duration_text(probe.interval)
            ),
        ));
    }
    if probe.timeout > threshold.value {
        return Err(ConfigError::new(
            src.get(&table::TIMEOUT)?.origin,
            format!(
                "timeout {} is longer than the threshold {}",
                duration_text(probe.timeout),
                duration_text(threshold.value)
            ),
        ));
    }
    let failback = src.value(&table::FAILBACK)?;
    if failback == Failback::Auto && !has_preferred {
        warnings.push("failover.failback = \"auto\" has no effect without a preferred region (--region or region)".to_string());
    }
    Ok(FailoverSettings {
        threshold: threshold.value,
        choose: src.value(&table::CHOOSE)?,
        failback,
        failback_after: src.value(&table::FAILBACK_AFTER)?,
        max_switches_per_hour: src.value(&table::MAX_SWITCHES_PER_HOUR)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_listen_addr;
    use clap::Parser;
    use std::path::PathBuf;
    use std::time::Duration;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const IDS: &[(&str, &str)] = &[
        ("CONNECTION_KEEPALIVE_ORG_ID", "org1"),
        ("CONNECTION_KEEPALIVE_TXN_ID", "txn1"),
    ];

    fn build(
        args: &[&str],
        env: &'static [(&'static str, &'static str)],
    ) -> Result<Config, ConfigError> {
        let mut argv = vec!["failover-handler"];
        argv.extend_from_slice(args);
        let cli = crate::config::cli::Cli::try_parse_from(argv).unwrap();
        Config::build(&cli.options, &env_of(env))
    }

    #[test]
    fn defaults_match_the_product_contract() {
        let c = build(&[], IDS).unwrap();
        assert_eq!(
            c.probe.url.as_str(),
            "https://localhost:8443/v2/org1/cloudlookup/txn1"
        );
        assert_eq!(c.probe.interval, Duration::from_secs(10));
        assert_eq!(c.probe.timeout, Duration::from_secs(5));
        assert_eq!(c.failover.threshold, Duration::from_secs(240));
        assert_eq!(c.env_file.path, PathBuf::from(DEFAULT_ENV_FILE));
        assert_eq!(c.restart.programs, DEFAULT_PROGRAMS);
        assert_eq!(c.service, DEFAULT_SERVICE);
        let names: Vec<_> = c.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["NAM", "EU", "APAC"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn bad_input_names_its_origin() {
        type Case = (
            &'static [&'static str],
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            (&["--region", "XX"], IDS, "--region"),
            (&["--interval", "0s"], IDS, "--interval"),
            (
                &["--interval", "10s", "--threshold", "5s"],
                IDS,
                "--threshold",
            ),
            (&["--timeout", "5m"], IDS, "--timeout"),
            (&["--interval", "5m"], IDS, "failover.threshold"),
            (
                &["--interval", "1s", "--threshold", "2s"],
                IDS,
                "probe.timeout",
            ),
            (&["--programs=-x"], IDS, "--programs"),
            (&["--restart-via", "ssh"], IDS, "--restart-via"),
            (&["--metrics-addr", "nowhere"], IDS, "--metrics-addr"),
            (&["--probe-url", "ftp://x/"], IDS, "--probe-url"),
            (
                &[],
                &[("EXT_CLOUD_FAILOVER_LIST", "")],
                "EXT_CLOUD_FAILOVER_LIST",
            ),
            (
                &[],
                &[
                    ("DD_API_KEY", "k"),
                    ("DD_SITE", "a b"),
                    ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
                    ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
                ],
                "DD_SITE",
            ),
        ];
        for (args, env, origin) in cases {
            let err = build(args, env).unwrap_err();
            assert_eq!(err.origin, *origin, "args {args:?}: {err}");
        }
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "region = \"APAC\"\n[probe]\ninterval = \"7s\"\ntimeout = \"2s\"\n[[regions]]\nname = \"EU\"\ncloud = \"e\"\n[[regions]]\nname = \"APAC\"\ncloud = \"a\"\nhealth_url = \"tcp://127.0.0.1:1\"\n").unwrap();
        let p = path.to_str().unwrap();
        let c = build(&["-c", p], IDS).unwrap();
        assert_eq!(c.probe.interval, Duration::from_secs(7));
        assert_eq!(c.preferred.as_deref(), Some("APAC"));
        assert_eq!(c.regions[0].name, "APAC");
        assert!(c.has_standby_checks());
        let c = build(&["-c", p, "--interval", "3s", "-r", "eu"], IDS).unwrap();
        assert_eq!(c.probe.interval, Duration::from_secs(3));
        assert_eq!(c.preferred.as_deref(), Some("EU"));
        static WITH_LIST: &[(&str, &str)] = &[
            ("EXT_CLOUD_FAILOVER_LIST", "X=x.example"),
            ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
            ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
        ];
        let c = build(&["-c", p, "-r", "X"], WITH_LIST).unwrap();
        assert_eq!(c.regions.len(), 1, "the environment beats the file");
    }

    #[test]
    fn a_warning_about_a_default_names_its_key() {
        let c = build(&["--interval", "3s"], IDS).unwrap();
        assert_eq!(
            c.warnings,
            [
                "probe.timeout 5s is not below --interval 3s: a hanging probe stretches the probe cadence to the timeout"
            ]
        );
    }

    #[test]
    fn listen_addresses_default_to_loopback() {
        assert_eq!(
            parse_listen_addr("9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(
            parse_listen_addr(":9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(
            parse_listen_addr("localhost:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(
            parse_listen_addr("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
    }

    #[test]
    fn datadog_intake_follows_the_site_unless_overridden() {
        static SITE: &[(&str, &str)] = &[
            ("DD_API_KEY", "k"),
            ("DD_SITE", "datadoghq.eu"),
            ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
            ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
        ];
        let dd = build(&[], SITE).unwrap().datadog.unwrap();
        assert_eq!(
            dd.url.as_str(),
            "https://http-intake.logs.datadoghq.eu/api/v2/logs"
        );
        static OVERRIDE: &[(&str, &str)] = &[
            ("DD_API_KEY", "k"),
            ("FAILOVER_HANDLER_DD_URL", "http://127.0.0.1:9/intake"),
            ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
            ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
        ];
        let dd = build(&[], OVERRIDE).unwrap().datadog.unwrap();
        assert_eq!(dd.url.as_str(), "http://127.0.0.1:9/intake");
        assert_eq!(dd.site, "datadoghq.com");
        static BAD: &[(&str, &str)] = &[
            ("DD_API_KEY", "k"),
            ("FAILOVER_HANDLER_DD_URL", "ftp://x"),
            ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
            ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
        ];
        assert_eq!(build(&[], BAD).unwrap_err().origin, DD_URL_VAR);
    }

    #[test]
    fn the_datadog_agents_proxy_variable_is_read_and_never_repeated() {
        static PROXY: &[(&str, &str)] = &[
            ("DD_API_KEY", "k"),
            ("DD_PROXY_HTTPS", "http://user:s3cret@proxy.example:3128"),
            ("DD_PROXY_NO_PROXY", "a.example b.example"),
            ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
            ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
        ];
        let dd = build(&[], PROXY).unwrap().datadog.unwrap();
        assert_eq!(
            dd.proxy.as_ref().map(Secret::expose),
            Some("http://user:s3cret@proxy.example:3128")
        );
        assert!(!format!("{dd:?}").contains("s3cret"));
        assert_eq!(dd.no_proxy.as_deref(), Some("a.example b.example"));
        static BAD: &[(&str, &str)] = &[
            ("DD_API_KEY", "k"),
            ("DD_PROXY_HTTPS", "s3cret proxy"),
            ("CONNECTION_KEEPALIVE_ORG_ID", "o"),
            ("CONNECTION_KEEPALIVE_TXN_ID", "t"),
        ];
        let e = build(&[], BAD).unwrap_err();
        assert_eq!(e.origin, DD_PROXY_VAR);
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn missing_ids_only_matter_to_commands_that_probe() {
        let c = build(&[], &[("CONNECTION_KEEPALIVE_ORG_ID", "org1")]).unwrap();
        let e = c.probe.missing_id.unwrap();
        assert_eq!(e.origin, "CONNECTION_KEEPALIVE_TXN_ID");
        assert!(build(&[], &[("CONNECTION_KEEPALIVE_ORG_ID", "a b")]).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("abc123");
        assert!(!format!("{s:?}").contains("abc123"));
    }
}
