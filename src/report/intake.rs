//! The HTTP side of Datadog shipping: one gzip batch POSTed to the v2 log intake with reqwest
//! (rustls, the same trust as the rest of the handler). Proxies: `DD_PROXY_HTTPS` (the Datadog
//! agent's variable, with `DD_PROXY_NO_PROXY`) when set, else `HTTPS_PROXY`/`NO_PROXY`. The
//! answer is classified for the shipper: accepted, worth retrying (with the intake's
//! `Retry-After` when it gave one), or refused. The key only travels in the `DD-API-KEY`
//! header, marked sensitive; errors are described without the URL.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use url::Url;

use crate::adapters::http::{TlsSettings, client_config};
use crate::config::{DatadogSettings, Secret};

/// One request's deadline (connect, TLS, upload and answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of an answer's body read: the intake says little, and a longer answer fails the
/// send rather than fill the memory.
const MAX_ANSWER: usize = 64 * 1024;
/// The longest `Retry-After` taken as said; a longer one is capped here.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What the intake made of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Accepted,
    /// 408, 429, 5xx or a network error: the same batch may pass later. `after`: the
    /// intake's `Retry-After`, when it said one.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Any other status: sending the same bytes again will not help.
    Refused { code: u16 },
}

/// The intake and the client that reaches it.
pub struct Intake {
    client: reqwest::Client,
    url: Url,
    key: Secret,
}

/// `Retry-After` as seconds or an HTTP date, from `now`; capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate(value)?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP servers send.
fn httpdate(text: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let rfc3339 = format!("{year}-{month:02}-{day:0>2}T{time}Z");
    humantime::parse_rfc3339(&rfc3339).ok()
}

impl Intake {
    /// A client for `settings`' intake; a proxy or TLS setup that cannot be used is an error.
    pub fn new(settings: &DatadogSettings) -> Result<Self, String> {
        let tls = client_config(&TlsSettings::default())?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("failover-handler/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &settings.proxy {
            let no_proxy = match &settings.no_proxy {
                Some(list) => reqwest::NoProxy::from_string(&list.replace(' ', ",")),
                None => reqwest::NoProxy::from_env(),
            };
            let proxy = reqwest::Proxy::all(proxy.expose())
                .map_err(|_| "DD_PROXY_HTTPS is not a usable proxy URL".to_string())?
                .no_proxy(no_proxy);
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", e.without_url()))?;
        Ok(Intake {
            client,
            url: settings.url.clone(),
            key: settings.api_key.clone(),
        })
    }

    /// POSTs one gzipped JSON array.
    pub async fn send(&self, body: Bytes) -> Answer {
        let mut key = match http::HeaderValue::from_str(self.key.expose()) {
            Ok(k) => k,
            Err(_) => return Answer::Refused { code: 401 },
        };
        key.set_sensitive(true);
        let sent = self
            .client
            .post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_ENCODING, "gzip")
            .header("DD-API-KEY", key)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Answer::Retry {
                    why: describe(&e),
                    after: None,
                };
            }
        };
        let mut response = response;
        let code = response.status().as_u16();
        let after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        // Read (and discard) the answer so that the connection can be used again; past
        // MAX_ANSWER the send fails and the connection is dropped.
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_ANSWER {
                return Answer::Retry {
                    why: format!("HTTP {code} with an answer larger than 64 KiB"),
                    after: None,
                };
            }
        }
        match code {
            200..=299 => Answer::Accepted,
            408 | 429 | 500..=599 => Answer::Retry {
                why: format!("HTTP {code}"),
                after: after.filter(|_| matches!(code, 429 | 503)),
            },
            _ => Answer::Refused { code },
        }
    }
}

/// A reqwest error for people, without the URL (which could carry credentials).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "network error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = humantime::parse_rfc3339("2026-11-24T01:00:00Z").unwrap();
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after("Tue, 24 Nov 2026 01:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Tue, 24 Nov 2026 00:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
    }
}
