//! Restarts through the supervisorctl executable: one process per call, an argument vector and
//! no shell, within `restart.timeout`, without the handler's secrets in its environment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::restart::{
    Action, CallError, Caller, Restart, RestartError, Retry, run_steps, run_steps_while,
};
use super::started::{self, ProgramState};
use crate::config::{RestartSettings, SECRET_VARS};

/// Restarts through the supervisorctl executable.
#[derive(Debug, Clone)]
pub struct Supervisorctl {
    settings: RestartSettings,
    retry: Retry,
}

impl Supervisorctl {
    pub fn new(settings: RestartSettings, max_attempts: Option<u32>) -> Self {
        Supervisorctl {
            settings,
            retry: Retry::new(max_attempts),
        }
    }

    /// The same executable and arguments, retried and counted as `retry` says.
    pub fn with_retry(settings: RestartSettings, retry: Retry) -> Self {
        Supervisorctl { settings, retry }
    }

    /// The argument vector of one call: the configured args, the action, the program.
    pub fn argv(&self, action: Action, program: &str) -> Vec<String> {
        let mut argv = self.settings.args.clone();
        argv.push(action.as_str().to_string());
        argv.push(program.to_string());
        argv
    }

    /// One call; "not running" on stop counts as success, "already started" on start is an
    /// error (`already_started`) that says nothing of when, or whether it still runs.
    pub async fn call(&self, action: Action, program: &str) -> Result<(), CallError> {
        let (status, output) = self.run(self.argv(action, program)).await?;
        let benign = action == Action::Stop && output.contains("not running");
        // supervisorctl exits 0 on some errors (older versions): read its words too.
        let says_error = output.contains("ERROR") || output.contains("error:");
        if (status.success() && !says_error) || benign {
            Ok(())
        } else {
            Err(CallError::Exit {
                code: status.code(),
                signal: std::os::unix::process::ExitStatusExt::signal(&status),
                output,
            })
        }
    }

    /// `supervisorctl status PROGRAMS`: how it ended and what it printed.
    pub async fn status(
        &self,
        programs: &[String],
    ) -> Result<(std::process::ExitStatus, String), CallError> {
        let mut argv = self.settings.args.clone();
        argv.push("status".to_string());
        argv.extend(programs.iter().cloned());
        self.run(argv).await
    }

    /// `supervisorctl status PROGRAM`, read.
    pub async fn state(&self, program: &str) -> Result<ProgramState, CallError> {
        let (status, output) = self.status(&[program.to_string()]).await?;
        started::parse_status(program, &output, std::time::SystemTime::now()).ok_or(
            CallError::Exit {
                code: status.code(),
                signal: std::os::unix::process::ExitStatusExt::signal(&status),
                output,
            },
        )
    }

    /// Plain supervisorctl without `-c` or `-s` would read a `supervisord.conf` in the
    /// working directory, whoever wrote it: it is run from `/`, where it finds only the system
    /// ones. A wrapper, arguments naming the config or the server, or a relative path to the
    /// executable keep the working directory.
    fn runs_from_root(&self) -> bool {
        let command = Path::new(&self.settings.supervisorctl);
        let plain = command.file_name().is_some_and(|n| n == "supervisorctl");
        let found_alike = command.is_absolute() || command.components().count() == 1;
        let ctl = crate::adapters::supervisor::conf::parse_args(&self.settings.args);
        plain && found_alike && ctl.config.is_none() && ctl.serverurl.is_none()
    }

    /// Runs supervisorctl with `argv` within the timeout: how it ended and what it printed
    /// (stdout then stderr, trimmed, at most 2000 bytes).
    async fn run(
        &self,
        argv: Vec<String>,
    ) -> Result<(std::process::ExitStatus, String), CallError> {
        let mut cmd = Command::new(&self.settings.supervisorctl);
        if self.runs_from_root() {
            cmd.current_dir("/");
        }
        // The handler's secrets are its own: supervisorctl would expand them into a config.
        for var in SECRET_VARS {
            cmd.env_remove(var);
        }
        cmd.args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| CallError::Spawn {
            command: self.settings.supervisorctl.clone(),
            reason: e.to_string(),
        })?;
        let out = tokio::time::timeout(self.settings.timeout, child.wait_with_output())
            .await
            .map_err(|_| CallError::Timeout(self.settings.timeout))?
            .map_err(|e| CallError::Spawn {
                command: self.settings.supervisorctl.clone(),
                reason: e.to_string(),
            })?;
        let mut output = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            if !output.is_empty() {
                output.push(' ');
            }
            output.push_str(stderr.trim());
        }
        output.truncate(output.floor_char_boundary(2000));
        Ok((out.status, output))
    }
}

/// The executable `command` names: itself if it has a slash, else the first on the PATH.
pub fn locate(command: &str) -> Option<PathBuf> {
    if command.contains('/') {
        let path = PathBuf::from(command);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
}

impl Caller for Supervisorctl {
    fn via(&self) -> &'static str {
        "supervisorctl"
    }

    async fn call(&self, action: Action, program: &str) -> Result<(), CallError> {
        Supervisorctl::call(self, action, program).await
    }

    async fn state(&self, program: &str) -> Result<ProgramState, CallError> {
        Supervisorctl::state(self, program).await
    }

    fn timeout(&self) -> Duration {
        self.settings.timeout
    }
}

impl Restart for Supervisorctl {
    async fn restart(&self, cancel: &CancellationToken) -> Result<Duration, RestartError> {
        run_steps(self, &self.retry, &self.settings.programs, cancel).await
    }

    async fn restart_while(
        &self,
        cancel: &CancellationToken,
        may_act: &(dyn Fn() -> bool + Sync),
    ) -> Result<Duration, RestartError> {
        let programs = &self.settings.programs;
        run_steps_while(self, &self.retry, programs, cancel, may_act).await
    }
}

#[cfg(test)]
impl Supervisorctl {
    /// Counts each failed supervisorctl call on `counter` (a daemon counts through
    /// `Restarter::count_failures`).
    pub fn count_failures(mut self, counter: prometheus_client::metrics::counter::Counter) -> Self {
        self.retry.failures = Some(counter);
        self
    }
}
