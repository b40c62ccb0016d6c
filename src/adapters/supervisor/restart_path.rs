//! Which way a restart goes: straight to supervisord's XML-RPC interface (tens of
//! milliseconds for three programs) or through supervisorctl (a Python start-up per call).
//! `restart.via = "auto"` takes XML-RPC when the configured supervisorctl is the plain one and
//! supervisord answers where that supervisorctl would reach it; a wrapper (sudo, a container
//! exec, any executable not named `supervisorctl`) keeps supervisorctl. The choice is made at
//! each restart and reported (`Progress::Path`, told as `restart_path`) the first time and
//! whenever it changes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use super::conf;
use super::progress::{Progress, Tell};
use super::restart::{Action, CallError, Caller, Restart, RestartError, Retry, run_steps_while};
use super::rpc::{Client, RpcError};
use super::started::ProgramState;
use super::supervisorctl::Supervisorctl;
pub use super::supervisorctl::locate;
use crate::config::{RestartSettings, Via};
use crate::kernel::resume::Seen;

/// How long `auto` waits for supervisord's socket to accept before it takes supervisorctl.
const REACH_WITHIN: Duration = Duration::from_secs(1);

/// The path taken for one restart, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub via: Via,
    /// `configured`, `wrapper`, `supervisorctl_not_found`, `no_supervisor_config`,
    /// `unreachable` or `reachable`.
    pub reason: &'static str,
    /// Words for people: what was found or missed.
    pub detail: String,
    /// The server the XML-RPC path talks to (shown without credentials).
    pub serverurl: Option<String>,
}

/// XML-RPC calls as a `Caller` of the restart sequence, each within `restart.timeout`.
struct Rpc {
    client: Client,
    timeout: Duration,
}

impl Caller for Rpc {
    fn via(&self) -> &'static str {
        "XML-RPC"
    }

    async fn call(&self, action: Action, program: &str) -> Result<(), CallError> {
        match tokio::time::timeout(self.timeout, self.client.act(action, program)).await {
            Ok(result) => result.map_err(CallError::Rpc),
            Err(_) => Err(CallError::Timeout(self.timeout)),
        }
    }

    async fn state(&self, program: &str) -> Result<ProgramState, CallError> {
        match tokio::time::timeout(self.timeout, self.client.program_state(program)).await {
            Ok(result) => result.map_err(CallError::Rpc),
            Err(_) => Err(CallError::Timeout(self.timeout)),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A caller that cannot call: every attempt reports why supervisord could not be found, so
/// `restart.via = "xmlrpc"` with no usable config fails and retries like any other failure.
struct Unresolved(RpcError);

impl Caller for Unresolved {
    fn via(&self) -> &'static str {
        "XML-RPC"
    }

    async fn call(&self, _: Action, _: &str) -> Result<(), CallError> {
        Err(CallError::Rpc(self.0.clone()))
    }

    async fn state(&self, _: &str) -> Result<ProgramState, CallError> {
        Err(CallError::Rpc(self.0.clone()))
    }

    fn timeout(&self) -> Duration {
        Duration::ZERO
    }
}

/// The restarter the daemon and `switch` use: chooses the path, then runs the sequence.
pub struct Restarter {
    settings: RestartSettings,
    retry: Retry,
    last: Mutex<Option<Choice>>,
}

impl Restarter {
    pub fn new(settings: RestartSettings, max_attempts: Option<u32>) -> Self {
        Restarter {
            settings,
            retry: Retry::new(max_attempts),
            last: Mutex::new(None),
        }
    }

    /// Counts each failed call on `counter`.
    pub fn count_failures(mut self, counter: Counter) -> Self {
        self.retry.failures = Some(counter);
        self
    }

    /// Reports each step, and the path taken, to `tell`.
    pub fn telling(mut self, tell: Tell) -> Self {
        self.retry.tell = tell;
        self
    }

    /// Reports the choice if it differs from the last one.
    fn announce(&self, choice: &Choice) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.as_ref() == Some(choice) {
            return;
        }
        self.retry.tell.tell(Progress::Path {
            via: choice.via,
            reason: choice.reason,
            detail: choice.detail.clone(),
            serverurl: choice.serverurl.clone(),
        });
        *last = Some(choice.clone());
    }
}

impl Restart for Restarter {
    async fn restart(&self, cancel: &CancellationToken) -> Result<Duration, RestartError> {
        self.restart_while(cancel, &|| true).await
    }

    async fn restart_while(
        &self,
        cancel: &CancellationToken,
        may_act: &(dyn Fn() -> bool + Sync),
    ) -> Result<Duration, RestartError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let (choice, client) = choose(&self.settings, &cwd).await;
        self.announce(&choice);
        let programs = &self.settings.programs;
        match (choice.via, client) {
            (Via::Xmlrpc, Ok(client)) => {
                let rpc = Rpc {
                    client,
                    timeout: self.settings.timeout,
                };
                run_steps_while(&rpc, &self.retry, programs, cancel, may_act).await
            }
            (Via::Xmlrpc, Err(why)) => {
                let unresolved = Unresolved(why);
                run_steps_while(&unresolved, &self.retry, programs, cancel, may_act).await
            }
            _ => {
                let ctl = Supervisorctl::with_retry(self.settings.clone(), self.retry.clone());
                run_steps_while(&ctl, &self.retry, programs, cancel, may_act).await
            }
        }
    }

    /// Asked through XML-RPC, whichever path the restarts take: supervisorctl's `status` tells
    /// the uptime in whole seconds and its words vary with the version, too loose to skip a
    /// restart on. With `restart.via = "supervisorctl"` and plain supervisorctl, supervisord is
    /// found where supervisorctl finds it and only read from; a wrapper cannot be seen through,
    /// so the restart is made again.
    async fn programs_seen(&self) -> Option<Vec<Seen>> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let client = if self.settings.via == Via::Supervisorctl {
            let command = self.settings.supervisorctl.as_str();
            let plain =
                Path::new(command).file_name().and_then(|n| n.to_str()) == Some("supervisorctl");
            let exe = locate(command).filter(|_| plain)?;
            let env = conf::expansion_env;
            Client::new(conf::resolve(&exe, &self.settings.args, &cwd, &env).ok()?)
        } else {
            let (choice, client) = choose(&self.settings, &cwd).await;
            client.ok().filter(|_| choice.via == Via::Xmlrpc)?
        };
        let mut seen = Vec::with_capacity(self.settings.programs.len());
        for program in &self.settings.programs {
            let info = client.process_info(program);
            seen.push(
                tokio::time::timeout(self.settings.timeout, info)
                    .await
                    .ok()?
                    .ok()?,
            );
        }
        Some(seen)
    }
}

/// Why `auto` keeps supervisorctl without looking for supervisord: the command is a wrapper
/// (not named `supervisorctl`), or it is not installed, so its config cannot be known.
fn kept_by_auto(command: &str, exe: Option<&Path>) -> Option<(&'static str, String)> {
    let plain = Path::new(command).file_name().and_then(|n| n.to_str()) == Some("supervisorctl");
    if !plain {
        return Some((
            "wrapper",
            format!("{command} is not plain supervisorctl, so it is called as configured"),
        ));
    }
    exe.is_none().then(|| {
        (
            "supervisorctl_not_found",
            format!("{command} is not installed, so its config cannot be known"),
        )
    })
}

/// Chooses the path for `settings`, run from `cwd`; with XML-RPC, the client (or why there
/// is none).
pub async fn choose(settings: &RestartSettings, cwd: &Path) -> (Choice, Result<Client, RpcError>) {
    let ctl = |reason: &'static str, detail: String| Choice {
        via: Via::Supervisorctl,
        reason,
        detail,
        serverurl: None,
    };
    let unusable = || Err(RpcError::Config("supervisorctl was chosen".to_string()));
    if settings.via == Via::Supervisorctl {
        return (
            ctl("configured", "restart.via = \"supervisorctl\"".to_string()),
            unusable(),
        );
    }
    let auto = settings.via == Via::Auto;
    let command = settings.supervisorctl.as_str();
    let exe = locate(command);
    if auto && let Some((reason, detail)) = kept_by_auto(command, exe.as_deref()) {
        return (ctl(reason, detail), unusable());
    }
    let exe = exe.unwrap_or_else(|| PathBuf::from(command));
    let env = conf::expansion_env;
    let target = match conf::resolve(&exe, &settings.args, cwd, &env) {
        Ok(t) => t,
        Err(e) if auto => return (ctl("no_supervisor_config", e.to_string()), unusable()),
        Err(e) => {
            let choice = Choice {
                via: Via::Xmlrpc,
                reason: "configured",
                detail: e.to_string(),
                serverurl: None,
            };
            return (choice, Err(RpcError::Config(e.to_string())));
        }
    };
    let serverurl = target.url.to_string();
    let from = match &target.config {
        Some(p) => format!("from {}", p.display()),
        None => "from restart.args".to_string(),
    };
    let client = Client::new(target);
    if !auto {
        let choice = Choice {
            via: Via::Xmlrpc,
            reason: "configured",
            detail: format!("restart.via = \"xmlrpc\", server {serverurl} {from}"),
            serverurl: Some(serverurl),
        };
        return (choice, Ok(client));
    }
    match client.reachable(REACH_WITHIN).await {
        Ok(()) => (
            Choice {
                via: Via::Xmlrpc,
                reason: "reachable",
                detail: format!("supervisord answers at {serverurl} ({from})"),
                serverurl: Some(serverurl),
            },
            Ok(client),
        ),
        Err(e) => (ctl("unreachable", e.to_string()), unusable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn settings(via: Via, ctl: &str, args: &[String]) -> RestartSettings {
        RestartSettings {
            via,
            supervisorctl: ctl.to_string(),
            args: args.to_vec(),
            programs: vec!["a".into()],
            timeout: Duration::from_secs(5),
            enabled: true,
        }
    }

    #[tokio::test]
    async fn auto_takes_xmlrpc_only_for_plain_supervisorctl_reaching_supervisord() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let ctl = bin.join("supervisorctl");
        std::fs::write(&ctl, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = d.join("s.sock");
        // Found beside the executable: <bin>/../etc/supervisord.conf.
        std::fs::create_dir(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc").join("supervisord.conf"),
            format!("[supervisorctl]\nserverurl=unix://{}\n", sock.display()),
        )
        .unwrap();
        let ctl = ctl.to_str().unwrap();
        let reason = |s: RestartSettings| async move { choose(&s, d).await.0 };

        let c = reason(settings(Via::Auto, ctl, &[])).await;
        assert_eq!((c.via, c.reason), (Via::Supervisorctl, "unreachable"));
        let _listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let c = reason(settings(Via::Auto, ctl, &[])).await;
        assert_eq!((c.via, c.reason), (Via::Xmlrpc, "reachable"));
        assert_eq!(c.serverurl, Some(format!("unix://{}", sock.display())));

        let wrapper = d.join("ctl-wrapper");
        std::fs::copy(ctl, &wrapper).unwrap();
        let c = reason(settings(Via::Auto, wrapper.to_str().unwrap(), &[])).await;
        assert_eq!((c.via, c.reason), (Via::Supervisorctl, "wrapper"));
        let c = reason(settings(Via::Auto, "sudo", &[])).await;
        assert_eq!(c.reason, "wrapper");
        let c = reason(settings(Via::Auto, "/nonexistent/supervisorctl", &[])).await;
        assert_eq!(c.reason, "supervisorctl_not_found");
        let c = reason(settings(Via::Supervisorctl, ctl, &[])).await;
        assert_eq!((c.via, c.reason), (Via::Supervisorctl, "configured"));
        let missing = ["-c".to_string(), "/nonexistent.conf".to_string()];
        let c = reason(settings(Via::Auto, ctl, &missing)).await;
        assert_eq!(c.reason, "no_supervisor_config");
        let (c, client) = choose(&settings(Via::Xmlrpc, ctl, &missing), d).await;
        assert_eq!(c.via, Via::Xmlrpc);
        assert_eq!(client.unwrap_err().kind(), "config");
    }
}
