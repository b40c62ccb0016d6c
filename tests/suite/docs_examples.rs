//! Every JSON example in README.md and docs/*.md is what the product prints: each fenced
//! `json` block is parsed and checked against the schema of its shape in docs/schemas/ (the
//! `/status` snapshot, `/history`, `status --json`, `replay --json`), and a log line against
//! the fields every log line has and, for a decision, the decision record's schema.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::observability::{assert_valid, schema};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and docs/*.md.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The fenced ```json blocks of `text`, each with the line it starts on.
fn json_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match &mut open {
            None if line.trim_start() == "```json" => open = Some((n + 1, String::new())),
            None => {}
            Some(_) if line.trim_start() == "```" => blocks.extend(open.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "a ```json block is not closed");
    blocks
}

/// Whether the docs name `event` (in backticks, as the event tables and lists do).
fn documented(event: &str) -> bool {
    documents().iter().any(|doc| {
        fs::read_to_string(doc)
            .unwrap()
            .contains(&format!("`{event}`"))
    })
}

/// The events a decision record (journal, /history, Datadog) can carry.
fn decision_events() -> BTreeSet<String> {
    let text = fs::read_to_string(root().join("docs/schemas/journal-record.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["properties"]["event"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

/// Checks one example; says which shape it was taken for.
fn check(what: &str, v: &Value) -> &'static str {
    let has = |k: &str| v.get(k).is_some();
    if has("decisions") {
        assert_valid(&schema("history.json"), what, v);
        "history"
    } else if has("recorded") && has("differences") {
        assert_valid(&schema("replay.json"), what, v);
        "replay"
    } else if has("source") && has("found") {
        assert_valid(&schema("status-command.json"), what, v);
        "status --json"
    } else if has("regions") && has("active") {
        assert_valid(&schema("status.json"), what, v);
        "status"
    } else if has("event") {
        for field in ["timestamp", "level", "service", "message", "event"] {
            assert!(has(field), "{what}: a log line without `{field}`: {v}");
        }
        let event = v["event"].as_str().unwrap();
        assert!(
            documented(event),
            "{what}: event `{event}` is not named in the docs"
        );
        assert!(
            !v.as_object().unwrap().values().any(|f| f == ""),
            "{what}: a log line with an empty field: {v}"
        );
        if decision_events().contains(event) {
            // The log line of a decision is its record, with `service` and without the
            // record's `format_version`.
            let mut record = v.clone();
            let fields = record.as_object_mut().unwrap();
            fields.remove("service");
            fields.insert("format_version".into(), 1.into());
            assert_valid(&schema("journal-record.json"), what, &record);
        }
        "log line"
    } else {
        panic!("{what}: no schema for this shape: {v}")
    }
}

#[test]
fn every_json_example_in_the_docs_matches_the_product() {
    let mut checked = Vec::new();
    for doc in documents() {
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (line, body) in json_blocks(&fs::read_to_string(&doc).unwrap()) {
            // One document, or one log line a line.
            let values: Vec<(usize, &str)> = match serde_json::from_str::<Value>(&body) {
                Ok(_) => vec![(line, body.as_str())],
                Err(_) => body
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(n, l)| (line + 1 + n, l))
                    .collect(),
            };
            for (line, text) in values {
                let what = format!("{name}:{line}");
                let v: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("{what} is not JSON ({e}):\n{text}"));
                checked.push(format!("{what} ({})", check(&what, &v)));
            }
        }
    }
    eprintln!("checked: {checked:#?}");
    assert!(checked.len() >= 5, "{checked:?}");
}

/// The README's install-from-source lines, run as written in a fresh home (all but the
/// `cargo install`, whose binary is the one under test): the completion script and the man
/// page land where bash-completion and man look for them.
#[test]
fn the_readme_install_from_source_lines_work_in_a_fresh_home() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let block: Vec<&str> = readme
        .split("Anywhere else, from source:\n\n")
        .nth(1)
        .expect("the README's install-from-source block")
        .lines()
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(
        block.first(),
        Some(&"cargo install --locked --path ."),
        "{block:?}"
    );
    let home = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(crate::support::BIN).parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    for line in &block[1..] {
        let out = std::process::Command::new("bash")
            .arg("-euc")
            .arg(line)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let script = home
        .path()
        .join(".local/share/bash-completion/completions/failover-handler");
    assert!(fs::read_to_string(script).unwrap().contains("complete -F"));
    let page = home.path().join(".local/share/man/man1/failover-handler.1");
    assert!(
        fs::read_to_string(page)
            .unwrap()
            .contains(".TH failover-handler 1")
    );
}
