//! How one call to supervisord failed (through supervisorctl or XML-RPC), or why a start did
//! not take: a short kind for logs and whether the failure is the program's own.

use std::time::Duration;

use thiserror::Error;

/// One call to supervisord that did not succeed, or a start that did not take.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CallError {
    #[error("cannot run {command}: {reason}")]
    Spawn { command: String, reason: String },
    #[error("no answer within {}", crate::config::duration_text(*.0))]
    Timeout(Duration),
    #[error("{}: {output}", ended(*code, *signal))]
    Exit {
        code: Option<i32>,
        /// The signal that killed supervisorctl, when it did not exit by itself.
        signal: Option<i32>,
        output: String,
    },
    /// An XML-RPC call to supervisord that failed.
    #[error("{0}")]
    Rpc(crate::adapters::supervisor::rpc::RpcError),
    /// After a start, supervisord does not show the program RUNNING in a process started since
    /// the restart began: it is FATAL, EXITED or still BACKOFF, or it was running from before.
    /// `after` is the start call's own failure, when it failed.
    #[error("{}supervisord shows it {state}{}", after.as_ref().map(|e| format!("{e}; ")).unwrap_or_default(), if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    NotStarted {
        state: String,
        detail: String,
        after: Option<Box<CallError>>,
    },
}

/// How a call ended, in words: `exit code 7`, `killed by signal 9`.
fn ended(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_string(),
    }
}

impl CallError {
    /// A short word for logs: `missing` (cannot run supervisorctl), `timeout`,
    /// `supervisord_down` (supervisorctl cannot reach supervisord), `not_started` (supervisord
    /// does not show it RUNNING after a start that answered well) or `exit` (any other failure).
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Spawn { .. } => "missing",
            CallError::Timeout(_) => "timeout",
            CallError::Exit { output, .. } if supervisord_unreachable(output) => "supervisord_down",
            CallError::Exit { output, .. } if credentials_refused(output) => "auth_refused",
            CallError::Exit { output, .. } if output.contains("already started") => {
                "already_started"
            }
            CallError::Exit { .. } => "exit",
            CallError::Rpc(e) => e.kind(),
            CallError::NotStarted { after, .. } => match after.as_ref().map(|e| e.kind()) {
                Some("already_started") | None => "not_started",
                Some(kind) => kind,
            },
        }
    }
}

impl CallError {
    /// Whether the failure is the program's own (it cannot be spawned, exits at once, is
    /// unknown, or supervisorctl reports an error for it), not supervisord's or the path's.
    pub fn is_programs_own(&self) -> bool {
        matches!(
            self.kind(),
            "spawn_error"
                | "abnormal_termination"
                | "no_such_process"
                | "failed"
                | "exit"
                | "not_started"
        )
    }
}

/// What supervisorctl prints when supervisord is not running: `unix:///…sock no such file`,
/// `http://…:9001 refused connection`, or a Python socket error with `Connection refused`.
pub fn supervisord_unreachable(output: &str) -> bool {
    let at_server = output.starts_with("unix://") || output.starts_with("http://");
    output.contains("Connection refused")
        || (at_server && (output.contains("no such file") || output.contains("refused connection")))
}

/// What supervisorctl prints when supervisord refuses its username or password (HTTP 401).
pub fn credentials_refused(output: &str) -> bool {
    output.contains("Server requires authentication") || output.contains("401 Unauthorized")
}

impl CallError {
    /// The exit code, supervisord's fault code and the words of the call that failed, for the
    /// fields of `restart_failed`.
    pub fn fields(&self) -> (Option<i32>, Option<i64>, String) {
        match self {
            CallError::Exit { code, output, .. } => (*code, None, output.clone()),
            CallError::Rpc(e) => (None, e.fault_code(), e.to_string()),
            CallError::NotStarted { after, .. } => {
                let (code, fault, _) = after
                    .as_ref()
                    .map_or((None, None, String::new()), |e| e.fields());
                (code, fault, self.to_string())
            }
            _ => (None, None, String::new()),
        }
    }
}
