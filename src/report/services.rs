//! The reporting services beside the daemon, each off the failover path: the journal writer
//! (a thread of its own), and on a second thread with its own small runtime the HTTP endpoints,
//! the Datadog shipper and the status file. The daemon only talks to them through its
//! [`Observer`]; whatever they do (a slow disk, a hung scraper, an unreachable intake) cannot
//! delay a probe or a switch.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::adapters::state::StateDir;
use crate::config::Config;
use crate::report::datadog;
use crate::report::journal::{self, Journal};
use crate::report::observer::{HISTORY, Observer};
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

/// Starts what the configuration asks for and returns the daemon's observer wired to it.
pub async fn start(config: &Config, state: &StateDir) -> (Observer, Services) {
    let (done_tx, done) = mpsc::channel();
    let mut threads = 0;
    let mut obs = Observer::new(config);

    if let Some(dir) = state.path().map(|p| p.to_path_buf()) {
        let d = dir.clone();
        let history = tokio::task::spawn_blocking(move || journal::tail(&d, HISTORY))
            .await
            .unwrap_or_default();
        obs = obs.with_history(history);
        let dropped = obs.metrics().journal_dropped.clone();
        // The writer thread itself says when it ends: no thread of ours waits on it.
        match Journal::start(&dir, journal::MAX_BYTES, dropped, Done(done_tx.clone())) {
            Ok((j, _)) => {
                obs = obs.with_journal(j);
                threads += 1;
            }
            Err(e) => {
                warn!(event = "journal_unavailable", error = %e, "Cannot start the journal writer ({e}); decisions are logged but not journaled");
            }
        }
    }

    let shipper = match &config.datadog {
        None => None,
        Some(dd) => match datadog::channel(
            dd,
            state.path().map(|_| state.clone()),
            obs.metrics().datadog_dropped.clone(),
            obs.metrics().datadog_spooled.clone(),
        ) {
            Ok((handle, shipper)) => {
                obs = obs.with_datadog(handle);
                Some(shipper)
            }
            Err(e) => {
                warn!(
                    event = "datadog_unavailable",
                    "Cannot send to Datadog's log intake ({e}); decisions are logged and journaled only"
                );
                None
            }
        },
    };
    let web = config
        .metrics_addr
        .map(|addr| (addr, web::router(obs.subscribe(), obs.metrics().clone())));
    let status_file = state
        .path()
        .is_some()
        .then(|| (state.clone(), obs.subscribe()));

    let cancel = CancellationToken::new();
    if shipper.is_some() || web.is_some() || status_file.is_some() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(2)
            .thread_keep_alive(Duration::from_millis(100))
            .build();
        match runtime {
            Ok(runtime) => {
                let c = cancel.clone();
                let tx = done_tx.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("reporting".into())
                        .spawn(move || {
                            let _done = Done(tx);
                            runtime.block_on(async move {
                                let mut tasks = tokio::task::JoinSet::new();
                                if let Some((addr, app)) = web {
                                    tasks.spawn(web::serve(addr, app, c.clone()));
                                }
                                if let Some(s) = shipper {
                                    tasks.spawn(s.run(c.clone()));
                                }
                                if let Some((state, rx)) = status_file {
                                    tasks.spawn(status::keep_file(state, rx, c.clone()));
                                }
                                while tasks.join_next().await.is_some() {}
                            });
                        });
                match spawned {
                    Ok(_) => threads += 1,
                    Err(e) => {
                        warn!(event = "reporting_unavailable", error = %e, "Cannot start the reporting thread ({e}): no endpoints, status file or Datadog")
                    }
                }
            }
            Err(e) => {
                warn!(event = "reporting_unavailable", error = %e, "Cannot start the reporting runtime ({e}): no endpoints, status file or Datadog");
            }
        }
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
