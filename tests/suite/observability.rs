//! Observability an SRE can trust, as the SRE meets it: counters at 0 before the first
//! failover and the probe under blackbox_exporter's names (checked by promtool); alert rules
//! that promtool proves fire, the first failover included; a dashboard that only asks for
//! metrics the handler exports; log lines with Datadog's standard attributes; every JSON
//! output valid against its schema in docs/schemas/; Datadog shipping through a 503 then a
//! 429 with Retry-After (every decision once, in order, the new one not held back) and
//! through an HTTP CONNECT proxy; and a status page that turns into a stale warning, never a
//! green page, when the daemon stops answering, with colours that meet WCAG AA (headless
//! Chromium). Every server is started by the test on 127.0.0.1.

use crate::support::{Cmd, Daemon, FakeTunnel, Mode, TestDir, env_for, have, wait_until};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "dd-test-key-9f8e7d6c5b4a";

fn docs(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name)
}

/// The address the daemon's endpoints listen on (it binds port 0 and says which it got).
fn listening(d: &Daemon) -> String {
    let line = d.wait_for_event("metrics_listening", WAIT);
    line["addr"].as_str().unwrap().to_owned()
}

/// A plain HTTP/1.1 GET: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
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
    (status, body.to_owned())
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn scrape(addr: &str) -> String {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
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

/// `promtool <args>`, which must succeed; returns its output.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(docs(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every metric name a PromQL expression reads (functions, keywords, label names and
/// Grafana variables left out).
fn metric_names(expr: &str) -> Vec<String> {
    let mut text = String::new();
    let (mut depth_brace, mut depth_bracket, mut quoted) = (0, 0, false);
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            _ if quoted => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            c => text.push(c),
        }
        if matches!(c, '}' | ']' | '{' | '[' | '"') {
            text.push(' ');
        }
    }
    // Drop the label lists of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`.
    for kw in [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        while let Some(at) = find_word(&text, kw) {
            let rest = &text[at + kw.len()..];
            let Some(open) = rest.find('(') else { break };
            if !rest[..open].trim().is_empty() {
                break;
            }
            let close = rest.find(')').unwrap();
            text = format!("{} {}", &text[..at], &rest[close + 1..]);
        }
    }
    let keywords = ["and", "or", "unless", "bool", "offset", "time"];
    let mut names = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let is_call = next == Some(&'(');
            let after_dollar = start > 0 && chars[start - 1] == '$';
            if !is_call && !after_dollar && !keywords.contains(&word.as_str()) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().last();
        let after = text[i + word.len()..].chars().next();
        let edge = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        edge(before) && edge(after)
    })
}

/// Every `expr` anywhere in a Grafana dashboard.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn counters_are_at_zero_before_the_first_failover_and_the_probe_speaks_blackbox() {
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    crate::support::wait_for_probes(&tunnel, "NAM", 3);
    let before = scrape(&addr);
    if have("promtool", "prometheus") {
        promtool(&["check", "metrics"], Some(&before));
    }
    for from in ["NAM", "EU", "APAC"] {
        for to in ["NAM", "EU", "APAC"].into_iter().filter(|t| *t != from) {
            for reason in ["outage", "failback", "manual", "start"] {
                let series = format!(
                    "failover_handler_failovers_total{{from=\"{from}\",to=\"{to}\",reason=\"{reason}\"}}"
                );
                assert_eq!(must_sample(&before, &series), 0.0, "{series}");
            }
        }
        for kind in [
            "status", "timeout", "refused", "reset", "tls", "dns", "protocol", "io",
        ] {
            let series = format!(
                "failover_handler_probe_failures_total{{region=\"{from}\",kind=\"{kind}\"}}"
            );
            assert_eq!(must_sample(&before, &series), 0.0, "{series}");
        }
    }
    assert_eq!(
        must_sample(&before, "failover_handler_restart_failures_total"),
        0.0
    );
    assert_eq!(
        must_sample(&before, "failover_handler_datadog_dropped_total"),
        0.0
    );
    assert_eq!(must_sample(&before, "probe_success{region=\"NAM\"}"), 1.0);
    assert_eq!(
        must_sample(&before, "probe_http_status_code{region=\"NAM\"}"),
        200.0
    );
    assert!(must_sample(&before, "probe_duration_seconds{region=\"NAM\"}") > 0.0);
    for phase in ["resolve", "connect", "tls", "processing", "transfer"] {
        let series = format!("probe_http_duration_seconds{{region=\"NAM\",phase=\"{phase}\"}}");
        assert!(must_sample(&before, &series) >= 0.0, "{series}");
    }
    assert!(
        must_sample(
            &before,
            "probe_http_duration_seconds{region=\"NAM\",phase=\"tls\"}"
        ) > 0.0,
        "the probe goes through TLS"
    );
    // The tunnel's test certificate runs to the year 4096.
    let expiry = must_sample(&before, "probe_ssl_earliest_cert_expiry{region=\"NAM\"}");
    assert!(expiry > 4_000_000_000.0, "{expiry}");

    tunnel.set_region("NAM", Mode::Status(503));
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    crate::support::wait_for_probes(&tunnel, "EU", 2);
    let after = scrape(&addr);
    if have("promtool", "prometheus") {
        promtool(&["check", "metrics"], Some(&after));
    }
    assert_eq!(
        must_sample(
            &after,
            "failover_handler_failovers_total{from=\"NAM\",to=\"EU\",reason=\"outage\"}"
        ),
        1.0
    );
    assert!(
        must_sample(
            &after,
            "failover_handler_probe_failures_total{region=\"NAM\",kind=\"status\"}"
        ) >= 1.0
    );
    assert_eq!(must_sample(&after, "probe_success{region=\"EU\"}"), 1.0);
    for stale in [
        "probe_success{region=\"NAM\"}",
        "failover_handler_probe_success{region=\"NAM\"}",
        "probe_http_status_code{region=\"NAM\"}",
        "failover_handler_region_healthy{region=\"NAM\"}",
    ] {
        assert_eq!(sample(&after, stale), None, "{stale} left behind:\n{after}");
    }

    // The dashboard only asks for what a running handler exports (`up` is Prometheus's own).
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(docs("grafana-dashboard.json")).unwrap())
            .unwrap();
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 10, "{all:?}");
    let exported: std::collections::HashSet<&str> = after
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for expr in &all {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(
                name == "up" || exported.contains(name.as_str()),
                "the dashboard asks for {name} ({expr}), which the handler does not export"
            );
        }
    }

    // Log lines carry Datadog's standard attributes; the old script's messages are unchanged.
    let started = d.wait_for(
        |v| v["event"] == "outage_started" && v["region"] == "NAM",
        WAIT,
    );
    assert_eq!(started["error.kind"], "status", "{started}");
    assert_eq!(started["error_kind"], "status", "{started}");
    assert_eq!(started["http.status_code"], 503, "{started}");
    let failover = d.wait_for_event("failover", WAIT);
    assert_eq!(
        failover["message"],
        "Waited for 1s. Application restarting due to failure with Ext Cloud: cloud.nam.ext.com"
    );
    let restarting = d.wait_for(|v| v["event"] == "restarting" && v["region"] == "EU", WAIT);
    assert_eq!(
        restarting["message"],
        "Re-starting application with the new region EU and cloud cloud.eu.ext.com."
    );
    let done = d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    assert_eq!(
        done["duration"].as_u64().unwrap(),
        done["duration_ms"].as_u64().unwrap() * 1_000_000,
        "{done}"
    );
    let begun = d.wait_for_event("daemon_started", WAIT);
    let url = begun["http.url"].as_str().unwrap();
    assert!(
        url.starts_with("https://127.0.0.1:") && url.contains("/cloudlookup/"),
        "{begun}"
    );
    d.finish();
}

#[test]
fn alert_rules_pass_promtool_and_fire_on_the_first_failover() {
    if !have("promtool", "prometheus") {
        return;
    }
    let checked = promtool(&["check", "rules", "alerts.yml"], None);
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"], None);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let tests = std::fs::read_to_string(docs("alerts.test.yml")).unwrap();
    assert!(
        tests.contains(
            "name: the active region down with no standby checks is not all regions down"
        ),
        "the all-regions-down page needs every configured region known and down"
    );
    assert!(
        tests.contains("reason=\"outage\"}'\n        values: '0 0 0 1"),
        "the first-failover case starts at 0, as the handler exports it"
    );
    for alert in [
        "ExtCloudFailover",
        "ExtCloudOutageInProgress",
        "ExtCloudAllRegionsDown",
        "ExtCloudCertificateExpiring",
        "FailoverHandlerDown",
    ] {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "no firing case for {alert}"
        );
    }
}

/// A validator for one of docs/schemas/ (which refer to each other).
pub(crate) fn schema(name: &str) -> jsonschema::Validator {
    let base = "https://github.com/failover-handler/failover-handler/docs/schemas/";
    let mut registry = jsonschema::Registry::new();
    for file in [
        "status.json",
        "history.json",
        "journal-record.json",
        "status-command.json",
        "replay.json",
    ] {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(docs(&format!("schemas/{file}"))).unwrap(),
        )
        .unwrap();
        assert_eq!(v["$id"], format!("{base}{file}"));
        registry = registry.add(format!("{base}{file}"), v).unwrap();
    }
    let registry = Box::leak(Box::new(registry.prepare().unwrap()));
    jsonschema::options()
        .with_registry(registry)
        .build(&serde_json::json!({ "$ref": format!("{base}{name}") }))
        .unwrap()
}

pub(crate) fn assert_valid(validator: &jsonschema::Validator, what: &str, v: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:#?}\n{v:#}"
    );
    assert_eq!(v["format_version"], 1, "{what}: {v}");
}

#[test]
fn every_output_validates_against_its_schema() {
    let (status_schema, history_schema, record_schema, command_schema) = (
        schema("status.json"),
        schema("history.json"),
        schema("journal-record.json"),
        schema("status-command.json"),
    );
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("NAM", Mode::Status(503))]);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    let paused = Cmd::new(&dir).sub(&["pause", "--for", "30m"]).output();
    assert_eq!(paused.code, Some(0), "{paused:?}");
    d.wait_for_event("paused", WAIT);

    let status = get_json(&addr, "/status");
    assert!(
        status["pause"].is_object() && status["last_switch"].is_object(),
        "{status}"
    );
    assert_valid(&status_schema, "/status", &status);
    let history = get_json(&addr, "/history");
    assert!(history["count"].as_u64().unwrap() >= 5, "{history}");
    assert_valid(&history_schema, "/history", &history);

    let live = Cmd::new(&dir)
        .sub(&["status", "--json"])
        .flag("--metrics-addr", &addr)
        .output();
    assert_eq!(live.code, Some(0), "{live:?}");
    let live: Value = serde_json::from_str(live.stdout.trim()).unwrap();
    assert_eq!(live["source"], "daemon", "{live}");
    assert_valid(&command_schema, "status --json (daemon)", &live);

    let mut d = d;
    d.terminate();
    let journal = std::fs::read_to_string(dir.state_dir().join("journal.jsonl")).unwrap();
    let mut events = Vec::new();
    for line in journal.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_valid(&record_schema, "a journal record", &record);
        events.push(record["event"].as_str().unwrap().to_owned());
    }
    for want in [
        "daemon_started",
        "outage_started",
        "switch",
        "restart_done",
        "paused",
        "daemon_stopped",
    ] {
        assert!(events.iter().any(|e| e == want), "{want} not in {events:?}");
    }

    let offline = Cmd::new(&dir).sub(&["status", "--json"]).output();
    assert_eq!(offline.code, Some(0), "{offline:?}");
    let offline: Value = serde_json::from_str(offline.stdout.trim()).unwrap();
    assert_eq!(offline["source"], "env_file", "{offline}");
    assert_valid(&command_schema, "status --json (env file)", &offline);

    // A schema that says nothing would pass anything: it does refuse a wrong document.
    let mut wrong = status.clone();
    wrong["regions"] = Value::from("NAM");
    assert!(!status_schema.is_valid(&wrong));
}

/// How the intake stand-in answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Unavailable,
    /// 429 with `Retry-After: <secs>`.
    Throttle(u64),
    Accept,
}

/// One request the intake stand-in received.
#[derive(Clone, Debug)]
struct Got {
    at: Instant,
    answered: u16,
    entries: Vec<Value>,
    key: Option<String>,
}

/// A Datadog intake stand-in on 127.0.0.1 (plain HTTP, or TLS with `tls`), answering as
/// `answer` says at the time of each request.
struct IntakeStandIn {
    port: u16,
    answer: Arc<Mutex<Answer>>,
    got: Arc<Mutex<Vec<Got>>>,
}

impl IntakeStandIn {
    fn start(answer: Answer, tls: Option<rustls::ServerConfig>) -> IntakeStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(answer));
        let got = Arc::new(Mutex::new(Vec::new()));
        let tls = tls.map(Arc::new);
        let (a, g) = (answer.clone(), got.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(tcp) = conn else { continue };
                let (a, g, tls) = (a.clone(), g.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve_intake(tcp, &a, &g),
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        serve_intake(rustls::StreamOwned::new(conn, tcp), &a, &g);
                    }
                });
            }
        });
        IntakeStandIn { port, answer, got }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Entries the intake accepted, in the order it accepted them.
    fn accepted(&self) -> Vec<Value> {
        self.got()
            .into_iter()
            .filter(|g| g.answered == 202)
            .flat_map(|g| g.entries)
            .collect()
    }
}

/// Answers requests on one connection until it closes.
fn serve_intake(stream: impl Read + Write, answer: &Mutex<Answer>, got: &Mutex<Vec<Got>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let header = |name: &str| {
            head.iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let len: usize = header("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .expect("a gzip body");
        let entries: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
        let now = *answer.lock().unwrap();
        let (code, extra) = match now {
            Answer::Unavailable => (503, String::new()),
            Answer::Throttle(secs) => (429, format!("Retry-After: {secs}\r\n")),
            Answer::Accept => (202, String::new()),
        };
        got.lock().unwrap().push(Got {
            at: Instant::now(),
            answered: code,
            entries,
            key: header("dd-api-key"),
        });
        let reply = format!("HTTP/1.1 {code} X\r\n{extra}Content-Length: 2\r\n\r\n{{}}");
        let stream = reader.get_mut();
        if stream.write_all(reply.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1; records the targets it was asked for.
fn connect_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let mut words = head.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                    let _ =
                        client.write_all(b"HTTP/1.1 405 CONNECT only\r\nContent-Length: 0\r\n\r\n");
                    return;
                };
                seen.lock().unwrap().push(target.to_owned());
                let port = target.rsplit_once(':').unwrap().1;
                let Ok(upstream) = TcpStream::connect(format!("127.0.0.1:{port}")) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let mut upstream = upstream;
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut upstream);
                    let _ = upstream.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut u2, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    (port, targets)
}

/// The daemon shipping to `url`, with no proxy from the test's own environment.
fn shipping(dir: &TestDir, tunnel: &FakeTunnel, url: &str) -> Cmd {
    let mut cmd = Cmd::new(dir)
        .tunnel(tunnel)
        .env("DD_API_KEY", KEY)
        .env("FAILOVER_HANDLER_DD_URL", url);
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "DD_PROXY_HTTPS",
        "DD_PROXY_NO_PROXY",
    ] {
        cmd = cmd.env(var, "");
    }
    cmd
}

fn key_of(e: &Value) -> (String, String, String) {
    let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
    (s("timestamp"), s("event"), s("message"))
}

#[test]
fn a_failover_while_the_intake_answers_503_then_429_reaches_datadog_once_and_in_order() {
    let intake = IntakeStandIn::start(Answer::Unavailable, None);
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start_with(&dir, Mode::Up, &[("NAM", Mode::Status(503))]);
    let url = format!("http://127.0.0.1:{}/api/v2/logs", intake.port);
    let d = shipping(&dir, &tunnel, &url).spawn_daemon();

    // The failover happens while the intake answers 503: the decisions wait in the spool.
    d.wait_for(
        |v| v["event"] == "restart_done" && v["region"] == "EU",
        WAIT,
    );
    let spool = dir.state_dir().join("datadog-spool.jsonl");
    wait_until(WAIT, "a 503 and the spool on disk", || {
        intake.got().iter().any(|g| g.answered == 503) && spool.exists()
    });
    let mode = std::fs::metadata(&spool).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert!(!spooled.contains(KEY), "the key is in the spool");

    // Then 429 with Retry-After: 2, then the intake recovers.
    intake.set(Answer::Throttle(2));
    wait_until(WAIT, "a 429", || {
        intake.got().iter().any(|g| g.answered == 429)
    });
    intake.set(Answer::Accept);
    let throttled_at = intake.got().iter().find(|g| g.answered == 429).unwrap().at;
    // A decision made as the intake recovers, behind the backlog.
    let paused = Cmd::new(&dir).sub(&["pause", "--for", "30m"]).output();
    assert_eq!(paused.code, Some(0), "{paused:?}");
    let paused_line = d.wait_for_event("paused", WAIT);
    let decided_at = Instant::now();
    wait_until(WAIT, "the new decision at the intake", || {
        intake.accepted().iter().any(|e| e["event"] == "paused")
    });
    let got = intake.got();
    let first_accepted = got.iter().find(|g| g.answered == 202).unwrap();
    assert!(
        first_accepted.at.duration_since(throttled_at) >= Duration::from_millis(1900),
        "Retry-After: 2 was not honoured: {:?}",
        first_accepted.at.duration_since(throttled_at)
    );
    let arrived = got
        .iter()
        .find(|g| g.answered == 202 && g.entries.iter().any(|e| e["event"] == "paused"))
        .unwrap();
    assert!(
        arrived.at.saturating_duration_since(first_accepted.at) < Duration::from_millis(500),
        "the backlog held the new decision back by {:?}",
        arrived.at.saturating_duration_since(first_accepted.at)
    );
    assert!(
        arrived.at.saturating_duration_since(decided_at) < Duration::from_secs(4),
        "the new decision waited {:?}",
        arrived.at.saturating_duration_since(decided_at)
    );
    let retry = d.wait_for(
        |v| v["event"] == "datadog_retry" && v["retry_after"] == true,
        WAIT,
    );
    assert!(
        retry["message"].as_str().unwrap().contains("HTTP 429"),
        "{retry}"
    );
    d.wait_for_event("datadog_delivered", WAIT);
    wait_until(WAIT, "the spool emptied", || !spool.exists());

    let mut d = d;
    d.terminate();
    wait_until(WAIT, "daemon_stopped at the intake", || {
        intake
            .accepted()
            .iter()
            .any(|e| e["event"] == "daemon_stopped")
    });
    // Every decision arrived exactly once, in the journal's order.
    let journal: Vec<Value> = std::fs::read_to_string(dir.state_dir().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<_> = journal.iter().map(key_of).collect();
    let have: Vec<_> = intake.accepted().iter().map(key_of).collect();
    assert_eq!(
        have, want,
        "the intake's decisions differ from the journal's"
    );
    assert!(want.iter().any(|k| k.1 == "switch") && want.iter().any(|k| k.1 == "paused"));
    assert_eq!(paused_line["event"], "paused");
    for g in intake.got() {
        assert_eq!(g.key.as_deref(), Some(KEY));
        for e in &g.entries {
            assert_eq!(e["ddsource"], "failover-handler");
            assert_eq!(e["format_version"], 1);
        }
    }
    assert!(!d.lines().concat().contains(KEY), "the key was logged");
    d.assert_log_contract();
}

#[test]
fn decisions_reach_datadog_through_an_http_connect_proxy() {
    for variable in ["DD_PROXY_HTTPS", "HTTPS_PROXY"] {
        let dir = TestDir::new();
        dir.write_env(&env_for("NAM"));
        let intake = IntakeStandIn::start(Answer::Accept, Some(dir.pki().tunnel().server_config()));
        let (proxy, targets) = connect_proxy();
        let tunnel = FakeTunnel::start(&dir);
        let url = format!("https://localhost:{}/api/v2/logs", intake.port);
        let d = shipping(&dir, &tunnel, &url)
            .env(variable, &format!("http://127.0.0.1:{proxy}"))
            .env("SSL_CERT_FILE", dir.ca_pem().to_str().unwrap())
            .spawn_daemon();
        wait_until(WAIT, "daemon_started at the intake", || {
            intake
                .accepted()
                .iter()
                .any(|e| e["event"] == "daemon_started")
        });
        assert_eq!(
            targets.lock().unwrap().first().map(String::as_str),
            Some(format!("localhost:{}", intake.port).as_str()),
            "{variable}: the intake was not reached through the proxy"
        );
        let mut d = d;
        d.terminate();
        assert!(!d.lines().concat().contains(KEY), "the key was logged");
        d.assert_log_contract();
    }
}

/// Headless Chromium driven over `--remote-debugging-pipe` (the DevTools protocol on file
/// descriptors 3 and 4: JSON messages ended by NUL).
struct Browser {
    child: std::process::Child,
    to: std::fs::File,
    from: BufReader<std::fs::File>,
    next: u64,
    session: Option<String>,
}

impl Browser {
    fn launch(profile: &Path) -> Browser {
        use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let pipe = || {
            let mut fds = [0; 2];
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let (r, w) = (browser_reads.into_raw_fd(), browser_writes.into_raw_fd());
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
            "--remote-debugging-pipe",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first, so that neither lands on the other's target.
                let (hr, hw) = (
                    libc::fcntl(r, libc::F_DUPFD, 10),
                    libc::fcntl(w, libc::F_DUPFD, 10),
                );
                if hr < 0 || hw < 0 || libc::dup2(hr, 3) < 0 || libc::dup2(hw, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        unsafe {
            libc::close(r);
            libc::close(w);
        }
        Browser {
            child,
            to: std::fs::File::from(we_write),
            from: BufReader::new(std::fs::File::from(we_read)),
            next: 0,
            session: None,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = Value::from(s.clone());
        }
        self.to.write_all(msg.to_string().as_bytes()).unwrap();
        self.to.write_all(&[0]).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed the pipe");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Opens `url` in a new tab and talks to that tab from now on.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", serde_json::json!({ "url": url }));
        let attached = self.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target["targetId"], "flatten": true }),
        );
        self.session = attached["sessionId"].as_str().map(String::from);
    }

    /// Evaluates `expr` in the tab; returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    fn wait(&mut self, what: &str, limit: Duration, expr: &str) -> Duration {
        let started = Instant::now();
        loop {
            if self.eval(expr) == Value::Bool(true) {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every visible text on the page with its colour and the colour behind it (ancestors'
/// backgrounds composited, alpha included), as `[r, g, b]`.
const COLOUR_PAIRS: &str = r#"(()=>{
const parse=c=>{const m=c.match(/rgba?\(([^)]+)\)/);if(!m)return[0,0,0,0];
const p=m[1].split(/[\s,\/]+/).filter(x=>x).map(Number);return[p[0],p[1],p[2],p.length>3?p[3]:1]};
const behind=el=>{const layers=[];for(let e=el;e;e=e.parentElement){const c=parse(getComputedStyle(e).backgroundColor);
if(c[3]>0){layers.push(c);if(c[3]>=1)break;}}let r=[255,255,255];
for(const c of layers.reverse())r=r.map((v,i)=>v*(1-c[3])+c[i]*c[3]);return r};
const out=[];const w=document.createTreeWalker(document.body,NodeFilter.SHOW_TEXT);let n;
while((n=w.nextNode())){const t=n.textContent.trim();if(!t)continue;const el=n.parentElement;
if(el.closest('[hidden],script,style,title,noscript'))continue;const cs=getComputedStyle(el);
if(cs.display==='none'||cs.visibility==='hidden')continue;const fg=parse(cs.color),bg=behind(el);
out.push({text:t.slice(0,50),fg:fg.slice(0,3).map((v,i)=>v*fg[3]+bg[i]*(1-fg[3])),bg:bg});}
return out;})()"#;

fn luminance(rgb: &[f64]) -> f64 {
    let f = |c: f64| {
        let c = c / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2])
}

/// WCAG 2 contrast ratio.
fn contrast(a: &[f64], b: &[f64]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Checks every text/background pair on the page against WCAG AA (4.5:1); returns how many.
fn assert_contrast(browser: &mut Browser, state: &str) -> usize {
    let pairs = browser.eval(COLOUR_PAIRS);
    let pairs = pairs.as_array().unwrap();
    assert!(pairs.len() > 10, "{state}: {pairs:?}");
    let nums = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let mut failing = Vec::new();
    for p in pairs {
        let ratio = contrast(&nums(&p["fg"]), &nums(&p["bg"]));
        if ratio < 4.5 {
            failing.push(format!(
                "{:.2}:1 {} on {} \"{}\"",
                ratio, p["fg"], p["bg"], p["text"]
            ));
        }
    }
    assert!(
        failing.is_empty(),
        "{state}: below WCAG AA:\n{}",
        failing.join("\n")
    );
    pairs.len()
}

#[test]
fn the_status_page_warns_within_two_intervals_when_the_daemon_stops_answering() {
    if !have("chromium", "chromium") {
        return;
    }
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let d = Cmd::new(&dir)
        .tunnel(&tunnel)
        .flag("--metrics-addr", "127.0.0.1:0")
        .flag("--threshold", "10m")
        .spawn_daemon();
    let addr = listening(&d);
    crate::support::wait_for_probes(&tunnel, "NAM", 3);
    let mut browser = Browser::launch(&dir.path().join("chromium-profile"));
    browser.open(&format!("http://{addr}/"));
    browser.wait(
        "the page",
        WAIT,
        "document.readyState==='complete'&&!!document.getElementById('active-region')",
    );
    let hero = "getComputedStyle(document.querySelector('.hero')).backgroundColor";
    assert_eq!(
        browser.eval(hero),
        "rgb(31, 122, 77)",
        "green while healthy"
    );
    assert_contrast(&mut browser, "healthy");

    // An outage in progress: the page follows /status and turns amber.
    tunnel.set_region("NAM", Mode::Status(503));
    browser.wait(
        "the outage on the page",
        WAIT,
        "!!document.querySelector('.hero.warn')",
    );
    assert_eq!(
        browser.eval("document.getElementById('stale').hidden"),
        true,
        "no stale banner while the daemon answers"
    );
    assert_contrast(&mut browser, "outage in progress");

    // The daemon stops answering: within two intervals (2 x 3 s) the page says so.
    let pid = d.pid() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let took = browser.wait(
        "the stale banner",
        Duration::from_secs(10),
        "!document.getElementById('stale').hidden",
    );
    let banner = browser.eval("document.getElementById('stale').textContent");
    let hero_now = browser.eval(hero);
    let n = assert_contrast(&mut browser, "stale");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    assert!(
        took <= Duration::from_secs(6),
        "the banner came after {took:?}"
    );
    let banner = banner.as_str().unwrap();
    assert!(
        banner.starts_with("No answer from the daemon for ") && banner.contains(" old)"),
        "{banner}"
    );
    assert_ne!(hero_now, "rgb(31, 122, 77)", "a stale page is never green");
    assert_ne!(
        hero_now, "rgb(138, 90, 0)",
        "a stale page shows no live colour"
    );
    eprintln!("stale banner after {took:?}: {banner} ({n} text colours checked)");

    // It answers again: the banner goes.
    browser.wait(
        "the banner to go",
        Duration::from_secs(10),
        "document.getElementById('stale').hidden",
    );
    drop(browser);
    d.finish();
}

/// A TLS server on 127.0.0.1 that answers every request with 200, presenting `cert`.
fn tls_ok_server(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let s = reader.get_mut();
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                let _ = s.flush();
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    port
}

#[test]
fn a_certificate_expiring_within_two_weeks_is_warned_once_and_exported() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let not_after = now - now % 86_400 + 5 * 86_400;
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(not_after);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let port = tls_ok_server(&cert, &key);

    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let pem = dir.write_file("expiring.pem", &cert.pem());
    let d = Cmd::new(&dir)
        .flag("--probe-url", &format!("https://127.0.0.1:{port}/health"))
        .flag("--ca-cert", pem.to_str().unwrap())
        .flag("--metrics-addr", "127.0.0.1:0")
        .spawn_daemon();
    let addr = listening(&d);
    let warned = d.wait_for_event("cert_expiring", WAIT);
    assert_eq!(warned["level"], "WARN", "{warned}");
    assert_eq!(warned["region"], "NAM", "{warned}");
    let left = warned["expires_in_s"].as_u64().unwrap();
    assert!((4 * 86_400..=5 * 86_400).contains(&left), "{warned}");
    let message = warned["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The certificate chain the probe of region NAM (cloud.nam.ext.com) sees expires at "
        ) && (message.contains(" (in 4days") || message.contains(" (in 5days")),
        "{message}"
    );
    wait_until(WAIT, "more probes", || {
        let m = scrape(&addr);
        sample(
            &m,
            "failover_handler_probe_duration_seconds_count{region=\"NAM\"}",
        )
        .is_some_and(|n| n >= 10.0)
    });
    let m = scrape(&addr);
    assert_eq!(
        must_sample(&m, "probe_ssl_earliest_cert_expiry{region=\"NAM\"}"),
        not_after as f64
    );
    assert_eq!(
        d.events("cert_expiring").len(),
        1,
        "said once a day at most"
    );
    let mut d = d;
    d.terminate();
    let journal = std::fs::read_to_string(dir.state_dir().join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"event\":\"cert_expiring\"").count(), 1);
    d.assert_log_contract();
}

#[test]
fn decisions_spooled_while_the_intake_is_away_are_sent_first_after_a_restart() {
    let intake = IntakeStandIn::start(Answer::Unavailable, None);
    let dir = TestDir::new();
    dir.write_env(&env_for("NAM"));
    let tunnel = FakeTunnel::start(&dir);
    let url = format!("http://127.0.0.1:{}/api/v2/logs", intake.port);
    let spool = dir.state_dir().join("datadog-spool.jsonl");
    let mut first = shipping(&dir, &tunnel, &url).spawn_daemon();
    wait_until(WAIT, "the spool on disk", || spool.exists());
    first.terminate();
    let kept = std::fs::read_to_string(&spool).unwrap();
    assert!(
        kept.contains("\"event\":\"daemon_started\"")
            && kept.contains("\"event\":\"daemon_stopped\""),
        "{kept}"
    );
    assert_eq!(intake.accepted(), Vec::<Value>::new());

    intake.set(Answer::Accept);
    let mut second = shipping(&dir, &tunnel, &url).spawn_daemon();
    second.wait_for_event("datadog_spool_found", WAIT);
    wait_until(WAIT, "both runs at the intake", || {
        intake
            .accepted()
            .iter()
            .filter(|e| e["event"] == "daemon_started")
            .count()
            == 2
    });
    wait_until(WAIT, "the spool emptied", || !spool.exists());
    second.terminate();
    wait_until(WAIT, "the second stop at the intake", || {
        intake
            .accepted()
            .iter()
            .filter(|e| e["event"] == "daemon_stopped")
            .count()
            == 2
    });
    let journal: Vec<Value> = std::fs::read_to_string(dir.state_dir().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<_> = journal.iter().map(key_of).collect();
    let have: Vec<_> = intake.accepted().iter().map(key_of).collect();
    assert_eq!(
        have, want,
        "the intake's decisions differ from the journal's"
    );
    second.assert_log_contract();
}
