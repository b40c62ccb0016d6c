//! The start-up grace: probe failures in the first `probe.startup_grace` are told at INFO
//! while the local tunnel comes up, and the outage clock runs all the same.

use crate::support::{Cmd, Mode, in_region_with, rejects, wait_until};
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
