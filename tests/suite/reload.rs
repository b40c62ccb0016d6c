//! Signals to a running daemon: SIGHUP reloads the config file (a bad one is refused and the
//! old one kept), SIGQUIT stops it cleanly like SIGTERM, SIGUSR1 and SIGUSR2 are ignored.

use crate::support::stack::WAIT;
use crate::support::{Cmd, Daemon, FakeTunnel, Mode, TestDir, in_region_with, settled_daemon};
use crate::support::{text, wait_for_probes};
use std::fs;
use std::path::PathBuf;

/// Replaces the config file whole, as an editor that saves through a temp file does.
fn write_config(dir: &TestDir, contents: &str) -> PathBuf {
    let path = dir.path().join("failover-handler.toml");
    let tmp = dir.path().join("failover-handler.toml.new");
    fs::write(&tmp, contents).unwrap();
    fs::rename(&tmp, &path).unwrap();
    path
}

/// A daemon on NAM, which answers 503, whose config file sets a one-hour threshold: it has
/// seen a few failures and switched nowhere.
fn failing_for_an_hour() -> (TestDir, FakeTunnel, Daemon) {
    let (dir, tunnel) = in_region_with("NAM", Mode::Up, &[("NAM", Mode::Status(503))]);
    let config = write_config(&dir, "[failover]\nthreshold = \"1h\"\n");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .without("--threshold")
        .flag("--config", config.to_str().unwrap())
        .spawn_daemon();
    d.wait_for_event("daemon_started", WAIT);
    wait_for_probes(&tunnel, "NAM", 3);
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    (dir, tunnel, d)
}

#[test]
fn sighup_applies_a_new_threshold_and_names_what_needs_a_restart() {
    let (dir, _tunnel, d) = failing_for_an_hour();

    write_config(
        &dir,
        "[failover]\nthreshold = \"1s\"\n\n[restart]\ntimeout = \"7s\"\n",
    );
    d.signal("HUP");
    let reloaded = d.wait_for_event("config_reloaded", WAIT);
    assert_eq!(reloaded["level"], "INFO", "{reloaded}");
    assert_eq!(reloaded["applied"], "failover.threshold", "{reloaded}");
    assert_eq!(reloaded["needs_restart"], "restart.timeout", "{reloaded}");
    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(failover["to_region"], "EU", "{failover}");
    d.wait_for_event("restart_done", WAIT);
    d.finish();
}

#[test]
fn sighup_with_a_bad_config_file_keeps_the_old_one() {
    let (dir, tunnel, mut d) = failing_for_an_hour();

    write_config(
        &dir,
        "[failover]\nthreshold = \"1s\"\nthreshhold = \"2s\"\n",
    );
    d.signal("HUP");
    let refused = d.wait_for_event("config_reload_refused", WAIT);
    assert_eq!(refused["level"], "ERROR", "{refused}");
    let message = text(&refused["message"]);
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("threshhold"), "{message}");
    assert!(message.contains("the old one is kept"), "{message}");
    wait_for_probes(&tunnel, "NAM", 5);
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    assert!(d.is_running(), "{}", d.dump());
    d.finish();
}

#[test]
fn sigquit_stops_cleanly_with_daemon_stopped() {
    let (_dir, _tunnel, mut d) = settled_daemon("EU", "daemon_started");

    let (status, _) = d.stop_with("QUIT");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", d.dump());
    let stopped = d.wait_for_event("daemon_stopped", WAIT);
    assert_eq!(stopped["level"], "INFO", "{stopped}");
}

#[test]
fn sigusr1_and_sigusr2_are_ignored() {
    let (_dir, tunnel, mut d) = settled_daemon("EU", "daemon_started");

    d.signal("USR1");
    d.signal("USR2");
    wait_for_probes(&tunnel, "EU", 3);
    assert!(d.is_running(), "{}", d.dump());
    d.finish();
}
