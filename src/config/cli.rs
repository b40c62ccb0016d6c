//! The command line: subcommands and the options they share. Values are parsed to their types
//! here; merging with the environment and the config file happens in `config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Keeps an application connected to a multi-region external cloud: probes the \
cloud through the local tunnel and, when the active region has an outage that lasts, writes the \
next region into the env file the programs source and restarts them through supervisord (its XML-RPC interface, or supervisorctl).";

const AFTER_HELP: &str = "Examples:
  failover-handler --region EU                 run the daemon, EU preferred
  failover-handler check                       probe once now (exit 0 healthy, 1 unhealthy)
  failover-handler switch APAC                 move to APAC by hand, restart, exit
  failover-handler status                      where traffic goes now
  failover-handler config -c /etc/failover-handler.toml   validate a config file
  failover-handler demo                        watch a failover on loopback
  failover-handler replay --journal journal.jsonl --threshold 2m   would 2 minutes have failed over?

Precedence: flag > environment > config file > default. Exit codes: 0 success or healthy,
1 runtime failure or unhealthy, 2 usage or configuration error.";

#[derive(Debug, Parser)]
#[command(
    name = "failover-handler",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the daemon (the default when no subcommand is given).
    Run,
    /// Switch to REGION by hand: write the env file, restart the programs, exit.
    /// A running daemon adopts the region on its next probe and pins it.
    Switch {
        /// The region to move to (a name from the failover list).
        #[arg(
            id = "target_region",
            value_name = "REGION",
            required_unless_present = "unpin"
        )]
        region: Option<String>,
        /// Remove the pin a manual switch set, so automatic failback may apply again.
        #[arg(long, conflicts_with = "fleet")]
        unpin: bool,
        /// Act on the whole fleet through the store (needs a [fleet] section).
        #[arg(long)]
        fleet: bool,
    },
    /// Show the active region, and the daemon's live view when it runs.
    Status {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
        /// Show every host's view, the leader, the epoch and the restart slots.
        #[arg(long)]
        fleet: bool,
    },
    /// Probe once now: exit 0 when healthy, 1 when not.
    Check,
    /// Validate and print the effective configuration, with its worst-case timings.
    Config,
    /// A self-contained showcase on loopback: three fake regions, an outage, a failover.
    Demo,
    /// Stop automatic switching (maintenance); a running daemon obeys on its next probe.
    Pause {
        /// End the pause by itself after this long (e.g. 30m).
        #[arg(long = "for", value_name = "DUR", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Hold automatic moves of the whole fleet (until `resume --fleet`).
        #[arg(long, conflicts_with = "duration")]
        fleet: bool,
    },
    /// Restart automatic switching after `pause`.
    Resume {
        /// Resume automatic moves of the whole fleet.
        #[arg(long)]
        fleet: bool,
    },
    /// Replay a recorded journal under these settings: which decisions would have differed,
    /// and each outage's time to failover.
    Replay {
        /// The journal to replay (<state-dir>/journal.jsonl).
        #[arg(long, value_name = "FILE")]
        journal: PathBuf,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
        /// Refuse a journal with a line that is not a record (a record torn by a full disk,
        /// a line longer than 64 KiB) instead of skipping it.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        rules: RuleFlags,
    },
    /// Print the completion script for SHELL (the package installs them).
    Completions {
        /// The shell to complete in.
        #[arg(value_enum, value_name = "SHELL")]
        shell: Shell,
    },
    /// Print the man page failover-handler(1) in roff (the package installs it).
    Man,
}

/// Rule settings that are otherwise keys of the config file only: `replay` takes them as
/// flags, to ask what they would have decided.
#[derive(Debug, Clone, Default, Args)]
pub struct RuleFlags {
    /// Probe cadence while failing [default: probe.fail_interval, else the interval].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub fail_interval: Option<Duration>,
    /// Fail back to the preferred region (--region) once healthy: never or auto
    /// [default: failover.failback, else never].
    #[arg(long, value_name = "WHEN")]
    pub failback: Option<String>,
    /// How long the preferred region must be healthy before a failback
    /// [default: failover.failback_after, else 10m].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub failback_after: Option<Duration>,
    /// Automatic switches allowed within an hour before damping holds them back
    /// [default: failover.max_switches_per_hour, else 6].
    #[arg(long, value_name = "N")]
    pub max_switches_per_hour: Option<u32>,
}

/// The shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// Options shared by every subcommand; each is also a key of the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct Options {
    /// Preferred region: moved to the front of the failover order.
    #[arg(short, long, global = true, value_name = "NAME")]
    pub region: Option<String>,
    /// TOML config file.
    #[arg(
        short,
        long,
        global = true,
        value_name = "FILE",
        env = "FAILOVER_HANDLER_CONFIG"
    )]
    pub config: Option<PathBuf>,
    /// The env file the programs source [default: /opt/application/tmp/ext_cloud.env].
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Health endpoint through the tunnel; {org_id} and {txn_id} come from
    /// CONNECTION_KEEPALIVE_ORG_ID and CONNECTION_KEEPALIVE_TXN_ID
    /// [default: https://localhost:8443/v2/{org_id}/cloudlookup/{txn_id}].
    #[arg(long, global = true, value_name = "URL")]
    pub probe_url: Option<String>,
    /// Time between probes [default: 10s].
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// One probe's deadline: connect + TLS + response [default: 5s].
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Probe failures this long after start are told at INFO, while the tunnel comes up;
    /// 0s tells them as usual from the start [default: 10s].
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_duration)]
    pub startup_grace: Option<Duration>,
    /// Continuous failure that counts as an outage [default: 4m].
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_duration)]
    pub threshold: Option<Duration>,
    /// Trust this CA or this exact certificate (PEM), e.g. the tunnel's own self-signed one
    /// (stunnel's stunnel.pem) [default: system roots].
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// The name sent as SNI and verified instead of the probe URL's host; {cloud} stands for
    /// the active region's cloud host (a transparent forward that shows the cloud's own
    /// certificate) [default: the URL's host].
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Skip TLS verification of the probe (logged as a warning at start; an error together
    /// with --ca-cert).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// The supervisorctl executable [default: supervisorctl].
    #[arg(long, global = true, value_name = "CMD")]
    pub supervisorctl: Option<String>,
    /// How to restart the programs: auto (supervisord's XML-RPC interface where supervisorctl
    /// would reach it, else supervisorctl), xmlrpc or supervisorctl [default: auto].
    #[arg(
        long,
        global = true,
        value_name = "HOW",
        value_parser = Offered(&["auto", "xmlrpc", "supervisorctl"]),
        hide_possible_values = true
    )]
    pub restart_via: Option<String>,
    /// One argument given to supervisorctl before its command; repeat it for more, e.g.
    /// --supervisorctl-arg=-c --supervisorctl-arg=/etc/supervisor/supervisord.conf
    /// (replaces restart.args) [default: none].
    #[arg(
        long = "supervisorctl-arg",
        global = true,
        value_name = "ARG",
        allow_hyphen_values = true,
        action = clap::ArgAction::Append
    )]
    pub supervisorctl_args: Option<Vec<String>>,
    /// Programs to restart: stopped in this order, started in reverse
    /// [default: app:application,app:cloud-client,app:stunnel].
    #[arg(long, global = true, value_name = "A,B,C", value_delimiter = ',')]
    pub programs: Option<Vec<String>>,
    /// Write the env file but restart nothing.
    #[arg(long, global = true)]
    pub no_restart: bool,
    /// Decide and log, but write and restart nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Log lines on stdout [default: json].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Decision journal, pin and pause [default: /var/lib/failover-handler].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Serve /metrics, /status, /history and / on this address (a bare port means loopback).
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
}

/// Parses a humantime duration such as `250ms`, `10s` or `4m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration like 250ms, 10s or 4m ({e})"))
}

/// Takes any text, which the settings check and refuse naming the flag, and tells shell
/// completion the values it offers.
#[derive(Clone)]
pub struct Offered(pub &'static [&'static str]);

impl clap::builder::TypedValueParser for Offered {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            self.0.iter().map(|v| clap::builder::PossibleValue::new(*v)),
        ))
    }
}

impl Options {
    /// These options over `base`: each one given here wins, the rest come from `base` (a
    /// running daemon's options, for a command that acts on it), except `--dry-run` and
    /// `--log-format`, which are this command's alone. Every field is named, so a new option
    /// cannot be forgotten here.
    pub fn over(&self, base: Options) -> Options {
        let Options {
            region,
            config,
            env_file,
            probe_url,
            interval,
            timeout,
            startup_grace,
            threshold,
            ca_cert,
            tls_server_name,
            insecure,
            supervisorctl,
            restart_via,
            supervisorctl_args,
            programs,
            no_restart,
            dry_run,
            log_format,
            state_dir,
            metrics_addr,
        } = self.clone();
        Options {
            region: region.or(base.region),
            config: config.or(base.config),
            env_file: env_file.or(base.env_file),
            probe_url: probe_url.or(base.probe_url),
            interval: interval.or(base.interval),
            timeout: timeout.or(base.timeout),
            startup_grace: startup_grace.or(base.startup_grace),
            threshold: threshold.or(base.threshold),
            ca_cert: ca_cert.or(base.ca_cert),
            tls_server_name: tls_server_name.or(base.tls_server_name),
            insecure: insecure || base.insecure,
            supervisorctl: supervisorctl.or(base.supervisorctl),
            restart_via: restart_via.or(base.restart_via),
            supervisorctl_args: supervisorctl_args.or(base.supervisorctl_args),
            programs: programs.or(base.programs),
            no_restart: no_restart || base.no_restart,
            // How this one command runs and speaks is its own choice.
            dry_run,
            log_format,
            state_dir: state_dir.or(base.state_dir),
            metrics_addr: metrics_addr.or(base.metrics_addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_work_after_the_subcommand_and_default_is_run() {
        let cli = Cli::try_parse_from(["fh", "switch", "EU", "--no-restart", "-r", "NAM"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Switch { ref region, .. }) if region.as_deref() == Some("EU"))
        );
        assert!(cli.options.no_restart);
        let cli = Cli::try_parse_from(["fh", "--region", "EU", "--interval", "250ms"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.options.interval, Some(Duration::from_millis(250)));
        let cli = Cli::try_parse_from(["fh", "--programs", "a,b"]).unwrap();
        assert_eq!(cli.options.programs.unwrap(), ["a", "b"]);
    }
}
