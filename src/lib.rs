//! failover-handler keeps an application connected to a multi-region external cloud.
//!
//! The tree is in layers; a layer uses only the layers above it in this list
//! (docs/architecture.md says what each may touch):
//!
//! - `kernel`: pure decisions: regions and their order, health, standbys, damping, the policy.
//!   A crate of its own (`failover_kernel`, in crates/kernel) whose manifest lists no I/O
//!   crate; re-exported here under its layer's name.
//! - `config`: the command line, the config file, and their merge into one validated `Config`.
//! - `adapters`: one kind of I/O each, in rooms: `http` (probe, checks, throughput, TLS),
//!   `supervisor` (restarts), `files` (env file, state directory), `etcd` (the fleet's store).
//! - `report`: logs, metrics, the live view and status page, the journal, Datadog.
//! - `daemon`: the loop (inputs -> kernel -> effects) and its wiring.
//! - `commands`: one module per subcommand, and the demo.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod adapters;
pub mod commands;
pub mod config;
pub mod daemon;
pub use failover_kernel as kernel;
pub mod report;
#[cfg(test)]
mod testing;
