//! The local tunnel on the real stack: stunnel under supervisord stops or cannot start while
//! the cloud behind it is fine. A refusal on the probe's loopback address is `tunnel_down`,
//! a fault of this host: the programs are restarted in place on the same region first, a
//! switch follows only if the outage lasts another threshold, and a tunnel that stays down
//! across that switch moves nothing again. And supervisord itself restarted in the middle of a
//! failover's restart: every program is started once on the new region, not twice.

use std::thread;
use std::time::{Duration, Instant};

use crate::observability::{assert_valid, schema};
use crate::observe::journal_lines;
use crate::support::stack::{
    HandlerLog, PROGRAMS, RESTART, WAIT, assert_started_on, settled_on_nam,
};
use crate::support::{Stack, StackOptions, env_for, wait_until};

/// The tunnel's address as the probe URL names it.
fn tunnel_address(stack: &Stack) -> String {
    format!("127.0.0.1:{}", stack.tunnel_port)
}

/// How many times supervisord saw stunnel exit with status 1 (`tunnel.sh` refusing to start).
fn tunnel_start_failures(stack: &Stack) -> usize {
    stack
        .supervisord_log()
        .lines()
        .filter(|l| l.contains("exited: stunnel (exit status 1;"))
        .count()
}

/// Waits for `n` more healthy probes of `region`, showing the handler's log if they do not come.
fn wait_healthy(stack: &Stack, log: &HandlerLog, region: &str, n: usize) {
    let cloud = stack.cloud(region);
    let target = cloud.ok_count() + n;
    let deadline = Instant::now() + WAIT;
    while cloud.ok_count() < target {
        assert!(
            Instant::now() < deadline,
            "no {n} healthy probes in {region}\n{}\n{}",
            log.dump(),
            stack.supervisord_log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Every failed probe was the tunnel's refusal, but for the first: a probe in flight when
/// stunnel stops is reset.
fn assert_failures_are_the_tunnels(log: &HandlerLog) {
    let failed = log.events("probe_failed");
    assert!(!failed.is_empty(), "{}", log.dump());
    for (i, f) in failed.iter().enumerate() {
        let kind = f["error_kind"].as_str().unwrap();
        assert!(
            kind == "tunnel_down" || (i == 0 && kind == "reset"),
            "{f}\n{}",
            log.dump()
        );
    }
}

/// The decisions in the journal, each valid under docs/schemas/journal-record.json; their
/// `event` names in order.
fn journal_events(stack: &Stack) -> Vec<String> {
    let validator = schema("journal-record.json");
    journal_lines(&stack.dir)
        .iter()
        .map(|record| {
            assert_valid(&validator, "journal record", record);
            record["event"].as_str().unwrap().to_string()
        })
        // The changes of probe outcome (for `replay`) are not decisions.
        .filter(|event| event != "probe_changed")
        .collect()
}

/// `startsecs = 1`: each start returns after a second in RUNNING, so the programs' own start
/// records land in the order of the restart.
#[test]
fn a_stopped_tunnel_is_restarted_in_place_on_the_same_region_without_a_switch() {
    let Some((stack, log)) = settled_on_nam(
        StackOptions {
            startsecs: 1,
            ..StackOptions::default()
        },
        2,
    ) else {
        return;
    };
    let env = stack.env_bytes();
    assert_eq!(env, env_for("NAM").as_bytes());
    let starts_before = stack.starts().len();
    let events_before = stack.program_events().len();

    let out = stack.ctl(&["stop", "app:stunnel"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped"),
        "{out:?}"
    );
    let restart = log.wait_for_event("tunnel_restart", WAIT);
    assert_eq!(restart["level"], "WARN", "{restart}");
    assert_eq!(restart["region"], "NAM", "{restart}");
    assert_eq!(restart["cloud"], "cloud.nam.ext.com", "{restart}");
    assert_eq!(restart["tunnel"], tunnel_address(&stack), "{restart}");
    assert_eq!(restart["error_kind"], "tunnel_down", "{restart}");
    assert!(
        restart["failed_for_ms"].as_u64() >= Some(1000),
        "before the threshold: {restart}"
    );
    let message = restart["message"].as_str().unwrap();
    assert!(
        message.contains(&tunnel_address(&stack)) && message.contains("in place on region NAM"),
        "{message}"
    );
    let done = log.wait_for_event("restart_done", WAIT);
    assert_eq!(done["region"], "NAM", "{done}");

    // Every program started once more, on NAM, in the order stunnel, cloud-client,
    // application, and the env file was not touched.
    wait_until(WAIT, "the programs to record their start", || {
        stack.starts().len() >= starts_before + PROGRAMS.len()
    });
    let starts = stack.starts()[starts_before..].to_vec();
    assert_started_on(&starts, "NAM");
    assert_eq!(
        stack.pids(),
        starts.iter().map(|s| s.pid).collect::<Vec<_>>(),
        "{}",
        log.dump()
    );
    let mut restart_events = vec!["stopped stunnel"];
    restart_events.extend(RESTART.iter().filter(|e| **e != "stopped stunnel"));
    assert_eq!(
        stack.program_events()[events_before..],
        restart_events,
        "{}",
        stack.supervisord_log()
    );
    assert_eq!(stack.env_bytes(), env, "the env file changed");

    // Probes through the restarted tunnel are healthy again, and stay so for more than
    // another threshold: no switch follows.
    stack.wait_ok_probes("NAM", 3);
    let ended = log.wait_for_event("outage_ended", WAIT);
    assert_eq!(ended["how"], "recovered", "{ended}");
    assert_eq!(ended["region"], "NAM", "{ended}");
    assert_failures_are_the_tunnels(&log);
    stack.wait_ok_probes("NAM", 6);
    for event in [
        "failover",
        "switch",
        "env_file_written",
        "restarting",
        "failover_deferred",
    ] {
        assert!(log.events(event).is_empty(), "{event}\n{}", log.dump());
    }
    assert_eq!(log.events("tunnel_restart").len(), 1, "{}", log.dump());
    assert_eq!(log.events("restart_done").len(), 1, "{}", log.dump());
    assert_eq!(stack.starts().len(), starts_before + PROGRAMS.len());
    assert_eq!(stack.env_bytes(), env, "the env file changed");
    let journal = journal_events(&stack);
    let tail = [
        "outage_started",
        "tunnel_restart",
        "restart_done",
        "outage_ended",
    ];
    assert!(journal.ends_with(&tail.map(String::from)), "{journal:?}");
}

/// `tunnel.sh` exits 1 for every region, then stunnel is stopped. Watched for ten thresholds
/// (threshold 1s, interval 250ms): one restart in place on NAM, one switch to EU, and then
/// the handler holds on EU and says why, once.
#[test]
fn a_tunnel_that_cannot_start_moves_once_and_then_holds_saying_why() {
    let Some((stack, log)) = settled_on_nam(StackOptions::default(), 2) else {
        return;
    };
    let handler = stack.handler_pid();
    assert_ne!(handler, 0);
    let starts_before = stack.starts().len();

    stack.break_tunnel();
    let out = stack.ctl(&["stop", "app:stunnel"]);
    assert!(out.status.success(), "{out:?}");

    let held = log.wait_for_event("failover_deferred", WAIT);
    assert_eq!(held["level"], "WARN", "{held}");
    assert_eq!(held["reason"], "tunnel_down", "{held}");
    assert_eq!(held["region"], "EU", "{held}");
    assert_eq!(held["cloud"], "cloud.eu.ext.com", "{held}");
    assert!(
        held["message"]
            .as_str()
            .unwrap()
            .contains("region EU stays active until the tunnel answers"),
        "{held}"
    );
    // It holds: five thresholds more of the tunnel refusing (probes every 250 ms).
    let failed = log.events("probe_failed").len();
    log.wait_for_count("probe_failed", failed + 20, WAIT);

    assert_eq!(stack.handler_state(), "RUNNING", "{}", log.dump());
    assert_eq!(stack.handler_pid(), handler, "the handler was restarted");
    let failovers = log.events("failover");
    assert_eq!(failovers.len(), 1, "{}", log.dump());
    let failover = &failovers[0];
    assert_eq!(failover["region"], "NAM", "{failover}");
    assert_eq!(failover["to_region"], "EU", "{failover}");
    assert_eq!(failover["error_kind"], "tunnel_down", "{failover}");
    assert_eq!(failover["tunnel"], tunnel_address(&stack), "{failover}");
    let restarts = log.events("tunnel_restart");
    assert_eq!(restarts.len(), 1, "{}", log.dump());
    assert_eq!(restarts[0]["region"], "NAM", "{}", restarts[0]);
    let held = log.events("failover_deferred");
    assert_eq!(held.len(), 1, "said more than once\n{}", log.dump());
    for event in ["daemon_stopped", "restart_gave_up", "restart_failed"] {
        assert!(log.events(event).is_empty(), "{event}\n{}", log.dump());
    }
    assert_eq!(log.events("restart_done").len(), 2, "{}", log.dump());
    assert_failures_are_the_tunnels(&log);
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));

    // Two tries to start the tunnel (in place, then on EU), and the other programs started
    // once for each: on NAM, then on EU.
    assert_eq!(
        tunnel_start_failures(&stack),
        2,
        "{}",
        stack.supervisord_log()
    );
    let mut starts: Vec<(String, String)> = stack.starts()[starts_before..]
        .iter()
        .map(|s| (s.region.clone(), s.program.clone()))
        .collect();
    starts.sort();
    let want = [
        ("EU", "application"),
        ("EU", "cloud-client"),
        ("NAM", "application"),
        ("NAM", "cloud-client"),
    ]
    .map(|(r, p)| (r.to_string(), p.to_string()));
    assert_eq!(starts, want);
    let journal = journal_events(&stack);
    let moves = ["tunnel_restart", "failover", "switch"];
    let seen: Vec<&String> = journal
        .iter()
        .filter(|e| moves.contains(&e.as_str()))
        .collect();
    assert_eq!(seen, moves, "{journal:?}");
    let stderr = std::fs::read_to_string(stack.dir.path().join("stunnel.err")).unwrap();
    assert!(stderr.contains("tunnel: cannot start"), "{stderr}");
}

/// The handler runs as a program of supervisord, started by it (`autostart`), as in
/// production. An outage of NAM moves to EU through XML-RPC with `startsecs=2`, and
/// supervisord is restarted (stopped, then started) while that restart waits for a start: the
/// handler is stopped mid-restart and says so; supervisord comes back and starts every program
/// with the env file, which names EU, and starts the handler, which must not start them again.
#[test]
fn supervisord_restarted_mid_failover_starts_each_program_once_on_the_new_region() {
    supervisord_restarted_mid_failover("xmlrpc");
}

/// The same with `restart.via = "supervisorctl"`: supervisord is still read through its
/// XML-RPC interface, found where supervisorctl finds it, to see what it started.
#[test]
fn supervisord_restarted_mid_failover_through_supervisorctl_starts_each_program_once() {
    supervisord_restarted_mid_failover("supervisorctl");
}

fn supervisord_restarted_mid_failover(via: &'static str) {
    let Some(mut stack) = Stack::start(StackOptions {
        startsecs: 2,
        via,
        handler_autostart: true,
        ..StackOptions::default()
    }) else {
        return;
    };
    let log = stack.handler_log();
    log.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("NAM", 2);

    stack
        .cloud("NAM")
        .set_mode(crate::support::Mode::Status(503));
    let failover = log.wait_for_event("failover", WAIT);
    assert_eq!(failover["to_region"], "EU", "{failover}");
    wait_until(WAIT, "the restart to start stunnel", || {
        log.events("restart_step")
            .iter()
            .any(|v| v["action"] == "start" && v["program"] == "app:stunnel")
    });
    stack.stop_supervisord();
    let interrupted = log.wait_for_event("restart_interrupted", WAIT);
    assert_eq!(interrupted["region"], "EU", "{interrupted}");
    assert!(log.events("restart_done").is_empty(), "{}", log.dump());
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
    let starts_before = stack.starts().len();

    stack.start_supervisord();
    log.wait_for_count("daemon_started", 2, WAIT);
    let current = log.wait_for_count("env_file_current", 2, WAIT);
    assert_eq!(current[1]["region"], "EU", "{}", log.dump());
    wait_healthy(&stack, &log, "EU", 3);
    wait_until(WAIT, "supervisord to start every program", || {
        stack.pids().iter().all(|&p| p != 0)
    });
    // Another threshold and more of healthy probes: anything the handler would still do is
    // done by then.
    wait_healthy(&stack, &log, "EU", 6);

    let starts = stack.starts()[starts_before..].to_vec();
    let mut sorted = starts.clone();
    sorted.sort_by_key(|s| PROGRAMS.iter().position(|p| *p == s.program));
    assert_started_on(&sorted, "EU");
    assert_eq!(
        stack.pids(),
        sorted.iter().map(|s| s.pid).collect::<Vec<_>>(),
        "{}",
        log.dump()
    );
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
    assert_eq!(log.events("failover").len(), 1, "{}", log.dump());

    // The handler saw the interrupted restart made by supervisord and left the programs be.
    let settled = log.wait_for_event("restart_not_resumed", WAIT);
    assert_eq!(settled["region"], "EU", "{settled}");
    assert_eq!(settled["level"], "INFO", "{settled}");
    let second_run: Vec<String> = log
        .lines()
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default().to_string())
        .skip_while(|e| e != "daemon_started")
        .skip(1)
        .skip_while(|e| e != "daemon_started")
        .collect();
    for event in [
        "restart_resumed",
        "restart_done",
        "restarting",
        "restart_step",
    ] {
        assert!(
            !second_run.iter().any(|e| e == event),
            "{event}\n{}",
            log.dump()
        );
    }
    let journal = journal_events(&stack);
    let last = [
        "restart_interrupted",
        "daemon_stopped",
        "daemon_started",
        "restart_not_resumed",
    ];
    // Probes may fail while stunnel starts beside the handler (outage_started and _ended).
    let restarts: Vec<&String> = journal
        .iter()
        .skip_while(|e| *e != "restart_interrupted")
        .filter(|e| !e.starts_with("outage_"))
        .collect();
    assert_eq!(restarts, last, "{journal:?}");
    assert!(
        !stack.dir.state_dir().join("restart-pending").exists(),
        "the marker of the interrupted restart is left"
    );
}

/// The same with supervisord's default `startsecs = 1`, where a start of the tunnel fails
/// or finds it backing off: the handler does not wait on the tunnel with the application
/// stopped. The other programs are started on each region, the handler moves at most once and
/// then holds, saying why. (A program that supervisord gives up on at once, `startretries = 0`,
/// is tried three times and then passed over: the restart unit tests.)
#[test]
fn with_supervisords_default_startsecs_a_tunnel_that_cannot_start_leaves_the_application_running() {
    let Some((stack, log)) = settled_on_nam(
        StackOptions {
            startsecs: 1,
            ..StackOptions::default()
        },
        2,
    ) else {
        return;
    };
    let starts_before = stack.starts().len();
    stack.break_tunnel();
    assert!(stack.ctl(&["stop", "app:stunnel"]).status.success());

    let held = log.wait_for_event("failover_deferred", Duration::from_secs(60));
    assert_eq!(held["reason"], "tunnel_down", "{held}");
    assert_eq!(held["region"], "EU", "{held}");
    let failed = log.events("probe_failed").len();
    log.wait_for_count("probe_failed", failed + 12, WAIT);
    assert_eq!(stack.handler_state(), "RUNNING", "{}", log.dump());
    assert_eq!(log.events("failover").len(), 1, "{}", log.dump());
    for failed in log.events("restart_failed") {
        assert_eq!(failed["program"], "app:stunnel", "{failed}\n{}", log.dump());
        assert_eq!(failed["action"], "start", "{failed}");
    }
    let mut starts: Vec<(String, String)> = stack.starts()[starts_before..]
        .iter()
        .map(|s| (s.region.clone(), s.program.clone()))
        .filter(|(_, p)| p != "stunnel")
        .collect();
    starts.sort();
    let want = [
        ("EU", "application"),
        ("EU", "cloud-client"),
        ("NAM", "application"),
        ("NAM", "cloud-client"),
    ]
    .map(|(r, p)| (r.to_string(), p.to_string()));
    assert_eq!(starts, want, "{}", log.dump());
    let status =
        String::from_utf8_lossy(&stack.ctl(&["status", "app:application"]).stdout).to_string();
    assert!(status.contains("RUNNING"), "{status}");
}
