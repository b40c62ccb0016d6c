//! The man page failover-handler(1) and the bash, zsh and fish completions, made from the same
//! clap definitions as `--help`. `failover-handler man` and `completions <SHELL>` print them;
//! `build.rs` writes the very same bytes for the Debian package (`cargo deb`), so what is
//! installed never differs from what the binary says.
//!
//! This file is compiled twice, into the crate and into `build.rs`, so it uses nothing of the
//! crate: callers hand in the `clap::Command`.

use std::io;

use clap::Command;
use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};

/// The shells the package ships completions for, with the file each one reads (relative to `/`).
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (
        Shell::Bash,
        "usr/share/bash-completion/completions/failover-handler",
    ),
    (
        Shell::Zsh,
        "usr/share/zsh/vendor-completions/_failover-handler",
    ),
    (
        Shell::Fish,
        "usr/share/fish/vendor_completions.d/failover-handler.fish",
    ),
];

/// The sections of the page that no clap definition holds: where the environment and the files
/// fit in, as an SRE looks them up in `man`.
const ENVIRONMENT: [(&str, &str); 8] = [
    (
        "EXT_CLOUD_FAILOVER_LIST",
        "Ordered NAME=cloud-host pairs, comma-separated (the default is NAM=cloud.nam.ext.com, EU=cloud.eu.ext.com and APAC=cloud.apac.ext.com); takes precedence over the config file's [[regions]].",
    ),
    (
        "CONNECTION_KEEPALIVE_ORG_ID, CONNECTION_KEEPALIVE_TXN_ID",
        "Fill {org_id} and {txn_id} in the probe URL.",
    ),
    ("FAILOVER_HANDLER_CONFIG", "The config file, as --config."),
    (
        "DD_API_KEY, DD_SITE",
        "Also send decisions to Datadog's log intake (DD_SITE default datadoghq.com).",
    ),
    (
        "FAILOVER_HANDLER_DD_URL",
        "Replaces the Datadog intake URL (a proxy).",
    ),
    (
        "DD_PROXY_HTTPS, DD_PROXY_NO_PROXY",
        "The proxy for the Datadog intake and the hosts that bypass it (the Datadog agent's variables); the proxy URL may carry a username and password, which are never logged.",
    ),
    (
        "HTTPS_PROXY, NO_PROXY",
        "The proxy for the Datadog intake when DD_PROXY_HTTPS is not set, and the hosts that bypass it.",
    ),
    (
        "FAILOVER_HANDLER_LOG",
        "debug: also log every successful probe.",
    ),
];

const FILES: [(&str, &str); 4] = [
    (
        "/etc/failover-handler.toml",
        "The config file the package installs, every key commented out; use it with -c /etc/failover-handler.toml or FAILOVER_HANDLER_CONFIG.",
    ),
    (
        "/opt/application/tmp/ext_cloud.env",
        "The env file the programs source (--env-file): the record of the active region.",
    ),
    (
        "/var/lib/failover-handler",
        "The state directory (--state-dir): decision journal, pin, pause.",
    ),
    (
        "/usr/share/doc/failover-handler",
        "The README, a commented failover-handler.example.toml, supervisord.conf.example and ext_cloud.env.example.",
    ),
];

/// The man page failover-handler(1), in roff: clap_mangen's sections for the top-level command,
/// then one entry per subcommand with its own arguments, the environment and the files.
pub fn man_page(cmd: Command) -> io::Result<Vec<u8>> {
    // NAME (what `whatis` and `apropos` show) is the about's first clause; DESCRIPTION all of it.
    let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
    let long_about = cmd
        .get_long_about()
        .map_or(about.clone(), ToString::to_string);
    let name = about.split(':').next().unwrap_or_default().to_owned();
    let mut cmd = cmd
        .disable_help_subcommand(true)
        .long_about(long_about)
        .about(name);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone()).manual("failover-handler manual");
    let mut page = Page::default();
    page.add(|w| man.render_title(w))?;
    page.add(|w| man.render_name_section(w))?;
    page.add(|w| man.render_synopsis_section(w))?;
    page.add(|w| man.render_description_section(w))?;
    page.add(|w| man.render_options_section(w))?;
    let mut roff = Roff::new();
    commands_section(&mut roff, &cmd);
    if let Some(after) = cmd.get_after_help() {
        roff.control("SH", ["EXAMPLES"]);
        roff.control("nf", []);
        let after = after.to_string();
        for line in after.lines().skip_while(|l| l.trim() == "Examples:") {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    }
    described_list(&mut roff, "ENVIRONMENT", &ENVIRONMENT);
    described_list(&mut roff, "FILES", &FILES);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([bold("supervisorctl"), roman("(1)")]);
    page.add(|w| roff.to_writer(w))?;
    page.add(|w| man.render_version_section(w))?;
    Ok(page.0)
}

/// A page put together from sections that each start with roff's apostrophe preamble: it is
/// kept once, at the top.
#[derive(Default)]
struct Page(Vec<u8>);

impl Page {
    fn add(&mut self, render: impl FnOnce(&mut dyn io::Write) -> io::Result<()>) -> io::Result<()> {
        let mut section = Vec::new();
        render(&mut section)?;
        let mut preamble = Vec::new();
        Roff::new().to_writer(&mut preamble)?;
        let body = match section.strip_prefix(preamble.as_slice()) {
            Some(body) if !self.0.is_empty() => body,
            _ => &section,
        };
        self.0.extend_from_slice(body);
        Ok(())
    }
}

/// Each subcommand: how it is called, what it does, and the arguments only it takes (the shared
/// options are in OPTIONS above).
fn commands_section(roff: &mut Roff, cmd: &Command) {
    roff.control("SH", ["COMMANDS"]);
    let name = cmd.get_name();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let own: Vec<_> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set())
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .collect();
        let mut call = format!("{name} {}", sub.get_name());
        for arg in &own {
            call.push(' ');
            call.push_str(&arg_usage(arg));
        }
        roff.control("TP", []);
        roff.text([bold(call)]);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            roff.text([roman(about.to_string().replace('\n', " "))]);
        }
        for arg in own {
            roff.control("RS", []);
            roff.control("TP", []);
            roff.text([italic(arg_usage(arg))]);
            if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
                roff.text([roman(help.to_string().replace('\n', " "))]);
            }
            roff.control("RE", []);
        }
    }
}

/// `[--for <DUR>]`, `[--json]`, `<bash|zsh|fish>`: an argument as it is typed.
fn arg_usage(arg: &clap::Arg) -> String {
    let choices: Vec<_> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    let value = if !choices.is_empty() {
        Some(format!("<{}>", choices.join("|")))
    } else if arg.get_action().takes_values() {
        let names = arg.get_value_names().unwrap_or_default();
        let name = names.first().map_or(arg.get_id().as_str(), |n| n.as_str());
        Some(format!("<{name}>"))
    } else {
        None
    };
    let usage = match (arg.get_long(), value) {
        (Some(long), Some(value)) => format!("--{long} {value}"),
        (Some(long), None) => format!("--{long}"),
        (None, value) => value.unwrap_or_else(|| arg.get_id().to_string()),
    };
    if arg.is_required_set() {
        usage
    } else {
        format!("[{usage}]")
    }
}

fn described_list(roff: &mut Roff, heading: &str, items: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (name, what) in items {
        roff.control("TP", []);
        roff.text([bold(*name)]);
        roff.text([roman(*what)]);
    }
}

/// The completion script `shell` loads for failover-handler.
pub fn completions(shell: Shell, mut cmd: Command) -> Vec<u8> {
    const BIN: &str = "failover-handler";
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    let script = String::from_utf8_lossy(&out);
    let script = match shell {
        // clap_complete's bash script names the state of `failover-handler switch`
        // `failover__handler__subcmd__switch` where it walks the words, but labels the branch
        // that completes it `failover__subcmd__handler__subcmd__switch` (the binary name's
        // hyphen taken for a subcommand separator), so nothing past the first word would
        // complete. The labels are spelt the way the walk spells them.
        Shell::Bash => script.replace(&BIN.replace('-', "__subcmd__"), &BIN.replace('-', "__")),
        // Its fish script decides "no subcommand yet" by parsing the words typed so far, and
        // that parse fails on a flag still waiting for its value (`failover-handler
        // --restart-via <TAB>`), which hid the flag's values. Words that do not parse are
        // still before any subcommand.
        Shell::Fish => script.replace("\n    or return\n", "\n    or return 0\n"),
        _ => script.into_owned(),
    };
    script.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_page_names_every_subcommand_with_its_own_arguments() {
        let page = String::from_utf8(man_page(Cli::command()).unwrap()).unwrap();
        assert!(page.starts_with(".ie"), "{page}");
        for sub in Cli::command().get_subcommands() {
            assert!(
                page.contains(&format!("failover\\-handler {}", sub.get_name())),
                "{}",
                sub.get_name()
            );
        }
        assert!(page.contains("[\\-\\-for <DUR>]"), "{page}");
        assert!(page.contains("[\\-\\-unpin]"), "{page}");
        assert!(
            page.contains("failover\\-handler completions <bash|zsh|fish>"),
            "{page}"
        );
        assert!(page.contains(".SH ENVIRONMENT"));
        for var in [
            "DD_PROXY_HTTPS",
            "DD_PROXY_NO_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
        ] {
            assert!(
                page.contains(&format!("\\fB{var}")) || page.contains(&format!(", {var}")),
                "{var}: {page}"
            );
        }
        let name = ".SH NAME\nfailover\\-handler \\- Keeps an application connected to a multi\\-region external cloud\n";
        assert!(page.contains(name), "{page}");
        assert!(page.contains("restarts them through supervisord"), "{page}");
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble: {page}");
    }

    #[test]
    fn each_shell_gets_a_script_for_the_binary() {
        for (shell, _) in COMPLETIONS {
            let script = String::from_utf8(completions(shell, Cli::command())).unwrap();
            assert!(script.contains("failover-handler"), "{shell}");
            assert!(script.contains("switch"), "{shell}");
        }
    }
}
