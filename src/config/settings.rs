//! The validated configuration: what every other layer reads. Its fields already have their
//! final types; nothing downstream validates again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::config::cli::LogFormat;
pub use crate::config::error::{ConfigError, Secret};
pub use crate::kernel::policy::{Choose, Failback};
use crate::kernel::region::{self, Region, Target};

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
    /// Probe failures this long after start are told at INFO (0 = none).
    pub startup_grace: Duration,
    pub ca_cert: Option<PathBuf>,
    /// `--tls-server-name`: the TLS name instead of the URL's host, `{cloud}` unfilled; checked
    /// to be a valid name for every region.
    pub tls_server_name: Option<String>,
    pub insecure: bool,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
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

    pub(super) fn from_text(text: &str) -> Result<Via, String> {
        match text {
            "auto" => Ok(Via::Auto),
            "xmlrpc" => Ok(Via::Xmlrpc),
            "supervisorctl" => Ok(Via::Supervisorctl),
            other => Err(format!(
                "'{other}' is not \"auto\", \"xmlrpc\" or \"supervisorctl\""
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
    /// `DD_PROXY_HTTPS` (the Datadog agent's variable): the proxy for the intake, which may
    /// carry credentials. Without it, `HTTPS_PROXY`/`NO_PROXY` apply.
    pub proxy: Option<Secret>,
    /// `DD_PROXY_NO_PROXY`: hosts reached without `proxy` (space- or comma-separated).
    pub no_proxy: Option<String>,
}

/// The Datadog agent's proxy variable, honoured for the intake.
pub const DD_PROXY_VAR: &str = "DD_PROXY_HTTPS";

/// Overrides the Datadog intake URL: for a forwarding proxy, or a stand-in in tests.
pub const DD_URL_VAR: &str = "FAILOVER_HANDLER_DD_URL";

/// The variables that hold the handler's own secrets: never handed to supervisorctl, and
/// never expanded into a supervisor config value as `%(ENV_X)s`.
pub const SECRET_VARS: [&str; 4] = [
    "DD_API_KEY",
    DD_PROXY_VAR,
    DD_URL_VAR,
    crate::config::fleet::ETCD_PASSWORD_VAR,
];

/// The env file's location and the names of its two variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub cloud_var: String,
    pub region_var: String,
}

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
    /// `[fleet]`: hosts keep one region through etcd; `None` connects to no store.
    pub fleet: Option<crate::config::fleet::FleetSettings>,
    /// Doubtful but workable settings, said at start and by `config`.
    pub warnings: Vec<String>,
}

impl Config {
    /// The region named `name` (any case), if it is in the list.
    pub fn region(&self, name: &str) -> Option<&Region> {
        region::find(&self.regions, name).map(|i| &self.regions[i])
    }

    /// Whether any region has a standby health target (region intelligence on).
    pub fn has_standby_checks(&self) -> bool {
        self.regions.iter().any(|r| r.health_url.is_some())
    }
}
