//! Seeing and steering, as an operator meets them: `/metrics` (checked by promtool), `/status`,
//! `/history` and the journal across a failover; the status page in headless Chromium; `pause`
//! holding back a failover and `resume` letting it through; decisions reaching a Datadog intake
//! stand-in on 127.0.0.1 in gzip batches, with a 429 retried.

use crate::support::{
    Cmd, Daemon, FakeTunnel, Mode, TestDir, assert_fields, env_for, have, in_region,
    in_region_with, text, wait_until,
};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// The decisions of a failover, in the order they are made.
pub(crate) const FAILOVER_DECISIONS: [&str; 6] = [
    "outage_started",
    "failover",
    "outage_ended",
    "switch",
    "restarting",
    "restart_done",
];

/// The address the daemon's endpoints listen on (it binds port 0 and says which it got).
pub(crate) fn listening(d: &Daemon) -> String {
    let line = d.wait_for_event("metrics_listening", WAIT);
    line["addr"].as_str().unwrap().to_owned()
}

/// A plain HTTP/1.1 GET: (status, content type, body).
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, ctype, body.to_owned())
}

pub(crate) fn get_json(addr: &str, path: &str) -> Value {
    let (status, ctype, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn scrape(addr: &str) -> String {
    let (status, ctype, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    body
}

/// The value of one sample, named with its labels exactly as exposed.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

fn must_sample(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

/// Asserts each series of `expected` has its value in `text`, one at a time, in order.
#[track_caller]
fn assert_samples(text: &str, expected: &[(&str, f64)]) {
    for &(series, value) in expected {
        assert_eq!(must_sample(text, series), value, "{series}");
    }
}

/// Runs `promtool check metrics` on `text` and fails with its complaints.
fn promtool_check(text: &str) {
    if !have("promtool", "prometheus") {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `/status` until `cond` holds.
fn wait_status(addr: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = get_json(addr, "/status");
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn events(history: &Value) -> Vec<String> {
    history["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn journal_lines(dir: &TestDir) -> Vec<Value> {
    std::fs::read_to_string(dir.state_dir().join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn metrics_status_history_and_journal_follow_a_failover() {
    let (dir, tunnel) = in_region("NAM");
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);

    let before = wait_status(&addr, "a healthy probe of NAM", |s| {
        s["regions"][0]["healthy"] == true
    });
    assert_eq!(before["active"]["region"], "NAM", "{before}");
    assert_eq!(before["active"]["cloud"], "cloud.nam.ext.com", "{before}");
    assert_eq!(before["outage"], Value::Null, "{before}");
    assert_eq!(before["last_switch"], Value::Null, "{before}");
    assert_eq!(before["pause"], Value::Null, "{before}");
    assert!(before["regions"][0]["latency_ms"].as_f64().unwrap() > 0.0);
    let m0 = scrape(&addr);
    promtool_check(&m0);
    let active_nam = "failover_handler_active_region{region=\"NAM\",cloud=\"cloud.nam.ext.com\"}";
    let active_eu = "failover_handler_active_region{region=\"EU\",cloud=\"cloud.eu.ext.com\"}";
    let switched = "failover_handler_failovers_total{from=\"NAM\",to=\"EU\",reason=\"outage\"}";
    let nam_probes = "failover_handler_probe_duration_seconds_count{region=\"NAM\"}";
    assert_samples(
        &m0,
        &[
            (active_nam, 1.0),
            (active_eu, 0.0),
            ("failover_handler_probe_success{region=\"NAM\"}", 1.0),
            ("failover_handler_region_healthy{region=\"NAM\"}", 1.0),
        ],
    );
    // Present at 0 before the first failover, so that an increase() alert sees it.
    assert_eq!(sample(&m0, switched), Some(0.0));
    assert_samples(
        &m0,
        &[
            ("failover_handler_outage_seconds", 0.0),
            ("failover_handler_paused", 0.0),
            ("failover_handler_restart_failures_total", 0.0),
        ],
    );
    let probes_before = must_sample(&m0, nam_probes);
    assert!(probes_before >= 1.0);

    tunnel.set_region("NAM", Mode::Status(503));
    let failing = wait_status(&addr, "the outage timer", |s| !s["outage"].is_null());
    assert_eq!(failing["outage"]["region"], "NAM", "{failing}");
    assert_eq!(failing["outage"]["error_kind"], "status", "{failing}");
    assert_eq!(failing["outage"]["threshold_ms"], 1000, "{failing}");
    assert_eq!(failing["outage"]["held_back"], false, "{failing}");

    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    let after = wait_status(&addr, "the switch to EU", |s| {
        s["active"]["region"] == "EU" && s["regions"][1]["healthy"] == true
    });
    let last = &after["last_switch"];
    assert_eq!(
        (&last["from"], &last["to"], &last["reason"]),
        (
            &Value::from("NAM"),
            &Value::from("EU"),
            &Value::from("outage")
        ),
        "{after}"
    );
    assert!(last["failed_for_ms"].as_u64().unwrap() >= 1000, "{after}");
    assert_eq!(after["regions"][0]["healthy"], false, "{after}");
    assert!(text(&after["regions"][0]["error"]).contains("503"));
    assert_eq!(after["switches"], 1, "{after}");

    let m1 = scrape(&addr);
    promtool_check(&m1);
    assert_samples(
        &m1,
        &[
            (active_nam, 0.0),
            (active_eu, 1.0),
            (switched, 1.0),
            ("failover_handler_probe_success{region=\"EU\"}", 1.0),
        ],
    );
    // NAM is no longer probed: its gauges are gone, not left stale.
    for gone in [
        "failover_handler_probe_success{region=\"NAM\"}",
        "failover_handler_region_healthy{region=\"NAM\"}",
    ] {
        assert_eq!(sample(&m1, gone), None, "{gone}");
    }
    assert!(must_sample(&m1, nam_probes) > probes_before);

    let history = get_json(&addr, "/history");
    let seen = events(&history);
    let order: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|e| FAILOVER_DECISIONS.contains(e))
        .collect();
    assert_eq!(order, FAILOVER_DECISIONS, "{history}");
    let switch = history["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "switch")
        .unwrap()
        .clone();
    assert_fields(
        &switch,
        &[("region", "NAM"), ("to_region", "EU"), ("reason", "outage")],
    );
    assert!(
        switch["failed_for_ms"].as_u64().unwrap() >= 1000,
        "{switch}"
    );
    assert!(switch["timestamp"].as_str().unwrap().ends_with('Z'));

    // The shell's view, from the endpoint and from the status file.
    let out = Cmd::new(&dir)
        .flag("--metrics-addr", &addr)
        .sub(&["status"])
        .exits(0);
    assert!(out.stdout.contains("Active region: EU"), "{out:#?}");
    assert!(
        out.stdout.contains("Last switch:   NAM -> EU (outage"),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains(&format!("http://{addr}/status")),
        "{out:#?}"
    );
    let out = Cmd::new(&dir).sub(&["status", "--json"]).output();
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_fields(
        &json,
        &[
            ("region", "EU"),
            ("cloud", "cloud.eu.ext.com"),
            ("source", "daemon"),
        ],
    );
    assert!(
        json["view_from"].as_str().unwrap().ends_with("status.json"),
        "{json}"
    );
    assert_eq!(json["daemon"]["last_switch"]["to"], "EU", "{json}");

    // The journal holds the same decisions, privately.
    let path = dir.state_dir().join("journal.jsonl");
    wait_until(WAIT, "the switch in the journal", || {
        journal_lines(&dir).iter().any(|l| l["event"] == "switch")
    });
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "journal mode {mode:o}");
    let journaled = journal_lines(&dir);
    let j = journaled.iter().find(|l| l["event"] == "switch").unwrap();
    assert_eq!(j, &switch);

    let mut d = d;
    d.terminate();
    d.assert_log_contract();
    assert!(!dir.state_dir().join("status.json").exists());
    let out = Cmd::new(&dir).sub(&["status", "--json"]).output();
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["source"], "env_file", "{json}");
    assert_eq!(json["region"], "EU", "{json}");
    assert!(
        journal_lines(&dir)
            .iter()
            .any(|l| l["event"] == "daemon_stopped")
    );
}

/// Runs headless Chromium with a fresh profile and its networking extras off.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdin(Stdio::null());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_status_page_shows_regions_and_the_switch_in_headless_chromium() {
    let (dir, tunnel) = in_region_with("NAM", Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    wait_status(&addr, "some EU latencies", |s| {
        s["regions"][1]["latencies"].as_array().unwrap().len() >= 8
    });

    let (status, ctype, html) = get(&addr, "/");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    for external in ["src=", "href=", "<link", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the page loads {external}: {html}"
        );
    }

    if !have("chromium", "chromium") {
        return;
    }
    let profile = dir.path().join("chromium-profile");
    let url = format!("http://{addr}/");
    let dom = chromium(&profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("id=\"active-region\">EU<"), "{dom}");
    for region in ["NAM", "EU", "APAC"] {
        assert!(
            dom.contains(&format!("data-region=\"{region}\"")),
            "no card for {region}: {dom}"
        );
    }
    assert!(dom.contains("<svg class=\"spark\""), "no sparkline: {dom}");
    assert!(
        dom.contains("<b>NAM</b> → <b>EU</b> <span class=\"reason\">outage"),
        "no switch in the timeline: {dom}"
    );
    assert!(dom.contains("HTTP 503"), "no failure reason: {dom}");

    let shot: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
            &url,
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 20_000, "screenshot of {} bytes", png.len());
    eprintln!("status page screenshot: {}", shot.display());
    d.finish();
}

#[test]
fn pause_holds_back_a_failover_and_resume_lets_it_through() {
    let dir = TestDir::with_env("NAM");
    let out = Cmd::new(&dir).sub(&["pause"]).exits(0);
    assert!(out.stdout.contains("paused"), "{out:#?}");
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    d.wait_for_event("paused", WAIT);
    let held = d.wait_for_event("failover_held", WAIT);
    assert_fields(
        &held,
        &[("level", "WARN"), ("region", "NAM"), ("to_region", "EU")],
    );
    assert!(
        held["message"].as_str().unwrap().contains("paused"),
        "{held}"
    );

    // Two more thresholds pass: still on NAM, still probing, said once.
    let probes = tunnel.requests_in("NAM");
    wait_until(WAIT, "two thresholds of probes in NAM", || {
        tunnel.requests_in("NAM") >= probes + 20
    });
    assert_eq!(dir.read_env(), Some(env_for("NAM")));
    assert!(d.events("failover").is_empty(), "{}", d.dump());
    assert_eq!(d.events("failover_held").len(), 1, "{}", d.dump());
    let m = scrape(&addr);
    assert_eq!(must_sample(&m, "failover_handler_paused"), 1.0);
    assert!(
        must_sample(&m, "failover_handler_outage_seconds") >= 2.0,
        "{m}"
    );
    let s = get_json(&addr, "/status");
    assert!(!s["pause"].is_null(), "{s}");
    assert_eq!(s["pause"]["until"], Value::Null, "{s}");
    assert_eq!(s["outage"]["held_back"], true, "{s}");
    let out = Cmd::new(&dir).sub(&["status"]).output();
    assert!(out.stdout.contains("Switching:     PAUSED"), "{out:#?}");
    assert!(out.stdout.contains("failover held back"), "{out:#?}");

    let out = Cmd::new(&dir).sub(&["resume"]).exits(0);
    assert!(out.stdout.contains("resumed"), "{out:#?}");
    d.wait_for_event("resumed", WAIT);
    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(failover["to_region"], "EU", "{failover}");
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    assert_eq!(must_sample(&scrape(&addr), "failover_handler_paused"), 0.0);
    let seen = events(&get_json(&addr, "/history"));
    let order: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|e| ["paused", "failover_held", "resumed", "switch"].contains(e))
        .collect();
    assert_eq!(order, ["paused", "failover_held", "resumed", "switch"]);
    d.finish();
    let out = Cmd::new(&dir).sub(&["resume"]).output();
    assert!(out.stdout.contains("not paused"), "{out:#?}");
}

#[test]
fn a_pause_with_a_duration_ends_by_itself() {
    let dir = TestDir::with_env("NAM");
    Cmd::new(&dir).sub(&["pause", "--for", "2s"]).exits(0);
    let pause: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.state_dir().join("pause.json")).unwrap())
            .unwrap();
    let until = humantime::parse_rfc3339(pause["until"].as_str().unwrap()).unwrap();
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir).tunnel(&tunnel).spawn_daemon();
    d.wait_for_event("failover_held", WAIT);
    let json: Value =
        serde_json::from_str(&Cmd::new(&dir).sub(&["status", "--json"]).output().stdout).unwrap();
    assert_eq!(json["pause"]["until"], pause["until"], "{json}");
    let ended = d.wait_for_event("pause_ended", WAIT);
    let failover = d.wait_for_event("failover", WAIT);
    assert!(crate::support::timestamp(&ended) >= until, "{ended}");
    assert!(crate::support::timestamp(&failover) >= until, "{failover}");
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    assert!(!dir.state_dir().join("pause.json").exists());
    d.finish();
    let ended = journal_lines(&dir)
        .into_iter()
        .find(|l| l["event"] == "pause_ended")
        .unwrap();
    assert_eq!(ended["how"], "expired", "{ended}");
}

/// One request the intake stand-in received.
#[derive(Clone, Debug)]
pub(crate) struct Intake {
    headers: Vec<(String, String)>,
    pub(crate) entries: Vec<Value>,
    answered: u16,
}

/// A stand-in for Datadog's log intake on 127.0.0.1, answering from a script of statuses
/// (then 202). It runs on a thread of its own until the test ends.
pub(crate) fn intake_stand_in(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Intake>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/api/v2/logs", listener.local_addr().unwrap());
    let record = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/api/v2/logs",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let (seen, script) = (record.clone(), script.clone());
                    async move {
                        let mut text = String::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_string(&mut text)
                            .expect("a gzip body");
                        let entries: Vec<Value> =
                            serde_json::from_str(&text).expect("a JSON array");
                        let answered = script.lock().unwrap().pop_front().unwrap_or(202);
                        seen.lock().unwrap().push(Intake {
                            headers: headers
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                                .collect(),
                            entries,
                            answered,
                        });
                        StatusCode::from_u16(answered).unwrap()
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, seen)
}

#[test]
fn decisions_reach_a_datadog_intake_in_gzip_batches_and_a_429_is_retried() {
    const KEY: &str = "dd-test-key-0123456789abcdef";
    let (url, seen) = intake_stand_in(vec![429]);
    let (dir, tunnel) = in_region_with("NAM", Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .env("DD_API_KEY", KEY)
        .env("FAILOVER_HANDLER_DD_URL", &url)
        .spawn_daemon();
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    wait_until(WAIT, "the switch accepted by the intake", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|r| r.answered == 202 && r.entries.iter().any(|e| e["event"] == "switch"))
    });
    let retry = d.wait_for_event("datadog_retry", WAIT);
    assert!(
        retry["message"].as_str().unwrap().contains("HTTP 429"),
        "{retry}"
    );
    let message = retry["message"].as_str().unwrap();
    let sub_ms = message.split([' ', ';']).any(|w| {
        let unit = w.trim_start_matches(|c: char| c.is_ascii_digit());
        unit.len() < w.len() && (unit == "us" || unit == "ns")
    });
    assert!(
        !sub_ms,
        "the retry delay is shown to the millisecond: {message}"
    );
    let requests = seen.lock().unwrap().clone();

    assert_eq!(requests[0].answered, 429, "{requests:#?}");
    assert_eq!(requests[1].answered, 202, "{requests:#?}");
    assert_eq!(
        requests[0].entries, requests[1].entries,
        "the refused batch is sent again as it was"
    );
    assert!(
        requests[0].entries.len() >= 2,
        "the first decisions travel together: {requests:#?}"
    );
    for r in &requests {
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("dd-api-key"), Some(KEY));
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("content-encoding"), Some("gzip"));
        assert!(!r.entries.is_empty() && r.entries.len() <= 1000);
        for e in &r.entries {
            assert_eq!(e["ddsource"], "failover-handler", "{e}");
            assert_eq!(e["service"], crate::support::SERVICE, "{e}");
            assert!(e["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{e}");
            assert!(e["message"].as_str().is_some(), "{e}");
            assert!(e["timestamp"].as_str().unwrap().ends_with('Z'), "{e}");
        }
    }
    let delivered: Vec<&Value> = requests
        .iter()
        .filter(|r| r.answered == 202)
        .flat_map(|r| &r.entries)
        .collect();
    let switch = delivered.iter().find(|e| e["event"] == "switch").unwrap();
    assert_fields(
        switch,
        &[
            ("region", "NAM"),
            ("to_region", "EU"),
            ("reason", "outage"),
            ("level", "WARN"),
        ],
    );
    assert!(delivered.iter().any(|e| e["event"] == "outage_started"));

    let mut d = d;
    d.terminate();
    d.assert_log_contract();
    assert!(!d.lines().concat().contains(KEY), "the key was logged");
    assert!(!d.stderr().contains(KEY), "the key was logged");
}

#[test]
fn an_unusable_state_dir_is_a_warning_and_failover_still_happens() {
    let dir = TestDir::with_env("NAM");
    let blocker = dir.write_file("not-a-dir", "x");
    let state = blocker.join("state");
    let state = state.to_str().unwrap();
    let out = Cmd::new(&dir)
        .flag("--state-dir", state)
        .sub(&["pause"])
        .exits(1);
    assert!(out.stderr.contains("state directory"), "{out:#?}");

    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--state-dir", state)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let warning = d.wait_for_event("state_dir_unavailable", WAIT);
    assert_eq!(warning["level"], "WARN", "{warning}");
    let addr = listening(&d);
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    assert_eq!(dir.read_env(), Some(env_for("EU")));
    assert!(events(&get_json(&addr, "/history")).contains(&"switch".to_string()));
    d.finish();
}
