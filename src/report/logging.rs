//! Log lines: one JSON object per line (`timestamp`, `level`, `service`, `message`, then the
//! event's fields), or readable text for people. Field names that Datadog reserves (`status`,
//! `host`, `date`) are renamed so they never collide.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::config::cli::LogFormat;
use crate::config::redact;

/// Datadog gives these top-level attributes a meaning of its own.
const RESERVED: [&str; 3] = ["status", "host", "date"];

/// One event's fields, in the order they were recorded.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, serde_json::Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == EVENT_FIELDS {
            if let serde_json::Value::String(text) = &value
                && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text)
            {
                for (name, value) in map {
                    self.push_named(&name, value);
                }
            }
            return;
        }
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            return;
        }
        self.push_named(field.name(), value);
    }

    fn push_named(&mut self, name: &str, value: serde_json::Value) {
        // A URL field may carry credentials, whoever logged it.
        let value = match value {
            serde_json::Value::String(u) if name == "url" || name.ends_with("_url") => {
                serde_json::Value::String(redact::url(&u))
            }
            other => other,
        };
        let name = if RESERVED.contains(&name) {
            format!("fh_{name}")
        } else {
            name.to_string()
        };
        self.pairs.push((name, value));
    }
}

/// Datadog's standard attributes, added beside our own fields of the same meaning so that
/// Datadog's facets, error tracking and latency views work without a pipeline of remappers:
/// `error_kind` -> `error.kind`, `error` -> `error.message`, `duration_ms` (or a probe's
/// `latency_ms`) -> `duration` in nanoseconds, `http_status` -> `http.status_code`, a URL
/// (`url`, `probe_url`) -> `http.url` without credentials or query. Our own names stay, so
/// nothing that reads them changes.
pub fn standard_attributes(
    pairs: &[(String, serde_json::Value)],
) -> Vec<(String, serde_json::Value)> {
    use serde_json::Value;
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mut out = Vec::new();
    if let Some(kind) = get("error_kind").filter(|v| !v.is_null()) {
        out.push(("error.kind".to_string(), kind.clone()));
    }
    if let Some(Value::String(m)) = get("error") {
        out.push(("error.message".to_string(), Value::String(m.clone())));
    }
    let ms = get("duration_ms")
        .or_else(|| get("latency_ms"))
        .and_then(Value::as_f64);
    if let Some(ms) = ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
        out.push(("duration".to_string(), ((ms * 1e6).round() as u64).into()));
    }
    if let Some(code) = get("http_status").and_then(Value::as_u64) {
        out.push(("http.status_code".to_string(), code.into()));
    }
    if let Some(Value::String(u)) = get("url").or_else(|| get("probe_url")) {
        out.push(("http.url".to_string(), Value::String(redact::url(u))));
    }
    out.retain(|(k, _)| get(k).is_none());
    out
}

/// The field that carries an [`Event`](crate::report::event::Event)'s fields into its line.
const EVENT_FIELDS: &str = "event_fields";

/// Writes the log line of a decision: its level, `event` name, message and fields.
pub fn event(e: &crate::report::event::Event) {
    event_at(e, e.level());
}

/// Writes the log line of a decision at `level` instead of its own.
pub fn event_at(e: &crate::report::event::Event, level: crate::report::journal::Level) {
    use crate::report::journal::Level as L;
    let fields = serde_json::Value::Object(e.fields()).to_string();
    let (name, message) = (e.name(), e.message());
    match level {
        L::Debug => tracing::debug!(event = name, event_fields = fields, "{message}"),
        L::Info => tracing::info!(event = name, event_fields = fields, "{message}"),
        L::Warn => tracing::warn!(event = name, event_fields = fields, "{message}"),
        L::Error => tracing::error!(event = name, event_fields = fields, "{message}"),
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, serde_json::Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, serde_json::Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// A tracing event's message and fields as the log line shows them (an Event's fields
/// spelled out, reserved names renamed), for readers of the daemon's events such as the demo.
pub fn read_fields(event: &Event<'_>) -> (String, Vec<(String, serde_json::Value)>) {
    let mut fields = Fields::default();
    event.record(&mut fields);
    (fields.message, fields.pairs)
}

/// Renders one event as a JSON line.
pub fn json_line(
    service: &str,
    level: &str,
    message: &str,
    pairs: &[(String, serde_json::Value)],
) -> String {
    let timestamp = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let mut line = String::with_capacity(256);
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let _ = write!(
        line,
        "{{\"timestamp\":{},\"level\":{},\"service\":{},\"message\":{}",
        q(&timestamp),
        q(level),
        q(service),
        q(message)
    );
    for (k, v) in pairs {
        let _ = write!(line, ",{}:{}", q(k), v);
    }
    line.push('}');
    line
}

fn text_line(level: &str, message: &str, pairs: &[(String, serde_json::Value)]) -> String {
    let timestamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut line = format!("{timestamp} {level:<5} {message}");
    for (k, v) in pairs {
        if k == "event" {
            continue;
        }
        match v {
            serde_json::Value::String(s) if !s.contains(char::is_whitespace) && !s.is_empty() => {
                let _ = write!(line, " {k}={s}");
            }
            other => {
                let _ = write!(line, " {k}={other}");
            }
        }
    }
    // Values may be what a peer said; a text line goes to a terminal.
    redact::printable(&line.replace('\n', " "))
}

/// Where lines go: stdout for the daemon, stderr for one-shot commands, a buffer in tests.
pub type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// A tracing layer writing our line format.
pub struct LineLayer {
    service: String,
    format: LogFormat,
    sink: Sink,
    max_level: Level,
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max_level && metadata.target().starts_with("failover_handler")
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.max_level || !meta.target().starts_with("failover_handler") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = level_name(meta.level());
        if self.format == LogFormat::Json {
            let extra = standard_attributes(&fields.pairs);
            fields.pairs.extend(extra);
        }
        let mut line = match self.format {
            LogFormat::Json => json_line(&self.service, level, &fields.message, &fields.pairs),
            LogFormat::Text => text_line(level, &fields.message, &fields.pairs),
        };
        line.push('\n');
        if let Ok(mut sink) = self.sink.lock() {
            let _ = sink.write_all(line.as_bytes());
            let _ = sink.flush();
        }
    }
}

/// Installs the global logger. `FAILOVER_HANDLER_LOG=debug` shows every probe.
pub fn init(service: &str, format: LogFormat, to_stderr: bool) {
    let sink: Box<dyn Write + Send> = if to_stderr {
        Box::new(io::stderr())
    } else {
        Box::new(io::stdout())
    };
    let max_level = match std::env::var("FAILOVER_HANDLER_LOG").as_deref() {
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        Ok("warn") => Level::WARN,
        Ok("error") => Level::ERROR,
        _ => Level::INFO,
    };
    let layer = LineLayer {
        service: service.to_string(),
        format,
        sink: Arc::new(Mutex::new(sink)),
        max_level,
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// A layer writing into a shared buffer, for tests that read log lines.
pub fn capture(service: &str, format: LogFormat) -> (LineLayer, Arc<Mutex<Vec<u8>>>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let layer = LineLayer {
        service: service.to_string(),
        format,
        sink: Arc::new(Mutex::new(Box::new(Shared(buf.clone())))),
        max_level: Level::DEBUG,
    };
    (layer, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_the_contract_fields_and_no_reserved_names() {
        let (layer, buf) = capture("svc", LogFormat::Json);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                event = "probe_failed",
                status = 503u64,
                host = "h",
                latency_ms = 12u64,
                "Probe \"failed\""
            );
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["service"], "svc");
        assert_eq!(v["message"], "Probe \"failed\"");
        assert_eq!(v["event"], "probe_failed");
        assert_eq!(v["fh_status"], 503);
        assert_eq!(v["fh_host"], "h");
        assert!(v.get("status").is_none() && v.get("host").is_none());
        let ts = v["timestamp"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && humantime::parse_rfc3339(ts).is_ok(),
            "{ts}"
        );
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
    }

    #[test]
    fn json_lines_carry_datadogs_standard_attributes() {
        let (layer, buf) = capture("svc", LogFormat::Json);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                event = "probe_failed",
                region = "EU",
                error_kind = "status",
                error = "status: HTTP 503",
                http_status = 503u64,
                latency_ms = 12.5,
                url = "https://u:secret@localhost:8443/v2/o/cloudlookup/t?token=x",
                "Probe failed"
            );
            tracing::info!(event = "restart_done", duration_ms = 32u64, "Restarted");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let v = &lines[0];
        assert_eq!(v["error.kind"], "status");
        assert_eq!(v["error_kind"], "status");
        assert_eq!(v["error.message"], "status: HTTP 503");
        assert_eq!(v["http.status_code"], 503);
        assert_eq!(v["duration"], 12_500_000);
        assert_eq!(
            v["http.url"],
            "https://***@localhost:8443/v2/o/cloudlookup/t?token=***"
        );
        assert_eq!(v["url"], v["http.url"]);
        assert_eq!(lines[1]["duration"], 32_000_000);
        assert!(lines[1].get("error.kind").is_none());
    }

    #[test]
    fn text_lines_are_readable() {
        let line = text_line(
            "INFO",
            "hello",
            &[("event".into(), "x".into()), ("region".into(), "EU".into())],
        );
        assert!(line.ends_with("INFO  hello region=EU"), "{line}");
    }
}
