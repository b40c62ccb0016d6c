//! The whole loop with the real parts: each test runs its own supervisord with stunnel, a
//! cloud-client and an application (all sourcing the env file), three regional clouds on
//! 127.0.0.1, and failover-handler restarting them through supervisord's XML-RPC interface
//! (`restart.via = "auto"` finds it from supervisorctl's config) or the real supervisorctl.

use crate::support::stack::{
    RESTART, WAIT, assert_running_on, assert_started_on, new_starts, settled_on_nam,
};
use crate::support::{Mode, Stack, StackOptions, env_for, wait_until};

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
    let starts = new_starts(&stack, 0);
    assert_started_on(&starts, "NAM");
    let path = log.wait_for_event("restart_path", WAIT);
    assert_eq!(path["via"], "xmlrpc", "{path}");
    assert_eq!(path["reason"], "reachable", "{path}");
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
    assert_eq!(stack.starts().len(), starts.len(), "programs started again");
    assert_eq!(log.events("restarting").len(), 1, "{}", log.dump());
}

#[test]
fn outage_moves_every_program_to_the_next_region_in_order_through_xmlrpc() {
    outage_moves_every_program("auto", "xmlrpc", "reachable");
}

#[test]
fn outage_moves_every_program_to_the_next_region_in_order_through_supervisorctl() {
    outage_moves_every_program("supervisorctl", "supervisorctl", "configured");
}

fn outage_moves_every_program(via: &'static str, path: &str, reason: &str) {
    let Some((stack, log)) = settled_on_nam(
        StackOptions {
            via,
            ..StackOptions::default()
        },
        2,
    ) else {
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
    let starts = new_starts(&stack, starts_before);
    assert_started_on(&starts, "EU");
    assert_eq!(
        stack.pids(),
        starts.iter().map(|s| s.pid).collect::<Vec<_>>()
    );
    let chosen = log.events("restart_path");
    assert_eq!(chosen.len(), 1, "{}", log.dump());
    assert_eq!(chosen[0]["via"], path, "{}", chosen[0]);
    assert_eq!(chosen[0]["reason"], reason, "{}", chosen[0]);
    let steps: Vec<String> = log
        .events("restart_step")
        .iter()
        .map(|v| {
            format!(
                "{} {}",
                v["action"].as_str().unwrap(),
                v["program"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(steps, crate::support::restart_order(), "{}", log.dump());
    let restarting = log.events("restarting");
    assert_eq!(
        restarting[0]["message"],
        "Re-starting application with the new region EU and cloud cloud.eu.ext.com."
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
    assert_started_on(&new_starts(&stack, starts_before), "APAC");
    for event in ["restarting", "restart_step", "failover", "env_file_written"] {
        assert!(log.events(event).is_empty(), "{event}\n{}", log.dump());
    }
}

/// With supervisord gone when the restart begins, `auto` finds no socket to talk to and takes
/// supervisorctl, which says why it fails.
#[test]
fn supervisord_down_during_a_failover_is_retried_until_it_is_back() {
    // A threshold well past the time supervisord takes to stop, on a loaded machine too: the
    // restart begins with supervisord gone.
    let Some(mut stack) = Stack::start(StackOptions {
        threshold: "3s",
        ..StackOptions::default()
    }) else {
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

    let path = d.wait_for_event("restart_path", WAIT);
    assert_eq!(path["via"], "supervisorctl", "{path}");
    assert_eq!(path["reason"], "unreachable", "{path}");

    stack.start_supervisord();
    d.wait_for_event("restart_done", WAIT);
    stack.wait_ok_probes("EU", 3);
    assert_running_on(&stack, "EU");
    assert_eq!(d.events("failover").len(), 1, "{}", d.dump());
    d.finish();
}

/// supervisord goes away while the XML-RPC restart waits for a start (startsecs=1): the call
/// fails as `supervisord_down`, is retried, and the restart completes once it is back.
#[test]
fn supervisord_stopped_mid_restart_is_retried_through_xmlrpc() {
    let Some(mut stack) = Stack::start(StackOptions {
        startsecs: 1,
        via: "xmlrpc",
        ..StackOptions::default()
    }) else {
        return;
    };
    let d = stack.handler_cmd().spawn_daemon();
    d.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("NAM", 2);

    stack.cloud("NAM").set_mode(Mode::Status(503));
    d.wait_for(
        |v| v["event"] == "restart_step" && v["action"] == "start" && v["program"] == "app:stunnel",
        WAIT,
    );
    stack.stop_supervisord();
    // The start in flight ends as supervisord stops the program on its way out
    // (ABNORMAL_TERMINATION), refuses calls while shutting down (SHUTDOWN_STATE) or closes
    // the connection; the retries then find no socket.
    let gone = d.wait_for(
        |v| {
            v["event"] == "restart_failed"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("supervisord is not reachable at unix://"))
        },
        WAIT,
    );
    assert_eq!(gone["error_kind"], "supervisord_down", "{gone}");
    for f in d.events("restart_failed") {
        assert!(
            ["abnormal_termination", "supervisord_down"]
                .contains(&f["error_kind"].as_str().unwrap()),
            "{f}"
        );
        assert_eq!(f["via"], "XML-RPC", "{f}");
        assert_eq!(f["action"], "start", "{f}");
        assert_ne!(f["program"], "app:stunnel", "{f}");
        assert!(f["retry_in_ms"].as_u64() > Some(0), "{f}");
    }
    assert!(d.events("restart_done").is_empty(), "{}", d.dump());

    stack.start_supervisord();
    d.wait_for_event("restart_done", WAIT);
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
    stack.wait_ok_probes("EU", 3);
    assert_running_on(&stack, "EU");
    let path = d.events("restart_path");
    assert_eq!(path.len(), 1, "{}", d.dump());
    assert_eq!(path[0]["via"], "xmlrpc", "{}", path[0]);
    d.finish();
}

/// supervisord's socket requires a username and password: the ones of supervisorctl's
/// section work; with a wrong `-p` in `restart.args` the switch refuses before it writes the
/// env file, names the refusal, and restarts nothing.
fn auth_required(via: &'static str, refused_output: &str) {
    let Some(stack) = Stack::start(StackOptions {
        via,
        auth: Some(("fh", "s3cret-pw")),
        ..StackOptions::default()
    }) else {
        return;
    };
    let events_before = stack.program_events().len();
    let out = stack
        .handler_cmd()
        .sub(&["switch", "APAC"])
        .flag("--log-format", "json")
        .output();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(stack.program_events()[events_before..], RESTART);
    let events_before = stack.program_events().len();

    let conf = stack.conf().display().to_string();
    let text = std::fs::read_to_string(stack.handler_config()).unwrap();
    let wrong = text.replace(
        &format!("args = [\"-c\", \"{conf}\"]"),
        &format!("args = [\"-c\", \"{conf}\", \"-p\", \"wrong-pw\"]"),
    );
    assert_ne!(wrong, text);
    let wrong = stack.dir.write_file("wrong-password.toml", &wrong);
    let out = stack
        .handler_cmd()
        .sub(&["switch", "EU"])
        .flag("--config", wrong.to_str().unwrap())
        .flag("--log-format", "json")
        .output();
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr_events("restart_failed").is_empty(), "{out:#?}");
    assert!(
        out.stderr
            .contains("switch to EU refused before writing anything: ")
            && out.stderr.contains(refused_output)
            && out.stderr.contains("the env file still names APAC"),
        "{out:#?}"
    );
    assert_eq!(stack.dir.read_env(), Some(env_for("APAC")), "written");
    assert!(!out.stderr.contains("wrong-pw") && !out.stdout.contains("wrong-pw"));
    assert!(!out.stderr.contains("s3cret-pw") && !out.stdout.contains("s3cret-pw"));
    assert_eq!(stack.program_events().len(), events_before, "restarted");
}

#[test]
fn auth_required_through_xmlrpc() {
    auth_required("auto", "refused the credentials (HTTP 401)");
}

#[test]
fn auth_required_through_supervisorctl() {
    auth_required("supervisorctl", "Server requires authentication");
}

/// An unknown program and a program that cannot start. supervisord can say beforehand that it
/// knows no such program: the switch refuses before it writes anything. A program that fails
/// to start shows only when started: `switch` gives up after its attempts, exits 1, names the
/// error and says that the env file names the new region.
fn bad_programs(via: &'static str, no_such: &str, spawn: (&str, &str)) {
    let Some(stack) = Stack::start(StackOptions {
        via,
        ..StackOptions::default()
    }) else {
        return;
    };
    let before = stack.program_events().len();
    let out = stack
        .handler_cmd()
        .sub(&["switch", "EU"])
        .flag("--programs", "app:nope")
        .flag("--log-format", "json")
        .output();
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr_events("restart_failed").is_empty(), "{out:#?}");
    assert!(
        out.stderr
            .contains("switch to EU refused before writing anything: ")
            && out.stderr.contains(no_such)
            && out.stderr.contains("the env file still names NAM"),
        "{out:#?}"
    );
    assert_eq!(stack.dir.read_env(), Some(env_for("NAM")), "written");
    assert_eq!(stack.program_events().len(), before, "restarted");

    let (kind, output) = spawn;
    let out = stack
        .handler_cmd()
        .sub(&["switch", "APAC"])
        .flag("--programs", "broken")
        .flag("--log-format", "json")
        .output();
    assert_eq!(out.code, Some(1), "{out:#?}");
    let failed = out.stderr_events("restart_failed");
    assert_eq!(failed.len(), 3, "{out:#?}");
    for f in &failed {
        assert_eq!(f["error_kind"], kind, "{f}");
        assert_eq!(f["action"], "start", "{f}");
        assert_eq!(f["program"], "broken", "{f}");
        assert!(f["output"].as_str().unwrap().contains(output), "{f}");
    }
    assert!(
        out.stderr.contains("start broken failed 3 times")
            && out.stderr.contains("the env file names APAC now"),
        "{out:#?}"
    );
}

#[test]
fn unknown_program_and_spawn_error_through_xmlrpc() {
    bad_programs(
        "xmlrpc",
        "supervisord knows no program app:nope",
        ("spawn_error", "SPAWN_ERROR: broken"),
    );
}

#[test]
fn unknown_program_and_spawn_error_through_supervisorctl() {
    bad_programs(
        "supervisorctl",
        "app:nope: ERROR (no such process)",
        ("exit", "broken: ERROR (spawn error)"),
    );
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

/// Under supervisord with `region = "EU"`, failed over to NAM: a `supervisorctl restart` of
/// the handler, and then a SIGKILL and a start, keep NAM and restart no program.
#[test]
fn a_handler_restarted_or_killed_after_a_failover_keeps_the_region_and_restarts_nothing() {
    let Some(stack) = Stack::start(StackOptions {
        env_region: Some("EU"),
        region: Some("EU"),
        ..StackOptions::default()
    }) else {
        return;
    };
    let log = stack.start_handler();
    log.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("EU", 2);
    stack.cloud("EU").set_mode(Mode::Status(503));
    log.wait_for_event("restart_done", WAIT);
    stack.wait_ok_probes("NAM", 2);
    assert_eq!(stack.dir.read_env(), Some(env_for("NAM")));
    let pids = stack.pids();
    let starts = stack.starts().len();

    let out = stack.ctl(&["restart", "failover-handler"]);
    assert!(out.status.success(), "{out:?}");
    log.wait_for_count("daemon_started", 2, WAIT);
    let current = log.wait_for_count("env_file_current", 2, WAIT);
    assert_eq!(current[1]["region"], "NAM", "{}", log.dump());
    stack.wait_ok_probes("NAM", 2);

    let out = stack.ctl(&["pid", "failover-handler"]);
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(pid.parse::<u32>().is_ok(), "{out:?}");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_until(WAIT, "supervisord to see the handler gone", || {
        !String::from_utf8_lossy(&stack.ctl(&["status", "failover-handler"]).stdout)
            .contains("RUNNING")
    });
    stack.ctl(&["start", "failover-handler"]);
    log.wait_for_count("daemon_started", 3, WAIT);
    let current = log.wait_for_count("env_file_current", 3, WAIT);
    assert_eq!(current[2]["region"], "NAM", "{}", log.dump());
    stack.wait_ok_probes("NAM", 2);

    assert_eq!(stack.dir.read_env(), Some(env_for("NAM")));
    assert_eq!(stack.pids(), pids, "{}", log.dump());
    assert_eq!(stack.starts().len(), starts, "programs started again");
    assert_eq!(log.events("restarting").len(), 1, "{}", log.dump());
    assert_eq!(log.events("failover").len(), 1, "{}", log.dump());
}

#[test]
fn an_inconsistent_env_file_written_while_the_daemon_runs_is_rewritten_and_the_programs_restarted()
{
    let Some((stack, log)) = settled_on_nam(StackOptions::default(), 2) else {
        return;
    };
    let events_before = stack.program_events().len();
    let starts_before = stack.starts().len();

    let env = stack.dir.env_file();
    let tmp = env.with_extension("by-hand");
    std::fs::write(
        &tmp,
        "export EXT_CLOUD=cloud.nam.ext.com\nexport EXT_REGION=EU\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &env).unwrap();

    let warned = log.wait_for_event("env_file_inconsistent", WAIT);
    assert_eq!(warned["level"], "WARN", "{warned}");
    assert_eq!(warned["region"], "EU", "{warned}");
    assert_eq!(warned["cloud"], "cloud.nam.ext.com", "{warned}");
    let done = log.wait_for_event("restart_done", WAIT);
    assert_eq!(done["region"], "EU", "{done}");
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
    assert_eq!(stack.program_events()[events_before..], RESTART);
    assert_started_on(&new_starts(&stack, starts_before), "EU");
    stack.wait_ok_probes("EU", 2);
    assert_eq!(
        log.events("env_file_inconsistent").len(),
        1,
        "{}",
        log.dump()
    );
    assert!(log.events("pinned").is_empty(), "{}", log.dump());
}
