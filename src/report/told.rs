//! What the adapters report without telling anybody (a restart's path and steps, a state
//! directory that cannot be had or written), told here as events: logged only, since the
//! journal keeps the decisions and the restart's result, not each call.

use crate::adapters::files::{StateDir, StateWrite, WriteFailed};
use crate::adapters::supervisor::{Progress, Tell};
use crate::report::event::{Event, Notice, Steps};
use crate::report::logging;

impl From<Progress> for Event {
    fn from(p: Progress) -> Self {
        Event::Steps(match p {
            Progress::Path {
                via,
                reason,
                detail,
                serverurl,
            } => Steps::RestartPath {
                via,
                reason,
                detail,
                serverurl,
            },
            Progress::Done {
                action,
                program,
                via,
            } => Steps::RestartStep {
                program,
                action,
                via,
            },
            Progress::Failed {
                action,
                program,
                via,
                attempt,
                error,
                next,
            } => Steps::failed(program, action, via, attempt, &error, next),
        })
    }
}

impl From<WriteFailed> for Event {
    fn from(f: WriteFailed) -> Self {
        let doing = match f.write {
            StateWrite::Lock => "lock the state directory (nothing stops a second daemon on it)",
            StateWrite::Pid => "record this daemon's pid in the state directory",
            StateWrite::MarkRestart => "record the restart in the state directory",
            StateWrite::ClearRestart => "clear the restart marker in the state directory",
        };
        Event::Notice(Notice::StateWriteFailed {
            error: f.error.to_string(),
            doing,
        })
    }
}

/// A restart's path and each of its calls, told as they happen.
pub fn restart_steps() -> Tell {
    Tell::new(|p| logging::event(&Event::from(p)))
}

/// Tells a failed write in the state directory, if one failed.
pub fn state_write(failed: Option<WriteFailed>) {
    if let Some(f) = failed {
        logging::event(&Event::from(f));
    }
}

/// Tells that the state directory could not be had, if it could not.
pub fn state_dir(state: &StateDir, path: &std::path::Path) {
    if let Some(error) = state.unusable() {
        logging::event(&Event::Steps(Steps::StateDirUnavailable {
            path: path.display().to_string(),
            error: error.to_string(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::adapters::files::StateWrite;
    use crate::adapters::supervisor::Action;
    use crate::adapters::supervisor::CallError;
    use crate::adapters::supervisor::Next;
    use crate::config::Via;
    use crate::report::journal::Level;

    fn failed(next: Next) -> Event {
        Event::from(Progress::Failed {
            action: Action::Stop,
            program: "app:application".into(),
            via: "supervisorctl",
            attempt: 2,
            error: CallError::Exit {
                code: Some(3),
                signal: None,
                output: "app:application: ERROR (spawn error)".into(),
            },
            next,
        })
    }

    #[test]
    fn a_failed_call_is_told_as_restart_failed_with_what_comes_next() {
        let e = failed(Next::Retry(Duration::from_millis(1500)));
        assert_eq!(e.name(), "restart_failed");
        assert_eq!(e.level(), Level::Error);
        assert_eq!(
            e.message(),
            "supervisorctl stop app:application failed (attempt 2): exit code 3: app:application: ERROR (spawn error); retrying in 1s 500ms"
        );
        let f = e.fields();
        assert_eq!(f["program"], "app:application");
        assert_eq!(f["action"], "stop");
        assert_eq!(f["via"], "supervisorctl");
        assert_eq!(f["error_kind"], "exit");
        assert_eq!(f["exit_code"], 3);
        assert!(!f.contains_key("fault_code"));
        assert_eq!(f["output"], "app:application: ERROR (spawn error)");
        assert_eq!(f["attempt"], 2);
        assert_eq!(f["retry_in_ms"], 1500);
        let gave_up = failed(Next::GiveUp);
        assert!(gave_up.message().ends_with("; giving up"));
        assert_eq!(gave_up.fields()["retry_in_ms"], 0);
        let moving_on = failed(Next::MoveOn);
        assert!(
            moving_on
                .message()
                .ends_with("; going on with the other programs")
        );
    }

    #[test]
    fn the_path_and_a_step_are_told_as_before() {
        let path = Event::from(Progress::Path {
            via: Via::Xmlrpc,
            reason: "reachable",
            detail: "supervisord answers at unix:///run/supervisor.sock".into(),
            serverurl: Some("unix:///run/supervisor.sock".into()),
        });
        assert_eq!(
            path.message(),
            "Restarting programs through supervisord's XML-RPC interface at unix:///run/supervisor.sock: supervisord answers at unix:///run/supervisor.sock"
        );
        assert_eq!(path.fields()["via"], "xmlrpc");
        assert_eq!(path.fields()["serverurl"], "unix:///run/supervisor.sock");
        let ctl = Event::from(Progress::Path {
            via: Via::Supervisorctl,
            reason: "configured",
            detail: "restart.via is supervisorctl".into(),
            serverurl: None,
        });
        assert!(
            ctl.message()
                .starts_with("Restarting programs through supervisorctl: ")
        );
        assert!(!ctl.fields().contains_key("serverurl"));
        let step = Event::from(Progress::Done {
            action: Action::Start,
            program: "app:stunnel".into(),
            via: "XML-RPC",
        });
        assert_eq!(step.name(), "restart_step");
        assert_eq!(step.level(), Level::Info);
        assert_eq!(step.message(), "XML-RPC start app:stunnel: done");
    }

    #[test]
    fn a_failed_state_write_says_which_and_why() {
        let e = Event::from(WriteFailed {
            write: StateWrite::MarkRestart,
            error: std::io::Error::from(std::io::ErrorKind::StorageFull),
        });
        assert_eq!(e.name(), "state_write_failed");
        assert_eq!(e.level(), Level::Warn);
        assert!(
            e.message()
                .starts_with("Cannot record the restart in the state directory: "),
            "{}",
            e.message()
        );
        assert_eq!(e.fields()["error"], "no storage space");
    }
}
