//! What the one-shot commands tell on stderr as they act (`switch`, `pause`, `resume`), under
//! derived `event` names and fields like every [`Event`](crate::report::event::Event).

use serde::Serialize;

use crate::report::event::Place;
use crate::report::journal::Level;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Command {
    /// Another `switch` holds the switch lock at `lock`: this one waits its turn.
    SwitchWaiting {
        region: String,
        lock: String,
        #[serde(skip)]
        env_file: String,
    },
    /// `switch` wrote `at` to the env file at `path`.
    ManualSwitch {
        #[serde(flatten)]
        at: Place,
        previous_region: Option<String>,
        #[serde(skip)]
        path: String,
    },
    /// `pause` wrote the pause file (`describe`: since when and for how long).
    PauseRequested {
        #[serde(serialize_with = "crate::report::fields::maybe_timestamp")]
        until: Option<std::time::SystemTime>,
        #[serde(skip)]
        describe: String,
    },
    /// `resume` removed it.
    ResumeRequested {},
    /// `switch` pinned `region` (the daemon says `pinned` too when it sees the pin).
    Pinned {
        region: String,
        source: &'static str,
    },
    /// `switch --unpin` removed the pin of `region`.
    Unpinned {
        region: String,
        reason: &'static str,
    },
    /// `switch` could not mark its restart in the state dir `dir`: a running daemon may tell
    /// the tunnel's restart as an outage; the switch goes on.
    SwitchMarkFailed {
        region: String,
        error: String,
        #[serde(skip)]
        dir: String,
    },
}

impl Command {
    pub fn level(&self) -> Level {
        match self {
            Command::SwitchMarkFailed { .. } => Level::Warn,
            _ => Level::Info,
        }
    }

    /// The sentence for people.
    pub fn message(&self) -> String {
        match self {
            Command::SwitchWaiting { env_file, .. } => {
                format!("Another switch of {env_file} is in progress: waiting for it to finish")
            }
            Command::ManualSwitch { at, path, .. } => format!(
                "Switched by hand to region {} and cloud {} in {path}",
                at.region, at.cloud
            ),
            Command::PauseRequested { describe, .. } => format!("Pause requested {describe}"),
            Command::ResumeRequested {} => "Resume requested".to_string(),
            Command::Pinned { region, .. } => format!("Pinned region {region}"),
            Command::Unpinned { region, .. } => format!("Unpinned region {region}"),
            Command::SwitchMarkFailed { error, dir, .. } => format!(
                "Cannot mark this switch's restart in {dir} ({error}): a running daemon may tell the tunnel's restart as an outage"
            ),
        }
    }
}
