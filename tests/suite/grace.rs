//! The start-up grace: probe failures in the first `probe.startup_grace` are told at INFO
//! while the local tunnel comes up, and the outage clock runs all the same. A switch by hand
//! that restarts the programs opens a quiet window in the running daemon until its restart
//! ends: no outage is started from the tunnel's restart.

use crate::support::stack;
use crate::support::{
    Cmd, Daemon, Mode, Stack, StackOptions, assert_fields, env_for, in_region_with, rejects,
    wait_until,
};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// The WARN lines, but for the warning about the test's own short timings.
fn warned(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|v| v["level"] == "WARN" && v["event"] != "config_warning")
        .collect()
}

/// A tunnel that listens only a second after the start: its refusals are INFO, not WARN,
/// and once it answers the outage ends with nothing restarted.
#[test]
fn a_tunnel_that_listens_late_is_told_at_info_in_the_grace() {
    let (dir, tunnel) = in_region_with("EU", Mode::Up, &[("EU", Mode::Refuse)]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--threshold", "5s")
        .flag("--startup-grace", "10s")
        .spawn_daemon();
    let started = Instant::now();

    let first = d.wait_for(
        |v| v["event"] == "probe_failed" && v["error_kind"] == "tunnel_down",
        WAIT,
    );
    assert_eq!(first["level"], "INFO", "{first}");
    wait_until(WAIT, "a second of refusals", || {
        started.elapsed() >= Duration::from_secs(1)
    });
    tunnel.set_region("EU", Mode::Up);
    let ended = d.wait_for_event("outage_ended", WAIT);
    assert_eq!(ended["how"], "recovered", "{ended}");

    let lines = d.json_lines();
    let began = lines.iter().find(|v| v["event"] == "outage_started");
    let began = began.unwrap_or_else(|| panic!("no outage_started\n{}", d.dump()));
    assert_eq!(began["level"], "INFO", "{began}");
    assert!(
        lines
            .iter()
            .filter(|v| v["event"] == "probe_failed")
            .all(|v| v["level"] == "INFO"),
        "{}",
        d.dump()
    );
    assert_eq!(warned(&lines), Vec::<&Value>::new(), "{}", d.dump());
    assert!(dir.calls().is_empty(), "restarted: {:?}", dir.calls());
    d.finish();
}

/// A real outage at start is still confirmed after the threshold: the grace changes the
/// level of the failures, not the clock.
#[test]
fn an_outage_in_the_grace_still_fails_over_after_the_threshold() {
    let (dir, tunnel) = in_region_with("EU", Mode::Up, &[("EU", Mode::Reset)]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--region", "EU")
        .flag("--startup-grace", "30s")
        .spawn_daemon();

    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(failover["level"], "WARN", "{failover}");
    assert_eq!(failover["to_region"], "NAM", "{failover}");
    let began = d.wait_for_event("outage_started", WAIT);
    assert_eq!(began["level"], "INFO", "{began}");
    let first = d.wait_for_event("probe_failed", WAIT);
    assert_eq!(first["level"], "INFO", "{first}");
    assert_eq!(first["error_kind"], "reset", "{first}");
    d.wait_for_event("restart_done", WAIT);
    d.finish();
}

cases! {
    rejects;
    run_rejects_unparsable_startup_grace: (
        &["run"],
        &["--startup-grace"],
        |_, cmd| cmd.flag("--startup-grace", "soon"),
    );
    run_rejects_unparsable_startup_grace_key: (
        &["run"],
        &["probe.startup_grace"],
        |dir, cmd| {
            let config = dir.write_file("failover.toml", "[probe]\nstartup_grace = \"-1s\"\n");
            cmd.flag("--config", config.to_str().unwrap())
        },
    );
}

/// The real stack on EU, its tunnel taking a second to come up at each start and every
/// program two seconds to be RUNNING, and a daemon without a start-up grace seeing EU
/// healthy. `None` where the stack cannot run.
fn settled_on_eu_with_a_slow_tunnel() -> Option<(Stack, Daemon)> {
    let stack = Stack::start(StackOptions {
        env_region: Some("EU"),
        region: Some("EU"),
        startsecs: 2,
        ..StackOptions::default()
    })?;
    let d = stack
        .handler_cmd()
        .flag("--startup-grace", "0s")
        // A loaded machine's slow answer is no failure here: only what the switch does is.
        .flag("--threshold", "3s")
        .flag("--timeout", "1s")
        .spawn_daemon();
    d.wait_for_event("env_file_current", stack::WAIT);
    stack.wait_ok_probes("EU", 2);
    stack.delay_tunnel(1.0);
    Some((stack, d))
}

/// `switch NAM` on the stack's own config.
fn switch_to_nam(stack: &Stack) -> Cmd {
    stack.handler_cmd().sub(&["switch", "NAM"])
}

/// An operator's `switch` restarts the programs, the tunnel among them: the running daemon
/// tells the refusals while that restart runs at INFO and starts no outage from them; once
/// the programs are RUNNING again, a real outage of the new region is a WARN as always.
#[test]
fn a_switch_by_hand_restarting_the_tunnel_is_quiet_until_its_restart_ends() {
    let Some((stack, d)) = settled_on_eu_with_a_slow_tunnel() else {
        return;
    };
    let before = d.json_lines().len();
    switch_to_nam(&stack).exits(0);
    let began = d.wait_for_event("switch_restart_began", stack::WAIT);
    assert_fields(&began, &[("level", "INFO"), ("region", "NAM")]);
    let ended = d.wait_for_event("switch_restart_ended", stack::WAIT);
    assert_fields(
        &ended,
        &[("level", "INFO"), ("region", "NAM"), ("how", "done")],
    );
    stack.wait_ok_probes("NAM", 3);

    let lines = d.json_lines();
    let after = &lines[before..];
    assert!(
        after
            .iter()
            .any(|v| v["event"] == "probe_failed" && v["level"] == "INFO"),
        "the tunnel never refused during the switch's restart\n{}",
        d.dump()
    );
    assert_eq!(warned(after), Vec::<&Value>::new(), "{}", d.dump());
    for event in ["outage_started", "failover", "tunnel_restart", "restarting"] {
        assert!(
            after.iter().all(|v| v["event"] != event),
            "{event}\n{}",
            d.dump()
        );
    }
    assert_eq!(stack.dir.read_env(), Some(env_for("NAM")));

    stack.cloud("NAM").set_mode(Mode::Status(503));
    let outage = d.wait_for(
        |v| v["event"] == "outage_started" && v["region"] == "NAM",
        stack::WAIT,
    );
    assert_eq!(outage["level"], "WARN", "{outage}");
    d.finish();
}

/// A switch killed in the middle of its restart leaves no quiet behind: the daemon sees it
/// gone at its next probe, says so, and a real outage after it is a WARN.
#[test]
fn a_switch_killed_mid_restart_ends_the_quiet_at_once() {
    let Some((stack, d)) = settled_on_eu_with_a_slow_tunnel() else {
        return;
    };
    let switch = switch_to_nam(&stack).start();
    d.wait_for_event("switch_restart_began", stack::WAIT);
    let pid = switch.pid();
    switch.kill();
    let ended = d.wait_for_event("switch_restart_ended", stack::WAIT);
    assert_fields(&ended, &[("region", "NAM"), ("how", "abandoned")]);
    assert_eq!(ended["pid"], pid, "{ended}");

    stack.cloud("NAM").set_mode(Mode::Status(503));
    let outage = d.wait_for(
        |v| v["event"] == "outage_started" && v["region"] == "NAM",
        stack::WAIT,
    );
    assert_eq!(outage["level"], "WARN", "{outage}");
    d.finish();
}
