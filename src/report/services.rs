//! The reporting services beside the daemon, each off the failover path: the journal writer
//! (a thread of its own), and on a second thread with its own small runtime the HTTP endpoints,
//! the Datadog shipper and the status file. The daemon only talks to them through its
//! [`Observer`]; whatever they do (a slow disk, a hung scraper, an unreachable intake) cannot
//! delay a probe or a switch.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::adapters::files::StateDir;
use crate::config::Config;
use crate::report::datadog;
use crate::report::journal::{self, Journal};
use crate::report::observer::{HISTORY, Observer, Published};
use crate::{report::status, report::web};

/// The running services; [`Services::stop`] ends them.
pub struct Services {
    cancel: CancellationToken,
    done: mpsc::Receiver<()>,
    threads: usize,
}

/// Sends on `done` when the thread it lives in ends, however it ends.
struct Done(mpsc::Sender<()>);

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// What runs on the reporting thread: the endpoints, the Datadog shipper, the status file.
struct Reporting {
    web: Option<(std::net::SocketAddr, axum::Router)>,
    shipper: Option<datadog::Shipper>,
    status_file: Option<(StateDir, watch::Receiver<Arc<Published>>)>,
}

/// Starts what the configuration asks for and returns the daemon's observer wired to it.
pub async fn start(config: &Config, state: &StateDir) -> (Observer, Services) {
    let (done_tx, done) = mpsc::channel();
    let mut threads = 0;
    let mut obs = Observer::new(config);
    if let Some(dir) = state.path().map(|p| p.to_path_buf()) {
        let journaled;
        (obs, journaled) = with_journal(obs, dir, &done_tx).await;
        threads += usize::from(journaled);
    }
    let shipper;
    (obs, shipper) = with_datadog(obs, config, state);
    let reporting = Reporting {
        web: (config.metrics_addr)
            .map(|addr| (addr, web::router(obs.subscribe(), obs.metrics().clone()))),
        shipper,
        status_file: (state.path().is_some()).then(|| (state.clone(), obs.subscribe())),
    };
    let cancel = CancellationToken::new();
    if reporting.wanted() && reporting.spawn(cancel.clone(), done_tx) {
        threads += 1;
    }
    (
        obs,
        Services {
            cancel,
            done,
            threads,
        },
    )
}

/// The observer with the journal's recent history and its writer (a thread of its own, which
/// says on `done` when it ends); true when the writer started.
async fn with_journal(
    obs: Observer,
    dir: std::path::PathBuf,
    done: &mpsc::Sender<()>,
) -> (Observer, bool) {
    let d = dir.clone();
    let history = tokio::task::spawn_blocking(move || journal::tail(&d, HISTORY))
        .await
        .unwrap_or_default();
    let obs = obs.with_history(history);
    let dropped = obs.metrics().journal_dropped.clone();
    match Journal::start(&dir, journal::MAX_BYTES, dropped, Done(done.clone())) {
        Ok((j, _)) => (obs.with_journal(j), true),
        Err(e) => {
            warn!(event = "journal_unavailable", error = %e, "Cannot start the journal writer ({e}); decisions are logged but not journaled");
            (obs, false)
        }
    }
}

/// The observer feeding Datadog's log intake, when configured, and the shipper that sends.
fn with_datadog(
    obs: Observer,
    config: &Config,
    state: &StateDir,
) -> (Observer, Option<datadog::Shipper>) {
    let Some(dd) = &config.datadog else {
        return (obs, None);
    };
    match datadog::channel(
        dd,
        state.path().map(|_| state.clone()),
        obs.metrics().datadog_dropped.clone(),
        obs.metrics().datadog_spooled.clone(),
    ) {
        Ok((handle, shipper)) => (obs.with_datadog(handle), Some(shipper)),
        Err(e) => {
            warn!(
                event = "datadog_unavailable",
                "Cannot send to Datadog's log intake ({e}); decisions are logged and journaled only"
            );
            (obs, None)
        }
    }
}

impl Reporting {
    fn wanted(&self) -> bool {
        self.shipper.is_some() || self.web.is_some() || self.status_file.is_some()
    }

    /// Starts the reporting thread with its own small runtime; true when it started.
    fn spawn(self, cancel: CancellationToken, done: mpsc::Sender<()>) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(2)
            .thread_keep_alive(Duration::from_millis(100))
            .build();
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(e) => {
                warn!(event = "reporting_unavailable", error = %e, "Cannot start the reporting runtime ({e}): no endpoints, status file or Datadog");
                return false;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("reporting".into())
            .spawn(move || {
                let _done = Done(done);
                runtime.block_on(self.run(cancel));
            });
        if let Err(e) = &spawned {
            warn!(event = "reporting_unavailable", error = %e, "Cannot start the reporting thread ({e}): no endpoints, status file or Datadog");
        }
        spawned.is_ok()
    }

    async fn run(self, c: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some((addr, app)) = self.web {
            tasks.spawn(web::serve(addr, app, c.clone()));
        }
        if let Some(s) = self.shipper {
            tasks.spawn(s.run(c.clone()));
        }
        if let Some((state, rx)) = self.status_file {
            tasks.spawn(status::keep_file(state, rx, c.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }
}

impl Services {
    /// Ends the services once the daemon (and with it the observer) is gone: a last quick
    /// Datadog flush, the status file removed, the journal written out. Waits at most `limit`.
    pub fn stop(self, limit: Duration) {
        self.cancel.cancel();
        let deadline = Instant::now() + limit;
        for _ in 0..self.threads {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                break;
            }
        }
    }
}
