//! The one-shot side of the command line: bad input, `switch`, `status`, `check`,
//! `config`, `--help` and `--version`, as a user running them sees them.

use crate::support::{
    Cmd, FakeTunnel, Mode, Output, RESTART_ORDER, SIG_SHA256, TestDir, assert_bad_input, env_for,
    in_region, in_region_with, rejects,
};
use serde_json::Value;

/// A config file with a key the product does not know, and its path.
fn bogus_config(dir: &TestDir) -> String {
    let config = dir.write_file("failover.toml", "[probe]\nbogus = 1\n");
    config.to_str().unwrap().to_owned()
}

const LIST: &str = "EXT_CLOUD_FAILOVER_LIST";

#[test]
fn run_rejects_unknown_restart_path() {
    rejects(&["run"], &["--restart-via"], |_, cmd| {
        cmd.flag("--restart-via", "ssh")
    });
    rejects(&["run"], &["restart.via"], |dir, cmd| {
        let config = dir.write_file("failover.toml", "[restart]\nvia = \"magic\"\n");
        cmd.flag("--config", config.to_str().unwrap())
    });
}

cases! {
    rejects;
    run_rejects_empty_list: (&["run"], &[LIST], |_, cmd| cmd.env(LIST, ""));
    run_rejects_pair_without_equals: (&["run"], &[LIST], |_, cmd| cmd.env(LIST, "NAM"));
    run_rejects_duplicate_region: (&["run"], &[LIST], |_, cmd| cmd.env(LIST, "NAM=a,NAM=b"));
    run_rejects_semicolon_in_host: (&["run"], &[LIST], |_, cmd| cmd.env(LIST, "NAM=a;reboot"));
    run_rejects_command_substitution_in_host: (
        &["run"],
        &[LIST],
        |_, cmd| cmd.env(LIST, "NAM=$(id)"),
    );
    run_rejects_space_in_host: (&["run"], &[LIST], |_, cmd| cmd.env(LIST, "EU=a b"));
    run_rejects_unknown_region: (&["run"], &["region"], |_, cmd| cmd.flag("--region", "XX"));
    run_rejects_unparsable_interval: (
        &["run"],
        &["interval"],
        |_, cmd| cmd.flag("--interval", "abc"),
    );
    run_rejects_zero_interval: (&["run"], &["interval"], |_, cmd| cmd.flag("--interval", "0s"));
    run_rejects_unparsable_timeout: (
        &["run"],
        &["timeout"],
        |_, cmd| cmd.flag("--timeout", "soon"),
    );
    run_rejects_threshold_below_interval: (
        &["run"],
        &["threshold"],
        |_, cmd| cmd.flag("--interval", "10s").flag("--threshold", "5s"),
    );
    run_rejects_unknown_config_key: (
        &["run"],
        &["bogus"],
        |dir, cmd| cmd.flag("--config", &bogus_config(dir)),
    );
    run_rejects_unknown_key_in_config_from_env: (
        &["run"],
        &["bogus"],
        |dir, cmd| cmd.env("FAILOVER_HANDLER_CONFIG", &bogus_config(dir)),
    );
    run_rejects_missing_config_file: (
        &["run"],
        &["config", "/nonexistent"],
        |_, cmd| cmd.flag("--config", "/nonexistent"),
    );
    switch_rejects_bad_list: (&["switch", "EU"], &[LIST], |_, cmd| cmd.env(LIST, "NAM"));
    switch_rejects_unparsable_interval: (
        &["switch", "EU"],
        &["interval"],
        |_, cmd| cmd.flag("--interval", "abc"),
    );
    switch_rejects_unknown_config_key: (
        &["switch", "EU"],
        &["bogus"],
        |dir, cmd| cmd.flag("--config", &bogus_config(dir)),
    );
    switch_rejects_unknown_region: (&["switch", "XX"], &["XX", "region"], |_, cmd| cmd);
}

#[test]
fn run_rejects_config_that_is_not_toml() {
    let dir = TestDir::new();
    let config = dir.write_file("settings.toml", "this is { not toml\n");
    let path = config.to_str().unwrap().to_owned();
    let cmd = Cmd::new(&dir).sub(&["run"]).flag("--config", &path);
    assert_bad_input(&dir, cmd, &["config", &path]);
}

#[test]
fn switch_no_restart_writes_env_file_only() {
    let dir = TestDir::new();
    Cmd::new(&dir)
        .sub(&["switch", "NAM"])
        .switch("--no-restart")
        .exits(0);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert_eq!(dir.calls(), Vec::<String>::new());
}

#[test]
fn switch_and_status_work_without_the_probe_ids_but_check_names_them() {
    let dir = TestDir::new();
    Cmd::new(&dir)
        .env_remove("CONNECTION_KEEPALIVE_ORG_ID")
        .env_remove("CONNECTION_KEEPALIVE_TXN_ID")
        .sub(&["switch", "NAM"])
        .switch("--no-restart")
        .exits(0);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    Cmd::new(&dir)
        .env_remove("CONNECTION_KEEPALIVE_ORG_ID")
        .sub(&["status"])
        .exits(0);
    let check = Cmd::new(&dir)
        .env_remove("CONNECTION_KEEPALIVE_ORG_ID")
        .sub(&["check"])
        .exits(2);
    assert!(
        check.stderr.contains("CONNECTION_KEEPALIVE_ORG_ID"),
        "{check:#?}"
    );
}

#[test]
fn switch_writes_env_file_and_restarts_in_order() {
    let dir = TestDir::with_env("EU");
    let out = Cmd::new(&dir).sub(&["switch", "NAM"]).exits(0);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert_eq!(dir.calls(), RESTART_ORDER.to_vec());
    dir.assert_env_file_and_switch_locks_only();
    // A supervisorctl that is not the plain one (here a stand-in) is called as configured.
    assert!(
        out.stderr
            .contains("Restarting programs through supervisorctl: "),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("is not plain supervisorctl"),
        "{out:#?}"
    );
}

/// A first switch has no previous region and, through supervisorctl, no XML-RPC server: its
/// log lines leave those fields out rather than print them empty.
#[test]
fn a_first_switch_logs_no_empty_field() {
    let dir = TestDir::new();
    let out = Cmd::new(&dir).sub(&["switch", "NAM"]).exits(0);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert!(
        out.stderr.contains("Switched by hand to region NAM"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("=\"\""), "{}", out.stderr);
}

#[test]
fn status_without_env_file_says_no_active_region() {
    let dir = TestDir::new();
    let out = Cmd::new(&dir).sub(&["status"]).exits(0);
    assert!(
        out.stdout.to_lowercase().contains("no active region"),
        "{out:#?}"
    );
}

#[test]
fn status_names_region_and_cloud_of_env_file() {
    let dir = TestDir::with_env("EU");
    let out = Cmd::new(&dir).sub(&["status"]).exits(0);
    assert!(out.stdout.contains("EU"), "{out:#?}");
    assert!(out.stdout.contains("cloud.eu.ext.com"), "{out:#?}");
}

fn status_json(dir: &TestDir) -> Value {
    let out = Cmd::new(dir).sub(&["status"]).switch("--json").exits(0);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"))
}

#[test]
fn status_json_names_region_and_cloud() {
    let dir = TestDir::with_env("EU");
    let status = status_json(&dir);
    assert_eq!(status["region"], "EU", "{status}");
    assert_eq!(status["cloud"], "cloud.eu.ext.com", "{status}");
}

#[test]
fn status_json_without_env_file_has_null_region() {
    let dir = TestDir::new();
    let status = status_json(&dir);
    assert!(status.get("region").is_some(), "{status}");
    assert_eq!(status["region"], Value::Null, "{status}");
}

fn check(dir: &TestDir, tunnel: &FakeTunnel) -> Output {
    Cmd::new(dir).tunnel(tunnel).sub(&["check"]).output()
}

/// Whether `text` holds a number of milliseconds, as `12 ms` or `12ms`.
fn has_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices("ms").any(|(i, _)| {
        let before = text[..i].trim_end();
        let digit_before = before.bytes().last().is_some_and(|b| b.is_ascii_digit());
        let word_ends = bytes.get(i + 2).is_none_or(|b| !b.is_ascii_alphanumeric());
        digit_before && word_ends
    })
}

#[test]
fn check_healthy_exits_zero_with_latency() {
    let (dir, tunnel) = in_region("EU");
    let out = check(&dir, &tunnel);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.contains("healthy"), "{out:#?}");
    assert!(!out.stdout.contains("unhealthy"), "{out:#?}");
    assert!(has_millis(&out.stdout), "no latency in ms: {out:#?}");
    assert_eq!(dir.calls(), Vec::<String>::new());
}

#[test]
fn check_503_exits_one_and_says_status() {
    let (dir, tunnel) = in_region_with("EU", Mode::Status(503), &[]);
    let out = check(&dir, &tunnel);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stdout.contains("status"), "{out:#?}");
    assert!(out.stdout.contains("503"), "{out:#?}");
}

#[test]
fn check_refused_exits_one_and_says_refused() {
    let (dir, tunnel) = in_region_with("EU", Mode::Refuse, &[]);
    let out = check(&dir, &tunnel);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stdout
            .contains("tunnel_down: the local tunnel at 127.0.0.1:"),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains(" refuses connections; failed after "),
        "{out:#?}"
    );
    assert_eq!(tunnel.connection_count(), 0);
}

#[test]
fn check_untrusted_certificate_exits_one_and_says_tls() {
    let (dir, tunnel) = in_region("EU");
    let out = Cmd::new(&dir).untrusted(&tunnel).sub(&["check"]).exits(1);
    assert!(out.stdout.contains("tls"), "{out:#?}");
    assert_eq!(tunnel.request_count(), 0, "a request went through");
}

#[test]
fn check_insecure_accepts_untrusted_certificate() {
    let (dir, tunnel) = in_region("EU");
    let out = Cmd::new(&dir).insecure(&tunnel).sub(&["check"]).exits(0);
    assert!(out.stdout.contains("healthy"), "{out:#?}");
    assert!(!out.stdout.contains("unhealthy"), "{out:#?}");
}

#[test]
fn probe_sends_signature_header_and_fills_url() {
    let (dir, tunnel) = in_region("EU");
    let out = check(&dir, &tunnel);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let requests = tunnel.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/v2/org1/cloudlookup/txn1");
    assert_eq!(requests[0].header("X-SIG-Sha256"), Some(SIG_SHA256));
}

#[test]
fn version_prints_the_version() {
    let dir = TestDir::new();
    let out = Cmd::bare(&dir).arg("--version").exits(0);
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{out:#?}");
}

#[test]
fn help_mentions_every_subcommand() {
    let dir = TestDir::new();
    let out = Cmd::bare(&dir).arg("--help").exits(0);
    for sub in [
        "run", "switch", "status", "check", "config", "demo", "pause", "resume", "replay",
    ] {
        assert!(
            out.stdout.contains(sub),
            "--help does not mention {sub}: {out:#?}"
        );
    }
}

#[test]
fn config_prints_effective_configuration() {
    let dir = TestDir::new();
    let out = Cmd::new(&dir).sub(&["config"]).exits(0);
    let env_file = dir.env_file();
    assert!(out.stdout.contains(env_file.to_str().unwrap()), "{out:#?}");
    for cloud in [
        "cloud.nam.ext.com",
        "cloud.eu.ext.com",
        "cloud.apac.ext.com",
    ] {
        assert!(out.stdout.contains(cloud), "{out:#?}");
    }
}

/// Lines of `config` output about the probe interval.
fn interval_lines(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| l.contains("interval") && !l.contains("fail_interval"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn config_shows_interval_from_file_and_flag_wins() {
    let dir = TestDir::new();
    let config = dir.write_file("failover.toml", "[probe]\ninterval = \"7s\"\n");
    let from_file = Cmd::new(&dir)
        .without("--interval")
        .without("--threshold")
        .flag("--config", config.to_str().unwrap())
        .sub(&["config"]);
    let out = from_file.exits(0);
    assert!(
        interval_lines(&out).iter().any(|l| l.contains("7s")),
        "{out:#?}"
    );

    let out = from_file.flag("--interval", "3s").exits(0);
    let lines = interval_lines(&out);
    assert!(lines.iter().any(|l| l.contains("3s")), "{out:#?}");
    assert!(!lines.iter().any(|l| l.contains("7s")), "{out:#?}");
}

#[test]
fn a_failover_list_from_the_environment_keeps_the_files_health_urls_and_says_what_wins() {
    let dir = TestDir::new();
    let config = dir.write_file(
        "failover.toml",
        "[[regions]]\nname = \"EU\"\ncloud = \"cloud.eu2.ext.com\"\nhealth_url = \"tcp://127.0.0.1:1\"\n\n\
         [[regions]]\nname = \"LATAM\"\ncloud = \"cloud.latam.ext.com\"\nhealth_url = \"tcp://127.0.0.1:2\"\n",
    );
    let cmd = Cmd::new(&dir)
        .flag("--config", config.to_str().unwrap())
        .env(
            "EXT_CLOUD_FAILOVER_LIST",
            "NAM=cloud.nam.ext.com,EU=cloud.eu.ext.com",
        );
    let out = cmd.clone().sub(&["config"]).exits(0);
    let eu = out
        .stdout
        .split("[[regions]]")
        .find(|r| r.contains("name = \"EU\""))
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(eu.contains("cloud = \"cloud.eu.ext.com\""), "{out:#?}");
    assert!(
        eu.contains("health_url = \"tcp://127.0.0.1:1\""),
        "{out:#?}"
    );
    assert!(!out.stdout.contains("tcp://127.0.0.1:2"), "{out:#?}");
    let warnings: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("# warning:"))
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("regions[0].cloud")
            && w.contains("EXT_CLOUD_FAILOVER_LIST")
            && w.contains("cloud.eu.ext.com")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("regions[1]")
            && w.contains("LATAM")
            && w.contains("not in EXT_CLOUD_FAILOVER_LIST")),
        "{warnings:#?}"
    );

    let d = cmd.spawn_daemon();
    let said = d.wait_for(
        |v| {
            v["event"] == "config_warning"
                && v["message"].as_str().is_some_and(|m| m.contains("LATAM"))
        },
        std::time::Duration::from_secs(10),
    );
    assert_eq!(said["level"], "WARN", "{said}");
    d.finish();
}
