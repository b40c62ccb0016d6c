//! The effective configuration: flags > environment > config file > defaults, merged once into
//! a `Config` whose fields already have their final types. Every error names the flag,
//! variable or key it came from; nothing downstream validates again.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;
use url::Url;

use crate::cli::{LogFormat, Options, parse_duration};
use crate::config_file::FileConfig;
use crate::envfile::EnvFile;
use crate::region::{self, DEFAULT_FAILOVER_LIST, Region, Target, is_safe_token};

pub const DEFAULT_SERVICE: &str = "ext_cloud_outage_handler";
pub const DEFAULT_ENV_FILE: &str = "/opt/application/tmp/ext_cloud.env";
pub const DEFAULT_PROBE_URL: &str = "https://localhost:8443/v2/{org_id}/cloudlookup/{txn_id}";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/failover-handler";
pub const DEFAULT_PROGRAMS: [&str; 3] = ["app:application", "app:cloud-client", "app:stunnel"];
/// The header the old script sent: the SHA-256 of an empty body.
pub const DEFAULT_SIG_HEADER: (&str, &str) = (
    "X-SIG-Sha256",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
);

/// A configuration error: which flag, variable or key, and what is wrong with it.
#[derive(Debug, Clone, Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

/// A value that must never reach a log line, such as an API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub url: Url,
    /// Why `url` cannot be probed yet (an id variable it needs is unset); reported by the
    /// commands that probe, so `switch` and `status` work without the ids.
    pub missing_id: Option<ConfigError>,
    /// The URL before `{org_id}`/`{txn_id}` were filled in: what the config shows.
    pub url_template: String,
    pub interval: Duration,
    /// Probe cadence while failing (defaults to `interval`).
    pub fail_interval: Duration,
    pub timeout: Duration,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choose {
    Order,
    Latency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failback {
    Never,
    Auto,
}

#[derive(Debug, Clone)]
pub struct FailoverSettings {
    pub threshold: Duration,
    pub choose: Choose,
    pub failback: Failback,
    pub failback_after: Duration,
    pub max_switches_per_hour: u32,
}

#[derive(Debug, Clone)]
pub struct RegionChecks {
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub reference: Vec<Target>,
    pub latency_file: Option<PathBuf>,
    pub throughput_url: Option<Url>,
    pub min_mbps: f64,
}

/// How the programs are restarted (`restart.via`, `--restart-via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// supervisord's XML-RPC interface where supervisorctl would reach it, else supervisorctl.
    Auto,
    Xmlrpc,
    Supervisorctl,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Auto => "auto",
            Via::Xmlrpc => "xmlrpc",
            Via::Supervisorctl => "supervisorctl",
        }
    }

    fn parse(text: &str, origin: &str) -> Result<Via, ConfigError> {
        match text {
            "auto" => Ok(Via::Auto),
            "xmlrpc" => Ok(Via::Xmlrpc),
            "supervisorctl" => Ok(Via::Supervisorctl),
            other => Err(ConfigError::new(
                origin,
                format!("'{other}' is not \"auto\", \"xmlrpc\" or \"supervisorctl\""),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestartSettings {
    pub via: Via,
    pub supervisorctl: String,
    pub args: Vec<String>,
    pub programs: Vec<String>,
    pub timeout: Duration,
    /// False with `--no-restart`: the env file is written, nothing is restarted.
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct DatadogSettings {
    pub api_key: Secret,
    pub site: String,
    /// The v2 log intake of `site`, or `FAILOVER_HANDLER_DD_URL` (a proxy, or a stand-in in tests).
    pub url: Url,
}

/// Overrides the Datadog intake URL: for a forwarding proxy, or a stand-in in tests.
pub const DD_URL_VAR: &str = "FAILOVER_HANDLER_DD_URL";

/// Everything the program needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: String,
    /// The failover order: the preferred region (if any) first, then the list order.
    pub regions: Vec<Region>,
    /// The preferred region's name, from `--region` or `region`.
    pub preferred: Option<String>,
    pub env_file: EnvFile,
    pub probe: ProbeSettings,
    pub failover: FailoverSettings,
    pub region_checks: RegionChecks,
    pub network: NetworkSettings,
    pub restart: RestartSettings,
    pub dry_run: bool,
    pub log_format: LogFormat,
    /// Whether the user chose the log format (one-shot commands default to text otherwise).
    pub log_format_explicit: bool,
    pub state_dir: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    pub datadog: Option<DatadogSettings>,
    /// Doubtful but workable settings, said at start and by `config`.
    pub warnings: Vec<String>,
}

/// Picks flag > file > default and remembers which one it was, for error messages.
fn pick<T>(
    flag: Option<T>,
    flag_name: &'static str,
    file: Option<T>,
    key: &'static str,
    default: T,
) -> (T, &'static str) {
    match (flag, file) {
        (Some(v), _) => (v, flag_name),
        (None, Some(v)) => (v, key),
        (None, None) => (default, "default"),
    }
}

fn file_duration(value: Option<&String>, key: &str) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|v| parse_duration(v).map_err(|e| ConfigError::new(key, e)))
        .transpose()
}

fn positive(d: Duration, origin: &str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::new(origin, "must be greater than zero"));
    }
    Ok(d)
}

/// Humantime text of a duration, e.g. `4m` or `1s 500ms`.
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
}

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

        let (regions, preferred) = build_regions(opts, &file, env)?;

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

        let probe = build_probe(opts, &fprobe, env, &mut warnings)?;

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
            None | Some("never") => Failback::Never,
            Some("auto") => Failback::Auto,
            Some(other) => {
                return Err(ConfigError::new(
                    "failover.failback",
                    format!("'{other}' is not \"never\" or \"auto\""),
                ));
            }
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
                Some(DatadogSettings {
                    api_key: Secret(key.trim().to_string()),
                    site,
                    url,
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
            warnings,
        };
        let doubtful = crate::budget::doubtful(&config);
        config.warnings.extend(doubtful);
        Ok(config)
    }

    /// The region named `name` (any case), if it is in the list.
    pub fn region(&self, name: &str) -> Option<&Region> {
        region::find(&self.regions, name).map(|i| &self.regions[i])
    }

    /// Whether any region has a standby health target (region intelligence on).
    pub fn has_standby_checks(&self) -> bool {
        self.regions.iter().any(|r| r.health_url.is_some())
    }
}

fn at_least_one(v: u32, key: &str) -> Result<u32, ConfigError> {
    if v == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(v)
}

fn build_regions(
    opts: &Options,
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Region>, Option<String>), ConfigError> {
    let (list, list_origin) = if let Some(text) = env("EXT_CLOUD_FAILOVER_LIST") {
        let list = region::parse_failover_list(&text)
            .map_err(|e| ConfigError::new("EXT_CLOUD_FAILOVER_LIST", e.to_string()))?;
        (list, "EXT_CLOUD_FAILOVER_LIST")
    } else if let Some(file_regions) = &file.regions {
        if file_regions.is_empty() {
            return Err(ConfigError::new("regions", "the list is empty"));
        }
        let mut list = Vec::new();
        for (i, r) in file_regions.iter().enumerate() {
            let key = format!("regions[{i}]");
            let mut region = Region::new(&r.name, &r.cloud)
                .map_err(|e| ConfigError::new(&key, e.to_string()))?;
            region.health_url = r
                .health_url
                .as_deref()
                .map(Target::parse)
                .transpose()
                .map_err(|e| ConfigError::new(format!("{key}.health_url"), e))?;
            region::push_unique(&mut list, region)
                .map_err(|e| ConfigError::new("regions", e.to_string()))?;
        }
        (list, "regions")
    } else {
        let list = region::parse_failover_list(DEFAULT_FAILOVER_LIST)
            .map_err(|e| ConfigError::new("default failover list", e.to_string()))?;
        (list, "default")
    };
    let (wanted, origin) = match (&opts.region, &file.region) {
        (Some(r), _) => (Some(r.as_str()), "--region"),
        (None, Some(r)) => (Some(r.as_str()), "region"),
        (None, None) => (None, ""),
    };
    let preferred = match wanted {
        None => None,
        Some(name) => Some(region::find(&list, name).ok_or_else(|| {
            let known: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
            ConfigError::new(
                origin,
                format!(
                    "unknown region '{name}' (the list from {list_origin} has {})",
                    known.join(", ")
                ),
            )
        })?),
    };
    let name = preferred.map(|i| list[i].name.clone());
    Ok((region::ordered(list, preferred), name))
}

fn build_probe(
    opts: &Options,
    f: &crate::config_file::FileProbe,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<ProbeSettings, ConfigError> {
    let (template, url_src) = pick(
        opts.probe_url.clone(),
        "--probe-url",
        f.url.clone(),
        "probe.url",
        DEFAULT_PROBE_URL.to_string(),
    );
    let mut filled = template.clone();
    let mut missing = None;
    for (placeholder, var) in [
        ("{org_id}", "CONNECTION_KEEPALIVE_ORG_ID"),
        ("{txn_id}", "CONNECTION_KEEPALIVE_TXN_ID"),
    ] {
        if !filled.contains(placeholder) {
            continue;
        }
        let Some(value) = env(var).filter(|v| !v.is_empty()) else {
            // Only commands that probe need it; they report this error.
            missing.get_or_insert_with(|| {
                ConfigError::new(var, format!("is not set, and {url_src} uses {placeholder}"))
            });
            continue;
        };
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
        {
            return Err(ConfigError::new(var, "may only hold [A-Za-z0-9._~-]"));
        }
        filled = filled.replace(placeholder, &value);
    }
    let url = Url::parse(&filled)
        .map_err(|e| ConfigError::new(url_src, format!("'{template}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            url_src,
            format!("'{template}' must be an http:// or https:// URL with a host"),
        ));
    }

    let (interval, interval_src) = pick(
        opts.interval,
        "--interval",
        file_duration(f.interval.as_ref(), "probe.interval")?,
        "probe.interval",
        Duration::from_secs(10),
    );
    positive(interval, interval_src)?;
    let fail_interval = positive(
        file_duration(f.fail_interval.as_ref(), "probe.fail_interval")?.unwrap_or(interval),
        "probe.fail_interval",
    )?;
    let (timeout, timeout_src) = pick(
        opts.timeout,
        "--timeout",
        file_duration(f.timeout.as_ref(), "probe.timeout")?,
        "probe.timeout",
        Duration::from_secs(5),
    );
    positive(timeout, timeout_src)?;
    if timeout >= interval {
        warnings.push(format!(
            "{timeout_src} {} is not below {interval_src} {}: a hanging probe stretches the probe cadence to the timeout",
            human(timeout),
            human(interval)
        ));
    }
    let ca_cert = opts.ca_cert.clone().or(f.ca_cert.clone());
    if let Some(path) = ca_cert.as_ref().filter(|p| !p.is_file()) {
        let origin = if opts.ca_cert.is_some() {
            "--ca-cert"
        } else {
            "probe.ca_cert"
        };
        return Err(ConfigError::new(
            origin,
            format!("{} is not a readable file", path.display()),
        ));
    }
    let headers = match &f.headers {
        None => vec![(
            http::HeaderName::from_static("x-sig-sha256"),
            http::HeaderValue::from_static(DEFAULT_SIG_HEADER.1),
        )],
        Some(map) => map
            .iter()
            .map(|(k, v)| {
                let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    ConfigError::new("probe.headers", format!("'{k}' is not a header name"))
                })?;
                let mut value = http::HeaderValue::from_str(v).map_err(|_| {
                    ConfigError::new(
                        "probe.headers",
                        format!("the value of '{k}' is not a valid header value"),
                    )
                })?;
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect::<Result<_, ConfigError>>()?,
    };
    Ok(ProbeSettings {
        url,
        missing_id: missing,
        url_template: template,
        interval,
        fail_interval,
        timeout,
        ca_cert,
        insecure: opts.insecure || f.insecure.unwrap_or(false),
        headers,
    })
}

fn build_network(f: crate::config_file::FileNetwork) -> Result<NetworkSettings, ConfigError> {
    let reference = f
        .reference
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Target::parse(t).map_err(|e| ConfigError::new(format!("network.reference[{i}]"), e))
        })
        .collect::<Result<_, _>>()?;
    let throughput_url = match f.throughput_url.as_deref() {
        None | Some("") => None,
        Some(u) => match Target::parse(u) {
            Ok(Target::Http(url)) => Some(url),
            Ok(Target::Tcp { .. }) => {
                return Err(ConfigError::new(
                    "network.throughput_url",
                    "must be an http:// or https:// URL",
                ));
            }
            Err(e) => return Err(ConfigError::new("network.throughput_url", e)),
        },
    };
    let min_mbps = f.min_mbps.unwrap_or(0.0);
    if !min_mbps.is_finite() || min_mbps < 0.0 {
        return Err(ConfigError::new(
            "network.min_mbps",
            "must be a number >= 0",
        ));
    }
    if min_mbps > 0.0 && throughput_url.is_none() {
        return Err(ConfigError::new(
            "network.min_mbps",
            "needs network.throughput_url to measure against",
        ));
    }
    Ok(NetworkSettings {
        reference,
        latency_file: f.latency_file,
        throughput_url,
        min_mbps,
    })
}

fn build_restart(
    opts: &Options,
    f: crate::config_file::FileRestart,
) -> Result<RestartSettings, ConfigError> {
    let (supervisorctl, ctl_src) = pick(
        opts.supervisorctl.clone(),
        "--supervisorctl",
        f.supervisorctl,
        "restart.supervisorctl",
        "supervisorctl".to_string(),
    );
    if supervisorctl.trim().is_empty() {
        return Err(ConfigError::new(ctl_src, "must name an executable"));
    }
    let (programs, prog_src) = pick(
        opts.programs.clone(),
        "--programs",
        f.programs,
        "restart.programs",
        DEFAULT_PROGRAMS.iter().map(|p| p.to_string()).collect(),
    );
    if programs.is_empty() {
        return Err(ConfigError::new(prog_src, "the list is empty"));
    }
    for p in &programs {
        if !is_safe_token(p, 200) || p.starts_with('-') {
            return Err(ConfigError::new(
                prog_src,
                format!(
                    "'{p}' is not a supervisord program name ([A-Za-z0-9._:-], not starting with '-')"
                ),
            ));
        }
    }
    let timeout = positive(
        file_duration(f.timeout.as_ref(), "restart.timeout")?.unwrap_or(Duration::from_secs(60)),
        "restart.timeout",
    )?;
    let via = match (&opts.restart_via, &f.via) {
        (Some(v), _) => Via::parse(v, "--restart-via")?,
        (None, Some(v)) => Via::parse(v, "restart.via")?,
        (None, None) => Via::Auto,
    };
    Ok(RestartSettings {
        via,
        supervisorctl,
        args: f.args.unwrap_or_default(),
        programs,
        timeout,
        enabled: !(opts.no_restart || f.no_restart.unwrap_or(false)),
    })
}

/// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`, `:9464` or `9464` (the last three on loopback).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    port.parse::<u16>()
        .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
        .map_err(|_| format!("'{text}' is not an address like 127.0.0.1:9464 or a port"))
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
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
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
    fn missing_ids_only_matter_to_commands_that_probe() {
        let c = build(&[], &[("CONNECTION_KEEPALIVE_ORG_ID", "org1")]).unwrap();
        let e = c.probe.missing_id.unwrap();
        assert_eq!(e.origin, "CONNECTION_KEEPALIVE_TXN_ID");
        assert!(build(&[], &[("CONNECTION_KEEPALIVE_ORG_ID", "a b")]).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("abc123".into());
        assert!(!format!("{s:?}").contains("abc123"));
    }
}
