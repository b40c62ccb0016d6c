//! The daemon under test: a child process whose stdout lines are read on a thread, parsed
//! as JSON and kept, so a test can wait for a log line and check every line afterwards.

use super::{Cmd, SERVICE, spawn_piped};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// One stdout line as printed, and its JSON if it parsed.
#[derive(Clone, Debug)]
pub struct Line {
    pub raw: String,
    pub json: Option<Value>,
}

#[derive(Default)]
struct Log {
    lines: Vec<Line>,
    eof: bool,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
}

/// A running `failover-handler run`; killed on drop.
pub struct Daemon {
    child: Child,
    shared: Arc<Shared>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Daemon {
    pub fn spawn(cmd: &Cmd) -> Daemon {
        let cmd = if cmd.has_sub() {
            cmd.clone()
        } else {
            cmd.clone().sub(&["run"])
        };
        let (child, stdout, mut err) = spawn_piped(cmd.command());
        let shared = Arc::new(Shared::default());
        let stderr = Arc::new(Mutex::new(String::new()));
        let out_shared = Arc::clone(&shared);
        let out_reader = thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let raw = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                let json = std::str::from_utf8(&buf)
                    .ok()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok());
                out_shared
                    .log
                    .lock()
                    .unwrap()
                    .lines
                    .push(Line { raw, json });
                out_shared.changed.notify_all();
            }
            out_shared.log.lock().unwrap().eof = true;
            out_shared.changed.notify_all();
        });
        let err_text = Arc::clone(&stderr);
        let err_reader = thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                err_text
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Daemon {
            child,
            shared,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line from the start whose JSON matches `pred`; panics with every line seen
    /// when none does within `timeout` or the daemon's stdout closes first.
    pub fn wait_for(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        self.wait_for_count(pred, 1, timeout).remove(0)
    }

    /// The first `n` lines matching `pred`, waiting up to `timeout` for them.
    pub fn wait_for_count(
        &self,
        pred: impl Fn(&Value) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.log.lock().unwrap();
        loop {
            let found: Vec<Value> = log
                .lines
                .iter()
                .filter_map(|l| l.json.as_ref())
                .filter(|v| pred(v))
                .take(n)
                .cloned()
                .collect();
            if found.len() == n {
                return found;
            }
            let now = Instant::now();
            if log.eof || now >= deadline {
                let why = if log.eof {
                    "the daemon's stdout closed"
                } else {
                    "timed out"
                };
                drop(log);
                panic!(
                    "{why} after {:?} (limit {timeout:?}) with {} of {n} matching lines\n{}",
                    timeout - (deadline - now.min(deadline)),
                    found.len(),
                    self.dump()
                );
            }
            log = self
                .shared
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap()
                .0;
        }
    }

    pub fn wait_for_event(&self, name: &str, timeout: Duration) -> Value {
        self.wait_for(|v| v["event"] == name, timeout)
    }

    /// Raw stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        let log = self.shared.log.lock().unwrap();
        log.lines.iter().map(|l| l.raw.clone()).collect()
    }

    /// Parsed stdout lines so far (lines that are not JSON are left out).
    pub fn json_lines(&self) -> Vec<Value> {
        let log = self.shared.log.lock().unwrap();
        log.lines.iter().filter_map(|l| l.json.clone()).collect()
    }

    /// Lines so far whose `event` is `name`.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|v| v["event"] == name)
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Every line so far and stderr, for failure messages.
    pub fn dump(&self) -> String {
        let mut text = String::from("--- daemon stdout ---\n");
        for line in self.lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str("--- daemon stderr ---\n");
        text.push_str(&self.stderr());
        text
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (a name for kill(1): `HUP`, `USR1`, …) to the daemon.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Sends SIGTERM and waits (at most 10 s) for the exit; returns its status and how long
    /// it took. Stdout is read to its end before returning.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        self.stop_with("TERM")
    }

    /// Sends `signal` and waits (at most 10 s) for the exit, as [`Daemon::terminate`] does.
    pub fn stop_with(&mut self, signal: &str) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal(signal);
        let deadline = started + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the daemon did not exit within 10 s of SIG{signal}\n{}",
                    self.dump()
                );
            }
            thread::sleep(Duration::from_millis(2));
        };
        let took = started.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, took)
    }

    /// Stops the daemon and checks the log contract on everything it printed.
    pub fn finish(mut self) {
        self.terminate();
        self.assert_log_contract();
    }

    /// Every stdout line is one JSON object with `timestamp` (RFC 3339, UTC `Z`), `level`
    /// (INFO/WARN/ERROR), `service`, `message` and `event`, and no key Datadog reserves.
    pub fn assert_log_contract(&self) {
        let log = self.shared.log.lock().unwrap();
        let mut problems = Vec::new();
        for line in &log.lines {
            let Some(json) = &line.json else {
                problems.push(format!("not JSON: {}", line.raw));
                continue;
            };
            let Some(obj) = json.as_object() else {
                problems.push(format!("not a JSON object: {}", line.raw));
                continue;
            };
            match obj.get("timestamp").and_then(Value::as_str) {
                Some(ts) if ts.ends_with('Z') && humantime::parse_rfc3339(ts).is_ok() => {}
                _ => problems.push(format!("bad or missing timestamp: {}", line.raw)),
            }
            match obj.get("level").and_then(Value::as_str) {
                Some("INFO" | "WARN" | "ERROR") => {}
                _ => problems.push(format!("bad or missing level: {}", line.raw)),
            }
            if obj.get("service").and_then(Value::as_str) != Some(SERVICE) {
                problems.push(format!("service is not {SERVICE}: {}", line.raw));
            }
            if obj.get("message").and_then(Value::as_str).is_none() {
                problems.push(format!("no message: {}", line.raw));
            }
            if obj.get("event").and_then(Value::as_str).is_none() {
                problems.push(format!("no event: {}", line.raw));
            }
            for reserved in ["status", "host", "date"] {
                if obj.contains_key(reserved) {
                    problems.push(format!("reserved key {reserved:?}: {}", line.raw));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "log contract broken:\n{}",
            problems.join("\n")
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `timestamp` of a log line.
pub fn timestamp(line: &Value) -> SystemTime {
    let text = line["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("no timestamp in {line}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("timestamp {text:?}: {e}"))
}

/// The time from one log line to a later one (zero if `later` is not later).
pub fn between(earlier: &Value, later: &Value) -> Duration {
    timestamp(later)
        .duration_since(timestamp(earlier))
        .unwrap_or_default()
}
