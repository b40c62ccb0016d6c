//! The optional `[fleet]` section: many hosts keep one region through etcd. Raw as written in
//! the file, then validated into [`FleetSettings`]; every error names its key.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::cli::parse_duration;
use crate::config::{ConfigError, Secret};
use crate::kernel::region::is_safe_token;

/// The variables that hold the etcd user and password (never the config file, never a log).
pub const ETCD_USER_VAR: &str = "FAILOVER_HANDLER_ETCD_USER";
pub const ETCD_PASSWORD_VAR: &str = "FAILOVER_HANDLER_ETCD_PASSWORD";

/// `[fleet]` as written.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileFleet {
    pub endpoints: Option<Vec<String>>,
    pub name: Option<String>,
    pub host: Option<String>,
    pub quorum: Option<f64>,
    pub min_voters: Option<u32>,
    pub max_concurrent_restarts: Option<u32>,
    pub on_store_loss: Option<String>,
    pub on_plaintext: Option<String>,
    pub lease_ttl: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// What a host does while the store cannot be reached (or has lost its own quorum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreLoss {
    /// Keep the region: no host acts alone.
    Keep,
    /// Fall back to this host's own rules.
    Local,
}

impl StoreLoss {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreLoss::Keep => "keep",
            StoreLoss::Local => "local",
        }
    }
}

/// What a host does when the etcd password would go over an `http://` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// Start, and say so once (`config_warning`).
    Warn,
    /// Refuse the config (exit 2).
    Refuse,
}

impl Plaintext {
    pub fn as_str(self) -> &'static str {
        match self {
            Plaintext::Warn => "warn",
            Plaintext::Refuse => "refuse",
        }
    }
}

/// The validated `[fleet]` section.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// etcd client URLs, tried in turn.
    pub endpoints: Vec<Url>,
    /// The fleet; its keys live under `/failover-handler/<name>/`.
    pub name: String,
    /// This host's name in the fleet.
    pub host: String,
    pub quorum: f64,
    pub min_voters: u32,
    pub max_concurrent_restarts: u32,
    pub on_store_loss: StoreLoss,
    pub on_plaintext: Plaintext,
    /// The lease that binds this host's view, leadership and restart slot: gone this long
    /// after the host stops renewing it.
    pub lease_ttl: Duration,
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl FleetSettings {
    /// The prefix of every key of this fleet.
    pub fn prefix(&self) -> String {
        format!("/failover-handler/{}/", self.name)
    }

    /// The warning to give at start when the password goes in clear to some endpoint.
    pub fn plaintext_warning(&self) -> Option<String> {
        let clear = plaintext_endpoints(&self.endpoints, self.password.is_some())?;
        Some(format!(
            "the etcd password ({ETCD_PASSWORD_VAR}) goes in clear to {clear}: anyone on the path can read it; use https:// endpoints, or set fleet.on_plaintext = \"refuse\" to refuse this"
        ))
    }

    /// One request's deadline on one endpoint: a fifth of the lease, but never shorter than
    /// etcd's election timeout (1 s by default: a member electing a leader answers late,
    /// not never), nor longer than 3 s.
    pub fn request_timeout(&self) -> Duration {
        (self.lease_ttl / 5).clamp(Duration::from_secs(1), Duration::from_secs(3))
    }

    /// How long the store must stay silent before a host calls it lost: two leases.
    pub fn store_loss_after(&self) -> Duration {
        self.lease_ttl * 2
    }
}

/// Validates `[fleet]`; `hostname` is the default host name, `env` reads the credentials.
pub fn build(
    file: Option<FileFleet>,
    hostname: &dyn Fn() -> Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<FleetSettings>, ConfigError> {
    let Some(f) = file else {
        return Ok(None);
    };
    let endpoints = f
        .endpoints
        .iter()
        .flatten()
        .map(|e| endpoint(e))
        .collect::<Result<Vec<Url>, ConfigError>>()?;
    if endpoints.is_empty() {
        return Err(ConfigError::new(
            "fleet.endpoints",
            "give at least one etcd client URL",
        ));
    }
    let name = f
        .name
        .clone()
        .ok_or_else(|| ConfigError::new("fleet.name", "name the fleet"))?;
    token(&name, "fleet.name")?;
    let host = match f.host.clone() {
        Some(h) => h,
        None => hostname().ok_or_else(|| {
            ConfigError::new(
                "fleet.host",
                "the hostname cannot be read; set the host name",
            )
        })?,
    };
    token(&host, "fleet.host")?;
    let Rules {
        quorum,
        min_voters,
        max_concurrent_restarts,
        on_store_loss,
        on_plaintext,
        lease_ttl,
    } = rules(&f)?;
    let (user, password) = credentials(&f, &endpoints, on_plaintext, env)?;
    Ok(Some(FleetSettings {
        endpoints,
        name,
        host,
        quorum,
        min_voters,
        max_concurrent_restarts,
        on_store_loss,
        on_plaintext,
        lease_ttl,
        ca_cert: f.ca_cert,
        client_cert: f.client_cert,
        client_key: f.client_key,
        user,
        password,
    }))
}

/// The etcd user and password from the environment, with the TLS settings checked against
/// the endpoints they go to.
fn credentials(
    f: &FileFleet,
    endpoints: &[Url],
    on_plaintext: Plaintext,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<String>, Option<Secret>), ConfigError> {
    if f.client_cert.is_some() != f.client_key.is_some() {
        let key = if f.client_cert.is_some() {
            "fleet.client_key"
        } else {
            "fleet.client_cert"
        };
        return Err(ConfigError::new(
            key,
            "client_cert and client_key go together",
        ));
    }
    let tls = f.ca_cert.is_some() || f.client_cert.is_some();
    if tls && endpoints.iter().any(|e| e.scheme() != "https") {
        return Err(ConfigError::new(
            "fleet.endpoints",
            "TLS settings are given, so every endpoint must be https://",
        ));
    }
    let user = env(ETCD_USER_VAR).filter(|u| !u.is_empty());
    let password = env(ETCD_PASSWORD_VAR).map(Secret::new);
    if user.is_some() && password.is_none() {
        return Err(ConfigError::new(
            ETCD_PASSWORD_VAR,
            format!("must be set when {ETCD_USER_VAR} is"),
        ));
    }
    if on_plaintext == Plaintext::Refuse
        && let Some(clear) = plaintext_endpoints(endpoints, password.is_some())
    {
        return Err(ConfigError::new(
            "fleet.endpoints",
            format!(
                "{clear} would carry the etcd password ({ETCD_PASSWORD_VAR}) in clear, and fleet.on_plaintext is \"refuse\": use https://"
            ),
        ));
    }
    Ok((user, password))
}

/// The fleet's rules of `[fleet]`, checked.
struct Rules {
    quorum: f64,
    min_voters: u32,
    max_concurrent_restarts: u32,
    on_store_loss: StoreLoss,
    on_plaintext: Plaintext,
    lease_ttl: Duration,
}

fn rules(f: &FileFleet) -> Result<Rules, ConfigError> {
    let quorum = f.quorum.unwrap_or(0.5);
    // Zero would let one voter move the fleet; one could never be exceeded.
    if !(quorum > 0.0 && quorum < 1.0) {
        return Err(ConfigError::new(
            "fleet.quorum",
            format!("{quorum} is not a fraction more than 0 and less than 1 (e.g. 0.5)"),
        ));
    }
    let min_voters = at_least_one(f.min_voters.unwrap_or(2), "fleet.min_voters")?;
    let max_concurrent_restarts = at_least_one(
        f.max_concurrent_restarts.unwrap_or(1),
        "fleet.max_concurrent_restarts",
    )?;
    let on_store_loss = match f.on_store_loss.as_deref().unwrap_or("keep") {
        "keep" => StoreLoss::Keep,
        "local" => StoreLoss::Local,
        other => {
            return Err(ConfigError::new(
                "fleet.on_store_loss",
                format!("'{other}' is not keep or local"),
            ));
        }
    };
    let on_plaintext = match f.on_plaintext.as_deref().unwrap_or("warn") {
        "warn" => Plaintext::Warn,
        "refuse" => Plaintext::Refuse,
        other => {
            return Err(ConfigError::new(
                "fleet.on_plaintext",
                format!("'{other}' is not warn or refuse"),
            ));
        }
    };
    let lease_ttl = match f.lease_ttl.as_deref() {
        Some(t) => parse_duration(t).map_err(|e| ConfigError::new("fleet.lease_ttl", e))?,
        None => Duration::from_secs(10),
    };
    if lease_ttl < Duration::from_secs(2) {
        return Err(ConfigError::new(
            "fleet.lease_ttl",
            "must be at least 2s (etcd leases count whole seconds)",
        ));
    }
    Ok(Rules {
        quorum,
        min_voters,
        max_concurrent_restarts,
        on_store_loss,
        on_plaintext,
        lease_ttl,
    })
}

/// The section written back by `config` (credentials left out: they live in the environment).
pub fn effective(s: &FleetSettings) -> FileFleet {
    FileFleet {
        endpoints: Some(s.endpoints.iter().map(|u| u.to_string()).collect()),
        name: Some(s.name.clone()),
        host: Some(s.host.clone()),
        quorum: Some(s.quorum),
        min_voters: Some(s.min_voters),
        max_concurrent_restarts: Some(s.max_concurrent_restarts),
        on_store_loss: Some(s.on_store_loss.as_str().to_string()),
        on_plaintext: Some(s.on_plaintext.as_str().to_string()),
        lease_ttl: Some(crate::config::duration_text(s.lease_ttl)),
        ca_cert: s.ca_cert.clone(),
        client_cert: s.client_cert.clone(),
        client_key: s.client_key.clone(),
    }
}

/// The machine's hostname, the default `fleet.host`.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The `http://` endpoints, comma-separated, when a password would go to them.
fn plaintext_endpoints(endpoints: &[Url], password: bool) -> Option<String> {
    let clear: Vec<&str> = endpoints
        .iter()
        .filter(|u| u.scheme() == "http")
        .map(Url::as_str)
        .collect();
    (password && !clear.is_empty()).then(|| clear.join(", "))
}

fn endpoint(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim())
        .map_err(|e| ConfigError::new("fleet.endpoints", format!("'{text}': {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            "fleet.endpoints",
            format!("'{text}' is not an http:// or https:// URL of an etcd member"),
        ));
    }
    Ok(url)
}

fn token(text: &str, key: &str) -> Result<(), ConfigError> {
    if is_safe_token(text, 128) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("'{text}' must be 1 to 128 characters of [A-Za-z0-9._:-]"),
        ))
    }
}

fn at_least_one(v: u32, key: &str) -> Result<u32, ConfigError> {
    if v == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &'static [(&str, &str)]) -> Result<Option<FleetSettings>, String> {
        let file: FileFleet = toml::from_str(text).map_err(|e| e.to_string())?;
        let env = move |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        build(Some(file), &|| Some("web-1".into()), &env)
            .map_err(|e| format!("{}: {}", e.origin, e.message))
    }

    const MINIMAL: &str = "endpoints = [\"http://127.0.0.1:2379\"]\nname = \"pay\"\n";

    #[test]
    fn defaults_follow_the_contract() {
        let s = parse(MINIMAL, &[]).unwrap().unwrap();
        assert_eq!(s.host, "web-1");
        assert_eq!(s.quorum, 0.5);
        assert_eq!(s.min_voters, 2);
        assert_eq!(s.max_concurrent_restarts, 1);
        assert_eq!(s.on_store_loss, StoreLoss::Keep);
        assert_eq!(s.prefix(), "/failover-handler/pay/");
        assert!(s.user.is_none());
        assert!(build(None, &|| None, &|_| None).unwrap().is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&str, &str); 10] = [
            ("name = \"pay\"\n", "fleet.endpoints"),
            (
                "endpoints = [\"ftp://x\"]\nname = \"pay\"\n",
                "fleet.endpoints",
            ),
            ("endpoints = [\"http://a:1\"]\n", "fleet.name"),
            (&format!("{MINIMAL}quorum = 1.0\n"), "fleet.quorum"),
            (&format!("{MINIMAL}quorum = 0\n"), "fleet.quorum"),
            (&format!("{MINIMAL}min_voters = 0\n"), "fleet.min_voters"),
            (
                &format!("{MINIMAL}on_store_loss = \"panic\"\n"),
                "fleet.on_store_loss",
            ),
            (&format!("{MINIMAL}host = \"a/b\"\n"), "fleet.host"),
            (
                &format!("{MINIMAL}client_cert = \"/c.pem\"\n"),
                "fleet.client_key",
            ),
            (
                &format!("{MINIMAL}ca_cert = \"/ca.pem\"\n"),
                "fleet.endpoints",
            ),
        ]
        .map(|(t, k)| (Box::leak(t.to_string().into_boxed_str()) as &str, k));
        for (text, key) in cases {
            let err = parse(text, &[]).unwrap_err();
            assert!(err.starts_with(key), "{text}: {err}");
        }
        let err = parse(MINIMAL, &[(ETCD_USER_VAR, "root")]).unwrap_err();
        assert!(err.starts_with(ETCD_PASSWORD_VAR), "{err}");
    }

    #[test]
    fn the_password_never_prints() {
        let s = parse(
            MINIMAL,
            &[(ETCD_USER_VAR, "root"), (ETCD_PASSWORD_VAR, "hunter2")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.user.as_deref(), Some("root"));
        assert!(!format!("{s:?}").contains("hunter2"));
        let written = toml::to_string(&effective(&s)).unwrap();
        assert!(!written.contains("hunter2") && !written.contains("root"));
    }
}
