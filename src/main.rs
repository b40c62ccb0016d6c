//! The binary: parse, set up logging, dispatch, map errors to exit codes.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use failover_handler::adapters::checks::Checks;
use failover_handler::adapters::throughput::Throughput;
use failover_handler::commands::discover::{self, Found};
use failover_handler::commands::ship;
use failover_handler::config::cli::{Cli, Command, LogFormat, Shell};
use failover_handler::config::{Config, ConfigError, process_env, redact};
use failover_handler::{commands, report::logging};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    let options = cli.options.clone();
    let daemon = matches!(cli.command, None | Some(Command::Run));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.downcast_ref::<ConfigError>().is_some();
            // The chain may hold what a peer said (supervisord's fault, supervisorctl's output).
            let message = redact::printable(&format!("{e:#}").replace('\n', " "));
            eprintln!("failover-handler: error: {message}");
            if let Some(line) = commands::startup::error_line(&options, daemon, &e, &message) {
                println!("{line}");
            }
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
    let message = line.trim_start_matches("error: ");
    eprintln!("failover-handler: error: {message}");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(json) = commands::startup::usage_line(&args, message) {
        println!("{json}");
    }
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
            .block_on(failover_handler::commands::demo::run());
    }
    if !daemon {
        restore_sigpipe();
    }
    // Made from the command line's own definitions: no option, variable or file applies.
    let shipped = match command {
        Command::Man => Some(ship::man_page(Cli::command())?),
        Command::Completions { shell } => Some(ship::completions(
            match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            },
            Cli::command(),
        )),
        _ => None,
    };
    if let Some(bytes) = shipped {
        std::io::Write::write_all(&mut std::io::stdout(), &bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Commands that act on a daemon find the running one when they name no config of their own.
    let acts_on_daemon = matches!(
        command,
        Command::Status { .. }
            | Command::Check
            | Command::Switch { .. }
            | Command::Pause { .. }
            | Command::Resume { .. }
    );
    let (config, found) = if acts_on_daemon {
        let resolved = discover::resolve(&cli.options, &process_env)?;
        let config = Config::build(&resolved.options, &|name| resolved.var(name, &process_env))?;
        (config, resolved.found)
    } else {
        (Config::build(&cli.options, &process_env)?, Found::Named)
    };
    // `status` shows where it looked in its own output; the others say it on stderr.
    if !matches!(command, Command::Status { .. })
        && let Some(note) = found.note(&config.state_dir, &config.env_file.path)
    {
        eprintln!("failover-handler: {note}");
    }
    if writes_state_dir(&command) {
        failover_handler::adapters::state::refuse_untrusted(&config.state_dir)?;
    }
    let format = if daemon || config.log_format_explicit {
        config.log_format
    } else {
        LogFormat::Text
    };
    // One thread runs everything, the tick's small reads (env file, pause file) included; file
    // writes go to a small pool whose threads end soon after their work, so a daemon between
    // probes keeps no idle thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_millis(100))
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Run => {
                let probe = commands::main_probe(&config)?;
                let checks = Checks::from_config(&config)?;
                let throughput = Throughput::from_config(&config)?;
                logging::init(&config.service, format, false);
                let options = cli.options.clone();
                let reload: failover_handler::daemon::Reload =
                    Box::new(move || Config::build(&options, &process_env));
                failover_handler::daemon::run(config, reload, probe, checks, throughput).await
            }
            Command::Switch {
                region: Some(r),
                fleet: true,
                ..
            } => commands::switch_fleet(&config, &r).await,
            Command::Switch { region, unpin, .. } => {
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
            Command::Status { json, fleet: true } => commands::status_fleet(&config, json).await,
            Command::Status { json, .. } => commands::status(&config, json, &found).await,
            Command::Check => commands::check(&config).await,
            Command::Config => commands::print_config(&config),
            Command::Pause { fleet: true, .. } => commands::pause_fleet(&config, true).await,
            Command::Resume { fleet: true } => commands::pause_fleet(&config, false).await,
            Command::Pause { duration, .. } => {
                logging::init(&config.service, format, true);
                commands::pause(&config, duration)
            }
            Command::Resume { .. } => {
                logging::init(&config.service, format, true);
                commands::resume(&config)
            }
            Command::Replay {
                journal,
                json,
                strict,
                rules,
            } => commands::replay::run(&config.with_rule_flags(&rules)?, &journal, json, strict),
            Command::Demo => failover_handler::commands::demo::run().await,
            Command::Man | Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    })
}

/// The daemon and the commands that write in the state dir (not the fleet's, which write in
/// the store).
fn writes_state_dir(command: &Command) -> bool {
    matches!(
        command,
        Command::Run
            | Command::Switch { fleet: false, .. }
            | Command::Pause { fleet: false, .. }
            | Command::Resume { fleet: false }
    )
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
