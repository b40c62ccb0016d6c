//! The top-level keys and `[env_file]`: who the handler is, and what it writes.

use std::path::PathBuf;

use crate::config::setting::{Doc, Example, Setting, any, no_text, show_path, show_text};
use crate::config::settings::{DEFAULT_ENV_FILE, DEFAULT_SERVICE, DEFAULT_STATE_DIR};
use crate::config::values::is_identifier;

pub static SERVICE: Setting<String> = Setting {
    doc: Doc {
        key: Some("service"),
        default: DEFAULT_SERVICE,
        help: "the `service` field of every log line",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.service.clone().map(Ok),
    default: || DEFAULT_SERVICE.to_string(),
    check: |s| {
        if s.trim().is_empty() || s.len() > 100 {
            return Err("must be 1 to 100 characters".to_string());
        }
        Ok(())
    },
    show: |c| show_text(&c.service),
};

pub static REGION: Setting<Option<String>> = Setting {
    doc: Doc {
        key: Some("region"),
        flag: Some("--region"),
        short: Some('r'),
        value: Some("NAME"),
        default: "none",
        help: "preferred region: moved to the front of the failover order (EU → EU,NAM,APAC; APAC → APAC,NAM,EU; NAM → NAM,EU,APAC). Case-insensitive.",
        example: Example::Value("\"EU\""),
        ..Doc::NONE
    },
    flag: |o| o.region.clone().map(|r| Ok(Some(r))),
    text: no_text,
    file: |f| f.region.clone().map(|r| Ok(Some(r))),
    default: || None,
    check: any,
    show: |c| c.preferred.clone().and_then(show_text),
};

/// `--config`: where the file comes from, so no key of it (clap reads the variable).
pub static CONFIG: Doc = Doc {
    flag: Some("--config"),
    short: Some('c'),
    value: Some("FILE"),
    env: Some("FAILOVER_HANDLER_CONFIG"),
    default: "none",
    help: "TOML config file",
    ..Doc::NONE
};

pub static STATE_DIR: Setting<PathBuf> = Setting {
    doc: Doc {
        key: Some("state_dir"),
        flag: Some("--state-dir"),
        value: Some("DIR"),
        default: DEFAULT_STATE_DIR,
        help: "journal, pin, pause, restart marker; created if missing (0700); if it cannot be, the daemon warns and runs without it",
        ..Doc::NONE
    },
    flag: |o| o.state_dir.clone().map(Ok),
    text: no_text,
    file: |f| f.state_dir.clone().map(Ok),
    default: || PathBuf::from(DEFAULT_STATE_DIR),
    check: any,
    show: |c| show_path(&c.state_dir),
};

pub static DRY_RUN: Setting<bool> = Setting {
    doc: Doc {
        key: Some("dry_run"),
        flag: Some("--dry-run"),
        default: "off",
        help: "decide and log, but write and restart nothing",
        ..Doc::NONE
    },
    flag: |o| o.dry_run.then_some(Ok(true)),
    text: no_text,
    file: |f| f.dry_run.map(Ok),
    default: || false,
    check: any,
    show: |c| Some(toml::Value::Boolean(c.dry_run)),
};

pub static ENV_FILE: Setting<PathBuf> = Setting {
    doc: Doc {
        key: Some("env_file.path"),
        flag: Some("--env-file"),
        value: Some("PATH"),
        default: DEFAULT_ENV_FILE,
        help: "the env file the programs source",
        ..Doc::NONE
    },
    flag: |o| o.env_file.clone().map(Ok),
    text: no_text,
    file: |f| f.env_file.as_ref()?.path.clone().map(Ok),
    default: || PathBuf::from(DEFAULT_ENV_FILE),
    check: |p| {
        if p.as_os_str().is_empty() || p.file_name().is_none() {
            return Err("must name a file".to_string());
        }
        Ok(())
    },
    show: |c| show_path(&c.env_file.path),
};

pub static CLOUD_VAR: Setting<String> = Setting {
    doc: Doc {
        key: Some("env_file.cloud_var"),
        default: "EXT_CLOUD",
        help: "the variable of the env file that holds the cloud host",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.env_file.as_ref()?.cloud_var.clone().map(Ok),
    default: || "EXT_CLOUD".to_string(),
    check: shell_name,
    show: |c| show_text(&c.env_file.cloud_var),
};

pub static REGION_VAR: Setting<String> = Setting {
    doc: Doc {
        key: Some("env_file.region_var"),
        default: "EXT_REGION",
        help: "the variable of the env file that holds the region's name",
        ..Doc::NONE
    },
    flag: |_| None,
    text: no_text,
    file: |f| f.env_file.as_ref()?.region_var.clone().map(Ok),
    default: || "EXT_REGION".to_string(),
    check: shell_name,
    show: |c| show_text(&c.env_file.region_var),
};

fn shell_name(name: &String) -> Result<(), String> {
    if !is_identifier(name) {
        return Err(format!(
            "'{name}' is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    Ok(())
}
