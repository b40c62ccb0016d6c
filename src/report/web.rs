//! The HTTP endpoints of `--metrics-addr`: `/metrics` (Prometheus), `/status` (JSON live view),
//! `/history` (JSON recent decisions) and `/` (the status page). Handlers only read what the
//! daemon published on its `watch` channel and the shared metrics; they never reach into the
//! failover path. A listener that cannot be bound is a warning, retried, never a stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::report::metrics::Metrics;
use crate::report::observer::Published;

/// Time between attempts to bind a listener that could not be had.
const REBIND: Duration = Duration::from_secs(10);

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
        match tokio::net::TcpListener::bind(addr).await {
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
    let shutdown = cancel.clone();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        warn!(event = "metrics_stopped", error = %e, "The metrics listener stopped: {e}");
    }
}
