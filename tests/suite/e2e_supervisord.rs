//! The whole loop with the real parts: each test runs its own supervisord with stunnel, a
//! cloud-client and an application (all sourcing the env file), three regional clouds on
//! 127.0.0.1, and failover-handler restarting them through the real supervisorctl.

use crate::support::stack::{PROGRAMS, WAIT};
use crate::support::{HandlerLog, Mode, Stack, StackOptions, Start, env_for, wait_until};

/// A restart as supervisord records it: stop application, cloud-client, stunnel; start
/// stunnel, cloud-client, application.
const RESTART: [&str; 6] = [
    "stopped application",
    "stopped cloud-client",
    "stopped stunnel",
    "spawned stunnel",
    "spawned cloud-client",
    "spawned application",
];

/// A stack with `opts` whose handler has started, found the env file current and seen
/// `probes` good probes of NAM; `None` where the stack cannot run (the test then passes as
/// SKIPPED).
fn settled_on_nam(opts: StackOptions, probes: usize) -> Option<(Stack, HandlerLog)> {
    let stack = Stack::start(opts)?;
    let log = stack.start_handler();
    log.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("NAM", probes);
    Some((stack, log))
}

fn programs(starts: &[Start]) -> Vec<&str> {
    starts.iter().map(|s| s.program.as_str()).collect()
}

/// Asserts the starts are one start of each program, in restart order, on `region`.
fn assert_started_on(starts: &[Start], region: &str) {
    assert_eq!(programs(starts), PROGRAMS, "{starts:#?}");
    for s in starts {
        assert_eq!(s.region, region, "{s:?}");
        assert_eq!(s.cloud, format!("cloud.{}.ext.com", region.to_lowercase()));
    }
    assert!(starts.windows(2).all(|w| w[0].at <= w[1].at), "{starts:#?}");
}

#[test]
fn first_start_writes_env_file_and_starts_programs_and_a_handler_restart_leaves_them() {
    let Some(stack) = Stack::start(StackOptions {
        env_region: None,
        ..StackOptions::default()
    }) else {
        return;
    };
    assert_eq!(stack.pids(), [0, 0, 0], "programs started without env file");

    let log = stack.start_handler();
    log.wait_for_event("restart_done", WAIT);
    assert_eq!(stack.dir.read_env(), Some(env_for("NAM")));
    assert_eq!(
        stack.program_events(),
        RESTART[3..],
        "{}",
        stack.supervisord_log()
    );
    let starts = stack.starts();
    assert_started_on(&starts, "NAM");
    let pids = stack.pids();
    assert_eq!(pids, starts.iter().map(|s| s.pid).collect::<Vec<_>>());
    stack.wait_ok_probes("NAM", 3);

    let out = stack.ctl(&["restart", "failover-handler"]);
    assert!(out.status.success(), "{out:?}");
    log.wait_for_count("daemon_started", 2, WAIT);
    let current = log.wait_for_event("env_file_current", WAIT);
    assert_eq!(current["region"], "NAM", "{current}");
    stack.wait_ok_probes("NAM", 3);
    assert_eq!(stack.pids(), pids, "{}", log.dump());
    assert_eq!(stack.starts(), starts, "programs started again");
    assert_eq!(log.events("restarting").len(), 1, "{}", log.dump());
}

#[test]
fn outage_moves_every_program_to_the_next_region_in_order() {
    let Some((stack, log)) = settled_on_nam(StackOptions::default(), 2) else {
        return;
    };
    let events_before = stack.program_events().len();
    let starts_before = stack.starts().len();

    stack.cloud("NAM").set_mode(Mode::Status(503));
    let failover = log.wait_for_event("failover", WAIT);
    assert_eq!(
        failover["message"],
        "Waited for 1s. Application restarting due to failure with Ext Cloud: cloud.nam.ext.com"
    );
    assert_eq!(failover["to_region"], "EU", "{failover}");
    log.wait_for_event("restart_done", WAIT);
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
    assert_eq!(
        stack.program_events()[events_before..],
        RESTART,
        "{}",
        stack.supervisord_log()
    );
    let starts = stack.starts();
    assert_started_on(&starts[starts_before..], "EU");
    assert_eq!(
        stack.pids(),
        starts[starts_before..]
            .iter()
            .map(|s| s.pid)
            .collect::<Vec<_>>()
    );

    stack.wait_ok_probes("EU", 3);
    let failed = log.events("probe_failed");
    assert_eq!(failed[0]["error_kind"], "status", "{}", log.dump());
    assert_eq!(failed[0]["http_status"], 503, "{}", log.dump());
    assert_eq!(log.events("failover").len(), 1, "{}", log.dump());
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
}

#[test]
fn manual_switch_while_the_daemon_runs_is_adopted_without_a_second_restart() {
    let Some((stack, log)) = settled_on_nam(
        StackOptions {
            threshold: "5s",
            ..StackOptions::default()
        },
        2,
    ) else {
        return;
    };
    let events_before = stack.program_events().len();
    let starts_before = stack.starts().len();

    stack.handler_cmd().sub(&["switch", "APAC"]).exits(0);
    let adopted = log.wait_for_event("adopted", WAIT);
    assert_eq!(adopted["region"], "APAC", "{adopted}");
    stack.wait_ok_probes("APAC", 3);

    assert_eq!(stack.dir.read_env(), Some(env_for("APAC")));
    assert_eq!(stack.program_events()[events_before..], RESTART);
    assert_started_on(&stack.starts()[starts_before..], "APAC");
    for event in ["restarting", "restart_step", "failover", "env_file_written"] {
        assert!(log.events(event).is_empty(), "{event}\n{}", log.dump());
    }
}

#[test]
fn supervisord_down_during_a_failover_is_retried_until_it_is_back() {
    let Some(mut stack) = Stack::start(StackOptions::default()) else {
        return;
    };
    let d = stack.handler_cmd().spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("NAM", 2);

    stack.cloud("NAM").set_mode(Mode::Status(503));
    d.wait_for_event("probe_failed", WAIT);
    // Stopping supervisord stops stunnel too: the restart that fails may be the failover's
    // or, once the tunnel refuses, the restart in place that comes first for a local fault.
    stack.stop_supervisord();
    let failed = d.wait_for_event("restart_failed", WAIT);
    assert_eq!(failed["program"], "app:application", "{failed}");
    assert_eq!(failed["action"], "stop", "{failed}");
    assert!(failed["retry_in_ms"].as_u64() > Some(0), "{failed}");
    assert!(
        failed["output"].as_str().is_some_and(|o| !o.is_empty()),
        "{failed}"
    );

    stack.start_supervisord();
    d.wait_for_event("restart_done", WAIT);
    stack.wait_ok_probes("EU", 3);
    let starts = stack.starts();
    assert_started_on(&starts[starts.len() - 3..], "EU");
    assert_eq!(
        stack.pids(),
        starts[starts.len() - 3..]
            .iter()
            .map(|s| s.pid)
            .collect::<Vec<_>>()
    );
    assert_eq!(d.events("failover").len(), 1, "{}", d.dump());
    d.finish();
}

#[test]
fn supervisorctl_stop_terminates_the_handler_cleanly() {
    let Some((stack, log)) = settled_on_nam(StackOptions::default(), 1) else {
        return;
    };
    let pids = stack.pids();

    let out = stack.ctl(&["stop", "failover-handler"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("failover-handler: stopped"),
        "{out:?}"
    );
    wait_until(WAIT, "supervisord to record the exit", || {
        stack
            .supervisord_log()
            .contains("stopped: failover-handler (exit status 0)")
    });
    let shutdown = log.wait_for_event("daemon_stopped", WAIT);
    assert_eq!(shutdown["region"], "NAM", "{shutdown}");
    assert_eq!(
        stack.pids(),
        pids,
        "the handler's exit touched the programs"
    );
}
