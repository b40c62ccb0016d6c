//! `[probe]` merged: the URL with its ids filled in, the timings, TLS and the headers.

use url::Url;

use crate::config::duration_text;
use crate::config::setting::Sources;
use crate::config::settings::*;
use crate::config::table;
use crate::config::tls;
use crate::kernel::region::Region;

pub(super) fn build_probe(
    src: &Sources,
    regions: &[Region],
    warnings: &mut Vec<String>,
) -> Result<ProbeSettings, ConfigError> {
    let (url, template, missing_id) = probe_url(src)?;
    let interval = src.get(&table::INTERVAL)?;
    let fail_interval = src.value(&table::FAIL_INTERVAL)?.unwrap_or(interval.value);
    let timeout = src.get(&table::TIMEOUT)?;
    let startup_grace = src.value(&table::STARTUP_GRACE)?;
    if timeout.value >= interval.value {
        warnings.push(format!(
            "{} {} is not below {} {}: a hanging probe stretches the probe cadence to the timeout",
            timeout.origin,
            duration_text(timeout.value),
            interval.origin,
            duration_text(interval.value)
        ));
    }
    let (ca_cert, insecure) = trust(src)?;
    let name = src.get(&table::TLS_SERVER_NAME)?;
    if let Some(n) = &name.value {
        tls::check_server_name(n, regions, &url).map_err(|e| ConfigError::new(name.origin, e))?;
    }
    Ok(ProbeSettings {
        url,
        missing_id,
        url_template: template,
        interval: interval.value,
        fail_interval,
        timeout: timeout.value,
        startup_grace,
        ca_cert,
        tls_server_name: name.value,
        insecure,
        headers: headers(src.file.probe.as_ref().and_then(|p| p.headers.as_ref()))?,
    })
}

/// The probe URL with `{org_id}` and `{txn_id}` filled in, its template, and the error of a
/// missing id (only commands that probe report it).
fn probe_url(src: &Sources) -> Result<(Url, String, Option<ConfigError>), ConfigError> {
    let picked = src.get(&table::PROBE_URL)?;
    let (template, url_src) = (picked.value, picked.origin);
    let mut filled = template.clone();
    let mut missing = None;
    for (placeholder, var) in [
        ("{org_id}", "CONNECTION_KEEPALIVE_ORG_ID"),
        ("{txn_id}", "CONNECTION_KEEPALIVE_TXN_ID"),
    ] {
        if !filled.contains(placeholder) {
            continue;
        }
        let Some(value) = (src.env)(var).filter(|v| !v.is_empty()) else {
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
    Ok((url, template, missing))
}

/// What the probe trusts: a CA file (checked), or nothing with `insecure`; not both.
fn trust(src: &Sources) -> Result<(Option<std::path::PathBuf>, bool), ConfigError> {
    let ca_cert = src.get(&table::CA_CERT)?;
    let insecure = src.get(&table::INSECURE)?;
    if let Some(path) = &ca_cert.value {
        let origin = ca_cert.origin;
        if insecure.value {
            let insecure_src = insecure.origin;
            return Err(ConfigError::new(
                insecure_src,
                format!(
                    "cannot be used with {origin}: {insecure_src} turns verification off, {origin} says what to verify against; keep one"
                ),
            ));
        }
        tls::check_ca_file(path).map_err(|e| ConfigError::new(origin, e))?;
    }
    Ok((ca_cert.value, insecure.value))
}

/// `probe.headers`, sent with every probe (values kept out of debug output).
fn headers(
    map: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, ConfigError> {
    let Some(map) = map else {
        return Ok(vec![(
            http::HeaderName::from_static("x-sig-sha256"),
            http::HeaderValue::from_static(DEFAULT_SIG_HEADER.1),
        )]);
    };
    map.iter()
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
        .collect()
}
