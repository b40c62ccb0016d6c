//! The daemon as a user sees it: the env file it writes, the supervisorctl calls it makes,
//! the log lines it prints, against a fake tunnel on 127.0.0.1.

use crate::support::{
    Cmd, DEFAULT_LIST, FakeTunnel, Mode, SUPERVISOR_ERROR, TestDir, assert_fields, between,
    cloud_of, env_for, in_region, in_region_with, restart_order, settled_daemon, text,
    wait_for_probes, wait_until,
};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const THRESHOLD: Duration = Duration::from_secs(1);

#[test]
fn startup_without_env_file_writes_it_and_restarts_in_order() {
    let dir = TestDir::new();
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();

    wait_until(WAIT, "six supervisorctl calls", || dir.calls().len() >= 6);
    assert_eq!(
        dir.read_env().as_deref(),
        Some("export EXT_CLOUD=cloud.eu.ext.com\nexport EXT_REGION=EU\n")
    );
    let mode = fs::metadata(dir.env_file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "env file mode is {mode:o}");
    assert_eq!(
        dir.app_dir_entries(),
        vec![
            ".ext_cloud.env.lock".to_string(),
            "ext_cloud.env".to_string()
        ]
    );
    assert_eq!(dir.calls(), restart_order());

    let written = d.wait_for_event("env_file_written", WAIT);
    assert_eq!(written["region"], "EU", "{written}");
    assert_eq!(written["cloud"], "cloud.eu.ext.com", "{written}");
    assert_eq!(
        written["path"],
        dir.env_file().to_str().unwrap(),
        "{written}"
    );
    let done = d.wait_for_event("restart_done", WAIT);
    assert_eq!(done["level"], "INFO", "{done}");
    assert!(done["duration_ms"].is_u64(), "{done}");
    // The stand-in is a wrapper: supervisorctl, and no XML-RPC server to name.
    let path = d.wait_for_event("restart_path", WAIT);
    assert_eq!(path["via"], "supervisorctl", "{path}");
    assert_eq!(path["reason"], "wrapper", "{path}");
    assert!(path.get("serverurl").is_none(), "{path}");
    wait_for_probes(&tunnel, "EU", 2);
    assert_eq!(dir.calls(), restart_order(), "restarted more than once");
    d.finish();
}

#[test]
fn start_line_names_region_cloud_and_version() {
    let (dir, tunnel) = in_region("EU");
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    let start = d.wait_for_event("daemon_started", WAIT);
    assert_fields(
        &start,
        &[
            ("level", "INFO"),
            ("version", env!("CARGO_PKG_VERSION")),
            ("region", "EU"),
            ("cloud", "cloud.eu.ext.com"),
        ],
    );
    d.finish();
}

fn assert_startup_leaves_env_file_alone(contents: &str) {
    let dir = TestDir::new();
    dir.write_env(contents);
    let before = fs::metadata(dir.env_file()).unwrap();
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();

    let current = d.wait_for_event("env_file_current", WAIT);
    assert_eq!(current["region"], "EU", "{current}");
    wait_for_probes(&tunnel, "EU", 3);
    assert_eq!(dir.calls(), Vec::<String>::new(), "{}", d.dump());
    assert_eq!(dir.read_env().as_deref(), Some(contents));
    let after = fs::metadata(dir.env_file()).unwrap();
    assert_eq!(before.ino(), after.ino(), "env file replaced");
    assert_eq!(
        before.mtime_nsec(),
        after.mtime_nsec(),
        "env file rewritten"
    );
    assert!(d.events("env_file_written").is_empty(), "{}", d.dump());
    d.finish();
}

cases! {
    assert_startup_leaves_env_file_alone;
    startup_on_env_file_naming_the_region_touches_nothing: (&env_for("EU"));
    startup_accepts_old_env_file_without_trailing_newline: (
        "export EXT_CLOUD=cloud.eu.ext.com\nexport EXT_REGION=EU",
    );
}

/// Which failover a scenario expects: from `from` (failing with `mode`) to `to`.
struct Outage<'a> {
    region_flag: Option<&'a str>,
    list: Option<&'a str>,
    from: &'a str,
    to: &'a str,
    mode: Mode,
    kind: &'a str,
}

/// Runs an outage of `from` and checks the failover to `to`, its timing, messages,
/// env file and restarts, and that the daemon then stays on `to`.
fn assert_outage_fails_over(o: Outage) {
    let dir = TestDir::new();
    dir.write_env(&env_for(o.from));
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[(o.from, o.mode)]);
    let mut cmd = Cmd::new(&dir).tunnel(&tunnel);
    if let Some(region) = o.region_flag {
        cmd = cmd.flag("--region", region);
    }
    if let Some(list) = o.list {
        cmd = cmd.env("EXT_CLOUD_FAILOVER_LIST", list);
    }
    let d = cmd.spawn_daemon();

    let failover = d.wait_for_event("failover", WAIT);
    let first_failure = d.wait_for_event("probe_failed", WAIT);
    // The outage timer starts when the first failed probe was sent, `latency_ms` before it
    // was logged.
    let sent = Duration::from_millis(first_failure["latency_ms"].as_u64().unwrap_or(0));
    let waited = between(&first_failure, &failover) + sent;
    println!("failover {waited:?} after the first failed probe was sent");
    assert!(
        waited >= THRESHOLD,
        "failover only {waited:?} after the first failure\n{}",
        d.dump()
    );
    assert_eq!(failover["level"], "WARN", "{failover}");
    assert_eq!(
        failover["message"],
        format!(
            "Waited for 1s. Application restarting due to failure with Ext Cloud: {}",
            cloud_of(o.from)
        )
    );
    assert_eq!(failover["region"], o.from, "{failover}");
    assert_eq!(failover["cloud"], cloud_of(o.from), "{failover}");
    assert_eq!(failover["to_region"], o.to, "{failover}");
    assert_eq!(failover["to_cloud"], cloud_of(o.to), "{failover}");

    let restarting = d.wait_for_event("restarting", WAIT);
    assert_eq!(restarting["level"], "INFO", "{restarting}");
    assert_eq!(
        restarting["message"],
        format!(
            "Re-starting application with the new region {} and cloud {}.",
            o.to,
            cloud_of(o.to)
        )
    );
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for(o.to)));
    assert_eq!(dir.calls(), restart_order());
    // One switch, one duration: the failover, the end of the outage and the switch say how
    // long the region had failed with the same number.
    let ended = d.wait_for_event("outage_ended", WAIT);
    let switch = d.wait_for_event("switch", WAIT);
    assert!(failover["failed_for_ms"].is_u64(), "{failover}");
    assert_eq!(ended["failed_for_ms"], failover["failed_for_ms"], "{ended}");
    assert_eq!(
        switch["failed_for_ms"], failover["failed_for_ms"],
        "{switch}"
    );

    wait_for_probes(&tunnel, o.to, 3);
    assert_eq!(d.events("failover").len(), 1, "{}", d.dump());
    assert_eq!(dir.read_env(), Some(env_for(o.to)));
    assert_eq!(dir.calls(), restart_order(), "restarted again");

    assert_eq!(first_failure["level"], "WARN", "{first_failure}");
    assert_eq!(first_failure["region"], o.from, "{first_failure}");
    assert_eq!(first_failure["error_kind"], o.kind, "{first_failure}");
    assert!(first_failure["latency_ms"].is_u64(), "{first_failure}");
    assert!(first_failure["failing_for_ms"].is_u64(), "{first_failure}");
    if let Mode::Status(code) = o.mode {
        assert_eq!(first_failure["http_status"], code, "{first_failure}");
    }
    d.finish();
}

fn eu_outage(mode: Mode, kind: &str) -> Outage<'_> {
    Outage {
        region_flag: Some("EU"),
        list: None,
        from: "EU",
        to: "NAM",
        mode,
        kind,
    }
}

cases! {
    assert_outage_fails_over;
    outage_503_fails_over_after_threshold: (eu_outage(Mode::Status(503), "status"));
    outage_reset_fails_over_after_threshold: (eu_outage(Mode::Reset, "reset"));
    outage_hang_fails_over_after_threshold: (eu_outage(Mode::Hang, "timeout"));
}

/// A refusal of the loopback tunnel is a local fault: the programs are restarted in place at
/// the threshold, and the switch comes only another threshold later, worded as the tunnel's.
#[test]
fn tunnel_down_restarts_in_place_then_switches_after_another_threshold() {
    let (dir, tunnel) = in_region_with("EU", Mode::Up, &[("EU", Mode::Refuse)]);
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    let address = format!("127.0.0.1:{}", tunnel.port());

    let first = d.wait_for_event("probe_failed", WAIT);
    assert_eq!(first["error_kind"], "tunnel_down", "{first}");
    let healed = d.wait_for_event("tunnel_restart", WAIT);
    assert_fields(
        &healed,
        &[
            ("level", "WARN"),
            ("region", "EU"),
            ("error_kind", "tunnel_down"),
            ("tunnel", &address),
        ],
    );
    assert!(
        text(&healed["message"]).contains(&format!("local tunnel at {address}")),
        "{healed}"
    );
    assert!(between(&first, &healed) >= THRESHOLD, "{}", d.dump());
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    assert!(d.events("failover").is_empty(), "{}", d.dump());

    let failover = d.wait_for_event("failover", WAIT);
    assert!(between(&healed, &failover) >= THRESHOLD, "{}", d.dump());
    assert_fields(
        &failover,
        &[
            ("region", "EU"),
            ("to_region", "APAC"),
            ("tunnel", &address),
        ],
    );
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "APAC",
        WAIT,
    );
    assert_eq!(dir.read_env(), Some(env_for("APAC")));
    assert!(
        !d.lines().concat().contains("failure with Ext Cloud"),
        "the cloud's message is for cloud failures only\n{}",
        d.dump()
    );
    assert_eq!(d.events("tunnel_restart").len(), 1, "{}", d.dump());
}

#[test]
fn outage_with_region_apac_moves_to_nam() {
    assert_outage_fails_over(Outage {
        region_flag: Some("APAC"),
        list: None,
        from: "APAC",
        to: "NAM",
        mode: Mode::Status(503),
        kind: "status",
    });
}

#[test]
fn outage_of_last_region_wraps_around_to_first() {
    assert_outage_fails_over(Outage {
        region_flag: None,
        list: Some(DEFAULT_LIST),
        from: "APAC",
        to: "NAM",
        mode: Mode::Status(503),
        kind: "status",
    });
}

#[test]
fn single_success_resets_the_outage_timer() {
    let threshold = Duration::from_secs(2);
    let (dir, tunnel) = in_region_with("EU", Mode::Up, &[("EU", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel_in(&tunnel, "EU")
        .flag("--threshold", "2s")
        .spawn_daemon();

    d.wait_for(
        |v| v["event"] == "probe_failed" && v["failing_for_ms"].as_u64() >= Some(1000),
        WAIT,
    );
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    tunnel.succeed_once("EU");
    wait_until(WAIT, "the one success", || !tunnel.success_pending("EU"));

    let failover = d.wait_for_event("failover", WAIT);
    let lines = d.json_lines();
    let recovered_at = lines
        .iter()
        .position(|v| v["event"] == "outage_ended")
        .unwrap_or_else(|| panic!("no `recovered` line after the success\n{}", d.dump()));
    let failover_at = lines.iter().position(|v| v["event"] == "failover").unwrap();
    assert!(recovered_at < failover_at, "{}", d.dump());
    let recovered = &lines[recovered_at];
    assert_eq!(recovered["level"], "INFO", "{recovered}");
    assert!(recovered["failed_for_ms"].is_u64(), "{recovered}");
    let second_start = lines[recovered_at..]
        .iter()
        .find(|v| v["event"] == "probe_failed")
        .unwrap();
    let waited = between(second_start, &failover);
    println!("failover {waited:?} after the failures resumed");
    assert!(
        waited >= threshold,
        "failover {waited:?} after the failures resumed, threshold {threshold:?}\n{}",
        d.dump()
    );
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    d.finish();
}

#[test]
fn manual_switch_is_adopted_not_fought() {
    let (dir, tunnel, d) = settled_daemon("EU", "daemon_started");

    Cmd::new(&dir)
        .tunnel(&tunnel)
        .sub(&["switch", "APAC"])
        .exits(0);
    assert_eq!(dir.read_env(), Some(env_for("APAC")));
    assert_eq!(dir.calls(), restart_order());

    let adopted = d.wait_for(|v| v["event"] == "adopted", WAIT);
    assert_fields(
        &adopted,
        &[
            ("region", "APAC"),
            ("cloud", "cloud.apac.ext.com"),
            ("previous_region", "EU"),
        ],
    );
    wait_for_probes(&tunnel, "APAC", 5);
    assert_eq!(dir.read_env(), Some(env_for("APAC")));
    assert_eq!(dir.calls(), restart_order(), "{}", d.dump());
    for event in ["failover", "restarting", "env_file_written"] {
        assert!(d.events(event).is_empty(), "{event}\n{}", d.dump());
    }
    d.finish();
}

#[test]
fn sigterm_exits_zero_within_a_second() {
    let (_dir, _tunnel, mut d) = settled_daemon("EU", "daemon_started");

    let (status, took) = d.terminate();
    println!("SIGTERM to exit: {took:?}");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", d.dump());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let shutdown = d.wait_for_event("daemon_stopped", WAIT);
    assert_eq!(shutdown["level"], "INFO", "{shutdown}");
    d.assert_log_contract();
}

#[test]
fn sigterm_during_hanging_probe_exits_zero_quickly() {
    let (dir, tunnel) = in_region_with("EU", Mode::Hang, &[]);
    let mut d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--timeout", "5s")
        .flag("--threshold", "30s")
        .spawn_daemon();
    d.wait_for_event("daemon_started", WAIT);
    wait_until(WAIT, "a hanging probe", || tunnel.request_count() >= 1);

    let (status, took) = d.terminate();
    println!("SIGTERM to exit during a hanging probe: {took:?}");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", d.dump());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    d.assert_log_contract();
}

fn retry_wait(line: &Value) -> Duration {
    let ms = line["retry_in_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retry_in_ms in {line}"));
    Duration::from_millis(ms) + WAIT
}

#[test]
fn failing_supervisorctl_is_logged_retried_and_completed() {
    let dir = TestDir::new();
    dir.fail_supervisorctl(true);
    let tunnel = FakeTunnel::start(&dir);
    let mut d = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();

    let first = d.wait_for_event("restart_failed", WAIT);
    assert_eq!(first["level"], "ERROR", "{first}");
    assert_eq!(first["exit_code"], 7, "{first}");
    let output = first["output"].as_str().unwrap_or_default();
    assert!(output.contains(SUPERVISOR_ERROR), "{first}");
    assert_eq!(first["program"], "app:application", "{first}");
    assert_eq!(first["action"], "stop", "{first}");
    assert!(first["attempt"].is_u64(), "{first}");
    assert!(first["retry_in_ms"].is_u64(), "{first}");

    d.wait_for_count(|v| v["event"] == "restart_failed", 2, retry_wait(&first));
    assert!(d.is_running(), "the daemon exited\n{}", d.dump());
    assert_eq!(dir.calls(), Vec::<String>::new());

    let last = d.events("restart_failed").pop().unwrap();
    dir.fail_supervisorctl(false);
    d.wait_for_event("restart_done", retry_wait(&last));
    assert!(d.is_running(), "the daemon exited\n{}", d.dump());
    assert_eq!(dir.calls(), restart_order());
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    d.finish();
}
