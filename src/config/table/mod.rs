//! The table of settings: for each one its flag, variable, config key, default, check and help,
//! in the config file's order. The merge reads values through it, `config` shows them through
//! it, and the example config file's comments and the README's options table are made from it
//! (`docs`, a test). A new setting is an entry here, the fields it is read from and fills, and
//! its use.

#[cfg(test)]
mod docs;
mod general;
mod probe;
mod restart;
mod rules;

use crate::config::setting::{Doc, Setting};
use crate::config::settings::Config;

pub use general::*;
pub use probe::*;
pub use restart::*;
pub use rules::*;

/// What the table's users need of an entry whatever its type.
pub trait Entry: Sync {
    fn doc(&self) -> &Doc;
    /// The effective value as `config` shows it.
    fn show(&self, config: &Config) -> Option<toml::Value>;
}

impl<T> Entry for Setting<T> {
    fn doc(&self) -> &Doc {
        &self.doc
    }

    fn show(&self, config: &Config) -> Option<toml::Value> {
        (self.show)(config)
    }
}

impl Entry for Doc {
    fn doc(&self) -> &Doc {
        self
    }

    fn show(&self, _: &Config) -> Option<toml::Value> {
        None
    }
}

/// Every setting, in the config file's order.
pub static ALL: &[&dyn Entry] = &[
    &SERVICE,
    &REGION,
    &CONFIG,
    &STATE_DIR,
    &DRY_RUN,
    &ENV_FILE,
    &CLOUD_VAR,
    &REGION_VAR,
    &PROBE_URL,
    &INTERVAL,
    &FAIL_INTERVAL,
    &TIMEOUT,
    &STARTUP_GRACE,
    &CA_CERT,
    &TLS_SERVER_NAME,
    &INSECURE,
    &THRESHOLD,
    &CHOOSE,
    &FAILBACK,
    &FAILBACK_AFTER,
    &MAX_SWITCHES_PER_HOUR,
    &CHECK_INTERVAL,
    &CHECK_TIMEOUT,
    &RISE,
    &FALL,
    &REFERENCE,
    &LATENCY_FILE,
    &THROUGHPUT_URL,
    &MIN_MBPS,
    &VIA,
    &SUPERVISORCTL,
    &ARGS,
    &PROGRAMS,
    &RESTART_TIMEOUT,
    &NO_RESTART,
    &LOG_FORMAT,
    &METRICS_ADDR,
];

/// What each section of the config file is for: the example file says it above the section.
pub static SECTIONS: &[(&str, &str)] = &[
    (
        "env_file",
        "The file the programs source when they start (see supervisord.conf.example). It is replaced atomically; it is also the record of the active region, read at start and on every probe.",
    ),
    (
        "probe",
        "The health probe of the active region, through the local tunnel.",
    ),
    (
        "failover",
        "When an outage is confirmed, and what the daemon does about it.",
    ),
    (
        "region_checks",
        "Standby checks (only for regions with a health_url).",
    ),
    (
        "network",
        "Is the fault local? Reference targets, the latency file and a throughput gate.",
    ),
    (
        "restart",
        "How the programs are restarted: stop each program in order, then start each in reverse. Every call has the timeout and is retried. `via`: \"auto\" talks to supervisord's XML-RPC interface at the serverurl (and with the username/password) that this supervisorctl and its args would use, when the supervisorctl is the plain one and supervisord answers there; otherwise, and with \"supervisorctl\", it runs `supervisorctl <args> stop <program>`. \"xmlrpc\" always talks to supervisord directly.",
    ),
    ("log", "What the daemon tells, on stdout."),
    (
        "metrics",
        "/metrics, /status, /history and a status page; loopback unless you name another address.",
    ),
];

/// A section of the config file (`""` for the top level) and its keys, each with its entry.
pub type Section = (&'static str, Vec<(&'static str, &'static dyn Entry)>);

/// The table's keys by section, in the config file's order.
pub fn sections() -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for entry in ALL {
        let Some(key) = entry.doc().key else {
            continue;
        };
        let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
        match out.iter_mut().find(|(s, _)| *s == section) {
            Some((_, entries)) => entries.push((name, *entry)),
            None => out.push((section, vec![(name, *entry)])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::collections::BTreeMap;

    #[test]
    fn every_flag_is_in_the_table_with_its_letter_value_and_default() {
        let cli = crate::config::cli::Cli::command();
        let clap: BTreeMap<String, &clap::Arg> = cli
            .get_arguments()
            .filter_map(|a| Some((format!("--{}", a.get_long()?), a)))
            .filter(|(long, _)| long != "--help" && long != "--version")
            .collect();
        let table: BTreeMap<&str, &Doc> = ALL
            .iter()
            .filter_map(|e| Some((e.doc().flag?, e.doc())))
            .collect();
        let (in_clap, in_table): (Vec<_>, Vec<_>) = (
            clap.keys().map(String::as_str).collect(),
            table.keys().copied().collect(),
        );
        assert_eq!(in_clap, in_table, "the flags of clap and of the table");
        for (flag, doc) in table {
            let arg = clap[flag];
            assert_eq!(arg.get_short(), doc.short, "{flag}");
            let value = arg
                .get_value_names()
                .filter(|_| arg.get_action().takes_values())
                .and_then(|v| v.first());
            assert_eq!(value.map(|v| v.as_str()), doc.value, "{flag}");
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if let Some(at) = help.find("[default: ") {
                let shown = help[at + 10..].trim_end().trim_end_matches(']');
                assert_eq!(shown, doc.default, "{flag}: --help and the table");
            }
        }
    }

    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let config = crate::testing::config(&[]);
        for entry in ALL {
            let doc = entry.doc();
            let Some(shown) = entry.show(&config) else {
                continue;
            };
            let text = match shown {
                toml::Value::String(s) => s,
                toml::Value::Boolean(false) => "off".to_string(),
                toml::Value::Float(f) => format!("{f:?}"),
                toml::Value::Array(a) if a.is_empty() => "none".to_string(),
                toml::Value::Array(a) => {
                    let items: Vec<_> = a.iter().filter_map(|v| v.as_str()).collect();
                    items.join(",")
                }
                other => other.to_string(),
            };
            if doc.key == Some("probe.fail_interval") {
                assert_eq!(text, INTERVAL.doc.default, "the interval");
                continue;
            }
            assert_eq!(text, doc.default, "{:?}", doc.key);
        }
    }
}
