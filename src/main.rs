//! The binary: parse, set up logging, dispatch, map errors to exit codes.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use failover_handler::checks::Checks;
use failover_handler::cli::{Cli, Command, LogFormat};
use failover_handler::config::{Config, ConfigError, process_env};
use failover_handler::daemon::Daemon;
use failover_handler::restart_path::Restarter;
use failover_handler::state::StateDir;
use failover_handler::throughput::Throughput;
use failover_handler::{commands, logging, services};

/// How long a stopping daemon waits for its journal, status file and Datadog to finish (the
/// whole stop stays within a second of SIGTERM).
const SERVICES_STOP: std::time::Duration = std::time::Duration::from_millis(700);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.downcast_ref::<ConfigError>().is_some();
            eprintln!(
                "failover-handler: error: {}",
                format!("{e:#}").replace('\n', " ")
            );
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Help and version print as clap makes them; a usage error is one line and exit 2.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect();
    let line = line.join(" ");
    eprintln!(
        "failover-handler: error: {}",
        line.trim_start_matches("error: ")
    );
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let command = cli.command.clone().unwrap_or(Command::Run);
    let daemon = matches!(command, Command::Run);
    if matches!(command, Command::Demo) {
        // Self-contained: none of the user's options, environment or config file apply. It
        // keeps SIGPIPE ignored and ends early on a closed stdout, removing its temp dir.
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(failover_handler::demo::run());
    }
    if !daemon {
        restore_sigpipe();
    }
    let config = Config::build(&cli.options, &process_env)?;
    let format = if daemon || config.log_format_explicit {
        config.log_format
    } else {
        LogFormat::Text
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Run => {
                let probe = commands::main_probe(&config)?;
                let checks = Checks::from_config(&config)?;
                let throughput = Throughput::from_config(&config)?;
                logging::init(&config.service, format, false);
                run_daemon(config, probe, checks, throughput).await
            }
            Command::Switch { region, unpin } => {
                logging::init(&config.service, format, true);
                match (region, unpin) {
                    (Some(r), false) => commands::switch(&config, &r).await,
                    (None, true) => commands::unpin(&config),
                    (Some(_), true) => {
                        Err(ConfigError::new("switch", "give a region or --unpin, not both").into())
                    }
                    (None, false) => Err(ConfigError::new("switch", "name a region").into()),
                }
            }
            Command::Status { json } => commands::status(&config, json).await,
            Command::Check => commands::check(&config).await,
            Command::Config => commands::print_config(&config),
            Command::Pause { duration } => {
                logging::init(&config.service, format, true);
                commands::pause(&config, duration)
            }
            Command::Resume => {
                logging::init(&config.service, format, true);
                commands::resume(&config)
            }
            Command::Demo => failover_handler::demo::run().await,
        }
    })
}

async fn run_daemon(
    config: Config,
    probe: failover_handler::probe::HttpProbe,
    checks: Option<Checks>,
    throughput: Option<Throughput>,
) -> Result<ExitCode> {
    let config = Arc::new(config);
    let state = StateDir::open(&config.state_dir);
    let (observer, services) = services::start(&config, &state).await;
    let restarter = Restarter::new(config.restart.clone(), None)
        .count_failures(observer.metrics().restart_failures.clone());
    let cancel = CancellationToken::new();
    let signals = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    let checks = checks.map(|c| c.spawn(cancel.clone()));
    Daemon::new(config, probe, restarter, state)
        .with_checks(checks, throughput)
        .with_observer(observer)
        .run(cancel)
        .await;
    let _ = tokio::task::spawn_blocking(move || services.stop(SERVICES_STOP)).await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// One-shot commands end quietly when their reader goes away (`status | head`), as Unix
/// tools do, instead of failing on a broken pipe. The daemon keeps ignoring SIGPIPE so that a
/// closed log pipe never kills it.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to its default at start-up, before any thread
    // that could depend on it exists, has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
