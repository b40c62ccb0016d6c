//! `status`, `pause`, `resume` and `switch` find the daemon supervisord runs without its `-c`:
//! an operator types the bare command. When no daemon runs, they say where they looked.

use crate::support::stack::WAIT;
use crate::support::{Cmd, Stack, StackOptions, env_for};

#[test]
fn bare_commands_act_on_the_running_daemon_and_say_where_they_looked_when_it_is_gone() {
    let Some(stack) = Stack::start(StackOptions {
        threshold: "5s",
        ..StackOptions::default()
    }) else {
        return;
    };
    let log = stack.start_handler();
    log.wait_for_event("env_file_current", WAIT);
    stack.wait_ok_probes("NAM", 2);
    let bare = |args: &[&str]| Cmd::bare(&stack.dir).sub(args);
    let listed_in = stack.dir.path().join("run/failover-handler");

    let out = bare(&["status"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with("Active region: NAM (cloud cloud.nam.ext.com)"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("Daemon:        running, pid "),
        "{out:?}"
    );
    let found = format!(
        "Found:         the daemon listed in {}",
        listed_in.display()
    );
    assert!(out.stdout.contains(&found), "{out:?}");
    let out = bare(&["status", "--json"]).output();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["source"], "daemon", "{v}");
    assert_eq!(v["found"]["how"], "listed", "{v}");

    // pause and resume reach the daemon's state dir: the daemon obeys.
    let out = bare(&["pause"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("failover-handler: acting on the running daemon (pid "),
        "{out:?}"
    );
    log.wait_for_event("paused", WAIT);
    bare(&["resume"]).exits(0);
    log.wait_for_event("resumed", WAIT);

    // switch takes the daemon's supervisord settings too: one restart, adopted by the daemon.
    bare(&["switch", "APAC"]).exits(0);
    assert_eq!(stack.dir.read_env(), Some(env_for("APAC")));
    let adopted = log.wait_for_event("adopted", WAIT);
    assert_eq!(adopted["region"], "APAC", "{adopted}");
    stack.wait_ok_probes("APAC", 2);

    // With the daemon stopped, nothing is listed: status says where it looked.
    assert!(stack.ctl(&["stop", "failover-handler"]).status.success());
    log.wait_for_event("daemon_stopped", WAIT);
    let out = bare(&["status"]).output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Daemon:        not running"), "{out:?}");
    let looked = format!("Looked at:     {} (no daemon listed)", listed_in.display());
    assert!(out.stdout.contains(&looked), "{out:?}");
    assert!(out.stdout.contains("pass -c or --state-dir"), "{out:?}");
}

#[test]
fn two_listed_daemons_are_named_and_the_command_asks_which() {
    let dir = crate::support::TestDir::new();
    let tunnel = crate::support::FakeTunnel::start(&dir);
    dir.write_env(&env_for("NAM"));
    let first = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    first.wait_for_event("env_file_current", WAIT);
    let other = crate::support::TestDir::new();
    other.write_env(&env_for("NAM"));
    let second = Cmd::new(&other)
        .tunnel(&tunnel)
        .env(
            "FAILOVER_HANDLER_RUNTIME_DIR",
            &crate::support::runtime_dir(&dir).display().to_string(),
        )
        .spawn_daemon();
    second.wait_for_event("env_file_current", WAIT);

    let out = Cmd::bare(&dir).sub(&["pause"]).output();
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .starts_with("failover-handler: error: --config: 2 daemons are listed in "),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("pass -c or --state-dir to choose one"),
        "{out:?}"
    );
    assert!(!dir.state_dir().join("pause.json").exists());
    assert!(!other.state_dir().join("pause.json").exists());
    first.finish();
    second.finish();
}
