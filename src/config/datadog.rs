//! Datadog's log intake, from the environment: the API key, the site, the intake URL and the
//! proxy. The key and a proxy's password never reach a message.

use url::Url;

use crate::config::settings::{ConfigError, DD_PROXY_VAR, DD_URL_VAR, DatadogSettings, Secret};
use crate::kernel::region::is_safe_token;

/// The Datadog settings when `DD_API_KEY` is set.
pub(super) fn build(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<DatadogSettings>, ConfigError> {
    let Some(key) = env("DD_API_KEY").filter(|k| !k.trim().is_empty()) else {
        return Ok(None);
    };
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
    Ok(Some(DatadogSettings {
        api_key: Secret::new(key.trim()),
        site,
        url,
        proxy,
        no_proxy: env("DD_PROXY_NO_PROXY").filter(|p| !p.trim().is_empty()),
    }))
}
