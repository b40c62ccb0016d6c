//! What the adapters report without telling anybody: the path a restart takes, each of its
//! calls, and a state directory that cannot be had. Told in the log line only: the journal
//! keeps the restart's result, not each call.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::adapters::supervisor::Action;
use crate::adapters::supervisor::CallError;
use crate::adapters::supervisor::Next;
use crate::config::{Via, duration_text};
use crate::report::event::ms;
use crate::report::journal::Level;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Steps {
    /// The path the restarts take: the first restart, and whenever it changes.
    RestartPath {
        #[serde(serialize_with = "via_text")]
        via: Via,
        reason: &'static str,
        #[serde(skip)]
        detail: String,
        /// Only a path that talks to a server names it.
        serverurl: Option<String>,
    },
    /// One stop or start call of a restart succeeded.
    RestartStep {
        program: String,
        #[serde(serialize_with = "action_text")]
        action: Action,
        via: &'static str,
    },
    /// One stop or start call failed at `attempt`; `next` says what follows.
    RestartFailed {
        program: String,
        #[serde(serialize_with = "action_text")]
        action: Action,
        via: &'static str,
        error_kind: &'static str,
        exit_code: Option<i32>,
        fault_code: Option<i64>,
        output: String,
        attempt: u32,
        retry_in_ms: u64,
        #[serde(skip)]
        error: String,
        #[serde(skip)]
        next: Next,
    },
    /// The state directory at `path` cannot be had: the daemon runs without it.
    StateDirUnavailable { path: String, error: String },
}

fn via_text<S: Serializer>(v: &Via, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_str())
}

fn action_text<S: Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

impl Steps {
    /// A call that failed, with the fields its error carries.
    pub fn failed(
        program: String,
        action: Action,
        via: &'static str,
        attempt: u32,
        error: &CallError,
        next: Next,
    ) -> Steps {
        let (exit_code, fault_code, output) = error.fields();
        let retry_in = match next {
            Next::Retry(backoff) => backoff,
            Next::MoveOn | Next::GiveUp => Duration::ZERO,
        };
        Steps::RestartFailed {
            program,
            action,
            via,
            error_kind: error.kind(),
            exit_code,
            fault_code,
            output,
            attempt,
            retry_in_ms: ms(retry_in),
            error: error.to_string(),
            next,
        }
    }

    pub fn level(&self) -> Level {
        match self {
            Steps::RestartFailed { .. } => Level::Error,
            Steps::StateDirUnavailable { .. } => Level::Warn,
            Steps::RestartPath { .. } | Steps::RestartStep { .. } => Level::Info,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Steps::RestartPath {
                via,
                detail,
                serverurl,
                ..
            } => {
                let how = match (via, serverurl) {
                    (Via::Xmlrpc, Some(url)) => format!("supervisord's XML-RPC interface at {url}"),
                    (Via::Xmlrpc, None) => "supervisord's XML-RPC interface".to_string(),
                    _ => "supervisorctl".to_string(),
                };
                format!("Restarting programs through {how}: {detail}")
            }
            Steps::RestartStep {
                program,
                action,
                via,
            } => format!("{via} {} {program}: done", action.as_str()),
            Steps::RestartFailed {
                program,
                action,
                via,
                attempt,
                error,
                next,
                ..
            } => format!(
                "{via} {} {program} failed (attempt {attempt}): {error}{}",
                action.as_str(),
                match next {
                    Next::MoveOn => "; going on with the other programs".to_string(),
                    Next::GiveUp => "; giving up".to_string(),
                    Next::Retry(backoff) => format!("; retrying in {}", duration_text(*backoff)),
                }
            ),
            Steps::StateDirUnavailable { path, error } => format!(
                "State directory {path} is not usable ({error}); running without it: no journal, and an interrupted restart is not resumed after a crash"
            ),
        }
    }
}
