//! Before a manual switch writes the env file: can the restart that follows reach supervisord,
//! and does supervisord know every program? A switch that would fail there refuses first, so
//! that it never writes the env file and then fails on something it could have known.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::restart::{credentials_refused, supervisord_unreachable};
use super::restart_path::{choose, locate};
use super::rpc::{Client, RpcError, faults};
use super::supervisorctl::Supervisorctl;
use super::xmlrpc::Param;
use crate::config::{RestartSettings, Via, duration_text};

/// Why a restart cannot work now, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unready(pub String);

/// Checks the path a restart would take: supervisord answers there and knows each program.
/// A wrapper given as `restart.supervisorctl` (not plain supervisorctl) is only checked to
/// exist: what it accepts besides `stop` and `start` is its own.
pub async fn ready(settings: &RestartSettings) -> Result<(), Unready> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (choice, client) = choose(settings, &cwd).await;
    match (choice.via, client) {
        (Via::Xmlrpc, Ok(client)) => {
            knows_programs(&client, &settings.programs, settings.timeout).await
        }
        (Via::Xmlrpc, Err(why)) => Err(Unready(why.to_string())),
        _ => supervisorctl_ready(settings).await,
    }
}

/// Asks supervisord about each program, each question within `timeout` (`restart.timeout`):
/// a socket that accepts and never answers is a refusal, not a wait.
async fn knows_programs(
    client: &Client,
    programs: &[String],
    timeout: Duration,
) -> Result<(), Unready> {
    for program in programs {
        let params = [Param::Str(program)];
        let call = client.call("supervisor.getProcessInfo", &params);
        let Ok(answer) = tokio::time::timeout(timeout, call).await else {
            return Err(Unready(format!(
                "supervisord at {} gave no answer within {} (restart.timeout)",
                client.target().url,
                duration_text(timeout)
            )));
        };
        match answer {
            Ok(_) => {}
            Err(RpcError::Fault { code, .. }) if code == faults::BAD_NAME => {
                return Err(Unready(format!(
                    "supervisord knows no program {program} (check --programs)"
                )));
            }
            Err(e) => return Err(Unready(e.to_string())),
        }
    }
    Ok(())
}

async fn supervisorctl_ready(settings: &RestartSettings) -> Result<(), Unready> {
    let command = settings.supervisorctl.as_str();
    if locate(command).is_none() {
        return Err(Unready(format!(
            "cannot run {command}: not found (check --supervisorctl)"
        )));
    }
    let plain = Path::new(command).file_name().and_then(|n| n.to_str()) == Some("supervisorctl");
    if !plain {
        return Ok(());
    }
    let ctl = Supervisorctl::new(settings.clone(), Some(1));
    let (_, output) = ctl
        .status(&settings.programs)
        .await
        .map_err(|e| Unready(format!("{command} status: {e}")))?;
    let line = |what: &str| Unready(format!("{command} status: {what}: {output}"));
    if supervisord_unreachable(&output) {
        return Err(line("supervisord is not reachable"));
    }
    if credentials_refused(&output) {
        return Err(line("supervisord refused the credentials"));
    }
    if output.contains("no such process") {
        return Err(line("supervisord knows no such program (check --programs)"));
    }
    Ok(())
}
