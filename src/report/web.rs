//! The HTTP endpoints of `--metrics-addr`: `/metrics` (Prometheus), `/status` (JSON live view),
//! `/history` (JSON recent decisions) and `/` (the status page). Handlers only read what the
//! daemon published on its `watch` channel and the shared metrics; they never reach into the
//! failover path. A listener that cannot be bound is a warning, retried, never a stop. The
//! server cannot starve the daemon: it holds few connections, closes idle ones, and leaves
//! descriptors for the probes and the env file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::adapters::process::fds;
use crate::report::metrics::Metrics;
use crate::report::observer::Published;

/// Time between attempts to bind a listener that could not be had.
const REBIND: Duration = Duration::from_secs(10);
/// The most connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// The time a client has to send a request's headers, from its connection or from the last
/// answer on a kept-alive one: an idle connection is closed after it.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection lasts, whatever it does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Descriptors kept free for the probes, the env file, the state files and supervisorctl:
/// the server accepts only while more than these are left under `RLIMIT_NOFILE`.
const FD_RESERVE: u64 = 128;
/// The pause before accepting again when descriptors are short or an accept failed.
const BUSY_WAIT: Duration = Duration::from_millis(100);
/// How often `metrics_busy` may be said again.
const BUSY_REPEAT: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct App {
    published: watch::Receiver<Arc<Published>>,
    metrics: Metrics,
}

impl App {
    fn current(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }
}

/// The routes, for the server and for tests.
pub fn router(published: watch::Receiver<Arc<Published>>, metrics: Metrics) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status))
        .route("/history", get(history))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: try /, /metrics, /status or /history\n",
            )
        })
        .with_state(App { published, metrics })
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn metrics_text(State(app): State<App>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, ctype) = app.metrics.encode(accept);
    no_store(([(header::CONTENT_TYPE, ctype)], body).into_response())
}

async fn status(State(app): State<App>) -> Response {
    no_store(axum::Json(app.current().snapshot.clone()).into_response())
}

/// The body of `/history`: the recent decisions, oldest first.
#[derive(serde::Serialize)]
struct History<'a> {
    format_version: u32,
    count: usize,
    decisions: &'a [crate::report::journal::Record],
}

async fn history(State(app): State<App>) -> Response {
    let p = app.current();
    let body = History {
        format_version: crate::report::journal::FORMAT_VERSION,
        count: p.history.len(),
        decisions: &p.history,
    };
    no_store(axum::Json(body).into_response())
}

async fn page(State(app): State<App>) -> Response {
    let p = app.current();
    no_store(Html(crate::report::page::render(&p.snapshot, &p.history)).into_response())
}

/// Serves until `cancel` fires. Says where it listens (`metrics_listening`, with the real port
/// when the configured one is 0).
pub async fn serve(addr: SocketAddr, app: Router, cancel: CancellationToken) {
    let mut warned = false;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                if !warned {
                    warned = true;
                    warn!(
                        event = "metrics_unavailable",
                        addr = %addr,
                        error = %e,
                        "Cannot listen on {addr} for /metrics, /status and / ({e}); the daemon runs on and tries again every {}s",
                        REBIND.as_secs()
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(REBIND) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    info!(
        event = "metrics_listening",
        addr = %local,
        "Serving /metrics, /status, /history and the status page on http://{local}/"
    );
    accept_loop(listener, app, cancel).await;
}

/// Accepts while a connection slot and [`FD_RESERVE`] spare descriptors are free; past
/// either, new connections wait in the kernel's listen queue. Each connection is served with
/// the header-read timeout, and lasts at most [`CONNECTION_LIFETIME`].
async fn accept_loop(listener: TcpListener, app: Router, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut busy = Busy::default();
    loop {
        if slots.available_permits() == 0 {
            busy.say(Crowd::Connections);
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = cancel.cancelled() => return,
        };
        let Ok(slot) = slot else { return };
        while fds::headroom().is_some_and(|left| left < FD_RESERVE) {
            busy.say(Crowd::Descriptors);
            tokio::select! {
                _ = tokio::time::sleep(BUSY_WAIT) => {}
                _ = cancel.cancelled() => return,
            }
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = cancel.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                busy.say(Crowd::Accept(e.to_string()));
                tokio::select! {
                    _ = tokio::time::sleep(BUSY_WAIT) => {}
                    _ = cancel.cancelled() => return,
                }
                continue;
            }
        };
        tokio::spawn(serve_one(stream, app.clone(), cancel.clone(), slot));
    }
}

async fn serve_one(
    stream: TcpStream,
    app: Router,
    cancel: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(BUSY_WAIT * 10, conn).await;
        }
    }
}

/// Why the server stopped accepting for a while.
enum Crowd {
    Connections,
    Descriptors,
    Accept(String),
}

/// Says `metrics_busy` at most once every [`BUSY_REPEAT`].
#[derive(Default)]
struct Busy {
    last: Option<Instant>,
}

impl Busy {
    fn say(&mut self, why: Crowd) {
        if self.last.is_some_and(|t| t.elapsed() < BUSY_REPEAT) {
            return;
        }
        self.last = Some(Instant::now());
        match why {
            Crowd::Connections => warn!(
                event = "metrics_busy",
                reason = "connections",
                limit = MAX_CONNECTIONS,
                "The status server holds {MAX_CONNECTIONS} connections, its most; more wait until one closes (each has {}s to send its request)",
                HEADER_READ_TIMEOUT.as_secs()
            ),
            Crowd::Descriptors => warn!(
                event = "metrics_busy",
                reason = "descriptors",
                reserve = FD_RESERVE,
                "Fewer than {FD_RESERVE} file descriptors are left under the process's limit (ulimit -n): the status server accepts no connection until more are free, keeping them for probes and the env file"
            ),
            Crowd::Accept(error) => warn!(
                event = "metrics_busy",
                reason = "accept",
                error = %error,
                "The status server cannot accept a connection ({error}); it tries again"
            ),
        }
    }
}
