//! `status`, `check`, `switch`, `pause` and `resume` act on the running daemon without
//! repeating its `-c` or `--state-dir`: when the command names none of `-c` (or
//! `FAILOVER_HANDLER_CONFIG`), `--state-dir` and `--env-file`, the daemon listed in the runtime
//! directory lends its options and the variables that shaped them; the command's own flags
//! still win. A listing another user could have planted is skipped, and each one skipped is
//! said on stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::adapters::files::runtime::{self, Entry};
use crate::config::ConfigError;
use crate::config::cli::{Cli, Command, Options};

/// Where a command's settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsSource {
    /// The command named its config, state dir or env file.
    Named,
    /// The one daemon listed in `dir`.
    Daemon { entry: Entry, dir: PathBuf },
    /// No daemon is listed in `dir`: the defaults apply.
    Nothing { dir: PathBuf },
}

impl SettingsSource {
    /// One line for people on where the settings came from, when that is not obvious.
    pub fn note(&self, state_dir: &Path, env_file: &Path) -> Option<String> {
        match self {
            SettingsSource::Named => None,
            SettingsSource::Daemon { entry, .. } => {
                Some(match daemon_options(entry).ok().and_then(|o| o.config) {
                    Some(config) => format!(
                        "acting on the running daemon (pid {}, -c {})",
                        entry.pid,
                        config.display()
                    ),
                    None => format!(
                        "acting on the running daemon (pid {}, --state-dir {})",
                        entry.pid,
                        state_dir.display()
                    ),
                })
            }
            SettingsSource::Nothing { dir } => Some(format!(
                "no running daemon is listed in {}: using state dir {} and env file {} (pass -c or --state-dir to choose)",
                dir.display(),
                state_dir.display(),
                env_file.display()
            )),
        }
    }
}

/// The options (and variables) a command runs with: its own, or its own over the running
/// daemon's.
pub struct Resolved {
    pub options: Options,
    pub found: SettingsSource,
    env: BTreeMap<String, Option<String>>,
}

impl Resolved {
    /// A variable as the settings see it: the daemon's recorded value, else this process's.
    pub fn var(&self, name: &str, process: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        match self.env.get(name) {
            Some(recorded) => recorded.clone(),
            None => process(name),
        }
    }
}

/// Resolves the options of `options` for a command that acts on a daemon.
pub fn resolve(
    options: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ConfigError> {
    let named = |found| Resolved {
        options: options.clone(),
        found,
        env: BTreeMap::new(),
    };
    if options.config.is_some() || options.state_dir.is_some() || options.env_file.is_some() {
        return Ok(named(SettingsSource::Named));
    }
    let dir = runtime::dir(env);
    let scan = runtime::running(&dir);
    for line in &scan.skipped {
        eprintln!("failover-handler: {line}");
    }
    let mut daemons = scan.daemons;
    if daemons.len() > 1 {
        let list: Vec<String> = daemons
            .iter()
            .map(|d| format!("pid {} `{}`", d.pid, d.command_line()))
            .collect();
        return Err(ConfigError::new(
            "--config",
            format!(
                "{} daemons are listed in {} ({}): pass -c or --state-dir to choose one",
                daemons.len(),
                dir.display(),
                list.join("; ")
            ),
        ));
    }
    let Some(entry) = daemons.pop() else {
        return Ok(named(SettingsSource::Nothing { dir }));
    };
    let base = daemon_options(&entry).map_err(|e| {
        ConfigError::new(
            "--config",
            format!(
                "the running daemon listed in {} (pid {}) cannot be read: {e}; pass -c or --state-dir",
                dir.display(),
                entry.pid
            ),
        )
    })?;
    Ok(Resolved {
        options: options.over(base),
        env: entry.env.clone(),
        found: SettingsSource::Daemon { entry, dir },
    })
}

/// The daemon's options from its arguments, its config file from its environment when no
/// `-c` names one, and its relative paths made whole against its working directory.
fn daemon_options(entry: &Entry) -> Result<Options, String> {
    let argv = std::iter::once("failover-handler".to_string()).chain(entry.args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| e.kind().to_string())?;
    if !matches!(cli.command, None | Some(Command::Run)) {
        return Err("it is not a daemon's command line".to_string());
    }
    let mut o = cli.options;
    if o.config.is_none() {
        o.config = entry
            .env
            .get("FAILOVER_HANDLER_CONFIG")
            .cloned()
            .flatten()
            .map(PathBuf::from);
    }
    let whole = |p: Option<PathBuf>| p.map(|p| entry.cwd.join(p));
    o.config = whole(o.config);
    o.env_file = whole(o.env_file);
    o.ca_cert = whole(o.ca_cert);
    o.state_dir = Some(entry.state_dir.clone());
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(args: &[&str], env: &[(&str, &str)]) -> Entry {
        Entry {
            pid: 1,
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: PathBuf::from("/srv/app"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
            state_dir: PathBuf::from("/srv/app/state"),
            env_file: PathBuf::from("/srv/app/ext_cloud.env"),
        }
    }

    #[test]
    fn the_daemons_options_are_whole_and_its_config_may_come_from_its_environment() {
        let e = entry(
            &[
                "run",
                "-c",
                "fh.toml",
                "--env-file=x.env",
                "--programs",
                "a,b",
            ],
            &[],
        );
        let o = daemon_options(&e).unwrap();
        assert_eq!(o.config, Some(PathBuf::from("/srv/app/fh.toml")));
        assert_eq!(o.env_file, Some(PathBuf::from("/srv/app/x.env")));
        assert_eq!(o.state_dir, Some(PathBuf::from("/srv/app/state")));
        assert_eq!(o.programs, Some(vec!["a".to_string(), "b".to_string()]));

        let e = entry(&[], &[("FAILOVER_HANDLER_CONFIG", "/etc/fh.toml")]);
        let o = daemon_options(&e).unwrap();
        assert_eq!(o.config, Some(PathBuf::from("/etc/fh.toml")));

        assert!(daemon_options(&entry(&["status"], &[])).is_err());
    }

    #[test]
    fn the_commands_own_flags_win_but_not_its_dry_run_from_the_daemon() {
        let e = entry(&["--dry-run", "--programs", "a", "--no-restart"], &[]);
        let base = daemon_options(&e).unwrap();
        let mine = Options {
            programs: Some(vec!["b".to_string()]),
            ..Options::default()
        };
        let o = mine.over(base);
        assert_eq!(o.programs, Some(vec!["b".to_string()]));
        assert!(o.no_restart);
        assert!(!o.dry_run);
    }

    #[test]
    fn a_named_config_state_dir_or_env_file_looks_for_no_daemon() {
        let none = |_: &str| None;
        for o in [
            Options {
                config: Some("c.toml".into()),
                ..Options::default()
            },
            Options {
                state_dir: Some("s".into()),
                ..Options::default()
            },
            Options {
                env_file: Some("e.env".into()),
                ..Options::default()
            },
        ] {
            assert_eq!(resolve(&o, &none).unwrap().found, SettingsSource::Named);
        }
    }
}
