//! What a restart does as it goes, reported to whoever asked for it: an adapter says nothing
//! itself. The caller hands a [`Tell`] in (`report` words each step as an event).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::action::Action;
use super::call_error::CallError;
use crate::config::Via;

/// What comes after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The call is made again after this backoff.
    Retry(Duration),
    /// The step failed for the program's own reason too often: the other programs go on.
    MoveOn,
    /// The restart gives up.
    GiveUp,
}

/// One thing a restart did.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The path this restart takes, when it is the first or differs from the last one.
    Path {
        via: Via,
        /// `configured`, `wrapper`, `supervisorctl_not_found`, `no_supervisor_config`,
        /// `unreachable` or `reachable`.
        reason: &'static str,
        /// What was found or missed.
        detail: String,
        /// The XML-RPC server, on that path only (without credentials).
        serverurl: Option<String>,
    },
    /// One stop or start call succeeded (`via`: `supervisorctl` or `XML-RPC`).
    Done {
        action: Action,
        program: String,
        via: &'static str,
    },
    /// One call failed at `attempt`; `next` says what follows.
    Failed {
        action: Action,
        program: String,
        via: &'static str,
        attempt: u32,
        error: CallError,
        next: Next,
    },
}

/// Where a restart's progress goes: nowhere unless the caller says.
#[derive(Clone, Default)]
pub struct Tell(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl Tell {
    pub fn new(to: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Tell(Some(Arc::new(to)))
    }

    pub fn tell(&self, progress: Progress) {
        if let Some(to) = &self.0 {
            to(progress);
        }
    }
}

impl fmt::Debug for Tell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Tell"
        } else {
            "Tell(none)"
        })
    }
}
