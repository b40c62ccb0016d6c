//! `pause [--for DUR]` and `resume`: automatic switching stopped and started through the
//! state directory; a running daemon obeys at its next probe.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::report::event::{Command, Event};
use crate::report::logging;
use anyhow::Result;

use crate::config::{Config, ConfigError};

/// `pause [--for DUR]`: stops automatic switching, for good or for `DUR`.
pub fn pause(config: &Config, duration: Option<Duration>) -> Result<ExitCode> {
    if duration.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::new("--for", "must be greater than zero").into());
    }
    let now = SystemTime::now();
    let p = crate::adapters::files::pause::pause(&config.state_dir, now, duration)?;
    let path = config
        .state_dir
        .join(crate::adapters::files::pause::PAUSE_FILE);
    logging::event(&Event::Command(Command::PauseRequested {
        until: p.until,
        describe: p.describe(now),
    }));
    println!(
        "Automatic switching paused {}.\nPause file: {}\nA running daemon obeys at its next probe: it keeps probing and reporting but makes no automatic switch. `failover-handler resume` ends the pause.",
        p.describe(now),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `resume`: restarts automatic switching.
pub fn resume(config: &Config) -> Result<ExitCode> {
    let now = SystemTime::now();
    match crate::adapters::files::pause::resume(&config.state_dir, now)? {
        Some(p) => {
            logging::event(&Event::Command(Command::ResumeRequested {}));
            println!(
                "Automatic switching resumed (the pause was {}).\nA running daemon obeys at its next probe.",
                p.describe(now)
            );
        }
        None => println!("Automatic switching was not paused: nothing to do."),
    }
    Ok(ExitCode::SUCCESS)
}
