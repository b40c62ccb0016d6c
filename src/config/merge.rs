//! Flags > environment > config file > defaults, merged once into a `Config`. Every error
//! names the flag, variable or key it came from.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::config::cli::{LogFormat, Options};
use crate::config::file::FileConfig;
use crate::config::human::human;
use crate::config::sections::{build_network, build_probe, build_regions, build_restart};
use crate::config::settings::*;
use crate::config::values::{
    at_least_one, failback, file_duration, is_identifier, parse_listen_addr, pick, positive,
};
use crate::kernel::region::is_safe_token;

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
        let mut warnings = Vec::new();
        let fprobe = file.probe.clone().unwrap_or_default();
        let ffail = file.failover.clone().unwrap_or_default();
        let frestart = file.restart.clone().unwrap_or_default();
        let fenv = file.env_file.clone().unwrap_or_default();
        let fchecks = file.region_checks.clone().unwrap_or_default();
        let fnet = file.network.clone().unwrap_or_default();

        let service = file
            .service
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVICE.to_string());
        if service.trim().is_empty() || service.len() > 100 {
            return Err(ConfigError::new("service", "must be 1 to 100 characters"));
        }

        let (regions, preferred) = build_regions(opts, &file, env, &mut warnings)?;

        let env_file = EnvFile {
            path: opts
                .env_file
                .clone()
                .or(fenv.path)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE)),
            cloud_var: fenv.cloud_var.unwrap_or_else(|| "EXT_CLOUD".to_string()),
            region_var: fenv.region_var.unwrap_or_else(|| "EXT_REGION".to_string()),
        };
        for (key, name) in [
            ("env_file.cloud_var", &env_file.cloud_var),
            ("env_file.region_var", &env_file.region_var),
        ] {
            if !is_identifier(name) {
                return Err(ConfigError::new(
                    key,
                    format!("'{name}' is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"),
                ));
            }
        }
        if env_file.cloud_var == env_file.region_var {
            return Err(ConfigError::new(
                "env_file.region_var",
                "must differ from env_file.cloud_var",
            ));
        }
        if env_file.path.as_os_str().is_empty() || env_file.path.file_name().is_none() {
            return Err(ConfigError::new(
                if opts.env_file.is_some() {
                    "--env-file"
                } else {
                    "env_file.path"
                },
                "must name a file",
            ));
        }

        let probe = build_probe(opts, &fprobe, &regions, env, &mut warnings)?;

        let (threshold, threshold_src) = pick(
            opts.threshold,
            "--threshold",
            file_duration(ffail.threshold.as_ref(), "failover.threshold")?,
            "failover.threshold",
            Duration::from_secs(240),
        );
        positive(threshold, threshold_src)?;
        if threshold < probe.interval {
            return Err(ConfigError::new(
                threshold_src,
                format!(
                    "threshold {} is below the probe interval {}: an outage could never be confirmed",
                    human(threshold),
                    human(probe.interval)
                ),
            ));
        }
        if probe.timeout > threshold {
            return Err(ConfigError::new(
                if opts.timeout.is_some() {
                    "--timeout"
                } else {
                    "probe.timeout"
                },
                format!(
                    "timeout {} is longer than the threshold {}",
                    human(probe.timeout),
                    human(threshold)
                ),
            ));
        }
        let choose = match ffail.choose.as_deref() {
            None | Some("order") => Choose::Order,
            Some("latency") => Choose::Latency,
            Some(other) => {
                return Err(ConfigError::new(
                    "failover.choose",
                    format!("'{other}' is not \"order\" or \"latency\""),
                ));
            }
        };
        let failback = match ffail.failback.as_deref() {
            None => Failback::Never,
            Some(text) => failback(text, "failover.failback")?,
        };
        let failback_after =
            file_duration(ffail.failback_after.as_ref(), "failover.failback_after")?
                .unwrap_or(Duration::from_secs(600));
        positive(failback_after, "failover.failback_after")?;
        let max_switches_per_hour = ffail.max_switches_per_hour.unwrap_or(6);
        if max_switches_per_hour == 0 {
            return Err(ConfigError::new(
                "failover.max_switches_per_hour",
                "must be at least 1 (use `failover-handler pause` to stop automatic switching)",
            ));
        }
        if failback == Failback::Auto && preferred.is_none() {
            warnings.push("failover.failback = \"auto\" has no effect without a preferred region (--region or region)".to_string());
        }

        let region_checks = RegionChecks {
            interval: positive(
                file_duration(fchecks.interval.as_ref(), "region_checks.interval")?
                    .unwrap_or(Duration::from_secs(10)),
                "region_checks.interval",
            )?,
            timeout: positive(
                file_duration(fchecks.timeout.as_ref(), "region_checks.timeout")?
                    .unwrap_or(Duration::from_secs(5)),
                "region_checks.timeout",
            )?,
            rise: at_least_one(fchecks.rise.unwrap_or(2), "region_checks.rise")?,
            fall: at_least_one(fchecks.fall.unwrap_or(2), "region_checks.fall")?,
        };

        let network = build_network(fnet)?;
        let restart = build_restart(opts, frestart)?;

        let (log_format, log_src) = pick(
            opts.log_format,
            "--log-format",
            file.log.as_ref().and_then(|l| l.format),
            "log.format",
            LogFormat::Json,
        );
        let metrics_addr = match (
            &opts.metrics_addr,
            file.metrics.as_ref().and_then(|m| m.addr.clone()),
        ) {
            (Some(a), _) => {
                Some(parse_listen_addr(a).map_err(|e| ConfigError::new("--metrics-addr", e))?)
            }
            (None, Some(a)) => {
                Some(parse_listen_addr(&a).map_err(|e| ConfigError::new("metrics.addr", e))?)
            }
            (None, None) => None,
        };
        if let Some(addr) = metrics_addr.filter(|a| !a.ip().is_loopback()) {
            warnings.push(format!("the metrics listener {addr} is not on loopback: anyone who can reach it can read the status"));
        }
        let datadog = match env("DD_API_KEY").filter(|k| !k.trim().is_empty()) {
            None => None,
            Some(key) => {
                let site = env("DD_SITE")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "datadoghq.com".to_string());
                if !is_safe_token(&site, 253) {
                    return Err(ConfigError::new(
                        "DD_SITE",
                        format!("'{site}' is not a host name"),
                    ));
                }
                let url = match env(DD_URL_VAR).filter(|u| !u.trim().is_empty()) {
                    Some(text) => Url::parse(text.trim())
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                        .ok_or_else(|| {
                            ConfigError::new(DD_URL_VAR, format!("'{text}' is not an http(s) URL"))
                        })?,
                    None => Url::parse(&format!("https://http-intake.logs.{site}/api/v2/logs"))
                        .map_err(|e| ConfigError::new("DD_SITE", format!("'{site}': {e}")))?,
                };
                let proxy = match env(DD_PROXY_VAR).filter(|p| !p.trim().is_empty()) {
                    Some(text) => {
                        let ok = Url::parse(text.trim()).is_ok_and(|u| {
                            matches!(u.scheme(), "http" | "https" | "socks5") && u.host().is_some()
                        });
                        if !ok {
                            // The value may hold a password: it is not repeated.
                            return Err(ConfigError::new(
                                DD_PROXY_VAR,
                                "is not an http(s) proxy URL".to_string(),
                            ));
                        }
                        Some(Secret::new(text.trim()))
                    }
                    None => None,
                };
                Some(DatadogSettings {
                    api_key: Secret::new(key.trim()),
                    site,
                    url,
                    proxy,
                    no_proxy: env("DD_PROXY_NO_PROXY").filter(|p| !p.trim().is_empty()),
                })
            }
        };
        if probe.insecure {
            warnings.push("TLS verification of the probe is off (--insecure)".to_string());
        }

        let mut config = Config {
            service,
            regions,
            preferred,
            env_file,
            probe,
            failover: FailoverSettings {
                threshold,
                choose,
                failback,
                failback_after,
                max_switches_per_hour,
            },
            region_checks,
            network,
            restart,
            dry_run: opts.dry_run || file.dry_run.unwrap_or(false),
            log_format,
            log_format_explicit: log_src != "default",
            state_dir: opts
                .state_dir
                .clone()
                .or(file.state_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            metrics_addr,
            datadog,
            fleet: crate::config::fleet::build(file.fleet, &crate::config::fleet::hostname, env)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

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
