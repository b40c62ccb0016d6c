//! The example files users copy: the config file validates and has every key, the supervisord
//! example parses as supervisord parses it and matches the config, and the env file example is
//! what the handler writes.

use crate::support::stack::which;
use crate::support::{Cmd, TestDir, env_for};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Dotted key paths of a TOML document (`regions.name`, `probe.interval`); the entries of
/// `probe.headers` are data, not keys.
fn keys(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                if path != "probe.headers" {
                    keys(v, &path, out);
                }
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                keys(item, prefix, out);
            }
        }
        _ => {}
    }
}

fn example_config() -> toml::Value {
    let text = std::fs::read_to_string(example("failover-handler.example.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

#[test]
fn example_config_validates_and_sets_every_key() {
    let dir = TestDir::new();
    let path = example("failover-handler.example.toml");
    let out = Cmd::bare(&dir)
        .sub(&["config"])
        .flag("-c", &path.display().to_string())
        .exits(0);

    let body: String = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let effective: toml::Value = toml::from_str(&body).unwrap();
    let mut every_key = BTreeSet::new();
    keys(&effective, "", &mut every_key);
    every_key.insert("network.throughput_url".into());
    let mut in_example = BTreeSet::new();
    keys(&example_config(), "", &mut in_example);
    let missing: Vec<_> = every_key.difference(&in_example).collect();
    assert!(missing.is_empty(), "the example lacks {missing:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# ca_cert = "), "probe.ca_cert is not shown");
}

/// The programs of `supervisord.conf.example` as supervisord's own parser reads them.
fn supervisord_programs() -> Option<Vec<Value>> {
    let Some(supervisord) = which(&["supervisord"]) else {
        let why = "supervisord is not installed (./scripts/test.sh installs it)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("SKIPPED: {why}");
        return None;
    };
    let script = std::fs::read_to_string(&supervisord).unwrap();
    let python = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|argv| !argv.is_empty())
        .unwrap_or_else(|| vec!["python3"]);
    let parse = r#"
import json, sys
from supervisor.options import ServerOptions
o = ServerOptions()
o.configfile = sys.argv[1]
o.process_config(do_usage=False)
for g in o.process_group_configs:
    for p in g.process_configs:
        print(json.dumps({"group": g.name, "name": p.name, "command": p.command,
            "stopsignal": int(p.stopsignal), "stdout_logfile": str(p.stdout_logfile),
            "environment": p.environment or {}, "priority": p.priority,
            "group_priority": g.priority}))
"#;
    let out = Command::new(python[0])
        .args(&python[1..])
        .arg("-c")
        .arg(parse)
        .arg(example("supervisord.conf.example"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[test]
fn supervisord_example_parses_and_matches_the_example_config() {
    let Some(programs) = supervisord_programs() else {
        return;
    };
    let config = example_config();
    let env_file = config["env_file"]["path"].as_str().unwrap();
    let restart = &config["restart"];

    let app: Vec<&Value> = programs.iter().filter(|p| p["group"] == "app").collect();
    let names: Vec<String> = app
        .iter()
        .map(|p| format!("app:{}", p["name"].as_str().unwrap()))
        .collect();
    let mut want: Vec<String> = restart["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    want.reverse();
    assert_eq!(names, want, "the group's programs are not restart.programs");
    for p in &app {
        let command = p["command"].as_str().unwrap();
        assert!(
            command.starts_with(&format!("bash -c '. {env_file} && exec ")),
            "{command} does not source {env_file}"
        );
    }

    let handler = programs
        .iter()
        .find(|p| p["name"] == "failover-handler")
        .expect("no failover-handler program");
    assert_eq!(handler["stopsignal"], 15, "{handler}");
    assert_eq!(handler["stdout_logfile"], "/dev/stdout", "{handler}");
    let command = handler["command"].as_str().unwrap();
    assert!(
        command.contains(" run --config /etc/failover-handler.toml"),
        "{command}"
    );
    for var in ["CONNECTION_KEEPALIVE_ORG_ID", "CONNECTION_KEEPALIVE_TXN_ID"] {
        assert!(handler["environment"][var].is_string(), "{handler}");
    }
    let args: Vec<&str> = restart["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["-c", "/etc/supervisor/supervisord.conf"]);
}

#[test]
fn env_file_example_is_what_the_handler_writes_and_reads() {
    let text = std::fs::read_to_string(example("ext_cloud.env.example")).unwrap();
    assert_eq!(text, env_for("EU"));
    let dir = TestDir::new();
    let out = Cmd::bare(&dir)
        .sub(&["status"])
        .flag(
            "--env-file",
            &example("ext_cloud.env.example").display().to_string(),
        )
        .exits(0);
    assert!(
        out.stdout
            .contains("Active region: EU (cloud cloud.eu.ext.com)"),
        "{out:#?}"
    );
}

/// supervisord starts the lowest priority first: the tunnel before anything else, and the
/// handler after the application's programs, so that its first probes find the tunnel up.
#[test]
fn supervisord_example_starts_the_tunnel_first_and_the_handler_last() {
    let Some(programs) = supervisord_programs() else {
        return;
    };
    let order = |p: &Value| {
        (
            p["group_priority"].as_i64().unwrap(),
            p["priority"].as_i64().unwrap(),
        )
    };
    let mut sorted: Vec<&Value> = programs.iter().collect();
    sorted.sort_by_key(|p| order(p));
    let names: Vec<&str> = sorted.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"stunnel"), "{names:?}");
    assert_eq!(names.last(), Some(&"failover-handler"), "{names:?}");
}
