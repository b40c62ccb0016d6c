//! Shell completion as a user meets it: the script `failover-handler completions <shell>` prints
//! is loaded into the real shell, which is asked what it offers after a subcommand, for a
//! subcommand's flag and for a flag's values. zsh and fish are skipped, saying so, where they
//! are not installed.

use std::fs;
use std::process::Command;

use crate::support::{BIN, have};

/// The script for `shell`, written to a file in `dir`.
fn script(shell: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let out = Command::new(BIN)
        .args(["completions", shell])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{shell}");
    // zsh finds a completion function by its file name in $fpath.
    let name = match shell {
        "zsh" => "_failover-handler".to_owned(),
        _ => format!("failover-handler.{shell}"),
    };
    let path = dir.join(name);
    fs::write(&path, &out.stdout).unwrap();
    path
}

/// What bash's completion function puts in COMPREPLY for the command line `words`, whose
/// last word is the one being completed.
fn bash_offers(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let probe = r#"
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
prev=""
if (( COMP_CWORD > 0 )); then prev="${COMP_WORDS[COMP_CWORD-1]}"; fi
_failover__handler failover-handler "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(probe)
        .arg("bash")
        .arg(script)
        .args(words)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn assert_offers(shell: &str, line: &str, offered: &[String], expected: &[&str]) {
    for want in expected {
        assert!(
            offered.iter().any(|o| o == want),
            "{shell}: `{line}<TAB>` offers {offered:?}, not {want}"
        );
    }
}

/// (the command line up to the cursor, what must be among the offers)
const CASES: [(&[&str], &[&str]); 5] = [
    (&["failover-handler", "sw"], &["switch"]),
    (
        &["failover-handler", "switch", "--"],
        &["--unpin", "--fleet"],
    ),
    (&["failover-handler", "pause", "--"], &["--for", "--help"]),
    (
        &["failover-handler", "--restart-via", ""],
        &["auto", "xmlrpc", "supervisorctl"],
    ),
    (
        &["failover-handler", "status", "--restart-via", "x"],
        &["xmlrpc"],
    ),
];

#[test]
fn bash_completes_subcommands_their_flags_and_flag_values() {
    let dir = tempfile::tempdir().unwrap();
    let script = script("bash", dir.path());
    for (words, expected) in CASES {
        let offered = bash_offers(&script, words);
        assert_offers("bash", &words.join(" "), &offered, expected);
    }
    // Before anything is typed after a subcommand, bash offers its flags.
    let offered = bash_offers(&script, &["failover-handler", "switch", ""]);
    assert_offers("bash", "failover-handler switch ", &offered, &["--unpin"]);
    // Values are offered only for the flag being completed.
    let offered = bash_offers(
        &script,
        &["failover-handler", "status", "--restart-via", "x"],
    );
    assert_eq!(offered, ["xmlrpc"]);
}

#[test]
fn fish_completes_subcommands_their_flags_and_flag_values() {
    if !have("fish", "fish") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = script("fish", dir.path());
    for (words, expected) in CASES {
        let line = words.join(" ");
        let out = Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg("source $argv[1]; complete -C $argv[2]")
            .arg(&script)
            .arg(&line)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // fish prints one candidate a line, its description after a tab.
        let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect();
        assert_offers("fish", &line, &offered, expected);
    }
}

#[test]
fn zsh_completes_subcommands_their_flags_and_flag_values() {
    if !have("zsh", "zsh") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    script("zsh", dir.path());
    let driver = dir.path().join("complete.zsh");
    fs::write(&driver, include_str!("support/complete.zsh")).unwrap();
    for (words, expected) in CASES {
        let line = words.join(" ");
        let out = Command::new("zsh")
            .arg("-f")
            .arg(&driver)
            .arg(dir.path())
            .arg(&line)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_offers("zsh", &line, &offered, expected);
    }
}
