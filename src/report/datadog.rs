//! Decisions shipped to Datadog's v2 log intake (`https://http-intake.logs.<DD_SITE>/api/v2/logs`)
//! when `DD_API_KEY` is set. The daemon only pushes onto a bounded queue that drops its oldest
//! entry when full (counted in `failover_handler_datadog_dropped_total`); a shipper task sends
//! gzip batches of at most 1000 entries and 5 MB, retried with backoff on 408, 429, 5xx and
//! network errors. The API key travels in the `DD-API-KEY` header only, marked sensitive, and is
//! never logged.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::counter::Counter;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use url::Url;

use crate::adapters::net::{Connector, TlsSettings};
use crate::adapters::probe::{ErrorKind, ProbeError};
use crate::config::{DatadogSettings, Secret, human};
use crate::report::journal::Record;

/// Entries per request, as the intake allows.
pub const MAX_ENTRIES: usize = 1000;
/// Uncompressed bytes per request, as the intake allows.
pub const MAX_PAYLOAD: usize = 5 * 1024 * 1024;
/// One entry's largest size; the intake would cut a larger one.
pub const MAX_ENTRY: usize = 1024 * 1024;
/// Entries waiting to be sent; past this the oldest is dropped.
const QUEUE: usize = 10_000;
/// How long the first entry waits for others to join its batch.
const LINGER: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts per batch before it is given up (and counted as dropped).
const ATTEMPTS: u32 = 6;

/// One log entry for the intake: the record's fields, plus Datadog's source, service,
/// host name and tags. `level` feeds Datadog's status remapper.
pub fn entry(record: &Record, service: &str, hostname: &str) -> Value {
    let mut v = record.to_value();
    if let Value::Object(map) = &mut v {
        let pairs: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        map.extend(crate::report::logging::standard_attributes(&pairs));
        map.insert("ddsource".into(), "failover-handler".into());
        map.insert("service".into(), service.into());
        map.insert("hostname".into(), hostname.into());
        map.insert(
            "ddtags".into(),
            format!(
                "source:failover-handler,version:{},event:{}",
                env!("CARGO_PKG_VERSION"),
                record.event
            )
            .into(),
        );
    }
    v
}

/// This machine's host name, for the entries.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Takes the next batch off the front of `queue`: at most `max_entries` entries whose JSON
/// array stays within `max_bytes`.
pub fn take_batch(
    queue: &mut VecDeque<String>,
    max_entries: usize,
    max_bytes: usize,
) -> Vec<String> {
    let mut batch = Vec::new();
    let mut size = 2;
    while let Some(front) = queue.front() {
        let add = front.len() + usize::from(!batch.is_empty());
        if batch.len() == max_entries || (size + add > max_bytes && !batch.is_empty()) {
            break;
        }
        size += add;
        if let Some(e) = queue.pop_front() {
            batch.push(e);
        }
    }
    batch
}

/// The request body: the batch as a JSON array, gzipped.
pub fn gzip_payload(batch: &[String]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(b"[")?;
    for (i, e) in batch.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",")?;
        }
        gz.write_all(e.as_bytes())?;
    }
    gz.write_all(b"]")?;
    gz.finish()
}

struct Queue {
    entries: Mutex<VecDeque<String>>,
    notify: Notify,
    dropped: Counter,
    warned: AtomicBool,
}

impl Queue {
    fn len(&self) -> usize {
        self.entries.lock().map(|q| q.len()).unwrap_or(0)
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

/// The sending side: batches, gzips, posts and retries.
pub struct Shipper {
    queue: Arc<Queue>,
    url: Url,
    key: Secret,
    connector: Connector,
    linger: Duration,
    first_backoff: Duration,
}

/// A queue and its shipper for `settings`; a URL the connector cannot use is an error.
pub fn channel(settings: &DatadogSettings, dropped: Counter) -> Result<(Datadog, Shipper), String> {
    let connector = Connector::new(&settings.url, &TlsSettings::default())?;
    let queue = Arc::new(Queue {
        entries: Mutex::new(VecDeque::new()),
        notify: Notify::new(),
        dropped,
        warned: AtomicBool::new(false),
    });
    Ok((
        Datadog {
            queue: queue.clone(),
        },
        Shipper {
            queue,
            url: settings.url.clone(),
            key: settings.api_key.clone(),
            connector,
            linger: LINGER,
            first_backoff: FIRST_BACKOFF,
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

    /// Sends until `cancel` fires, then makes one last quick attempt at what is left.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            while self.queue.len() == 0 {
                tokio::select! {
                    _ = self.queue.notify.notified() => {}
                    _ = cancel.cancelled() => return,
                }
            }
            if self.queue.len() < MAX_ENTRIES {
                tokio::select! {
                    _ = tokio::time::sleep(self.linger) => {}
                    _ = cancel.cancelled() => {
                        self.last_flush().await;
                        return;
                    }
                }
            }
            let batch = self.take();
            if !batch.is_empty() {
                self.deliver(batch, &cancel).await;
            }
        }
    }

    fn take(&self) -> Vec<String> {
        match self.queue.entries.lock() {
            Ok(mut q) => take_batch(&mut q, MAX_ENTRIES, MAX_PAYLOAD),
            Err(_) => Vec::new(),
        }
    }

    async fn last_flush(&self) {
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let sent = match gzip_payload(&batch) {
            Ok(body) => {
                tokio::time::timeout(Duration::from_millis(500), self.post(Bytes::from(body)))
                    .await
                    .is_ok_and(|r| r.is_ok_and(|code| (200..300).contains(&code)))
            }
            Err(_) => false,
        };
        if !sent {
            self.queue.dropped.inc_by(n);
        }
    }

    /// Sends one batch, retrying what may pass later; gives it up after `ATTEMPTS`.
    async fn deliver(&self, batch: Vec<String>, cancel: &CancellationToken) {
        let n = batch.len();
        let body = match gzip_payload(&batch) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                warn!(
                    event = "datadog_dropped",
                    entries = n,
                    "Cannot compress a Datadog batch ({e}); dropping {n} entries"
                );
                self.queue.dropped.inc_by(n as u64);
                return;
            }
        };
        let mut backoff = self.first_backoff;
        for attempt in 1..=ATTEMPTS {
            let why = match self.post(body.clone()).await {
                Ok(code) if (200..300).contains(&code) => {
                    if attempt > 1 {
                        info!(
                            event = "datadog_delivered",
                            entries = n,
                            attempt,
                            "Datadog accepted the batch of {n} entries at attempt {attempt}"
                        );
                    }
                    return;
                }
                Ok(code) if code == 408 || code == 429 || code >= 500 => format!("HTTP {code}"),
                Ok(code) => {
                    let hint = if matches!(code, 401 | 403) {
                        ": check DD_API_KEY (not shown) and DD_SITE"
                    } else {
                        ""
                    };
                    warn!(
                        event = "datadog_rejected",
                        http_status = code,
                        entries = n,
                        "Datadog's log intake refused a batch of {n} entries with HTTP {code}{hint}; dropping it"
                    );
                    self.queue.dropped.inc_by(n as u64);
                    return;
                }
                Err(e) => e.to_string(),
            };
            if attempt == ATTEMPTS {
                break;
            }
            warn!(
                event = "datadog_retry",
                entries = n,
                attempt,
                retry_in_ms = backoff.as_millis() as u64,
                "Sending {n} entries to Datadog failed ({why}); retrying in {}",
                human(backoff)
            );
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = cancel.cancelled() => {
                    self.queue.dropped.inc_by(n as u64);
                    return;
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        warn!(
            event = "datadog_dropped",
            entries = n,
            "Datadog did not take a batch of {n} entries after {ATTEMPTS} attempts; dropping it"
        );
        self.queue.dropped.inc_by(n as u64);
    }

    /// One POST on a fresh connection; returns the HTTP status.
    async fn post(&self, body: Bytes) -> Result<u16, ProbeError> {
        let exchange = async {
            let mut sender = self.connector.connect::<Full<Bytes>>(&|_| {}).await?;
            let mut key = http::HeaderValue::from_str(self.key.expose()).map_err(|_| {
                ProbeError::new(
                    ErrorKind::Protocol,
                    "DD_API_KEY is not a valid header value",
                )
            })?;
            key.set_sensitive(true);
            let req = http::Request::post(self.connector.path_and_query(&self.url))
                .header(http::header::HOST, self.connector.host_header())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CONTENT_ENCODING, "gzip")
                .header(
                    http::header::USER_AGENT,
                    concat!("failover-handler/", env!("CARGO_PKG_VERSION")),
                )
                .header(http::header::CONNECTION, "close")
                .header("DD-API-KEY", key)
                .body(Full::new(body))
                .map_err(|e| ProbeError::new(ErrorKind::Protocol, e.to_string()))?;
            let response = sender
                .send_request(req)
                .await
                .map_err(|e| crate::adapters::net::classify_hyper(&e))?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut read = 0usize;
            while read < 64 * 1024 {
                match body.frame().await {
                    Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
            Ok(status)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ProbeError::new(
                    ErrorKind::Timeout,
                    format!("no answer within {}", human(REQUEST_TIMEOUT)),
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn batches_stop_at_the_entry_and_byte_limits() {
        let mut q: VecDeque<String> = (0..2500).map(|i| format!("{{\"n\":{i}}}")).collect();
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let b = take_batch(&mut q, MAX_ENTRIES, MAX_PAYLOAD);
            (!b.is_empty()).then_some(b.len())
        })
        .collect();
        assert_eq!(sizes, [1000, 1000, 500]);

        let big = "x".repeat(400_000);
        let mut q: VecDeque<String> = (0..30).map(|_| format!("\"{big}\"")).collect();
        let b = take_batch(&mut q, MAX_ENTRIES, MAX_PAYLOAD);
        let bytes = 2 + b.iter().map(|e| e.len() + 1).sum::<usize>() - 1;
        assert!(bytes <= MAX_PAYLOAD, "{bytes}");
        assert_eq!(b.len(), 13);
    }

    #[test]
    fn payload_is_a_gzipped_json_array() {
        let batch = vec!["{\"a\":1}".to_string(), "{\"b\":2}".to_string()];
        let gz = gzip_payload(&batch).unwrap();
        let mut text = String::new();
        GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "[{\"a\":1},{\"b\":2}]");
    }

    #[test]
    fn entries_carry_source_service_host_and_the_record() {
        let r = Record::new(
            std::time::UNIX_EPOCH,
            crate::report::journal::Level::Warn,
            "switch",
            "moved",
        )
        .with("from", "NAM");
        let e = entry(&r, "svc", "h1");
        assert_eq!(e["ddsource"], "failover-handler");
        assert_eq!(e["service"], "svc");
        assert_eq!(e["hostname"], "h1");
        assert_eq!(e["level"], "WARN");
        assert_eq!(e["from"], "NAM");
        assert_eq!(e["message"], "moved");
        assert!(e["ddtags"].as_str().unwrap().contains("event:switch"));
    }

    /// A stand-in intake answering from a script of statuses, recording entry counts.
    async fn stand_in(script: Vec<u16>) -> (Url, Arc<Mutex<Vec<(u16, usize, String)>>>) {
        use axum::body::Bytes as AxBytes;
        use axum::http::{HeaderMap, StatusCode};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/api/v2/logs",
            listener.local_addr().unwrap()
        ))
        .unwrap();
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
            api_key: Secret::new("k-123"),
            site: "datadoghq.com".into(),
            url,
        };
        let dropped = Counter::default();
        let (dd, shipper) = channel(&settings, dropped.clone()).unwrap();
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
}
