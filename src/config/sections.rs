//! One section of the config at a time: regions, network, restart (the probe has its own
//! file).

use crate::config::setting::Sources;
use crate::config::settings::*;
use crate::config::table;
use crate::kernel::region::{self, DEFAULT_FAILOVER_LIST, Region, Target};

pub(super) fn build_regions(
    src: &Sources,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Region>, Option<String>), ConfigError> {
    let (file, env) = (src.file, src.env);
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
    let wanted = src.get(&table::REGION)?;
    let origin = wanted.origin;
    let preferred = match wanted.value.as_deref() {
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

pub(super) fn build_network(src: &Sources) -> Result<NetworkSettings, ConfigError> {
    let reference = src
        .value(&table::REFERENCE)?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Target::parse(t).map_err(|e| ConfigError::new(format!("network.reference[{i}]"), e))
        })
        .collect::<Result<_, _>>()?;
    let throughput = src.get(&table::THROUGHPUT_URL)?;
    let throughput_url = match throughput.value.as_str() {
        "" => None,
        u => match Target::parse(u) {
            Ok(Target::Http(url)) => Some(url),
            Ok(Target::Tcp { .. }) => {
                return Err(ConfigError::new(
                    throughput.origin,
                    "must be an http:// or https:// URL",
                ));
            }
            Err(e) => return Err(ConfigError::new(throughput.origin, e)),
        },
    };
    let min_mbps = src.get(&table::MIN_MBPS)?;
    if min_mbps.value > 0.0 && throughput_url.is_none() {
        return Err(ConfigError::new(
            min_mbps.origin,
            "needs network.throughput_url to measure against",
        ));
    }
    Ok(NetworkSettings {
        reference,
        latency_file: src.value(&table::LATENCY_FILE)?,
        throughput_url,
        min_mbps: min_mbps.value,
    })
}

pub(super) fn build_restart(src: &Sources) -> Result<RestartSettings, ConfigError> {
    Ok(RestartSettings {
        supervisorctl: src.value(&table::SUPERVISORCTL)?,
        programs: src.value(&table::PROGRAMS)?,
        timeout: src.value(&table::RESTART_TIMEOUT)?,
        via: src.value(&table::VIA)?,
        args: src.value(&table::ARGS)?,
        enabled: !src.value(&table::NO_RESTART)?,
    })
}
