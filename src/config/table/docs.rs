//! The example config file and the README's options table, made from the table of settings.
//! `cargo test` fails naming the first setting whose text differs; `UPDATE_DOCS=1 cargo test
//! --lib config::table` writes them anew.
//!
//! Test code only (`#[cfg(test)] mod docs;` in `table/mod.rs`, never in the binary): its
//! `unwrap()`s read and write the checkout's own files, and a failure there is the test's
//! failure, told with the file it could not read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{ALL, Entry, SECTIONS, sections};
use crate::config::cli::Options;
use crate::config::file::FileConfig;
use crate::config::setting::{Doc, Example};
use crate::config::settings::{Config, DEFAULT_SIG_HEADER};

const EXAMPLE: &str = "failover-handler.example.toml";
const README: &str = "README.md";
const BEGIN: &str = "<!-- options: made from src/config/table; UPDATE_DOCS=1 cargo test --lib config::table rewrites them -->";
const END: &str = "<!-- end of options -->";

const EXAMPLE_HEAD: &str = "\
# failover-handler.example.toml: every key of the config file, with what it does.
# Copy it to /etc/failover-handler.toml, edit, then check it before deploying:
#     failover-handler config -c /etc/failover-handler.toml
# Every key is optional (leave out what you do not need: the default applies) and unknown keys
# are an error. Precedence: flag > environment > this file > default.
# Durations are humantime: \"250ms\", \"10s\", \"4m\".";

const REGIONS: &str = "\
# The failover order (replaces EXT_CLOUD_FAILOVER_LIST; the preferred region moves to the
# front). `cloud` is what the env file tells the programs; `health_url` (optional) lets the
# daemon check a standby before moving to it: http://, https:// (200 = healthy) or tcp://host:port.
[[regions]]
name = \"NAM\"
cloud = \"cloud.nam.ext.com\"
health_url = \"https://cloud.nam.ext.com/health\"

[[regions]]
name = \"EU\"
cloud = \"cloud.eu.ext.com\"
health_url = \"https://cloud.eu.ext.com/health\"

[[regions]]
name = \"APAC\"
cloud = \"cloud.apac.ext.com\"
health_url = \"tcp://cloud.apac.ext.com:443\"";

/// Lines of generated text, each with the setting it belongs to (for the error).
type Lines = Vec<(&'static str, String)>;

/// `text` as comment lines of at most 96 columns, Markdown links reduced to their text.
fn comment(text: &str, lines: &mut Lines, owner: &'static str) {
    let mut plain = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        plain.push_str(&rest[..open]);
        plain.push_str(&rest[open + 1..mid]);
        if rest[mid + 2..].starts_with('#') {
            plain.push_str(" in the README");
        }
        rest = &rest[close + 1..];
    }
    plain.push_str(rest);
    let mut line = String::from("#");
    for word in plain.split_whitespace() {
        if line.len() + 1 + word.len() > 96 && line.len() > 1 {
            lines.push((owner, std::mem::replace(&mut line, String::from("#"))));
        }
        line.push(' ');
        line.push_str(word);
    }
    lines.push((owner, line));
}

/// One key of the example, its help above it.
fn example_key(name: &'static str, entry: &dyn Entry, defaults: &Config, lines: &mut Lines) {
    let doc = entry.doc();
    let owner = doc.key.unwrap_or(name);
    comment(doc.help, lines, owner);
    let value = match doc.example {
        Example::Default => {
            let value = entry.show(defaults);
            let value = value.unwrap_or_else(|| panic!("{owner} has no default to show"));
            let line = toml::to_string(&BTreeMap::from([(name, value)])).unwrap();
            lines.push((owner, line.trim_end().to_string()));
            return;
        }
        Example::Value(v) => format!("{name} = {v}"),
        Example::Commented(v) => format!("# {name} = {v}"),
    };
    lines.push((owner, value));
}

/// The example config file, line by line.
fn example(defaults: &Config) -> Lines {
    let mut lines: Lines = EXAMPLE_HEAD.lines().map(|l| ("", l.to_string())).collect();
    for (section, entries) in sections() {
        lines.push(("", String::new()));
        if let Some((_, help)) = SECTIONS.iter().find(|(s, _)| *s == section) {
            comment(help, &mut lines, "");
        }
        if !section.is_empty() {
            lines.push(("", format!("[{section}]")));
        }
        for (name, entry) in entries {
            example_key(name, entry, defaults, &mut lines);
        }
        if section.is_empty() {
            lines.push(("", String::new()));
            lines.extend(REGIONS.lines().map(|l| ("regions", l.to_string())));
        }
        if section == "probe" {
            let help = "sent with every probe; the default is the one the old script sent, the SHA-256 of an empty body";
            comment(help, &mut lines, "probe.headers");
            let (k, v) = DEFAULT_SIG_HEADER;
            lines.push((
                "probe.headers",
                format!("headers = {{ \"{k}\" = \"{v}\" }}"),
            ));
        }
    }
    lines
}

/// A cell of the options table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// One row of the README's options table.
fn row(doc: &Doc) -> String {
    let option = match (doc.short, doc.flag, doc.value) {
        (_, None, _) => "–".to_string(),
        (Some(s), Some(f), Some(v)) => format!("`-{s}, {f} <{v}>`"),
        (None, Some(f), Some(v)) => format!("`{f} <{v}>`"),
        (Some(s), Some(f), None) => format!("`-{s}, {f}`"),
        (None, Some(f), None) => format!("`{f}`"),
    };
    let key = doc.key.map_or("–".to_string(), |k| format!("`{k}`"));
    let default = if doc.default.contains(' ') || matches!(doc.default, "none" | "off") {
        doc.default.to_string()
    } else {
        format!("`{}`", doc.default)
    };
    let mut meaning = doc.help.to_string();
    if let Some(var) = doc.env {
        meaning.push_str(&format!("; also the environment variable `{var}`"));
    }
    format!(
        "| {} | {} | {} | {} |",
        cell(&option),
        cell(&key),
        cell(&default),
        cell(&meaning)
    )
}

/// The README's options table: the flags, then the keys of the config file only.
fn options_table() -> Lines {
    let mut lines = vec![
        (
            "",
            "| option | config key | default | meaning |".to_string(),
        ),
        ("", "|---|---|---|---|".to_string()),
    ];
    let (flags, keys): (Vec<&&dyn Entry>, Vec<_>) =
        ALL.iter().partition(|e| e.doc().flag.is_some());
    for entry in flags.into_iter().chain(keys) {
        let doc = entry.doc();
        let name = doc.key.or(doc.flag).unwrap_or("");
        lines.push((name, row(doc)));
    }
    lines
}

/// The configuration with nothing set but the probe's ids.
fn defaults() -> Config {
    let ids = |k: &str| {
        k.starts_with("CONNECTION_KEEPALIVE_")
            .then(|| "x".to_string())
    };
    let (opts, file) = (Options::default(), FileConfig::default());
    Config::from_file(&opts, file, &ids).unwrap()
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// `want` against `have`: the first line that differs, named by its setting.
fn first_difference(file: &str, skip: usize, want: &Lines, have: &[&str]) -> Option<String> {
    let at = (0..want.len().max(have.len()))
        .find(|&i| want.get(i).map(|(_, l)| l.as_str()) != have.get(i).copied())?;
    let owner = want[..=at.min(want.len().saturating_sub(1))]
        .iter()
        .rev()
        .map(|(o, _)| *o)
        .find(|o| !o.is_empty())
        .unwrap_or("its head");
    Some(format!(
        "{file} differs from the table of settings at {owner} (line {}):\n- {}\n+ {}\n(UPDATE_DOCS=1 cargo test --lib config::table writes it anew)",
        skip + at + 1,
        have.get(at).unwrap_or(&"<nothing>"),
        want.get(at).map_or("<nothing>", |(_, l)| l.as_str()),
    ))
}

fn joined(lines: &Lines) -> String {
    let mut text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    text.truncate(text.trim_end().len());
    text.push('\n');
    text
}

#[test]
fn the_example_config_file_is_made_from_the_table() {
    let want = example(&defaults());
    let text = std::fs::read_to_string(path(EXAMPLE)).unwrap();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path(EXAMPLE), joined(&want)).unwrap();
        return;
    }
    let have: Vec<&str> = text.lines().collect();
    if let Some(diff) = first_difference(EXAMPLE, 0, &want, &have) {
        panic!("{diff}");
    }
}

#[test]
fn the_readme_options_table_is_made_from_the_table() {
    let want = options_table();
    let text = std::fs::read_to_string(path(README)).unwrap();
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("{README} has no {BEGIN} ... {END}");
    };
    let body = &text[begin + BEGIN.len()..end];
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let new = format!(
            "{}{BEGIN}\n{}{}",
            &text[..begin],
            joined(&want),
            &text[end..]
        );
        std::fs::write(path(README), new).unwrap();
        return;
    }
    let have: Vec<&str> = body.trim_matches('\n').lines().collect();
    let skip = text[..begin].lines().count() + 1;
    if let Some(diff) = first_difference(README, skip, &want, &have) {
        panic!("{diff}");
    }
}
