//! Restarting the application's programs: `stop` each program in order, then `start` each in
//! reverse, one call per program with a timeout; a failed call is reported with its kind, exit
//! code or fault, and output (`progress`, for the caller to tell), and retried with backoff. A
//! start is done only when supervisord shows the program RUNNING in a process started since
//! the restart began (`started`). The
//! calls go through supervisorctl (`supervisorctl`: an argument vector, no shell) or straight
//! to supervisord's XML-RPC interface
//! (`rpc`); `restart_path` chooses.

use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use thiserror::Error;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::progress::{Next, Progress, Tell};
use super::started::{self, ProgramState};
use crate::kernel::resume::Seen;

pub use super::action::Action;

pub use super::call_error::{CallError, credentials_refused, supervisord_unreachable};

#[derive(Debug, Error)]
pub enum RestartError {
    #[error("stopped by shutdown; programs stopped and not started again: {}", .0.join(", "))]
    Cancelled(Vec<String>),
    /// The caller's permit no longer allowed the next step (a fleet host whose lease
    /// lapsed: another host may hold its restart slot by now).
    #[error("stopped before {step}: the permit to restart lapsed; programs stopped and not started again: {}", .stopped.join(", "))]
    Lapsed { step: String, stopped: Vec<String> },
    #[error("{action} {program} failed {attempts} times; last: {last}")]
    GaveUp {
        action: &'static str,
        program: String,
        attempts: u32,
        last: CallError,
    },
    /// The daemon's restart went on past steps that failed for the program's own reason
    /// (`stop app:x`, `start app:y`), each tried [`PROGRAM_ATTEMPTS`] times.
    #[error("restart incomplete: {} failed {PROGRAM_ATTEMPTS} times each (last: {last}); every other step was done", .steps.join(", "))]
    Incomplete { steps: Vec<String>, last: CallError },
}

/// How many times the daemon tries a step that fails for the program's own reason before it
/// goes on with the others: a tunnel that cannot start must not keep the application stopped.
pub const PROGRAM_ATTEMPTS: u32 = 3;

/// The seam between the daemon and supervisord: one real implementation, fakes in tests.
pub trait Restart {
    /// Restarts every program; returns how long it took.
    fn restart(
        &self,
        cancel: &CancellationToken,
    ) -> impl std::future::Future<Output = Result<Duration, RestartError>> + Send;

    /// Restarts every program while `may_act` allows it, asked before each program is
    /// stopped or started; a restart it no longer allows ends with [`RestartError::Lapsed`].
    fn restart_while(
        &self,
        cancel: &CancellationToken,
        may_act: &(dyn Fn() -> bool + Sync),
    ) -> impl std::future::Future<Output = Result<Duration, RestartError>> + Send {
        let _ = may_act;
        self.restart(cancel)
    }

    /// Each program as supervisord shows it now, in restart order, when supervisord can be
    /// asked; `None` when it cannot (through supervisorctl, or no answer).
    fn programs_seen(&self) -> impl std::future::Future<Output = Option<Vec<Seen>>> + Send {
        async { None }
    }
}

/// One way of asking supervisord to stop or start one program.
pub trait Caller: Sync {
    /// How the log lines name it: `supervisorctl` or `XML-RPC`.
    fn via(&self) -> &'static str;
    fn call(
        &self,
        action: Action,
        program: &str,
    ) -> impl std::future::Future<Output = Result<(), CallError>> + Send;
    /// The program as supervisord shows it now.
    fn state(
        &self,
        program: &str,
    ) -> impl std::future::Future<Output = Result<ProgramState, CallError>> + Send;
    /// How long one call may take, and a start to reach RUNNING (`restart.timeout`).
    fn timeout(&self) -> Duration;
}

/// How failed calls are retried and counted.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Give up after this many attempts per call (`None`: keep trying, as the daemon does).
    pub max_attempts: Option<u32>,
    pub first_backoff: Duration,
    /// Counts every failed call, for `failover_handler_restart_failures_total`.
    pub failures: Option<Counter>,
    /// Where each step's success or failure is reported.
    pub tell: Tell,
}

impl Retry {
    pub fn new(max_attempts: Option<u32>) -> Self {
        Retry {
            max_attempts,
            first_backoff: Duration::from_millis(500),
            failures: None,
            tell: Tell::default(),
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A call, retried with growing backoff until it succeeds, gives up, or is cancelled.
async fn call_with_retry<C: Caller>(
    caller: &C,
    retry: &Retry,
    action: Action,
    program: &str,
    began: SystemTime,
    cancel: &CancellationToken,
) -> Result<(), Option<RestartError>> {
    let mut backoff = retry.first_backoff;
    let mut attempt = 1u32;
    loop {
        let call = async {
            let result = caller.call(action, program).await;
            match action {
                Action::Stop => result,
                Action::Start => {
                    started::confirm(result, began, caller.timeout(), || caller.state(program))
                        .await
                }
            }
        };
        let result = tokio::select! {
            r = call => r,
            _ = cancel.cancelled() => return Err(None),
        };
        let last = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(c) = &retry.failures {
            c.inc();
        }
        let moving_on =
            retry.max_attempts.is_none() && last.is_programs_own() && attempt >= PROGRAM_ATTEMPTS;
        let give_up = retry.max_attempts.is_some_and(|max| attempt >= max) || moving_on;
        retry.tell.tell(Progress::Failed {
            action,
            program: program.to_string(),
            via: caller.via(),
            attempt,
            error: last.clone(),
            next: if moving_on {
                Next::MoveOn
            } else if give_up {
                Next::GiveUp
            } else {
                Next::Retry(backoff)
            },
        });
        if give_up {
            return Err(Some(RestartError::GaveUp {
                action: action.as_str(),
                program: program.to_string(),
                attempts: attempt,
                last,
            }));
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return Err(None),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

/// Stops each program in order, then starts each in reverse, every call through `caller`.
pub async fn run_steps<C: Caller>(
    caller: &C,
    retry: &Retry,
    programs: &[String],
    cancel: &CancellationToken,
) -> Result<Duration, RestartError> {
    run_steps_while(caller, retry, programs, cancel, &|| true).await
}

/// [`run_steps`], asking `may_act` before each program it stops or starts: when it says
/// no, nothing more is called.
pub async fn run_steps_while<C: Caller>(
    caller: &C,
    retry: &Retry,
    programs: &[String],
    cancel: &CancellationToken,
    may_act: &(dyn Fn() -> bool + Sync),
) -> Result<Duration, RestartError> {
    let started = Instant::now();
    let began = SystemTime::now();
    let mut stopped: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut last_skip = None;
    let steps = programs
        .iter()
        .map(|p| (Action::Stop, p))
        .chain(programs.iter().rev().map(|p| (Action::Start, p)));
    for (action, program) in steps {
        if !may_act() {
            return Err(RestartError::Lapsed {
                step: format!("{} {program}", action.as_str()),
                stopped,
            });
        }
        match call_with_retry(caller, retry, action, program, began, cancel).await {
            Ok(()) => {
                retry.tell.tell(Progress::Done {
                    action,
                    program: program.clone(),
                    via: caller.via(),
                });
                match action {
                    Action::Stop => stopped.push(program.clone()),
                    Action::Start => stopped.retain(|p| p != program),
                }
            }
            Err(None) => return Err(RestartError::Cancelled(stopped)),
            Err(Some(RestartError::GaveUp { last, .. })) if retry.max_attempts.is_none() => {
                skipped.push(format!("{} {program}", action.as_str()));
                last_skip = Some(last);
            }
            Err(Some(e)) => return Err(e),
        }
    }
    match last_skip {
        Some(last) => Err(RestartError::Incomplete {
            steps: skipped,
            last,
        }),
        None => Ok(started.elapsed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::supervisor::supervisorctl::Supervisorctl;
    use crate::config::RestartSettings;
    use std::os::unix::fs::PermissionsExt;

    /// A supervisorctl that runs `body`, and shows every program RUNNING since now.
    fn stand_in(dir: &std::path::Path, body: &str) -> String {
        stand_in_first(dir, "", body)
    }

    /// A supervisorctl that runs `first`, then shows a program in `$STATE` (RUNNING since
    /// now if unset), or runs `body`.
    fn stand_in_first(dir: &std::path::Path, first: &str, body: &str) -> String {
        let path = dir.join("supervisorctl");
        let status = "[ \"$3\" = status ] && { echo \"$4 ${STATE:-RUNNING} pid 1, uptime 0:00:00\"; exit 0; }";
        std::fs::write(&path, format!("#!/bin/sh\n{first}\n{status}\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn settings(ctl: String) -> RestartSettings {
        RestartSettings {
            via: crate::config::Via::Supervisorctl,
            supervisorctl: ctl,
            args: vec!["-c".into(), "/etc/s.conf".into()],
            programs: vec!["a".into(), "b".into(), "c".into()],
            timeout: Duration::from_secs(5),
            enabled: true,
        }
    }

    #[tokio::test]
    async fn stops_in_order_and_starts_in_reverse() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        let ctl = stand_in(dir.path(), &format!("echo \"$*\" >> '{}'", log.display()));
        Supervisorctl::new(settings(ctl), Some(1))
            .restart(&CancellationToken::new())
            .await
            .unwrap();
        let calls = std::fs::read_to_string(log).unwrap();
        let want = [
            "stop a", "stop b", "stop c", "start c", "start b", "start a",
        ]
        .map(|s| format!("-c /etc/s.conf {s}\n"))
        .concat();
        assert_eq!(calls, want);
    }

    #[tokio::test]
    async fn the_daemon_goes_on_past_a_program_that_cannot_start_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        // b is FATAL; the others RUNNING since now.
        let state = "[ \"$4\" = b ] && STATE='FATAL Exited too quickly' || STATE=RUNNING;";
        let body = format!(
            "echo \"$*\" >> '{}'; [ \"$3 $4\" = 'start b' ] && {{ echo 'b: ERROR (spawn error)'; exit 7; }}; exit 0",
            log.display()
        );
        let ctl = stand_in_first(dir.path(), state, &body);
        let retry = Retry {
            first_backoff: Duration::from_millis(1),
            ..Retry::new(None)
        };
        let err = Supervisorctl::with_retry(settings(ctl), retry)
            .restart(&CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "restart incomplete: start b failed 3 times each (last: exit code 7: b: ERROR (spawn error); supervisord shows it FATAL (Exited too quickly pid 1, uptime 0:00:00)); every other step was done"
        );
        let calls = std::fs::read_to_string(log).unwrap();
        let want = [
            "stop a", "stop b", "stop c", "start c", "start b", "start b", "start b", "start a",
        ]
        .map(|s| format!("-c /etc/s.conf {s}\n"))
        .concat();
        assert_eq!(calls, want);
    }

    #[tokio::test]
    async fn benign_answers_are_success_and_errors_carry_code_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let ctl = stand_in(dir.path(), "echo \"$4: ERROR (not running)\"; exit 1");
        let s = Supervisorctl::new(settings(ctl), Some(1));
        assert_eq!(s.call(Action::Stop, "a").await, Ok(()));
        let err = s.call(Action::Start, "a").await.unwrap_err();
        assert_eq!(
            err,
            CallError::Exit {
                code: Some(1),
                signal: None,
                output: "a: ERROR (not running)".into()
            }
        );
        assert_eq!(err.to_string(), "exit code 1: a: ERROR (not running)");
    }

    #[tokio::test]
    async fn a_killed_call_says_by_which_signal() {
        let dir = tempfile::tempdir().unwrap();
        let ctl = stand_in(dir.path(), "kill -9 $$");
        let s = Supervisorctl::new(settings(ctl), Some(1));
        let err = s.call(Action::Start, "a").await.unwrap_err();
        assert!(err.to_string().starts_with("killed by signal 9"), "{err}");
        let cancelled = RestartError::Cancelled(vec!["app:a".into(), "app:b".into()]);
        assert_eq!(
            cancelled.to_string(),
            "stopped by shutdown; programs stopped and not started again: app:a, app:b"
        );
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_hangs_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let ctl = stand_in(dir.path(), "sleep 10");
        let mut st = settings(ctl);
        st.timeout = Duration::from_millis(200);
        let failures = Counter::default();
        let s = Supervisorctl::new(st, Some(2)).count_failures(failures.clone());
        let err = s.restart(&CancellationToken::new()).await.unwrap_err();
        assert!(
            matches!(
                err,
                RestartError::GaveUp {
                    attempts: 2,
                    last: CallError::Timeout(_),
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(failures.get(), 2);
    }

    #[tokio::test]
    async fn missing_executable_is_a_spawn_error() {
        let s = Supervisorctl::new(settings("/nonexistent/supervisorctl".into()), Some(1));
        let err = s.call(Action::Stop, "a").await.unwrap_err();
        assert!(matches!(err, CallError::Spawn { .. }));
        assert_eq!(err.kind(), "missing");
    }

    #[test]
    fn error_kinds_tell_supervisord_down_from_other_failures() {
        let exit = |output: &str| CallError::Exit {
            code: Some(7),
            signal: None,
            output: output.into(),
        };
        for down in [
            "unix:///var/run/supervisor.sock no such file",
            "http://localhost:9001 refused connection",
            "error: <class 'socket.error'>, [Errno 111] Connection refused: file: x line: 1",
        ] {
            assert_eq!(exit(down).kind(), "supervisord_down", "{down}");
        }
        for other in [
            "app:x: ERROR (no such file)",
            "app:x: ERROR (spawn error)",
            "",
        ] {
            assert_eq!(exit(other).kind(), "exit", "{other}");
        }
        assert_eq!(CallError::Timeout(Duration::from_secs(1)).kind(), "timeout");
        assert_eq!(
            exit("Server requires authentication").kind(),
            "auth_refused"
        );
        assert_eq!(
            exit("a: ERROR (spawn error)").to_string(),
            "exit code 7: a: ERROR (spawn error)"
        );
    }
}
