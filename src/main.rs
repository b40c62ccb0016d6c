//! The binary: parse, set up logging, dispatch, map errors to exit codes.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use failover_handler::commands::discover::{self, SettingsSource};
use failover_handler::commands::ship;
use failover_handler::config::cli::{Cli, Command, LogFormat, Shell};
use failover_handler::config::{Config, ConfigError, process_env, redact};
use failover_handler::{commands, daemon, report::logging};

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

/// One arm per command: the self-contained ones (`demo`, `man`, `completions`) as they are,
/// every other on its validated configuration.
fn run(cli: Cli) -> Result<ExitCode> {
    let command = cli.command.clone().unwrap_or(Command::Run);
    if !matches!(command, Command::Run | Command::Demo) {
        restore_sigpipe();
    }
    let (cli, command) = (&cli, &command);
    match command {
        // Self-contained: none of the user's options, environment or config file apply. It
        // keeps SIGPIPE ignored and ends early on a closed stdout, removing its temp dir.
        Command::Demo => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(commands::demo::run()),
        // Made from the command line's own definitions: no option, variable or file applies.
        Command::Man => ship(&ship::man_page(Cli::command())?),
        Command::Completions { shell } => {
            ship(&ship::completions(clap_shell(*shell), Cli::command()))
        }
        Command::Run => with_config(cli, command, async |s| {
            daemon::run(s.config, reload(cli), daemon::stop_signal()).await
        }),
        Command::Switch {
            region: Some(r),
            fleet: true,
            ..
        } => with_config(cli, command, async |s| {
            commands::switch_fleet(&s.config, r).await
        }),
        Command::Switch { region, unpin, .. } => with_config(cli, command, async |s| {
            s.log();
            match (region, unpin) {
                (Some(r), false) => commands::switch(&s.config, r).await,
                (None, true) => commands::unpin(&s.config),
                (Some(_), true) => {
                    Err(ConfigError::new("switch", "give a region or --unpin, not both").into())
                }
                (None, false) => Err(ConfigError::new("switch", "name a region").into()),
            }
        }),
        Command::Status { json, fleet: true } => with_config(cli, command, async |s| {
            commands::status_fleet(&s.config, *json).await
        }),
        Command::Status { json, .. } => with_config(cli, command, async |s| {
            commands::status(&s.config, *json, &s.found).await
        }),
        Command::Check => with_config(cli, command, async |s| commands::check(&s.config).await),
        Command::Config => with_config(cli, command, async |s| commands::print_config(&s.config)),
        Command::Pause { fleet: true, .. } => with_config(cli, command, async |s| {
            commands::pause_fleet(&s.config, true).await
        }),
        Command::Resume { fleet: true } => with_config(cli, command, async |s| {
            commands::pause_fleet(&s.config, false).await
        }),
        Command::Pause { duration, .. } => with_config(cli, command, async |s| {
            s.log();
            commands::pause(&s.config, *duration)
        }),
        Command::Resume { .. } => with_config(cli, command, async |s| {
            s.log();
            commands::resume(&s.config)
        }),
        Command::Replay {
            journal,
            json,
            strict,
            rules,
        } => with_config(cli, command, async |s| {
            commands::replay::run(&s.config.with_rule_flags(rules)?, journal, *json, *strict)
        }),
    }
}

fn clap_shell(shell: Shell) -> clap_complete::Shell {
    match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    }
}

/// What a command that reads the configuration runs with.
struct Setup {
    config: Config,
    /// Where the configuration was found, for `status` to show.
    found: SettingsSource,
    format: LogFormat,
}

impl Setup {
    /// Logs a command's own events to stderr.
    fn log(&self) {
        logging::init(&self.config.service, self.format, true);
    }
}

/// Builds the configuration `command` runs on, and runs `f` with it on one thread.
fn with_config(
    cli: &Cli,
    command: &Command,
    f: impl AsyncFnOnce(Setup) -> Result<ExitCode>,
) -> Result<ExitCode> {
    let daemon = matches!(command, Command::Run);
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
        (
            Config::build(&cli.options, &process_env)?,
            SettingsSource::Named,
        )
    };
    // `status` shows where it looked in its own output; the others say it on stderr.
    if !matches!(command, Command::Status { .. })
        && let Some(note) = found.note(&config.state_dir, &config.env_file.path)
    {
        eprintln!("failover-handler: {note}");
    }
    if writes_state_dir(command) {
        failover_handler::adapters::files::state::refuse_untrusted(&config.state_dir)?;
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
    runtime.block_on(f(Setup {
        config,
        found,
        format,
    }))
}

/// How the daemon builds its configuration again at SIGHUP: from the same command line.
fn reload(cli: &Cli) -> daemon::Reload {
    let options = cli.options.clone();
    Box::new(move || Config::build(&options, &process_env))
}

/// Writes what `man` or `completions` made to stdout.
fn ship(bytes: &[u8]) -> Result<ExitCode> {
    std::io::Write::write_all(&mut std::io::stdout(), bytes)?;
    Ok(ExitCode::SUCCESS)
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
