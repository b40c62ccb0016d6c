//! failover-handler keeps an application connected to a multi-region external cloud.
//!
//! - `cli`: the command line (clap).
//! - `config_file`: the TOML config file as written, unknown keys refused.
//! - `config`: flags > environment > file > defaults, merged into one validated `Config`.
//! - `region`: regions, the failover list and its order.
//! - `policy`: the pure decision core: outage timing, where to go next, guards, failback.
//! - `health`: one checked target's health: rise/fall hysteresis and smoothed latency.
//! - `standby`: what the standby checks know: target choice and the is-it-me verdict.
//! - `damping`: flap damping of automatic switches (a growing hold-down, a cap per hour).
//! - `net`: fresh HTTP(S) connections, phase by phase, with classified errors.
//! - `probe`: the health probe of the active region.
//! - `checks`: the standby checks (health_url of each region, network references).
//! - `throughput`: the throughput gate's download, only when a failover is due.
//! - `pin`: the pin of a manual switch in the state dir.
//! - `intel`: the daemon's side of region intelligence: check results, pin, gate, their logs.
//! - `budget`: worst-case timings and doubtful settings, for `config`.
//! - `envfile`: the env file the programs source: tolerant reading, atomic writing.
//! - `restart`: the stop/start sequence with timeouts and retries, and supervisorctl's calls.
//! - `restart_path`: XML-RPC or supervisorctl (`restart.via`), chosen and logged per restart.
//! - `supervisor_conf`: supervisord's server URL and credentials, found as supervisorctl finds them.
//! - `supervisor_rpc`: supervisord's XML-RPC interface over its unix socket or TCP port.
//! - `xmlrpc`: the XML-RPC call and response documents supervisord speaks.
//! - `state`: the state directory (restart marker, pin, pause, journal).
//! - `daemon`: the loop that ties them together.
//! - `commands`: `switch`, `status`, `check`, `config`, `pause`, `resume`.
//! - `demo`: `failover-handler demo`, a failover on loopback with the real daemon loop.
//! - `logging`: JSON (or text) log lines.
//! - `view`: the live state the daemon shows (regions, outage timer, last switch, pause).
//! - `observer`: the handle the daemon reports its decisions to.
//! - `metrics`: the Prometheus metrics.
//! - `journal`: the decision journal (`journal.jsonl`), written by a thread of its own.
//! - `pause`: `pause`/`resume` through the state directory, and the daemon's gate.
//! - `datadog`: decisions shipped to Datadog's log intake in gzip batches.
//! - `web`: `/metrics`, `/status`, `/history` and `/` on `--metrics-addr`.
//! - `page`: the self-contained HTML status page.
//! - `status`: `status` in the shell, and the status file the daemon keeps for it.
//! - `services`: the reporting threads beside the daemon (journal, endpoints, Datadog).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod budget;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod config_file;
pub mod daemon;
pub mod damping;
pub mod datadog;
pub mod demo;
pub mod envfile;
pub mod health;
pub mod intel;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod observer;
pub mod page;
pub mod pause;
pub mod pin;
pub mod policy;
pub mod probe;
pub mod region;
pub mod restart;
pub mod restart_path;
pub mod services;
pub mod standby;
pub mod state;
pub mod status;
pub mod supervisor_conf;
pub mod supervisor_rpc;
#[cfg(test)]
mod test_http;
pub mod throughput;
pub mod view;
pub mod web;
pub mod xmlrpc;
