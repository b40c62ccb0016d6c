//! How SREs install failover-handler: `failover-handler man` and `completions` print the man
//! page and the shell completions.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_failover-handler");

/// Runs the binary with none of the product's variables from the host.
fn failover_handler(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FAILOVER_HANDLER_CONFIG")
        .env_remove("EXT_CLOUD_FAILOVER_LIST")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn man_prints_the_page_in_roff() {
    let out = failover_handler(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH failover-handler 1 "), "{page}");
    assert!(page.contains(".SH COMMANDS"), "{page}");
    assert!(out.stderr.is_empty());
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef failover-handler"),
        ("fish", "complete -c failover-handler"),
    ] {
        let out = failover_handler(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("switch"), "{shell}");
        assert!(out.stderr.is_empty(), "{shell}");
    }
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error_on_one_line() {
    let out = failover_handler(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("failover-handler: error: "), "{err}");
    assert!(
        err.contains("'tcsh'") && err.contains("bash, zsh, fish"),
        "{err}"
    );
}

#[test]
fn man_and_completions_need_no_config() {
    let out = Command::new(BIN)
        .args(["man"])
        .env(
            "FAILOVER_HANDLER_CONFIG",
            "/nonexistent/failover-handler.toml",
        )
        .env("EXT_CLOUD_FAILOVER_LIST", "broken")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!out.stdout.is_empty());
}
