//! The daemon wired to the world: its probe, standby checks and throughput meter, the
//! reporting services beside it (journal, endpoints, Datadog), supervisorctl, and the
//! signals: SIGTERM, SIGINT and SIGQUIT stop it, SIGHUP reloads the configuration, SIGUSR1
//! and SIGUSR2 are ignored.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::adapters::files::StateDir;
use crate::adapters::files::runtime;
use crate::adapters::http::Checks;
use crate::adapters::http::Throughput;
use crate::adapters::process::code_pages;
use crate::adapters::supervisor::Restarter;
use crate::config::Config;
use crate::daemon::fleet::Fleet;
use crate::daemon::{Daemon, Reload, main_probe};
use crate::report::event::{Event, Notice};
use crate::report::{logging, services, told};

/// How long a stopping daemon waits for its journal, status file and Datadog to finish (the
/// whole stop stays within a second of SIGTERM).
const SERVICES_STOP: std::time::Duration = std::time::Duration::from_millis(700);

/// Runs the daemon until `shutdown` resolves (in the binary, [`stop_signal`]), then stops
/// its services; `reload` builds the configuration again at each SIGHUP. Builds what it runs
/// with: the probe, the standby checks and the throughput meter (a fault there is the
/// configuration's, said before logging starts), the fleet's membership, the state
/// directory, the services and supervisorctl.
pub async fn run(
    config: Config,
    reload: Reload,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ExitCode> {
    let probe = main_probe(&config)?;
    let checks = Checks::from_config(&config)?;
    let throughput = Throughput::from_config(&config)?;
    logging::init(&config.service, config.log_format, false);
    let config = Arc::new(config);
    // A second handler with this host's name in the fleet is refused before anything starts.
    let mut fleet = (config.fleet.as_ref())
        .map(|f| Fleet::new(f, &config))
        .transpose()?;
    if let Some(fleet) = fleet.as_mut() {
        fleet.join().await?;
    }
    let state = StateDir::open(&config.state_dir);
    told::state_dir(&state, &config.state_dir);
    let mut held = state.lock_for_daemon()?;
    told::state_write(held.failed.take());
    let _listing = list_this_daemon(&config);
    let (observer, services) = services::start(&config, &state).await;
    let restarter = Restarter::new(config.restart.clone(), None)
        .count_failures(observer.metrics().restart_failures.clone())
        .telling(told::restart_steps());
    let cancel = CancellationToken::new();
    let (hup_tx, hup) = tokio::sync::mpsc::channel(1);
    let stop = cancel.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    tokio::spawn(follow_signals(hup_tx));
    let checks = checks.map(|c| c.spawn(cancel.clone()));
    Daemon::new(config, probe, restarter, state)
        .with_checks(checks, throughput)
        .with_observer(observer)
        .with_fleet(fleet)
        .with_reload(reload, hup)
        // The code run only to start is handed back once the first probe is made. Only the
        // RSS is at stake: where madvise is refused, the pages simply stay mapped.
        .after_first_probe(|| {
            let _ = code_pages::release();
        })
        .run(cancel)
        .await;
    let _ = tokio::task::spawn_blocking(move || services.stop(SERVICES_STOP)).await;
    Ok(ExitCode::SUCCESS)
}

/// Lists this daemon in the runtime directory, so that `status`, `switch`, `pause` and
/// `resume` find it without its `-c`; unlisted, it warns and runs on.
fn list_this_daemon(config: &Config) -> Option<runtime::Listing> {
    let dir = runtime::dir(&crate::config::process_env);
    let entry = runtime::Entry::of_this_process(&config.state_dir, &config.env_file.path);
    match runtime::list(&dir, &entry) {
        Ok(listing) => Some(listing),
        Err(e) => {
            logging::event(&Event::Notice(Notice::DaemonUnlisted {
                path: dir.display().to_string(),
                error: e.to_string(),
            }));
            None
        }
    }
}

/// Waits for a signal, or forever when it cannot be listened for.
async fn next(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Returns at SIGTERM, SIGINT or SIGQUIT: the daemon's shutdown.
pub async fn stop_signal() {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut quit = signal(SignalKind::quit()).ok();
    tokio::select! {
        _ = next(&mut term) => {}
        _ = next(&mut quit) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Passes each SIGHUP on to `hup` and swallows SIGUSR1 and SIGUSR2 (whose default would end
/// the process without a word).
async fn follow_signals(hup: tokio::sync::mpsc::Sender<()>) {
    let mut reload = signal(SignalKind::hangup()).ok();
    let mut usr1 = signal(SignalKind::user_defined1()).ok();
    let mut usr2 = signal(SignalKind::user_defined2()).ok();
    loop {
        tokio::select! {
            _ = next(&mut reload) => {
                let _ = hup.try_send(());
            }
            _ = next(&mut usr1) => logging::event(&Event::Notice(Notice::SignalIgnored { signal: "SIGUSR1" })),
            _ = next(&mut usr2) => logging::event(&Event::Notice(Notice::SignalIgnored { signal: "SIGUSR2" })),
        }
    }
}
