//! The effective configuration written back as a config file, for `config` and the reload
//! log: every setting of the table as it applies (secrets left out), in the file's order.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::fleet::FileFleet;
use crate::config::redact;
use crate::config::settings::{Config, DEFAULT_SIG_HEADER};
use crate::config::table;

/// The effective configuration as TOML.
pub fn effective(c: &Config) -> Result<String, toml::ser::Error> {
    let mut out = String::new();
    for (section, entries) in table::sections() {
        if !section.is_empty() {
            out.push_str(&format!("\n[{section}]\n"));
        }
        for (name, entry) in entries {
            if let Some(value) = entry.show(c) {
                out.push_str(&toml::to_string(&BTreeMap::from([(name, value)]))?);
            }
        }
        match section {
            "" => out.push_str(&regions(c)?),
            "probe" => out.push_str(&headers(c)?),
            _ => {}
        }
    }
    if let Some(fleet) = &c.fleet {
        #[derive(Serialize)]
        struct Fleet {
            fleet: FileFleet,
        }
        let fleet = Fleet {
            fleet: crate::config::fleet::effective(fleet),
        };
        out.push('\n');
        out.push_str(&toml::to_string(&fleet)?);
    }
    Ok(out)
}

/// `[[regions]]`, in the failover order.
fn regions(c: &Config) -> Result<String, toml::ser::Error> {
    #[derive(Serialize)]
    struct Region {
        name: String,
        cloud: String,
        health_url: Option<String>,
    }
    #[derive(Serialize)]
    struct Regions {
        regions: Vec<Region>,
    }
    let regions = Regions {
        regions: c
            .regions
            .iter()
            .map(|r| Region {
                name: r.name.clone(),
                cloud: r.cloud.clone(),
                health_url: r.health_url.as_ref().map(|t| redact::url(&t.to_string())),
            })
            .collect(),
    };
    Ok(format!("\n{}", toml::to_string(&regions)?))
}

/// `[probe.headers]`: only the well-known default value (the hash of an empty body) is shown,
/// as any value a user set may be a credential.
fn headers(c: &Config) -> Result<String, toml::ser::Error> {
    let shown: BTreeMap<String, String> = c
        .probe
        .headers
        .iter()
        .map(|(k, v)| {
            let default = DEFAULT_SIG_HEADER.1;
            let shown = if v.to_str().is_ok_and(|v| v == default) {
                default.to_string()
            } else {
                "<redacted>".to_string()
            };
            (k.to_string(), shown)
        })
        .collect();
    Ok(format!("\n[probe.headers]\n{}", toml::to_string(&shown)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_read_back_as_a_config_file_gives_the_same_output() {
        let texts = [
            String::new(),
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/failover-handler.example.toml"
            ))
            .unwrap(),
            "[fleet]\nendpoints = [\"http://127.0.0.1:2379\"]\nname = \"f\"\nhost = \"h\"\n[network]\nreference = [\"tcp://127.0.0.1:53\"]\nthroughput_url = \"https://x.example/f\"\nmin_mbps = 2.5\n".to_string(),
        ];
        for text in texts {
            let c = crate::testing::config_with_file(&text, &["--programs", "a,b", "-r", "eu"]);
            let shown = effective(&c).unwrap();
            assert!(shown.contains("\n[restart]\n"), "{shown}");
            let again = crate::testing::config_with_file(&shown, &[]);
            assert_eq!(effective(&again).unwrap(), shown);
        }
    }
}
