//! A restart of the handler changes nothing: the env file is the record of the active region,
//! an outage in progress keeps its clock, and only an operator's changed `--region` moves.

use std::time::Duration;

use crate::support::{
    Cmd, FakeTunnel, Mode, TestDir, assert_fields, between, env_for, restart_order, wait_for_probes,
};

const WAIT: Duration = Duration::from_secs(10);

/// A daemon preferring EU that failed over to NAM in an outage of EU and was then stopped:
/// its dir, its tunnel (EU still down) and the command that started it.
fn failed_over_to_nam_and_stopped() -> (TestDir, FakeTunnel, Cmd) {
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("EU", Mode::Status(503))]);
    let cmd = Cmd::new(&dir).tunnel_in(&tunnel, "EU");
    let mut d = cmd.spawn_daemon();
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "NAM",
        WAIT,
    );
    d.terminate();
    (dir, tunnel, cmd)
}

#[test]
fn a_handler_restart_keeps_the_region_it_failed_over_to_and_restarts_nothing() {
    let (dir, tunnel, cmd) = failed_over_to_nam_and_stopped();
    let calls = dir.calls().len();
    assert_eq!(calls, restart_order().len());

    for _ in 0..2 {
        let mut again = cmd.spawn_daemon();
        let current = again.wait_for_event("env_file_current", WAIT);
        assert_fields(&current, &[("region", "NAM")]);
        wait_for_probes(&tunnel, "NAM", 3);
        again.terminate();
        assert!(again.events("failover").is_empty(), "{}", again.dump());
        assert_eq!(dir.read_env(), Some(env_for("NAM")));
        assert_eq!(dir.calls().len(), calls, "no program restarted");
    }
}

#[test]
fn an_outage_in_progress_keeps_its_clock_across_a_restart_of_the_handler() {
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("EU", Mode::Status(503))]);
    let cmd = Cmd::new(&dir)
        .tunnel_in(&tunnel, "EU")
        .flag("--threshold", "3s");
    let mut first = cmd.spawn_daemon();
    let failed = first.wait_for_event("probe_failed", WAIT);
    first.wait_for(
        |v| v["event"] == "probe_failed" && v["failing_for_ms"].as_u64() >= Some(1800),
        WAIT,
    );
    first.terminate();
    assert!(first.events("failover").is_empty(), "{}", first.dump());

    let second = cmd.spawn_daemon();
    let started = second.wait_for_event("daemon_started", WAIT);
    let resumed = second.wait_for_event("outage_resumed", WAIT);
    assert_fields(&resumed, &[("region", "EU")]);
    assert!(
        resumed["failing_for_ms"].as_u64().unwrap() >= 1800,
        "{resumed}"
    );
    let failover = second.wait_for_event("failover", WAIT);
    assert!(
        failover["failed_for_ms"].as_u64().unwrap() >= 3000,
        "{failover}"
    );
    assert!(
        between(&failed, &failover) >= Duration::from_secs(3),
        "{}",
        second.dump()
    );
    assert!(
        between(&started, &failover) < Duration::from_millis(2500),
        "the clock started afresh at the restart\n{}",
        second.dump()
    );
    second.finish();
}

#[test]
fn an_operators_new_region_flag_is_acted_on_like_a_switch() {
    let dir = TestDir::with_env("NAM");
    let tunnel = FakeTunnel::start(&dir);
    let mut d = Cmd::new(&dir).tunnel_in(&tunnel, "EU").spawn_daemon();
    // The first start with --region EU: the env file is the record, NAM stays.
    d.wait_for_event("env_file_current", WAIT);
    d.terminate();
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert!(dir.calls().is_empty());

    let d = Cmd::new(&dir).tunnel_in(&tunnel, "APAC").spawn_daemon();
    let changed = d.wait_for_event("preferred_changed", WAIT);
    assert_fields(&changed, &[("region", "APAC"), ("previous_region", "EU")]);
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "APAC",
        WAIT,
    );
    assert_eq!(dir.read_env(), Some(env_for("APAC")));
    assert_eq!(dir.calls(), restart_order());
    d.finish();
}

#[test]
fn an_env_file_naming_another_regions_cloud_is_rewritten_whole_with_a_warning() {
    let dir = TestDir::new();
    let wrong = env_for("EU").replace("cloud.eu.ext.com", "cloud.nam.ext.com");
    std::fs::write(dir.env_file(), &wrong).unwrap();
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    let warned = d.wait_for_event("env_file_inconsistent", WAIT);
    assert_fields(
        &warned,
        &[
            ("level", "WARN"),
            ("region", "EU"),
            ("cloud", "cloud.nam.ext.com"),
        ],
    );
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert_eq!(dir.calls(), restart_order());
    d.finish();
}

#[test]
fn after_a_handler_restart_status_shows_the_last_switch_from_the_journal() {
    let (_dir, tunnel, cmd) = failed_over_to_nam_and_stopped();

    let mut again = cmd.spawn_daemon();
    again.wait_for_event("env_file_current", WAIT);
    wait_for_probes(&tunnel, "NAM", 3);
    let out = cmd.clone().sub(&["status"]).exits(0);
    assert!(
        out.stdout.contains("Last switch:   EU -> NAM (outage"),
        "{out:#?}"
    );
    again.terminate();
}

#[test]
fn a_pin_left_by_a_handler_killed_mid_failover_is_dropped_once_and_a_kept_pin_is_not_said_again() {
    let dir = TestDir::with_env("EU");
    let tunnel = FakeTunnel::start(&dir);
    let cmd = Cmd::new(&dir).tunnel_in(&tunnel, "EU");
    let mut d = cmd.spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    cmd.clone().sub(&["switch", "EU"]).exits(0);
    d.wait_for_event("pinned", WAIT);
    d.terminate();

    // Restarted with the pin still true: it holds, and is not told again.
    let mut kept = cmd.spawn_daemon();
    kept.wait_for_event("env_file_current", WAIT);
    wait_for_probes(&tunnel, "EU", 3);
    let out = cmd.clone().sub(&["status"]).exits(0);
    assert!(out.stdout.contains("Pinned:        EU"), "{out:#?}");
    kept.terminate();
    assert!(kept.events("pinned").is_empty(), "{}", kept.dump());

    // The outage's env file was written, then the handler was killed before the pin went.
    dir.write_env(&env_for("NAM"));
    let mut stale = cmd.spawn_daemon();
    let dropped = stale.wait_for_event("unpinned", WAIT);
    assert_fields(&dropped, &[("region", "EU"), ("reason", "stale")]);
    wait_for_probes(&tunnel, "NAM", 3);
    let out = cmd.clone().sub(&["status"]).exits(0);
    assert!(!out.stdout.contains("Pinned:"), "{out:#?}");
    stale.terminate();
    assert!(stale.events("pinned").is_empty(), "{}", stale.dump());

    let mut later = cmd.spawn_daemon();
    later.wait_for_event("env_file_current", WAIT);
    wait_for_probes(&tunnel, "NAM", 3);
    later.terminate();
    for event in ["pinned", "unpinned"] {
        assert!(later.events(event).is_empty(), "{}", later.dump());
    }
}
