//! The edges a real deployment meets: a start-up error in supervisord's JSON log, region names
//! in any case, extra supervisorctl arguments from the command line, the example config.

use crate::support::{Cmd, SERVICE, TestDir, env_for};
use serde_json::Value;
use std::path::PathBuf;

#[test]
fn a_config_error_of_the_daemon_is_one_human_line_on_stderr_and_one_json_line_on_stdout() {
    let dir = TestDir::new();
    let garbage = dir.write_file("garbage.pem", "not a certificate\n");
    let garbage_arg = garbage.display().to_string();
    let out = Cmd::new(&dir).flag("--ca-cert", &garbage_arg).output();
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("failover-handler: error: --ca-cert: "),
        "{out:?}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "ERROR", "{v}");
    assert_eq!(v["service"], SERVICE, "{v}");
    assert_eq!(v["event"], "startup_failed", "{v}");
    assert_eq!(v["error_kind"], "config", "{v}");
    assert_eq!(v["origin"], "--ca-cert", "{v}");
    assert_eq!(v["exit_code"], 2, "{v}");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains(&garbage_arg), "{v}");
    assert_eq!(
        out.stderr.trim_end(),
        format!("failover-handler: error: {message}")
    );
    assert_eq!(dir.read_env(), None);

    // A usage error of the command line, too.
    let out = Cmd::new(&dir).arg("--no-such-flag").output();
    assert_eq!(out.code, Some(2), "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["error_kind"], "usage", "{v}");

    // Text logs, or a one-shot command: stderr only.
    let out = Cmd::new(&dir)
        .flag("--ca-cert", &garbage_arg)
        .flag("--log-format", "text")
        .output();
    assert_eq!((out.code, out.stdout.as_str()), (Some(2), ""), "{out:?}");
    let out = Cmd::new(&dir)
        .sub(&["check"])
        .flag("--ca-cert", &garbage_arg)
        .output();
    assert_eq!((out.code, out.stdout.as_str()), (Some(2), ""), "{out:?}");
}

#[test]
fn region_names_are_one_region_in_any_case() {
    let dir = TestDir::new();
    let out = Cmd::new(&dir)
        .sub(&["config"])
        .flag("--region", "eu")
        .output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("region = \"EU\""), "{out:?}");

    let out = Cmd::new(&dir).sub(&["switch", "eu"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    let pin = std::fs::read_to_string(dir.state_dir().join("pin")).unwrap();
    assert_eq!(pin, "EU\n");

    let out = Cmd::new(&dir).sub(&["switch", "Eu"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("EU (cloud cloud.eu.ext.com) is already the active region"),
        "{out:?}"
    );

    // An env file written by hand in lower case is the same region.
    dir.write_env("export EXT_CLOUD=cloud.apac.ext.com\nexport EXT_REGION=apac\n");
    let out = Cmd::new(&dir).sub(&["switch", "APAC"]).output();
    assert!(
        out.stdout
            .contains("APAC (cloud cloud.apac.ext.com) is already the active region"),
        "{out:?}"
    );
}

#[test]
fn supervisorctl_arguments_come_from_the_command_line_before_each_command() {
    let dir = TestDir::new();
    let out = Cmd::new(&dir)
        .sub(&["switch", "EU"])
        .arg("--supervisorctl-arg=-c")
        .arg("--supervisorctl-arg")
        .arg("/etc/supervisor/supervisord.conf")
        .output();
    assert_eq!(out.code, Some(0), "{out:?}");
    let calls = dir.calls();
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with("-c /etc/supervisor/supervisord.conf ")),
        "{calls:?}"
    );
    assert_eq!(
        calls[0],
        "-c /etc/supervisor/supervisord.conf stop app:application"
    );

    let cfg = dir.write_file(
        "h.toml",
        "[restart]\nargs = [\"-c\", \"/from/file.conf\"]\n",
    );
    let out = Cmd::new(&dir)
        .sub(&["config"])
        .flag("--config", &cfg.display().to_string())
        .arg("--supervisorctl-arg=-s")
        .arg("--supervisorctl-arg=unix:///tmp/s.sock")
        .output();
    assert!(
        out.stdout
            .contains("args = [\"-s\", \"unix:///tmp/s.sock\"]"),
        "{out:?}"
    );

    let out = Cmd::new(&dir)
        .sub(&["config"])
        .arg("--supervisorctl-arg=")
        .output();
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--supervisorctl-arg"), "{out:?}");
}

#[test]
fn the_example_config_names_no_reference_target_that_cannot_answer() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("failover-handler.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert!(parsed["network"].get("reference").is_none(), "{text}");
    assert!(
        !text.contains("192.0.2."),
        "a documentation address that never answers"
    );
    let dir = TestDir::new();
    let out = Cmd::bare(&dir)
        .sub(&["config"])
        .flag("-c", &path.display().to_string())
        .output();
    assert_eq!(out.code, Some(0), "{out:?}");
}

/// A switch whose restart cannot work (here: no supervisorctl) refuses before it writes the
/// env file or pins anything, and says what it found.
#[test]
fn a_switch_that_cannot_restart_refuses_before_writing() {
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let out = Cmd::new(&dir)
        .sub(&["switch", "EU"])
        .flag("--supervisorctl", "/nonexistent/supervisorctl")
        .output();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr.trim_end(),
        "failover-handler: error: switch to EU refused before writing anything: cannot run \
         /nonexistent/supervisorctl: not found (check --supervisorctl); the env file still \
         names NAM, nothing was restarted",
        "{out:?}"
    );
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert!(!dir.state_dir().join("pin").exists(), "pinned");

    // With --no-restart there is nothing to check: the switch writes.
    let out = Cmd::new(&dir)
        .sub(&["switch", "EU", "--no-restart"])
        .flag("--supervisorctl", "/nonexistent/supervisorctl")
        .output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    assert!(dir.state_dir().join("pin").exists(), "not pinned");
}
