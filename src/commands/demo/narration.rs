//! The demo's narration: every log event of the daemon as a readable line with the time since
//! the demo began, kept in a journal the scenario waits on and the summary reads.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One log event of the daemon, as the demo saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub at: Instant,
    pub event: String,
    pub fields: Vec<(String, String)>,
}

impl Seen {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every event so far; the scenario waits on it.
#[derive(Clone, Default)]
pub(super) struct Journal(Arc<Mutex<Vec<Seen>>>);

impl Journal {
    pub fn after(&self, t: Instant, event: &str) -> Vec<Seen> {
        lock(&self.0)
            .iter()
            .filter(|s| s.at >= t && s.event == event)
            .cloned()
            .collect()
    }

    pub fn first_after(&self, t: Instant, event: &str) -> Option<Seen> {
        self.after(t, event).into_iter().next()
    }
}

/// Prints the daemon's log events as readable lines, with the time since the demo began,
/// and records them in the journal.
pub(super) struct Narrator {
    pub t0: Instant,
    pub journal: Journal,
}

impl<S: Subscriber> Layer<S> for Narrator {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: LayerContext<'_, S>) -> bool {
        metadata.target().starts_with("failover_handler")
    }

    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("failover_handler") || *meta.level() == Level::TRACE {
            return;
        }
        let (message, pairs) = crate::report::logging::read_fields(event);
        let mut name = String::new();
        let mut fields = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if key == "event" {
                name = text;
            } else {
                fields.push((key, text));
            }
        }
        let at = Instant::now();
        // A probe that changes the region's health is told by its own line (`probe_ok`,
        // `probe_failed`); the change is recorded, not told twice.
        if name == "probe_changed" {
            lock(&self.journal.0).push(Seen {
                at,
                event: name,
                fields,
            });
            return;
        }
        let tag = match (*meta.level(), name.as_str()) {
            (_, "probe_ok") => "ok",
            (_, "restart_step") => "  step",
            (Level::ERROR, _) => "ERROR",
            (Level::WARN, _) => "WARN",
            _ => "info",
        };
        say(&format!("{:>7}  {tag:<5} {message}", elapsed(self.t0, at)));
        lock(&self.journal.0).push(Seen {
            at,
            event: name,
            fields,
        });
    }
}

pub(super) fn elapsed(t0: Instant, at: Instant) -> String {
    format!("{:.2}s", at.saturating_duration_since(t0).as_secs_f64())
}

pub(super) fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Set once stdout is gone (`demo | head`): the demo then ends early and still cleans up.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// One line on stdout; a closed stdout ends the demo instead of panicking.
pub(super) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

pub(super) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}
