//! A program as supervisord shows it (its state, its description, when it was started), and
//! what that says of a start made since a given instant.

use std::time::{Duration, SystemTime};

/// A program as supervisord shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramState {
    /// supervisord's state name: `RUNNING`, `STARTING`, `BACKOFF`, `FATAL`, `EXITED`, …
    pub state: String,
    /// supervisord's description: `pid 12, uptime 0:00:03`, `Exited too quickly (…)`.
    pub detail: String,
    pub started: Started,
}

/// When the process supervisord shows was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// In whole seconds since the epoch (XML-RPC's `start`, truncated).
    At(u64),
    /// This long before `read_at` (supervisorctl's `uptime`, in whole seconds).
    Uptime {
        uptime: Duration,
        read_at: SystemTime,
    },
    Unknown,
}

/// What a reading says of the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Running,
    Waiting,
    Failed,
}

impl ProgramState {
    /// Whether the process was started at or after `began` (to the second, the precision
    /// supervisord gives).
    pub fn started_since(&self, began: SystemTime) -> bool {
        let began_s = began
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self.started {
            Started::At(s) => s >= began_s,
            // The uptime is truncated to the second: the start may be up to a second earlier.
            Started::Uptime { uptime, read_at } => read_at
                .checked_sub(uptime)
                .is_none_or(|at| at + Duration::from_secs(1) >= began),
            Started::Unknown => true,
        }
    }

    pub fn reading(&self, began: SystemTime) -> Reading {
        match self.state.as_str() {
            "RUNNING" if self.started_since(began) => Reading::Running,
            "STARTING" | "BACKOFF" => Reading::Waiting,
            _ => Reading::Failed,
        }
    }
}
