//! What the unit tests of every layer share: a config built as the command line builds it,
//! a probe report, and a restarter that records when it was called.
//!
//! Compiled only for unit tests (`#[cfg(test)] mod testing;` in lib.rs): an `unwrap` here
//! that fails is a test that fails, with the panic saying where, which is what a test wants.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::adapters::http::{ErrorKind, ProbeError, ProbeReport};
use crate::adapters::supervisor::{Restart, RestartError};
use crate::config::Config;

/// The config of `failover-handler <args>` with the probe ids set.
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec!["fh"];
    argv.extend_from_slice(args);
    let cli = crate::config::cli::Cli::try_parse_from(argv).unwrap();
    let vars = |k: &str| match k {
        "CONNECTION_KEEPALIVE_ORG_ID" | "CONNECTION_KEEPALIVE_TXN_ID" => Some("x".to_string()),
        _ => None,
    };
    Config::build(&cli.options, &vars).unwrap()
}

/// The config of `failover-handler -c <file holding toml> <args>`.
pub fn config_with_file(toml: &str, args: &[&str]) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let mut argv = vec!["-c", path.to_str().unwrap()];
    argv.extend_from_slice(args);
    config(&argv)
}

/// A probe's report: healthy, or failed with `kind`.
pub fn report(failure: Option<ErrorKind>) -> ProbeReport {
    ProbeReport {
        latency: Duration::from_millis(5),
        result: match failure {
            None => Ok(200),
            Some(kind) => Err(ProbeError::new(kind, kind.as_str())),
        },
        bytes_sent: 0,
        bytes_received: 0,
        phases: Default::default(),
        cert_not_after: None,
    }
}

/// Records the instant of every restart.
#[derive(Clone, Default)]
pub struct CountingRestart(pub Arc<Mutex<Vec<Instant>>>);

impl CountingRestart {
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Restart for CountingRestart {
    async fn restart(&self, _cancel: &CancellationToken) -> Result<Duration, RestartError> {
        self.0.lock().unwrap().push(Instant::now());
        Ok(Duration::from_millis(1))
    }
}
