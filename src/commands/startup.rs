//! A start-up failure as the daemon's log carries it. Under supervisord the daemon's stdout is
//! its log: with JSON logs (the daemon's default), an error before the loop runs (bad input,
//! exit 2; a probe that cannot be built) is also one JSON line there, while stderr keeps its
//! one human line.

use crate::config::cli::{LogFormat, Options};
use crate::config::file::FileConfig;
use crate::config::{ConfigError, DEFAULT_SERVICE};
use crate::report::logging::json_line;

/// The subcommands other than `run`: their logs are not the daemon's.
const ONE_SHOT: [&str; 11] = [
    "switch",
    "status",
    "check",
    "config",
    "demo",
    "pause",
    "resume",
    "replay",
    "completions",
    "man",
    "help",
];

/// The JSON line for an error that stopped the daemon before it ran, or `None` when the
/// command is not the daemon or its logs are text. `message` is the human line's text.
pub fn error_line(
    options: &Options,
    daemon: bool,
    error: &anyhow::Error,
    message: &str,
) -> Option<String> {
    if !daemon {
        return None;
    }
    let file = options
        .config
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
        .and_then(|p| FileConfig::load(p, "--config").ok());
    let format = options
        .log_format
        .or_else(|| file.as_ref().and_then(|f| f.log.as_ref()?.format))
        .unwrap_or(LogFormat::Json);
    if format != LogFormat::Json {
        return None;
    }
    let service = file
        .and_then(|f| f.service)
        .filter(|s| !s.trim().is_empty() && s.len() <= 100)
        .unwrap_or_else(|| DEFAULT_SERVICE.to_string());
    let mut pairs = vec![("event".to_string(), "startup_failed".into())];
    match error.downcast_ref::<ConfigError>() {
        Some(e) => {
            pairs.push(("error_kind".to_string(), "config".into()));
            pairs.push(("origin".to_string(), e.origin.clone().into()));
            pairs.push(("exit_code".to_string(), 2.into()));
        }
        None => {
            pairs.push(("error_kind".to_string(), "runtime".into()));
            pairs.push(("exit_code".to_string(), 1.into()));
        }
    }
    Some(json_line(&service, "ERROR", message, &pairs))
}

/// The JSON line for a usage error of the command line (`args` without the program name),
/// when they would have run the daemon with JSON logs.
pub fn usage_line(args: &[String], message: &str) -> Option<String> {
    let text = args.iter().any(|a| a == "--log-format=text")
        || args
            .windows(2)
            .any(|w| w[0] == "--log-format" && w[1] == "text");
    let one_shot = args.iter().any(|a| ONE_SHOT.contains(&a.as_str()));
    if text || one_shot {
        return None;
    }
    let pairs = [
        ("event".to_string(), "startup_failed".into()),
        ("error_kind".to_string(), "usage".into()),
        ("exit_code".to_string(), 2.into()),
    ];
    Some(json_line(DEFAULT_SERVICE, "ERROR", message, &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn config_errors_of_the_daemon_are_json_unless_logs_are_text() {
        let e = anyhow::Error::from(ConfigError::new("--ca-cert", "bad"));
        let line = error_line(&Options::default(), true, &e, "--ca-cert: bad").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["service"], DEFAULT_SERVICE);
        assert_eq!(v["message"], "--ca-cert: bad");
        assert_eq!(v["event"], "startup_failed");
        assert_eq!(v["error_kind"], "config");
        assert_eq!(v["origin"], "--ca-cert");
        assert_eq!(v["exit_code"], 2);
        assert_eq!(error_line(&Options::default(), false, &e, "x"), None);
        let text = Options {
            log_format: Some(LogFormat::Text),
            ..Options::default()
        };
        assert_eq!(error_line(&text, true, &e, "x"), None);
    }

    #[test]
    fn usage_errors_are_json_for_the_daemon_only() {
        assert!(usage_line(&args(&["--bogus"]), "x").is_some());
        assert!(usage_line(&args(&["run", "--bogus"]), "x").is_some());
        assert!(usage_line(&args(&["check", "--bogus"]), "x").is_none());
        assert!(usage_line(&args(&["--log-format", "text", "--bogus"]), "x").is_none());
        assert!(usage_line(&args(&["--log-format=text", "--bogus"]), "x").is_none());
    }
}
