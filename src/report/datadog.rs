//! Decisions shipped to Datadog's v2 log intake (`https://http-intake.logs.<DD_SITE>/api/v2/logs`)
//! when `DD_API_KEY` is set. The daemon only pushes onto a bounded queue that drops its oldest
//! entry when full (counted in `failover_handler_datadog_dropped_total`); a shipper task moves
//! entries into the [`Spool`] and sends it in order, as gzip batches of at most 1000 entries and
//! 5 MB ([`Intake`]). While the intake cannot be reached (408, 429, 5xx, network errors) the
//! same batch is retried with full-jitter backoff, or after the intake's `Retry-After`, and the
//! backlog is kept in the state dir; once it answers, the backlog drains in full batches back
//! to back. A batch the intake refuses is halved until the entry it refuses is found and
//! dropped, so one bad entry never holds the others. The API key is never logged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::adapters::files::StateDir;
use crate::config::{DatadogSettings, duration_text};
pub use crate::report::batch::{
    MAX_ENTRIES, MAX_ENTRY, MAX_PAYLOAD, entry, gzip_payload, hostname, take_batch,
};
use crate::report::intake::{Answer, Intake};
use crate::report::spool::{self, Spool};

/// Entries waiting to be sent; past this the oldest is dropped.
const QUEUE: usize = 10_000;
/// How long the first entry waits for others to join its batch.
const LINGER: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The last attempt at shutdown; what it cannot send stays in the spool for the next start.
const LAST_FLUSH: Duration = Duration::from_millis(500);

/// Full jitter (AWS's name): a uniformly random wait between zero and the exponential bound,
/// so that many handlers that lost the intake together do not come back in step.
pub fn full_jitter(first: Duration, attempt: u32, random: u64) -> Duration {
    let bound = first
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(if nanos == 0 { 0 } else { random % (nanos + 1) })
}

/// A random number from the standard library's per-process hash keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

struct Queue {
    entries: Mutex<VecDeque<String>>,
    notify: Notify,
    dropped: Counter,
    warned: AtomicBool,
}

impl Queue {
    fn drain(&self) -> Vec<String> {
        self.entries
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }
}

/// The daemon's side: pushes entries and never waits.
#[derive(Clone)]
pub struct Datadog {
    queue: Arc<Queue>,
}

impl Datadog {
    pub fn push(&self, entry: &Value) {
        let text = entry.to_string();
        if text.len() > MAX_ENTRY {
            self.queue.dropped.inc();
            return;
        }
        if let Ok(mut q) = self.queue.entries.lock() {
            if q.len() >= QUEUE {
                q.pop_front();
                self.queue.dropped.inc();
                if !self.queue.warned.swap(true, Ordering::Relaxed) {
                    warn!(
                        event = "datadog_queue_full",
                        "The Datadog queue is full ({QUEUE} entries): dropping the oldest; see failover_handler_datadog_dropped_total"
                    );
                }
            }
            q.push_back(text);
        }
        self.queue.notify.notify_one();
    }
}

/// The sending side: moves entries into the spool and sends it, in order.
pub struct Shipper {
    queue: Arc<Queue>,
    intake: Intake,
    spool: Spool,
    spooled: Gauge,
    linger: Duration,
    first_backoff: Duration,
    /// Failed attempts in a row (0 while the intake answers).
    failures: u32,
    /// Whether `datadog_spool_full` was said in this outage of the intake.
    full_warned: bool,
}

/// A queue and its shipper for `settings`. `state`: where the backlog is kept while the intake
/// cannot be reached (none: in memory only). A client that cannot be set up is an error.
pub fn channel(
    settings: &DatadogSettings,
    state: Option<StateDir>,
    dropped: Counter,
    spooled: Gauge,
) -> Result<(Datadog, Shipper), String> {
    let intake = Intake::new(settings)?;
    let queue = Arc::new(Queue {
        entries: Mutex::new(VecDeque::new()),
        notify: Notify::new(),
        dropped,
        warned: AtomicBool::new(false),
    });
    let spool = Spool::open(state, spool::MAX_ENTRIES, spool::MAX_BYTES);
    spooled.set(spool.len() as i64);
    if !spool.is_empty() {
        info!(
            event = "datadog_spool_found",
            entries = spool.len(),
            "{} decisions left from the last run are waiting for Datadog's intake",
            spool.len()
        );
    }
    Ok((
        Datadog {
            queue: queue.clone(),
        },
        Shipper {
            queue,
            intake,
            spool,
            spooled,
            linger: LINGER,
            first_backoff: FIRST_BACKOFF,
            failures: 0,
            full_warned: false,
        },
    ))
}

impl Shipper {
    /// Shorter waits, for tests.
    pub fn with_timings(mut self, linger: Duration, first_backoff: Duration) -> Self {
        self.linger = linger;
        self.first_backoff = first_backoff;
        self
    }

    /// Sends until `cancel` fires, then makes one last quick attempt and keeps what is left
    /// in the spool for the next start.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut idle = true;
        loop {
            self.absorb().await;
            if self.spool.is_empty() {
                idle = true;
                tokio::select! {
                    _ = self.queue.notify.notified() => continue,
                    _ = cancel.cancelled() => return self.last_flush().await,
                }
            }
            // A new decision after a quiet time waits a moment for others to join it; a
            // backlog goes at once, batch after batch.
            if std::mem::take(&mut idle) && self.spool.len() < MAX_ENTRIES {
                tokio::select! {
                    _ = tokio::time::sleep(self.linger) => {}
                    _ = cancel.cancelled() => return self.last_flush().await,
                }
                self.absorb().await;
            }
            let wait = self.attempt().await;
            if let Some(wait) = wait {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return self.last_flush().await,
                }
            }
        }
    }

    /// Moves what the daemon pushed into the spool (saved while the intake is away).
    async fn absorb(&mut self) {
        let new = self.queue.drain();
        if new.is_empty() {
            return;
        }
        let dropped = self.spool.push(new);
        if dropped > 0 {
            self.queue.dropped.inc_by(dropped);
            if !self.full_warned {
                self.full_warned = true;
                warn!(
                    event = "datadog_spool_full",
                    dropped,
                    "The Datadog backlog is full ({} entries or {} MiB): dropping the oldest; see failover_handler_datadog_dropped_total",
                    spool::MAX_ENTRIES,
                    spool::MAX_BYTES >> 20
                );
            }
        }
        if self.failures > 0 {
            self.save().await;
        }
        self.spooled.set(self.spool.len() as i64);
    }

    async fn save(&mut self) {
        // The spool is small and bounded; writing it here keeps its order with the sends.
        if let Err(e) = self.spool.save() {
            warn!(
                event = "datadog_spool_unwritable",
                error = %e,
                "Cannot write the Datadog backlog to the state dir ({e}); it is kept in memory"
            );
        }
    }

    /// Sends the next batch; returns how long to wait before the next attempt, if at all.
    async fn attempt(&mut self) -> Option<Duration> {
        let batch = self.spool.batch(MAX_ENTRIES, MAX_PAYLOAD).to_vec();
        let n = batch.len();
        if n == 0 {
            return None;
        }
        let body = match gzip_payload(&batch) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                warn!(
                    event = "datadog_dropped",
                    entries = n,
                    "Cannot compress a Datadog batch ({e}); dropping {n} entries"
                );
                self.spool.done();
                self.queue.dropped.inc_by(n as u64);
                return None;
            }
        };
        let answer = self.intake.send(body).await;
        let wait = self.answered(answer, n).await;
        self.spooled.set(self.spool.len() as i64);
        wait
    }

    async fn answered(&mut self, answer: Answer, n: usize) -> Option<Duration> {
        match answer {
            Answer::Accepted => {
                self.spool.done();
                if self.failures > 0 {
                    info!(
                        event = "datadog_delivered",
                        entries = n,
                        waiting = self.spool.len(),
                        attempt = self.failures + 1,
                        "Datadog accepted a batch of {n} entries at attempt {}; {} more waiting are sent now",
                        self.failures + 1,
                        self.spool.len()
                    );
                    self.failures = 0;
                    self.full_warned = false;
                }
                if self.spool.on_disk() {
                    self.save().await;
                }
                None
            }
            Answer::Retry { why, after } => {
                self.failures += 1;
                let wait = after
                    .unwrap_or_else(|| full_jitter(self.first_backoff, self.failures, random()));
                if self.failures == 1 {
                    self.save().await;
                }
                if self.failures <= 5 || self.failures.is_multiple_of(20) {
                    warn!(
                        event = "datadog_retry",
                        entries = n,
                        waiting = self.spool.len(),
                        attempt = self.failures,
                        retry_in_ms = wait.as_millis() as u64,
                        retry_after = after.is_some(),
                        "Sending {n} entries to Datadog failed ({why}); retrying in {}{}; {} decisions kept in the backlog",
                        duration_text(wait.max(Duration::from_millis(1))),
                        if after.is_some() {
                            " as the intake asked"
                        } else {
                            ""
                        },
                        self.spool.len()
                    );
                }
                Some(wait)
            }
            Answer::Refused { code } if n > 1 && !matches!(code, 401 | 403) => {
                // Find the entry it refuses: send each half on its own.
                self.spool.halve();
                None
            }
            Answer::Refused { code } => {
                let hint = if matches!(code, 401 | 403) {
                    ": check DD_API_KEY (not shown) and DD_SITE"
                } else {
                    ""
                };
                warn!(
                    event = "datadog_rejected",
                    http_status = code,
                    entries = n,
                    "Datadog's log intake refused {n} entries with HTTP {code}{hint}; dropping them"
                );
                self.spool.done();
                self.queue.dropped.inc_by(n as u64);
                None
            }
        }
    }

    /// At shutdown: one quick attempt unless the intake is known to be away, then the rest is
    /// kept in the spool for the next start (or counted as dropped without a state dir).
    async fn last_flush(mut self) {
        self.absorb().await;
        while !self.spool.is_empty() && self.failures == 0 {
            let batch = self.spool.batch(MAX_ENTRIES, MAX_PAYLOAD).to_vec();
            let Ok(body) = gzip_payload(&batch) else {
                break;
            };
            match tokio::time::timeout(LAST_FLUSH, self.intake.send(Bytes::from(body))).await {
                Ok(Answer::Accepted) => {
                    self.spool.done();
                }
                _ => break,
            }
        }
        if self.spool.is_empty() || self.spool.can_persist() {
            self.save().await;
        } else {
            self.queue.dropped.inc_by(self.spool.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn full_jitter_stays_under_a_doubling_bound() {
        let first = Duration::from_millis(500);
        for attempt in 1..12 {
            let bound = (first * 2u32.pow(attempt - 1)).min(MAX_BACKOFF);
            for r in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
                assert!(full_jitter(first, attempt, r) <= bound);
            }
        }
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|_| full_jitter(first, 3, random())).collect();
        assert!(spread.len() > 10, "{spread:?}");
    }

    /// A stand-in intake answering from a script of statuses, recording entry counts.
    async fn stand_in(script: Vec<u16>) -> (String, Arc<Mutex<Vec<(u16, usize, String)>>>) {
        use axum::body::Bytes as AxBytes;
        use axum::http::{HeaderMap, StatusCode};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/logs", listener.local_addr().unwrap());
        let (s2, sc2) = (seen.clone(), script.clone());
        let app = axum::Router::new().route(
            "/api/v2/logs",
            axum::routing::post(move |headers: HeaderMap, body: AxBytes| {
                let (seen, script) = (s2.clone(), sc2.clone());
                async move {
                    let code = script.lock().unwrap().pop_front().unwrap_or(202);
                    let mut text = String::new();
                    GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
                    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
                    let key = headers["dd-api-key"].to_str().unwrap().to_string();
                    seen.lock().unwrap().push((code, v.len(), key));
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    #[tokio::test]
    async fn ships_in_batches_and_retries_a_429() {
        let (url, seen) = stand_in(vec![429]).await;
        let settings = DatadogSettings {
            api_key: crate::config::Secret::new("k-123"),
            site: "datadoghq.com".into(),
            url: url::Url::parse(&url).unwrap(),
            proxy: None,
            no_proxy: None,
        };
        let dropped = Counter::default();
        let (dd, shipper) = channel(&settings, None, dropped.clone(), Gauge::default()).unwrap();
        for i in 0..2500 {
            dd.push(&serde_json::json!({ "n": i }));
        }
        let cancel = CancellationToken::new();
        let task = tokio::spawn(
            shipper
                .with_timings(Duration::from_millis(20), Duration::from_millis(50))
                .run(cancel.clone()),
        );
        for _ in 0..200 {
            if seen.lock().unwrap().len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let got: Vec<(u16, usize)> = seen.iter().map(|(c, n, _)| (*c, *n)).collect();
        assert_eq!(got, [(429, 1000), (202, 1000), (202, 1000), (202, 500)]);
        assert!(seen.iter().all(|(_, _, k)| k == "k-123"));
        assert_eq!(dropped.get(), 0);
    }

    #[tokio::test]
    async fn a_refused_entry_is_dropped_alone_and_the_rest_arrive_in_order() {
        use axum::http::StatusCode;
        let accepted = Arc::new(Mutex::new(Vec::<i64>::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/logs", listener.local_addr().unwrap());
        let a2 = accepted.clone();
        let app = axum::Router::new().route(
            "/api/v2/logs",
            axum::routing::post(move |body: axum::body::Bytes| {
                let accepted = a2.clone();
                async move {
                    let mut text = String::new();
                    GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
                    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
                    if v.iter().any(|e| e["bad"] == true) {
                        return StatusCode::BAD_REQUEST;
                    }
                    let mut seen = accepted.lock().unwrap();
                    seen.extend(v.iter().map(|e| e["n"].as_i64().unwrap()));
                    StatusCode::ACCEPTED
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let settings = DatadogSettings {
            api_key: crate::config::Secret::new("k"),
            site: "datadoghq.com".into(),
            url: url::Url::parse(&url).unwrap(),
            proxy: None,
            no_proxy: None,
        };
        let dropped = Counter::default();
        let (dd, shipper) = channel(&settings, None, dropped.clone(), Gauge::default()).unwrap();
        for n in 0..7 {
            dd.push(&serde_json::json!({ "n": n, "bad": n == 4 }));
        }
        let cancel = CancellationToken::new();
        let task = tokio::spawn(
            shipper
                .with_timings(Duration::from_millis(20), Duration::from_millis(20))
                .run(cancel.clone()),
        );
        for _ in 0..200 {
            if accepted.lock().unwrap().len() >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(*accepted.lock().unwrap(), [0, 1, 2, 3, 5, 6]);
        assert_eq!(dropped.get(), 1);
    }
}
