//! `status [--json]`: the daemon's live view when it runs, else what the env file says.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;

use crate::adapters::files::StateDir;
use crate::adapters::files::pause::{self, PauseState};
use crate::commands::discover::SettingsSource;
use crate::config::Config;
use crate::config::redact::printable;
use crate::report::journal::FORMAT_VERSION;
use crate::report::status::{
    STATUS_FILE, ViewSource, live_view, pause_line, render_live, status_url,
};
use crate::report::view::{PauseView, Snapshot};

/// `status [--json]`.
pub async fn status(config: &Config, json: bool, found: &SettingsSource) -> Result<ExitCode> {
    let env_path = config.env_file.path.display().to_string();
    let now = SystemTime::now();
    let pause = match pause::read(&StateDir::read_only(&config.state_dir), now) {
        PauseState::On(p) => Some(PauseView::of(&p, now)),
        _ => None,
    };
    match live_view(config).await {
        Some((snapshot, source)) => print_live(&snapshot, &source, &env_path, json, found),
        None => print_env_file(config, &env_path, pause, json, found),
    }
    Ok(ExitCode::SUCCESS)
}

/// What the daemon (or whatever answers at its address) said.
fn print_live(
    snapshot: &Snapshot,
    source: &ViewSource,
    env_path: &str,
    json: bool,
    found: &SettingsSource,
) {
    if json {
        let v = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "region": snapshot.active.region,
            "cloud": snapshot.active.cloud,
            "env_file": env_path,
            "source": "daemon",
            "view_from": source.text(),
            "problem": null,
            "pause": snapshot.pause,
            "daemon": snapshot,
            "found": found_json(found),
        });
        println!("{v}");
        return;
    }
    print!("{}", printable(&render_live(snapshot, source, env_path)));
    if let SettingsSource::Daemon { entry, dir } = found {
        let line = format!(
            "Found:         the daemon listed in {} (pid {}, `{}`)",
            dir.display(),
            entry.pid,
            entry.command_line()
        );
        println!("{}", printable(&line));
    }
}

/// Without a live view: what the env file says, and where a daemon was looked for.
fn print_env_file(
    config: &Config,
    env_path: &str,
    pause: Option<PauseView>,
    json: bool,
    found: &SettingsSource,
) {
    let looked = looked_at(config, found);
    let (region, cloud, problem) = match config.env_file.read() {
        Ok(Some(c)) if c.region.is_some() => (c.region, c.cloud, None),
        Ok(Some(_)) => (None, None, Some(format!("{env_path} names no region"))),
        Ok(None) => (None, None, Some(format!("{env_path} does not exist"))),
        Err(e) => (None, None, Some(e.to_string())),
    };
    if json {
        let v = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "region": region,
            "cloud": cloud,
            "env_file": env_path,
            "source": "env_file",
            "problem": problem,
            "pause": pause,
            "daemon": null,
            "found": found_json(found),
            "looked_at": looked,
        });
        println!("{v}");
        return;
    }
    match (&region, &problem) {
        (Some(r), _) => {
            println!(
                "Active region: {r} (cloud {})",
                cloud.as_deref().unwrap_or("unknown")
            );
            println!("Env file:      {env_path}");
            if config.region(r).is_none() {
                println!("Warning:       {r} is not in the failover list");
            }
        }
        (None, Some(p)) => println!("No active region: {p}"),
        (None, None) => println!("No active region"),
    }
    println!(
        "Daemon:        not running (no live view); this is what the env file says\nLooked at:     {}",
        looked.join(", ")
    );
    if matches!(found, SettingsSource::Nothing { .. }) {
        println!("               (pass -c or --state-dir if the daemon runs with other settings)");
    }
    if pause.is_some() {
        println!("Switching:     {}", pause_line(pause.as_ref()));
    }
}

/// Where `status` looked for a running daemon, for people.
fn looked_at(config: &Config, found: &SettingsSource) -> Vec<String> {
    let mut places = Vec::new();
    if let SettingsSource::Nothing { dir } = found {
        places.push(format!("{} (no daemon listed)", dir.display()));
    }
    if let Some(addr) = config.metrics_addr.filter(|a| a.port() != 0) {
        places.push(status_url(addr));
    }
    places.push(config.state_dir.join(STATUS_FILE).display().to_string());
    places
}

fn found_json(found: &SettingsSource) -> serde_json::Value {
    match found {
        SettingsSource::Named => serde_json::json!({ "how": "named" }),
        SettingsSource::Daemon { entry, dir } => serde_json::json!({
            "how": "listed",
            "listing_dir": dir,
            "pid": entry.pid,
            "args": entry.args,
        }),
        SettingsSource::Nothing { dir } => {
            serde_json::json!({ "how": "nothing_listed", "listing_dir": dir })
        }
    }
}
