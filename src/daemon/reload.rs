//! SIGHUP: the configuration built again from the same flags, environment and (re-read)
//! config file. The settings of the switching rules and the probe's cadence apply at once;
//! any other change is named as waiting for a restart. A bad file is refused whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::config::{Config, ConfigError};
use crate::daemon::Daemon;
use crate::report::event::{Event, Notice};
use crate::report::logging;

/// Builds the configuration again, as at start.
pub type Reload = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// The keys (as `config` prints them) that a reload applies at once.
pub const LIVE: [&str; 6] = [
    "failover.threshold",
    "failover.choose",
    "failover.failback",
    "failover.failback_after",
    "probe.interval",
    "probe.fail_interval",
];

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Reloads the configuration: applies its live settings, names the ones that need a
    /// restart, or refuses a bad one with one ERROR and keeps the running configuration.
    pub(super) fn reload(&mut self) {
        let Some(build) = &self.reload else {
            return;
        };
        let new = match build() {
            Ok(c) => c,
            Err(e) => {
                logging::event(&Event::Notice(Notice::ConfigReloadRefused {
                    error_kind: "config",
                    error: e.to_string(),
                }));
                return;
            }
        };
        let changed = changed_keys(&self.config, &new);
        let (applied, later): (Vec<&str>, Vec<&str>) = changed
            .iter()
            .map(String::as_str)
            .partition(|k| LIVE.contains(k));
        let mut merged = (*self.config).clone();
        merged.failover.threshold = new.failover.threshold;
        merged.failover.choose = new.failover.choose;
        merged.failover.failback = new.failover.failback;
        merged.failover.failback_after = new.failover.failback_after;
        merged.probe.interval = new.probe.interval;
        merged.probe.fail_interval = new.probe.fail_interval;
        self.config = Arc::new(merged);
        self.policy.set_rules(self.config.rules());
        let (applied, later) = (applied.join(", "), later.join(", "));
        let said = match (applied.is_empty(), later.is_empty()) {
            (true, true) => "nothing changed".to_string(),
            (false, true) => format!("applied {applied}"),
            (true, false) => format!("changed {later}, which need(s) a restart to apply"),
            (false, false) => {
                format!("applied {applied}; changed {later}, which need(s) a restart to apply")
            }
        };
        logging::event(&Event::Notice(Notice::ConfigReloaded {
            applied,
            needs_restart: later,
            said,
        }));
    }
}

/// The keys whose effective value differs between `old` and `new`, in order.
fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (old, new) = (flat(old), flat(new));
    let mut keys: Vec<String> = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(new.keys().filter(|k| !old.contains_key(*k)).cloned());
    keys.sort();
    keys
}

/// The effective configuration as dotted keys and their values (arrays whole).
fn flat(c: &Config) -> BTreeMap<String, toml::Value> {
    let mut out = BTreeMap::new();
    let text = crate::config::show::effective(c).unwrap_or_default();
    if let Ok(table) = toml::from_str::<toml::Table>(&text) {
        walk("", &table, &mut out);
    }
    out
}

fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => walk(&key, t, out),
            _ => {
                out.insert(key, v.clone());
            }
        }
    }
}
