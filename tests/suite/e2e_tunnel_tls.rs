//! A TLS mistake at the local tunnel, on the real stack: the probe URL is stunnel on
//! 127.0.0.1 and the handler is not given the certificate stunnel presents (the shipped
//! example config has no `ca_cert`). That is this host's configuration, not the cloud's: no
//! failover, no restart, one ERROR naming the fix, and `/status`, the page and a metric say so.

use crate::observe::{get_json, listening};
use crate::support::stack::WAIT;
use crate::support::{Stack, StackOptions, env_for, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// How many probes of NAM failed as `tunnel_misconfigured`, from `/metrics`.
fn misconfigured_probes(addr: &str) -> u64 {
    get(addr, "/metrics")
        .lines()
        .find(|l| {
            l.starts_with(
                "failover_handler_probe_failures_total{region=\"NAM\",kind=\"tunnel_misconfigured\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_tunnel_certificate_the_handler_cannot_verify_moves_nothing_and_names_the_fix() {
    let Some(stack) = Stack::start(StackOptions {
        ca_cert: false,
        threshold: "1s",
        interval: "100ms",
        ..StackOptions::default()
    }) else {
        return;
    };
    let before = stack.program_events().len();
    let d = stack
        .handler_cmd()
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    let error = d.wait_for_event("tunnel_misconfigured", WAIT);
    assert_eq!(error["level"], "ERROR", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("--ca-cert") && message.contains("--tls-server-name"),
        "{error}"
    );
    // Several thresholds of probes (failing ones every 500 ms), all failing the same way.
    wait_until(WAIT, "12 probes refused by TLS", || {
        misconfigured_probes(&addr) >= 12
    });
    for moved in [
        "outage_started",
        "failover",
        "restart_in_place",
        "restarting",
        "switch",
    ] {
        assert!(d.events(moved).is_empty(), "{moved}: {}", d.dump());
    }
    assert_eq!(d.events("tunnel_misconfigured").len(), 1, "{}", d.dump());
    assert_eq!(stack.dir.read_env(), Some(env_for("NAM")));
    assert_eq!(stack.program_events().len(), before, "programs restarted");
    let status = get_json(&addr, "/status");
    let shown = status["tunnel_misconfigured"].as_str().unwrap_or_default();
    assert!(shown.contains("--ca-cert"), "{status}");
    assert!(
        get(&addr, "/metrics").contains("\nfailover_handler_tunnel_misconfigured 1\n"),
        "metric"
    );
    assert!(
        get(&addr, "/").contains("id=\"tunnel_misconfigured\""),
        "page"
    );
}
