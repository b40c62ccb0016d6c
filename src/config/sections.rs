//! One section of the config at a time: regions, probe, network, restart.

use std::time::Duration;

use url::Url;

use crate::config::cli::Options;
use crate::config::file::FileConfig;
use crate::config::human::human;
use crate::config::settings::*;
use crate::config::tls;
use crate::config::values::{file_duration, pick, positive};
use crate::kernel::region::{self, DEFAULT_FAILOVER_LIST, Region, Target, is_safe_token};

pub(super) fn build_regions(
    opts: &Options,
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Region>, Option<String>), ConfigError> {
    let (list, list_origin) = if let Some(text) = env("EXT_CLOUD_FAILOVER_LIST") {
        let mut list = region::parse_failover_list(&text)
            .map_err(|e| ConfigError::new("EXT_CLOUD_FAILOVER_LIST", e.to_string()))?;
        if let Some(file_regions) = &file.regions {
            lend_health_urls(&mut list, file_regions, warnings)?;
        }
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
            region.health_url = health_url(r, &key)?;
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

/// With `EXT_CLOUD_FAILOVER_LIST` set, the regions, their order and clouds are the
/// environment's; each `[[regions]]` entry lends its `health_url` to the region of the same
/// name, and what of the file cannot apply is said (in `config` and at start).
fn lend_health_urls(
    list: &mut [Region],
    file: &[crate::config::file::FileRegion],
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (i, r) in file.iter().enumerate() {
        let key = format!("regions[{i}]");
        let Some(at) = region::find(list, &r.name) else {
            warnings.push(format!(
                "{key} ({}) is not in EXT_CLOUD_FAILOVER_LIST, which sets the regions: the entry is ignored",
                r.name
            ));
            continue;
        };
        let region = &mut list[at];
        if !r.cloud.eq_ignore_ascii_case(&region.cloud) {
            warnings.push(format!(
                "{key}.cloud is {} but EXT_CLOUD_FAILOVER_LIST gives {} the cloud {}: the environment wins",
                r.cloud, region.name, region.cloud
            ));
        }
        region.health_url = health_url(r, &key)?;
    }
    Ok(())
}

/// The `health_url` of the `[[regions]]` entry at `key`, parsed.
fn health_url(
    r: &crate::config::file::FileRegion,
    key: &str,
) -> Result<Option<Target>, ConfigError> {
    r.health_url
        .as_deref()
        .map(Target::parse)
        .transpose()
        .map_err(|e| ConfigError::new(format!("{key}.health_url"), e))
}

pub(super) fn build_probe(
    opts: &Options,
    f: &crate::config::file::FileProbe,
    regions: &[Region],
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
    let (startup_grace, _) = pick(
        opts.startup_grace,
        "--startup-grace",
        file_duration(f.startup_grace.as_ref(), "probe.startup_grace")?,
        "probe.startup_grace",
        Duration::from_secs(10),
    );
    if timeout >= interval {
        warnings.push(format!(
            "{timeout_src} {} is not below {interval_src} {}: a hanging probe stretches the probe cadence to the timeout",
            human(timeout),
            human(interval)
        ));
    }
    let ca_cert = opts.ca_cert.clone().or(f.ca_cert.clone());
    let insecure = opts.insecure || f.insecure.unwrap_or(false);
    if let Some(path) = &ca_cert {
        let origin = if opts.ca_cert.is_some() {
            "--ca-cert"
        } else {
            "probe.ca_cert"
        };
        if insecure {
            let insecure_src = if opts.insecure {
                "--insecure"
            } else {
                "probe.insecure"
            };
            return Err(ConfigError::new(
                insecure_src,
                format!(
                    "cannot be used with {origin}: {insecure_src} turns verification off, {origin} says what to verify against; keep one"
                ),
            ));
        }
        tls::check_ca_file(path).map_err(|e| ConfigError::new(origin, e))?;
    }
    let tls_server_name = match opts.tls_server_name.clone() {
        Some(name) => Some((name, "--tls-server-name")),
        None => f
            .tls_server_name
            .clone()
            .map(|name| (name, "probe.tls_server_name")),
    };
    if let Some((name, origin)) = &tls_server_name {
        tls::check_server_name(name, regions, &url).map_err(|e| ConfigError::new(*origin, e))?;
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
        startup_grace,
        ca_cert,
        tls_server_name: tls_server_name.map(|(name, _)| name),
        insecure,
        headers,
    })
}

pub(super) fn build_network(
    f: crate::config::file::FileNetwork,
) -> Result<NetworkSettings, ConfigError> {
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

pub(super) fn build_restart(
    opts: &Options,
    f: crate::config::file::FileRestart,
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
    let (args, args_src) = pick(
        opts.supervisorctl_args.clone(),
        "--supervisorctl-arg",
        f.args,
        "restart.args",
        Vec::new(),
    );
    if let Some(bad) = args.iter().find(|a| a.is_empty() || a.contains('\0')) {
        return Err(ConfigError::new(
            args_src,
            format!(
                "'{}' is not a usable argument (empty, or holds a NUL byte)",
                bad.replace('\0', "\\0")
            ),
        ));
    }
    Ok(RestartSettings {
        via,
        supervisorctl,
        args,
        programs,
        timeout,
        enabled: !(opts.no_restart || f.no_restart.unwrap_or(false)),
    })
}
