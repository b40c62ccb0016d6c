//! A restart is done only when supervisord says RUNNING, on the real stack: a program that
//! exits 1 at once while supervisord retries it (`autorestart=true`, `startsecs=1`) ends FATAL,
//! and neither `switch` nor the daemon counts its start as done, whichever way supervisord is
//! reached and however supervisord's own retries race with the handler's.

use crate::observe::{get_json, listening};
use crate::support::stack::WAIT;
use crate::support::{Stack, StackOptions, env_for};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `switch` to a program that cannot stay up: exit 1, the last line naming the program and
/// the state supervisord left it in, and no `restart_step` saying its start was done. Each of
/// the three attempts waits for supervisord's own retry to end FATAL: up to a minute on a
/// loaded machine.
fn switch_names_the_fatal_program(via: &'static str) {
    let Some(stack) = Stack::start(StackOptions {
        via,
        ..StackOptions::default()
    }) else {
        return;
    };
    let out = stack
        .handler_cmd()
        .sub(&["switch", "EU"])
        .flag("--programs", "crashing")
        .flag("--log-format", "json")
        .output_within(Duration::from_secs(60));
    assert_eq!(out.code, Some(1), "{out:#?}");
    let done: Vec<Value> = out
        .stderr_events("restart_step")
        .into_iter()
        .filter(|v| v["action"] == "start")
        .collect();
    assert!(done.is_empty(), "a start counted as done: {out:#?}");
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("start crashing failed 3 times") && last.contains("FATAL"),
        "{out:#?}"
    );
    assert!(last.contains("the env file names EU now"), "{out:#?}");
    assert_eq!(stack.dir.read_env(), Some(env_for("EU")));
    let status = stack.ctl(&["status", "crashing"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("FATAL"),
        "{status:?}"
    );
}

#[test]
fn switch_fails_naming_a_program_left_fatal_through_xmlrpc() {
    switch_names_the_fatal_program("xmlrpc");
}

#[test]
fn switch_fails_naming_a_program_left_fatal_through_supervisorctl() {
    switch_names_the_fatal_program("supervisorctl");
}

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// The daemon's first start writes the env file and restarts the programs; one of them ends
/// FATAL: `restart_gave_up` names it and its state, the others are started, and `/status` and
/// the metrics show the restart as failed.
#[test]
fn the_daemon_reports_a_program_left_fatal_as_a_failed_restart() {
    let Some(stack) = Stack::start(StackOptions {
        env_region: None,
        via: "xmlrpc",
        ..StackOptions::default()
    }) else {
        return;
    };
    let d = stack
        .handler_cmd()
        .flag("--programs", "app:application,crashing,app:stunnel")
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    let gave_up = d.wait_for_event("restart_gave_up", WAIT);
    let message = gave_up["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("start crashing") && message.contains("FATAL"),
        "{gave_up}"
    );
    assert!(d.events("restart_done").is_empty(), "{}", d.dump());
    let status = get_json(&addr, "/status");
    let error = status["restart_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("crashing") && error.contains("FATAL"),
        "{status}"
    );
    assert!(
        scrape(&addr).contains("\nfailover_handler_restart_failed 1\n"),
        "{}",
        scrape(&addr)
    );
}
