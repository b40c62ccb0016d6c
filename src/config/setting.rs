//! One setting, described once: its flag, variable, config key, default, check, help and how
//! `config` shows it. The merge, the `config` output, the example config file and the
//! README's options table all read these descriptions (`config::table`).

use crate::config::cli::Options;
use crate::config::file::FileConfig;
use crate::config::settings::{Config, ConfigError};

/// What people read about a setting: the same words in `--help`, the README and the example.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    /// `section.key` in the config file (`None`: a flag only, such as `--config`).
    pub key: Option<&'static str>,
    /// The long flag, `--interval` (`None`: a key of the config file only).
    pub flag: Option<&'static str>,
    pub short: Option<char>,
    /// The flag's value as `--help` names it (`None`: a switch).
    pub value: Option<&'static str>,
    /// The environment variable that sets it (between the flag and the file).
    pub env: Option<&'static str>,
    /// The default as `config` shows it, or in words when nothing is set ("none", "off").
    pub default: &'static str,
    /// What it does, in one sentence (Markdown: `code` and [links](#anchors)).
    pub help: &'static str,
    /// How the example config file shows it.
    pub example: Example,
}

impl Doc {
    /// A start for the table's entries: everything absent.
    pub const NONE: Doc = Doc {
        key: None,
        flag: None,
        short: None,
        value: None,
        env: None,
        default: "",
        help: "",
        example: Example::Default,
    };
}

/// How the example config file shows a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Example {
    /// Set to its default, as `config` shows it.
    Default,
    /// Set to this TOML value, to show what a real deployment writes.
    Value(&'static str),
    /// Commented out with this TOML value: setting it needs something of the user's own.
    Commented(&'static str),
}

/// A typed setting: where its value comes from and how it is checked.
pub struct Setting<T: 'static> {
    pub doc: Doc,
    /// The flag's value, if given, parsed.
    pub flag: fn(&Options) -> Option<Result<T, String>>,
    /// The environment variable's text parsed (when `doc.env` names one).
    pub text: fn(&str) -> Result<T, String>,
    /// The config file's value, if written, parsed.
    pub file: fn(&FileConfig) -> Option<Result<T, String>>,
    pub default: fn() -> T,
    /// A check of the chosen value; the error is reported naming where it came from.
    pub check: fn(&T) -> Result<(), String>,
    /// The effective value as `config` shows it (`None`: left out, as unset).
    pub show: fn(&Config) -> Option<toml::Value>,
}

/// A value and where it came from: a flag, a variable or a key (also when the value is the
/// key's default, so that an error about it names the key).
#[derive(Debug, Clone)]
pub struct Picked<T> {
    pub value: T,
    pub origin: &'static str,
    /// Nothing set it: the default applies.
    pub default: bool,
}

/// Where the merge reads from: the flags, the environment and the config file.
pub struct Sources<'a> {
    pub opts: &'a Options,
    pub file: &'a FileConfig,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    /// The setting's value: flag > environment > config file > default, checked. A config file
    /// value that does not parse is an error even when a flag wins: the file is wrong.
    pub fn get<T>(&self, s: &Setting<T>) -> Result<Picked<T>, ConfigError> {
        let key = s.doc.key.unwrap_or("config file");
        let file = (s.file)(self.file)
            .transpose()
            .map_err(|e| ConfigError::new(key, e))?;
        let set = |value, origin| Picked {
            value,
            origin,
            default: false,
        };
        let picked = if let Some(value) = (s.flag)(self.opts) {
            let origin = s.doc.flag.unwrap_or(key);
            set(value.map_err(|e| ConfigError::new(origin, e))?, origin)
        } else if let Some((var, text)) = s.doc.env.and_then(|v| Some((v, (self.env)(v)?))) {
            set((s.text)(&text).map_err(|e| ConfigError::new(var, e))?, var)
        } else if let Some(value) = file {
            set(value, key)
        } else {
            Picked {
                value: (s.default)(),
                origin: key,
                default: true,
            }
        };
        (s.check)(&picked.value).map_err(|e| ConfigError::new(picked.origin, e))?;
        Ok(picked)
    }

    /// The setting's value alone.
    pub fn value<T>(&self, s: &Setting<T>) -> Result<T, ConfigError> {
        self.get(s).map(|p| p.value)
    }
}

/// Any value passes.
pub fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// For settings no variable sets: never called, as `doc.env` is `None`.
pub fn no_text<T>(text: &str) -> Result<T, String> {
    Err(format!("'{text}' cannot be set from the environment"))
}

/// A duration must not be zero.
pub fn positive(d: &std::time::Duration) -> Result<(), String> {
    if d.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(())
}

/// A count must be at least one.
pub fn at_least_one(n: &u32) -> Result<(), String> {
    if *n == 0 {
        return Err("must be at least 1".to_string());
    }
    Ok(())
}

/// A config file's duration text, parsed.
pub fn duration(text: Option<&String>) -> Option<Result<std::time::Duration, String>> {
    text.map(|t| crate::config::cli::parse_duration(t))
}

/// A duration as `config` shows it (`4m`, `1s 500ms`).
pub fn show_duration(d: std::time::Duration) -> Option<toml::Value> {
    Some(toml::Value::String(crate::config::duration_text(d)))
}

/// Text as `config` shows it.
pub fn show_text(text: impl Into<String>) -> Option<toml::Value> {
    Some(toml::Value::String(text.into()))
}

/// A path as `config` shows it.
pub fn show_path(path: &std::path::Path) -> Option<toml::Value> {
    show_text(path.display().to_string())
}

/// A list of text as `config` shows it.
pub fn show_list(items: impl IntoIterator<Item = String>) -> Option<toml::Value> {
    Some(toml::Value::Array(
        items.into_iter().map(toml::Value::String).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A setting that a variable also sets, as `--config` is.
    static WAIT: Setting<Duration> = Setting {
        doc: Doc {
            key: Some("probe.interval"),
            flag: Some("--interval"),
            env: Some("WAIT"),
            ..Doc::NONE
        },
        flag: |o| o.interval.map(Ok),
        text: crate::config::cli::parse_duration,
        file: |f| duration(f.probe.as_ref()?.interval.as_ref()),
        default: || Duration::from_secs(10),
        check: positive,
        show: |_| None,
    };

    fn pick(
        flag: Option<u64>,
        var: Option<&'static str>,
        file: &str,
    ) -> Result<Picked<Duration>, ConfigError> {
        let opts = Options {
            interval: flag.map(Duration::from_secs),
            ..Options::default()
        };
        let file = FileConfig::parse(file).unwrap();
        let env = move |k: &str| (k == "WAIT").then(|| var.map(str::to_string)).flatten();
        Sources {
            opts: &opts,
            file: &file,
            env: &env,
        }
        .get(&WAIT)
    }

    #[test]
    fn flag_beats_variable_beats_file_beats_default() {
        let file = "[probe]\ninterval = \"3s\"\n";
        let p = pick(Some(1), Some("2s"), file).unwrap();
        assert_eq!(
            (p.value, p.origin, p.default),
            (Duration::from_secs(1), "--interval", false)
        );
        let p = pick(None, Some("2s"), file).unwrap();
        assert_eq!((p.value, p.origin), (Duration::from_secs(2), "WAIT"));
        let p = pick(None, None, file).unwrap();
        assert_eq!(
            (p.value, p.origin),
            (Duration::from_secs(3), "probe.interval")
        );
        let p = pick(None, None, "").unwrap();
        assert_eq!(
            (p.value, p.origin, p.default),
            (Duration::from_secs(10), "probe.interval", true)
        );
    }

    #[test]
    fn errors_name_where_the_value_came_from() {
        let said = |r: Result<Picked<Duration>, ConfigError>| r.unwrap_err().to_string();
        assert_eq!(
            said(pick(Some(0), None, "")),
            "--interval: must be greater than zero"
        );
        assert!(said(pick(None, Some("soon"), "")).starts_with("WAIT: 'soon' is not a duration"));
        assert_eq!(
            said(pick(None, Some("0s"), "")),
            "WAIT: must be greater than zero"
        );
        let bad_file = "[probe]\ninterval = \"often\"\n";
        assert!(said(pick(Some(1), None, bad_file)).starts_with("probe.interval: 'often'"));
    }
}
